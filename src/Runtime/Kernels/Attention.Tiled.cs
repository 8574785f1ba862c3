using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TransformerGen.Kernels;

// The forward pass of one (sequence, head) pair in outer-product form, for AVX-512 and head sizes that are whole vectors
// (16, 32, 64, 128: every Hugging Face family here). The dot-product kernels that the general path runs for Q·Kᵀ
// (MatMul.ForwardStrided) reduce every score across lanes at the end, and a head of 32 floats is only two vectors
// of work per score; here each block of 64 keys is transposed once into Kᵀ [headDim, 64] on the stack and a 6 × 64
// block of scores is held in 24 registers while the head's channels pass (one broadcast of q per row, four loads of Kᵀ,
// 24 FMAs), the layout of MatMul's packed product. P·V is the same form with V's rows read in place: a 6-row block of
// the output is held in registers while the keys pass (one broadcast of P per row and key).
//
// Measured on all-MiniLM-L6-v2's shape (12 heads of 32, 128 tokens, one thread, AMD EPYC Zen 4): one layer's attention
// 0.66–0.79 ms on the general path, 0.39 ms on this one; the scores and P·V each run at about 110 GFLOP/s here, the
// machine's FMA peak being 117.
//
// Every score is one FMA chain over the channels in ascending order from zero, and every output one chain over the keys
// in ascending order from the first key of its row block (the probabilities of keys a row does not see are exact
// zeros, which leave the chain's value unchanged), so the result does not depend on how rows are blocked or split
// between threads.
public static unsafe partial class Attention
{
    private const int TileKeys = 64, TileRows = 6;

    /// <summary>Whether <see cref="TiledPair"/> computes a pair of this head size on this path.</summary>
    private static bool TiledPairApplies(int headDim, SimdPath path)
        => path == SimdPath.Vector512 && headDim % 16 == 0 && headDim is > 0 and <= 128;

    /// <summary>
    /// One pair's forward pass: the scaled scores, their masked softmax (saved in <paramref name="probs"/>, stride
    /// <paramref name="keyLen"/>, zero where a key is not seen) and <c>out = P·V</c>, as <see cref="ForwardPairs"/>
    /// computes them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    [SkipLocalsInit] // the transposed keys are written before they are read
    private static void TiledPair(float* query, int qStride, float* key, float* value, int kvStride, float* outHead, int c, float* probs,
        int queryLen, int keyLen, int headDim, int position0, int keyStart, int keyEnd, byte* interiorPadding, bool causal, int window, ScoreTerms terms, int pair)
    {
        float* keysT = stackalloc float[headDim * TileKeys];
        // Scores, 64 keys at a time, for the rows that see any of them (a contiguous range: both ends of the keys a row
        // sees never decrease with the row).
        int firstRow = 0;
        for (int j0 = keyStart; j0 < keyEnd; j0 += TileKeys)
        {
            int width = Math.Min(TileKeys, keyEnd - j0);
            while (firstRow < queryLen && VisibleKeys(position0 + firstRow, keyStart, keyEnd, causal, window).Hi <= j0) firstRow++;
            int endRow = firstRow;
            while (endRow < queryLen && VisibleKeys(position0 + endRow, keyStart, keyEnd, causal, window).Lo < j0 + width) endRow++;
            if (endRow == firstRow) continue;
            TransposeKeys(key + (nint)j0 * kvStride, kvStride, keysT, width, headDim);
            for (int i = firstRow; i < endRow; i += TileRows)
            {
                int rows = Math.Min(TileRows, endRow - i);
                float* q = query + (nint)i * qStride, s = probs + (nint)i * keyLen + j0;
                if (width == TileKeys) Scores6x64(q, qStride, keysT, s, keyLen, headDim, rows);
                else
                    for (int v0 = 0; v0 < width; v0 += 16)
                        Scores6x16(q, qStride, keysT + v0, s + v0, keyLen, headDim, rows, Math.Min(16, width - v0));
            }
        }

        // The softmax of each row over the keys it sees; everything else in the row is 0.
        for (int i = 0; i < queryLen; i++)
        {
            (int lo, int hi) = VisibleKeys(position0 + i, keyStart, keyEnd, causal, window);
            float* row = probs + (nint)i * keyLen;
            MaskedSoftmaxRow(row, lo, hi, interiorPadding, terms.Logits(row, lo, hi, pair, position0 + i), 0, keyLen);
        }

        // out = P·V, six rows at a time over the keys any of them sees.
        for (int i = 0; i < queryLen; i += TileRows)
        {
            int rows = Math.Min(TileRows, queryLen - i);
            int lo = VisibleKeys(position0 + i, keyStart, keyEnd, causal, window).Lo;
            int hi = VisibleKeys(position0 + i + rows - 1, keyStart, keyEnd, causal, window).Hi;
            float* p = probs + (nint)i * keyLen + lo, o = outHead + (nint)i * c;
            float* v = value + (nint)lo * kvStride;
            int d0 = 0;
            for (; d0 + 64 <= headDim; d0 += 64) Values6x64(p, keyLen, v + d0, kvStride, o + d0, c, rows, hi - lo);
            for (; d0 < headDim; d0 += 16) Values6x16(p, keyLen, v + d0, kvStride, o + d0, c, rows, hi - lo);
        }
    }

    // keysT[d·64 + j] = key[j·kvStride + d] for j < width; the columns past width are zero.
    private static void TransposeKeys(float* key, int kvStride, float* keysT, int width, int headDim)
    {
        for (int j = 0; j < width; j++)
        {
            float* k = key + (nint)j * kvStride;
            for (int d = 0; d < headDim; d++) keysT[d * TileKeys + j] = k[d];
        }
        if (width < TileKeys)
            for (int d = 0; d < headDim; d++) new Span<float>(keysT + d * TileKeys + width, TileKeys - width).Clear();
    }

    // Row pointers of a block of `rows` ≤ 6: the missing rows alias the first, and their sums are never stored.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* RowOf(float* first, int stride, int r, int rows) => r < rows ? first + (nint)r * stride : first;

    // s[r, 0..64) = Σ_d q[r, d]·keysT[d, 0..64) for the block's rows.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scores6x64(float* q, int qStride, float* keysT, float* s, int ls, int headDim, int rows)
    {
        float* q0 = q, q1 = RowOf(q, qStride, 1, rows), q2 = RowOf(q, qStride, 2, rows);
        float* q3 = RowOf(q, qStride, 3, rows), q4 = RowOf(q, qStride, 4, rows), q5 = RowOf(q, qStride, 5, rows);
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, d0 = default, d1 = default, d2 = default, d3 = default;
        Vector512<float> e0 = default, e1 = default, e2 = default, e3 = default, f0 = default, f1 = default, f2 = default, f3 = default;
        for (int d = 0; d < headDim; d++)
        {
            float* kt = keysT + d * TileKeys;
            Vector512<float> k0 = Vector512.Load(kt), k1 = Vector512.Load(kt + 16), k2 = Vector512.Load(kt + 32), k3 = Vector512.Load(kt + 48);
            Vector512<float> x = Vector512.Create(q0[d]);
            a0 = Vector512.FusedMultiplyAdd(x, k0, a0); a1 = Vector512.FusedMultiplyAdd(x, k1, a1); a2 = Vector512.FusedMultiplyAdd(x, k2, a2); a3 = Vector512.FusedMultiplyAdd(x, k3, a3);
            x = Vector512.Create(q1[d]);
            b0 = Vector512.FusedMultiplyAdd(x, k0, b0); b1 = Vector512.FusedMultiplyAdd(x, k1, b1); b2 = Vector512.FusedMultiplyAdd(x, k2, b2); b3 = Vector512.FusedMultiplyAdd(x, k3, b3);
            x = Vector512.Create(q2[d]);
            c0 = Vector512.FusedMultiplyAdd(x, k0, c0); c1 = Vector512.FusedMultiplyAdd(x, k1, c1); c2 = Vector512.FusedMultiplyAdd(x, k2, c2); c3 = Vector512.FusedMultiplyAdd(x, k3, c3);
            x = Vector512.Create(q3[d]);
            d0 = Vector512.FusedMultiplyAdd(x, k0, d0); d1 = Vector512.FusedMultiplyAdd(x, k1, d1); d2 = Vector512.FusedMultiplyAdd(x, k2, d2); d3 = Vector512.FusedMultiplyAdd(x, k3, d3);
            x = Vector512.Create(q4[d]);
            e0 = Vector512.FusedMultiplyAdd(x, k0, e0); e1 = Vector512.FusedMultiplyAdd(x, k1, e1); e2 = Vector512.FusedMultiplyAdd(x, k2, e2); e3 = Vector512.FusedMultiplyAdd(x, k3, e3);
            x = Vector512.Create(q5[d]);
            f0 = Vector512.FusedMultiplyAdd(x, k0, f0); f1 = Vector512.FusedMultiplyAdd(x, k1, f1); f2 = Vector512.FusedMultiplyAdd(x, k2, f2); f3 = Vector512.FusedMultiplyAdd(x, k3, f3);
        }
        Store4(s, a0, a1, a2, a3);
        if (rows > 1) Store4(s + ls, b0, b1, b2, b3);
        if (rows > 2) Store4(s + 2 * ls, c0, c1, c2, c3);
        if (rows > 3) Store4(s + 3 * ls, d0, d1, d2, d3);
        if (rows > 4) Store4(s + 4 * ls, e0, e1, e2, e3);
        if (rows > 5) Store4(s + 5 * ls, f0, f1, f2, f3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4(float* y, Vector512<float> s0, Vector512<float> s1, Vector512<float> s2, Vector512<float> s3)
    {
        s0.Store(y);
        s1.Store(y + 16);
        s2.Store(y + 32);
        s3.Store(y + 48);
    }

    // s[r, 0..count) = Σ_d q[r, d]·keysT[d, 0..count) for count ≤ 16 keys (a tile's last keys): the same chains as
    // Scores6x64, one vector of columns, stored under a mask.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scores6x16(float* q, int qStride, float* keysT, float* s, int ls, int headDim, int rows, int count)
    {
        float* q0 = q, q1 = RowOf(q, qStride, 1, rows), q2 = RowOf(q, qStride, 2, rows);
        float* q3 = RowOf(q, qStride, 3, rows), q4 = RowOf(q, qStride, 4, rows), q5 = RowOf(q, qStride, 5, rows);
        Vector512<float> a = default, b = default, cc = default, dd = default, e = default, f = default;
        for (int d = 0; d < headDim; d++)
        {
            Vector512<float> k = Vector512.Load(keysT + d * TileKeys);
            a = Vector512.FusedMultiplyAdd(Vector512.Create(q0[d]), k, a);
            b = Vector512.FusedMultiplyAdd(Vector512.Create(q1[d]), k, b);
            cc = Vector512.FusedMultiplyAdd(Vector512.Create(q2[d]), k, cc);
            dd = Vector512.FusedMultiplyAdd(Vector512.Create(q3[d]), k, dd);
            e = Vector512.FusedMultiplyAdd(Vector512.Create(q4[d]), k, e);
            f = Vector512.FusedMultiplyAdd(Vector512.Create(q5[d]), k, f);
        }
        Vector512<float> mask = Simd.TailMask512(count);
        Avx512F.MaskStore(s, mask, a);
        if (rows > 1) Avx512F.MaskStore(s + ls, mask, b);
        if (rows > 2) Avx512F.MaskStore(s + 2 * ls, mask, cc);
        if (rows > 3) Avx512F.MaskStore(s + 3 * ls, mask, dd);
        if (rows > 4) Avx512F.MaskStore(s + 4 * ls, mask, e);
        if (rows > 5) Avx512F.MaskStore(s + 5 * ls, mask, f);
    }

    // o[r, 0..64) = Σ_j p[r, j]·v[j, 0..64) over `keys` keys, stored.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Values6x64(float* p, int lp, float* v, int kvStride, float* o, int c, int rows, int keys)
    {
        float* p0 = p, p1 = RowOf(p, lp, 1, rows), p2 = RowOf(p, lp, 2, rows);
        float* p3 = RowOf(p, lp, 3, rows), p4 = RowOf(p, lp, 4, rows), p5 = RowOf(p, lp, 5, rows);
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, d0 = default, d1 = default, d2 = default, d3 = default;
        Vector512<float> e0 = default, e1 = default, e2 = default, e3 = default, f0 = default, f1 = default, f2 = default, f3 = default;
        for (int j = 0; j < keys; j++)
        {
            float* vj = v + (nint)j * kvStride;
            Vector512<float> v0 = Vector512.Load(vj), v1 = Vector512.Load(vj + 16), v2 = Vector512.Load(vj + 32), v3 = Vector512.Load(vj + 48);
            Vector512<float> x = Vector512.Create(p0[j]);
            a0 = Vector512.FusedMultiplyAdd(x, v0, a0); a1 = Vector512.FusedMultiplyAdd(x, v1, a1); a2 = Vector512.FusedMultiplyAdd(x, v2, a2); a3 = Vector512.FusedMultiplyAdd(x, v3, a3);
            x = Vector512.Create(p1[j]);
            b0 = Vector512.FusedMultiplyAdd(x, v0, b0); b1 = Vector512.FusedMultiplyAdd(x, v1, b1); b2 = Vector512.FusedMultiplyAdd(x, v2, b2); b3 = Vector512.FusedMultiplyAdd(x, v3, b3);
            x = Vector512.Create(p2[j]);
            c0 = Vector512.FusedMultiplyAdd(x, v0, c0); c1 = Vector512.FusedMultiplyAdd(x, v1, c1); c2 = Vector512.FusedMultiplyAdd(x, v2, c2); c3 = Vector512.FusedMultiplyAdd(x, v3, c3);
            x = Vector512.Create(p3[j]);
            d0 = Vector512.FusedMultiplyAdd(x, v0, d0); d1 = Vector512.FusedMultiplyAdd(x, v1, d1); d2 = Vector512.FusedMultiplyAdd(x, v2, d2); d3 = Vector512.FusedMultiplyAdd(x, v3, d3);
            x = Vector512.Create(p4[j]);
            e0 = Vector512.FusedMultiplyAdd(x, v0, e0); e1 = Vector512.FusedMultiplyAdd(x, v1, e1); e2 = Vector512.FusedMultiplyAdd(x, v2, e2); e3 = Vector512.FusedMultiplyAdd(x, v3, e3);
            x = Vector512.Create(p5[j]);
            f0 = Vector512.FusedMultiplyAdd(x, v0, f0); f1 = Vector512.FusedMultiplyAdd(x, v1, f1); f2 = Vector512.FusedMultiplyAdd(x, v2, f2); f3 = Vector512.FusedMultiplyAdd(x, v3, f3);
        }
        Store4(o, a0, a1, a2, a3);
        if (rows > 1) Store4(o + c, b0, b1, b2, b3);
        if (rows > 2) Store4(o + 2 * c, c0, c1, c2, c3);
        if (rows > 3) Store4(o + 3 * c, d0, d1, d2, d3);
        if (rows > 4) Store4(o + 4 * c, e0, e1, e2, e3);
        if (rows > 5) Store4(o + 5 * c, f0, f1, f2, f3);
    }

    // o[r, 0..16) = Σ_j p[r, j]·v[j, 0..16): the last 16 channels of a head whose size is not a multiple of 64.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Values6x16(float* p, int lp, float* v, int kvStride, float* o, int c, int rows, int keys)
    {
        float* p0 = p, p1 = RowOf(p, lp, 1, rows), p2 = RowOf(p, lp, 2, rows);
        float* p3 = RowOf(p, lp, 3, rows), p4 = RowOf(p, lp, 4, rows), p5 = RowOf(p, lp, 5, rows);
        Vector512<float> a = default, b = default, cc = default, dd = default, e = default, f = default;
        for (int j = 0; j < keys; j++)
        {
            Vector512<float> vj = Vector512.Load(v + (nint)j * kvStride);
            a = Vector512.FusedMultiplyAdd(Vector512.Create(p0[j]), vj, a);
            b = Vector512.FusedMultiplyAdd(Vector512.Create(p1[j]), vj, b);
            cc = Vector512.FusedMultiplyAdd(Vector512.Create(p2[j]), vj, cc);
            dd = Vector512.FusedMultiplyAdd(Vector512.Create(p3[j]), vj, dd);
            e = Vector512.FusedMultiplyAdd(Vector512.Create(p4[j]), vj, e);
            f = Vector512.FusedMultiplyAdd(Vector512.Create(p5[j]), vj, f);
        }
        a.Store(o);
        if (rows > 1) b.Store(o + c);
        if (rows > 2) cc.Store(o + 2 * c);
        if (rows > 3) dd.Store(o + 3 * c);
        if (rows > 4) e.Store(o + 4 * c);
        if (rows > 5) f.Store(o + 5 * c);
    }
}
