using System;
using Xunit;

namespace TransformerGen.Tests.Kernels;

/// <summary>
/// Central finite differences for the backward kernels. A test builds a scalar L = Σ g ⊙ y (in double) from a fresh
/// forward, with g a random upstream gradient, and compares the analytic gradient of each tensor with
/// (L(θ+h) − L(θ−h)) / 2h taken element by element.
/// </summary>
/// <remarks>
/// Tolerance: relative error ‖a − n‖ / max(‖a‖, ‖n‖) &lt; 1e-2 per tensor. The forward runs in float, so each L carries
/// rounding of about 1e-7 relative per term; divided by 2h = 2e-2 that is ~1e-5 noise per element, and the O(h²)
/// truncation error of central differences is ~1e-4 for these smooth functions. Observed errors are 2e-7…3e-4;
/// 1e-2 leaves room for that noise while any wrong or missing term (which gives an O(1) relative error, or a factor
/// of 2 for a broken accumulation) still fails.
/// </remarks>
internal static class GradientCheck
{
    public const double Tolerance = 1e-2;
    public const float Step = 1e-2f;

    /// <summary>The numeric gradient of <paramref name="loss"/> with respect to every element of <paramref name="parameter"/>.</summary>
    public static double[] Numeric(float[] parameter, Func<double> loss, float h = Step)
    {
        var gradient = new double[parameter.Length];
        for (int i = 0; i < parameter.Length; i++)
        {
            float saved = parameter[i];
            float plus = saved + h, minus = saved - h;
            parameter[i] = plus;
            double lossPlus = loss();
            parameter[i] = minus;
            double lossMinus = loss();
            parameter[i] = saved;
            // Divide by the step the floats actually took, not by the nominal 2h.
            gradient[i] = (lossPlus - lossMinus) / ((double)plus - minus);
        }
        return gradient;
    }

    /// <summary>Asserts the relative error between the two gradients is below <paramref name="tolerance"/>.</summary>
    public static void AssertClose(string name, float[] analytic, double[] numeric, double tolerance = Tolerance)
    {
        Assert.Equal(numeric.Length, analytic.Length);
        double diff = 0, normA = 0, normN = 0;
        for (int i = 0; i < numeric.Length; i++)
        {
            diff += (analytic[i] - numeric[i]) * (analytic[i] - numeric[i]);
            normA += (double)analytic[i] * analytic[i];
            normN += numeric[i] * numeric[i];
        }
        double scale = Math.Max(Math.Sqrt(normA), Math.Sqrt(normN));
        Assert.True(scale > 0, $"{name}: both gradients are zero, the check proves nothing");
        double relative = Math.Sqrt(diff) / scale;
        Assert.True(relative < tolerance, $"{name}: relative gradient error {relative:E3} (tolerance {tolerance:E1}); |analytic| = {Math.Sqrt(normA):E3}, |numeric| = {Math.Sqrt(normN):E3}");
    }

    /// <summary>Checks analytic against numeric for one tensor: shorthand for <see cref="Numeric"/> + <see cref="AssertClose"/>.</summary>
    public static void Check(string name, float[] parameter, float[] analytic, Func<double> loss, float h = Step)
        => AssertClose(name, analytic, Numeric(parameter, loss, h));

    /// <summary>Σ g·y in double.</summary>
    public static double Dot(ReadOnlySpan<float> g, ReadOnlySpan<float> y)
    {
        Assert.Equal(g.Length, y.Length);
        double sum = 0;
        for (int i = 0; i < g.Length; i++) sum += (double)g[i] * y[i];
        return sum;
    }

    /// <summary>
    /// Asserts that a second backward call added the same amount again (gradients accumulate): ‖twice − 2·once‖ is
    /// within float rounding of ‖2·once‖ (the second sum may round differently, as it starts from non-zero values).
    /// </summary>
    public static void AssertDoubled(string name, float[] once, float[] twice)
    {
        Assert.Equal(once.Length, twice.Length);
        double diff = 0, norm = 0;
        for (int i = 0; i < once.Length; i++)
        {
            diff += (twice[i] - 2.0 * once[i]) * (twice[i] - 2.0 * once[i]);
            norm += 4.0 * once[i] * once[i];
        }
        Assert.True(norm > 0, $"{name}: the gradient is zero, the check proves nothing");
        Assert.True(Math.Sqrt(diff / norm) < 1e-5, $"{name}: two backward calls gave {Math.Sqrt(diff / norm):E2} relative deviation from twice one call");
    }
}

/// <summary>Random tensors from the project's deterministic <see cref="Rng"/>.</summary>
internal static class TestTensors
{
    public static float[] Normal(Rng rng, int length, float std = 1f)
    {
        var a = new float[length];
        for (int i = 0; i < a.Length; i++) a[i] = rng.NextNormal() * std;
        return a;
    }

    public static float[] Uniform(Rng rng, int length, float low, float high)
    {
        var a = new float[length];
        for (int i = 0; i < a.Length; i++) a[i] = low + (high - low) * rng.NextFloat();
        return a;
    }
}
