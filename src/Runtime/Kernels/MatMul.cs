using System;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TransformerGen.Kernels;

/// <summary>
/// The linear layer, PyTorch's <c>nn.Linear</c>: <c>y = x·Wᵀ + b</c> with the weight stored <c>[out, in]</c>.
/// </summary>
/// <remarks>
/// <para>
/// Forward with few rows (decoding, short inputs, and every row without AVX-512) is a dot-product kernel: a row of
/// <c>x</c> and a row of <c>W</c> are both contiguous along the inner dimension, so a 4×4 block of outputs keeps 16
/// vector accumulators in registers while walking that dimension once (8 loads feed 16 FMAs), and the 16
/// accumulators are reduced together by a shuffle tree at the end. From 128 rows on, with AVX-512, it is the packed
/// product below with panels of <c>Wᵀ</c> (<see cref="PanelForward512"/>).
/// </para>
/// <para>
/// Backward's two products are both "broadcast one scalar, multiply a contiguous row" (axpy) shapes:
/// <c>dx[i, :] += Σ_o dy[i, o]·W[o, :]</c> and <c>dW[o, :] += Σ_i dy[i, o]·x[i, :]</c>. One blocked product,
/// <see cref="AccumulateProduct(float*, int, int, float*, int, float*, int, int, int, int, SimdPath, bool)"/>, does both: with
/// AVX-512 it copies 64-column panels of the right operand into an aligned block and holds 6 rows × 64 columns of the
/// result in registers while passing over it.
/// </para>
/// <para>No output may overlap an input.</para>
/// </remarks>
public static unsafe partial class MatMul
{
    // Rows of x handled together in Forward, so that this slab of x stays in cache while all of W streams past it.
    private const int ForwardRowTile = 64;

    // Inner-dimension chunk of Backward's narrow and AVX2 products: a 64-row slice of the right operand stays in L1
    // while all row blocks pass (measured: 64 beat 128 and 256 by 15-40% at inF = 128).
    private const int BackwardDepthTile = 64;

    // The packed AVX-512 product (PanelLoop512): a 6 × 64 block of the result in 24 registers, over a depth slice
    // of 256 (a 64 KiB panel of the right operand, read from L1 and L2). Measured at the model's shapes, one thread:
    // 6 × 64 over a packed panel 165–195 GFLOP/s against 130–165 for 4 × 64 straight from the operand. Depth 256
    // against 128: the same on one thread, small's training step 3–5% faster on two (each depth slice reads and
    // writes the whole result once more, and two cores share the bandwidth); 512 no better than 256.
    private const int PanelRows = 6, PanelDepth = 256;
    internal const int PanelWidth = 64; // also the width of a packed weight's panels (MatMul.Packed.cs)

    // Rows from which Forward copies panels of wᵀ and runs the packed kernel; fewer rows (decoding, short prompts)
    // keep the dot kernels, which copy nothing.
    private const int PanelForwardMinRows = 128;

    /// <summary>
    /// <c>y[n, outF] = x[n, inF] · w[outF, inF]ᵀ + bias[outF]</c>; <paramref name="bias"/> may be empty (no bias).
    /// Overwrites <paramref name="y"/>.
    /// </summary>
    /// <param name="x">Input <c>[n, inF]</c>.</param>
    /// <param name="w">Weight <c>[outF, inF]</c>.</param>
    /// <param name="bias">Bias <c>[outF]</c>, or empty.</param>
    /// <param name="y">Output <c>[n, outF]</c>.</param>
    /// <param name="n">Rows (batch·time).</param>
    /// <param name="inF">Input features.</param>
    /// <param name="outF">Output features.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, int inF, int outF)
        => Forward(x, w, bias, y, n, inF, outF, Simd.Best);

    /// <summary>
    /// Accumulates the gradients of <see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int)"/>:
    /// <c>dx[n, inF] += dy·w</c>, <c>dw[outF, inF] += dyᵀ·x</c>, <c>dbias[outF] += Σ_rows dy</c>; with
    /// <paramref name="overwriteDx"/>, <c>dx = dy·w</c> instead (its old contents are never read). <paramref name="dx"/>
    /// may be empty (the input needs no gradient); <paramref name="dbias"/> is empty when there is no bias.
    /// </summary>
    /// <param name="dy">Gradient of the output <c>[n, outF]</c>.</param>
    /// <param name="x">The forward input <c>[n, inF]</c>.</param>
    /// <param name="w">Weight <c>[outF, inF]</c>.</param>
    /// <param name="dx">Gradient of the input <c>[n, inF]</c> (accumulated unless <paramref name="overwriteDx"/>), or empty.</param>
    /// <param name="dw">Gradient of the weight <c>[outF, inF]</c> (accumulated).</param>
    /// <param name="dbias">Gradient of the bias <c>[outF]</c> (accumulated), or empty.</param>
    /// <param name="n">Rows (batch·time).</param>
    /// <param name="inF">Input features.</param>
    /// <param name="outF">Output features.</param>
    /// <param name="overwriteDx">Store <c>dy·w</c> into <paramref name="dx"/> rather than add it: the first contribution to an
    /// input's gradient, which then needs no clearing beforehand. The parameters' gradients are always accumulated.</param>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> dx, Span<float> dw, Span<float> dbias, int n, int inF, int outF, bool overwriteDx = false)
        => Backward(dy, x, w, dx, dw, dbias, n, inF, outF, Simd.Best, overwriteDx);

    internal static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, int inF, int outF, SimdPath path)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.NonNegative(inF, nameof(inF));
        SpanChecks.NonNegative(outF, nameof(outF));
        SpanChecks.Length(x.Length, (long)n * inF, nameof(x));
        SpanChecks.Length(w.Length, (long)outF * inF, nameof(w));
        SpanChecks.LengthOrEmpty(bias.Length, outF, nameof(bias));
        SpanChecks.Length(y.Length, (long)n * outF, nameof(y));
        if (n == 0 || outF == 0) return;

        fixed (float* px = x, pw = w, pb = bias, py = y)
            ForwardSplit(px, pw, bias.IsEmpty ? null : pb, py, n, inF, outF, path);
    }

    /// <summary>
    /// The forward product on raw rows: <c>y[i·ldy + o] = Σ_k x[i·ldx + k]·w[o·ldw + k] (+ bias[o])</c>, so that row
    /// blocks of larger tensors (one head of a packed QKV tensor, say) can be multiplied in place. No checks.
    /// </summary>
    internal static void ForwardStrided(float* x, int ldx, float* w, int ldw, float* bias, float* y, int ldy, int n, int inF, int outF, SimdPath path)
    {
        switch (path)
        {
            case SimdPath.Vector512: Forward512(x, ldx, w, ldw, bias, y, ldy, n, inF, outF); break;
            case SimdPath.Vector256: Forward256(x, ldx, w, ldw, bias, y, ldy, n, inF, outF); break;
            default: ForwardPortable(x, ldx, w, ldw, bias, y, ldy, n, inF, outF); break;
        }
    }

    internal static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> dx, Span<float> dw, Span<float> dbias, int n, int inF, int outF, SimdPath path, bool overwriteDx = false)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.NonNegative(inF, nameof(inF));
        SpanChecks.NonNegative(outF, nameof(outF));
        SpanChecks.Length(dy.Length, (long)n * outF, nameof(dy));
        SpanChecks.Length(x.Length, (long)n * inF, nameof(x));
        SpanChecks.Length(w.Length, (long)outF * inF, nameof(w));
        SpanChecks.LengthOrEmpty(dx.Length, (long)n * inF, nameof(dx));
        SpanChecks.Length(dw.Length, (long)outF * inF, nameof(dw));
        SpanChecks.LengthOrEmpty(dbias.Length, outF, nameof(dbias));
        if (n == 0 || outF == 0)
        {
            if (overwriteDx) dx.Clear(); // a sum of nothing
            return;
        }

        fixed (float* pdy = dy, px = x, pw = w, pdx = dx, pdw = dw, pdb = dbias)
        {
            if (BackwardSplit(pdy, px, pw, dx.IsEmpty ? null : pdx, pdw, dbias.IsEmpty ? null : pdb, n, inF, outF, path, overwriteDx)) return;
            // dx[i, :] (+)= Σ_o dy[i, o] · w[o, :]   (A = dy, row stride outF, column stride 1)
            if (!dx.IsEmpty && inF > 0) AccumulateProduct(pdy, outF, 1, pw, inF, pdx, inF, n, outF, inF, path, overwriteDx);
            // dw[o, :] += Σ_i dy[i, o] · x[i, :]   (A = dyᵀ, row stride 1, column stride outF)
            if (inF > 0) AccumulateProduct(pdy, 1, outF, px, inF, pdw, inF, outF, n, inF, path, overwrite: false);
        }
        if (!dbias.IsEmpty) AccumulateBias(dy, dbias, n);
    }

    /// <summary><c>dbias[o] += Σ_i dy[i, o]</c> over the <paramref name="n"/> rows of <paramref name="dy"/>.</summary>
    private static void AccumulateBias(ReadOnlySpan<float> dy, Span<float> dbias, int n)
    {
        for (int i = 0; i < n; i++)
            TensorPrimitives.Add(dbias, dy.Slice(i * dbias.Length, dbias.Length), dbias);
    }

    // ---------------------------------------------------------------- forward, AVX-512

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    private static void Forward512(float* x, int ldx, float* w, int ldw, float* bias, float* y, int ldy, int n, int inF, int outF)
    {
        Vector512<float> tailMask = Simd.TailMask512(inF & 15);
        int outBlocked = outF & ~3;
        for (int i0 = 0; i0 < n; i0 += ForwardRowTile)
        {
            int i1 = Math.Min(n, i0 + ForwardRowTile);
            for (int o = 0; o < outBlocked; o += 4)
            {
                float* wo = w + (nint)o * ldw;
                float* bo = bias == null ? null : bias + o;
                int i = i0;
                for (; i + 4 <= i1; i += 4) Block4x4Of512(x + (nint)i * ldx, ldx, wo, ldw, bo, y + (nint)i * ldy + o, ldy, inF, tailMask);
                for (; i < i1; i++) Block1x4Of512(x + (nint)i * ldx, wo, ldw, bo, y + (nint)i * ldy + o, inF, tailMask);
            }
            OutputTail(x, ldx, w, ldw, bias, y, ldy, i0, i1, inF, outBlocked, outF);
        }
    }

    // Outputs past the last whole block of 4, one dot product each.
    private static void OutputTail(float* x, int ldx, float* w, int ldw, float* bias, float* y, int ldy, int i0, int i1, int inF, int o0, int outF)
    {
        for (int o = o0; o < outF; o++)
            for (int i = i0; i < i1; i++)
                y[(nint)i * ldy + o] = DotPortable(x + (nint)i * ldx, w + (nint)o * ldw, inF) + (bias == null ? 0f : bias[o]);
    }


    // y[r, c] = Σ_k x[r, k]·w[c, k] (+ bias[c]) for r, c in 0..3; rows of x, w and y are ldx, ldw and ldy apart.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    private static void Block4x4Of512(float* x, int ldx, float* w, int ldw, float* bias, float* y, int ldy, int inF, Vector512<float> tailMask)
    {
        float* x0 = x, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx;
        float* w0 = w, w1 = w0 + ldw, w2 = w1 + ldw, w3 = w2 + ldw;
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        int k = 0;
        for (; k <= inF - 16; k += 16)
        {
            Vector512<float> vx0 = Vector512.Load(x0 + k), vx1 = Vector512.Load(x1 + k), vx2 = Vector512.Load(x2 + k), vx3 = Vector512.Load(x3 + k);
            Vector512<float> vw = Vector512.Load(w0 + k);
            a00 = Vector512.FusedMultiplyAdd(vx0, vw, a00); a10 = Vector512.FusedMultiplyAdd(vx1, vw, a10);
            a20 = Vector512.FusedMultiplyAdd(vx2, vw, a20); a30 = Vector512.FusedMultiplyAdd(vx3, vw, a30);
            vw = Vector512.Load(w1 + k);
            a01 = Vector512.FusedMultiplyAdd(vx0, vw, a01); a11 = Vector512.FusedMultiplyAdd(vx1, vw, a11);
            a21 = Vector512.FusedMultiplyAdd(vx2, vw, a21); a31 = Vector512.FusedMultiplyAdd(vx3, vw, a31);
            vw = Vector512.Load(w2 + k);
            a02 = Vector512.FusedMultiplyAdd(vx0, vw, a02); a12 = Vector512.FusedMultiplyAdd(vx1, vw, a12);
            a22 = Vector512.FusedMultiplyAdd(vx2, vw, a22); a32 = Vector512.FusedMultiplyAdd(vx3, vw, a32);
            vw = Vector512.Load(w3 + k);
            a03 = Vector512.FusedMultiplyAdd(vx0, vw, a03); a13 = Vector512.FusedMultiplyAdd(vx1, vw, a13);
            a23 = Vector512.FusedMultiplyAdd(vx2, vw, a23); a33 = Vector512.FusedMultiplyAdd(vx3, vw, a33);
        }
        if (k < inF)
        {
            // Masked loads read only the tail's lanes (the rest are zero and never touch memory), so both operands
            // are zero there and no Inf·0 = NaN can leak in from beyond the row.
            Vector512<float> z = Vector512<float>.Zero;
            Vector512<float> vx0 = Avx512F.MaskLoad(x0 + k, tailMask, z), vx1 = Avx512F.MaskLoad(x1 + k, tailMask, z);
            Vector512<float> vx2 = Avx512F.MaskLoad(x2 + k, tailMask, z), vx3 = Avx512F.MaskLoad(x3 + k, tailMask, z);
            Vector512<float> vw = Avx512F.MaskLoad(w0 + k, tailMask, z);
            a00 = Vector512.FusedMultiplyAdd(vx0, vw, a00); a10 = Vector512.FusedMultiplyAdd(vx1, vw, a10);
            a20 = Vector512.FusedMultiplyAdd(vx2, vw, a20); a30 = Vector512.FusedMultiplyAdd(vx3, vw, a30);
            vw = Avx512F.MaskLoad(w1 + k, tailMask, z);
            a01 = Vector512.FusedMultiplyAdd(vx0, vw, a01); a11 = Vector512.FusedMultiplyAdd(vx1, vw, a11);
            a21 = Vector512.FusedMultiplyAdd(vx2, vw, a21); a31 = Vector512.FusedMultiplyAdd(vx3, vw, a31);
            vw = Avx512F.MaskLoad(w2 + k, tailMask, z);
            a02 = Vector512.FusedMultiplyAdd(vx0, vw, a02); a12 = Vector512.FusedMultiplyAdd(vx1, vw, a12);
            a22 = Vector512.FusedMultiplyAdd(vx2, vw, a22); a32 = Vector512.FusedMultiplyAdd(vx3, vw, a32);
            vw = Avx512F.MaskLoad(w3 + k, tailMask, z);
            a03 = Vector512.FusedMultiplyAdd(vx0, vw, a03); a13 = Vector512.FusedMultiplyAdd(vx1, vw, a13);
            a23 = Vector512.FusedMultiplyAdd(vx2, vw, a23); a33 = Vector512.FusedMultiplyAdd(vx3, vw, a33);
        }

        // Reduce the 16 accumulators at once: afterwards 128-bit lane r of `sums` holds the four sums of row r.
        // Per column c: lane r of u_c holds four partial sums of a[r][c] ...
        Vector512<float> u0 = CombineQuarters(CombineHalves(a00, a10), CombineHalves(a20, a30));
        Vector512<float> u1 = CombineQuarters(CombineHalves(a01, a11), CombineHalves(a21, a31));
        Vector512<float> u2 = CombineQuarters(CombineHalves(a02, a12), CombineHalves(a22, a32));
        Vector512<float> u3 = CombineQuarters(CombineHalves(a03, a13), CombineHalves(a23, a33));
        // ... then a 4×4 transpose-and-add inside each lane turns those into [c0, c1, c2, c3].
        Vector512<float> v01 = Avx512F.UnpackLow(u0, u1) + Avx512F.UnpackHigh(u0, u1);   // [c0', c1', c0'', c1'']
        Vector512<float> v23 = Avx512F.UnpackLow(u2, u3) + Avx512F.UnpackHigh(u2, u3);   // [c2', c3', c2'', c3'']
        Vector512<float> sums = Avx512F.UnpackLow(v01.AsDouble(), v23.AsDouble()).AsSingle()
                              + Avx512F.UnpackHigh(v01.AsDouble(), v23.AsDouble()).AsSingle();
        if (bias != null) sums += Avx512F.BroadcastVector128ToVector512(bias);
        sums.GetLower().GetLower().Store(y);
        sums.GetLower().GetUpper().Store(y + ldy);
        sums.GetUpper().GetLower().Store(y + 2 * (nint)ldy);
        sums.GetUpper().GetUpper().Store(y + 3 * (nint)ldy);
    }

    // y[c] = Σ_k x[k]·w[c, k] (+ bias[c]) for c in 0..3: the leftover rows, and all of a single-token (n = 1) step.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    private static void Block1x4Of512(float* x, float* w, int ldw, float* bias, float* y, int inF, Vector512<float> tailMask)
    {
        float* w0 = w, w1 = w0 + ldw, w2 = w1 + ldw, w3 = w2 + ldw;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int k = 0;
        for (; k <= inF - 16; k += 16)
        {
            Vector512<float> vx = Vector512.Load(x + k);
            a0 = Vector512.FusedMultiplyAdd(vx, Vector512.Load(w0 + k), a0);
            a1 = Vector512.FusedMultiplyAdd(vx, Vector512.Load(w1 + k), a1);
            a2 = Vector512.FusedMultiplyAdd(vx, Vector512.Load(w2 + k), a2);
            a3 = Vector512.FusedMultiplyAdd(vx, Vector512.Load(w3 + k), a3);
        }
        if (k < inF)
        {
            Vector512<float> z = Vector512<float>.Zero;
            Vector512<float> vx = Avx512F.MaskLoad(x + k, tailMask, z);
            a0 = Vector512.FusedMultiplyAdd(vx, Avx512F.MaskLoad(w0 + k, tailMask, z), a0);
            a1 = Vector512.FusedMultiplyAdd(vx, Avx512F.MaskLoad(w1 + k, tailMask, z), a1);
            a2 = Vector512.FusedMultiplyAdd(vx, Avx512F.MaskLoad(w2 + k, tailMask, z), a2);
            a3 = Vector512.FusedMultiplyAdd(vx, Avx512F.MaskLoad(w3 + k, tailMask, z), a3);
        }
        // 128-bit lane c of u holds four partial sums of column c; two horizontal adds finish them.
        Vector512<float> u = CombineQuarters(CombineHalves(a0, a1), CombineHalves(a2, a3));
        Vector128<float> h01 = Sse3.HorizontalAdd(u.GetLower().GetLower(), u.GetLower().GetUpper());
        Vector128<float> h23 = Sse3.HorizontalAdd(u.GetUpper().GetLower(), u.GetUpper().GetUpper());
        Vector128<float> sums = Sse3.HorizontalAdd(h01, h23);
        if (bias != null) sums += Vector128.Load(bias);
        sums.Store(y);
    }

    /// <summary>[p₀…₇ + p₈…₁₅, q₀…₇ + q₈…₁₅]: eight partial sums of <paramref name="p"/>, then eight of <paramref name="q"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> CombineHalves(Vector512<float> p, Vector512<float> q)
        // _mm512_shuffle_f32x4: 0x44 picks 128-bit lanes (p0, p1, q0, q1), 0xEE picks (p2, p3, q2, q3).
        => Avx512F.Shuffle4x128(p, q, 0x44) + Avx512F.Shuffle4x128(p, q, 0xEE);

    /// <summary>
    /// From two <see cref="CombineHalves"/> results [P, Q] and [R, T] (eight partials each): 128-bit lanes holding
    /// four partial sums each of P, Q, R, T in that order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> CombineQuarters(Vector512<float> pq, Vector512<float> rt)
        // 0x88 picks lanes (0, 2) of each operand, 0xDD picks lanes (1, 3).
        => Avx512F.Shuffle4x128(pq, rt, 0x88) + Avx512F.Shuffle4x128(pq, rt, 0xDD);

    // ---------------------------------------------------------------- forward, AVX2

    // AVX2 has 16 vector registers, so the block is 2 rows × 4 outputs (8 accumulators, 2 + 1 operands).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    private static void Forward256(float* x, int ldx, float* w, int ldw, float* bias, float* y, int ldy, int n, int inF, int outF)
    {
        int outBlocked = outF & ~3;
        for (int i0 = 0; i0 < n; i0 += ForwardRowTile)
        {
            int i1 = Math.Min(n, i0 + ForwardRowTile);
            for (int o = 0; o < outBlocked; o += 4)
            {
                float* wo = w + (nint)o * ldw;
                int i = i0;
                for (; i + 2 <= i1; i += 2) Block2x4Of256(x + (nint)i * ldx, ldx, wo, ldw, y + (nint)i * ldy + o, ldy, inF);
                for (; i < i1; i++)
                    for (int c = 0; c < 4; c++)
                        y[(nint)i * ldy + o + c] = DotPortable(x + (nint)i * ldx, wo + (nint)c * ldw, inF);
                if (bias != null)
                    for (int r = i0; r < i1; r++)
                        Vector128.Store(Vector128.Load(y + (nint)r * ldy + o) + Vector128.Load(bias + o), y + (nint)r * ldy + o);
            }
            OutputTail(x, ldx, w, ldw, bias, y, ldy, i0, i1, inF, outBlocked, outF);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    private static void Block2x4Of256(float* x, int ldx, float* w, int ldw, float* y, int ldy, int inF)
    {
        float* x0 = x, x1 = x0 + ldx;
        float* w0 = w, w1 = w0 + ldw, w2 = w1 + ldw, w3 = w2 + ldw;
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector256<float> a10 = default, a11 = default, a12 = default, a13 = default;
        int k = 0;
        for (; k <= inF - 8; k += 8)
        {
            Vector256<float> vx0 = Vector256.Load(x0 + k), vx1 = Vector256.Load(x1 + k);
            Vector256<float> vw = Vector256.Load(w0 + k);
            a00 = Vector256.FusedMultiplyAdd(vx0, vw, a00); a10 = Vector256.FusedMultiplyAdd(vx1, vw, a10);
            vw = Vector256.Load(w1 + k);
            a01 = Vector256.FusedMultiplyAdd(vx0, vw, a01); a11 = Vector256.FusedMultiplyAdd(vx1, vw, a11);
            vw = Vector256.Load(w2 + k);
            a02 = Vector256.FusedMultiplyAdd(vx0, vw, a02); a12 = Vector256.FusedMultiplyAdd(vx1, vw, a12);
            vw = Vector256.Load(w3 + k);
            a03 = Vector256.FusedMultiplyAdd(vx0, vw, a03); a13 = Vector256.FusedMultiplyAdd(vx1, vw, a13);
        }
        float s00 = Vector256.Sum(a00), s01 = Vector256.Sum(a01), s02 = Vector256.Sum(a02), s03 = Vector256.Sum(a03);
        float s10 = Vector256.Sum(a10), s11 = Vector256.Sum(a11), s12 = Vector256.Sum(a12), s13 = Vector256.Sum(a13);
        for (; k < inF; k++)
        {
            float xk0 = x0[k], xk1 = x1[k];
            s00 += xk0 * w0[k]; s01 += xk0 * w1[k]; s02 += xk0 * w2[k]; s03 += xk0 * w3[k];
            s10 += xk1 * w0[k]; s11 += xk1 * w1[k]; s12 += xk1 * w2[k]; s13 += xk1 * w3[k];
        }
        y[0] = s00; y[1] = s01; y[2] = s02; y[3] = s03;
        y[ldy] = s10; y[ldy + 1] = s11; y[ldy + 2] = s12; y[ldy + 3] = s13;
    }

    // ---------------------------------------------------------------- forward, portable

    private static void ForwardPortable(float* x, int ldx, float* w, int ldw, float* bias, float* y, int ldy, int n, int inF, int outF)
        => OutputTail(x, ldx, w, ldw, bias, y, ldy, 0, n, inF, 0, outF);

    private static float DotPortable(float* a, float* b, int length)
        => TensorPrimitives.Dot(new ReadOnlySpan<float>(a, length), new ReadOnlySpan<float>(b, length));

    // ---------------------------------------------------------------- backward

    /// <summary>
    /// <c>c[m·ldc + j] += Σ_k a[m·aRowStride + k·aColStride] · b[k·ldb + j]</c> for m &lt; rows, k &lt; depth, j &lt; cols:
    /// a product whose right operand and result are row-major (rows ldb and ldc apart), and whose left operand is
    /// read with arbitrary strides (so it can be <c>dy</c> or <c>dyᵀ</c> without a copy). With
    /// <paramref name="overwrite"/>, <c>c = a·b</c>: the packed kernel stores its first depth slice, the other paths
    /// clear c first. No checks.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    internal static void AccumulateProduct(float* a, int aRowStride, int aColStride, float* b, int ldb, float* c, int ldc, int rows, int depth, int cols, SimdPath path, bool overwrite)
    {
        if (path == SimdPath.Vector512)
        {
            // Whole 64-column panels through the packed kernel, the narrower rest (one head's width in attention)
            // through 16-column strips.
            int wide = cols - cols % PanelWidth;
            if (wide > 0 && depth > 0)
                PanelLoop512(a, aRowStride, aColStride, b, ldb, transposed: false, c, ldc, rows, depth, 0, wide, overwrite, bias: null);
            else if (overwrite) Simd.ClearBlock(c, ldc, rows, wide);
            if (wide < cols)
            {
                if (overwrite) Simd.ClearBlock(c + wide, ldc, rows, cols - wide);
                StripProduct512(a, aRowStride, aColStride, b + wide, ldb, c + wide, ldc, rows, depth, cols - wide);
            }
            return;
        }
        if (overwrite) Simd.ClearBlock(c, ldc, rows, cols);

        for (int k0 = 0; k0 < depth; k0 += BackwardDepthTile)
        {
            int kc = Math.Min(BackwardDepthTile, depth - k0);
            float* ak = a + (nint)k0 * aColStride;
            float* bk = b + (nint)k0 * ldb;
            int m = 0;
            if (path == SimdPath.Vector256)
            {
                for (; m + 4 <= rows; m += 4)
                {
                    float* am = ak + (nint)m * aRowStride;
                    float* cm = c + (nint)m * ldc;
                    int j = 0;
                    for (; j + 16 <= cols; j += 16) Axpy4x16Of256(am, aRowStride, aColStride, bk + j, ldb, cm + j, ldc, kc);
                    for (; j < cols; j++) Axpy4x1(am, aRowStride, aColStride, bk + j, ldb, cm + j, ldc, kc);
                }
            }
            // Leftover rows (and every row on the portable path).
            AccumulateRows(ak, aRowStride, aColStride, bk, ldb, c, ldc, m, rows, kc, cols);
        }
    }

    // c[m, :cols] += Σ_k a[m, k]·b[k, :cols] for rows m0 ≤ m < m1, one TensorPrimitives axpy per (row, k).
    private static void AccumulateRows(float* a, int aRowStride, int aColStride, float* b, int ldb, float* c, int ldc, int m0, int m1, int depth, int cols)
    {
        for (int m = m0; m < m1; m++)
        {
            Span<float> cRow = new(c + (nint)m * ldc, cols);
            float* am = a + (nint)m * aRowStride;
            for (int k = 0; k < depth; k++)
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(b + (nint)k * ldb, cols), am[(nint)k * aColStride], cRow, cRow);
        }
    }

    // ---------------------------------------------------------------- backward, AVX-512

    /// <summary>
    /// The forward product through the packed kernel, for the columns <c>[j0, j1)</c> of <c>y = x·wᵀ + bias</c> with
    /// <c>j0</c> a multiple of 64: whole 64-column panels of <c>wᵀ</c> through <see cref="PanelLoop512"/>, the
    /// narrower rest at the right edge through the dot kernels. Needs <c>inF &gt; 0</c>. No checks.
    /// </summary>
    internal static void PanelForward512(float* x, float* w, float* bias, float* y, int n, int inF, int outF, int j0, int j1)
    {
        int wide = outF - outF % PanelWidth;
        PanelLoop512(x, inF, 1, w, inF, transposed: true, y, outF, n, inF, j0, Math.Min(j1, wide), overwrite: true, bias);
        int narrow = Math.Max(j0, wide);
        if (narrow < j1)
            Forward512(x, inF, w + (nint)narrow * inF, inF, bias == null ? null : bias + narrow, y + narrow, outF, n, inF, j1 - narrow);
    }

    // c[:, j0:j1) += a·b (j0 and j1 − j0 multiples of PanelWidth), b row-major with rows ldb apart, or, when transposed,
    // b[k, j] = b[j·ldb + k] (Wᵀ in the forward); with overwrite, the first depth slice stores its sums (plus the bias,
    // when there is one) instead of adding them. For each depth slice of PanelDepth, each 64-column panel of b is first
    // copied into a contiguous, aligned block on the stack (64 KiB, read from L1 and L2, and its rows no longer sit a
    // power of two apart where they would share the cache's sets), then every 6-row block of c passes over it with 24
    // accumulators in registers. Rows of a are read where they are, with their strides, the last block's (fewer than 6)
    // included. Each element of c sees the same operations in the same order wherever its row and panel fall, so
    // splitting the work between threads changes no result.
    [SkipLocalsInit] // the panel is written before it is read
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    private static void PanelLoop512(float* a, int aRowStride, int aColStride, float* b, int ldb, bool transposed, float* c, int ldc,
        int rows, int depth, int j0, int j1, bool overwrite, float* bias)
    {
        if (j0 >= j1) return;
        float* panelStorage = stackalloc float[PanelDepth * PanelWidth + 16];
        float* panel = (float*)(((nint)panelStorage + 63) & ~(nint)63);
        for (int k0 = 0; k0 < depth; k0 += PanelDepth)
        {
            int kc = Math.Min(PanelDepth, depth - k0);
            bool accumulate = !overwrite || k0 > 0;
            float* ak = a + (nint)k0 * aColStride;
            for (int j = j0; j < j1; j += PanelWidth)
            {
                if (transposed) PackPanelTransposed(b + (nint)j * ldb + k0, ldb, panel, kc);
                else PackPanel(b + (nint)k0 * ldb + j, ldb, panel, kc);
                float* bj = accumulate || bias == null ? null : bias + j;
                for (int m = 0; m < rows; m += PanelRows)
                    Panel6x64Of512(ak + (nint)m * aRowStride, aRowStride, aColStride, panel, c + (nint)m * ldc + j, ldc, kc, Math.Min(PanelRows, rows - m), accumulate, bj);
            }
        }
    }

    // panel[k, c] = w[c·ldw + k] for c < 64, k < depth: 64 rows of w, each contiguous along k, become the columns,
    // 16 × 16 tiles at a time, transposed in registers.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    private static void PackPanelTransposed(float* w, int ldw, float* panel, int depth)
    {
        Vector512<float>* tile = stackalloc Vector512<float>[16];
        for (int k0 = 0; k0 < depth; k0 += 16)
        {
            int count = Math.Min(16, depth - k0);
            Vector512<float> mask = Simd.TailMask512(count);
            for (int c0 = 0; c0 < PanelWidth; c0 += 16)
            {
                for (int r = 0; r < 16; r++)
                    tile[r] = Avx512F.MaskLoad(w + (nint)(c0 + r) * ldw + k0, mask, Vector512<float>.Zero);
                Transpose16x16(tile);
                for (int k = 0; k < count; k++)
                    Vector512.StoreAligned(tile[k], panel + (k0 + k) * PanelWidth + c0);
            }
        }
    }

    // Transposes the 16 × 16 block held in 16 rows: four butterfly rounds (b = 8, 4, 2, 1), each pairing row i with
    // row i + b (i without bit b) and swapping lane j + b of the first with lane j of the second for every lane j
    // without bit b, which transposes the 2 × 2 grid of b × b blocks; after all four every element has moved.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose16x16(Vector512<float>* rows)
    {
        for (int b = 8; b >= 1; b >>= 1)
        {
            // Lane j of the new low row: j itself if j has no bit b, else lane j − b of the high row (index 16 + j − b);
            // lane j of the new high row: lane j + b of the low row if j has no bit b, else lane j of the high row.
            Vector512<int> lanes = Vector512<int>.Indices, bit = Vector512.Create(b);
            Vector512<int> hasBit = Vector512.Equals(lanes & bit, bit);
            Vector512<int> lowIndex = Vector512.ConditionalSelect(hasBit, lanes + Vector512.Create(16) - bit, lanes);
            Vector512<int> highIndex = Vector512.ConditionalSelect(hasBit, lanes + Vector512.Create(16), lanes + bit);
            for (int i = 0; i < 16; i++)
            {
                if ((i & b) != 0) continue;
                Vector512<float> low = rows[i], high = rows[i + b];
                rows[i] = Avx512F.PermuteVar16x32x2(low, lowIndex, high);
                rows[i + b] = Avx512F.PermuteVar16x32x2(low, highIndex, high);
            }
        }
    }

    // panel[k, 0..64) = b[k·ldb + 0..64) for k < depth.
    private static void PackPanel(float* b, int ldb, float* panel, int depth)
    {
        for (int k = 0; k < depth; k++)
        {
            float* source = b + (nint)k * ldb, target = panel + k * PanelWidth;
            Vector512.StoreAligned(Vector512.Load(source), target);
            Vector512.StoreAligned(Vector512.Load(source + 16), target + 16);
            Vector512.StoreAligned(Vector512.Load(source + 32), target + 32);
            Vector512.StoreAligned(Vector512.Load(source + 48), target + 48);
        }
    }

    // c[r, 0..64) += Σ_k a[r, k]·panel[k, 0..64) for r < rows (at most 6; the kernel computes 6 and stores `rows`,
    // the rows past `rows` reading row rows − 1 again, so that nothing past the matrix is read); with accumulate false,
    // c[r, 0..64) = Σ_k … (+ bias[0..64) when bias is not null) instead. Each row's sums are the same whatever `rows` is.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    internal static void Panel6x64Of512(float* a, int aRowStride, int aColStride, float* panel, float* c, int ldc, int depth, int rows, bool accumulate, float* bias)
    {
        Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default;
        Vector512<float> s10 = default, s11 = default, s12 = default, s13 = default;
        Vector512<float> s20 = default, s21 = default, s22 = default, s23 = default;
        Vector512<float> s30 = default, s31 = default, s32 = default, s33 = default;
        Vector512<float> s40 = default, s41 = default, s42 = default, s43 = default;
        Vector512<float> s50 = default, s51 = default, s52 = default, s53 = default;
        nint last = rows - 1;
        float* a0 = a, a1 = a + Math.Min(1, last) * aRowStride, a2 = a + Math.Min(2, last) * aRowStride;
        float* a3 = a + Math.Min(3, last) * aRowStride, a4 = a + Math.Min(4, last) * aRowStride, a5 = a + Math.Min(5, last) * aRowStride;
        nint ka = 0;
        for (int k = 0; k < depth; k++, ka += aColStride)
        {
            float* p = panel + k * PanelWidth;
            // Unaligned loads: a packed weight (MatMul.Packed.cs) may start anywhere; on an aligned panel they cost the same.
            Vector512<float> b0 = Vector512.Load(p), b1 = Vector512.Load(p + 16), b2 = Vector512.Load(p + 32), b3 = Vector512.Load(p + 48);
            Vector512<float> av = Vector512.Create(a0[ka]);
            s00 = Vector512.FusedMultiplyAdd(av, b0, s00); s01 = Vector512.FusedMultiplyAdd(av, b1, s01);
            s02 = Vector512.FusedMultiplyAdd(av, b2, s02); s03 = Vector512.FusedMultiplyAdd(av, b3, s03);
            av = Vector512.Create(a1[ka]);
            s10 = Vector512.FusedMultiplyAdd(av, b0, s10); s11 = Vector512.FusedMultiplyAdd(av, b1, s11);
            s12 = Vector512.FusedMultiplyAdd(av, b2, s12); s13 = Vector512.FusedMultiplyAdd(av, b3, s13);
            av = Vector512.Create(a2[ka]);
            s20 = Vector512.FusedMultiplyAdd(av, b0, s20); s21 = Vector512.FusedMultiplyAdd(av, b1, s21);
            s22 = Vector512.FusedMultiplyAdd(av, b2, s22); s23 = Vector512.FusedMultiplyAdd(av, b3, s23);
            av = Vector512.Create(a3[ka]);
            s30 = Vector512.FusedMultiplyAdd(av, b0, s30); s31 = Vector512.FusedMultiplyAdd(av, b1, s31);
            s32 = Vector512.FusedMultiplyAdd(av, b2, s32); s33 = Vector512.FusedMultiplyAdd(av, b3, s33);
            av = Vector512.Create(a4[ka]);
            s40 = Vector512.FusedMultiplyAdd(av, b0, s40); s41 = Vector512.FusedMultiplyAdd(av, b1, s41);
            s42 = Vector512.FusedMultiplyAdd(av, b2, s42); s43 = Vector512.FusedMultiplyAdd(av, b3, s43);
            av = Vector512.Create(a5[ka]);
            s50 = Vector512.FusedMultiplyAdd(av, b0, s50); s51 = Vector512.FusedMultiplyAdd(av, b1, s51);
            s52 = Vector512.FusedMultiplyAdd(av, b2, s52); s53 = Vector512.FusedMultiplyAdd(av, b3, s53);
        }
        // What is added to the sums: the old values of c, the bias, or nothing.
        float* addend = accumulate ? c : bias;
        nint addendStride = accumulate ? ldc : 0;
        StoreRow(c, s00, s01, s02, s03, addend);
        if (rows > 1) StoreRow(c + ldc, s10, s11, s12, s13, addend == null ? null : addend + addendStride);
        if (rows > 2) StoreRow(c + 2 * (nint)ldc, s20, s21, s22, s23, addend == null ? null : addend + 2 * addendStride);
        if (rows > 3) StoreRow(c + 3 * (nint)ldc, s30, s31, s32, s33, addend == null ? null : addend + 3 * addendStride);
        if (rows > 4) StoreRow(c + 4 * (nint)ldc, s40, s41, s42, s43, addend == null ? null : addend + 4 * addendStride);
        if (rows > 5) StoreRow(c + 5 * (nint)ldc, s50, s51, s52, s53, addend == null ? null : addend + 5 * addendStride);
    }

    // c[0..64) = [s0, s1, s2, s3] (+ addend[0..64) when addend is not null).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* c, Vector512<float> s0, Vector512<float> s1, Vector512<float> s2, Vector512<float> s3, float* addend)
    {
        if (addend != null)
        {
            s0 += Vector512.Load(addend);
            s1 += Vector512.Load(addend + 16);
            s2 += Vector512.Load(addend + 32);
            s3 += Vector512.Load(addend + 48);
        }
        s0.Store(c);
        s1.Store(c + 16);
        s2.Store(c + 32);
        s3.Store(c + 48);
    }

    // The narrow product: c[:, :cols] += a·b for cols < PanelWidth, in 16-column strips of 4-row blocks (masked at the
    // right edge), depth tile by depth tile so that the strip of b stays in L1.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    private static void StripProduct512(float* a, int aRowStride, int aColStride, float* b, int ldb, float* c, int ldc, int rows, int depth, int cols)
    {
        int blockedRows = rows & ~3;
        for (int k0 = 0; k0 < depth; k0 += BackwardDepthTile)
        {
            int kc = Math.Min(BackwardDepthTile, depth - k0);
            float* ak = a + (nint)k0 * aColStride;
            float* bk = b + (nint)k0 * ldb;
            for (int j = 0; j < cols; j += 16)
            {
                Vector512<float> mask = cols - j >= 16 ? Vector512<float>.AllBitsSet : Simd.TailMask512(cols - j);
                for (int m = 0; m < blockedRows; m += 4)
                    Axpy4x16Of512(ak + (nint)m * aRowStride, aRowStride, aColStride, bk + j, ldb, c + (nint)m * ldc + j, ldc, kc, mask);
            }
            AccumulateRows(ak, aRowStride, aColStride, bk, ldb, c, ldc, blockedRows, rows, kc, cols);
        }
    }

    // c[r, 0..16) += Σ_k a[r, k]·b[k, 0..16) for r in 0..3, only the lanes set in `mask` read or written.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    private static void Axpy4x16Of512(float* a, int aRowStride, int aColStride, float* b, int ldb, float* c, int ldc, int depth, Vector512<float> mask)
    {
        float* c0 = c, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        Vector512<float> z = Vector512<float>.Zero;
        Vector512<float> s0 = Avx512F.MaskLoad(c0, mask, z), s1 = Avx512F.MaskLoad(c1, mask, z);
        Vector512<float> s2 = Avx512F.MaskLoad(c2, mask, z), s3 = Avx512F.MaskLoad(c3, mask, z);
        float* a0 = a, a1 = a0 + aRowStride, a2 = a1 + aRowStride, a3 = a2 + aRowStride;
        for (int k = 0; k < depth; k++)
        {
            nint ka = (nint)k * aColStride;
            Vector512<float> bv = Avx512F.MaskLoad(b + (nint)k * ldb, mask, z);
            s0 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[ka]), bv, s0);
            s1 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[ka]), bv, s1);
            s2 = Vector512.FusedMultiplyAdd(Vector512.Create(a2[ka]), bv, s2);
            s3 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[ka]), bv, s3);
        }
        Avx512F.MaskStore(c0, mask, s0); Avx512F.MaskStore(c1, mask, s1);
        Avx512F.MaskStore(c2, mask, s2); Avx512F.MaskStore(c3, mask, s3);
    }

    // The AVX2 block: 4 rows × 16 columns, 8 accumulators.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    private static void Axpy4x16Of256(float* a, int aRowStride, int aColStride, float* b, int ldb, float* c, int ldc, int depth)
    {
        float* c0 = c, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        Vector256<float> s00 = Vector256.Load(c0), s01 = Vector256.Load(c0 + 8), s10 = Vector256.Load(c1), s11 = Vector256.Load(c1 + 8);
        Vector256<float> s20 = Vector256.Load(c2), s21 = Vector256.Load(c2 + 8), s30 = Vector256.Load(c3), s31 = Vector256.Load(c3 + 8);
        float* a0 = a, a1 = a0 + aRowStride, a2 = a1 + aRowStride, a3 = a2 + aRowStride;
        for (int k = 0; k < depth; k++)
        {
            nint ka = (nint)k * aColStride;
            float* bRow = b + (nint)k * ldb;
            Vector256<float> b0 = Vector256.Load(bRow), b1 = Vector256.Load(bRow + 8);
            Vector256<float> av = Vector256.Create(a0[ka]);
            s00 = Vector256.FusedMultiplyAdd(av, b0, s00); s01 = Vector256.FusedMultiplyAdd(av, b1, s01);
            av = Vector256.Create(a1[ka]);
            s10 = Vector256.FusedMultiplyAdd(av, b0, s10); s11 = Vector256.FusedMultiplyAdd(av, b1, s11);
            av = Vector256.Create(a2[ka]);
            s20 = Vector256.FusedMultiplyAdd(av, b0, s20); s21 = Vector256.FusedMultiplyAdd(av, b1, s21);
            av = Vector256.Create(a3[ka]);
            s30 = Vector256.FusedMultiplyAdd(av, b0, s30); s31 = Vector256.FusedMultiplyAdd(av, b1, s31);
        }
        s00.Store(c0); s01.Store(c0 + 8); s10.Store(c1); s11.Store(c1 + 8);
        s20.Store(c2); s21.Store(c2 + 8); s30.Store(c3); s31.Store(c3 + 8);
    }

    // One column of a 4-row block, scalar: the AVX2 path's column tail.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    private static void Axpy4x1(float* a, int aRowStride, int aColStride, float* b, int ldb, float* c, int ldc, int depth)
    {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        float* a0 = a, a1 = a0 + aRowStride, a2 = a1 + aRowStride, a3 = a2 + aRowStride;
        for (int k = 0; k < depth; k++)
        {
            nint ka = (nint)k * aColStride;
            float bk = b[(nint)k * ldb];
            s0 += a0[ka] * bk; s1 += a1[ka] * bk; s2 += a2[ka] * bk; s3 += a3[ka] * bk;
        }
        c[0] += s0; c[ldc] += s1; c[2 * (nint)ldc] += s2; c[3 * (nint)ldc] += s3;
    }
}
