using System;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TransformerGen.Kernels;

/// <summary>Row-wise softmax over the last dimension.</summary>
public static class Softmax
{
    /// <summary>
    /// <c>y[r, :] = exp(x[r, :] − max) / Σ exp(x[r, :] − max)</c> for each of <paramref name="rows"/> rows of width
    /// <paramref name="cols"/>; subtracting the row max keeps exp from overflowing. <paramref name="y"/> may be <paramref name="x"/>.
    /// </summary>
    /// <param name="x">Input <c>[rows, cols]</c>.</param>
    /// <param name="y">Output <c>[rows, cols]</c>.</param>
    /// <param name="rows">Rows.</param>
    /// <param name="cols">Row width.</param>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        SpanChecks.NonNegative(rows, nameof(rows));
        SpanChecks.NonNegative(cols, nameof(cols));
        SpanChecks.Length(x.Length, (long)rows * cols, nameof(x));
        SpanChecks.Length(y.Length, (long)rows * cols, nameof(y));
        if (cols == 0) return;
        for (int r = 0; r < rows; r++)
            Row(x.Slice(r * cols, cols), y.Slice(r * cols, cols));
    }

    /// <summary>
    /// Accumulates <c>dx[r, :] += y ⊙ (dy − Σ dy⊙y)</c> per row (the Jacobian-vector product of softmax, written with
    /// its output <paramref name="y"/>).
    /// </summary>
    /// <param name="dy">Gradient of the output <c>[rows, cols]</c>.</param>
    /// <param name="y">The forward output <c>[rows, cols]</c>.</param>
    /// <param name="dx">Gradient of the input <c>[rows, cols]</c> (accumulated).</param>
    /// <param name="rows">Rows.</param>
    /// <param name="cols">Row width.</param>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> y, Span<float> dx, int rows, int cols)
    {
        SpanChecks.NonNegative(rows, nameof(rows));
        SpanChecks.NonNegative(cols, nameof(cols));
        SpanChecks.Length(dy.Length, (long)rows * cols, nameof(dy));
        SpanChecks.Length(y.Length, (long)rows * cols, nameof(y));
        SpanChecks.Length(dx.Length, (long)rows * cols, nameof(dx));
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> dyRow = dy.Slice(r * cols, cols), yRow = y.Slice(r * cols, cols);
            Span<float> dxRow = dx.Slice(r * cols, cols);
            float dot = TensorPrimitives.Dot(dyRow, yRow);
            // dx += y·dy − dot·y, as two fused passes so no scratch row is needed.
            TensorPrimitives.MultiplyAdd(yRow, dyRow, dxRow, dxRow);
            TensorPrimitives.MultiplyAdd(yRow, -dot, dxRow, dxRow);
        }
    }

    /// <summary>
    /// Softmax of one row; <paramref name="y"/> may be <paramref name="x"/> (shared with attention and cross-entropy).
    /// Returns log Σ exp(x), computed as max + log Σ exp(x − max), which never takes the log of an underflowed value.
    /// </summary>
    internal static double Row(ReadOnlySpan<float> x, Span<float> y) => Row(x, y, 1f);

    /// <summary>
    /// Softmax of <c>scale·x</c> for a positive <paramref name="scale"/> (attention's 1/√headDim folded in);
    /// returns log Σ exp(scale·x).
    /// </summary>
    internal static double Row(ReadOnlySpan<float> x, Span<float> y, float scale)
    {
        if (x.Length is > 0 and <= 16 && Simd.IsSupported(SimdPath.Vector512)) return ShortRow512(x, y, scale);
        return RowOfAnyLength(x, y, scale);
    }

    /// <summary><see cref="Row(ReadOnlySpan{float}, Span{float}, float)"/> without the short-row path (tests compare the two).</summary>
    internal static double RowOfAnyLength(ReadOnlySpan<float> x, Span<float> y, float scale)
    {
        float max = TensorPrimitives.Max(x);
        float sum = ExpShifted(x, y, max, scale);
        TensorPrimitives.Multiply(y, 1f / sum, y);
        return (double)scale * max + Math.Log(sum);
    }

    // Row for 1 to 16 elements in one masked vector and no library calls (attention's rows in small models, and the
    // first rows of every causal one, where three calls per row cost more than the arithmetic). The same operations
    // as the general path, so the same bits: an exact max, then ExpShifted's masked tail, then the multiply.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    private static unsafe double ShortRow512(ReadOnlySpan<float> x, Span<float> y, float scale)
    {
        Vector512<float> mask = Simd.TailMask512(x.Length);
        fixed (float* px = x, py = y)
        {
            Vector512<float> v = Avx512F.MaskLoad(px, mask, Vector512.Create(float.NegativeInfinity));
            Vector256<float> m8 = Vector256.Max(v.GetLower(), v.GetUpper());
            Vector128<float> m4 = Vector128.Max(m8.GetLower(), m8.GetUpper());
            m4 = Vector128.Max(m4, Vector128.Shuffle(m4, Vector128.Create(2, 3, 0, 1)));
            float max = Vector128.Max(m4, Vector128.Shuffle(m4, Vector128.Create(1, 0, 3, 2))).ToScalar();
            Vector512<float> shift = Vector512.Create(max);
            Vector512<float> e = Exponential.Exp((Vector512.ConditionalSelect(mask, v, shift) - shift) * Vector512.Create(scale)) & mask;
            float sum = Vector512.Sum(e);
            Avx512F.MaskStore(py, mask, e * Vector512.Create(1f / sum));
            return (double)scale * max + Math.Log(sum);
        }
    }

    // y[i] = exp((x[i] − max)·scale) in one pass, returning Σ y (y may be x); the tiled attention calls it per tile row.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    internal static unsafe float ExpShifted(ReadOnlySpan<float> x, Span<float> y, float max, float scale)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        nuint length = (nuint)x.Length, i = 0;
        float sum = 0f;
        if (Simd.IsSupported(SimdPath.Vector512))
        {
            Vector512<float> shift = Vector512.Create(max), factor = Vector512.Create(scale), total = Vector512<float>.Zero;
            for (; i + 16 <= length; i += 16)
            {
                Vector512<float> e = Exponential.Exp((Vector512.LoadUnsafe(ref px, i) - shift) * factor);
                e.StoreUnsafe(ref py, i);
                total += e;
            }
            if (i < length)
            {
                // The last 1–15 elements in one masked vector (attention's causal rows are mostly such tails): lanes
                // past the end are neither read nor written, and count 0 in the sum.
                Vector512<float> mask = Simd.TailMask512((int)(length - i));
                fixed (float* tail = &Unsafe.Add(ref px, i), target = &Unsafe.Add(ref py, i))
                {
                    Vector512<float> e = Exponential.Exp((Avx512F.MaskLoad(tail, mask, shift) - shift) * factor) & mask;
                    Avx512F.MaskStore(target, mask, e);
                    total += e;
                }
                i = length;
            }
            sum = Vector512.Sum(total);
        }
        else if (Vector256.IsHardwareAccelerated && length >= 8)
        {
            Vector256<float> shift = Vector256.Create(max), factor = Vector256.Create(scale), total = Vector256<float>.Zero;
            for (; i + 8 <= length; i += 8)
            {
                Vector256<float> e = Exponential.Exp((Vector256.LoadUnsafe(ref px, i) - shift) * factor);
                e.StoreUnsafe(ref py, i);
                total += e;
            }
            sum = Vector256.Sum(total);
        }
        for (; i < length; i++)
        {
            float e = Exponential.Exp((Unsafe.Add(ref px, i) - max) * scale);
            Unsafe.Add(ref py, i) = e;
            sum += e;
        }
        return sum;
    }
}
