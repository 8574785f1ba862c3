using System;
using System.Diagnostics;
using System.Threading;
using TransformerGen.Threading;
using Xunit;

namespace TransformerGen.Tests.Threading;

[Collection(ThreadSettingsCollection.Name)]
public sealed unsafe class WorkerPoolTests
{
    private struct CountingWork : IParallelWork
    {
        public int* Counts;
        public int FailAt;

        public readonly void Execute(int item)
        {
            if (item == FailAt) throw new InvalidOperationException($"item {item} fails");
            Interlocked.Increment(ref Counts[item]);
        }
    }

    // Each item starts a loop of its own, which must run inline on the item's thread.
    private struct NestedWork : IParallelWork
    {
        public int* Counts;
        public int Inner;

        public readonly void Execute(int item)
        {
            var inner = new CountingWork { Counts = Counts + item * Inner, FailAt = -1 };
            WorkerPool.For(ref inner, Inner, threads: 4);
        }
    }

    // Two items, each of which waits until both have been claimed, so the caller and one worker run one each; the
    // worker's then sleeps, as a worker that the system has taken off its core keeps the caller waiting.
    private struct StallingWork : IParallelWork
    {
        public int* Claimed;
        public int CallerThread;
        public int SleepMilliseconds;

        public readonly void Execute(int item)
        {
            Interlocked.Increment(ref *Claimed);
            var waited = Stopwatch.StartNew();
            while (Volatile.Read(ref *Claimed) < 2)
            {
                if (waited.Elapsed > TimeSpan.FromSeconds(30)) throw new TimeoutException("no worker claimed the second item");
                Thread.SpinWait(16);
            }
            if (Environment.CurrentManagedThreadId != CallerThread) Thread.Sleep(SleepMilliseconds);
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Every_item_runs_exactly_once(int threads)
    {
        var counts = new int[257];
        fixed (int* p = counts)
        {
            for (int round = 0; round < 200; round++)
            {
                int items = 1 + round % counts.Length;
                Array.Clear(counts);
                var work = new CountingWork { Counts = p, FailAt = -1 };
                WorkerPool.For(ref work, items, threads);
                for (int i = 0; i < counts.Length; i++)
                    Assert.True(counts[i] == (i < items ? 1 : 0), $"round {round}: item {i} of {items} ran {counts[i]} times");
            }
        }
    }

    [Fact]
    public void An_exception_in_an_item_reaches_the_caller_after_every_other_item_ran_and_the_pool_keeps_working()
    {
        var counts = new int[64];
        fixed (int* p = counts)
        {
            var failing = new CountingWork { Counts = p, FailAt = 17 };
            var error = Assert.Throws<InvalidOperationException>(() => WorkerPool.For(ref failing, counts.Length, threads: 3));
            Assert.Equal("item 17 fails", error.Message);
            for (int i = 0; i < counts.Length; i++) Assert.Equal(i == 17 ? 0 : 1, counts[i]);

            Array.Clear(counts);
            var work = new CountingWork { Counts = p, FailAt = -1 };
            WorkerPool.For(ref work, counts.Length, threads: 3);
            Assert.All(counts, c => Assert.Equal(1, c));
        }
    }

    [Fact]
    public void A_loop_started_inside_an_item_runs_on_that_thread()
    {
        var counts = new int[8 * 13];
        fixed (int* p = counts)
        {
            var work = new NestedWork { Counts = p, Inner = 13 };
            WorkerPool.For(ref work, 8, threads: 2);
        }
        Assert.All(counts, c => Assert.Equal(1, c));
    }

    [Fact]
    public void Loops_from_several_threads_at_once_all_complete()
    {
        const int callers = 4, items = 97, rounds = 300;
        var counts = new int[callers * items];
        var threads = new Thread[callers];
        for (int t = 0; t < callers; t++)
        {
            int caller = t;
            threads[t] = new Thread(() =>
            {
                fixed (int* p = counts)
                {
                    for (int round = 0; round < rounds; round++)
                    {
                        var work = new CountingWork { Counts = p + caller * items, FailAt = -1 };
                        WorkerPool.For(ref work, items, threads: 2);
                    }
                }
            });
            threads[t].Start();
        }
        foreach (Thread thread in threads) thread.Join();
        Assert.All(counts, c => Assert.Equal(rounds, c));
    }

    [Fact]
    public void Workers_are_started_once_and_reused()
    {
        var counts = new int[32];
        fixed (int* p = counts)
        {
            var work = new CountingWork { Counts = p, FailAt = -1 };
            WorkerPool.For(ref work, counts.Length, threads: 3);
            int started = WorkerPool.WorkerCount;
            Assert.True(started >= 2);
            for (int round = 0; round < 50; round++) WorkerPool.For(ref work, counts.Length, threads: 3);
            Assert.Equal(started, WorkerPool.WorkerCount);
        }
    }

    [Fact]
    public void The_thread_count_must_be_between_1_and_the_maximum()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Parallelism.ThreadCount = 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => Parallelism.ThreadCount = Parallelism.MaxThreadCount + 1);
        using (new ThreadSettings(Parallelism.MaxThreadCount, splitEverything: false))
            Assert.Equal(Parallelism.MaxThreadCount, Parallelism.ThreadCount);
    }

    [Fact]
    public void One_thread_or_little_work_means_no_split()
    {
        using (new ThreadSettings(1))
            Assert.Equal(1, Parallelism.ThreadsFor(long.MaxValue, 1000));
        using (new ThreadSettings(4, splitEverything: false))
        {
            Assert.Equal(1, Parallelism.ThreadsFor(1000, 1000));
            Assert.Equal(1, Parallelism.ThreadsFor(long.MaxValue, 1));
            Assert.Equal(3, Parallelism.ThreadsFor(long.MaxValue, 3));
            Assert.Equal(4, Parallelism.ThreadsFor(long.MaxValue, 1000));
            Assert.Equal(2, Parallelism.ThreadsFor(2 * Parallelism.MinimumFlopsPerThread, 1000));
        }
    }

    [Fact]
    public void A_worker_that_keeps_the_caller_waiting_keeps_small_problems_on_one_thread_for_a_while()
    {
        using (new ThreadSettings(2, splitEverything: false))
        {
            Contention.Enabled = true;
            Contention.Reset();
            long small = 2 * Parallelism.MinimumFlopsPerThread, large = small * Contention.Factor;
            Assert.Equal(2, Parallelism.ThreadsFor(small, 1000));

            long stalls = Contention.Stalls;
            int claimed = 0;
            var work = new StallingWork { Claimed = &claimed, CallerThread = Environment.CurrentManagedThreadId, SleepMilliseconds = 300 };
            // A loop that writes fresh pages waits on page faults, not on other programs: its waits are not stalls.
            WorkerPool.For(ref work, 2, threads: 2, writesFreshPages: true);
            claimed = 0;
            WorkerPool.For(ref work, 2, threads: 2, writesFreshPages: true);
            Assert.Equal(stalls, Contention.Stalls);
            Assert.False(Contention.Active);

            claimed = 0;
            WorkerPool.For(ref work, 2, threads: 2);
            Assert.Equal(stalls + 1, Contention.Stalls);
            Assert.False(Contention.Active); // one stall alone is noise
            claimed = 0;
            WorkerPool.For(ref work, 2, threads: 2); // a second right after it: the stalls take most of the time
            Assert.Equal(stalls + 2, Contention.Stalls);
            Assert.True(Contention.Active);
            Assert.Equal(1, Parallelism.ThreadsFor(small, 1000));
            Assert.Equal(2, Parallelism.ThreadsFor(large, 1000));

            Thread.Sleep(TimeSpan.FromMilliseconds(Contention.WindowMilliseconds + 100));
            Assert.False(Contention.Active);
            Assert.Equal(2, Parallelism.ThreadsFor(small, 1000));
            Contention.Reset();
        }
    }

    [Fact]
    public void A_stall_is_a_wait_past_twice_the_callers_time_per_item_and_stalls_in_a_row_lengthen_the_window()
    {
        using (new ThreadSettings(2, splitEverything: false))
        {
            Contention.Enabled = true;
            Contention.Reset();
            long microsecond = Stopwatch.Frequency / 1_000_000, stalls = Contention.Stalls;
            Contention.ObserveWait(ownTicks: 100 * microsecond, ownItems: 2, waitTicks: 140 * microsecond); // ≤ 2 · 50 + 50 µs
            Assert.Equal(stalls, Contention.Stalls);
            Assert.False(Contention.Active);

            Contention.ObserveWait(ownTicks: 100 * microsecond, ownItems: 2, waitTicks: 2000 * microsecond);
            Assert.Equal(stalls + 1, Contention.Stalls);
            Assert.False(Contention.Active); // the first stall: noise until another follows closely

            // A stall whose wait is under 1/20 of the time since the one before is noise too (a host taking the core
            // for a few ms now and then).
            Thread.Sleep(150);
            Contention.ObserveWait(ownTicks: 100 * microsecond, ownItems: 2, waitTicks: 2000 * microsecond);
            Assert.Equal(stalls + 2, Contention.Stalls);
            Assert.False(Contention.Active);

            Contention.ObserveWait(ownTicks: 100 * microsecond, ownItems: 2, waitTicks: 2000 * microsecond);
            Assert.Equal(stalls + 3, Contention.Stalls);
            Assert.True(Contention.Active);
            double first = Contention.WindowMilliseconds;
            Contention.ObserveWait(ownTicks: 100 * microsecond, ownItems: 2, waitTicks: 2000 * microsecond);
            Assert.Equal(2 * first, Contention.WindowMilliseconds);
            for (int i = 0; i < 20; i++) Contention.ObserveWait(ownTicks: 0, ownItems: 0, waitTicks: 2000 * microsecond);
            Assert.Equal(2000, Contention.WindowMilliseconds);

            // Switched off, nothing is watched and nothing stays on one thread.
            Contention.Enabled = false;
            Assert.False(Contention.Active);
            Contention.ObserveWait(ownTicks: 0, ownItems: 0, waitTicks: 2000 * microsecond);
            Assert.Equal(stalls + 24, Contention.Stalls);
            Assert.Equal(2, Parallelism.ThreadsFor(2 * Parallelism.MinimumFlopsPerThread, 1000));
            Contention.Reset();
        }
    }
}
