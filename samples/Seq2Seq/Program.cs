using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using ScottPlot;
using TransformerGen;
using TransformerGen.Samples;

namespace Seq2SeqSample;

/// <summary>
/// Trains <see cref="Reverser"/> to reverse digit strings (teacher forcing, the paper's warm-up schedule), then
/// measures exact-match accuracy of greedy cached decoding on strings it never trained on, shows a few, compares
/// with beam search, and saves a cross-attention map as a PNG.
/// </summary>
public static class Program
{
    private const int Pad = 0, Bos = 1, Eos = 2, Digit0 = 3;

    public static int Main(string[] args)
    {
        var steps = SampleCommandLine.Count("--steps", "Optimizer steps to train.", 5000);
        var seed = new Option<ulong>("--seed") { Description = "Seeds the initial weights and the training strings.", HelpName = "S", DefaultValueFactory = _ => 1 };
        var output = new Option<string>("--out") { Description = "The folder for reverser.safetensors, reverser.onnx and cross_attention.png.", HelpName = "FOLDER", DefaultValueFactory = _ => "out" };
        var checkpointEvery = SampleCommandLine.Count("--checkpoint-every", "Write a training checkpoint every N steps and at the end (0: only the model, at the end).", 0, minimum: 0);
        var resume = new Option<bool>("--resume") { Description = "Continue from the training checkpoint in --out, if there is one." };
        var evalEvery = SampleCommandLine.Count("--eval-every", "Measure the held-out loss every N steps and at the end, keeping the best parameters in reverser.best.safetensors (0: never).", 0, minimum: 0);
        var earlyStop = SampleCommandLine.Count("--early-stop", "Stop after K evaluations without a lower held-out loss (0: never; needs --eval-every).", 0, minimum: 0, helpName: "K");
        var plot = new Option<string?>("--plot") { Description = "Write the training and held-out loss curves as a PNG here (a folder means loss.png inside it), at each evaluation and at the end.", HelpName = "FILE" };
        var command = new RootCommand("Trains Reverser, a small encoder–decoder, to reverse digit strings, then measures greedy and beam-search decoding on strings it never saw.")
        {
            steps, seed, output, checkpointEvery, resume, evalEvery, earlyStop, plot,
        };
        command.Validators.Add(r =>
        {
            if (r.GetValue(earlyStop) > 0 && r.GetValue(evalEvery) == 0) r.AddError("--early-stop counts evaluations: it needs --eval-every.");
        });
        command.SetAction(parsed => Train(parsed.GetValue(steps), parsed.GetValue(seed), parsed.GetValue(output)!, parsed.GetValue(checkpointEvery),
            parsed.GetValue(resume), parsed.GetValue(evalEvery), parsed.GetValue(earlyStop), parsed.GetValue(plot)));
        return SampleCommandLine.Run(command, args);
    }

    private static int Train(int steps, ulong seed, string outFolder, int checkpointEvery, bool resume, int evalEvery, int earlyStop, string? plot)
    {
        // The folder is checked before any training is spent on it.
        string checkpoint;
        try
        {
            checkpoint = SafeTensors.PrepareOutputPath(Path.Combine(outFolder, "reverser.safetensors"), "reverser.safetensors");
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"--out: {e.Message}");
            return 2;
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

        var model = new Reverser(seed);
        Console.WriteLine($"model: Reverser, {Reverser.ParameterCount:N0} parameters, encoder–decoder, {Reverser.Layers}+{Reverser.Layers} layers, DModel {Reverser.DModel}");
        var schedule = new NoamSchedule(Reverser.DModel, warmupSteps: 400, factor: 1f);
        var optimizer = new AdamW(model, learningRate: schedule.At(1), beta1: 0.9f, beta2: 0.98f, eps: 1e-9f, weightDecay: 0f); // the paper's Adam settings
        var rng = new Rng(seed + 1);
        var seen = new HashSet<string>();
        var tokens = new int[Reverser.TokensPerStep];
        var targets = new int[Reverser.TargetTokensPerStep];
        var record = new TrainingRecord();
        string bestPath = TrainingRecord.BestPath(checkpoint);
        long start = 0;
        if (resume && File.Exists(checkpoint))
        {
            string? refusal = Resume(checkpoint, steps, seed, model, optimizer, rng, seen, ref record, out start);
            if (refusal is not null)
            {
                Console.Error.WriteLine($"--resume: {refusal}");
                return 2;
            }
            Console.WriteLine($"resuming from step {start} of {steps} ({checkpoint})"
                + (record.HeldOut.Count > 0 ? $"; best held-out loss so far {record.BestLoss:F4} at step {record.BestStep}" : ""));
        }
        var clock = Stopwatch.StartNew();
        float loss = 0;
        bool stopped = record.ShouldStop(earlyStop); // a run that stopped early, resumed, has nothing left to do
        long last = start;
        TrainingProgress.Run(start, steps, progress =>
        {
            for (long step = start + 1; step <= steps && !stopped; step++)
            {
                for (int b = 0; b < Reverser.Batch; b++)
                {
                    string digits = RandomDigits(rng);
                    seen.Add(digits);
                    Encode(digits, tokens.AsSpan(b * Reverser.SeqLen, Reverser.SeqLen), targets.AsSpan(b * Reverser.TargetSeqLen, Reverser.TargetSeqLen));
                }
                optimizer.LearningRate = schedule.At(step);
                loss = model.TrainStep(tokens, targets, optimizer, maxGradientNorm: 1f);
                last = step;
                progress.Step(step, loss, (step - start) * (double)(Reverser.TokensPerStep + Reverser.TargetTokensPerStep) / clock.Elapsed.TotalSeconds);
                if (step == 1 || step % 100 == 0)
                {
                    record.AddTrainLoss(step, loss);
                    progress.PlainLine($"step {step,5}/{steps}  loss {loss:F3}  lr {optimizer.LearningRate:E2}  {clock.Elapsed.TotalSeconds:F1} s");
                }
                if (evalEvery > 0 && (step % evalEvery == 0 || step == steps))
                {
                    float evaluated = HeldOutLoss(model, seed);
                    bool best = record.AddHeldOutLoss(step, evaluated);
                    progress.HeldOut(evaluated);
                    if (best) model.Save(bestPath);
                    progress.Line($"eval at step {step}: held-out loss {evaluated:F4}" + (best
                        ? $", the best so far (saved {bestPath})"
                        : $", best {record.BestLoss:F4} at step {record.BestStep} ({record.EvaluationsSinceBest} evaluation(s) without improvement)"));
                    stopped = record.ShouldStop(earlyStop);
                    if (stopped) progress.Line($"early stop at step {step}: {earlyStop} evaluations without improving on step {record.BestStep}");
                    if (plotPath is not null) LossCurves.Write(plotPath, record, PlotTitle);
                }
                if (checkpointEvery > 0 && step % checkpointEvery == 0 && step < steps && !stopped)
                {
                    progress.Line($"writing checkpoint at step {step} to {checkpoint}");
                    SaveCheckpoint(checkpoint, steps, model, optimizer, rng, record, step);
                }
            }
        });
        Console.WriteLine($"trained {last - start} steps{(start > 0 ? $" after step {start}" : "")} in {clock.Elapsed.TotalSeconds:F1} s on {seen.Count:N0} distinct strings");
        // A run that checkpoints ends with a training checkpoint, written before the held-out strings move the data
        // generator, so that --resume after the end has nothing left to do.
        if (checkpointEvery > 0) SaveCheckpoint(checkpoint, steps, model, optimizer, rng, record, last);
        if (plotPath is not null)
        {
            LossCurves.Write(plotPath, record, PlotTitle);
            Console.WriteLine($"saved loss curves {plotPath}");
        }
        if (record.HeldOut.Count > 0) Console.WriteLine($"best held-out loss {record.BestLoss:F4} at step {record.BestStep}: {bestPath}");

        // Held-out strings: never seen in training.
        var heldOut = new List<string>();
        while (heldOut.Count < 500)
        {
            string digits = RandomDigits(rng);
            if (!seen.Contains(digits)) heldOut.Add(digits);
        }
        model.Training = false;
        var source = new int[Reverser.SeqLen];
        var output = new int[Reverser.TargetSeqLen];
        int correct = 0, beamCorrect = 0;
        clock.Restart();
        for (int i = 0; i < heldOut.Count; i++)
        {
            string digits = heldOut[i];
            Encode(digits, source, default);
            int length = model.Translate(source, output);
            string decoded = Decode(output.AsSpan(0, length));
            string expected = Reverse(digits);
            if (decoded == expected) correct++;
            if (i < 100)
            {
                int beamLength = model.BeamSearch(source, output, beamWidth: 4);
                if (Decode(output.AsSpan(0, beamLength)) == expected) beamCorrect++;
            }
            if (i < 5) Console.WriteLine($"  {digits,-10} → {decoded,-10} {(decoded == expected ? "✓" : "✗ expected " + expected)}");
        }
        double exactMatch = (double)correct / heldOut.Count;
        Console.WriteLine($"held-out exact match, greedy: {correct}/{heldOut.Count}; beam search (width 4) on the first 100: {beamCorrect}/100; decoding took {clock.Elapsed.TotalSeconds:F1} s");

        if (checkpointEvery == 0) model.Save(checkpoint);
        // The trained model for ONNX Runtime and the other engines that read ONNX: the whole model, teacher-forced.
        string onnx = Path.Combine(Path.GetDirectoryName(checkpoint)!, "reverser.onnx");
        OnnxExportReport exported = model.SaveOnnx(onnx);
        Console.WriteLine($"saved {onnx} ({exported.Bytes:N0} bytes, opset {exported.Opset}): " +
            $"{string.Join(", ", exported.Inputs.Select(i => i.Name))} → {string.Join(", ", exported.Outputs.Select(o => o.Name))}");
        string png = Path.Combine(Path.GetDirectoryName(checkpoint)!, "cross_attention.png");
        SaveCrossAttention(model, heldOut[0], png);
        Console.WriteLine($"saved {checkpoint} and {png} (cross-attention of the last decoder layer, heads averaged, for {heldOut[0]}: rows = output positions, columns = input digits)");
        Console.WriteLine($"exact_match={exactMatch.ToString("F4", CultureInfo.InvariantCulture)}");
        return 0;
    }

    private const string StepsKey = "reverser.steps";

    private static void SaveCheckpoint(string path, int steps, Reverser model, AdamW optimizer, Rng rng, TrainingRecord record, long step)
    {
        var metadata = new Dictionary<string, string> { [StepsKey] = steps.ToString(CultureInfo.InvariantCulture) };
        record.WriteTo(metadata);
        TrainingCheckpoint.Save(path, model, optimizer, step, rng, metadata);
    }

    /// <summary>
    /// Mean teacher-forced loss, dropout off, over the same <see cref="EvaluationBatches"/> batches of strings at every call,
    /// drawn from a generator seeded apart from the training strings', which this leaves untouched.
    /// </summary>
    private static float HeldOutLoss(Reverser model, ulong seed)
    {
        var strings = new Rng(seed + 3);
        var tokens = new int[Reverser.TokensPerStep];
        var targets = new int[Reverser.TargetTokensPerStep];
        model.Training = false;
        double sum = 0;
        for (int i = 0; i < EvaluationBatches; i++)
        {
            for (int b = 0; b < Reverser.Batch; b++)
                Encode(RandomDigits(strings), tokens.AsSpan(b * Reverser.SeqLen, Reverser.SeqLen), targets.AsSpan(b * Reverser.TargetSeqLen, Reverser.TargetSeqLen));
            sum += model.Forward(tokens, targets);
        }
        model.Training = true;
        return (float)(sum / EvaluationBatches);
    }

    private const int EvaluationBatches = 8;

    private static readonly string PlotTitle = $"Reverser ({Reverser.ParameterCount:N0} parameters), reversing digit strings";

    /// <summary>
    /// Restores the run from <paramref name="path"/> and the set of strings it trained on (replayed from the seed, which
    /// must bring the data generator to the state the checkpoint holds); returns why it cannot, or null.
    /// </summary>
    private static string? Resume(string path, int steps, ulong seed, Reverser model, AdamW optimizer, Rng rng, HashSet<string> seen, ref TrainingRecord record, out long start)
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
        for (long i = 0; i < start * Reverser.Batch; i++) seen.Add(RandomDigits(replay));
        return replay.State == rng.State ? null : $"{path} is from a run with another --seed";
    }

    /// <summary>1 to 10 random digits, shorter strings as likely as longer ones.</summary>
    private static string RandomDigits(Rng rng)
    {
        int length = 1 + rng.NextInt(Reverser.SeqLen);
        var chars = new char[length];
        for (int i = 0; i < length; i++) chars[i] = (char)('0' + rng.NextInt(10));
        return new string(chars);
    }

    /// <summary>Source: the digits then padding; target: the digits reversed, the end token, then padding.</summary>
    private static void Encode(string digits, Span<int> source, Span<int> target)
    {
        source.Fill(Pad);
        for (int i = 0; i < digits.Length; i++) source[i] = Digit0 + digits[i] - '0';
        if (target.IsEmpty) return;
        target.Fill(Pad);
        for (int i = 0; i < digits.Length; i++) target[i] = Digit0 + digits[digits.Length - 1 - i] - '0';
        target[digits.Length] = Eos;
    }

    private static string Decode(ReadOnlySpan<int> ids)
    {
        var chars = new char[ids.Length];
        for (int i = 0; i < ids.Length; i++) chars[i] = ids[i] >= Digit0 ? (char)('0' + ids[i] - Digit0) : '?';
        return new string(chars);
    }

    private static string Reverse(string s)
    {
        char[] chars = s.ToCharArray();
        Array.Reverse(chars);
        return new string(chars);
    }

    /// <summary>Teacher-forces the example in batch row 0 and plots that row's cross-attention, averaged over heads.</summary>
    private static void SaveCrossAttention(Reverser model, string digits, string path)
    {
        var tokens = new int[Reverser.TokensPerStep];
        var targets = new int[Reverser.TargetTokensPerStep];
        Array.Fill(targets, -1);
        Encode(digits, tokens.AsSpan(0, Reverser.SeqLen), targets.AsSpan(0, Reverser.TargetSeqLen));
        model.Forward(tokens, targets);
        ReadOnlySpan<float> map = model.AttentionMap($"decoder.layers.{Reverser.Layers - 1}.cross_attention_probabilities");
        int rows = digits.Length + 1, cols = digits.Length; // output positions up to the end token; real input digits
        var values = new double[rows, cols];
        for (int h = 0; h < Reverser.Heads; h++)
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                    values[r, c] += map[(h * Reverser.TargetSeqLen + r) * Reverser.SeqLen + c] / Reverser.Heads;

        // Row 0 of the array is the heatmap's top row and cell (r, c) is centred on (c, rows - 1 - r): the first output
        // position at the top, the input digits left to right, each axis labelled with the digits themselves.
        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(values);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        plot.Add.ColorBar(heatmap).Label = "attention (heads averaged)";
        string reversed = Reverse(digits);
        double[] columns = Enumerable.Range(0, cols).Select(c => (double)c).ToArray();
        double[] outputs = Enumerable.Range(0, rows).Select(r => (double)(rows - 1 - r)).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(columns, digits.Select(d => d.ToString()).ToArray());
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(outputs, reversed.Select(d => d.ToString()).Append("end").ToArray());
        plot.XLabel("input digit");
        plot.YLabel("output position (expected token)");
        plot.Title($"cross-attention, last decoder layer: {digits} → {reversed}");
        LossCurves.SaveAtomically(plot, path, 120 + 48 * cols + 160, 120 + 48 * rows);
    }
}
