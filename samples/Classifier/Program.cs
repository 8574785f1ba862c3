using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Text;
using TransformerGen;

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
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        int steps = 3000, checkpointEvery = 0;
        ulong seed = 1;
        string? outPath = null;
        bool resume = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--steps" when i + 1 < args.Length: steps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--seed" when i + 1 < args.Length: seed = ulong.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--out" when i + 1 < args.Length: outPath = args[++i]; break;
                case "--checkpoint-every" when i + 1 < args.Length: checkpointEvery = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--resume": resume = true; break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]}; usage: Classifier [--steps N] [--seed S] [--out FILE|FOLDER] [--checkpoint-every N] [--resume]");
                    return 2;
            }
        }
        if ((checkpointEvery > 0 || resume) && outPath is null)
        {
            Console.Error.WriteLine("--checkpoint-every and --resume need --out, the checkpoint's path");
            return 2;
        }

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

        var model = new BracketClassifier(seed);
        Console.WriteLine($"model: BracketClassifier, {BracketClassifier.ParameterCount:N0} parameters, encoder-only, {BracketClassifier.Layers} layers, DModel {BracketClassifier.DModel}");
        var optimizer = new AdamW(model, learningRate: 1e-3f, weightDecay: 0.01f, decayVectors: false);
        var schedule = new WarmupCosineSchedule(1e-3f, warmupSteps: 100, totalSteps: steps, minLearningRate: 1e-4f);
        var rng = new Rng(seed + 1);
        var seen = new HashSet<string>();
        var tokens = new int[BracketClassifier.TokensPerStep];
        var labels = new int[BracketClassifier.Batch];
        long start = 0;
        if (resume && File.Exists(outPath))
        {
            string? refusal = Resume(outPath!, steps, seed, model, optimizer, rng, seen, out start);
            if (refusal is not null)
            {
                Console.Error.WriteLine($"--resume: {refusal}");
                return 2;
            }
            Console.WriteLine($"resuming from step {start} of {steps} ({outPath})");
        }
        var clock = Stopwatch.StartNew();
        for (long step = start + 1; step <= steps; step++)
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
            if (step == 1 || step % 200 == 0)
                Console.WriteLine($"step {step,5}/{steps}  loss {loss:F4}  {clock.Elapsed.TotalSeconds:F1} s");
            if (checkpointEvery > 0 && step % checkpointEvery == 0 && step < steps)
            {
                Console.WriteLine($"writing checkpoint at step {step} to {outPath}");
                SaveCheckpoint(outPath!, steps, model, optimizer, rng, step);
            }
        }
        Console.WriteLine($"trained {steps - start} steps{(start > 0 ? $" after step {start}" : "")} in {clock.Elapsed.TotalSeconds:F1} s on {seen.Count:N0} distinct strings");
        // Saved before the held-out strings move the data generator; a run that checkpoints saves a training checkpoint,
        // so that --resume after the end has nothing left to do.
        if (outPath is not null)
        {
            if (checkpointEvery > 0) SaveCheckpoint(outPath, steps, model, optimizer, rng, steps);
            else model.Save(outPath);
            Console.WriteLine($"saved {outPath}");
        }

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

    private static void SaveCheckpoint(string path, int steps, BracketClassifier model, AdamW optimizer, Rng rng, long step) =>
        TrainingCheckpoint.Save(path, model, optimizer, step, rng, new Dictionary<string, string> { [StepsKey] = steps.ToString(CultureInfo.InvariantCulture) });

    /// <summary>
    /// Restores the run from <paramref name="path"/> and the set of strings it trained on (replayed from the seed, which
    /// must bring the data generator to the state the checkpoint holds); returns why it cannot, or null.
    /// </summary>
    private static string? Resume(string path, int steps, ulong seed, BracketClassifier model, AdamW optimizer, Rng rng, HashSet<string> seen, out long start)
    {
        start = 0;
        if (!TrainingCheckpoint.IsTrainingCheckpoint(path))
            return $"{path} holds a model's parameters only (it was saved without --checkpoint-every), so training cannot continue from it";
        string written = SafeTensors.ReadMetadata(path).GetValueOrDefault(StepsKey, "?");
        if (written != steps.ToString(CultureInfo.InvariantCulture))
            return $"{path} is from a run of --steps {written}; resume with the same --steps";
        start = TrainingCheckpoint.Load(path, model, optimizer, rng).Step;
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
