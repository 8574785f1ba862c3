using System;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

// The multi-threaded split of the elementwise loops (see Parallelism): chunks whose lengths are multiples of 16 floats,
// so every element goes through the same vector width (and rounding) as in the single-threaded loop.
internal static unsafe partial class Elementwise
{
    internal const int ChunkFloats = 1 << 14;

    /// <summary>
    /// <see cref="Map{TOp}"/> on several threads when the span is long enough; <paramref name="cost"/> is the work of
    /// one element in Parallelism's units (operations of a matrix product that take as long).
    /// </summary>
    public static void MapSplit<TOp>(ReadOnlySpan<float> x, Span<float> y, string xName, string yName, int cost) where TOp : IUnaryOperator
    {
        SpanChecks.SameLength(y.Length, x.Length, yName, xName);
        int chunks = (x.Length + ChunkFloats - 1) / ChunkFloats;
        int threads = Parallelism.ThreadsFor((long)cost * x.Length, chunks);
        if (threads == 1)
        {
            Map<TOp>(x, y, xName, yName);
            return;
        }
        fixed (float* px = x, py = y)
        {
            var work = new MapWork<TOp> { X = px, Y = py, Length = x.Length };
            WorkerPool.For(ref work, chunks, threads);
        }
    }

    /// <summary><see cref="MapBackward{TOp}"/> on several threads when the spans are long enough (<paramref name="cost"/> as in <see cref="MapSplit{TOp}"/>).</summary>
    public static void MapBackwardSplit<TOp>(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d, bool accumulate, string dyName, string xName, string yName, string dName, int cost) where TOp : IBackwardOperator
    {
        SpanChecks.SameLength(x.Length, dy.Length, xName, dyName);
        SpanChecks.SameLength(y.Length, dy.Length, yName, dyName);
        SpanChecks.SameLength(d.Length, dy.Length, dName, dyName);
        int chunks = (dy.Length + ChunkFloats - 1) / ChunkFloats;
        int threads = Parallelism.ThreadsFor((long)cost * dy.Length, chunks);
        if (threads == 1)
        {
            MapBackward<TOp>(dy, x, y, d, accumulate, dyName, xName, yName, dName);
            return;
        }
        fixed (float* pa = dy, pb = x, pc = y, pd = d)
        {
            var work = new MapBackwardWork<TOp> { Dy = pa, X = pb, Y = pc, D = pd, Length = dy.Length, Accumulate = accumulate };
            WorkerPool.For(ref work, chunks, threads);
        }
    }

    // Clearing a float costs about as long as 8 operations of a matrix product (memory-bound, ~25 GB/s on one core).
    private const int ClearCost = 8;

    /// <summary>Sets every element of <paramref name="x"/> to 0, on several threads when it is long enough (gradient buffers).</summary>
    public static void ClearSplit(Span<float> x) => ClearSplit(x, freshPages: false);

    /// <summary><see cref="ClearSplit(Span{float})"/>; <paramref name="freshPages"/> when <paramref name="x"/> is new memory written for the first time.</summary>
    internal static void ClearSplit(Span<float> x, bool freshPages)
    {
        int chunks = (x.Length + ChunkFloats - 1) / ChunkFloats;
        int threads = Parallelism.ThreadsFor((long)ClearCost * x.Length, chunks);
        if (threads == 1)
        {
            x.Clear();
            return;
        }
        fixed (float* px = x)
        {
            var work = new ClearWork { X = px, Length = x.Length };
            WorkerPool.For(ref work, chunks, threads, writesFreshPages: freshPages);
        }
    }

    private struct ClearWork : IParallelWork
    {
        public float* X;
        public int Length;

        public readonly void Execute(int item)
        {
            int start = item * ChunkFloats;
            new Span<float>(X + start, Math.Min(ChunkFloats, Length - start)).Clear();
        }
    }

    private struct MapWork<TOp> : IParallelWork where TOp : IUnaryOperator
    {
        public float* X, Y;
        public int Length;

        public readonly void Execute(int item)
        {
            int start = item * ChunkFloats, length = Math.Min(ChunkFloats, Length - start);
            Map<TOp>(new ReadOnlySpan<float>(X + start, length), new Span<float>(Y + start, length), "x", "y");
        }
    }

    private struct MapBackwardWork<TOp> : IParallelWork where TOp : IBackwardOperator
    {
        public float* Dy, X, Y, D;
        public int Length;
        public bool Accumulate;

        public readonly void Execute(int item)
        {
            int start = item * ChunkFloats, length = Math.Min(ChunkFloats, Length - start);
            MapBackward<TOp>(new ReadOnlySpan<float>(Dy + start, length), new ReadOnlySpan<float>(X + start, length), new ReadOnlySpan<float>(Y + start, length),
                new Span<float>(D + start, length), Accumulate, "dy", "x", "y", "d");
        }
    }
}
