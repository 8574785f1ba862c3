using System;
using System.Diagnostics.CodeAnalysis;

namespace TransformerGen;

/// <summary>A learning rate as a function of the optimizer step.</summary>
/// <remarks>
/// Steps are counted from 1: <c>At(1)</c> is the rate for the first <see cref="IOptimizer.Step"/>, so a
/// training loop writes <c>optimizer.LearningRate = schedule.At(optimizer.StepCount + 1)</c> before each
/// step. (A PyTorch scheduler whose <c>scheduler.step()</c> is called after every <c>optimizer.step()</c>
/// uses <c>last_epoch = step − 1</c> for step <c>step</c>; the schedules here say where that matters.)
/// <see cref="At"/> allocates nothing.
/// </remarks>
public interface ILearningRateSchedule
{
    /// <summary>The learning rate for optimizer step <paramref name="step"/> (1 for the first step).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="step"/> is below 1.</exception>
    float At(long step);
}

/// <summary>Argument checks shared by the schedules.</summary>
internal static class ScheduleArguments
{
    public static void RequireStep(long step)
    {
        if (step < 1) ThrowStep(step);
    }

    [DoesNotReturn]
    private static void ThrowStep(long step) =>
        throw new ArgumentOutOfRangeException(nameof(step), step, "steps are counted from 1 (the first optimizer step)");

    public static void RequireRate(float value, string name) => TrainingArguments.RequireFiniteNonNegative(value, name, "a learning rate");
}
