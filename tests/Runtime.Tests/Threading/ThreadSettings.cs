using System;
using TransformerGen.Threading;
using Xunit;

namespace TransformerGen.Tests.Threading;

/// <summary>
/// Tests that change <see cref="Parallelism"/>'s global settings run alone, after the other tests: the settings are
/// process-wide, and another test's allocation count must not see this one start worker threads.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ThreadSettingsCollection
{
    public const string Name = "Parallelism settings";
}

/// <summary>
/// Sets the thread count (and, to make small shapes split, the work threshold) until disposed, and meanwhile keeps the
/// split from following the machine's load (<see cref="Contention"/>): what splits is these tests' subject.
/// </summary>
internal sealed class ThreadSettings : IDisposable
{
    private readonly int _threads = Parallelism.ThreadCount;
    private readonly long _minimumFlops = Parallelism.MinimumFlopsPerThread;

    /// <param name="threads">Threads the kernels use.</param>
    /// <param name="splitEverything">Split every problem, however small, so that tiny shapes exercise the parallel code.</param>
    public ThreadSettings(int threads, bool splitEverything = true)
    {
        Parallelism.ThreadCount = threads;
        Contention.Enabled = false;
        if (splitEverything) Parallelism.MinimumFlopsPerThread = 1;
    }

    public void Dispose()
    {
        Parallelism.ThreadCount = _threads;
        Parallelism.MinimumFlopsPerThread = _minimumFlops;
        Contention.Enabled = true;
    }

    /// <summary>Fails unless <paramref name="actual"/> has exactly the bits of <paramref name="expected"/>.</summary>
    public static void AssertBitIdentical(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}[{i}]: {actual[i]:R} differs from the single-threaded {expected[i]:R}");
        }
    }
}
