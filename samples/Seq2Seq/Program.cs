using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using TransformerGen;

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
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        int steps = 5000, checkpointEvery = 0;
        ulong seed = 1;
        string outFolder = "out";
        bool resume = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--steps" when i + 1 < args.Length: steps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--seed" when i + 1 < args.Length: seed = ulong.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--out" when i + 1 < args.Length: outFolder = args[++i]; break;
                case "--checkpoint-every" when i + 1 < args.Length: checkpointEvery = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--resume": resume = true; break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]}; usage: Seq2Seq [--steps N] [--seed S] [--out FOLDER] [--checkpoint-every N] [--resume]");
                    return 2;
            }
        }

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

        var model = new Reverser(seed);
        Console.WriteLine($"model: Reverser, {Reverser.ParameterCount:N0} parameters, encoder–decoder, {Reverser.Layers}+{Reverser.Layers} layers, DModel {Reverser.DModel}");
        var schedule = new NoamSchedule(Reverser.DModel, warmupSteps: 400, factor: 1f);
        var optimizer = new AdamW(model, learningRate: schedule.At(1), beta1: 0.9f, beta2: 0.98f, eps: 1e-9f, weightDecay: 0f); // the paper's Adam settings
        var rng = new Rng(seed + 1);
        var seen = new HashSet<string>();
        var tokens = new int[Reverser.TokensPerStep];
        var targets = new int[Reverser.TargetTokensPerStep];
        long start = 0;
        if (resume && File.Exists(checkpoint))
        {
            string? refusal = Resume(checkpoint, steps, seed, model, optimizer, rng, seen, out start);
            if (refusal is not null)
            {
                Console.Error.WriteLine($"--resume: {refusal}");
                return 2;
            }
            Console.WriteLine($"resuming from step {start} of {steps} ({checkpoint})");
        }
        var clock = Stopwatch.StartNew();
        float loss = 0;
        for (long step = start + 1; step <= steps; step++)
        {
            for (int b = 0; b < Reverser.Batch; b++)
            {
                string digits = RandomDigits(rng);
                seen.Add(digits);
                Encode(digits, tokens.AsSpan(b * Reverser.SeqLen, Reverser.SeqLen), targets.AsSpan(b * Reverser.TargetSeqLen, Reverser.TargetSeqLen));
            }
            optimizer.LearningRate = schedule.At(step);
            loss = model.TrainStep(tokens, targets, optimizer, maxGradientNorm: 1f);
            if (step == 1 || step % 100 == 0)
                Console.WriteLine($"step {step,5}/{steps}  loss {loss:F3}  lr {optimizer.LearningRate:E2}  {clock.Elapsed.TotalSeconds:F1} s");
            if (checkpointEvery > 0 && step % checkpointEvery == 0 && step < steps)
            {
                Console.WriteLine($"writing checkpoint at step {step} to {checkpoint}");
                SaveCheckpoint(checkpoint, steps, model, optimizer, rng, step);
            }
        }
        Console.WriteLine($"trained {steps - start} steps{(start > 0 ? $" after step {start}" : "")} in {clock.Elapsed.TotalSeconds:F1} s on {seen.Count:N0} distinct strings");
        // A run that checkpoints ends with a training checkpoint, written before the held-out strings move the data
        // generator, so that --resume after the end has nothing left to do.
        if (checkpointEvery > 0) SaveCheckpoint(checkpoint, steps, model, optimizer, rng, steps);

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
        string png = Path.Combine(Path.GetDirectoryName(checkpoint)!, "cross_attention.png");
        SaveCrossAttention(model, heldOut[0], png);
        Console.WriteLine($"saved {checkpoint} and {png} (cross-attention of the last decoder layer, heads averaged, for {heldOut[0]}: rows = output positions, columns = input digits)");
        Console.WriteLine($"exact_match={exactMatch.ToString("F4", CultureInfo.InvariantCulture)}");
        return 0;
    }

    private const string StepsKey = "reverser.steps";

    private static void SaveCheckpoint(string path, int steps, Reverser model, AdamW optimizer, Rng rng, long step) =>
        TrainingCheckpoint.Save(path, model, optimizer, step, rng, new Dictionary<string, string> { [StepsKey] = steps.ToString(CultureInfo.InvariantCulture) });

    /// <summary>
    /// Restores the run from <paramref name="path"/> and the set of strings it trained on (replayed from the seed, which
    /// must bring the data generator to the state the checkpoint holds); returns why it cannot, or null.
    /// </summary>
    private static string? Resume(string path, int steps, ulong seed, Reverser model, AdamW optimizer, Rng rng, HashSet<string> seen, out long start)
    {
        start = 0;
        if (!TrainingCheckpoint.IsTrainingCheckpoint(path))
            return $"{path} holds a model's parameters only (it was saved without --checkpoint-every), so training cannot continue from it";
        string written = SafeTensors.ReadMetadata(path).GetValueOrDefault(StepsKey, "?");
        if (written != steps.ToString(CultureInfo.InvariantCulture))
            return $"{path} is from a run of --steps {written}; resume with the same --steps";
        start = TrainingCheckpoint.Load(path, model, optimizer, rng).Step;
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
        var values = new float[rows, cols];
        for (int h = 0; h < Reverser.Heads; h++)
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                    values[r, c] += map[(h * Reverser.TargetSeqLen + r) * Reverser.SeqLen + c] / Reverser.Heads;
        Png.WriteHeatMap(path, values, cell: 24);
    }
}
