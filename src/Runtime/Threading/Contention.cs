using System;
using System.Diagnostics;
using System.Threading;

namespace TransformerGen.Threading;

/// <summary>
/// Notices when the workers do not get a core of their own, and for a while afterwards keeps all but large problems
/// on the calling thread.
/// </summary>
/// <remarks>
/// <para>
/// A worker that the operating system takes off its core while it holds an item (another program wants the core)
/// makes the caller wait for that item until the worker is scheduled again: a time slice, milliseconds, where the item
/// itself takes microseconds. On a two-core machine with one busy neighbour this made a tiny model's training step
/// twice as slow on two threads as on one. Items are claimed one at a time, so a descheduled worker that holds none
/// costs nothing; only the wait at the end of a loop shows the problem.
/// </para>
/// <para>
/// A stall is a wait, after the caller has run out of items to claim, longer than twice the caller's own time per item
/// plus <see cref="SlackMicroseconds"/>: the last item of a worker that kept its core ends within about one item of the
/// caller's last. Stalls that take a share of the time count as contention: a stall whose wait is at least
/// 1/<see cref="ShareDivisor"/> of the time since the stall before it. Then <see cref="Parallelism.ThreadsFor(long, int)"/>
/// asks for <see cref="Factor"/> times the usual work per thread for <see cref="FirstWindowMilliseconds"/> ms; contention
/// soon after that window (within twice its length) doubles it, up to <see cref="LongestWindowMilliseconds"/> ms, so a
/// lasting neighbour costs two stalls every two seconds at most. Results do not depend on the thread count, so none of
/// this changes a result.
/// </para>
/// <para>
/// Rare stalls are only counted. A virtual machine's cores are sometimes taken away for a few milliseconds by the host
/// with nothing else running in the guest: SmolLM2-135M's two-thread decode on this project's machines saw a stall of
/// 1–6 ms every 0.3–1 s (about 1% of the time), and when each of them opened a window, the decode and the prompts after
/// it ran on one thread most of the time (a 64-token prompt 147–164 ms instead of 86–93; the decode 16–20 ms instead of
/// 11–18). A neighbour that spins on the other core stalls a tiny model's loops every few milliseconds, for about as
/// long each time, far above the share.
/// </para>
/// <para>
/// One loop runs at a time, so <see cref="ObserveWait"/> has one caller at a time; <see cref="Active"/> is read by any
/// thread. Without a stall, <see cref="Active"/> reads one field (no clock).
/// </para>
/// </remarks>
internal static class Contention
{
    /// <summary>How much more work per thread a problem needs to be split while the workers stall.</summary>
    internal const long Factor = 256;

    /// <summary>A stall is contention when its wait is at least this fraction (1/n) of the time since the stall before it.</summary>
    internal const int ShareDivisor = 20;

    private const int SlackMicroseconds = 50;
    private const int FirstWindowMilliseconds = 50;
    private const int LongestWindowMilliseconds = 2000;

    private static readonly long s_slackTicks = Stopwatch.Frequency * SlackMicroseconds / 1_000_000;
    private static readonly long s_firstWindowTicks = Stopwatch.Frequency * FirstWindowMilliseconds / 1000;
    private static readonly long s_longestWindowTicks = Stopwatch.Frequency * LongestWindowMilliseconds / 1000;

    private static long s_until;          // timestamp at which the current window ends; 0 when there is none
    private static long s_window = s_firstWindowTicks;
    private static long s_lastStall;      // 0 before the first
    private static long s_lastContention; // 0 before the first
    private static long s_stalls;
    private static volatile bool s_enabled = true;

    /// <summary>Whether stalls are watched for at all. Tests that check a thread split switch it off.</summary>
    internal static bool Enabled
    {
        get => s_enabled;
        set
        {
            s_enabled = value;
            if (!value) Volatile.Write(ref s_until, 0);
        }
    }

    /// <summary>Length of the current (or last) window, in milliseconds.</summary>
    internal static double WindowMilliseconds => Volatile.Read(ref s_window) * 1000.0 / Stopwatch.Frequency;

    /// <summary>Forgets every stall but the count: no window, the next one the first length. For tests.</summary>
    internal static void Reset()
    {
        Volatile.Write(ref s_until, 0);
        s_window = s_firstWindowTicks;
        s_lastStall = 0;
        s_lastContention = 0;
    }

    /// <summary>Stalls seen since the process started.</summary>
    internal static long Stalls => Volatile.Read(ref s_stalls);

    /// <summary>Whether a stall was seen recently enough that small problems should stay on one thread.</summary>
    internal static bool Active
    {
        get
        {
            long until = Volatile.Read(ref s_until);
            if (until == 0) return false;
            if (Stopwatch.GetTimestamp() < until) return true;
            Interlocked.CompareExchange(ref s_until, 0, until); // the window is over (unless a stall has just renewed it)
            return false;
        }
    }

    /// <summary>
    /// Called by a loop's caller that had to wait for the workers: it ran <paramref name="ownItems"/> items in
    /// <paramref name="ownTicks"/>, then waited <paramref name="waitTicks"/> for the others to finish.
    /// </summary>
    internal static void ObserveWait(long ownTicks, int ownItems, long waitTicks)
    {
        if (!s_enabled) return;
        long perItem = ownTicks / Math.Max(1, ownItems);
        if (waitTicks <= 2 * perItem + s_slackTicks) return;
        Interlocked.Increment(ref s_stalls);
        long now = Stopwatch.GetTimestamp();
        long previous = s_lastStall;
        s_lastStall = now;
        // A first stall, or one long after the last, is noise until another follows it closely.
        if (previous == 0 || waitTicks * ShareDivisor < now - previous) return;
        // The last window ended at s_lastContention + s_window; contention within twice its length after that end doubles it.
        bool soon = s_lastContention != 0 && now - s_lastContention < 3 * s_window;
        long window = soon ? Math.Min(2 * s_window, s_longestWindowTicks) : s_firstWindowTicks;
        s_window = window;
        s_lastContention = now;
        Volatile.Write(ref s_until, now + window);
    }
}
