using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using TransformerGen.Kernels;
using TransformerGen.Threading;

namespace TransformerGen.Model.Bench;

/// <summary>
/// The linear layer over fp32 panels, bf16 panels and 8-bit blocks at SmolLM2-135M's shapes (inF × outF: 576 × 1536 for
/// gate/up, 1536 × 576 for down, 576 × 49152 for the head), one row (decoding) and 64 (a prompt), 1 and 2 threads.
/// Each call takes the next of many copies of the matrix, together several times the caches, so the weights stream from
/// memory as in a model's forward pass; the GB/s column is the weight format's bytes over the time.
/// </summary>
/// <remarks>
/// <para>
/// <c>Int8IntegerDots</c> is option (a) of issue 14, kept here only to decide between the two: the activations
/// quantized per block of 32 each call (scale max|x|/127) and multiplied in integers. On Zen 4, .NET 10 reports
/// <c>AvxVnni.IsSupported == false</c> (the CPU has AVX512-VNNI, which .NET does not expose, not the VEX AVX-VNNI), so the
/// dot products are <c>vpmaddubsw</c> (u8 × s8 → s16 pairs) + <c>vpmaddwd</c> by ones (→ s32) at 512 bits, with the
/// sign trick (|x| unsigned, the weight's sign flipped where x &lt; 0 by xor and subtract: AVX-512 has no vpsignb),
/// because u8·s8 pairs of full-range bytes saturate at 16 bits. Its weights are laid out for it (groups of 4 inputs per
/// column); the byte count equals the kernel's. It runs rows one at a time.
/// </para>
/// <para>
/// Measured 2026-12-05 (<c>dotnet run -c Release --project bench/Model.Bench -- --filter '*QuantizedMatMulBenchmarks*'</c>,
/// AMD EPYC Zen 4, .NET 10.0.12, two runs, one thread; GB/s of each format's own bytes; the 2 cores were shared with
/// other builds and benchmarks, load average 7-8, so 2 threads gained nothing and fp32 streamed at 14-23 GB/s where
/// MatMul.Packed.cs saw 30-32 on a quiet machine):
/// <code>
///                       fp32 panels           bf16                 int8 (kernel, b)        int8 integer dots (a)
/// 1 row   1536→576      154-252 µs 14-23 GB/s  58 µs 31 GB/s (2.7-4.0×) 38-41 µs 23-25 GB/s (3.7-6.0×)  30 µs 31 GB/s
/// 1 row   576→1536      168-186 µs 19-21 GB/s  70 µs 25 GB/s (2.4-2.7×) 42-43 µs 22 GB/s (3.9-4.3×)     36 µs 26 GB/s
/// 1 row   576→49152     6.6-6.7 ms 17 GB/s     2.1 ms 27 GB/s (3.1×)    1.30-1.77 ms 17-23 GB/s (3.7-5×) 1.48 ms 20 GB/s
/// 64 rows 1536→576      1.09-1.12 ms           1.01 ms (1.08×)          1.20 ms (0.91×)                1.26 ms
/// 64 rows 576→1536      1.15 ms                1.06 ms (1.08×)          1.26 ms (0.91×)                1.24 ms
/// 64 rows 576→49152     41-59 ms               48 ms                    40 ms                          52 ms
/// </code>
/// One row is bound by memory for fp32 and bf16; the int8 kernel reads 22-25 GB/s, about what the widening
/// (vpmovsxbd + vcvtdq2ps per 16 weights) allows one core (34 µs for 1536→576 with the weights in cache). 64 rows are
/// bound by arithmetic: bf16 widens by one shift or mask per 16 weights and matches fp32; int8's widening costs two
/// operations per 16 weights, amortized over a 6-row tile.
/// </para>
/// </remarks>
[Config(typeof(BandwidthConfig))]
public unsafe class QuantizedMatMulBenchmarks
{
    private const long StreamBytes = 96L << 20; // the 8-bit copies together; fp32 is 4×, far past any cache here

    private float[][] _fp32 = null!;
    private ushort[][] _bf16 = null!;
    private byte[][] _int8 = null!, _int8Dots = null!;
    private float[] _x = null!, _y = null!;
    private sbyte[] _xq = null!;
    private float[] _xd = null!;
    private int _inF, _outF, _next;

    [Params("576x1536", "1536x576", "576x49152")]
    public string Shape { get; set; } = "";

    // One decoding sequence, a step of four (DecoderBatcher), and a prompt.
    [Params(1, 4, 64)]
    public int Rows { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    internal static (int InF, int OutF) Parse(string shape)
    {
        string[] parts = shape.Split('x');
        return (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture));
    }

    /// <summary>Bytes of weights one call of <paramref name="method"/> reads.</summary>
    internal static long WeightBytes(string method, string shape)
    {
        (int inF, int outF) = Parse(shape);
        return method switch
        {
            nameof(Fp32Panels) => 4L * inF * outF,
            nameof(BFloat16) => 2 * BFloat16MatMul.ElementCount(outF, inF),
            _ => QuantizedMatMul.ByteCount(outF, inF),
        };
    }

    [GlobalSetup]
    public void Setup()
    {
        Parallelism.ThreadCount = Threads;
        (_inF, _outF) = Parse(Shape);
        var rng = new Rng(21);
        var w = new float[_outF * _inF];
        for (int i = 0; i < w.Length; i++) w[i] = rng.NextNormal() * 0.05f;
        var packed = (float[])w.Clone();
        Kernels.MatMul.PackPanels(packed, _outF, _inF);
        var bf16 = new ushort[BFloat16MatMul.ElementCount(_outF, _inF)];
        BFloat16MatMul.Convert(w, _outF, _inF, bf16);
        var int8 = new byte[QuantizedMatMul.ByteCount(_outF, _inF)];
        QuantizedMatMul.Quantize(w, _outF, _inF, int8);
        byte[] dots = IntegerDots.Layout(int8);
        int copies = (int)Math.Max(2, (StreamBytes + int8.Length - 1) / int8.Length);
        _fp32 = Enumerable.Range(0, copies).Select(_ => (float[])packed.Clone()).ToArray();
        _bf16 = Enumerable.Range(0, copies).Select(_ => (ushort[])bf16.Clone()).ToArray();
        _int8 = Enumerable.Range(0, copies).Select(_ => (byte[])int8.Clone()).ToArray();
        _int8Dots = Enumerable.Range(0, copies).Select(_ => (byte[])dots.Clone()).ToArray();
        _x = new float[Rows * _inF];
        for (int i = 0; i < _x.Length; i++) _x[i] = rng.NextNormal();
        _y = new float[Rows * _outF];
        _xq = new sbyte[Rows * IntegerDots.Padded(_inF)];
        _xd = new float[Rows * IntegerDots.Padded(_inF) / 32];
        // The two int8 kernels agree to the activations' rounding (a check that option (a) computes the product).
        var a = new float[Rows * _outF];
        QuantizedMatMul.Forward(_x, int8, default, a, Rows, _inF, _outF);
        IntegerDots.Forward(_x, dots, _xq, _xd, _y, Rows, _inF, _outF);
        double err = 0, norm = 0;
        for (int i = 0; i < a.Length; i++) { err = Math.Max(err, Math.Abs(a[i] - _y[i])); norm = Math.Max(norm, Math.Abs(a[i])); }
        if (err > 0.02 * norm) throw new InvalidOperationException($"option (a) is off by {err} of {norm}");
    }

    private int Next() => _next = (_next + 1) % _fp32.Length;

    [Benchmark(Baseline = true)]
    public void Fp32Panels() => Kernels.MatMul.Forward(_x, _fp32[Next()], default, _y, Rows, _inF, _outF, packed: true);

    [Benchmark]
    public void BFloat16() => BFloat16MatMul.Forward(_x, _bf16[Next()], default, _y, Rows, _inF, _outF);

    [Benchmark]
    public void Int8() => QuantizedMatMul.Forward(_x, _int8[Next()], default, _y, Rows, _inF, _outF);

    [Benchmark]
    public void Int8IntegerDots() => IntegerDots.Forward(_x, _int8Dots[Next()], _xq, _xd, _y, Rows, _inF, _outF);

    /// <summary>Adds the GB/s column: the format's weight bytes per call over the mean time.</summary>
    private sealed class BandwidthConfig : ManualConfig
    {
        public BandwidthConfig() => AddColumn(new ThroughputColumn("WeightGBps", "GB/s", "Weight bytes read per call / mean time",
            c => WeightBytes(c.Descriptor.WorkloadMethod.Name, (string)c.Parameters["Shape"])));
    }

    /// <summary>Option (a): quantized activations, integer dot products (see the remarks).</summary>
    internal static class IntegerDots
    {
        // Per 64-column panel and block of 32 inputs: 8 groups of 4 inputs, each 64 columns × 4 bytes (q[k..k+3] of a
        // column together, as vpmaddubsw + vpmaddwd sum them into one int32 lane), then the 64 fp16 scales.
        private const int Record = 2048 + 128;

        public static int Padded(int inF) => (inF + 31) / 32 * 32;

        public static byte[] Layout(byte[] panels)
        {
            var result = new byte[panels.Length];
            int count = panels.Length / Record;
            for (int r = 0; r < count; r++)
            {
                int at = r * Record;
                for (int k = 0; k < 32; k++)
                    for (int c = 0; c < 64; c++)
                        result[at + (k / 4) * 256 + c * 4 + k % 4] = panels[at + k * 64 + c];
                Array.Copy(panels, at + 2048, result, at + 2048, 128);
            }
            return result;
        }

        public static void Forward(float[] x, byte[] q, sbyte[] xq, float[] xd, float[] y, int n, int inF, int outF)
        {
            int padded = Padded(inF), blocks = padded / 32;
            // Quantize the activations: per row and block of 32, x/d rounded to [−127, 127] with d = max|x|/127.
            Array.Clear(xq);
            for (int i = 0; i < n; i++)
                for (int b = 0; b < blocks; b++)
                {
                    int k0 = b * 32, kc = Math.Min(32, inF - k0);
                    float max = 0f;
                    for (int k = 0; k < kc; k++) max = Math.Max(max, Math.Abs(x[i * inF + k0 + k]));
                    float d = max / 127f;
                    xd[i * blocks + b] = d;
                    float inv = d == 0f ? 0f : 1f / d;
                    for (int k = 0; k < kc; k++) xq[i * padded + k0 + k] = (sbyte)MathF.Round(x[i * inF + k0 + k] * inv);
                }
            fixed (byte* pq = q)
            fixed (sbyte* px = xq)
            fixed (float* pd = xd, py = y)
            {
                int panels = (outF + 63) / 64;
                var work = new Work { Q = pq, X = px, D = pd, Y = py, N = n, Blocks = blocks, OutF = outF };
                int threads = Parallelism.ThreadsFor(2L * n * inF * outF, panels);
                if (threads == 1) for (int p = 0; p < panels; p++) work.Execute(p);
                else WorkerPool.For(ref work, panels, threads);
            }
        }

        private struct Work : IParallelWork
        {
            public byte* Q;
            public sbyte* X;
            public float* D, Y;
            public int N, Blocks, OutF;

            public readonly void Execute(int p)
            {
                float* total = stackalloc float[64];
                for (int i = 0; i < N; i++)
                {
                    Panel(X + (nint)i * Blocks * 32, D + (nint)i * Blocks, Q + (nint)p * Blocks * Record, Blocks, total);
                    int cols = Math.Min(64, OutF - p * 64);
                    for (int c = 0; c < cols; c++) Y[(nint)i * OutF + p * 64 + c] = total[c];
                }
            }
        }

        private const int HalfFixBits = (127 + 112) << 23; // 2¹¹² (see QuantizedMatMul.cs)

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Panel(sbyte* x, float* xd, byte* panel, int blocks, float* total)
        {
            Vector512<float> t0 = default, t1 = default, t2 = default, t3 = default;
            Vector512<short> ones = Vector512.Create((short)1);
            for (int b = 0; b < blocks; b++, panel += Record)
            {
                Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int g = 0; g < 8; g++)
                {
                    int four = ((int*)(x + b * 32))[g];
                    Vector512<sbyte> xs = Vector512.Create(four).AsSByte();
                    Vector512<byte> ax = Vector512.Abs(xs).AsByte();
                    Vector512<sbyte> flip = Vector512.ShiftRightArithmetic(xs, 7); // −1 where x < 0
                    sbyte* wg = (sbyte*)panel + g * 256;
                    a0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(ax, (Vector512.Load(wg) ^ flip) - flip), ones);
                    a1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(ax, (Vector512.Load(wg + 64) ^ flip) - flip), ones);
                    a2 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(ax, (Vector512.Load(wg + 128) ^ flip) - flip), ones);
                    a3 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(ax, (Vector512.Load(wg + 192) ^ flip) - flip), ones);
                }
                ushort* s = (ushort*)(panel + 2048);
                Vector512<float> dx = Vector512.Create(xd[b] * BitConverter.Int32BitsToSingle(HalfFixBits));
                t0 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(a0), Scales(s) * dx, t0);
                t1 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(a1), Scales(s + 16) * dx, t1);
                t2 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(a2), Scales(s + 32) * dx, t2);
                t3 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(a3), Scales(s + 48) * dx, t3);
            }
            t0.Store(total);
            t1.Store(total + 16);
            t2.Store(total + 32);
            t3.Store(total + 48);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> Scales(ushort* s)
            => Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(Vector256.Load(s)), 13).AsSingle();
    }
}

/// <summary>
/// Products of many rows over 8-bit weights (issues 14 and 18): the fp32-activation kernel (b),
/// <c>QuantizedMatMul.Forward</c>, against the integer product <c>QuantizedMatMul.ForwardIntegers</c> (activations
/// rounded per block to int16, <c>vpmaddwd</c>), with the fp32 panels as the baseline, at all-MiniLM-L6-v2's shapes
/// (128 tokens) and SmolLM2-135M's (a 64- and a 512-token prompt), plus a few row counts at one shape for the crossover.
/// The weights stream from many copies, as in <see cref="QuantizedMatMulBenchmarks"/>.
/// </summary>
/// <remarks>
/// Measured 2026-12-06 (<c>dotnet run -c Release --project bench/Model.Bench -- --filter '*QuantizedMultiRow*'</c>, AMD EPYC
/// Zen 4, .NET 10.0.12, one thread), two runs, the 2 cores shared with other engineers' builds and tests: 06:42-06:51 UTC
/// at load average 2.6-7.7 and 07:16-07:25 at 4.7-12.5; means in µs, run 1 / run 2, and (b) over the integer product:
/// <code>
/// inF→outF @ rows    fp32 panels      int8 (b), fp32 activations   int8 integers    (b) / integers
/// 384→384 @ 128      366 / 374        405 / 480                    315 / 430        1.29 / 1.12
/// 384→1536 @ 128     1470 / 2315      1564 / 2337                  1254 / 1688      1.25 / 1.38
/// 1536→384 @ 128     1580 / 2156      1881 / 2168                  1194 / 1673      1.58 / 1.30
/// 576→576 @ 64       467 / 475        555 / 656                    510 / 512        1.09 / 1.28
/// 576→192 @ 64       202 / 203        204 / 205                    176 / 186        1.16 / 1.10
/// 576→1536 @ 64      1730 / 1795      1631 / 1831                  1457 / 1400      1.12 / 1.31
/// 1536→576 @ 64      1579 / 1243      1243 / 1685                  968 / 1381       1.28 / 1.22
/// 576→576 @ 512      3097 / 4544      3490 / 5018                  3010 / 3398      1.16 / 1.48
/// 576→192 @ 512      1052 / 1568      1751 / 1663                  1105 / 1342      1.58 / 1.24
/// 576→1536 @ 512     13133 / 13556    13982 / 13580                10114 / 10102    1.38 / 1.34
/// 1536→576 @ 512     8499 / 10397     11987 / 16088                8202 / 9500      1.46 / 1.69
/// 576→1536 @ 4, 8    190, 424 / 372, 477   195, 262 / 292, 360     183, 336 / 264, 350   1.07, 0.78 / 1.11, 1.03
/// 576→1536 @ 16, 32  387, 684 / 410, 707   375, 635 / 365, 1224    339, 590 / 326, 1002  1.11, 1.08 / 1.12, 1.22
/// </code>
/// The integer product beat (b) at every layer shape and row count of 16 or more in both runs, by 1.09-1.69×; at 8 rows
/// it lost once (its tiles of 3 rows and the per-call widening of the weights weigh more), hence
/// <c>QuantizedMatMul.IntegerProductMinimumRows</c> = 16. Against the fp32 panels it was 0.87-1.63× (faster in 17 of
/// 22 layer cases). Its outputs differed from (b)'s by 1.5-2.3e-4 of the largest output (printed by the setup).
/// </remarks>
[Config(typeof(MultiRowConfig))]
public class QuantizedMultiRowBenchmarks
{
    private const long StreamBytes = 96L << 20;

    private float[][] _fp32 = null!;
    private byte[][] _int8 = null!;
    private float[] _x = null!, _y = null!;
    private int _inF, _outF, _rows, _next;

    /// <summary><c>inF x outF @ rows</c>.</summary>
    [Params("384x384@128", "384x1536@128", "1536x384@128",
            "576x576@64", "576x192@64", "576x1536@64", "1536x576@64",
            "576x576@512", "576x192@512", "576x1536@512", "1536x576@512",
            "576x1536@4", "576x1536@8", "576x1536@16", "576x1536@32")]
    public string Case { get; set; } = "";

    [Params(1)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Parallelism.ThreadCount = Threads;
        string[] parts = Case.Split('@');
        (_inF, _outF) = QuantizedMatMulBenchmarks.Parse(parts[0]);
        _rows = int.Parse(parts[1], CultureInfo.InvariantCulture);
        var rng = new Rng(22);
        var w = new float[_outF * _inF];
        for (int i = 0; i < w.Length; i++) w[i] = rng.NextNormal() * 0.05f;
        var packed = (float[])w.Clone();
        Kernels.MatMul.PackPanels(packed, _outF, _inF);
        var int8 = new byte[QuantizedMatMul.ByteCount(_outF, _inF)];
        QuantizedMatMul.Quantize(w, _outF, _inF, int8);
        int copies = (int)Math.Max(2, (StreamBytes + int8.Length - 1) / int8.Length);
        _fp32 = Enumerable.Range(0, Math.Max(2, copies / 4)).Select(_ => (float[])packed.Clone()).ToArray();
        _int8 = Enumerable.Range(0, copies).Select(_ => (byte[])int8.Clone()).ToArray();
        _x = new float[_rows * _inF];
        for (int i = 0; i < _x.Length; i++) _x[i] = rng.NextNormal();
        _y = new float[_rows * _outF];
        // The two agree to the activations' rounding (a check that the integer product computes the product).
        var a = new float[_rows * _outF];
        QuantizedMatMul.Forward(_x, int8, default, a, _rows, _inF, _outF);
        QuantizedMatMul.ForwardIntegers(_x, int8, default, _y, _rows, _inF, _outF);
        double err = 0, norm = 0;
        for (int i = 0; i < a.Length; i++) { err = Math.Max(err, Math.Abs(a[i] - _y[i])); norm = Math.Max(norm, Math.Abs(a[i])); }
        Console.WriteLine($"// {Case}: the integer product differs from the fp32-activation one by {err / norm:E2} of the largest output");
        if (err > 1e-3 * norm) throw new InvalidOperationException($"the integer product is off by {err} of {norm}");
    }

    private int Next() => _next = (_next + 1) % _int8.Length;

    [Benchmark(Baseline = true)]
    public void Fp32Panels() => Kernels.MatMul.Forward(_x, _fp32[Next() % _fp32.Length], default, _y, _rows, _inF, _outF, packed: true);

    [Benchmark]
    public void Int8() => QuantizedMatMul.Forward(_x, _int8[Next()], default, _y, _rows, _inF, _outF);

    [Benchmark]
    public void Int8Integers() => QuantizedMatMul.ForwardIntegers(_x, _int8[Next()], default, _y, _rows, _inF, _outF);

    /// <summary>Adds the GOP/s column: 2·rows·inF·outF over the mean time.</summary>
    private sealed class MultiRowConfig : ManualConfig
    {
        public MultiRowConfig() => AddColumn(new ThroughputColumn("MultiRowGops", "GOP/s", "2·rows·inF·outF / mean time", c =>
        {
            string[] parts = ((string)c.Parameters["Case"]).Split('@');
            (int inF, int outF) = QuantizedMatMulBenchmarks.Parse(parts[0]);
            return 2.0 * int.Parse(parts[1], CultureInfo.InvariantCulture) * inF * outF;
        }));
    }
}

/// <summary>A column of an amount per call (bytes, operations) over the mean time in ns: GB/s, GOP/s.</summary>
internal sealed class ThroughputColumn(string id, string name, string legend, Func<BenchmarkCase, double> amount) : IColumn
{
    public string Id => id;
    public string ColumnName => name;
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => legend;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        return stats is null ? "?" : (amount(benchmarkCase) / stats.Mean).ToString("F1", CultureInfo.InvariantCulture);
    }
}
