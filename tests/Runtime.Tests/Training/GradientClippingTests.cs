using System;
using Xunit;

namespace TransformerGen.Tests.Training;

public sealed class GradientClippingTests
{
    private static double Norm(ReadOnlySpan<float> values)
    {
        double sum = 0;
        foreach (float v in values) sum += (double)v * v;
        return Math.Sqrt(sum);
    }

    [Fact]
    public void ScalesToMaxNormAndReturnsTheNormBefore()
    {
        float[] g = [3f, 4f];
        float norm = GradientClipping.ClipByGlobalNorm(g, 1f);
        Assert.Equal(5f, norm);
        Assert.Equal(1.0, Norm(g), 5);
        Assert.Equal(0.6f, g[0], 5);
        Assert.Equal(0.8f, g[1], 5);
    }

    [Theory]
    [InlineData(37)]
    [InlineData(1003)]
    public void ClipsLargeBuffersToMaxNorm(int length)
    {
        var rng = new Rng(5);
        var g = new float[length];
        for (int i = 0; i < length; i++) g[i] = rng.NextNormal();
        double before = Norm(g);
        float[] original = (float[])g.Clone();

        float norm = GradientClipping.ClipByGlobalNorm(g, 0.5f);
        Assert.Equal(before, norm, 1e-4 * before);
        Assert.Equal(0.5, Norm(g), 1e-5);
        double coefficient = 0.5 / (before + 1e-6); // PyTorch's clip_coef
        for (int i = 0; i < length; i++) Assert.Equal(original[i] * coefficient, g[i], 1e-6);
    }

    [Fact]
    public void LeavesGradientsBelowMaxNormUntouched()
    {
        float[] g = [0.3f, -0.4f, 0f];
        float norm = GradientClipping.ClipByGlobalNorm(g, 1f);
        Assert.Equal(0.5f, norm, 6);
        Assert.Equal([0.3f, -0.4f, 0f], g);
        Assert.Equal(0f, GradientClipping.ClipByGlobalNorm([], 1f));
    }

    [Fact]
    public void NonFiniteNormIsReturnedAndGradientsAreLeftAlone()
    {
        float[] withNaN = [1f, float.NaN, 3f];
        Assert.True(float.IsNaN(GradientClipping.ClipByGlobalNorm(withNaN, 1f)));
        Assert.Equal(3f, withNaN[2]);

        float[] withInfinity = [1f, float.PositiveInfinity, 3f];
        Assert.Equal(float.PositiveInfinity, GradientClipping.ClipByGlobalNorm(withInfinity, 1f));
        Assert.Equal([1f, float.PositiveInfinity, 3f], withInfinity);
    }

    [Fact]
    public void HugeValuesDoNotOverflowTheNorm()
    {
        float[] g = [3e30f, 4e30f];
        Assert.Equal(5e30f, GradientClipping.ClipByGlobalNorm(g, 1f), 1e25f);
        Assert.Equal(1.0, Norm(g), 5);
    }

    [Fact]
    public void RejectsInvalidMaxNorm()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipByGlobalNorm(new float[2], -1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipByGlobalNorm(new float[2], float.NaN));
    }

    [Fact]
    public void ClippingAllocatesNothing()
    {
        var g = new float[1003];
        var rng = new Rng(9);
        for (int i = 0; i < g.Length; i++) g[i] = rng.NextNormal();
        Assert.Equal(0, Allocations.Measure(() => GradientClipping.ClipByGlobalNorm(g, 0.5f)));
    }
}
