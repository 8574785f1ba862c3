using System;
using Xunit;

namespace TransformerGen.Tests.Training;

public sealed class ScheduleTests
{
    private static void AssertRate(double expected, float actual) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-6 * Math.Abs(expected) + 1e-12, $"expected {expected}, got {actual}");

    [Fact]
    public void ConstantIsConstant()
    {
        var schedule = new ConstantSchedule(3e-4f);
        Assert.Equal(3e-4f, schedule.At(1));
        Assert.Equal(3e-4f, schedule.At(1_000_000));
    }

    [Theory]
    [InlineData(1, 0.1)]
    [InlineData(10, 0.1)]
    [InlineData(11, 0.05)]
    [InlineData(20, 0.05)]
    [InlineData(21, 0.025)]
    [InlineData(101, 0.1 / 1024)]
    public void StepDecayMultipliesByGammaEveryStepSizeSteps(long step, double expected) =>
        AssertRate(expected, new StepDecaySchedule(0.1f, 10, 0.5f).At(step));

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(11)]
    [InlineData(500)]
    public void ExponentialDecayIsLrTimesGammaToTheStepsBefore(long step) =>
        AssertRate(0.1f * Math.Pow(0.9f, step - 1), new ExponentialDecaySchedule(0.1f, 0.9f).At(step));

    [Theory]
    [InlineData(1, 1e-4)]        // peak · 1/10
    [InlineData(5, 5e-4)]
    [InlineData(10, 1e-3)]       // the peak, at the end of warm-up
    [InlineData(60, 5.5e-4)]     // half-way: min + (peak − min)/2
    [InlineData(110, 1e-4)]      // the floor at totalSteps
    [InlineData(5000, 1e-4)]     // and after
    public void WarmupCosineFollowsItsFormula(long step, double expected) =>
        AssertRate(expected, new WarmupCosineSchedule(1e-3f, 10, 110, 1e-4f).At(step));

    [Fact]
    public void WarmupCosineMatchesTheCosineFormulaAndDecreasesAfterWarmup()
    {
        var schedule = new WarmupCosineSchedule(6e-4f, 100, 1000, 6e-5f);
        float previous = float.PositiveInfinity;
        for (long step = 100; step <= 1000; step += 7)
        {
            double progress = (step - 100) / 900.0;
            AssertRate(6e-5f + 0.5 * (6e-4f - 6e-5f) * (1 + Math.Cos(Math.PI * progress)), schedule.At(step));
            Assert.True(schedule.At(step) <= previous);
            previous = schedule.At(step);
        }
        Assert.Equal(6e-4f, new WarmupCosineSchedule(6e-4f, 0, 1000).At(1), 6); // no warm-up: starts near the peak
    }

    [Fact]
    public void NoamPeaksAtTheWarmupStep()
    {
        var schedule = new NoamSchedule(dModel: 512, warmupSteps: 4000);
        double peak = Math.Pow(512, -0.5) * Math.Pow(4000, -0.5);
        AssertRate(peak, schedule.At(4000));
        Assert.True(schedule.At(3999) < schedule.At(4000));
        Assert.True(schedule.At(4001) < schedule.At(4000));
        AssertRate(Math.Pow(512, -0.5) * 1 * Math.Pow(4000, -1.5), schedule.At(1));
        AssertRate(Math.Pow(512, -0.5) * 2000 * Math.Pow(4000, -1.5), schedule.At(2000));
        AssertRate(Math.Pow(512, -0.5) / Math.Sqrt(16000), schedule.At(16000));
        AssertRate(2 * peak, new NoamSchedule(512, 4000, factor: 2f).At(4000));
    }

    [Fact]
    public void StepsAreCountedFromOne()
    {
        ILearningRateSchedule[] schedules =
        [
            new ConstantSchedule(1f), new StepDecaySchedule(1f, 2, 0.5f), new ExponentialDecaySchedule(1f, 0.5f),
            new WarmupCosineSchedule(1f, 2, 4), new NoamSchedule(16, 2),
        ];
        foreach (ILearningRateSchedule schedule in schedules)
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => schedule.At(0));
            Assert.Throws<ArgumentOutOfRangeException>(() => schedule.At(-5));
        }
    }

    [Fact]
    public void RejectsInvalidArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ConstantSchedule(-1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ConstantSchedule(float.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => new StepDecaySchedule(0.1f, 0, 0.5f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new StepDecaySchedule(0.1f, 10, -0.5f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ExponentialDecaySchedule(0.1f, float.PositiveInfinity));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WarmupCosineSchedule(1f, -1, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WarmupCosineSchedule(1f, 20, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WarmupCosineSchedule(1f, 2, 10, minLearningRate: 2f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NoamSchedule(0, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NoamSchedule(16, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NoamSchedule(16, 10, factor: 0f));
    }

    [Fact]
    public void LookupsAllocateNothing()
    {
        ILearningRateSchedule[] schedules =
        [
            new ConstantSchedule(1f), new StepDecaySchedule(1f, 2, 0.5f), new ExponentialDecaySchedule(1f, 0.5f),
            new WarmupCosineSchedule(1f, 20, 400), new NoamSchedule(16, 20),
        ];
        float sink = 0;
        long step = 0;
        long bytes = Allocations.Measure(() =>
        {
            step++;
            foreach (ILearningRateSchedule schedule in schedules) sink += schedule.At(step);
        }, iterations: 500);
        Assert.Equal(0, bytes);
        Assert.True(sink > 0);
    }
}
