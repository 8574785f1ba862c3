using System;

namespace TransformerGen;

/// <summary>The rate multiplied by <c>gamma</c> every step: <c>lr · gamma^(step − 1)</c>.</summary>
/// <remarks>
/// PyTorch's <c>torch.optim.lr_scheduler.ExponentialLR</c> (<c>lr · gamma^last_epoch</c>) stepped once per
/// optimizer step, so the first step uses <c>lr</c> itself.
/// </remarks>
public sealed class ExponentialDecaySchedule : ILearningRateSchedule
{
    /// <summary>Creates the schedule.</summary>
    /// <param name="learningRate">The rate of the first step, finite and at least 0.</param>
    /// <param name="gamma">The factor per step, finite and at least 0 (usually just below 1).</param>
    public ExponentialDecaySchedule(float learningRate, float gamma)
    {
        ScheduleArguments.RequireRate(learningRate, nameof(learningRate));
        TrainingArguments.RequireFiniteNonNegative(gamma, nameof(gamma), "gamma");
        LearningRate = learningRate;
        Gamma = gamma;
    }

    /// <summary>The rate of the first step.</summary>
    public float LearningRate { get; }

    /// <summary>The factor per step.</summary>
    public float Gamma { get; }

    /// <inheritdoc />
    public float At(long step)
    {
        ScheduleArguments.RequireStep(step);
        return (float)(LearningRate * Math.Pow(Gamma, step - 1));
    }
}
