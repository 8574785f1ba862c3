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

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Advise(nint address, nuint length, int advice);

    /// <summary>
    /// Releases the whole pages of <paramref name="region"/> past its first <paramref name="keepBytes"/> bytes; their
    /// contents are lost (they read as zeros). Returns the bytes released: 0 where nothing could be (not Linux, less than a
    /// page, or the call refused, which is only advice and changes nothing).
    /// </summary>
    public static unsafe long Release(Span<float> region, long keepBytes)
    {
        if (!OperatingSystem.IsLinux()) return 0;
        long length = (long)region.Length * sizeof(float);
        if (keepBytes < 0 || keepBytes > length) throw new ArgumentOutOfRangeException(nameof(keepBytes), keepBytes, $"the region has {length} bytes");
        fixed (float* p = region)
        {
            nint page = Environment.SystemPageSize;
            nint first = ((nint)p + (nint)keepBytes + page - 1) & ~(page - 1);
            nint end = ((nint)p + (nint)length) & ~(page - 1);
            if (end <= first) return 0;
            return Advise(first, (nuint)(end - first), DontNeed) == 0 ? end - first : 0;
        }
    }
}
