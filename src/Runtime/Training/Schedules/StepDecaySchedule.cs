using System;

namespace TransformerGen;

/// <summary>
/// The rate multiplied by <c>gamma</c> every <c>stepSize</c> steps:
/// <c>lr · gamma^⌊(step − 1) / stepSize⌋</c>.
/// </summary>
/// <remarks>
/// PyTorch's <c>torch.optim.lr_scheduler.StepLR</c> (<c>lr · gamma^⌊last_epoch / step_size⌋</c>) stepped
/// once per optimizer step: optimizer step <c>step</c> runs with <c>last_epoch = step − 1</c>, so steps
/// 1 … stepSize use <c>lr</c>, the next stepSize use <c>lr·gamma</c>, and so on.
/// </remarks>
public sealed class StepDecaySchedule : ILearningRateSchedule
{
    /// <summary>Creates the schedule.</summary>
    /// <param name="learningRate">The initial rate, finite and at least 0.</param>
    /// <param name="stepSize">Steps between decays, at least 1.</param>
    /// <param name="gamma">The factor applied at each decay, finite and at least 0.</param>
    public StepDecaySchedule(float learningRate, long stepSize, float gamma)
    {
        ScheduleArguments.RequireRate(learningRate, nameof(learningRate));
        if (stepSize < 1) throw new ArgumentOutOfRangeException(nameof(stepSize), stepSize, "stepSize must be at least 1");
        TrainingArguments.RequireFiniteNonNegative(gamma, nameof(gamma), "gamma");
        LearningRate = learningRate;
        StepSize = stepSize;
        Gamma = gamma;
    }

    /// <summary>The initial rate.</summary>
    public float LearningRate { get; }

    /// <summary>Steps between decays.</summary>
    public long StepSize { get; }

    /// <summary>The factor applied at each decay.</summary>
    public float Gamma { get; }

    /// <inheritdoc />
    public float At(long step)
    {
        ScheduleArguments.RequireStep(step);
        return (float)(LearningRate * Math.Pow(Gamma, (step - 1) / StepSize));
    }
}
