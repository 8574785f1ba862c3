using System;
using Xunit;

namespace TransformerGen.Tests.Kernels;

/// <summary>
/// Central finite differences of a loss L = Σ g ⊙ y computed entirely in double from a reference forward written in the
/// test, for holding a float kernel's backward to a tolerance near float rounding rather than <see cref="GradientCheck"/>'s
/// 1e-2.
/// </summary>
/// <remarks>
/// The step is h = 1e-5·max(1, |θ|): for these smooth functions the truncation error h²·L‴/6 is about 1e-10 and the
/// rounding of the two double losses about 1e-16·|L|/h ≈ 1e-10 too, both far below the 1e-7 relative rounding of the
/// float kernel under test. Because the derivative comes from the reference forward and not from the kernel's formula, a
/// wrong derivation fails even when the kernel's forward and backward agree with each other.
/// </remarks>
internal static class ReferenceGradient
{
    /// <summary>∂loss/∂θ for every element θ of <paramref name="parameter"/> (restored afterwards).</summary>
    public static double[] Numeric(double[] parameter, Func<double> loss)
    {
        var gradient = new double[parameter.Length];
        for (int i = 0; i < parameter.Length; i++)
        {
            double saved = parameter[i], h = 1e-5 * Math.Max(1, Math.Abs(saved));
            parameter[i] = saved + h;
            double lossPlus = loss();
            parameter[i] = saved - h;
            double lossMinus = loss();
            parameter[i] = saved;
            gradient[i] = (lossPlus - lossMinus) / (2 * h);
        }
        return gradient;
    }

    /// <summary>
    /// Asserts max_i |analytic_i − numeric_i| ≤ <paramref name="tolerance"/>·scale and returns the measured ratio. The
    /// scale is max_i |numeric_i| (the tensor's, so that elements near zero are judged by it) unless given: a gradient
    /// that is a small difference of large terms is judged by the size of the terms.
    /// </summary>
    public static double AssertClose(string name, ReadOnlySpan<float> analytic, double[] numeric, double tolerance, double scale = 0)
    {
        Assert.Equal(numeric.Length, analytic.Length);
        double worst = 0;
        int worstAt = 0;
        if (scale == 0)
            for (int i = 0; i < numeric.Length; i++) scale = Math.Max(scale, Math.Abs(numeric[i]));
        Assert.True(scale > 0, $"{name}: the gradient is zero, the check proves nothing");
        for (int i = 0; i < numeric.Length; i++)
        {
            double error = Math.Abs(analytic[i] - numeric[i]);
            if (!(error <= worst)) (worst, worstAt) = (error, i); // NaN counts as the worst
        }
        double relative = worst / scale;
        Assert.True(relative <= tolerance, $"{name}[{worstAt}] = {analytic[worstAt]:R}, numeric {numeric[worstAt]:R}: error {relative:E2} of the scale {scale:E2} (tolerance {tolerance:E1})");
        return relative;
    }

    public static double[] ToDouble(float[] a) => Array.ConvertAll(a, v => (double)v);
}

/// <summary>
/// The overwrite-flag checks of <see cref="OverwriteGradientTests"/> (whose helpers are private to it) for the kernels
/// tested in their own classes: a NaN-poisoned gradient buffer, and stored equals added into zeros.
/// </summary>
internal static class OverwriteChecks
{
    /// <summary>A buffer full of NaN: a kernel that reads an output it should only write shows it in the result.</summary>
    public static float[] Poisoned(int length)
    {
        var a = new float[length];
        Array.Fill(a, float.NaN);
        return a;
    }

    /// <summary>Asserts equal values (0 and −0 equal): what a kernel stored equals what it added into zeros.</summary>
    public static void AssertSameValues(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (!(expected[i] == actual[i] || (float.IsNaN(expected[i]) && float.IsNaN(actual[i]))))
                Assert.Fail($"{what}[{i}]: {actual[i]:R} stored, {expected[i]:R} when added into zeros");
    }
}
