using System;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

/// <summary>
/// PyTorch's <c>nn.LayerNorm(c)</c> over the last dimension: per row, <c>y = (x − mean)·rstd·gamma + beta</c> with
/// <c>rstd = 1/√(var + eps)</c> and the biased variance (divide by c). An empty <c>beta</c> is
/// <c>nn.LayerNorm(c, bias=False)</c>: <c>y = (x − mean)·rstd·gamma</c> (ModernBERT's norms).
/// </summary>
/// <remarks>
/// Large inputs are split between threads (see <see cref="Parallelism"/>): forward and the input's gradient by blocks
/// of rows; the gradients of gamma and beta, sums over rows, by blocks of columns, each column summed over the rows in
/// order. One thread runs the same blocks one after another, so results do not depend on the thread count.
/// </remarks>
public static unsafe class LayerNorm
{
    // Work per element in Parallelism's units: both passes are memory-bound, a few operations per float read.
    private const int ForwardCost = 8, BackwardCost = 16;

    // Rows per block of the row split, and columns (a multiple of every vector width) per block of the column split.
    private const int RowBlock = 32, ColumnBlock = 64;

    /// <summary>
    /// Normalizes each of the <paramref name="n"/> rows of width <paramref name="c"/> and saves the per-row
    /// <paramref name="mean"/> and <paramref name="rstd"/> for <see cref="Backward"/>. Overwrites the outputs.
    /// </summary>
    /// <param name="x">Input <c>[n, c]</c>.</param>
    /// <param name="gamma">Scale <c>[c]</c>.</param>
    /// <param name="beta">Shift <c>[c]</c>, or empty for none.</param>
    /// <param name="y">Output <c>[n, c]</c>; must not overlap <paramref name="x"/>.</param>
    /// <param name="mean">Saved row means <c>[n]</c>.</param>
    /// <param name="rstd">Saved reciprocal standard deviations <c>[n]</c>.</param>
    /// <param name="n">Rows.</param>
    /// <param name="c">Row width (channels).</param>
    /// <param name="eps">Added to the variance, 1e-5 as in PyTorch.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y, Span<float> mean, Span<float> rstd, int n, int c, float eps = 1e-5f)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.Positive(c, nameof(c));
        SpanChecks.Length(x.Length, (long)n * c, nameof(x));
        SpanChecks.Length(gamma.Length, c, nameof(gamma));
        if (!beta.IsEmpty) SpanChecks.Length(beta.Length, c, nameof(beta));
        SpanChecks.Length(y.Length, (long)n * c, nameof(y));
        SpanChecks.Length(mean.Length, n, nameof(mean));
        SpanChecks.Length(rstd.Length, n, nameof(rstd));

        fixed (float* px = x, pg = gamma, pb = beta, py = y, pm = mean, pr = rstd)
        {
            var work = new ForwardWork { X = px, Gamma = pg, Beta = pb, Y = py, Mean = pm, Rstd = pr, N = n, C = c, Eps = eps };
            int blocks = Count(n, RowBlock);
            int threads = Parallelism.ThreadsFor((long)ForwardCost * n * c, blocks);
            if (threads == 1) ForwardRows(ref work, 0, n);
            else WorkerPool.For(ref work, blocks, threads);
        }
    }

    /// <summary>
    /// Accumulates the gradients of <see cref="Forward"/> (reference: llm.c <c>layernorm_backward</c>). With
    /// x̂ = (x − mean)·rstd and g = dy·gamma, per row:
    /// <c>dx += rstd·(g − mean(g) − x̂·mean(g·x̂))</c>, <c>dgamma += dy·x̂</c>, <c>dbeta += dy</c>; with
    /// <paramref name="overwriteDx"/>, <c>dx = …</c> instead.
    /// </summary>
    /// <param name="dy">Gradient of the output <c>[n, c]</c>.</param>
    /// <param name="x">The forward input <c>[n, c]</c>.</param>
    /// <param name="gamma">Scale <c>[c]</c>.</param>
    /// <param name="mean">Row means saved by forward <c>[n]</c>.</param>
    /// <param name="rstd">Reciprocal standard deviations saved by forward <c>[n]</c>.</param>
    /// <param name="dx">Gradient of the input <c>[n, c]</c> (accumulated unless <paramref name="overwriteDx"/>).</param>
    /// <param name="dgamma">Gradient of gamma <c>[c]</c> (accumulated).</param>
    /// <param name="dbeta">Gradient of beta <c>[c]</c> (accumulated), or empty where the norm has no shift.</param>
    /// <param name="n">Rows.</param>
    /// <param name="c">Row width.</param>
    /// <param name="overwriteDx">Store the input's gradient rather than add it (its first contribution, which then needs
    /// no clearing); the parameters' gradients are always accumulated.</param>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dgamma, Span<float> dbeta, int n, int c, bool overwriteDx = false)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.Positive(c, nameof(c));
        SpanChecks.Length(dy.Length, (long)n * c, nameof(dy));
        SpanChecks.Length(x.Length, (long)n * c, nameof(x));
        SpanChecks.Length(gamma.Length, c, nameof(gamma));
        SpanChecks.Length(mean.Length, n, nameof(mean));
        SpanChecks.Length(rstd.Length, n, nameof(rstd));
        SpanChecks.Length(dx.Length, (long)n * c, nameof(dx));
        SpanChecks.Length(dgamma.Length, c, nameof(dgamma));
        if (!dbeta.IsEmpty) SpanChecks.Length(dbeta.Length, c, nameof(dbeta));

        fixed (float* pdy = dy, px = x, pg = gamma, pm = mean, pr = rstd, pdx = dx, pdg = dgamma, pdb = dbeta)
        {
            var work = new BackwardWork
            {
                Dy = pdy, X = px, Gamma = pg, Mean = pm, Rstd = pr, Dx = pdx, Dgamma = pdg, Dbeta = pdb, N = n, C = c,
                Accumulate = !overwriteDx, RowBlocks = Count(n, RowBlock),
            };
            // One thread runs the same blocks in order (WorkerPool.For with 1 thread).
            int blocks = work.RowBlocks + Count(c, ColumnBlock);
            WorkerPool.For(ref work, blocks, Parallelism.ThreadsFor((long)BackwardCost * n * c, blocks));
        }
    }

    private static int Count(int length, int block) => (length + block - 1) / block;

    private struct ForwardWork : IParallelWork
    {
        public float* X, Gamma, Beta, Y, Mean, Rstd;
        public int N, C;
        public float Eps;

        public void Execute(int item) => ForwardRows(ref this, item * RowBlock, Math.Min(N, (item + 1) * RowBlock));
    }

    // Rows [i0, i1) of the forward.
    private static void ForwardRows(ref ForwardWork w, int i0, int i1)
    {
        int c = w.C;
        ReadOnlySpan<float> gamma = new(w.Gamma, c), beta = w.Beta == null ? default : new(w.Beta, c);
        for (int i = i0; i < i1; i++)
        {
            ReadOnlySpan<float> xRow = new(w.X + (nint)i * c, c);
            Span<float> yRow = new(w.Y + (nint)i * c, c);
            float rowMean = TensorPrimitives.Sum(xRow) / c;
            // Two passes (centre, then square) rather than E[x²] − E[x]², which cancels when |mean| ≫ std.
            // The output row doubles as the scratch for the centred values.
            TensorPrimitives.Subtract(xRow, rowMean, yRow);
            float variance = TensorPrimitives.SumOfSquares(yRow) / c;
            float rowRstd = 1f / MathF.Sqrt(variance + w.Eps);
            TensorPrimitives.Multiply(yRow, rowRstd, yRow);
            if (beta.IsEmpty) TensorPrimitives.Multiply(yRow, gamma, yRow);
            else TensorPrimitives.MultiplyAdd(yRow, gamma, beta, yRow);
            w.Mean[i] = rowMean;
            w.Rstd[i] = rowRstd;
        }
    }

    // Items 0 … RowBlocks − 1 are blocks of rows of dx; the rest are blocks of columns of dgamma and dbeta.
    private struct BackwardWork : IParallelWork
    {
        public float* Dy, X, Gamma, Mean, Rstd, Dx, Dgamma, Dbeta;
        public int N, C, RowBlocks;
        public bool Accumulate;

        public readonly void Execute(int item)
        {
            if (item < RowBlocks)
                InputGradientRows(Dy, X, Gamma, Mean, Rstd, Dx, C, item * RowBlock, Math.Min(N, (item + 1) * RowBlock), Accumulate);
            else
            {
                int j0 = (item - RowBlocks) * ColumnBlock;
                ParameterGradientColumns(Dy, X, Mean, Rstd, Dgamma, Dbeta, N, C, j0, Math.Min(C, j0 + ColumnBlock));
            }
        }
    }

    // dx for rows [i0, i1): two passes per row, Σ g and Σ g·x̂, then dx (+)= rstd·(g − mean(g) − x̂·mean(g·x̂)).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InputGradientRows(float* dy, float* x, float* gamma, float* mean, float* rstd, float* dx, int c, int i0, int i1, bool accumulate)
    {
        int width = Vector<float>.Count;
        for (int i = i0; i < i1; i++)
        {
            float* dyRow = dy + (nint)i * c, xRow = x + (nint)i * c, dxRow = dx + (nint)i * c;
            float mu = mean[i], rs = rstd[i];
            var vMu = new Vector<float>(mu);
            var vRs = new Vector<float>(rs);
            Vector<float> vSumG = Vector<float>.Zero, vSumGX = Vector<float>.Zero;
            int j = 0;
            for (; j <= c - width; j += width)
            {
                Vector<float> g = Vector.Load(dyRow + j) * Vector.Load(gamma + j);
                Vector<float> xHat = (Vector.Load(xRow + j) - vMu) * vRs;
                vSumG += g;
                vSumGX += g * xHat;
            }
            float sumG = Vector.Sum(vSumG), sumGX = Vector.Sum(vSumGX);
            for (; j < c; j++)
            {
                float g = dyRow[j] * gamma[j];
                sumG += g;
                sumGX += g * (xRow[j] - mu) * rs;
            }
            float meanG = sumG / c, meanGX = sumGX / c;

            var vMeanG = new Vector<float>(meanG);
            var vMeanGX = new Vector<float>(meanGX);
            for (j = 0; j <= c - width; j += width)
            {
                Vector<float> xHat = (Vector.Load(xRow + j) - vMu) * vRs;
                Vector<float> g = Vector.Load(dyRow + j) * Vector.Load(gamma + j);
                Vector<float> d = vRs * (g - vMeanG - xHat * vMeanGX);
                (accumulate ? Vector.Load(dxRow + j) + d : d).Store(dxRow + j);
            }
            for (; j < c; j++)
            {
                float d = rs * (dyRow[j] * gamma[j] - meanG - (xRow[j] - mu) * rs * meanGX);
                dxRow[j] = accumulate ? dxRow[j] + d : d;
            }
        }
    }

    // dgamma[j] += Σ_i dy[i, j]·x̂[i, j] and dbeta[j] += Σ_i dy[i, j] for columns [j0, j1), rows in order (no dbeta
    // where the norm has no shift: a null pointer).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ParameterGradientColumns(float* dy, float* x, float* mean, float* rstd, float* dgamma, float* dbeta, int n, int c, int j0, int j1)
    {
        if (j1 - j0 == ColumnBlock && Vector512.IsHardwareAccelerated)
        {
            ParameterGradientBlock512(dy + j0, x + j0, mean, rstd, dgamma + j0, dbeta == null ? null : dbeta + j0, n, c);
            return;
        }
        int width = Vector<float>.Count;
        for (int i = 0; i < n; i++)
        {
            float* dyRow = dy + (nint)i * c, xRow = x + (nint)i * c;
            float mu = mean[i], rs = rstd[i];
            var vMu = new Vector<float>(mu);
            var vRs = new Vector<float>(rs);
            int j = j0;
            for (; j <= j1 - width; j += width)
            {
                Vector<float> d = Vector.Load(dyRow + j);
                Vector<float> xHat = (Vector.Load(xRow + j) - vMu) * vRs;
                (Vector.Load(dgamma + j) + d * xHat).Store(dgamma + j);
                if (dbeta != null) (Vector.Load(dbeta + j) + d).Store(dbeta + j);
            }
            for (; j < j1; j++)
            {
                float d = dyRow[j];
                dgamma[j] += d * ((xRow[j] - mu) * rs);
                if (dbeta != null) dbeta[j] += d;
            }
        }
    }

    // A whole 64-column block with the sums in registers across the rows: the same additions in the same order as
    // the loop above (so the same bits), without reading and writing dgamma and dbeta once per row; dbeta's sums are
    // dropped where it is null.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ParameterGradientBlock512(float* dy, float* x, float* mean, float* rstd, float* dgamma, float* dbeta, int n, int c)
    {
        Vector512<float> g0 = Vector512.Load(dgamma), g1 = Vector512.Load(dgamma + 16), g2 = Vector512.Load(dgamma + 32), g3 = Vector512.Load(dgamma + 48);
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        if (dbeta != null) (b0, b1, b2, b3) = (Vector512.Load(dbeta), Vector512.Load(dbeta + 16), Vector512.Load(dbeta + 32), Vector512.Load(dbeta + 48));
        for (int i = 0; i < n; i++)
        {
            float* dyRow = dy + (nint)i * c, xRow = x + (nint)i * c;
            Vector512<float> mu = Vector512.Create(mean[i]), rs = Vector512.Create(rstd[i]);
            Vector512<float> d = Vector512.Load(dyRow);
            g0 += d * ((Vector512.Load(xRow) - mu) * rs);
            b0 += d;
            d = Vector512.Load(dyRow + 16);
            g1 += d * ((Vector512.Load(xRow + 16) - mu) * rs);
            b1 += d;
            d = Vector512.Load(dyRow + 32);
            g2 += d * ((Vector512.Load(xRow + 32) - mu) * rs);
            b2 += d;
            d = Vector512.Load(dyRow + 48);
            g3 += d * ((Vector512.Load(xRow + 48) - mu) * rs);
            b3 += d;
        }
        g0.Store(dgamma); g1.Store(dgamma + 16); g2.Store(dgamma + 32); g3.Store(dgamma + 48);
        if (dbeta == null) return;
        b0.Store(dbeta); b1.Store(dbeta + 16); b2.Store(dbeta + 32); b3.Store(dbeta + 48);
    }
}
