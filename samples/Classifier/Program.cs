using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
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
        int steps = 3000;
        ulong seed = 1;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--steps" when i + 1 < args.Length: steps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--seed" when i + 1 < args.Length: seed = ulong.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]}; usage: Classifier [--steps N] [--seed S]");
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
        var clock = Stopwatch.StartNew();
        for (int step = 1; step <= steps; step++)
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
        }
        Console.WriteLine($"trained {steps} steps in {clock.Elapsed.TotalSeconds:F1} s on {seen.Count:N0} distinct strings");

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
