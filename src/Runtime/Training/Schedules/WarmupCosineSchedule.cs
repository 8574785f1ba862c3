using System;

namespace TransformerGen;

/// <summary>
/// Linear warm-up to a peak rate, then a half cosine down to a floor, then the floor.
/// </summary>
/// <remarks>
/// <para>With W = warmupSteps and T = totalSteps:</para>
/// <code>
/// step ≤ W:      peak · step / W                                  (peak/W at step 1, peak at step W)
/// W &lt; step ≤ T:  min + ½·(peak − min)·(1 + cos(π·(step − W)/(T − W)))   (min at step T)
/// step &gt; T:      min
/// </code>
/// <para>The cosine part is SGDR's annealing without restarts (Loshchilov and Hutter, "SGDR: Stochastic
/// Gradient Descent with Warm Restarts", ICLR 2017, eq. 5); warm-up followed by cosine decay is the
/// recipe of GPT-3 (Brown et al. 2020, appendix B) as coded in nanoGPT's and llm.c's <c>get_lr</c>.</para>
/// </remarks>
public sealed class WarmupCosineSchedule : ILearningRateSchedule
{
    /// <summary>Creates the schedule.</summary>
    /// <param name="peakLearningRate">The rate at the end of warm-up, finite and at least 0.</param>
    /// <param name="warmupSteps">Steps of linear warm-up, at least 0 (0: start at the peak).</param>
    /// <param name="totalSteps">The step at which the rate reaches <paramref name="minLearningRate"/>; at least <paramref name="warmupSteps"/>.</param>
    /// <param name="minLearningRate">The floor, in [0, <paramref name="peakLearningRate"/>].</param>
    public WarmupCosineSchedule(float peakLearningRate, long warmupSteps, long totalSteps, float minLearningRate = 0f)
    {
        ScheduleArguments.RequireRate(peakLearningRate, nameof(peakLearningRate));
        ScheduleArguments.RequireRate(minLearningRate, nameof(minLearningRate));
        if (warmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, "warmupSteps must be at least 0");
        if (totalSteps < warmupSteps) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, $"totalSteps must be at least warmupSteps ({warmupSteps})");
        if (minLearningRate > peakLearningRate) throw new ArgumentOutOfRangeException(nameof(minLearningRate), minLearningRate, $"minLearningRate must not exceed peakLearningRate ({peakLearningRate})");
        PeakLearningRate = peakLearningRate;
        WarmupSteps = warmupSteps;
        TotalSteps = totalSteps;
        MinLearningRate = minLearningRate;
    }

    /// <summary>The rate at the end of warm-up.</summary>
    public float PeakLearningRate { get; }

    /// <summary>Steps of linear warm-up.</summary>
    public long WarmupSteps { get; }

    /// <summary>The step at which the floor is reached.</summary>
    public long TotalSteps { get; }

    /// <summary>The floor.</summary>
    public float MinLearningRate { get; }

    /// <inheritdoc />
    public float At(long step)
    {
        ScheduleArguments.RequireStep(step);
        if (step <= WarmupSteps) return (float)((double)PeakLearningRate * step / WarmupSteps);
        if (step >= TotalSteps) return MinLearningRate;
        double progress = (double)(step - WarmupSteps) / (TotalSteps - WarmupSteps);
        return (float)(MinLearningRate + 0.5 * ((double)PeakLearningRate - MinLearningRate) * (1.0 + Math.Cos(Math.PI * progress)));
    }
}
