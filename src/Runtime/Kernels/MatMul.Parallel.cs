using System;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

// The multi-threaded split of the linear layer (see Parallelism). Every item is a block of one output cut where the
// single-threaded loops cut too (forward: rows and columns at multiples of 4; backward: columns at multiples of 64),
// so each output element is computed by the same kernel block with the same order of summation as on one thread:
// results are bit-identical for any thread count.
public static unsafe partial class MatMul
{
    // Items per thread that a split aims at, so that a thread slowed by other programs leaves its share to the others.
    private const int ItemsPerThread = 2;

    /// <summary>Forward on several threads when it is worth it, else the single-threaded kernel.</summary>
    private static void ForwardSplit(float* x, float* w, float* bias, float* y, int n, int inF, int outF, SimdPath path)
    {
        if (path == SimdPath.Vector512 && n >= PanelForwardMinRows && outF >= PanelWidth && inF > 0)
        {
            ForwardPanelSplit(x, w, bias, y, n, inF, outF);
            return;
        }
        int threads = Parallelism.ThreadsFor(2L * n * inF * outF, (long)outF * inF * sizeof(float), Blocks(n) * Blocks(outF));
        if (threads == 1)
        {
            ForwardStrided(x, inF, w, inF, bias, y, outF, n, inF, outF, path);
            return;
        }

        // Rows first, in the kernel's own 64-row tiles while there are enough of them; a few rows (decoding) split
        // the output features instead.
        int wanted = ItemsPerThread * threads;
        int rowChunk = Chunk(n, wanted, ForwardRowTile);
        int rowChunks = Count(n, rowChunk);
        int colChunk = rowChunks >= wanted ? outF : Chunk(outF, 2 * Count(wanted, rowChunks), outF);
        var work = new ForwardWork
        {
            X = x, W = w, Bias = bias, Y = y, N = n, InF = inF, OutF = outF, Path = path,
            RowChunk = rowChunk, ColChunk = colChunk, ColChunks = Count(outF, colChunk),
        };
        WorkerPool.For(ref work, rowChunks * work.ColChunks, threads);
    }

    /// <summary>
    /// The packed forward (<see cref="PanelForward512"/>) on several threads when it is worth it: items are blocks of
    /// whole 64-column panels, the last one with the narrower rest, so each panel of <c>wᵀ</c> is copied once.
    /// </summary>
    private static void ForwardPanelSplit(float* x, float* w, float* bias, float* y, int n, int inF, int outF)
    {
        int panels = Count(outF, PanelWidth);
        int threads = Parallelism.ThreadsFor(2L * n * inF * outF, panels);
        if (threads == 1)
        {
            PanelForward512(x, w, bias, y, n, inF, outF, 0, outF);
            return;
        }
        int chunkPanels = Math.Max(1, panels / (ItemsPerThread * threads));
        var work = new ForwardPanelWork { X = x, W = w, Bias = bias, Y = y, N = n, InF = inF, OutF = outF, ColChunk = chunkPanels * PanelWidth };
        WorkerPool.For(ref work, Count(panels, chunkPanels), threads);
    }

    private struct ForwardPanelWork : IParallelWork
    {
        public float* X, W, Bias, Y;
        public int N, InF, OutF, ColChunk;

        public readonly void Execute(int item)
        {
            int j0 = item * ColChunk;
            PanelForward512(X, W, Bias, Y, N, InF, OutF, j0, Math.Min(OutF, j0 + ColChunk));
        }
    }

    private struct ForwardWork : IParallelWork
    {
        public float* X, W, Bias, Y;
        public int N, InF, OutF, RowChunk, ColChunk, ColChunks;
        public SimdPath Path;

        public readonly void Execute(int item)
        {
            int i0 = item / ColChunks * RowChunk, o0 = item % ColChunks * ColChunk;
            int rows = Math.Min(RowChunk, N - i0), cols = Math.Min(ColChunk, OutF - o0);
            ForwardStrided(X + (nint)i0 * InF, InF, W + (nint)o0 * InF, InF, Bias == null ? null : Bias + o0,
                Y + (nint)i0 * OutF + o0, OutF, rows, InF, cols, Path);
        }
    }

    /// <summary>
    /// Backward on several threads when it is worth it; false when it is not (the caller then runs the single-threaded
    /// code). Items are column blocks of <c>dx</c> and of <c>dw</c>, each a whole number of the packed kernel's
    /// 64-column panels, plus one item for <c>dbias</c>, so no two threads write the same gradient. Splitting the
    /// columns rather than the rows means every panel of the right operand is copied once, as on one thread.
    /// </summary>
    private static bool BackwardSplit(float* dy, float* x, float* w, float* dx, float* dw, float* dbias, int n, int inF, int outF, SimdPath path, bool overwriteDx)
    {
        if (inF == 0) return false;
        int products = dx == null ? 1 : 2, panels = Count(inF, PanelWidth);
        long flops = 2L * products * n * inF * outF;
        int threads = Parallelism.ThreadsFor(flops, products * panels);
        if (threads == 1) return false;

        int chunkPanels = Math.Max(1, products * panels / (ItemsPerThread * threads));
        var work = new BackwardWork
        {
            Dy = dy, X = x, W = w, Dx = dx, Dw = dw, Dbias = dbias, N = n, InF = inF, OutF = outF, Path = path, OverwriteDx = overwriteDx,
            ColChunk = chunkPanels * PanelWidth, Chunks = Count(panels, chunkPanels),
        };
        WorkerPool.For(ref work, products * work.Chunks + (dbias == null ? 0 : 1), threads);
        return true;
    }

    private struct BackwardWork : IParallelWork
    {
        public float* Dy, X, W, Dx, Dw, Dbias;
        public int N, InF, OutF, ColChunk, Chunks;
        public SimdPath Path;
        public bool OverwriteDx;

        public readonly void Execute(int item)
        {
            int products = Dx == null ? 1 : 2;
            if (item == products * Chunks)
            {
                AccumulateBias(new ReadOnlySpan<float>(Dy, N * OutF), new Span<float>(Dbias, OutF), N);
                return;
            }
            int j0 = item % Chunks * ColChunk, cols = Math.Min(ColChunk, InF - j0);
            if (item < Chunks && Dx != null)
                // dx[:, j] (+)= Σ_o dy[:, o] · w[o, j] for this block of columns j
                AccumulateProduct(Dy, OutF, 1, W + j0, InF, Dx + j0, InF, N, OutF, cols, Path, OverwriteDx);
            else
                // dw[:, j] += Σ_i dy[i, :]ᵀ · x[i, j] for this block of columns j
                AccumulateProduct(Dy, 1, OutF, X + j0, InF, Dw + j0, InF, OutF, N, cols, Path, overwrite: false);
        }
    }

    /// <summary>Whole blocks of 4 (the kernels' register block) in <paramref name="length"/>, at least 1.</summary>
    private static int Blocks(int length) => Math.Max(1, length / 4);

    /// <summary>
    /// A chunk of <paramref name="length"/> that is a multiple of 4 (so chunks start where the kernels' 4-blocks start)
    /// and at most <paramref name="largest"/>, small enough to give about <paramref name="wanted"/> chunks.
    /// </summary>
    private static int Chunk(int length, int wanted, int largest)
    {
        int chunk = (Count(length, wanted) + 3) & ~3;
        return Math.Clamp(chunk, 4, Math.Max(4, largest));
    }

    private static int Count(int length, int chunk) => (length + chunk - 1) / chunk;
}
