using System;
using System.Runtime.InteropServices;

namespace TransformerGen;

/// <summary>
/// Gives memory that a buffer no longer uses back to the operating system while the buffer stays allocated: an inference
/// instance with bf16 or 8-bit weights keeps each matrix in the first half or quarter of the matrix's fp32 bytes (the
/// layout's offsets are compile-time literals, so the parameter buffer keeps its size), and the pages of the rest are
/// released, so the process's resident size follows the reduced weights (SmolLM2-135M with 8-bit weights: 538 MB of fp32
/// matrices, 143 MB of 8-bit ones). Linux only (<c>madvise(MADV_DONTNEED)</c>); elsewhere nothing is released.
/// </summary>
/// <remarks>
/// After <c>MADV_DONTNEED</c> a private anonymous page reads as zeros and is allocated again when written, which is
/// what the instance does when it unpacks its weights (reading <c>Parameters</c>): it reads only the packed bytes and
/// writes the rows over the whole matrix. The parameter buffer is an array on the pinned object heap, which the
/// garbage collector never moves and whose floats it never reads, and which it zeroes before reusing anyway.
/// </remarks>
internal static partial class ResidentMemory
{
    private const int DontNeed = 4; // MADV_DONTNEED on Linux
    private const int HugePage = 14; // MADV_HUGEPAGE on Linux

    /// <summary>The huge page of x86-64 and arm64 Linux with 4 KB pages: 2 MB.</summary>
    public const int HugePageBytes = 2 << 20;

    /// <summary>
    /// Whether weights stream through huge pages: true by default on Linux. A switch for benchmarks that compare both in
    /// one process; it applies to buffers allocated after it is set.
    /// </summary>
    internal static bool HugePages { get; set; } = OperatingSystem.IsLinux();

    /// <summary>Whether a buffer of <paramref name="bytes"/> is worth aligning to a huge page and advising: Linux, two huge pages or more.</summary>
    public static bool HugePagesWorthAsking(long bytes) => HugePages && bytes >= 2L * HugePageBytes;

    /// <summary>
    /// Asks Linux to back the whole 2 MB pages of <paramref name="region"/> with huge pages
    /// (<c>madvise(MADV_HUGEPAGE)</c>), before they are first written. Returns the bytes advised: 0 where nothing was (not
    /// Linux, no whole huge page, or the advice refused: a kernel without transparent huge pages).
    /// </summary>
    /// <remarks>
    /// <para>
    /// Decoding streams every weight from memory once per token, and one core reads a stream faster through 2 MB pages
    /// than through 4 KB ones: on this project's machines (AMD EPYC Zen 4, transparent huge pages in <c>madvise</c> mode,
    /// which many distributions ship) a Vector512 read of 512 MB ran at 30–33 GB/s in huge pages against 25–28 GB/s in
    /// 4 KB pages, the same loop, the same process. A 4 KB page holds 64 cache lines, so a stream crosses a page (a
    /// translation miss, and a boundary the hardware prefetcher does not cross) every 64 loads.
    /// </para>
    /// <para>
    /// Only memory that stays whole is advised: all of fp32 weights, and of bf16 or 8-bit ones the part of each matrix's
    /// fp32 space that its packed form fills. The tail of each such matrix is released (<see cref="Release"/>), which
    /// would split huge pages there, and the kernel's background collapsing, which works inside advised ranges only,
    /// could fill released pages back in.
    /// </para>
    /// </remarks>
    public static long AdviseHugePages(Span<float> region)
        => OperatingSystem.IsLinux() ? AdviseWholePages(region, 0, HugePageBytes, HugePage) : 0;

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Advise(nint address, nuint length, int advice);

    /// <summary>
    /// Releases the whole pages of <paramref name="region"/> past its first <paramref name="keepBytes"/> bytes; their
    /// contents are lost (they read as zeros). Returns the bytes released: 0 where nothing could be (not Linux, less than a
    /// page, or the call refused, which is only advice and changes nothing).
    /// </summary>
    public static long Release(Span<float> region, long keepBytes)
    {
        if (!OperatingSystem.IsLinux()) return 0;
        long length = (long)region.Length * sizeof(float);
        if (keepBytes < 0 || keepBytes > length) throw new ArgumentOutOfRangeException(nameof(keepBytes), keepBytes, $"the region has {length} bytes");
        return AdviseWholePages(region, keepBytes, Environment.SystemPageSize, DontNeed);
    }

    /// <summary>
    /// Gives <paramref name="advice"/> for the whole pages of <paramref name="pageBytes"/> (a power of two) that lie in
    /// <paramref name="region"/> past its first <paramref name="fromByte"/> bytes; returns the bytes advised, 0 where no whole
    /// page lies there or the call was refused.
    /// </summary>
    private static unsafe long AdviseWholePages(Span<float> region, long fromByte, nint pageBytes, int advice)
    {
        fixed (float* p = region)
        {
            nint first = ((nint)p + (nint)fromByte + pageBytes - 1) & ~(pageBytes - 1);
            nint end = ((nint)p + (nint)((long)region.Length * sizeof(float))) & ~(pageBytes - 1);
            if (end <= first) return 0;
            return Advise(first, (nuint)(end - first), advice) == 0 ? end - first : 0;
        }
    }
}
