using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace TransformerGen.Samples;

/// <summary>
/// What a training run has seen so far: the training-loss and held-out-loss curves, the best held-out loss and its step,
/// and how many evaluations have passed without improving on it (for early stopping). It travels in a training
/// checkpoint's metadata, so a resumed run keeps its best-so-far, its patience count and its curves; the samples
/// TinyLm, Seq2Seq and Classifier share this file.
/// </summary>
public sealed class TrainingRecord
{
    private const string TrainCurveKey = "run.curve.train", HeldOutCurveKey = "run.curve.held_out",
        BestLossKey = "run.best.loss", BestStepKey = "run.best.step", SinceBestKey = "run.best.evaluations_since";

    private readonly List<(long Step, float Loss)> _train = [], _heldOut = [];

    /// <summary>Points of the training-loss curve: the step and the loss reported there.</summary>
    public IReadOnlyList<(long Step, float Loss)> Train => _train;

    /// <summary>Each held-out evaluation: the step and the held-out loss.</summary>
    public IReadOnlyList<(long Step, float Loss)> HeldOut => _heldOut;

    /// <summary>The lowest held-out loss so far (infinity before the first evaluation).</summary>
    public float BestLoss { get; private set; } = float.PositiveInfinity;

    /// <summary>The step of <see cref="BestLoss"/> (0 before the first evaluation).</summary>
    public long BestStep { get; private set; }

    /// <summary>Evaluations since the one that set <see cref="BestLoss"/>.</summary>
    public int EvaluationsSinceBest { get; private set; }

    /// <summary>Adds a point to the training curve.</summary>
    public void AddTrainLoss(long step, float loss) => _train.Add((step, loss));

    /// <summary>Records a held-out evaluation; returns true when it is the best so far (strictly lower than every earlier one).</summary>
    public bool AddHeldOutLoss(long step, float loss)
    {
        _heldOut.Add((step, loss));
        if (loss < BestLoss)
        {
            BestLoss = loss;
            BestStep = step;
            EvaluationsSinceBest = 0;
            return true;
        }
        EvaluationsSinceBest++;
        return false;
    }

    /// <summary>True when early stopping with <paramref name="patience"/> evaluations (0: never) says to stop.</summary>
    public bool ShouldStop(int patience) => patience > 0 && EvaluationsSinceBest >= patience;

    /// <summary>Writes the record into a checkpoint's metadata (floats in round-trip form, so a resumed run compares exactly).</summary>
    public void WriteTo(IDictionary<string, string> metadata)
    {
        metadata[TrainCurveKey] = Format(_train);
        metadata[HeldOutCurveKey] = Format(_heldOut);
        metadata[BestLossKey] = BestLoss.ToString("R", CultureInfo.InvariantCulture);
        metadata[BestStepKey] = BestStep.ToString(CultureInfo.InvariantCulture);
        metadata[SinceBestKey] = EvaluationsSinceBest.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>The record a checkpoint's metadata holds; an empty record for a checkpoint written without one.</summary>
    /// <exception cref="InvalidDataException">An entry is there but does not parse.</exception>
    public static TrainingRecord ReadFrom(IReadOnlyDictionary<string, string> metadata)
    {
        var record = new TrainingRecord();
        if (!metadata.ContainsKey(BestLossKey)) return record;
        try
        {
            record._train.AddRange(ParseCurve(metadata.GetValueOrDefault(TrainCurveKey, "")));
            record._heldOut.AddRange(ParseCurve(metadata.GetValueOrDefault(HeldOutCurveKey, "")));
            record.BestLoss = float.Parse(metadata[BestLossKey], CultureInfo.InvariantCulture);
            record.BestStep = long.Parse(metadata[BestStepKey], CultureInfo.InvariantCulture);
            record.EvaluationsSinceBest = int.Parse(metadata[SinceBestKey], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is FormatException or KeyNotFoundException or OverflowException)
        {
            throw new InvalidDataException($"the checkpoint's training record (run.*) is damaged: {e.Message}", e);
        }
        return record;
    }

    /// <summary>Where the best checkpoint goes beside <paramref name="outPath"/>: <c>model.safetensors</c> → <c>model.best.safetensors</c>.</summary>
    public static string BestPath(string outPath) =>
        Path.Combine(Path.GetDirectoryName(outPath) ?? "", Path.GetFileNameWithoutExtension(outPath) + ".best" + Path.GetExtension(outPath));

    private static string Format(List<(long Step, float Loss)> curve) =>
        string.Join(" ", curve.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Step}:{p.Loss:R}")));

    private static IEnumerable<(long, float)> ParseCurve(string text)
    {
        foreach (string point in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            int colon = point.IndexOf(':');
            if (colon < 0) throw new FormatException($"'{point}' is not step:loss");
            yield return (long.Parse(point.AsSpan(0, colon), CultureInfo.InvariantCulture), float.Parse(point.AsSpan(colon + 1), CultureInfo.InvariantCulture));
        }
    }
}
