using System;
using System.Linq;
using System.Runtime.InteropServices;
using Xunit;

namespace TransformerGen.Model.Tests;

/// <summary>A model with matrices of many pages, its products decoded in 8 bits by default.</summary>
[TransformerModel(Vocab = 1000, DModel = 256, Heads = 4, Layers = 2, DFF = 1000, SeqLen = 8, Positional = Positional.Rotary,
    Norm = NormPlacement.Pre, WeightType = WeightType.Int8)]
public partial class PagedInt8Decoder { }

/// <summary>A model whose 8-bit and bf16 matrices span whole huge pages (the tied 4000 × 1024 table, the 2048 × 1024 feed-forward).</summary>
[TransformerModel(Vocab = 4000, DModel = 1024, Heads = 8, Layers = 1, DFF = 2048, SeqLen = 8, Positional = Positional.Rotary,
    Norm = NormPlacement.Pre, WeightType = WeightType.Int8)]
public partial class HugePagedInt8Decoder { }

/// <summary>
/// Inference instances with reduced weights give the pages their matrices no longer use back to the system (Linux): the
/// pages are found not resident with mincore, the packed bytes stay, and unpacking and packing again keep every value.
/// </summary>
public sealed class ResidentMemoryTests
{
    [DllImport("libc", SetLastError = true)]
    private static extern unsafe int mincore(nint address, nuint length, byte* vector);

    /// <summary>Which pages of [address, address + length) are resident; address is page-aligned.</summary>
    internal static unsafe bool[] Resident(nint address, long length)
    {
        int pages = (int)((length + Environment.SystemPageSize - 1) / Environment.SystemPageSize);
        var vector = new byte[pages];
        fixed (byte* v = vector) Assert.Equal(0, mincore(address, (nuint)length, v));
        return vector.Select(b => (b & 1) != 0).ToArray();
    }

    [Fact]
    public unsafe void Released_pages_are_not_resident_and_the_kept_bytes_are_unchanged()
    {
        if (!OperatingSystem.IsLinux()) return; // the only system it releases on; elsewhere Release returns 0 (below)
        int page = Environment.SystemPageSize;
        float[] array = GC.AllocateArray<float>(64 * page, pinned: true);
        for (int i = 0; i < array.Length; i++) array[i] = i;
        fixed (float* p = array)
        {
            nint start = ((nint)p + page - 1) & ~(nint)(page - 1);
            int skip = (int)(start - (nint)p) / sizeof(float);
            Span<float> region = array.AsSpan(skip, 40 * page / sizeof(float)); // 40 whole pages
            long keep = 10 * page + 100;                                 // 10 pages and a bit: the 11th page is kept whole
            long released = ResidentMemory.Release(region, keep);
            Assert.Equal(29L * page, released);
            bool[] resident = Resident(start, 40L * page);
            Assert.All(resident.Take(11), r => Assert.True(r));
            Assert.All(resident.Skip(11), r => Assert.False(r));
            for (int i = 0; i < 11 * page / sizeof(float); i++) Assert.Equal(skip + i, region[i]);
            Assert.Equal(0f, region[11 * page / sizeof(float)]); // a released page reads as zeros
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => ResidentMemory.Release(array, (long)array.Length * sizeof(float) + 1));
    }

    /// <summary>The VmFlags of the mapping that holds <paramref name="address"/>, from /proc/self/smaps.</summary>
    private static string[] MappingFlags(nint address)
    {
        bool inside = false;
        foreach (string line in System.IO.File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-');
            if (dash > 0 && line.IndexOf(' ') > dash && ulong.TryParse(line.AsSpan(0, dash), System.Globalization.NumberStyles.HexNumber, null, out ulong start)
                && ulong.TryParse(line.AsSpan(dash + 1, line.IndexOf(' ') - dash - 1), System.Globalization.NumberStyles.HexNumber, null, out ulong end))
                inside = (ulong)address >= start && (ulong)address < end;
            else if (inside && line.StartsWith("VmFlags:", StringComparison.Ordinal))
                return line["VmFlags:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        }
        throw new InvalidOperationException($"no mapping holds {address:x}");
    }

    [Fact]
    public unsafe void Fp32_weights_ask_for_huge_pages_whole_and_reduced_matrices_under_one_do_not()
    {
        PagedInt8Decoder fp32 = PagedInt8Decoder.ForInference(3, WeightType.Float32);
        long bytes = (long)fp32.Layout.ParameterCount * sizeof(float);
        Assert.True(bytes >= 2 * ResidentMemory.HugePageBytes, "the model is too small for the test");
        // Advice is accepted wherever the kernel has transparent huge pages (whatever its mode); elsewhere it is refused.
        bool kernelHasThem = OperatingSystem.IsLinux() && System.IO.Directory.Exists("/sys/kernel/mm/transparent_hugepage");
        if (kernelHasThem)
        {
            Assert.Equal(bytes / ResidentMemory.HugePageBytes * ResidentMemory.HugePageBytes, fp32.HugePageWeightBytes);
            fixed (float* p = fp32.Parameters)
            {
                Assert.Equal(0, (nint)p % ResidentMemory.HugePageBytes);
                Assert.Contains("hg", MappingFlags((nint)p)); // the mapping carries MADV_HUGEPAGE's flag
            }
        }
        else Assert.Equal(0, fp32.HugePageWeightBytes);

        // Reduced weights advise only the part of each matrix their packed form fills: none of this model's is a whole
        // huge page (HugePagedInt8Decoder's are, below). Nor is a small buffer advised.
        Assert.Equal(0, PagedInt8Decoder.ForInference(3).HugePageWeightBytes);
        Assert.Equal(0, PagedInt8Decoder.ForInference(3, WeightType.BFloat16).HugePageWeightBytes);
        Assert.Equal(0, ResidentMemory.AdviseHugePages(new float[100]));
    }

    /// <summary>The whole huge pages in [start, start + bytes) of a buffer that starts on a huge page.</summary>
    private static long WholeHugePageBytes(long start, long bytes)
    {
        long huge = ResidentMemory.HugePageBytes;
        long first = (start + huge - 1) / huge, end = (start + bytes) / huge;
        return Math.Max(0, end - first) * huge;
    }

    [Theory]
    [InlineData(WeightType.Int8)]
    [InlineData(WeightType.BFloat16)]
    public void Reduced_weights_ask_for_huge_pages_where_their_packed_matrices_lie_and_release_the_rest(WeightType type)
    {
        if (!OperatingSystem.IsLinux() || !System.IO.Directory.Exists("/sys/kernel/mm/transparent_hugepage")) return;
        HugePagedInt8Decoder model = HugePagedInt8Decoder.ForInference(5, type);
        long advised = 0, released = 0;
        foreach (WeightMatrix m in model.Layout.PackedMatrices)
        {
            long packed = type == WeightType.Int8 ? Kernels.QuantizedMatMul.ByteCount(m.Rows, m.Columns) : Kernels.BFloat16MatMul.ElementCount(m.Rows, m.Columns) * sizeof(ushort);
            advised += WholeHugePageBytes((long)m.Offset * sizeof(float), packed);
            released += (long)m.Rows * m.Columns * sizeof(float) - packed;
        }
        Assert.True(advised >= 2 * ResidentMemory.HugePageBytes, $"the model's packed matrices hold {advised} bytes of whole huge pages");
        Assert.Equal(advised, model.HugePageWeightBytes);
        // The tails are released as before: advice never reached them.
        Assert.InRange(model.ReleasedWeightBytes, released - 2L * Environment.SystemPageSize * model.Layout.PackedMatrices.Length, released);
    }

    [Fact]
    public unsafe void A_buffer_advises_the_whole_huge_pages_of_its_ranges_only()
    {
        if (!OperatingSystem.IsLinux() || !System.IO.Directory.Exists("/sys/kernel/mm/transparent_hugepage")) return;
        int huge = ResidentMemory.HugePageBytes / sizeof(float);
        // Ranges of 2.5 and 1.2 huge pages at odd offsets: the first holds one whole huge page or two, the second none.
        var buffer = new AlignedBuffer(8 * huge + 13, [(huge / 3, 5 * huge / 2), (4 * huge + 7, 6 * huge / 5)]);
        long expected = WholeHugePageBytes(huge / 3 * sizeof(float), 5L * huge / 2 * sizeof(float));
        Assert.Equal(ResidentMemory.HugePageBytes, expected);
        Assert.Equal(expected, buffer.HugePageBytes);
        fixed (float* p = buffer.Span)
        {
            Assert.Equal(0, (nint)p % ResidentMemory.HugePageBytes);
            Assert.Contains("hg", MappingFlags((nint)(p + huge)));         // the whole huge page inside the first range
            // Nothing is advised outside it: the buffer's own count says so above. The mapping's flags outside the range
            // are not checked: the pinned heap hands out memory that buffers collected earlier in the process may have
            // advised, and a mapping keeps MADV_HUGEPAGE's flag after its object is gone. (With such checks this test
            // failed once among the other test classes, 2026-12-08, and passed alone and in the next full runs.)
        }
        // Ranges covering less than two huge pages in all leave the buffer on 64 bytes, unadvised.
        Assert.Equal(0, new AlignedBuffer(8 * huge, [(0, huge)]).HugePageBytes);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AlignedBuffer(100, [(50, 51)]));
    }

    [Fact]
    public void An_8_bit_instance_releases_its_matrices_tails_and_keeps_its_values_through_unpacking()
    {
        PagedInt8Decoder model = PagedInt8Decoder.ForInference(3);
        long expected = 0;
        foreach (WeightMatrix m in model.Layout.PackedMatrices)
            expected += (long)m.Rows * m.Columns * sizeof(float) - Kernels.QuantizedMatMul.ByteCount(m.Rows, m.Columns);
        if (OperatingSystem.IsLinux())
            Assert.InRange(model.ReleasedWeightBytes, expected - 2L * Environment.SystemPageSize * model.Layout.PackedMatrices.Count(), expected);
        else
            Assert.Equal(0, model.ReleasedWeightBytes);

        int[] prompt = [5, 999, 17, 256, 3];
        float[] before = model.Append(prompt).ToArray();
        float[] values = model.Parameters.ToArray(); // unpacks: the released pages are written again
        Assert.Equal(0, model.ReleasedWeightBytes);
        Assert.All(values, v => Assert.True(float.IsFinite(v)));
        model.PackWeights();
        model.ResetCache();
        Assert.True(before.AsSpan().SequenceEqual(model.Append(prompt)));

        // The same weights in fp32, rounded to 8 bits: the unpacked values were the rounded weights, not zeros.
        PagedInt8Decoder exact = PagedInt8Decoder.ForInference(3, WeightType.Float32);
        var copy = new float[values.Length];
        exact.CopyParametersTo(copy);
        float largestChange = 0f;
        for (int i = 0; i < copy.Length; i++) largestChange = Math.Max(largestChange, Math.Abs(copy[i] - values[i]));
        Assert.InRange(largestChange, 1e-9f, 0.05f);
    }
}
