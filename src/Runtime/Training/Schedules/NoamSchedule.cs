using System;

namespace TransformerGen;

/// <summary>
/// The schedule of "Attention Is All You Need" (Vaswani et al. 2017, §5.3, eq. 3):
/// <c>factor · d_model^−0.5 · min(step^−0.5, step · warmup^−1.5)</c>.
/// </summary>
/// <remarks>
/// The rate grows linearly for <c>warmupSteps</c> steps, peaks at <c>step = warmupSteps</c> with
/// <c>factor · (d_model · warmup)^−0.5</c>, then decays as the inverse square root of the step.
/// The name and the <c>factor</c> follow "The Annotated Transformer" (Rush 2018).
/// </remarks>
public sealed class NoamSchedule : ILearningRateSchedule
{
    private readonly double _scale;
    private readonly double _warmupPowMinus1_5;

    /// <summary>Creates the schedule.</summary>
    /// <param name="dModel">The model width d_model, at least 1.</param>
    /// <param name="warmupSteps">Steps of warm-up, at least 1 (the paper uses 4000).</param>
    /// <param name="factor">An overall factor, finite and above 0.</param>
    public NoamSchedule(int dModel, long warmupSteps, float factor = 1f)
    {
        if (dModel < 1) throw new ArgumentOutOfRangeException(nameof(dModel), dModel, "dModel must be at least 1");
        if (warmupSteps < 1) throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, "warmupSteps must be at least 1");
        if (!(factor > 0f) || float.IsPositiveInfinity(factor)) throw new ArgumentOutOfRangeException(nameof(factor), factor, "factor must be finite and above 0");
        DModel = dModel;
        WarmupSteps = warmupSteps;
        Factor = factor;
        _scale = factor / Math.Sqrt(dModel);
        _warmupPowMinus1_5 = Math.Pow(warmupSteps, -1.5);
    }

    /// <summary>The model width d_model.</summary>
    public int DModel { get; }

    /// <summary>Steps of warm-up; the rate peaks at this step.</summary>
    public long WarmupSteps { get; }

    /// <summary>The overall factor.</summary>
    public float Factor { get; }

    /// <inheritdoc />
    public float At(long step)
    {
        ScheduleArguments.RequireStep(step);
        return (float)(_scale * Math.Min(1.0 / Math.Sqrt(step), step * _warmupPowMinus1_5));
    }
}
