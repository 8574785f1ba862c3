using System;
using TransformerGen.Threading;

namespace TransformerGen;

// The multi-threaded split of the AdamW update (see Parallelism): chunks of the buffer, each a multiple of 16 floats
// long, so every element takes the same vector path (and so the same rounding) as in the single-threaded loop.
internal static unsafe partial class AdamWKernel
{
    private const int ChunkFloats = 1 << 16;

    // Loads, stores and arithmetic per element, counted as "operations" against Parallelism's threshold: the update is
    // bound by memory traffic (16 bytes read and 12 written per element), not by its dozen floating-point operations.
    private const int OperationsPerElement = 16;

    /// <summary><see cref="Update"/> on several threads when the span is long enough to be worth it.</summary>
    public static void UpdateSplit(Span<float> parameters, ReadOnlySpan<float> gradients, Span<float> firstMoment, Span<float> secondMoment, in Coefficients c)
    {
        int n = parameters.Length;
        int chunks = (n + ChunkFloats - 1) / ChunkFloats;
        int threads = Parallelism.ThreadsFor((long)OperationsPerElement * n, chunks);
        if (threads == 1 || gradients.Length != n || firstMoment.Length != n || secondMoment.Length != n)
        {
            Update(parameters, gradients, firstMoment, secondMoment, c);
            return;
        }
        fixed (float* p = parameters, g = gradients, m = firstMoment, v = secondMoment)
        {
            var work = new UpdateWork { P = p, G = g, M = m, V = v, Length = n, C = c };
            WorkerPool.For(ref work, chunks, threads);
        }
    }

    private struct UpdateWork : IParallelWork
    {
        public float* P, G, M, V;
        public int Length;
        public Coefficients C;

        public readonly void Execute(int item)
        {
            int start = item * ChunkFloats, length = Math.Min(ChunkFloats, Length - start);
            Update(new Span<float>(P + start, length), new ReadOnlySpan<float>(G + start, length),
                new Span<float>(M + start, length), new Span<float>(V + start, length), C);
        }
    }
}
