using System;
using System.Diagnostics.CodeAnalysis;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TransformerGen;

/// <summary>Gradient clipping by global norm, as PyTorch's <c>torch.nn.utils.clip_grad_norm_</c>.</summary>
public static class GradientClipping
{
    /// <summary>
    /// Scales <paramref name="gradients"/> so that their L2 norm is at most <paramref name="maxNorm"/>, and
    /// returns the norm they had before. Allocates nothing.
    /// </summary>
    /// <remarks>
    /// <para>As <c>clip_grad_norm_(norm_type=2)</c>: <c>coef = maxNorm / (norm + 1e-6)</c>, and the gradients
    /// are multiplied by <c>coef</c> when it is below 1 (PyTorch clamps it to 1 and always multiplies; the
    /// result is the same). So they are scaled when <c>norm + 1e-6 &gt; maxNorm</c>, which means as soon as
    /// the norm exceeds <paramref name="maxNorm"/> (or comes within 1e-6 of it), and afterwards their norm is
    /// <paramref name="maxNorm"/> up to that 1e-6.</para>
    /// <para>The sum of squares is accumulated in double, so it neither overflows nor loses small terms.</para>
    /// <para>When the norm is not finite (some gradient is NaN or infinite) the norm is returned and the
    /// gradients are left untouched — PyTorch would multiply them by 0 or NaN — so the caller can test
    /// <c>float.IsFinite(norm)</c> and skip the step.</para>
    /// </remarks>
    /// <param name="gradients">The whole flat gradient buffer (its global norm is clipped).</param>
    /// <param name="maxNorm">The largest norm allowed, finite and at least 0.</param>
    /// <returns>The L2 norm of <paramref name="gradients"/> before clipping, rounded to float.</returns>
    public static float ClipByGlobalNorm(Span<float> gradients, float maxNorm)
    {
        if (!(maxNorm >= 0f) || float.IsPositiveInfinity(maxNorm)) ThrowMaxNorm(maxNorm);
        double norm = Math.Sqrt(SumOfSquares(gradients));
        ClipToNorm(gradients, maxNorm, norm);
        return (float)norm;
    }

    /// <summary>
    /// The scaling of <see cref="ClipByGlobalNorm"/> given the norm already measured (<see cref="SumOfSquares"/>'s root), so
    /// that a training step reads the gradients once for both the divergence check and the clipping.
    /// </summary>
    internal static void ClipToNorm(Span<float> gradients, float maxNorm, double norm)
    {
        if (!double.IsFinite(norm)) return;
        double coefficient = maxNorm / (norm + 1e-6);
        if (coefficient < 1.0) TensorPrimitives.Multiply(gradients, (float)coefficient, gradients);
    }

    /// <summary>The L2 norm of <paramref name="values"/>, accumulated in double. Allocates nothing.</summary>
    public static float GlobalNorm(ReadOnlySpan<float> values) => (float)Math.Sqrt(SumOfSquares(values));

    [DoesNotReturn]
    private static void ThrowMaxNorm(float maxNorm) =>
        throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "maxNorm must be finite and at least 0");

    /// <summary>Effectively computes <c>Σ (double)x[i]²</c>: floats widened to double, four double accumulators per vector width.</summary>
    internal static double SumOfSquares(ReadOnlySpan<float> values)
    {
        ref float x = ref MemoryMarshal.GetReference(values);
        int n = values.Length, i = 0;
        double sum = 0;

        if (Vector512.IsHardwareAccelerated && n >= Vector512<float>.Count)
        {
            Vector512<double> accumulator0 = Vector512<double>.Zero, accumulator1 = Vector512<double>.Zero;
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                (Vector512<double> lower, Vector512<double> upper) = Vector512.Widen(Vector512.LoadUnsafe(ref x, (nuint)i));
                accumulator0 += lower * lower;
                accumulator1 += upper * upper;
            }
            sum += Vector512.Sum(accumulator0 + accumulator1);
        }

        if (Vector256.IsHardwareAccelerated && n - i >= Vector256<float>.Count)
        {
            Vector256<double> accumulator0 = Vector256<double>.Zero, accumulator1 = Vector256<double>.Zero;
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                (Vector256<double> lower, Vector256<double> upper) = Vector256.Widen(Vector256.LoadUnsafe(ref x, (nuint)i));
                accumulator0 += lower * lower;
                accumulator1 += upper * upper;
            }
            sum += Vector256.Sum(accumulator0 + accumulator1);
        }

        for (; i < n; i++)
        {
            double value = Unsafe.Add(ref x, i);
            sum += value * value;
        }
        return sum;
    }
}
