using System;
using System.Numerics.Tensors;
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
// masks compare a key index with two vectors of per-row bounds. The products with V, dO, K and Q broadcast one element
// of Pᵀ or dSᵀ against a row of headDim floats (AccumulateBroadcast). Same tiles, same masks and the same statistics as
// the portable path; the sums run in another order, so the two agree to rounding, and each is bit-identical for any
// thread count.
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
    private static void TransposeTile(float* src, int stride, int rows, int headDim, float* t)
    {
        if (rows < TileLanes) new Span<float>(t, headDim * TileLanes).Clear();
        for (int r = 0; r < rows; r++)
        {
            float* row = src + (nint)r * stride;
            for (int k = 0; k < headDim; k++) t[k * TileLanes + r] = row[k];
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

    /// <summary>How <see cref="AccumulateBroadcast{TLayout}"/> reads its weights: element (x, y) at <c>w[x·Wx + y·Wy]</c>, both constants.</summary>
    private interface ITileAxes
    {
        static abstract int Wx { get; }
        static abstract int Wy { get; }
    }

    /// <summary>Weights indexed (x = query lane, y = key): out rows are query rows (P·V, dS·K).</summary>
    private struct QueryRowsOut : ITileAxes
    {
        public static int Wx => 1;
        public static int Wy => TileLanes;
    }

    /// <summary>Weights indexed (x = key, y = query lane): out rows are key rows (Pᵀ·dO, dSᵀ·Q).</summary>
    private struct KeyRowsOut : ITileAxes
    {
        public static int Wx => TileLanes;
        public static int Wy => 1;
    }

    /// <summary>
    /// <c>c[x·cStride + col] += Σ_y w[x·Wx + y·Wy]·src[y·srcStride + col]</c> for x &lt; xs, y &lt; ys, col &lt; width:
    /// rows of a head (V, dO, K or Q rows) weighted by a transposed tile (Pᵀ or dSᵀ), read along either of its axes
    /// (<typeparamref name="TLayout"/>, whose strides the JIT folds into the addresses).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateBroadcast<TLayout>(float* w, float* src, int srcStride, float* c, int cStride, int xs, int ys, int width)
        where TLayout : struct, ITileAxes
    {
        int wx = TLayout.Wx, wy = TLayout.Wy;
        for (int col = 0; col < width; col += 32)
        {
            int left = width - col;
            Vector512<float> m0 = left >= 16 ? Vector512<float>.AllBitsSet : Simd.TailMask512(left);
            Vector512<float> m1 = left >= 32 ? Vector512<float>.AllBitsSet : left > 16 ? Simd.TailMask512(left - 16) : Vector512<float>.Zero;
            bool second = left > 16;
            float* s = src + col;
            int x = 0;
            for (; x + 8 <= xs; x += 8)
            {
                Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
                Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
                float* wxRow = w + (nint)x * wx;
                for (int y = 0; y < ys; y++)
                {
                    float* sy = s + (nint)y * srcStride;
                    Vector512<float> s0 = Avx512F.MaskLoad(sy, m0, Vector512<float>.Zero);
                    Vector512<float> s1 = second ? Avx512F.MaskLoad(sy + 16, m1, Vector512<float>.Zero) : Vector512<float>.Zero;
                    float* wy0 = wxRow + (nint)y * wy;
                    Vector512<float> b = Vector512.Create(wy0[0]);
                    c00 = Vector512.FusedMultiplyAdd(b, s0, c00); c01 = Vector512.FusedMultiplyAdd(b, s1, c01);
                    b = Vector512.Create(wy0[wx]);
                    c10 = Vector512.FusedMultiplyAdd(b, s0, c10); c11 = Vector512.FusedMultiplyAdd(b, s1, c11);
                    b = Vector512.Create(wy0[2 * wx]);
                    c20 = Vector512.FusedMultiplyAdd(b, s0, c20); c21 = Vector512.FusedMultiplyAdd(b, s1, c21);
                    b = Vector512.Create(wy0[3 * wx]);
                    c30 = Vector512.FusedMultiplyAdd(b, s0, c30); c31 = Vector512.FusedMultiplyAdd(b, s1, c31);
                    b = Vector512.Create(wy0[4 * wx]);
                    c40 = Vector512.FusedMultiplyAdd(b, s0, c40); c41 = Vector512.FusedMultiplyAdd(b, s1, c41);
                    b = Vector512.Create(wy0[5 * wx]);
                    c50 = Vector512.FusedMultiplyAdd(b, s0, c50); c51 = Vector512.FusedMultiplyAdd(b, s1, c51);
                    b = Vector512.Create(wy0[6 * wx]);
                    c60 = Vector512.FusedMultiplyAdd(b, s0, c60); c61 = Vector512.FusedMultiplyAdd(b, s1, c61);
                    b = Vector512.Create(wy0[7 * wx]);
                    c70 = Vector512.FusedMultiplyAdd(b, s0, c70); c71 = Vector512.FusedMultiplyAdd(b, s1, c71);
                }
                float* cx = c + (nint)x * cStride + col;
                AddRow(cx, c00, c01, m0, m1, second);
                AddRow(cx + cStride, c10, c11, m0, m1, second);
                AddRow(cx + 2 * (nint)cStride, c20, c21, m0, m1, second);
                AddRow(cx + 3 * (nint)cStride, c30, c31, m0, m1, second);
                AddRow(cx + 4 * (nint)cStride, c40, c41, m0, m1, second);
                AddRow(cx + 5 * (nint)cStride, c50, c51, m0, m1, second);
                AddRow(cx + 6 * (nint)cStride, c60, c61, m0, m1, second);
                AddRow(cx + 7 * (nint)cStride, c70, c71, m0, m1, second);
            }
            for (; x < xs; x++)
            {
                Vector512<float> c0 = default, c1 = default;
                float* wxRow = w + (nint)x * wx;
                for (int y = 0; y < ys; y++)
                {
                    float* sy = s + (nint)y * srcStride;
                    Vector512<float> b = Vector512.Create(wxRow[(nint)y * wy]);
                    c0 = Vector512.FusedMultiplyAdd(b, Avx512F.MaskLoad(sy, m0, Vector512<float>.Zero), c0);
                    if (second) c1 = Vector512.FusedMultiplyAdd(b, Avx512F.MaskLoad(sy + 16, m1, Vector512<float>.Zero), c1);
                }
                AddRow(c + (nint)x * cStride + col, c0, c1, m0, m1, second);
            }
        }
    }

    /// <summary><c>row[i] *= factor</c> for i &lt; width, in registers (a library call per 32-float row costs more than its work).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScaleRow(float* row, int width, float factor)
    {
        Vector512<float> f = Vector512.Create(factor);
        int i = 0;
        for (; i + 16 <= width; i += 16) (Vector512.Load(row + i) * f).Store(row + i);
        if (i < width)
        {
            Vector512<float> mask = Simd.TailMask512(width - i);
            Avx512F.MaskStore(row + i, mask, Avx512F.MaskLoad(row + i, mask, Vector512<float>.Zero) * f);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow(float* c, Vector512<float> v0, Vector512<float> v1, Vector512<float> m0, Vector512<float> m1, bool second)
    {
        Avx512F.MaskStore(c, m0, Avx512F.MaskLoad(c, m0, Vector512<float>.Zero) + v0);
        if (second) Avx512F.MaskStore(c + 16, m1, Avx512F.MaskLoad(c + 16, m1, Vector512<float>.Zero) + v1);
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
        float* sT = stackalloc float[FlashKeyColumns * TileLanes];
        float* corrections = stackalloc float[TileLanes];
        float* lanes = stackalloc float[2 * TileLanes];
        Vector512<float> scale = Vector512.Create(shape.Scale);
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
            Simd.ClearBlock(outRows, c, rows, headDim);
            Vector512<float> max0 = Vector512.Create(float.NegativeInfinity), max1 = max0, sum0 = Vector512<float>.Zero, sum1 = sum0;

            (int blockLo, int blockHi) = shape.TileKeys(i0, rows, keyStart, keyEnd);
            if (blockHi > blockLo)
            {
                TransposeTile(shape.Query(b, h) + (nint)i0 * shape.QStride, shape.QStride, rows, headDim, qT);
                RowBounds bounds = BoundsOf(in shape, i0, rows, keyStart, keyEnd);
                for (int j0 = blockLo; j0 < blockHi; j0 += FlashKeyColumns)
                {
                    int cols = Math.Min(FlashKeyColumns, blockHi - j0);
                    TransposedProducts(key + (nint)j0 * shape.KvStride, shape.KvStride, qT, cols, headDim, sT);
                    MaskTransposed(sT, j0, cols, in bounds, interior);
                    (Vector512<float> tileMax0, Vector512<float> tileMax1) = ColumnMax(sT, cols);
                    Vector512<float> newMax0 = Vector512.Max(max0, tileMax0), newMax1 = Vector512.Max(max1, tileMax1);
                    Vector512<float> shift0 = Shift(newMax0), shift1 = Shift(newMax1);
                    // The running sums and outputs were relative to the old maxima: rescale lanes whose max grew.
                    Vector512<float> correction0 = Exponential.Exp((max0 - shift0) * scale), correction1 = Exponential.Exp((max1 - shift1) * scale);
                    bool grew = !Vector512.EqualsAll(newMax0, max0) || !Vector512.EqualsAll(newMax1, max1);
                    max0 = newMax0;
                    max1 = newMax1;
                    Vector512<float> tileSum0 = Vector512<float>.Zero, tileSum1 = Vector512<float>.Zero;
                    for (int j = 0; j < cols; j++)
                    {
                        float* row = sT + j * TileLanes;
                        Vector512<float> p0 = Exponential.Exp((Vector512.Load(row) - shift0) * scale), p1 = Exponential.Exp((Vector512.Load(row + 16) - shift1) * scale);
                        p0.Store(row);
                        p1.Store(row + 16);
                        tileSum0 += p0;
                        tileSum1 += p1;
                    }
                    sum0 = sum0 * correction0 + tileSum0;
                    sum1 = sum1 * correction1 + tileSum1;
                    if (grew && j0 > blockLo)
                    {
                        correction0.Store(corrections);
                        correction1.Store(corrections + 16);
                        for (int r = 0; r < rows; r++)
                            if (corrections[r] != 1f) ScaleRow(outRows + (nint)r * c, headDim, corrections[r]);
                    }
                    // out[r, :] += Σ_j Pᵀ[j, r]·v_j
                    AccumulateBroadcast<QueryRowsOut>(sT, value + (nint)j0 * shape.KvStride, shape.KvStride, outRows, c, rows, cols, headDim);
                }
            }
            max0.Store(lanes);
            max1.Store(lanes + 16);
            sum0.Store(lanes + TileLanes);
            sum1.Store(lanes + TileLanes + 16);
            for (int r = 0; r < rows; r++)
            {
                float sum = lanes[TileLanes + r];
                if (sum > 0f) ScaleRow(outRows + (nint)r * c, headDim, 1f / sum);
                if (stats == null) continue;
                stats[r * FlashStatisticsPerRow] = lanes[r];
                stats[r * FlashStatisticsPerRow + 1] = sum;
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
        float* qT = stackalloc float[headDim * TileLanes];
        float* dOT = stackalloc float[headDim * TileLanes];
        float* pT = stackalloc float[FlashKeyColumns * TileLanes];
        float* dsT = stackalloc float[FlashKeyColumns * TileLanes];
        float* lanes = stackalloc float[3 * TileLanes];
        Vector512<float> scale = Vector512.Create(shape.Scale);
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
                    // Per lane: the saved max (as the shift), 1/sum (0 for a row that saw nothing), and D = dO·O.
                    for (int r = 0; r < TileLanes; r++)
                    {
                        bool seen = r < rows && stats[r * FlashStatisticsPerRow + 1] > 0f;
                        lanes[r] = seen ? stats[r * FlashStatisticsPerRow] : 0f;
                        lanes[TileLanes + r] = seen ? 1f / stats[r * FlashStatisticsPerRow + 1] : 0f;
                        lanes[2 * TileLanes + r] = r < rows
                            ? TensorPrimitives.Dot(new ReadOnlySpan<float>(dOut + (nint)r * c, headDim), new ReadOnlySpan<float>(outRows + (nint)r * c, headDim))
                            : 0f;
                    }
                    Vector512<float> shift0 = Vector512.Load(lanes), shift1 = Vector512.Load(lanes + 16);
                    Vector512<float> inverse0 = Vector512.Load(lanes + TileLanes), inverse1 = Vector512.Load(lanes + TileLanes + 16);
                    Vector512<float> delta0 = Vector512.Load(lanes + 2 * TileLanes), delta1 = Vector512.Load(lanes + 2 * TileLanes + 16);
                    TransposeTile(query, qStride, rows, headDim, qT);
                    TransposeTile(dOut, c, rows, headDim, dOT);
                    RowBounds bounds = BoundsOf(in shape, i0, rows, keyStart, keyEnd);
                    for (int j0 = blockLo; j0 < blockHi; j0 += FlashKeyColumns)
                    {
                        int cols = Math.Min(FlashKeyColumns, blockHi - j0);
                        float* keys = key + (nint)j0 * kvStride, values = value + (nint)j0 * kvStride;
                        // Pᵀ recomputed: the forward's scores, bit for bit (same tiles), through the saved max and sum.
                        TransposedProducts(keys, kvStride, qT, cols, headDim, pT);
                        MaskTransposed(pT, j0, cols, in bounds, interior);
                        // dPᵀ[j, r] = v_j · dO_r
                        TransposedProducts(values, kvStride, dOT, cols, headDim, dsT);
                        for (int j = 0; j < cols; j++)
                        {
                            float* p = pT + j * TileLanes, d = dsT + j * TileLanes;
                            Vector512<float> p0 = Exponential.Exp((Vector512.Load(p) - shift0) * scale) * inverse0;
                            Vector512<float> p1 = Exponential.Exp((Vector512.Load(p + 16) - shift1) * scale) * inverse1;
                            p0.Store(p);
                            p1.Store(p + 16);
                            // dS = P ⊙ (dP − D)/√d; masked entries have P = 0 and become 0.
                            ((Vector512.Load(d) - delta0) * p0 * scale).Store(d);
                            ((Vector512.Load(d + 16) - delta1) * p1 * scale).Store(d + 16);
                        }
                        // dV[j, :] += Σ_r Pᵀ[j, r]·dO[r, :]
                        AccumulateBroadcast<KeyRowsOut>(pT, dOut, c, dValue + (nint)j0 * kvStride, kvStride, cols, rows, headDim);
                        // dQ[r, :] += Σ_j dSᵀ[j, r]·k_j
                        AccumulateBroadcast<QueryRowsOut>(dsT, keys, kvStride, dQuery, qStride, rows, cols, headDim);
                        // dK[j, :] += Σ_r dSᵀ[j, r]·q_r
                        AccumulateBroadcast<KeyRowsOut>(dsT, query, qStride, dKey + (nint)j0 * kvStride, kvStride, cols, rows, headDim);
                    }
                }
            }
        }
    }
}
