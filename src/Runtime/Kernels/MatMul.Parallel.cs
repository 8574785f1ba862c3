using System;
using System.Numerics.Tensors;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

// The multi-threaded split of the linear layer (see Parallelism). Every item is a block of whole 4-row by 4-column
// blocks of one output, cut where the single-threaded loops cut too (rows and columns at multiples of 4), so each
// output element is computed by the same kernel block with the same order of summation as on one thread: results
// are bit-identical for any thread count.
public static unsafe partial class MatMul
{
    // Items per thread that a split aims at, so that a thread slowed by other programs leaves its share to the others.
    private const int ItemsPerThread = 2;

    /// <summary>Forward on several threads when it is worth it, else the single-threaded kernel.</summary>
    private static void ForwardSplit(float* x, float* w, float* bias, float* y, int n, int inF, int outF, SimdPath path)
    {
        int threads = Parallelism.ThreadsFor(2L * n * inF * outF, Blocks(n) * Blocks(outF));
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
    /// code). Items are row blocks of <c>dx</c> and row blocks of <c>dw</c> with the same rows of <c>dbias</c>, so no
    /// two threads write the same gradient.
    /// </summary>
    private static bool BackwardSplit(float* dy, float* x, float* w, float* dx, float* dw, float* dbias, int n, int inF, int outF, SimdPath path)
    {
        if (inF == 0) return false;
        long flops = (dx == null ? 2L : 4L) * n * inF * outF;
        int threads = Parallelism.ThreadsFor(flops, (dx == null ? 0 : Blocks(n)) + Blocks(outF));
        if (threads == 1) return false;

        int wanted = ItemsPerThread * threads;
        int dxChunk = Chunk(n, wanted, 64), dwChunk = Chunk(outF, wanted, 64);
        var work = new BackwardWork
        {
            Dy = dy, X = x, W = w, Dx = dx, Dw = dw, Dbias = dbias, N = n, InF = inF, OutF = outF, Path = path,
            DxChunk = dxChunk, DxChunks = dx == null ? 0 : Count(n, dxChunk), DwChunk = dwChunk,
        };
        WorkerPool.For(ref work, work.DxChunks + Count(outF, dwChunk), threads);
        return true;
    }

    private struct BackwardWork : IParallelWork
    {
        public float* Dy, X, W, Dx, Dw, Dbias;
        public int N, InF, OutF, DxChunk, DxChunks, DwChunk;
        public SimdPath Path;

        public readonly void Execute(int item)
        {
            if (item < DxChunks)
            {
                // dx[i, :] += Σ_o dy[i, o] · w[o, :] for this block of rows i
                int i0 = item * DxChunk, rows = Math.Min(DxChunk, N - i0);
                AccumulateProduct(Dy + (nint)i0 * OutF, OutF, 1, W, InF, Dx + (nint)i0 * InF, InF, rows, OutF, InF, Path);
                return;
            }
            // dw[o, :] += Σ_i dy[i, o] · x[i, :] and dbias[o] += Σ_i dy[i, o] for this block of output features o
            int o0 = (item - DxChunks) * DwChunk, features = Math.Min(DwChunk, OutF - o0);
            AccumulateProduct(Dy + o0, 1, OutF, X, InF, Dw + (nint)o0 * InF, InF, features, N, InF, Path);
            if (Dbias != null)
            {
                Span<float> dbias = new(Dbias + o0, features);
                for (int i = 0; i < N; i++)
                    TensorPrimitives.Add(dbias, new ReadOnlySpan<float>(Dy + (nint)i * OutF + o0, features), dbias);
            }
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
