using System;
using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

/// <summary>
/// RMSNorm (Zhang and Sennrich 2019) as Hugging Face's <c>LlamaRMSNorm</c> and <c>Qwen2RMSNorm</c> compute it: per row,
/// <c>rstd = 1/√(mean(x²) + eps)</c> and <c>y = weight·(x·rstd)</c>, normalized first and then scaled, with no mean
/// subtracted and no bias. Gemma's norms (<c>Gemma3RMSNorm</c>) scale by <c>1 + weight</c> instead, their weights
/// stored as offsets from 1 (<c>unitOffset</c>).
/// </summary>
/// <remarks>
/// Large inputs are split between threads (see <see cref="Parallelism"/>) as <see cref="LayerNorm"/> splits them: forward
/// and the input's gradient by blocks of rows; the weight's gradient, a sum over rows, by blocks of columns, each column
/// summed over the rows in order. One thread runs the same blocks one after another, so results do not depend on the
/// thread count.
/// </remarks>
public static unsafe class RmsNorm
{
    // Work per element in Parallelism's units: both passes are memory-bound, a few operations per float read.
    private const int ForwardCost = 8, BackwardCost = 16;

    // Rows per block of the row split, and columns (a multiple of every vector width) per block of the column split.
    private const int RowBlock = 32, ColumnBlock = 64;

    // Widest row whose (1 + weight) scale lives on the stack; wider ones rent it from the shared pool.
    private const int StackScale = 4096;

    /// <summary>
    /// Normalizes each of the <paramref name="n"/> rows of width <paramref name="c"/> and saves the per-row
    /// <paramref name="rstd"/> for <see cref="Backward"/>. Overwrites the outputs.
    /// </summary>
    /// <param name="x">Input <c>[n, c]</c>.</param>
    /// <param name="weight">Scale <c>[c]</c>.</param>
    /// <param name="y">Output <c>[n, c]</c>; may be <paramref name="x"/> itself, must not overlap it otherwise.</param>
    /// <param name="rstd">Saved reciprocal root mean squares <c>[n]</c>.</param>
    /// <param name="n">Rows.</param>
    /// <param name="c">Row width (channels).</param>
    /// <param name="eps">Added to the mean square: the checkpoint's <c>rms_norm_eps</c> (1e-6 and 1e-5 are both common).</param>
    /// <param name="unitOffset">Scale by <c>1 + weight</c> (Gemma) rather than by <c>weight</c>.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, Span<float> rstd, int n, int c, float eps, bool unitOffset = false)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.Positive(c, nameof(c));
        SpanChecks.Length(x.Length, (long)n * c, nameof(x));
        SpanChecks.Length(weight.Length, c, nameof(weight));
        SpanChecks.Length(y.Length, (long)n * c, nameof(y));
        SpanChecks.Length(rstd.Length, n, nameof(rstd));

        float[]? rented = null;
        Span<float> buffer = !unitOffset ? default : c <= StackScale ? stackalloc float[c] : (rented = ArrayPool<float>.Shared.Rent(c)).AsSpan(0, c);
        ReadOnlySpan<float> scale = Scale(weight, unitOffset, buffer);
        fixed (float* px = x, pw = scale, py = y, pr = rstd)
        {
            var work = new ForwardWork { X = px, Weight = pw, Y = py, Rstd = pr, N = n, C = c, Eps = eps };
            int blocks = Count(n, RowBlock);
            WorkerPool.For(ref work, blocks, Parallelism.ThreadsFor((long)ForwardCost * n * c, blocks));
        }
        if (rented is not null) ArrayPool<float>.Shared.Return(rented);
    }

    /// <summary>
    /// What a row is multiplied by after normalization: <paramref name="weight"/> itself, or (Gemma) <c>1 + weight</c>
    /// written to <paramref name="buffer"/>, rounded once as <c>Gemma3RMSNorm</c> rounds <c>1.0 + weight.float()</c>.
    /// </summary>
    private static ReadOnlySpan<float> Scale(ReadOnlySpan<float> weight, bool unitOffset, Span<float> buffer)
    {
        if (!unitOffset) return weight;
        TensorPrimitives.Add(weight, 1f, buffer);
        return buffer;
    }

    /// <summary>
    /// Accumulates the gradients of <see cref="Forward"/>. With x̂ = x·rstd and g = dy·weight, per row:
    /// <c>dx += rstd·(g − x̂·mean(g·x̂))</c> and <c>dweight += dy·x̂</c>; with <paramref name="overwriteDx"/>,
    /// <c>dx = …</c> instead.
    /// </summary>
    /// <remarks>
    /// From y_j = w_j·x_j·r with r = (Σ_k x_k²/c + eps)^(−1/2): ∂r/∂x_k = −r³·x_k/c, so
    /// ∂L/∂x_k = g_k·r − (r³·x_k/c)·Σ_j g_j·x_j = r·(g_k − x̂_k·(1/c)·Σ_j g_j·x̂_j). LayerNorm's formula without the mean
    /// terms.
    /// </remarks>
    /// <param name="dy">Gradient of the output <c>[n, c]</c>.</param>
    /// <param name="x">The forward input <c>[n, c]</c>.</param>
    /// <param name="weight">Scale <c>[c]</c>.</param>
    /// <param name="rstd">Reciprocal root mean squares saved by forward <c>[n]</c>.</param>
    /// <param name="dx">Gradient of the input <c>[n, c]</c> (accumulated unless <paramref name="overwriteDx"/>).</param>
    /// <param name="dweight">Gradient of the weight <c>[c]</c> (accumulated).</param>
    /// <param name="n">Rows.</param>
    /// <param name="c">Row width.</param>
    /// <param name="overwriteDx">Store the input's gradient rather than add it (its first contribution, which then needs
    /// no clearing); the weight's gradient is always accumulated.</param>
    /// <param name="unitOffset">As given to forward: g = dy·(1 + weight); the weight's gradient is dy·x̂ either way.</param>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dweight, int n, int c,
        bool overwriteDx = false, bool unitOffset = false)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.Positive(c, nameof(c));
        SpanChecks.Length(dy.Length, (long)n * c, nameof(dy));
        SpanChecks.Length(x.Length, (long)n * c, nameof(x));
        SpanChecks.Length(weight.Length, c, nameof(weight));
        SpanChecks.Length(rstd.Length, n, nameof(rstd));
        SpanChecks.Length(dx.Length, (long)n * c, nameof(dx));
        SpanChecks.Length(dweight.Length, c, nameof(dweight));

        float[]? rented = null;
        Span<float> buffer = !unitOffset ? default : c <= StackScale ? stackalloc float[c] : (rented = ArrayPool<float>.Shared.Rent(c)).AsSpan(0, c);
        ReadOnlySpan<float> scale = Scale(weight, unitOffset, buffer);
        fixed (float* pdy = dy, px = x, pw = scale, pr = rstd, pdx = dx, pdw = dweight)
        {
            var work = new BackwardWork
            {
                Dy = pdy, X = px, Weight = pw, Rstd = pr, Dx = pdx, Dweight = pdw, N = n, C = c,
                Accumulate = !overwriteDx, RowBlocks = Count(n, RowBlock),
            };
            // One thread runs the same blocks in order (WorkerPool.For with 1 thread).
            int blocks = work.RowBlocks + Count(c, ColumnBlock);
            WorkerPool.For(ref work, blocks, Parallelism.ThreadsFor((long)BackwardCost * n * c, blocks));
        }
        if (rented is not null) ArrayPool<float>.Shared.Return(rented);
    }

    /// <summary>
    /// Qwen3's per-head norms of the queries and keys (<c>q_norm</c>, <c>k_norm</c>): in each row of a packed Q | K | V
    /// projection <c>[rows, (heads + 2·kvHeads)·headDim]</c>, every query head is normalized over its
    /// <paramref name="headDim"/> channels and scaled by <paramref name="queryWeight"/>, every key head likewise by
    /// <paramref name="keyWeight"/>, and the values are copied. Saves one <paramref name="rstd"/> per head for
    /// <see cref="HeadsBackward"/>. Overwrites the outputs.
    /// </summary>
    /// <param name="x">The projection <c>[rows, W]</c>, W = (heads + 2·kvHeads)·headDim.</param>
    /// <param name="queryWeight">Scale of every query head <c>[headDim]</c>.</param>
    /// <param name="keyWeight">Scale of every key head <c>[headDim]</c>.</param>
    /// <param name="y">Output <c>[rows, W]</c>; must not overlap <paramref name="x"/>.</param>
    /// <param name="rstd">Saved reciprocal root mean squares <c>[rows, heads + kvHeads]</c>.</param>
    /// <param name="rows">Tokens.</param>
    /// <param name="heads">Query heads.</param>
    /// <param name="kvHeads">Key (and value) heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="eps">Added to the mean square (the config's <c>rms_norm_eps</c>).</param>
    /// <param name="unitOffset">Scale by <c>1 + weight</c> (Gemma 3's q_norm and k_norm) rather than by the weight.</param>
    public static void HeadsForward(ReadOnlySpan<float> x, ReadOnlySpan<float> queryWeight, ReadOnlySpan<float> keyWeight, Span<float> y, Span<float> rstd,
        int rows, int heads, int kvHeads, int headDim, float eps, bool unitOffset = false)
    {
        int width = CheckHeads(rows, heads, kvHeads, headDim);
        SpanChecks.Length(x.Length, (long)rows * width, nameof(x));
        SpanChecks.Length(queryWeight.Length, headDim, nameof(queryWeight));
        SpanChecks.Length(keyWeight.Length, headDim, nameof(keyWeight));
        SpanChecks.Length(y.Length, (long)rows * width, nameof(y));
        SpanChecks.Length(rstd.Length, (long)rows * (heads + kvHeads), nameof(rstd));
        if (x.Overlaps(y)) throw new ArgumentException("the output must not overlap the input (the values are copied across)", nameof(y));

        float[]? rented = null;
        Span<float> buffer = !unitOffset ? default : 2 * headDim <= StackScale ? stackalloc float[2 * headDim] : (rented = ArrayPool<float>.Shared.Rent(2 * headDim)).AsSpan(0, 2 * headDim);
        ReadOnlySpan<float> queryScale = unitOffset ? Scale(queryWeight, true, buffer[..headDim]) : queryWeight;
        ReadOnlySpan<float> keyScale = unitOffset ? Scale(keyWeight, true, buffer[headDim..]) : keyWeight;
        fixed (float* px = x, pq = queryScale, pk = keyScale, py = y, pr = rstd)
        {
            var work = new HeadsForwardWork { X = px, QueryWeight = pq, KeyWeight = pk, Y = py, Rstd = pr, Rows = rows, Heads = heads, KvHeads = kvHeads, HeadDim = headDim, Eps = eps };
            int blocks = Count(rows, RowBlock);
            WorkerPool.For(ref work, blocks, Parallelism.ThreadsFor((long)ForwardCost * rows * width, blocks));
        }
        if (rented is not null) ArrayPool<float>.Shared.Return(rented);
    }

    /// <summary>
    /// The gradients of <see cref="HeadsForward"/>: each head's input gradient as <see cref="Backward"/> computes a row's
    /// (the values' gradient passes through), and the two weights' gradients summed over every row and head, in order
    /// (accumulated). With <paramref name="overwriteDx"/> the input's gradient is stored rather than added.
    /// </summary>
    /// <param name="dy">Gradient of the output <c>[rows, W]</c>.</param>
    /// <param name="x">The forward input <c>[rows, W]</c>.</param>
    /// <param name="queryWeight">Scale of the query heads <c>[headDim]</c>.</param>
    /// <param name="keyWeight">Scale of the key heads <c>[headDim]</c>.</param>
    /// <param name="rstd">Saved by forward <c>[rows, heads + kvHeads]</c>.</param>
    /// <param name="dx">Gradient of the input <c>[rows, W]</c>.</param>
    /// <param name="dQueryWeight">Gradient of <paramref name="queryWeight"/> (accumulated).</param>
    /// <param name="dKeyWeight">Gradient of <paramref name="keyWeight"/> (accumulated).</param>
    /// <param name="rows">Tokens.</param>
    /// <param name="heads">Query heads.</param>
    /// <param name="kvHeads">Key (and value) heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="overwriteDx">Store the input's gradient rather than add it.</param>
    /// <param name="unitOffset">As given to forward.</param>
    public static void HeadsBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> queryWeight, ReadOnlySpan<float> keyWeight, ReadOnlySpan<float> rstd,
        Span<float> dx, Span<float> dQueryWeight, Span<float> dKeyWeight, int rows, int heads, int kvHeads, int headDim, bool overwriteDx = false, bool unitOffset = false)
    {
        int width = CheckHeads(rows, heads, kvHeads, headDim);
        SpanChecks.Length(dy.Length, (long)rows * width, nameof(dy));
        SpanChecks.Length(x.Length, (long)rows * width, nameof(x));
        SpanChecks.Length(queryWeight.Length, headDim, nameof(queryWeight));
        SpanChecks.Length(keyWeight.Length, headDim, nameof(keyWeight));
        SpanChecks.Length(rstd.Length, (long)rows * (heads + kvHeads), nameof(rstd));
        SpanChecks.Length(dx.Length, (long)rows * width, nameof(dx));
        SpanChecks.Length(dQueryWeight.Length, headDim, nameof(dQueryWeight));
        SpanChecks.Length(dKeyWeight.Length, headDim, nameof(dKeyWeight));

        float[]? rented = null;
        Span<float> buffer = !unitOffset ? default : 2 * headDim <= StackScale ? stackalloc float[2 * headDim] : (rented = ArrayPool<float>.Shared.Rent(2 * headDim)).AsSpan(0, 2 * headDim);
        ReadOnlySpan<float> queryScale = unitOffset ? Scale(queryWeight, true, buffer[..headDim]) : queryWeight;
        ReadOnlySpan<float> keyScale = unitOffset ? Scale(keyWeight, true, buffer[headDim..]) : keyWeight;
        fixed (float* pdy = dy, px = x, pq = queryScale, pk = keyScale, pr = rstd, pdx = dx, pdq = dQueryWeight, pdk = dKeyWeight)
        {
            var work = new HeadsBackwardWork
            {
                Dy = pdy, X = px, QueryWeight = pq, KeyWeight = pk, Rstd = pr, Dx = pdx, Rows = rows, Heads = heads, KvHeads = kvHeads, HeadDim = headDim,
                Accumulate = !overwriteDx,
            };
            int blocks = Count(rows, RowBlock);
            WorkerPool.For(ref work, blocks, Parallelism.ThreadsFor((long)BackwardCost * rows * width, blocks));
            // The weights' gradients: Σ over rows, then heads, of dy·x̂, in one fixed order on this thread.
            int normed = heads + kvHeads;
            for (int i = 0; i < rows; i++)
                for (int g = 0; g < normed; g++)
                {
                    nint at = (nint)i * width + (nint)g * headDim;
                    HeadWeightGradient(pdy + at, px + at, pr[(nint)i * normed + g], g < heads ? pdq : pdk, headDim);
                }
        }
        if (rented is not null) ArrayPool<float>.Shared.Return(rented);
    }

    private static int CheckHeads(int rows, int heads, int kvHeads, int headDim)
    {
        SpanChecks.NonNegative(rows, nameof(rows));
        SpanChecks.Positive(heads, nameof(heads));
        SpanChecks.Positive(kvHeads, nameof(kvHeads));
        SpanChecks.Positive(headDim, nameof(headDim));
        return (heads + 2 * kvHeads) * headDim;
    }

    // dweight += dy·(x·rstd) over one head.
    private static void HeadWeightGradient(float* dy, float* x, float rs, float* dweight, int headDim)
    {
        int width = Vector<float>.Count, j = 0;
        var vRs = new Vector<float>(rs);
        for (; j <= headDim - width; j += width)
            (Vector.Load(dweight + j) + Vector.Load(dy + j) * (Vector.Load(x + j) * vRs)).Store(dweight + j);
        for (; j < headDim; j++)
            dweight[j] += dy[j] * (x[j] * rs);
    }

    private struct HeadsForwardWork : IParallelWork
    {
        public float* X, QueryWeight, KeyWeight, Y, Rstd;
        public int Rows, Heads, KvHeads, HeadDim;
        public float Eps;

        public readonly void Execute(int item)
        {
            int hd = HeadDim, normed = Heads + KvHeads, width = (Heads + 2 * KvHeads) * hd;
            var rowWork = new ForwardWork { C = hd, Eps = Eps };
            for (int i = item * RowBlock, end = Math.Min(Rows, (item + 1) * RowBlock); i < end; i++)
            {
                float* x = X + (nint)i * width, y = Y + (nint)i * width;
                // The query heads, then the key heads, each a row of ForwardRows; then the values, copied.
                rowWork.X = x; rowWork.Y = y; rowWork.Rstd = Rstd + (nint)i * normed; rowWork.Weight = QueryWeight;
                ForwardRows(ref rowWork, 0, Heads);
                rowWork.X = x + (nint)Heads * hd; rowWork.Y = y + (nint)Heads * hd; rowWork.Rstd = Rstd + (nint)i * normed + Heads; rowWork.Weight = KeyWeight;
                ForwardRows(ref rowWork, 0, KvHeads);
                new ReadOnlySpan<float>(x + (nint)normed * hd, KvHeads * hd).CopyTo(new Span<float>(y + (nint)normed * hd, KvHeads * hd));
            }
        }
    }

    private struct HeadsBackwardWork : IParallelWork
    {
        public float* Dy, X, QueryWeight, KeyWeight, Rstd, Dx;
        public int Rows, Heads, KvHeads, HeadDim;
        public bool Accumulate;

        public readonly void Execute(int item)
        {
            int hd = HeadDim, normed = Heads + KvHeads, width = (Heads + 2 * KvHeads) * hd;
            for (int i = item * RowBlock, end = Math.Min(Rows, (item + 1) * RowBlock); i < end; i++)
            {
                nint row = (nint)i * width, keys = row + (nint)Heads * hd, values = row + (nint)normed * hd;
                InputGradientRows(Dy + row, X + row, QueryWeight, Rstd + (nint)i * normed, Dx + row, hd, 0, Heads, Accumulate);
                InputGradientRows(Dy + keys, X + keys, KeyWeight, Rstd + (nint)i * normed + Heads, Dx + keys, hd, 0, KvHeads, Accumulate);
                var dValues = new Span<float>(Dx + values, KvHeads * hd);
                var dyValues = new ReadOnlySpan<float>(Dy + values, KvHeads * hd);
                if (Accumulate) TensorPrimitives.Add(dValues, dyValues, dValues);
                else dyValues.CopyTo(dValues);
            }
        }
    }

    private static int Count(int length, int block) => (length + block - 1) / block;

    private struct ForwardWork : IParallelWork
    {
        public float* X, Weight, Y, Rstd;
        public int N, C;
        public float Eps;

        public void Execute(int item) => ForwardRows(ref this, item * RowBlock, Math.Min(N, (item + 1) * RowBlock));
    }

    // Rows [i0, i1) of the forward, rounded as Hugging Face rounds them in fp32: x·rstd first, then times the weight.
    private static void ForwardRows(ref ForwardWork w, int i0, int i1)
    {
        int c = w.C;
        ReadOnlySpan<float> weight = new(w.Weight, c);
        for (int i = i0; i < i1; i++)
        {
            ReadOnlySpan<float> xRow = new(w.X + (nint)i * c, c);
            Span<float> yRow = new(w.Y + (nint)i * c, c);
            float meanSquare = TensorPrimitives.SumOfSquares(xRow) / c;
            float rowRstd = 1f / MathF.Sqrt(meanSquare + w.Eps);
            TensorPrimitives.Multiply(xRow, rowRstd, yRow);
            TensorPrimitives.Multiply(yRow, weight, yRow);
            w.Rstd[i] = rowRstd;
        }
    }

    // Items 0 … RowBlocks − 1 are blocks of rows of dx; the rest are blocks of columns of dweight.
    private struct BackwardWork : IParallelWork
    {
        public float* Dy, X, Weight, Rstd, Dx, Dweight;
        public int N, C, RowBlocks;
        public bool Accumulate;

        public readonly void Execute(int item)
        {
            if (item < RowBlocks)
                InputGradientRows(Dy, X, Weight, Rstd, Dx, C, item * RowBlock, Math.Min(N, (item + 1) * RowBlock), Accumulate);
            else
            {
                int j0 = (item - RowBlocks) * ColumnBlock;
                WeightGradientColumns(Dy, X, Rstd, Dweight, N, C, j0, Math.Min(C, j0 + ColumnBlock));
            }
        }
    }

    // dx for rows [i0, i1): two passes per row, Σ g·x̂ and then dx (+)= rstd·(g − x̂·mean(g·x̂)).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InputGradientRows(float* dy, float* x, float* weight, float* rstd, float* dx, int c, int i0, int i1, bool accumulate)
    {
        int width = Vector<float>.Count;
        for (int i = i0; i < i1; i++)
        {
            float* dyRow = dy + (nint)i * c, xRow = x + (nint)i * c, dxRow = dx + (nint)i * c;
            float rs = rstd[i];
            var vRs = new Vector<float>(rs);
            Vector<float> vSumGX = Vector<float>.Zero;
            int j = 0;
            for (; j <= c - width; j += width)
                vSumGX += Vector.Load(dyRow + j) * Vector.Load(weight + j) * (Vector.Load(xRow + j) * vRs);
            float sumGX = Vector.Sum(vSumGX);
            for (; j < c; j++)
                sumGX += dyRow[j] * weight[j] * (xRow[j] * rs);
            float meanGX = sumGX / c;

            var vMeanGX = new Vector<float>(meanGX);
            for (j = 0; j <= c - width; j += width)
            {
                Vector<float> g = Vector.Load(dyRow + j) * Vector.Load(weight + j);
                Vector<float> d = vRs * (g - Vector.Load(xRow + j) * vRs * vMeanGX);
                (accumulate ? Vector.Load(dxRow + j) + d : d).Store(dxRow + j);
            }
            for (; j < c; j++)
            {
                float d = rs * (dyRow[j] * weight[j] - xRow[j] * rs * meanGX);
                dxRow[j] = accumulate ? dxRow[j] + d : d;
            }
        }
    }

    // dweight[j] += Σ_i dy[i, j]·(x[i, j]·rstd[i]) for columns [j0, j1), rows in order.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightGradientColumns(float* dy, float* x, float* rstd, float* dweight, int n, int c, int j0, int j1)
    {
        if (j1 - j0 == ColumnBlock && Vector512.IsHardwareAccelerated)
        {
            WeightGradientBlock512(dy + j0, x + j0, rstd, dweight + j0, n, c);
            return;
        }
        int width = Vector<float>.Count;
        for (int i = 0; i < n; i++)
        {
            float* dyRow = dy + (nint)i * c, xRow = x + (nint)i * c;
            float rs = rstd[i];
            var vRs = new Vector<float>(rs);
            int j = j0;
            for (; j <= j1 - width; j += width)
                (Vector.Load(dweight + j) + Vector.Load(dyRow + j) * (Vector.Load(xRow + j) * vRs)).Store(dweight + j);
            for (; j < j1; j++)
                dweight[j] += dyRow[j] * (xRow[j] * rs);
        }
    }

    // A whole 64-column block with the sums in registers across the rows: the same additions in the same order as the
    // loop above (so the same bits), without reading and writing dweight once per row.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightGradientBlock512(float* dy, float* x, float* rstd, float* dweight, int n, int c)
    {
        Vector512<float> s0 = Vector512.Load(dweight), s1 = Vector512.Load(dweight + 16), s2 = Vector512.Load(dweight + 32), s3 = Vector512.Load(dweight + 48);
        for (int i = 0; i < n; i++)
        {
            float* dyRow = dy + (nint)i * c, xRow = x + (nint)i * c;
            Vector512<float> rs = Vector512.Create(rstd[i]);
            s0 += Vector512.Load(dyRow) * (Vector512.Load(xRow) * rs);
            s1 += Vector512.Load(dyRow + 16) * (Vector512.Load(xRow + 16) * rs);
            s2 += Vector512.Load(dyRow + 32) * (Vector512.Load(xRow + 32) * rs);
            s3 += Vector512.Load(dyRow + 48) * (Vector512.Load(xRow + 48) * rs);
        }
        s0.Store(dweight); s1.Store(dweight + 16); s2.Store(dweight + 32); s3.Store(dweight + 48);
    }
}
