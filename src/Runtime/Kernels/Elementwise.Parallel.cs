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

    /// <summary><see cref="MapPair{TOp}"/> on several threads when the spans are long enough (<paramref name="cost"/> as in <see cref="MapSplit{TOp}"/>).</summary>
    public static void MapPairSplit<TOp>(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> d, bool accumulate, string aName, string bName, string dName, int cost) where TOp : IBinaryOperator
    {
        SpanChecks.SameLength(b.Length, a.Length, bName, aName);
        SpanChecks.SameLength(d.Length, a.Length, dName, aName);
        int chunks = (a.Length + ChunkFloats - 1) / ChunkFloats;
        int threads = Parallelism.ThreadsFor((long)cost * a.Length, chunks);
        if (threads == 1)
        {
            MapPair<TOp>(a, b, d, accumulate, aName, bName, dName);
            return;
        }
        fixed (float* pa = a, pb = b, pd = d)
        {
            var work = new MapPairWork<TOp> { A = pa, B = pb, D = pd, Length = a.Length, Accumulate = accumulate };
            WorkerPool.For(ref work, chunks, threads);
        }
    }

    // Clearing a float costs about as long as 8 operations of a matrix product (memory-bound, ~25 GB/s on one core).
    private const int ClearCost = 8;

    /// <summary>Sets every element of <paramref name="x"/> to 0, on several threads when it is long enough (gradient buffers).</summary>
    public static void ClearSplit(Span<float> x)
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
            WorkerPool.For(ref work, chunks, threads);
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

    private struct MapPairWork<TOp> : IParallelWork where TOp : IBinaryOperator
    {
        public float* A, B, D;
        public int Length;
        public bool Accumulate;

        public readonly void Execute(int item)
        {
            int start = item * ChunkFloats, length = Math.Min(ChunkFloats, Length - start);
            MapPair<TOp>(new ReadOnlySpan<float>(A + start, length), new ReadOnlySpan<float>(B + start, length), new Span<float>(D + start, length), Accumulate, "a", "b", "d");
        }
    }
}
