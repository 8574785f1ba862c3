using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Text;
using TransformerGen;
using TransformerGen.Samples;

namespace ClassifierSample;

/// <summary>
/// Trains <see cref="BracketClassifier"/> on random bracket strings — half balanced, half made hard to tell
/// apart (equal counts of "(" and ")" but a prefix that closes too early, or one bracket flipped) — and reports
/// accuracy on strings it never trained on.
/// </summary>
public static class Program
{
    private const int Pad = 0, Cls = 1, Open = 2, Close = 3;
    private const int MaxBrackets = BracketClassifier.SeqLen - 1;

    public static int Main(string[] args)
    {
        var steps = SampleCommandLine.Count("--steps", "Optimizer steps to train.", 3000);
        var seed = new Option<ulong>("--seed") { Description = "Seeds the initial weights and the training strings.", HelpName = "S", DefaultValueFactory = _ => 1 };
        var output = new Option<string?>("--out") { Description = "Where the model (or, with --checkpoint-every, the training checkpoint) is written; a folder means classifier.safetensors inside it. Not saved when not given.", HelpName = "FILE|FOLDER" };
        var checkpointEvery = SampleCommandLine.Count("--checkpoint-every", "Write a training checkpoint to --out every N steps and at the end (0: only the model, at the end).", 0, minimum: 0);
        var resume = new Option<bool>("--resume") { Description = "Continue from the training checkpoint at --out, if there is one." };
        var evalEvery = SampleCommandLine.Count("--eval-every", "Measure the held-out loss every N steps and at the end, keeping the best parameters in <out>.best.safetensors when --out is given (0: never).", 0, minimum: 0);
        var earlyStop = SampleCommandLine.Count("--early-stop", "Stop after K evaluations without a lower held-out loss (0: never; needs --eval-every).", 0, minimum: 0, helpName: "K");
        var plot = new Option<string?>("--plot") { Description = "Write the training and held-out loss curves as a PNG here (a folder means loss.png inside it), at each evaluation and at the end.", HelpName = "FILE" };
        var command = new RootCommand("Trains BracketClassifier, an encoder-only model, to tell balanced bracket strings from near misses, and measures its accuracy on strings it never saw.")
        {
            steps, seed, output, checkpointEvery, resume, evalEvery, earlyStop, plot,
        };
        command.Validators.Add(r =>
        {
            if (r.GetValue(earlyStop) > 0 && r.GetValue(evalEvery) == 0) r.AddError("--early-stop counts evaluations: it needs --eval-every.");
            if ((r.GetValue(checkpointEvery) > 0 || r.GetValue(resume)) && r.GetValue(output) is null) r.AddError("--checkpoint-every and --resume need --out, the checkpoint's path.");
        });
        command.SetAction(parsed => Train(parsed.GetValue(steps), parsed.GetValue(seed), parsed.GetValue(output), parsed.GetValue(checkpointEvery),
            parsed.GetValue(resume), parsed.GetValue(evalEvery), parsed.GetValue(earlyStop), parsed.GetValue(plot)));
        return SampleCommandLine.Run(command, args);
    }

    private static int Train(int steps, ulong seed, string? outPath, int checkpointEvery, bool resume, int evalEvery, int earlyStop, string? plot)
    {
        // Where the model goes is checked before any training is spent on it: a folder means a file inside it.
        if (outPath is not null)
        {
            try
            {
                outPath = SafeTensors.PrepareOutputPath(outPath, "classifier.safetensors");
            }
            catch (IOException e)
            {
                Console.Error.WriteLine($"--out: {e.Message}");
                return 2;
            }
        }

        string? plotPath = null;
        try
        {
            if (plot is not null) plotPath = SafeTensors.PrepareOutputPath(plot, "loss.png");
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"--plot: {e.Message}");
            return 2;
        }
        if (plotPath is not null && (plotPath == outPath || Directory.Exists(outPath)))
        {
            Console.Error.WriteLine($"--plot: {plotPath} and --out {outPath} collide (the plot's folder is the model's path); give them different places");
            return 2;
        }

        var model = new BracketClassifier(seed);
        Console.WriteLine($"model: BracketClassifier, {BracketClassifier.ParameterCount:N0} parameters, encoder-only, {BracketClassifier.Layers} layers, DModel {BracketClassifier.DModel}");
        var optimizer = new AdamW(model, learningRate: 1e-3f, weightDecay: 0.01f, decayVectors: false);
        var schedule = new WarmupCosineSchedule(1e-3f, warmupSteps: 100, totalSteps: steps, minLearningRate: 1e-4f);
        var rng = new Rng(seed + 1);
        var seen = new HashSet<string>();
        var tokens = new int[BracketClassifier.TokensPerStep];
        var labels = new int[BracketClassifier.Batch];
        var record = new TrainingRecord();
        string? bestPath = outPath is null ? null : TrainingRecord.BestPath(outPath);
        long start = 0;
        if (resume && File.Exists(outPath))
        {
            string? refusal = Resume(outPath!, steps, seed, model, optimizer, rng, seen, ref record, out start);
            if (refusal is not null)
            {
                Console.Error.WriteLine($"--resume: {refusal}");
                return 2;
            }
            Console.WriteLine($"resuming from step {start} of {steps} ({outPath})"
                + (record.HeldOut.Count > 0 ? $"; best held-out loss so far {record.BestLoss:F4} at step {record.BestStep}" : ""));
        }
        var clock = Stopwatch.StartNew();
        bool stopped = record.ShouldStop(earlyStop); // a run that stopped early, resumed, has nothing left to do
        long last = start;
        TrainingProgress.Run(start, steps, progress =>
        {
            for (long step = start + 1; step <= steps && !stopped; step++)
            {
                for (int b = 0; b < BracketClassifier.Batch; b++)
                {
                    (string text, bool balanced) = Example(rng);
                    seen.Add(text);
                    Encode(text, tokens.AsSpan(b * BracketClassifier.SeqLen, BracketClassifier.SeqLen));
                    labels[b] = balanced ? 1 : 0;
                }
                optimizer.LearningRate = schedule.At(step);
                float loss = model.TrainStep(tokens, labels, optimizer, maxGradientNorm: 1f);
                last = step;
                progress.Step(step, loss, (step - start) * (double)BracketClassifier.TokensPerStep / clock.Elapsed.TotalSeconds);
                if (step == 1 || step % 200 == 0)
                {
                    record.AddTrainLoss(step, loss);
                    progress.PlainLine($"step {step,5}/{steps}  loss {loss:F4}  {clock.Elapsed.TotalSeconds:F1} s");
                }
                if (evalEvery > 0 && (step % evalEvery == 0 || step == steps))
                {
                    float evaluated = HeldOutLoss(model, seed);
                    bool best = record.AddHeldOutLoss(step, evaluated);
                    progress.HeldOut(evaluated);
                    if (best && bestPath is not null) model.Save(bestPath);
                    progress.Line($"eval at step {step}: held-out loss {evaluated:F4}" + (best
                        ? $", the best so far{(bestPath is null ? "" : $" (saved {bestPath})")}"
                        : $", best {record.BestLoss:F4} at step {record.BestStep} ({record.EvaluationsSinceBest} evaluation(s) without improvement)"));
                    stopped = record.ShouldStop(earlyStop);
                    if (stopped) progress.Line($"early stop at step {step}: {earlyStop} evaluations without improving on step {record.BestStep}");
                    if (plotPath is not null) LossCurves.Write(plotPath, record, PlotTitle);
                }
                if (checkpointEvery > 0 && step % checkpointEvery == 0 && step < steps && !stopped)
                {
                    progress.Line($"writing checkpoint at step {step} to {outPath}");
                    SaveCheckpoint(outPath!, steps, model, optimizer, rng, record, step);
                }
            }
        });
        Console.WriteLine($"trained {last - start} steps{(start > 0 ? $" after step {start}" : "")} in {clock.Elapsed.TotalSeconds:F1} s on {seen.Count:N0} distinct strings");
        // Saved before the held-out strings move the data generator; a run that checkpoints saves a training checkpoint,
        // so that --resume after the end has nothing left to do.
        if (outPath is not null)
        {
            if (checkpointEvery > 0) SaveCheckpoint(outPath, steps, model, optimizer, rng, record, last);
            else model.Save(outPath);
            Console.WriteLine($"saved {outPath}");
        }
        if (plotPath is not null)
        {
            LossCurves.Write(plotPath, record, PlotTitle);
            Console.WriteLine($"saved loss curves {plotPath}");
        }
        if (record.HeldOut.Count > 0) Console.WriteLine($"best held-out loss {record.BestLoss:F4} at step {record.BestStep}{(bestPath is null ? "" : $": {bestPath}")}");

        // Held out: 2,048 strings never seen in training, predicted a batch at a time.
        int correct = 0, total = 0, shown = 0;
        var classes = new int[BracketClassifier.Batch];
        var texts = new string[BracketClassifier.Batch];
        var truth = new bool[BracketClassifier.Batch];
        while (total < 2048)
        {
            for (int b = 0; b < BracketClassifier.Batch; b++)
            {
                (string text, bool balanced) example;
                do example = Example(rng); while (seen.Contains(example.text));
                (texts[b], truth[b]) = example;
                Encode(texts[b], tokens.AsSpan(b * BracketClassifier.SeqLen, BracketClassifier.SeqLen));
            }
            EncoderModel.ArgMax(model.Predict(tokens), BracketClassifier.Classes, classes);
            for (int b = 0; b < BracketClassifier.Batch; b++)
            {
                bool predicted = classes[b] == 1;
                if (predicted == truth[b]) correct++;
                total++;
                if (shown < 6)
                {
                    Console.WriteLine($"  {texts[b],-24} {(predicted ? "balanced" : "not balanced"),-13} {(predicted == truth[b] ? "✓" : "✗")}");
                    shown++;
                }
            }
        }
        double accuracy = (double)correct / total;
        Console.WriteLine($"held-out accuracy: {correct}/{total}");
        Console.WriteLine($"accuracy={accuracy.ToString("F4", CultureInfo.InvariantCulture)}");
        return 0;
    }

    private const string StepsKey = "classifier.steps";

    private static void SaveCheckpoint(string path, int steps, BracketClassifier model, AdamW optimizer, Rng rng, TrainingRecord record, long step)
    {
        var metadata = new Dictionary<string, string> { [StepsKey] = steps.ToString(CultureInfo.InvariantCulture) };
        record.WriteTo(metadata);
        TrainingCheckpoint.Save(path, model, optimizer, step, rng, metadata);
    }

    /// <summary>
    /// Mean cross-entropy, dropout off, over the same <see cref="EvaluationBatches"/> batches of labelled strings at every
    /// call, drawn from a generator seeded apart from the training strings', which this leaves untouched.
    /// </summary>
    private static float HeldOutLoss(BracketClassifier model, ulong seed)
    {
        var strings = new Rng(seed + 3);
        var tokens = new int[BracketClassifier.TokensPerStep];
        var labels = new int[BracketClassifier.Batch];
        model.Training = false;
        double sum = 0;
        for (int i = 0; i < EvaluationBatches; i++)
        {
            for (int b = 0; b < BracketClassifier.Batch; b++)
            {
                (string text, bool balanced) = Example(strings);
                Encode(text, tokens.AsSpan(b * BracketClassifier.SeqLen, BracketClassifier.SeqLen));
                labels[b] = balanced ? 1 : 0;
            }
            sum += model.Forward(tokens, labels);
        }
        model.Training = true;
        return (float)(sum / EvaluationBatches);
    }

    private const int EvaluationBatches = 8;

    private static readonly string PlotTitle = $"BracketClassifier ({BracketClassifier.ParameterCount:N0} parameters), balanced brackets";

    /// <summary>
    /// Restores the run from <paramref name="path"/> and the set of strings it trained on (replayed from the seed, which
    /// must bring the data generator to the state the checkpoint holds); returns why it cannot, or null.
    /// </summary>
    private static string? Resume(string path, int steps, ulong seed, BracketClassifier model, AdamW optimizer, Rng rng, HashSet<string> seen, ref TrainingRecord record, out long start)
    {
        start = 0;
        if (!TrainingCheckpoint.IsTrainingCheckpoint(path))
            return $"{path} holds a model's parameters only (it was saved without --checkpoint-every), so training cannot continue from it";
        IReadOnlyDictionary<string, string> metadata = SafeTensors.ReadMetadata(path);
        string written = metadata.GetValueOrDefault(StepsKey, "?");
        if (written != steps.ToString(CultureInfo.InvariantCulture))
            return $"{path} is from a run of --steps {written}; resume with the same --steps";
        start = TrainingCheckpoint.Load(path, model, optimizer, rng).Step;
        record = TrainingRecord.ReadFrom(metadata);
        var replay = new Rng(seed + 1);
        for (long i = 0; i < start * BracketClassifier.Batch; i++) seen.Add(Example(replay).Text);
        return replay.State == rng.State ? null : $"{path} is from a run with another --seed";
    }

    /// <summary>A balanced string half of the time; otherwise a near miss of even length.</summary>
    private static (string Text, bool Balanced) Example(Rng rng)
    {
        int pairs = 1 + rng.NextInt(MaxBrackets / 2);
        string balanced = RandomBalanced(pairs, rng);
        if (rng.NextInt(2) == 0) return (balanced, true);
        char[] chars = balanced.ToCharArray();
        if (rng.NextInt(2) == 0 && chars.Length >= 2)
        {
            // Same counts, new order: usually some prefix now closes too early; the label is computed, not assumed.
            int i = rng.NextInt(chars.Length), j = rng.NextInt(chars.Length);
            (chars[i], chars[j]) = (chars[j], chars[i]);
        }
        else
        {
            int i = rng.NextInt(chars.Length);
            chars[i] = chars[i] == '(' ? ')' : '(';
        }
        string text = new(chars);
        return (text, IsBalanced(text));
    }

    /// <summary>A uniformly shuffled balanced string is biased; this builds one by a random walk that never goes below zero.</summary>
    private static string RandomBalanced(int pairs, Rng rng)
    {
        var text = new StringBuilder(2 * pairs);
        int open = 0, remainingOpen = pairs;
        while (text.Length < 2 * pairs)
        {
            bool canOpen = remainingOpen > 0, canClose = open > 0;
            bool choose = canOpen && (!canClose || rng.NextInt(2) == 0);
            text.Append(choose ? '(' : ')');
            if (choose) { open++; remainingOpen--; } else open--;
        }
        return text.ToString();
    }

    private static bool IsBalanced(string text)
    {
        int depth = 0;
        foreach (char c in text)
        {
            depth += c == '(' ? 1 : -1;
            if (depth < 0) return false;
        }
        return depth == 0;
    }

    private static void Encode(string text, Span<int> row)
    {
        row.Fill(Pad);
        row[0] = Cls;
        for (int i = 0; i < text.Length; i++) row[i + 1] = text[i] == '(' ? Open : Close;
    }
}
