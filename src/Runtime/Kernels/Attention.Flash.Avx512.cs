using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TransformerGen.Kernels;

// The tiled attention's AVX-512 path. A head is 8–128 floats wide, so Q·Kᵀ as dot products spends as much on the
// horizontal sums as on the multiplies, and the general product kernels see 32 × 128 × 32 blocks, too small for their
// panels. This path lays a query tile's 32 rows across two vectors instead: the query tile is transposed once,
// Qᵀ [headDim, 32], and every score tile is computed transposed, Sᵀ[j, r] = Σ_k K[j, k]·Qᵀ[k, r], by broadcasting one
// key element against the query tile (no horizontal sums). The softmax of query row r then runs down a column of Sᵀ,
// which is one lane of the same two vectors: the running max and sum of all 32 rows are two vectors each, and the
// masks compare a key index with two vectors of per-row bounds. The products whose result has query rows (P·V, dS·K)
// are kept transposed too, Oᵀ and dQᵀ [headDim, 32] in scratch for the whole query tile, each term a key element
// broadcast against a row of Pᵀ or dSᵀ (AccumulateTransposed): the online softmax rescales them by a lane vector, and
// they reach the output rows once per query tile. Those with key rows (Pᵀ·dO, dSᵀ·Q) broadcast one element of Pᵀ or
// dSᵀ against a row of dO or Q, copied once per query tile into contiguous scratch (AccumulateKeyRows): the rows of
// one head in the packed Q | K | V and gradient buffers lie 3·C floats apart, a stride at which every row of a head
// falls into the same few of the L1 cache's sets. Exponentials are powers of two with the softmax scale folded into
// log₂e (Exp2). Same tiles, same masks and the same statistics as the portable path; the sums run in another order,
// so the two agree to rounding, and each is bit-identical for any thread count.
public static unsafe partial class Attention
{
    // Query rows per tile in this path: two vectors of 16 lanes (the shape's QueryRows never exceeds it).
    private const int TileLanes = 32;

    /// <summary>Per query row of a tile, the keys it sees as bounds [lo, hi) in two lane vectors, and the tile's widest common range.</summary>
    private struct RowBounds
    {
        public Vector512<int> Lo0, Lo1, Hi0, Hi1;
        /// <summary>Keys in [AllFrom, AllTo) are visible to every valid row (apart from interior padding).</summary>
        public int AllFrom, AllTo;
    }

    private static RowBounds BoundsOf(in FlashShape shape, int i0, int rows, int keyStart, int keyEnd)
    {
        int* lo = stackalloc int[TileLanes];
        int* hi = stackalloc int[TileLanes];
        int allFrom = 0, allTo = int.MaxValue;
        for (int r = 0; r < TileLanes; r++)
        {
            if (r < rows)
            {
                (lo[r], hi[r]) = VisibleKeys(i0 + r, keyStart, keyEnd, shape.Causal, shape.Window);
                allFrom = Math.Max(allFrom, lo[r]);
                allTo = Math.Min(allTo, hi[r]);
            }
            else
            {
                lo[r] = hi[r] = 0; // rows past the tile's end see nothing
            }
        }
        return new RowBounds
        {
            Lo0 = Vector512.Load(lo), Lo1 = Vector512.Load(lo + 16), Hi0 = Vector512.Load(hi), Hi1 = Vector512.Load(hi + 16),
            AllFrom = allFrom, AllTo = Math.Max(allFrom, allTo),
        };
    }

    /// <summary>Qᵀ of a tile: <c>t[k·32 + r] = src[r·stride + k]</c> for r &lt; rows, 0 for the lanes past them.</summary>
    [SkipLocalsInit]
    private static void TransposeTile(float* src, int stride, int rows, int headDim, float* t)
    {
        Vector512<float>* m = stackalloc Vector512<float>[32];
        for (int r0 = 0; r0 < TileLanes; r0 += 16)
        {
            for (int k0 = 0; k0 < headDim; k0 += 16)
            {
                int kn = Math.Min(16, headDim - k0);
                Vector512<float> mask = kn == 16 ? Vector512<float>.AllBitsSet : Simd.TailMask512(kn);
                for (int i = 0; i < 16; i++)
                    m[i] = r0 + i < rows ? Avx512F.MaskLoad(src + (nint)(r0 + i) * stride + k0, mask, Vector512<float>.Zero) : Vector512<float>.Zero;
                Transpose16(m, m + 16);
                for (int i = 0; i < kn; i++) m[i].Store(t + (k0 + i) * TileLanes + r0);
            }
        }
    }

    /// <summary><c>dst[r·dstStride + d] (+)= t[d·32 + r]</c> for r &lt; rows, d &lt; headDim: a transposed tile back into rows, stored or added.</summary>
    [SkipLocalsInit]
    private static void StoreTransposed(float* t, int headDim, int rows, float* dst, int dstStride, bool add)
    {
        Vector512<float>* m = stackalloc Vector512<float>[32];
        for (int r0 = 0; r0 < rows; r0 += 16)
        {
            int rn = Math.Min(16, rows - r0);
            for (int d0 = 0; d0 < headDim; d0 += 16)
            {
                int dn = Math.Min(16, headDim - d0);
                Vector512<float> mask = dn == 16 ? Vector512<float>.AllBitsSet : Simd.TailMask512(dn);
                for (int i = 0; i < 16; i++) m[i] = i < dn ? Vector512.Load(t + (d0 + i) * TileLanes + r0) : Vector512<float>.Zero;
                Transpose16(m, m + 16);
                for (int j = 0; j < rn; j++)
                {
                    float* row = dst + (nint)(r0 + j) * dstStride + d0;
                    Vector512<float> value = add ? Avx512F.MaskLoad(row, mask, Vector512<float>.Zero) + m[j] : m[j];
                    Avx512F.MaskStore(row, mask, value);
                }
            }
        }
    }

    /// <summary>
    /// Transposes 16 vectors in place, <c>m[i][j] ← m[j][i]</c>, through <paramref name="s"/> (16 more): pairs of rows
    /// interleaved, then pairs of pairs within each 128-bit lane, then the lanes themselves moved across vectors twice.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose16(Vector512<float>* m, Vector512<float>* s)
    {
        for (int i = 0; i < 16; i += 2)
        {
            s[i] = Avx512F.UnpackLow(m[i], m[i + 1]);
            s[i + 1] = Avx512F.UnpackHigh(m[i], m[i + 1]);
        }
        for (int b = 0; b < 16; b += 4)
        {
            m[b] = Avx512F.Shuffle(s[b], s[b + 2], 0x44);
            m[b + 1] = Avx512F.Shuffle(s[b], s[b + 2], 0xEE);
            m[b + 2] = Avx512F.Shuffle(s[b + 1], s[b + 3], 0x44);
            m[b + 3] = Avx512F.Shuffle(s[b + 1], s[b + 3], 0xEE);
        }
        for (int b = 0; b < 16; b += 8)
        {
            for (int i = 0; i < 4; i++)
            {
                s[b + i] = Avx512F.Shuffle4x128(m[b + i], m[b + 4 + i], 0x88);
                s[b + 4 + i] = Avx512F.Shuffle4x128(m[b + i], m[b + 4 + i], 0xDD);
            }
        }
        for (int i = 0; i < 8; i++)
        {
            m[i] = Avx512F.Shuffle4x128(s[i], s[8 + i], 0x88);
            m[8 + i] = Avx512F.Shuffle4x128(s[i], s[8 + i], 0xDD);
        }
    }

    /// <summary>
    /// <c>out[j·32 + r] = Σ_k a[j·aStride + k]·t[k·32 + r]</c> for j &lt; cols and all 32 lanes r: a transposed tile of
    /// products of <paramref name="cols"/> rows of K (or V) with a transposed query (or dO) tile.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransposedProducts(float* a, int aStride, float* t, int cols, int headDim, float* result)
    {
        int j = 0;
        for (; j + 8 <= cols; j += 8)
        {
            // Eight row pointers, so that each broadcast is one load at pointer + k (no index arithmetic in the loop).
            float* a0 = a + (nint)j * aStride, a1 = a0 + aStride, a2 = a1 + aStride, a3 = a2 + aStride;
            float* a4 = a3 + aStride, a5 = a4 + aStride, a6 = a5 + aStride, a7 = a6 + aStride;
            Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
            Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
            float* tk = t;
            for (int k = 0; k < headDim; k++, tk += TileLanes)
            {
                Vector512<float> t0 = Vector512.Load(tk), t1 = Vector512.Load(tk + 16);
                Vector512<float> x = Vector512.Create(a0[k]);
                c00 = Vector512.FusedMultiplyAdd(x, t0, c00); c01 = Vector512.FusedMultiplyAdd(x, t1, c01);
                x = Vector512.Create(a1[k]);
                c10 = Vector512.FusedMultiplyAdd(x, t0, c10); c11 = Vector512.FusedMultiplyAdd(x, t1, c11);
                x = Vector512.Create(a2[k]);
                c20 = Vector512.FusedMultiplyAdd(x, t0, c20); c21 = Vector512.FusedMultiplyAdd(x, t1, c21);
                x = Vector512.Create(a3[k]);
                c30 = Vector512.FusedMultiplyAdd(x, t0, c30); c31 = Vector512.FusedMultiplyAdd(x, t1, c31);
                x = Vector512.Create(a4[k]);
                c40 = Vector512.FusedMultiplyAdd(x, t0, c40); c41 = Vector512.FusedMultiplyAdd(x, t1, c41);
                x = Vector512.Create(a5[k]);
                c50 = Vector512.FusedMultiplyAdd(x, t0, c50); c51 = Vector512.FusedMultiplyAdd(x, t1, c51);
                x = Vector512.Create(a6[k]);
                c60 = Vector512.FusedMultiplyAdd(x, t0, c60); c61 = Vector512.FusedMultiplyAdd(x, t1, c61);
                x = Vector512.Create(a7[k]);
                c70 = Vector512.FusedMultiplyAdd(x, t0, c70); c71 = Vector512.FusedMultiplyAdd(x, t1, c71);
            }
            float* o = result + j * TileLanes;
            c00.Store(o); c01.Store(o + 16); c10.Store(o + 32); c11.Store(o + 48);
            c20.Store(o + 64); c21.Store(o + 80); c30.Store(o + 96); c31.Store(o + 112);
            c40.Store(o + 128); c41.Store(o + 144); c50.Store(o + 160); c51.Store(o + 176);
            c60.Store(o + 192); c61.Store(o + 208); c70.Store(o + 224); c71.Store(o + 240);
        }
        for (; j < cols; j++)
        {
            float* aj = a + (nint)j * aStride;
            Vector512<float> c0 = default, c1 = default;
            for (int k = 0; k < headDim; k++)
            {
                Vector512<float> x = Vector512.Create(aj[k]);
                c0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(t + k * TileLanes), c0);
                c1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(t + k * TileLanes + 16), c1);
            }
            c0.Store(result + j * TileLanes);
            c1.Store(result + j * TileLanes + 16);
        }
    }

    /// <summary>
    /// <c>c[x·cStride + col] += Σ_y w[x·32 + y]·src[y·srcStride + col]</c> for x &lt; xs, y &lt; ys, col &lt; width:
    /// key rows of a head's gradient (dV, dK) as rows of dO or Q (<paramref name="src"/>, a contiguous copy) weighted by
    /// a transposed tile (Pᵀ or dSᵀ, one key per 32 floats).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateKeyRows(float* w, float* src, int srcStride, float* c, int cStride, int xs, int ys, int width)
    {
        for (int col = 0; col < width; col += 32)
        {
            int left = width - col;
            Vector512<float> m0 = left >= 16 ? Vector512<float>.AllBitsSet : Simd.TailMask512(left);
            Vector512<float> m1 = left >= 32 ? Vector512<float>.AllBitsSet : left > 16 ? Simd.TailMask512(left - 16) : Vector512<float>.Zero;
            bool second = left > 16;
            float* s = src + col;
            int x = 0;
            // Whole 32-column chunks (any head of 32, 64, 96, 128) take plain loads and stores; a last, narrower one masks.
            if (left >= 32)
                for (; x + 8 <= xs; x += 8) KeyRows8<WholeColumns>(w + (nint)x * TileLanes, s, srcStride, c + (nint)x * cStride + col, cStride, ys, m0, m1, second);
            else
                for (; x + 8 <= xs; x += 8) KeyRows8<MaskedColumns>(w + (nint)x * TileLanes, s, srcStride, c + (nint)x * cStride + col, cStride, ys, m0, m1, second);
            for (; x < xs; x++)
            {
                Vector512<float> c0 = default, c1 = default;
                float* wy = w + (nint)x * TileLanes;
                for (int y = 0; y < ys; y++)
                {
                    float* sy = s + (nint)y * srcStride;
                    Vector512<float> b = Vector512.Create(wy[y]);
                    c0 = Vector512.FusedMultiplyAdd(b, Avx512F.MaskLoad(sy, m0, Vector512<float>.Zero), c0);
                    if (second) c1 = Vector512.FusedMultiplyAdd(b, Avx512F.MaskLoad(sy + 16, m1, Vector512<float>.Zero), c1);
                }
                AddRow(c + (nint)x * cStride + col, c0, c1, m0, m1, second);
            }
        }
    }

    /// <summary>How <see cref="KeyRows8{TColumns}"/> reads a row of up to 32 columns and adds into one: whole, or masked.</summary>
    private interface IKeyColumns
    {
        static abstract Vector512<float> Load(float* p, Vector512<float> m0, Vector512<float> m1, bool second, out Vector512<float> upper);
        static abstract void Add(float* c, Vector512<float> v0, Vector512<float> v1, Vector512<float> m0, Vector512<float> m1, bool second);
    }

    /// <summary>32 whole columns: plain loads and stores, nothing tested in the inner loop.</summary>
    private readonly struct WholeColumns : IKeyColumns
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(float* p, Vector512<float> m0, Vector512<float> m1, bool second, out Vector512<float> upper)
        {
            upper = Vector512.Load(p + 16);
            return Vector512.Load(p);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Add(float* c, Vector512<float> v0, Vector512<float> v1, Vector512<float> m0, Vector512<float> m1, bool second)
        {
            (Vector512.Load(c) + v0).Store(c);
            (Vector512.Load(c + 16) + v1).Store(c + 16);
        }
    }

    /// <summary>A last chunk of fewer than 32 columns: masked loads and stores, the upper vector only where it has columns.</summary>
    private readonly struct MaskedColumns : IKeyColumns
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(float* p, Vector512<float> m0, Vector512<float> m1, bool second, out Vector512<float> upper)
        {
            upper = second ? Avx512F.MaskLoad(p + 16, m1, Vector512<float>.Zero) : Vector512<float>.Zero;
            return Avx512F.MaskLoad(p, m0, Vector512<float>.Zero);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Add(float* c, Vector512<float> v0, Vector512<float> v1, Vector512<float> m0, Vector512<float> m1, bool second) =>
            AddRow(c, v0, v1, m0, m1, second);
    }

    /// <summary>
    /// <see cref="AccumulateKeyRows"/> for 8 key rows and one chunk of up to 32 columns: 16 sums in registers over the
    /// inputs in ascending order, then added into the rows. The whole-column form (a struct type argument, so compiled
    /// apart) has no masks and no test in its inner loop. Measured against the masked loop on the same calls (Batch 2, 8
    /// causal heads of 32, 2048 positions, one thread, four alternating rounds at load 1.5–2): FlashBackward 128.7–131.6 ms
    /// against 135.9–138.1 ms.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void KeyRows8<TColumns>(float* w, float* s, int srcStride, float* c, int cStride, int ys, Vector512<float> m0, Vector512<float> m1, bool second)
        where TColumns : struct, IKeyColumns
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        float* wy = w, sy = s;
        for (int y = 0; y < ys; y++, wy++, sy += srcStride)
        {
            Vector512<float> s0 = TColumns.Load(sy, m0, m1, second, out Vector512<float> s1);
            Vector512<float> b = Vector512.Create(wy[0]);
            c00 = Vector512.FusedMultiplyAdd(b, s0, c00); c01 = Vector512.FusedMultiplyAdd(b, s1, c01);
            b = Vector512.Create(wy[TileLanes]);
            c10 = Vector512.FusedMultiplyAdd(b, s0, c10); c11 = Vector512.FusedMultiplyAdd(b, s1, c11);
            b = Vector512.Create(wy[2 * TileLanes]);
            c20 = Vector512.FusedMultiplyAdd(b, s0, c20); c21 = Vector512.FusedMultiplyAdd(b, s1, c21);
            b = Vector512.Create(wy[3 * TileLanes]);
            c30 = Vector512.FusedMultiplyAdd(b, s0, c30); c31 = Vector512.FusedMultiplyAdd(b, s1, c31);
            b = Vector512.Create(wy[4 * TileLanes]);
            c40 = Vector512.FusedMultiplyAdd(b, s0, c40); c41 = Vector512.FusedMultiplyAdd(b, s1, c41);
            b = Vector512.Create(wy[5 * TileLanes]);
            c50 = Vector512.FusedMultiplyAdd(b, s0, c50); c51 = Vector512.FusedMultiplyAdd(b, s1, c51);
            b = Vector512.Create(wy[6 * TileLanes]);
            c60 = Vector512.FusedMultiplyAdd(b, s0, c60); c61 = Vector512.FusedMultiplyAdd(b, s1, c61);
            b = Vector512.Create(wy[7 * TileLanes]);
            c70 = Vector512.FusedMultiplyAdd(b, s0, c70); c71 = Vector512.FusedMultiplyAdd(b, s1, c71);
        }
        TColumns.Add(c, c00, c01, m0, m1, second);
        TColumns.Add(c + cStride, c10, c11, m0, m1, second);
        TColumns.Add(c + 2 * (nint)cStride, c20, c21, m0, m1, second);
        TColumns.Add(c + 3 * (nint)cStride, c30, c31, m0, m1, second);
        TColumns.Add(c + 4 * (nint)cStride, c40, c41, m0, m1, second);
        TColumns.Add(c + 5 * (nint)cStride, c50, c51, m0, m1, second);
        TColumns.Add(c + 6 * (nint)cStride, c60, c61, m0, m1, second);
        TColumns.Add(c + 7 * (nint)cStride, c70, c71, m0, m1, second);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow(float* c, Vector512<float> v0, Vector512<float> v1, Vector512<float> m0, Vector512<float> m1, bool second)
    {
        Avx512F.MaskStore(c, m0, Avx512F.MaskLoad(c, m0, Vector512<float>.Zero) + v0);
        if (second) Avx512F.MaskStore(c + 16, m1, Avx512F.MaskLoad(c + 16, m1, Vector512<float>.Zero) + v1);
    }

    /// <summary>
    /// <c>accT[d·32 + r] = accT[d·32 + r]·f[r] + Σ_j a[j·aStride + d]·w[j·32 + r]</c> for d &lt; headDim, j &lt; cols
    /// and all 32 lanes r: a transposed product with query rows (Oᵀ += Vᵀ·Pᵀ, dQᵀ += Kᵀ·dSᵀ), its running value first
    /// scaled per lane by (<paramref name="f0"/>, <paramref name="f1"/>) (the online softmax's correction). Each key
    /// element is broadcast against a row of the tile in L1; eight channels at a time hold 16 accumulators.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateTransposed(float* a, int aStride, float* w, int cols, int headDim, float* accT, Vector512<float> f0, Vector512<float> f1)
    {
        int d = 0;
        for (; d + 8 <= headDim; d += 8)
        {
            float* o = accT + d * TileLanes;
            Vector512<float> c00 = Vector512.Load(o) * f0, c01 = Vector512.Load(o + 16) * f1, c10 = Vector512.Load(o + 32) * f0, c11 = Vector512.Load(o + 48) * f1;
            Vector512<float> c20 = Vector512.Load(o + 64) * f0, c21 = Vector512.Load(o + 80) * f1, c30 = Vector512.Load(o + 96) * f0, c31 = Vector512.Load(o + 112) * f1;
            Vector512<float> c40 = Vector512.Load(o + 128) * f0, c41 = Vector512.Load(o + 144) * f1, c50 = Vector512.Load(o + 160) * f0, c51 = Vector512.Load(o + 176) * f1;
            Vector512<float> c60 = Vector512.Load(o + 192) * f0, c61 = Vector512.Load(o + 208) * f1, c70 = Vector512.Load(o + 224) * f0, c71 = Vector512.Load(o + 240) * f1;
            float* aj = a + d, wj = w;
            for (int j = 0; j < cols; j++, aj += aStride, wj += TileLanes)
            {
                Vector512<float> w0 = Vector512.Load(wj), w1 = Vector512.Load(wj + 16);
                Vector512<float> x = Vector512.Create(aj[0]);
                c00 = Vector512.FusedMultiplyAdd(x, w0, c00); c01 = Vector512.FusedMultiplyAdd(x, w1, c01);
                x = Vector512.Create(aj[1]);
                c10 = Vector512.FusedMultiplyAdd(x, w0, c10); c11 = Vector512.FusedMultiplyAdd(x, w1, c11);
                x = Vector512.Create(aj[2]);
                c20 = Vector512.FusedMultiplyAdd(x, w0, c20); c21 = Vector512.FusedMultiplyAdd(x, w1, c21);
                x = Vector512.Create(aj[3]);
                c30 = Vector512.FusedMultiplyAdd(x, w0, c30); c31 = Vector512.FusedMultiplyAdd(x, w1, c31);
                x = Vector512.Create(aj[4]);
                c40 = Vector512.FusedMultiplyAdd(x, w0, c40); c41 = Vector512.FusedMultiplyAdd(x, w1, c41);
                x = Vector512.Create(aj[5]);
                c50 = Vector512.FusedMultiplyAdd(x, w0, c50); c51 = Vector512.FusedMultiplyAdd(x, w1, c51);
                x = Vector512.Create(aj[6]);
                c60 = Vector512.FusedMultiplyAdd(x, w0, c60); c61 = Vector512.FusedMultiplyAdd(x, w1, c61);
                x = Vector512.Create(aj[7]);
                c70 = Vector512.FusedMultiplyAdd(x, w0, c70); c71 = Vector512.FusedMultiplyAdd(x, w1, c71);
            }
            c00.Store(o); c01.Store(o + 16); c10.Store(o + 32); c11.Store(o + 48);
            c20.Store(o + 64); c21.Store(o + 80); c30.Store(o + 96); c31.Store(o + 112);
            c40.Store(o + 128); c41.Store(o + 144); c50.Store(o + 160); c51.Store(o + 176);
            c60.Store(o + 192); c61.Store(o + 208); c70.Store(o + 224); c71.Store(o + 240);
        }
        for (; d < headDim; d++)
        {
            float* o = accT + d * TileLanes;
            Vector512<float> c0 = Vector512.Load(o) * f0, c1 = Vector512.Load(o + 16) * f1;
            float* aj = a + d, wj = w;
            for (int j = 0; j < cols; j++, aj += aStride, wj += TileLanes)
            {
                Vector512<float> x = Vector512.Create(aj[0]);
                c0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(wj), c0);
                c1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(wj + 16), c1);
            }
            c0.Store(o);
            c1.Store(o + 16);
        }
    }

    /// <summary><c>dst[r·headDim + k] = src[r·stride + k]</c> for r &lt; rows, k &lt; headDim: a tile's rows of one head, contiguous.</summary>
    private static void CopyRows(float* src, int stride, int rows, int headDim, float* dst)
    {
        int whole = headDim & ~15;
        Vector512<float> tail = Simd.TailMask512(headDim - whole);
        for (int r = 0; r < rows; r++)
        {
            float* from = src + (nint)r * stride, to = dst + (nint)r * headDim;
            int k = 0;
            for (; k < whole; k += 16) Vector512.Load(from + k).Store(to + k);
            if (k < headDim) Avx512F.MaskStore(to + k, tail, Avx512F.MaskLoad(from + k, tail, Vector512<float>.Zero));
        }
    }

    /// <summary><c>Σ_k x[k]·y[k]</c> for k &lt; n, in registers (a library call per row of one head costs more than its work).</summary>
    private static float RowDot(float* x, float* y, int n)
    {
        Vector512<float> sum = Vector512<float>.Zero;
        int k = 0;
        for (; k + 16 <= n; k += 16) sum = Vector512.FusedMultiplyAdd(Vector512.Load(x + k), Vector512.Load(y + k), sum);
        if (k < n)
        {
            Vector512<float> tail = Simd.TailMask512(n - k);
            sum = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(x + k, tail, Vector512<float>.Zero), Avx512F.MaskLoad(y + k, tail, Vector512<float>.Zero), sum);
        }
        return Vector512.Sum(sum);
    }

    // 2ʸ = 2ⁿ·2ᶠ with n = round(y), f = y − n in [−½, ½]: the polynomial for 2ᶠ is Cephes' exp2f (S. L. Moshier, Cephes
    // Math Library, exp2f.c: relative error 1.7e-7 peak over its range; 7.9e-8 for these coefficients in single
    // precision over [−½, ½]), and VSCALEFPS multiplies by 2ⁿ, going to 0 below the smallest float.
    private const float Exp2C6 = 1.535336188319500e-4f, Exp2C5 = 1.339887440266574e-3f, Exp2C4 = 9.618437357674640e-3f;
    private const float Exp2C3 = 5.550332471162809e-2f, Exp2C2 = 2.402264791363012e-1f, Exp2C1 = 6.931472028550421e-1f;

    /// <summary>log₂e: the softmax's e^((s − m)·scale) is computed as 2^(s·scale·log₂e − m·scale·log₂e).</summary>
    private const float Log2E = 1.44269504088896341f;

    /// <summary>
    /// 2 to the power of each lane, for the softmax's exponentials (arguments at most about 0): −∞ (a masked score)
    /// gives exactly 0, as does anything below −200; NaN stays NaN. Ten instructions, against twice that for
    /// <see cref="Exponential"/>'s eˣ with its argument scaled first.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Exp2(Vector512<float> y)
    {
        // MAXPS returns its second operand when either is NaN: −∞ becomes −200 (2⁻²⁰⁰·2ᶠ underflows to 0), NaN stays.
        y = Avx512F.Max(Vector512.Create(-200f), y);
        Vector512<float> n = Vector512.Round(y);
        Vector512<float> f = y - n;
        Vector512<float> p = Vector512.FusedMultiplyAdd(f, Vector512.Create(Exp2C6), Vector512.Create(Exp2C5));
        p = Vector512.FusedMultiplyAdd(f, p, Vector512.Create(Exp2C4));
        p = Vector512.FusedMultiplyAdd(f, p, Vector512.Create(Exp2C3));
        p = Vector512.FusedMultiplyAdd(f, p, Vector512.Create(Exp2C2));
        p = Vector512.FusedMultiplyAdd(f, p, Vector512.Create(Exp2C1));
        p = Vector512.FusedMultiplyAdd(f, p, Vector512<float>.One);
        return Avx512F.Scale(p, n);
    }

    /// <summary>
    /// Sets to −∞ the entries of a transposed score tile (keys <paramref name="j0"/> … + <paramref name="cols"/>) that a
    /// query row does not see: outside its bounds, or padded. Skipped for keys every row sees when none is padded.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MaskTransposed(float* sT, int j0, int cols, in RowBounds bounds, byte* interiorPadding)
    {
        if (interiorPadding == null && j0 >= bounds.AllFrom && j0 + cols <= bounds.AllTo) return; // every row sees every key
        Vector512<float> minusInfinity = Vector512.Create(float.NegativeInfinity);
        for (int j = 0; j < cols; j++)
        {
            int key = j0 + j;
            float* row = sT + j * TileLanes;
            if (interiorPadding != null && interiorPadding[key] != 0)
            {
                minusInfinity.Store(row);
                minusInfinity.Store(row + 16);
                continue;
            }
            if (key >= bounds.AllFrom && key < bounds.AllTo) continue;
            Vector512<int> k = Vector512.Create(key);
            Vector512<float> see0 = (Vector512.GreaterThanOrEqual(k, bounds.Lo0) & Vector512.LessThan(k, bounds.Hi0)).AsSingle();
            Vector512<float> see1 = (Vector512.GreaterThanOrEqual(k, bounds.Lo1) & Vector512.LessThan(k, bounds.Hi1)).AsSingle();
            Vector512.ConditionalSelect(see0, Vector512.Load(row), minusInfinity).Store(row);
            Vector512.ConditionalSelect(see1, Vector512.Load(row + 16), minusInfinity).Store(row + 16);
        }
    }

    /// <summary>The max of each lane down the <paramref name="cols"/> rows of a transposed tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float>, Vector512<float>) ColumnMax(float* sT, int cols)
    {
        Vector512<float> m0 = Vector512.Create(float.NegativeInfinity), m1 = m0;
        for (int j = 0; j < cols; j++)
        {
            m0 = Vector512.Max(m0, Vector512.Load(sT + j * TileLanes));
            m1 = Vector512.Max(m1, Vector512.Load(sT + j * TileLanes + 16));
        }
        return (m0, m1);
    }

    /// <summary>The max a lane's exponentials are taken against: its max, or 0 while it has seen nothing (so −∞ − −∞ never makes a NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Shift(Vector512<float> max) =>
        Vector512.ConditionalSelect(Vector512.Equals(max, Vector512.Create(float.NegativeInfinity)), Vector512<float>.Zero, max);


    // ---------------------------------------------------------------- forward

    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FlashForwardTiles512(in FlashShape shape, float* output, float* statistics, int firstTile, int endTile)
    {
        int headDim = shape.HeadDim, c = shape.C;
        float* qT = stackalloc float[headDim * TileLanes];
        float* oT = stackalloc float[headDim * TileLanes];
        float* sT = stackalloc float[FlashKeyColumns * TileLanes];
        float* lanes = stackalloc float[2 * TileLanes];
        Vector512<float> log2Scale = Vector512.Create(shape.Scale * Log2E), minusInfinity = Vector512.Create(float.NegativeInfinity);
        int cachedSequence = -1, keyStart = 0, keyEnd = 0;
        byte* interior = null;
        for (int tile = firstTile; tile < endTile; tile++)
        {
            int pair = tile / shape.TilesPerPair, b = pair / shape.Heads, h = pair - b * shape.Heads;
            int i0 = (tile - pair * shape.TilesPerPair) * shape.QueryRows, rows = Math.Min(shape.QueryRows, shape.QueryLen - i0);
            if (b != cachedSequence)
            {
                interior = PaddingBounds(shape.Padding(b), shape.KeyLen, out keyStart, out keyEnd);
                cachedSequence = b;
            }
            float* key = shape.Key(b, h), value = shape.Value(b, h);
            float* outRows = output + ((nint)b * shape.QueryLen + i0) * c + h * headDim;
            float* stats = statistics == null ? null : statistics + ((nint)pair * shape.QueryLen + i0) * FlashStatisticsPerRow;
            Vector512<float> max0 = minusInfinity, max1 = max0, sum0 = Vector512<float>.Zero, sum1 = sum0;

            (int blockLo, int blockHi) = shape.TileKeys(i0, rows, keyStart, keyEnd);
            if (blockHi > blockLo)
            {
                TransposeTile(shape.Query(b, h) + (nint)i0 * shape.QStride, shape.QStride, rows, headDim, qT);
                new Span<float>(oT, headDim * TileLanes).Clear();
                RowBounds bounds = BoundsOf(in shape, i0, rows, keyStart, keyEnd);
                for (int j0 = blockLo; j0 < blockHi; j0 += FlashKeyColumns)
                {
                    int cols = Math.Min(FlashKeyColumns, blockHi - j0);
                    TransposedProducts(key + (nint)j0 * shape.KvStride, shape.KvStride, qT, cols, headDim, sT);
                    MaskTransposed(sT, j0, cols, in bounds, interior);
                    (Vector512<float> tileMax0, Vector512<float> tileMax1) = ColumnMax(sT, cols);
                    Vector512<float> newMax0 = Vector512.Max(max0, tileMax0), newMax1 = Vector512.Max(max1, tileMax1);
                    // Exponentials are 2^(s·a − m·a), a = log₂e/√d, against m·a rounded once (0 while a lane has seen nothing).
                    Vector512<float> shift0 = Shift(newMax0) * log2Scale, shift1 = Shift(newMax1) * log2Scale;
                    // The running sums and Oᵀ were relative to the old maxima: rescaled by 2^(old m·a − new m·a), which is
                    // exactly 1 where the max did not grow, and 0 for a lane that had seen nothing (−∞).
                    Vector512<float> correction0 = Exp2(max0 * log2Scale - shift0), correction1 = Exp2(max1 * log2Scale - shift1);
                    max0 = newMax0;
                    max1 = newMax1;
                    Vector512<float> tileSum0 = Vector512<float>.Zero, tileSum1 = Vector512<float>.Zero;
                    for (int j = 0; j < cols; j++)
                    {
                        float* row = sT + j * TileLanes;
                        Vector512<float> p0 = Exp2(Vector512.FusedMultiplyAdd(Vector512.Load(row), log2Scale, -shift0));
                        Vector512<float> p1 = Exp2(Vector512.FusedMultiplyAdd(Vector512.Load(row + 16), log2Scale, -shift1));
                        p0.Store(row);
                        p1.Store(row + 16);
                        tileSum0 += p0;
                        tileSum1 += p1;
                    }
                    sum0 = Vector512.FusedMultiplyAdd(sum0, correction0, tileSum0);
                    sum1 = Vector512.FusedMultiplyAdd(sum1, correction1, tileSum1);
                    // Oᵀ[d, r] = Oᵀ[d, r]·correction[r] + Σ_j v_j[d]·Pᵀ[j, r]
                    AccumulateTransposed(value + (nint)j0 * shape.KvStride, shape.KvStride, sT, cols, headDim, oT, correction0, correction1);
                }
                // O = Oᵀ / l, row by row (0 for a row that saw nothing: its Oᵀ lane is 0).
                Vector512<float> inverse0 = Vector512.ConditionalSelect(Vector512.GreaterThan(sum0, Vector512<float>.Zero), Vector512<float>.One / sum0, Vector512<float>.Zero);
                Vector512<float> inverse1 = Vector512.ConditionalSelect(Vector512.GreaterThan(sum1, Vector512<float>.Zero), Vector512<float>.One / sum1, Vector512<float>.Zero);
                for (int d = 0; d < headDim; d++)
                {
                    float* o = oT + d * TileLanes;
                    (Vector512.Load(o) * inverse0).Store(o);
                    (Vector512.Load(o + 16) * inverse1).Store(o + 16);
                }
                StoreTransposed(oT, headDim, rows, outRows, c, add: false);
            }
            else
            {
                Simd.ClearBlock(outRows, c, rows, headDim);
            }
            if (stats == null) continue;
            max0.Store(lanes);
            max1.Store(lanes + 16);
            sum0.Store(lanes + TileLanes);
            sum1.Store(lanes + TileLanes + 16);
            for (int r = 0; r < rows; r++)
            {
                stats[r * FlashStatisticsPerRow] = lanes[r];
                stats[r * FlashStatisticsPerRow + 1] = lanes[TileLanes + r];
            }
        }
    }

    // ---------------------------------------------------------------- backward

    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FlashBackwardGroups512(in FlashShape shape, in FlashGradients grads, int firstGroup, int endGroup)
    {
        int headDim = shape.HeadDim, c = shape.C, groupSize = shape.Heads / shape.KvHeads;
        int qStride = shape.QStride, kvStride = shape.KvStride;
        int headTile = headDim * TileLanes;
        float* qT = stackalloc float[headTile];
        float* dOT = stackalloc float[headTile];
        float* qRows = stackalloc float[headTile];
        float* dORows = stackalloc float[headTile];
        float* dqT = stackalloc float[headTile];
        float* pT = stackalloc float[FlashKeyColumns * TileLanes];
        float* dsT = stackalloc float[FlashKeyColumns * TileLanes];
        float* lanes = stackalloc float[2 * TileLanes];
        float log2Scale = shape.Scale * Log2E;
        Vector512<float> a = Vector512.Create(log2Scale), scale = Vector512.Create(shape.Scale);
        for (int group = firstGroup; group < endGroup; group++)
        {
            ClearGroup(group, grads.DQ, qStride, grads.DK, grads.DV, kvStride, shape.QueryLen, shape.KeyLen, shape.Heads, headDim, shape.KvHeads, grads.ClearDq, grads.ClearDkv);
            int b = group / shape.KvHeads, g = group - b * shape.KvHeads;
            byte* interior = PaddingBounds(shape.Padding(b), shape.KeyLen, out int keyStart, out int keyEnd);
            nint kvOffset = (nint)b * shape.KeyLen * kvStride + g * headDim;
            float* key = shape.K + kvOffset, value = shape.V + kvOffset, dKey = grads.DK + kvOffset, dValue = grads.DV + kvOffset;
            for (int h = g * groupSize; h < (g + 1) * groupSize; h++)
            {
                int pair = b * shape.Heads + h;
                nint qOffset = (nint)b * shape.QueryLen * qStride + h * headDim;
                nint oOffset = (nint)b * shape.QueryLen * c + h * headDim;
                for (int i0 = 0; i0 < shape.QueryLen; i0 += shape.QueryRows)
                {
                    int rows = Math.Min(shape.QueryRows, shape.QueryLen - i0);
                    (int blockLo, int blockHi) = shape.TileKeys(i0, rows, keyStart, keyEnd);
                    if (blockHi == blockLo) continue;
                    float* query = shape.Q + qOffset + (nint)i0 * qStride, dQuery = grads.DQ + qOffset + (nint)i0 * qStride;
                    float* dOut = grads.DOutput + oOffset + (nint)i0 * c, outRows = grads.Output + oOffset + (nint)i0 * c;
                    float* stats = grads.Statistics + ((nint)pair * shape.QueryLen + i0) * FlashStatisticsPerRow;
                    // Per lane: the exponent's offset −(m·a + log₂ l), so that 2^(s·a + offset) = P (−∞ for a row that saw
                    // nothing, or past the tile: P = 0), and D·scale, D = dO·O.
                    for (int r = 0; r < TileLanes; r++)
                    {
                        float sum = r < rows ? stats[r * FlashStatisticsPerRow + 1] : 0f;
                        lanes[r] = sum > 0f ? -(stats[r * FlashStatisticsPerRow] * log2Scale + MathF.Log2(sum)) : float.NegativeInfinity;
                        lanes[TileLanes + r] = r < rows ? RowDot(dOut + (nint)r * c, outRows + (nint)r * c, headDim) * shape.Scale : 0f;
                    }
                    Vector512<float> offset0 = Vector512.Load(lanes), offset1 = Vector512.Load(lanes + 16);
                    Vector512<float> delta0 = Vector512.Load(lanes + TileLanes), delta1 = Vector512.Load(lanes + TileLanes + 16);
                    CopyRows(query, qStride, rows, headDim, qRows);
                    CopyRows(dOut, c, rows, headDim, dORows);
                    TransposeTile(qRows, headDim, rows, headDim, qT);
                    TransposeTile(dORows, headDim, rows, headDim, dOT);
                    new Span<float>(dqT, headTile).Clear();
                    RowBounds bounds = BoundsOf(in shape, i0, rows, keyStart, keyEnd);
                    for (int j0 = blockLo; j0 < blockHi; j0 += FlashKeyColumns)
                    {
                        int cols = Math.Min(FlashKeyColumns, blockHi - j0);
                        float* keys = key + (nint)j0 * kvStride, values = value + (nint)j0 * kvStride;
                        // Pᵀ recomputed: the forward's scores, bit for bit (same kernel), through the saved max and sum.
                        TransposedProducts(keys, kvStride, qT, cols, headDim, pT);
                        MaskTransposed(pT, j0, cols, in bounds, interior);
                        // dPᵀ[j, r] = v_j · dO_r
                        TransposedProducts(values, kvStride, dOT, cols, headDim, dsT);
                        for (int j = 0; j < cols; j++)
                        {
                            float* p = pT + j * TileLanes, d = dsT + j * TileLanes;
                            Vector512<float> p0 = Exp2(Vector512.FusedMultiplyAdd(Vector512.Load(p), a, offset0));
                            Vector512<float> p1 = Exp2(Vector512.FusedMultiplyAdd(Vector512.Load(p + 16), a, offset1));
                            p0.Store(p);
                            p1.Store(p + 16);
                            // dS = P ⊙ (dP − D)/√d; masked entries have P = 0 and become 0.
                            (Vector512.FusedMultiplyAdd(Vector512.Load(d), scale, -delta0) * p0).Store(d);
                            (Vector512.FusedMultiplyAdd(Vector512.Load(d + 16), scale, -delta1) * p1).Store(d + 16);
                        }
                        // dV[j, :] += Σ_r Pᵀ[j, r]·dO[r, :]
                        AccumulateKeyRows(pT, dORows, headDim, dValue + (nint)j0 * kvStride, kvStride, cols, rows, headDim);
                        // dQᵀ[d, r] += Σ_j k_j[d]·dSᵀ[j, r]
                        AccumulateTransposed(keys, kvStride, dsT, cols, headDim, dqT, Vector512<float>.One, Vector512<float>.One);
                        // dK[j, :] += Σ_r dSᵀ[j, r]·q_r
                        AccumulateKeyRows(dsT, qRows, headDim, dKey + (nint)j0 * kvStride, kvStride, cols, rows, headDim);
                    }
                    StoreTransposed(dqT, headDim, rows, dQuery, qStride, add: true);
                }
            }
        }
    }
}
