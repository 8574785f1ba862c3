using System;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Threading.Tasks;
using BenchmarkDotNet.Attributes;

namespace TransformerGen.LlamaCpp.Bench;

/// <summary>
/// What the memory gives one and two threads in the same run as the decode benchmarks: a plain copy of 256 MB into
/// another 256 MB (<see cref="Buffer.MemoryCopy"/>, so libc's copy) and a read of 512 MB summed with Vector512 adds,
/// the way a one-row product streams its weights. Both are far larger than the caches. The decode of SmolLM2-135M reads
/// 537.9 MB of fp32 matrices (142.9 MB in 8 bits) per token, so its GB/s is that over its time per token, to set
/// beside these. The table's figure for the copy counts the bytes read and written (2 × 256 MB). The read runs twice:
/// over ordinary 4 KB pages, and over 2 MB pages (advised <c>MADV_HUGEPAGE</c> before it is written, as the runtime does
/// for fp32 weights; on a system without transparent huge pages both read the same pages).
/// </summary>
public unsafe class MemoryBandwidth
{
    private const long Bytes = 512L << 20;

    private const int HugePage = 2 << 20;

    private byte* _source, _target, _huge;

    [DllImport("libc", EntryPoint = "madvise")]
    private static extern int Advise(void* address, nuint length, int advice);

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _source = (byte*)NativeMemory.AlignedAlloc((nuint)Bytes, 4096);
        _target = (byte*)NativeMemory.AlignedAlloc((nuint)(Bytes / 2), 4096);
        new Span<byte>(_source, (int)(Bytes / 2)).Fill(1);
        new Span<byte>(_source + Bytes / 2, (int)(Bytes / 2)).Fill(2);
        new Span<byte>(_target, (int)(Bytes / 2)).Clear();
        _huge = (byte*)NativeMemory.AlignedAlloc((nuint)Bytes, HugePage);
        if (OperatingSystem.IsLinux()) Advise(_huge, (nuint)Bytes, 14); // MADV_HUGEPAGE; advice, so its result does not matter
        new Span<byte>(_huge, (int)(Bytes / 2)).Fill(1);
        new Span<byte>(_huge + Bytes / 2, (int)(Bytes / 2)).Fill(2);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_source);
        NativeMemory.AlignedFree(_target);
        NativeMemory.AlignedFree(_huge);
    }

    /// <summary>Copies the first 256 MB of the source into the target, each thread its share.</summary>
    [Benchmark]
    public void Copy256MB()
    {
        long share = Bytes / 2 / Threads;
        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
            Buffer.MemoryCopy(_source + t * share, _target + t * share, share, share));
    }

    /// <summary>Reads all 512 MB once, each thread its share, four independent sums of 16 floats.</summary>
    [Benchmark]
    public float Read512MB() => Read(_source);

    /// <summary>The same read over 2 MB pages.</summary>
    [Benchmark]
    public float Read512MBHugePages() => Read(_huge);

    private float Read(byte* source)
    {
        long share = Bytes / Threads;
        var sums = new float[Threads];
        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t => sums[t] = Sum((float*)(source + t * share), share / sizeof(float)));
        float total = 0;
        foreach (float sum in sums) total += sum;
        return total;
    }

    private static float Sum(float* p, long count)
    {
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
        for (long i = 0; i < count; i += 64)
        {
            s0 += Vector512.Load(p + i);
            s1 += Vector512.Load(p + i + 16);
            s2 += Vector512.Load(p + i + 32);
            s3 += Vector512.Load(p + i + 48);
        }
        return Vector512.Sum(s0 + s1 + s2 + s3);
    }
}
