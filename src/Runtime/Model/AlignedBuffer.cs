using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace TransformerGen;

/// <summary>
/// A float buffer whose first element sits on a 64-byte boundary: one cache line, one Vector512. The memory plan
/// aligns every tensor's offset to 64 bytes, so with an aligned base every tensor (and every row of a width that is a
/// multiple of 16) starts on a cache line, and the kernels' 64-byte loads never straddle two lines (measured: the
/// matmul forward runs 1.4× faster at 512³ on aligned rows than on rows 16 bytes off).
/// </summary>
/// <remarks>
/// The array is allocated on the pinned object heap, so it never moves and the offset found once stays right.
/// </remarks>
internal readonly struct AlignedBuffer
{
    private const int Alignment = 64;

    private readonly float[] _array;
    private readonly int _start;
    private readonly int _length;

    /// <summary>Allocates <paramref name="length"/> zeroed floats, aligned, in the system's small pages.</summary>
    public AlignedBuffer(int length) : this(length, [])
    {
    }

    /// <summary>
    /// Allocates <paramref name="length"/> zeroed floats, aligned; where <paramref name="hugePageRanges"/> (start and
    /// length in floats, in increasing order, apart) cover two huge pages or more, the buffer starts on a huge-page
    /// boundary and asks the system to back the whole huge pages inside each range with huge pages (see
    /// <see cref="ResidentMemory.AdviseHugePages"/>); the rest of the buffer keeps the system's small pages.
    /// </summary>
    /// <remarks>
    /// The buffer's whole pages are given back to the system first (Linux, <see cref="ResidentMemory.Release"/>; they read
    /// as zeros), so none is resident until the model writes it, and advice given here applies to every page it writes.
    /// The huge-page alignment costs up to 2 MB of address space that is never touched, not memory.
    /// </remarks>
    public unsafe AlignedBuffer(int length, ReadOnlySpan<(int Start, int Length)> hugePageRanges)
    {
        long advised = 0;
        foreach ((int start, int count) in hugePageRanges)
        {
            if (start < 0 || count < 0 || (long)start + count > length) throw new ArgumentOutOfRangeException(nameof(hugePageRanges), $"[{start}, {(long)start + count}) is not inside {length} floats");
            advised += count;
        }
        // The huge-page alignment's spare floats must still fit an array (a buffer of nearly Array.MaxLength floats keeps 64).
        int alignment = ResidentMemory.HugePagesWorthAsking(advised * sizeof(float))
            && length <= Array.MaxLength - ResidentMemory.HugePageBytes / sizeof(float) ? ResidentMemory.HugePageBytes : Alignment;
        _array = GC.AllocateArray<float>(length + alignment / sizeof(float) - 1, pinned: true);
        nint address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
        _start = (int)((alignment - (address & (alignment - 1))) & (alignment - 1)) / sizeof(float);
        _length = length;
        // The pinned heap may hand out memory earlier objects used, zeroed by the collector and so resident: give those
        // pages back, so that the weights' pages are made (in huge pages where advised) as the model first writes them,
        // and a load's resident peak does not depend on what the process did before.
        ResidentMemory.Release(Span, 0);
        if (alignment != ResidentMemory.HugePageBytes) return;
        foreach ((int start, int count) in hugePageRanges)
            HugePageBytes += ResidentMemory.AdviseHugePages(Span.Slice(start, count));
    }

    /// <summary>Bytes of this buffer that the system was asked to back with huge pages (0 where it was not, or refused).</summary>
    public long HugePageBytes { get; }

    /// <summary>
    /// Allocates <paramref name="length"/> zeroed floats, aligned, and writes them once (zeros, on the kernels' threads),
    /// for a buffer whose first use reads each element before it writes it (an optimizer's moments). A new large array's
    /// pages are mapped at their first access: a read first maps the shared zero page and the write after it faults
    /// again, so written first, each page faults once instead of twice (AdamW's moments of a 38 M-parameter model:
    /// 148 k page faults in its first step, 74 k).
    /// </summary>
    public static AlignedBuffer WrittenOnce(int length)
    {
        var buffer = new AlignedBuffer(length);
        Kernels.Elementwise.ClearSplit(buffer.Span, freshPages: true);
        return buffer;
    }

    /// <summary>Number of floats.</summary>
    public int Length => _length;

    /// <summary>The aligned floats.</summary>
    public Span<float> Span => MemoryMarshal.CreateSpan(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_array), _start), _length);
}
