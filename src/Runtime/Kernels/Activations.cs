using System;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TransformerGen.Kernels;

/// <summary>Pointwise activations of the feed-forward block: ReLU and GELU (exact erf form, PyTorch's default).</summary>
/// <remarks>
/// All spans have the same length (any length; the shape does not matter). Backward accumulates into dx, or with
/// <c>overwriteDx</c> stores into it (the first contribution to that gradient, which then needs no clearing).
/// </remarks>
public static class Activations
{
    /// <summary>Effectively computes <c>y[i] = max(x[i], 0)</c>. <paramref name="y"/> may be <paramref name="x"/>.</summary>
    public static void ReluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        SpanChecks.SameLength(y.Length, x.Length, nameof(y), nameof(x));
        TensorPrimitives.Max(x, 0f, y);
    }

    /// <summary>Effectively computes <c>dx[i] += x[i] &gt; 0 ? dy[i] : 0</c> (<c>=</c> with <paramref name="overwriteDx"/>).</summary>
    public static void ReluBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, bool overwriteDx = false)
        => Elementwise.MapBackward<ReluBackwardOperator>(dy, x, x, dx, !overwriteDx, nameof(dy), nameof(x), nameof(x), nameof(dx));

    /// <summary>
    /// Effectively computes <c>y[i] = 0.5·x[i]·(1 + erf(x[i]/√2))</c>, PyTorch's <c>nn.GELU()</c> (approximate='none').
    /// <paramref name="y"/> may be <paramref name="x"/>. Φ comes from <see cref="ErrorFunction"/>'s erfc (below 6e-8 absolute error).
    /// </summary>
    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y)
        => Elementwise.MapSplit<GeluOperator>(x, y, nameof(x), nameof(y), GeluCost);

    /// <summary>
    /// Effectively computes <c>dx[i] += dy[i]·(Φ(x[i]) + x[i]·φ(x[i]))</c> (<c>=</c> with <paramref name="overwriteDx"/>),
    /// the derivative of <c>x·Φ(x)</c> with Φ(x) = ½(1 + erf(x/√2)) the standard normal CDF and φ(x) = exp(−x²/2)/√(2π)
    /// its density.
    /// </summary>
    public static void GeluBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, bool overwriteDx = false)
        => Elementwise.MapBackwardSplit<GeluBackwardOperator>(dy, x, x, dx, !overwriteDx, nameof(dy), nameof(x), nameof(x), nameof(dx), 2 * GeluCost);

    /// <summary>
    /// <see cref="GeluBackward(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, bool)"/> given also the forward's
    /// output <paramref name="y"/> = <see cref="GeluForward"/>(<paramref name="x"/>), from which Φ(x) = y/x is read back
    /// (½ where |x| &lt; 1e-18, where y/x would be 0/0 or lose precision) instead of computed again: one exp per element
    /// instead of two and an erfc. Φ read back this way is within two roundings of the forward's.
    /// </summary>
    public static void GeluBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> dx, bool overwriteDx = false)
        => Elementwise.MapBackwardSplit<GeluBackwardFromOutputOperator>(dy, x, y, dx, !overwriteDx, nameof(dy), nameof(x), nameof(y), nameof(dx), GeluCost);

    // GELU's erf and exp take about 1.1 ns per element on one core, as long as ~150 operations of a matrix product:
    // the work measure by which Parallelism decides whether to split (backward, with a second exp, about twice that;
    // from the forward's output, about the same).
    private const int GeluCost = 150;

    // Below this |x|, Φ(x) = ½ to float precision (Φ(x) − ½ ≈ 0.4·x), and y/x would be 0/0 at x = 0.
    private const float CdfReadBackFloor = 1e-18f;

    private const float InvSqrt2 = 0.7071067811865475f;      // 1/√2
    private const float InvSqrt2Pi = 0.3989422804014327f;    // 1/√(2π)

    /// <summary>x·Φ(x).</summary>
    private readonly struct GeluOperator : IUnaryOperator
    {
        public static float Invoke(float x) => Invoke(Vector128.CreateScalarUnsafe(x)).ToScalar();
        public static Vector128<float> Invoke(Vector128<float> x) => x * NormalCdf(x);
        public static Vector256<float> Invoke(Vector256<float> x) => x * NormalCdf(x);
        public static Vector512<float> Invoke(Vector512<float> x) => x * NormalCdf(x);
    }

    // Φ(x) = ½·erfc(−x/√2), from erfc of z = |x|/√2 alone: ½·erfc(z) for x < 0, 1 − ½·erfc(z) otherwise. The erfc
    // formula's fractional error (below 1.2e-7) makes Φ's absolute error below 6e-8, as good as going through erf,
    // whose series branch near 0 this skips (a quarter of GELU's work).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> NormalCdf(Vector128<float> x)
    {
        Vector128<float> half = Vector128.Create(0.5f) * ErrorFunction.ErfcOfNonNegative(Vector128.Abs(x) * Vector128.Create(InvSqrt2));
        return Vector128.ConditionalSelect(Vector128.LessThan(x, Vector128<float>.Zero), half, Vector128<float>.One - half);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> NormalCdf(Vector256<float> x)
    {
        Vector256<float> half = Vector256.Create(0.5f) * ErrorFunction.ErfcOfNonNegative(Vector256.Abs(x) * Vector256.Create(InvSqrt2));
        return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), half, Vector256<float>.One - half);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> NormalCdf(Vector512<float> x)
    {
        Vector512<float> half = Vector512.Create(0.5f) * ErrorFunction.ErfcOfNonNegative(Vector512.Abs(x) * Vector512.Create(InvSqrt2));
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), half, Vector512<float>.One - half);
    }

    /// <summary>(dy, x, ·) → dy·(Φ(x) + x·φ(x)).</summary>
    private readonly struct GeluBackwardOperator : IBackwardOperator
    {
        public static float Invoke(float dy, float x, float y)
            => Invoke(Vector128.CreateScalarUnsafe(dy), Vector128.CreateScalarUnsafe(x), default).ToScalar();
        public static Vector128<float> Invoke(Vector128<float> dy, Vector128<float> x, Vector128<float> y)
        {
            Vector128<float> cdf = NormalCdf(x);
            Vector128<float> pdf = Vector128.Create(InvSqrt2Pi) * Exponential.Exp(Vector128.Create(-0.5f) * x * x);
            return dy * Vector128.FusedMultiplyAdd(x, pdf, cdf);
        }
        public static Vector256<float> Invoke(Vector256<float> dy, Vector256<float> x, Vector256<float> y)
        {
            Vector256<float> cdf = NormalCdf(x);
            Vector256<float> pdf = Vector256.Create(InvSqrt2Pi) * Exponential.Exp(Vector256.Create(-0.5f) * x * x);
            return dy * Vector256.FusedMultiplyAdd(x, pdf, cdf);
        }
        public static Vector512<float> Invoke(Vector512<float> dy, Vector512<float> x, Vector512<float> y)
        {
            Vector512<float> cdf = NormalCdf(x);
            Vector512<float> pdf = Vector512.Create(InvSqrt2Pi) * Exponential.Exp(Vector512.Create(-0.5f) * x * x);
            return dy * Vector512.FusedMultiplyAdd(x, pdf, cdf);
        }
    }

    /// <summary>(dy, x, y = x·Φ(x)) → dy·(y/x + x·φ(x)).</summary>
    private readonly struct GeluBackwardFromOutputOperator : IBackwardOperator
    {
        public static float Invoke(float dy, float x, float y)
            => Invoke(Vector128.CreateScalarUnsafe(dy), Vector128.CreateScalarUnsafe(x), Vector128.CreateScalarUnsafe(y)).ToScalar();
        public static Vector128<float> Invoke(Vector128<float> dy, Vector128<float> x, Vector128<float> y)
        {
            Vector128<float> cdf = Vector128.ConditionalSelect(Vector128.LessThan(Vector128.Abs(x), Vector128.Create(CdfReadBackFloor)), Vector128.Create(0.5f), y / x);
            Vector128<float> pdf = Vector128.Create(InvSqrt2Pi) * Exponential.Exp(Vector128.Create(-0.5f) * x * x);
            return dy * Vector128.FusedMultiplyAdd(x, pdf, cdf);
        }
        public static Vector256<float> Invoke(Vector256<float> dy, Vector256<float> x, Vector256<float> y)
        {
            Vector256<float> cdf = Vector256.ConditionalSelect(Vector256.LessThan(Vector256.Abs(x), Vector256.Create(CdfReadBackFloor)), Vector256.Create(0.5f), y / x);
            Vector256<float> pdf = Vector256.Create(InvSqrt2Pi) * Exponential.Exp(Vector256.Create(-0.5f) * x * x);
            return dy * Vector256.FusedMultiplyAdd(x, pdf, cdf);
        }
        public static Vector512<float> Invoke(Vector512<float> dy, Vector512<float> x, Vector512<float> y)
        {
            Vector512<float> cdf = Vector512.ConditionalSelect(Vector512.LessThan(Vector512.Abs(x), Vector512.Create(CdfReadBackFloor)), Vector512.Create(0.5f), y / x);
            Vector512<float> pdf = Vector512.Create(InvSqrt2Pi) * Exponential.Exp(Vector512.Create(-0.5f) * x * x);
            return dy * Vector512.FusedMultiplyAdd(x, pdf, cdf);
        }
    }

    /// <summary>(dy, x, ·) → x &gt; 0 ? dy : 0.</summary>
    private readonly struct ReluBackwardOperator : IBackwardOperator
    {
        public static float Invoke(float dy, float x, float y) => x > 0f ? dy : 0f;
        public static Vector128<float> Invoke(Vector128<float> dy, Vector128<float> x, Vector128<float> y)
            => Vector128.ConditionalSelect(Vector128.GreaterThan(x, Vector128<float>.Zero), dy, Vector128<float>.Zero);
        public static Vector256<float> Invoke(Vector256<float> dy, Vector256<float> x, Vector256<float> y)
            => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), dy, Vector256<float>.Zero);
        public static Vector512<float> Invoke(Vector512<float> dy, Vector512<float> x, Vector512<float> y)
            => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), dy, Vector512<float>.Zero);
    }
}
