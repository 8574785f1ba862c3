using System;
using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Threading;

namespace TransformerGen.Threading;

/// <summary>
/// The kernels' worker threads: started once, on the first parallel loop that needs them, then reused by every
/// loop. A loop hands out its items one at a time through one atomic counter, so a worker that the operating system
/// has descheduled (other programs share the cores) delays no one: the threads that are running take its items.
/// </summary>
/// <remarks>
/// <para>
/// Nothing is allocated per loop: the loop body is a struct on the caller's stack, reached through a pointer to it
/// and a function pointer to a generic trampoline, and the pool's state is a handful of static fields.
/// </para>
/// <para>
/// Handing out a loop: the caller writes the loop's description (body, state, item count), then publishes a new
/// generation in <see cref="s_claim"/> (generation in the high 32 bits, next unclaimed item in the low 32). A
/// thread claims an item by compare-and-swap on that word; the swap fails once the generation has moved on, so a
/// late worker never runs an item of a finished loop. The caller runs items too and returns when every item has
/// completed, which is also when no thread can still be reading the description or the state.
/// </para>
/// <para>
/// Idle workers spin on <see cref="s_claim"/> for <see cref="SpinMicroseconds"/> (the gaps between the kernels of a
/// training step are shorter than that, and waking a spinning worker takes about a microsecond), then sleep on their
/// own semaphore. Going to sleep and waking are ordered by two full fences (the worker sets its flag and then reads
/// the generation; the caller publishes the generation and then reads the flag), so either the worker sees the new
/// loop or the caller sees the flag and releases the semaphore.
/// </para>
/// <para>
/// One loop runs at a time. A loop started while another is running (from another thread, or from inside an item)
/// runs on its calling thread alone, which gives the same results.
/// </para>
/// </remarks>
internal static unsafe class WorkerPool
{
    private const int SpinMicroseconds = 200;

    private static readonly long s_spinTicks = Math.Max(1, Stopwatch.Frequency * SpinMicroseconds / 1_000_000);

    // The current loop, written by its caller before the generation is published.
    private static delegate*<void*, int, void> s_body;
    private static void* s_state;
    private static int s_items;
    private static int s_helpers; // workers 0 … s_helpers − 1 take part

    private static long s_claim;
    private static int s_completed;
    private static int s_busy;
    private static Exception? s_failure;
    private static Worker[] s_workers = [];

    /// <summary>Worker threads started so far.</summary>
    internal static int WorkerCount => Volatile.Read(ref s_workers).Length;

    /// <summary>
    /// Bytes the workers had allocated on their own threads when each last finished a loop: tests check that it does not
    /// grow (counting all threads of a test process would also count the test runner's).
    /// </summary>
    internal static long WorkerAllocatedBytes
    {
        get
        {
            long sum = 0;
            foreach (Worker worker in Volatile.Read(ref s_workers)) sum += worker.AllocatedBytes;
            return sum;
        }
    }

    /// <summary>
    /// Runs <c>work.Execute(i)</c> for every <c>0 ≤ i &lt; items</c> on up to <paramref name="threads"/> threads (the
    /// calling thread and <paramref name="threads"/> − 1 workers), and returns when all have run. An exception from an
    /// item is rethrown here after every item has finished.
    /// </summary>
    public static void For<TWork>(ref TWork work, int items, int threads) where TWork : unmanaged, IParallelWork
        => For(ref work, items, threads, writesFreshPages: false);

    /// <summary>
    /// <see cref="For{TWork}(ref TWork, int, int)"/> for a loop that may write memory for the first time
    /// (<paramref name="writesFreshPages"/>: a new model's weights, an optimizer's new moments). Its items then wait on the
    /// system's page faults (a huge page is zeroed, sometimes compacted, on its first write), which makes them unequal
    /// for reasons that have nothing to do with other programs, so its waits are not taken as stalls (see
    /// <see cref="Contention"/>). In a scratch program, the first writes of 400 MB of weights in huge pages by
    /// <c>Rng.FillNormal</c> made the caller wait 0.3–4.4 ms 17 times, and building SmolLM2-135M counted about 20 stalls:
    /// enough to keep the first second or two of the new model's use on one thread.
    /// </summary>
    internal static void For<TWork>(ref TWork work, int items, int threads, bool writesFreshPages) where TWork : unmanaged, IParallelWork
    {
        if (threads <= 1 || items <= 1 || Interlocked.CompareExchange(ref s_busy, 1, 0) != 0)
        {
            for (int i = 0; i < items; i++) work.Execute(i);
            return;
        }
        try
        {
            int helpers = Math.Min(threads, items) - 1;
            EnsureWorkers(helpers);
            fixed (TWork* state = &work)
                Run(&Invoke<TWork>, state, items, helpers, observeStalls: !writesFreshPages);
        }
        finally
        {
            Volatile.Write(ref s_busy, 0);
        }
    }

    private static void Invoke<TWork>(void* state, int item) where TWork : unmanaged, IParallelWork
        => ((TWork*)state)->Execute(item);

    private static void Run(delegate*<void*, int, void> body, void* state, int items, int helpers, bool observeStalls)
    {
        s_body = body;
        s_state = state;
        s_items = items;
        s_helpers = helpers;
        s_completed = 0;
        uint generation = Generation(s_claim) + 1;
        Interlocked.Exchange(ref s_claim, (long)generation << 32); // publishes the writes above (full fence)

        Worker[] workers = s_workers;
        for (int w = 0; w < helpers; w++) workers[w].Wake();

        long started = Stopwatch.GetTimestamp();
        int own = Work(generation);
        if (Volatile.Read(ref s_completed) < items)
        {
            long finished = Stopwatch.GetTimestamp();
            SpinWait wait = default;
            while (Volatile.Read(ref s_completed) < items) wait.SpinOnce(sleep1Threshold: -1);
            if (observeStalls) Contention.ObserveWait(finished - started, own, Stopwatch.GetTimestamp() - finished);
        }

        if (s_failure is { } failure)
        {
            s_failure = null;
            ExceptionDispatchInfo.Throw(failure);
        }
    }

    /// <summary>Claims and runs items of loop <paramref name="generation"/> until none is left; returns how many it ran.</summary>
    private static int Work(uint generation)
    {
        for (int ran = 0; ; ran++)
        {
            long claim = Volatile.Read(ref s_claim);
            if (Generation(claim) != generation) return ran;
            int item = (int)(uint)claim;
            if (item >= s_items) return ran;
            if (Interlocked.CompareExchange(ref s_claim, claim + 1, claim) != claim)
            {
                ran--;
                continue;
            }
            // The claim succeeded, so the loop is not finished and its description is still the one published.
            try
            {
                s_body(s_state, item);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref s_failure, e, null);
            }
            Interlocked.Increment(ref s_completed);
        }
    }

    private static uint Generation(long claim) => (uint)((ulong)claim >> 32);

    // Called with s_busy held, so by one thread at a time.
    private static void EnsureWorkers(int count)
    {
        Worker[] workers = s_workers;
        if (workers.Length >= count) return;
        var grown = new Worker[count];
        workers.CopyTo(grown, 0);
        uint generation = Generation(s_claim);
        for (int w = workers.Length; w < count; w++) grown[w] = new Worker(w, generation);
        Volatile.Write(ref s_workers, grown);
    }

    private sealed class Worker
    {
        private readonly int _index;
        private readonly SemaphoreSlim _signal = new(0);
        private int _sleeping;
        private long _allocatedBytes;

        public Worker(int index, uint generation)
        {
            _index = index;
            var thread = new Thread(() => Loop(generation))
            {
                IsBackground = true,
                Name = $"TransformerGen worker {index + 1}",
            };
            thread.Start();
        }

        public long AllocatedBytes => Volatile.Read(ref _allocatedBytes);

        /// <summary>Makes a sleeping worker look at <see cref="s_claim"/> again (a spinning one sees it by itself).</summary>
        public void Wake()
        {
            if (Volatile.Read(ref _sleeping) != 0 && Interlocked.Exchange(ref _sleeping, 0) == 1)
                _signal.Release();
        }

        private void Loop(uint seen)
        {
            bool spin = true;
            while (true)
            {
                seen = WaitForLoop(seen, spin);
                // Workers beyond this loop's count skip it, and sleep at once until they are woken for one.
                if (_index >= Volatile.Read(ref s_helpers))
                {
                    spin = false;
                    continue;
                }
                Work(seen);
                // While other programs take the cores (see Contention), a spinning worker would take time from the
                // caller's thread, and only large loops come, for which waking from sleep costs little.
                spin = !Contention.Active;
                Volatile.Write(ref _allocatedBytes, GC.GetAllocatedBytesForCurrentThread());
            }
        }

        private uint WaitForLoop(uint seen, bool spin)
        {
            long deadline = Stopwatch.GetTimestamp() + (spin ? s_spinTicks : 0);
            while (true)
            {
                uint generation = Generation(Volatile.Read(ref s_claim));
                if (generation != seen) return generation;
                if (Stopwatch.GetTimestamp() < deadline)
                {
                    Thread.SpinWait(16);
                    continue;
                }

                Interlocked.Exchange(ref _sleeping, 1);
                generation = Generation(Volatile.Read(ref s_claim));
                if (generation != seen)
                {
                    // A caller that saw the flag has released the semaphore: take that release back.
                    if (Interlocked.Exchange(ref _sleeping, 0) == 0) _signal.Wait();
                    return generation;
                }
                _signal.Wait();
                deadline = Stopwatch.GetTimestamp() + s_spinTicks;
            }
        }
    }
}
