using System;
using System.Globalization;
using TransformerGen.Threading;

namespace TransformerGen;

/// <summary>
/// How many threads the kernels use. The matrix products, attention and the optimizer split large problems
/// between a small pool of worker threads that is made once and then reused (no allocation per call); small
/// problems run on the calling thread alone.
/// </summary>
/// <remarks>
/// <para>
/// Results do not depend on the thread count: every output element is computed by one thread, with the same
/// instructions in the same order as on one thread, so training with 1 and with N threads gives bit-identical
/// parameters.
/// </para>
/// <para>
/// The split also follows the machine's load: when a worker keeps the caller waiting far longer than its items take
/// (the system has given its core to another program), problems below 256 times the usual work per thread stay on the
/// calling thread for a while (see <c>Threading/Contention.cs</c>), so two threads on a busy machine cost about what
/// one does rather than twice as much.
/// </para>
/// <para>
/// The default is <see cref="Environment.ProcessorCount"/>, or the value of the environment variable
/// <c>TRANSFORMERGEN_THREADS</c> when it holds a positive integer. With 1, every kernel runs its single-threaded
/// code and no worker thread is started.
/// </para>
/// </remarks>
public static class Parallelism
{
    /// <summary>The most threads <see cref="ThreadCount"/> accepts.</summary>
    public const int MaxThreadCount = 256;

    // Below this many floating-point operations per thread, waking a worker costs more than it saves: a sleeping
    // worker takes 10–50 µs to wake, a spinning one about 1 µs, and 1 MFLOP is about 7 µs of one core's matmul.
    private const long DefaultMinimumFlopsPerThread = 1L << 20;

    private static int s_threadCount = DefaultThreadCount();

    /// <summary>
    /// Threads that the kernels use, the calling thread included: 1 runs everything on the calling thread. May be
    /// more than the machine's cores (each extra thread then shares a core). Takes effect at the next kernel call.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Less than 1 or more than <see cref="MaxThreadCount"/>.</exception>
    public static int ThreadCount
    {
        get => s_threadCount;
        set
        {
            if (value < 1 || value > MaxThreadCount)
                throw new ArgumentOutOfRangeException(nameof(value), value, $"the thread count must be between 1 and {MaxThreadCount}");
            s_threadCount = value;
        }
    }

    /// <summary>
    /// Work, in floating-point operations, below which one more thread is not worth waking. Tests lower it to run the
    /// parallel code on small shapes.
    /// </summary>
    internal static long MinimumFlopsPerThread { get; set; } = DefaultMinimumFlopsPerThread;

    /// <summary>
    /// The threads worth using for a problem of <paramref name="flops"/> operations that splits into at most
    /// <paramref name="maxItems"/> independent items: 1 means run the single-threaded code.
    /// </summary>
    internal static int ThreadsFor(long flops, int maxItems)
    {
        int threads = s_threadCount;
        if (threads == 1 || maxItems < 2) return 1;
        long minimum = Math.Max(1, MinimumFlopsPerThread);
        int split = Split(flops, minimum, Math.Min(threads, maxItems));
        // While the workers are being descheduled (see Contention), only large problems are worth their stalls.
        if (split > 1 && Contention.Active) split = Split(flops, minimum * Contention.Factor, split);
        return split;
    }

    private static int Split(long flops, long minimumPerThread, int most) => (int)Math.Min(most, Math.Max(1, flops / minimumPerThread));

    // A weight streamed once from memory costs a core about 0.05 ns a byte (20 GB/s, what one core reads here),
    // as long as 7 operations of its matmul: a product of one row (decoding) is bound by its weights' bytes, not by its
    // 2·inF·outF operations, and takes 50-170 µs for SmolLM2's layer matrices, which a second thread halves. Counting
    // only operations left every one of them on one thread, and two threads decoded 16% faster than one.
    private const long FlopsPerStreamedByte = 7;

    /// <summary>
    /// <see cref="ThreadsFor(long, int)"/> for a product that also reads <paramref name="streamedBytes"/> of weights once:
    /// its cost is whichever of the two is larger.
    /// </summary>
    internal static int ThreadsFor(long flops, long streamedBytes, int maxItems)
        => ThreadsFor(Math.Max(flops, streamedBytes * FlopsPerStreamedByte), maxItems);

    private static int DefaultThreadCount()
    {
        string? text = Environment.GetEnvironmentVariable("TRANSFORMERGEN_THREADS");
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int threads) && threads >= 1)
            return Math.Min(threads, MaxThreadCount);
        return Math.Clamp(Environment.ProcessorCount, 1, MaxThreadCount);
    }
}
