using System;
using Xunit;

namespace TransformerGen.EmbeddingServer.Tests.Support;

/// <summary>Comparisons of model outputs.</summary>
public static class Close
{
    /// <summary>Largest |a − b| over the largest |b|.</summary>
    public static double RelativeMax(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(b.Length, a.Length);
        double worst = 0, largest = 0;
        for (int i = 0; i < a.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(a[i] - b[i]));
            largest = Math.Max(largest, Math.Abs(b[i]));
        }
        Assert.True(largest > 0, "the reference is all zeros");
        return worst / largest;
    }

    /// <summary>Asserts a score within 1e-5 of <paramref name="expected"/> (relative above 1 in magnitude).</summary>
    public static void Score(float expected, float actual, string what)
    {
        double error = Math.Abs(actual - expected) / Math.Max(1, Math.Abs(expected));
        Assert.True(error <= 1e-5, $"{what}: {actual} against {expected} alone, {error:E2} apart");
    }

    /// <summary>Asserts <paramref name="actual"/> within 1e-5 of <paramref name="expected"/>'s largest value.</summary>
    public static void Equal(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        double error = RelativeMax(actual, expected);
        Assert.True(error <= 1e-5, $"{what}: {error:E2} of the largest value apart");
    }
}
