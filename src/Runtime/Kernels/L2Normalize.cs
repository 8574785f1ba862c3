using System;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

/// <summary>
/// Each row scaled to unit Euclidean length, PyTorch's <c>F.normalize(x, p=2, dim=-1)</c> (sentence-transformers'
/// <c>Normalize</c> module, the last step of most embedding models): <c>y = x / max(‖x‖₂, eps)</c>.
/// </summary>
/// <remarks>
/// Large inputs are split between threads by blocks of rows (see <see cref="Parallelism"/>); a row is computed the same
/// way whichever block and thread it falls to, so results do not depend on the thread count.
/// </remarks>
public static unsafe class L2Normalize
{
    // Work per element in Parallelism's units: memory-bound, a few operations per float read.
    private const int ForwardCost = 8, BackwardCost = 16;

    private const int RowBlock = 32;

    /// <summary>
    /// Effectively computes <c>y[i, :] = x[i, :] / max(norms[i], eps)</c> with <c>norms[i] = ‖x[i, :]‖₂</c>, saved (not
    /// clamped) for <see cref="Backward"/>. Overwrites the outputs. The division is a division, as in PyTorch, not a
    /// multiplication by a reciprocal.
    /// </summary>
    /// <param name="x">Input <c>[n, c]</c>.</param>
    /// <param name="y">Output <c>[n, c]</c>; may be <paramref name="x"/> itself, must not overlap it otherwise.</param>
    /// <param name="norms">Saved Euclidean norms of the rows <c>[n]</c>.</param>
    /// <param name="n">Rows.</param>
    /// <param name="c">Row width.</param>
    /// <param name="eps">Smallest divisor, 1e-12 as in PyTorch: a row shorter than that is divided by eps instead.</param>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, Span<float> norms, int n, int c, float eps = 1e-12f)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.Positive(c, nameof(c));
        SpanChecks.Length(x.Length, (long)n * c, nameof(x));
        SpanChecks.Length(y.Length, (long)n * c, nameof(y));
        SpanChecks.Length(norms.Length, n, nameof(norms));

        fixed (float* px = x, py = y, pn = norms)
        {
            var work = new ForwardWork { X = px, Y = py, Norms = pn, N = n, C = c, Eps = eps };
            int blocks = Count(n);
            WorkerPool.For(ref work, blocks, Parallelism.ThreadsFor((long)ForwardCost * n * c, blocks));
        }
    }

    /// <summary>
    /// Accumulates the gradient of <see cref="Forward"/>, per row: where <c>norm ≥ eps</c>, y = x/‖x‖ and
    /// <c>dx += (dy − y·(y·dy)) / norm</c> (dy projected off y, then divided by the norm); where <c>norm &lt; eps</c>,
    /// y = x/eps and <c>dx += dy/eps</c>. With <paramref name="overwriteDx"/>, <c>dx = …</c> instead.
    /// </summary>
    /// <remarks>
    /// A row exactly at <c>norm = eps</c> takes the first branch, as PyTorch's <c>clamp_min</c> passes its gradient
    /// through where <c>input ≥ min</c>.
    /// </remarks>
    /// <param name="dy">Gradient of the output <c>[n, c]</c>.</param>
    /// <param name="y">The forward output <c>[n, c]</c>.</param>
    /// <param name="norms">Norms saved by forward <c>[n]</c>.</param>
    /// <param name="dx">Gradient of the input <c>[n, c]</c> (accumulated unless <paramref name="overwriteDx"/>); must not
    /// overlap the other spans.</param>
    /// <param name="n">Rows.</param>
    /// <param name="c">Row width.</param>
    /// <param name="eps">The forward's eps.</param>
    /// <param name="overwriteDx">Store the gradient rather than add it (its first contribution, which then needs no clearing).</param>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> y, ReadOnlySpan<float> norms, Span<float> dx, int n, int c, float eps = 1e-12f, bool overwriteDx = false)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.Positive(c, nameof(c));
        SpanChecks.Length(dy.Length, (long)n * c, nameof(dy));
        SpanChecks.Length(y.Length, (long)n * c, nameof(y));
        SpanChecks.Length(norms.Length, n, nameof(norms));
        SpanChecks.Length(dx.Length, (long)n * c, nameof(dx));

        fixed (float* pdy = dy, py = y, pn = norms, pdx = dx)
        {
            var work = new BackwardWork { Dy = pdy, Y = py, Norms = pn, Dx = pdx, N = n, C = c, Eps = eps, Accumulate = !overwriteDx };
            int blocks = Count(n);
            WorkerPool.For(ref work, blocks, Parallelism.ThreadsFor((long)BackwardCost * n * c, blocks));
        }
    }

    private static int Count(int rows) => (rows + RowBlock - 1) / RowBlock;

    private struct ForwardWork : IParallelWork
    {
        public float* X, Y, Norms;
        public int N, C;
        public float Eps;

        public readonly void Execute(int item)
        {
            int end = Math.Min(N, (item + 1) * RowBlock);
            for (int i = item * RowBlock; i < end; i++)
            {
                ReadOnlySpan<float> xRow = new(X + (nint)i * C, C);
                float norm = TensorPrimitives.Norm(xRow);
                // MathF.Max keeps a NaN norm, so a NaN row stays NaN (as clamp_min does).
                TensorPrimitives.Divide(xRow, MathF.Max(norm, Eps), new Span<float>(Y + (nint)i * C, C));
                Norms[i] = norm;
            }
        }
    }

    private struct BackwardWork : IParallelWork
    {
        public float* Dy, Y, Norms, Dx;
        public int N, C;
        public float Eps;
        public bool Accumulate;

        public readonly void Execute(int item)
            => InputGradientRows(Dy, Y, Norms, Dx, C, Eps, item * RowBlock, Math.Min(N, (item + 1) * RowBlock), Accumulate);
    }

    // dx (+)= (dy − y·s)/max(norm, eps) for rows [i0, i1), with s = y·dy where norm ≥ eps and s = 0 where the norm was
    // clamped (then y·0 = 0 and the row's gradient is dy/eps, as the clamped forward is linear in x).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InputGradientRows(float* dy, float* y, float* norms, float* dx, int c, float eps, int i0, int i1, bool accumulate)
    {
        int width = Vector<float>.Count;
        for (int i = i0; i < i1; i++)
        {
            float* dyRow = dy + (nint)i * c, yRow = y + (nint)i * c, dxRow = dx + (nint)i * c;
            float norm = norms[i];
            float dot = norm >= eps ? TensorPrimitives.Dot(new ReadOnlySpan<float>(yRow, c), new ReadOnlySpan<float>(dyRow, c)) : 0f;
            float divisor = MathF.Max(norm, eps);
            var vDot = new Vector<float>(dot);
            var vDivisor = new Vector<float>(divisor);
            int j = 0;
            for (; j <= c - width; j += width)
            {
                Vector<float> d = (Vector.Load(dyRow + j) - Vector.Load(yRow + j) * vDot) / vDivisor;
                (accumulate ? Vector.Load(dxRow + j) + d : d).Store(dxRow + j);
            }
            for (; j < c; j++)
            {
                float d = (dyRow[j] - yRow[j] * dot) / divisor;
                dxRow[j] = accumulate ? dxRow[j] + d : d;
            }
        }
    }
}
