using System;
using System.Numerics.Tensors;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

/// <summary>
/// The residual connection <c>y = a + b</c> and its backward, on several threads when the tensors are large (see
/// <see cref="Parallelism"/>; chunks of 16,384 floats, each computed as on one thread).
/// </summary>
public static unsafe class Residual
{
    // Work per element in Parallelism's units: a memory-bound add, about as long as 8 operations of a matrix product.
    private const int Cost = 8;

    private const int ChunkFloats = Elementwise.ChunkFloats;

    /// <summary>Effectively computes <c>y[i] = a[i] + b[i]</c>. <paramref name="y"/> may be <paramref name="a"/> or <paramref name="b"/>.</summary>
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        SpanChecks.SameLength(b.Length, a.Length, nameof(b), nameof(a));
        SpanChecks.SameLength(y.Length, a.Length, nameof(y), nameof(a));
        int chunks = (a.Length + ChunkFloats - 1) / ChunkFloats;
        int threads = Parallelism.ThreadsFor((long)Cost * a.Length, chunks);
        if (threads == 1)
        {
            TensorPrimitives.Add(a, b, y);
            return;
        }
        fixed (float* pa = a, pb = b, py = y)
        {
            var work = new AddWork { A = pa, B = pb, Y = py, Length = a.Length };
            WorkerPool.For(ref work, chunks, threads);
        }
    }

    /// <summary>
    /// The gradients of <see cref="Add"/>: <c>da[i] += dy[i]</c> and <c>db[i] += dy[i]</c>, or with
    /// <paramref name="overwriteDa"/> (<paramref name="overwriteDb"/>) a copy of <paramref name="dy"/> instead (the first
    /// contribution to that gradient, which then needs no clearing).
    /// </summary>
    /// <param name="dy">Gradient of the sum.</param>
    /// <param name="da">Gradient of the first term; must not overlap the other spans.</param>
    /// <param name="db">Gradient of the second term; must not overlap the other spans.</param>
    /// <param name="overwriteDa">Store into <paramref name="da"/> rather than add.</param>
    /// <param name="overwriteDb">Store into <paramref name="db"/> rather than add.</param>
    public static void Backward(ReadOnlySpan<float> dy, Span<float> da, Span<float> db, bool overwriteDa = false, bool overwriteDb = false)
    {
        SpanChecks.SameLength(da.Length, dy.Length, nameof(da), nameof(dy));
        SpanChecks.SameLength(db.Length, dy.Length, nameof(db), nameof(dy));
        int chunks = (dy.Length + ChunkFloats - 1) / ChunkFloats;
        int threads = Parallelism.ThreadsFor(2L * Cost * dy.Length, chunks);
        fixed (float* pdy = dy, pda = da, pdb = db)
        {
            var work = new BackwardWork { Dy = pdy, Da = pda, Db = pdb, Length = dy.Length, OverwriteDa = overwriteDa, OverwriteDb = overwriteDb };
            if (threads == 1) BackwardRange(ref work, 0, dy.Length);
            else WorkerPool.For(ref work, chunks, threads);
        }
    }

    private struct AddWork : IParallelWork
    {
        public float* A, B, Y;
        public int Length;

        public readonly void Execute(int item)
        {
            int start = item * ChunkFloats, length = Math.Min(ChunkFloats, Length - start);
            TensorPrimitives.Add(new ReadOnlySpan<float>(A + start, length), new ReadOnlySpan<float>(B + start, length), new Span<float>(Y + start, length));
        }
    }

    private struct BackwardWork : IParallelWork
    {
        public float* Dy, Da, Db;
        public int Length;
        public bool OverwriteDa, OverwriteDb;

        public void Execute(int item)
        {
            int start = item * ChunkFloats;
            BackwardRange(ref this, start, Math.Min(ChunkFloats, Length - start));
        }
    }

    // Both gradients over elements [start, start + length), while that stretch of dy is in cache.
    private static void BackwardRange(ref BackwardWork w, int start, int length)
    {
        ReadOnlySpan<float> dy = new(w.Dy + start, length);
        Into(dy, new Span<float>(w.Da + start, length), w.OverwriteDa);
        Into(dy, new Span<float>(w.Db + start, length), w.OverwriteDb);
    }

    private static void Into(ReadOnlySpan<float> dy, Span<float> d, bool overwrite)
    {
        if (overwrite) dy.CopyTo(d);
        else TensorPrimitives.Add(d, dy, d);
    }
}
