using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

/// <summary>
/// The linear layer over 8-bit weights: symmetric blocks of <see cref="BlockSize"/> weights along the input dimension,
/// each stored as signed bytes <c>q</c> in [−127, 127] with one fp16 scale <c>d</c>, the weight being <c>q·d</c> (the
/// arithmetic of GGUF's Q8_0), laid out in panels for the kernels.
/// </summary>
/// <remarks>
/// <para>
/// Layout. The rows of <c>W [outF, inF]</c> are taken <see cref="PanelWidth"/> at a time (the last panel padded with
/// zero rows), and each panel is a sequence of block records, one per <see cref="BlockSize"/> inputs (the last padded
/// with zeros): <c>q[k, c]</c> for k &lt; 32 and c &lt; 64 (2048 bytes, one 64-byte line per input, as the fp32 panels
/// of MatMul.Packed.cs) followed by the 64 columns' fp16 scales (128 bytes). A one-row product then reads the whole
/// matrix as one forward stream; <see cref="ByteCount"/> gives the size, 34 bytes per 32 weights before padding.
/// </para>
/// <para>
/// The scale is fp16, not fp32: decoding is bound by memory traffic, and fp16 scales are 6% less of it (34 rather
/// than 36 bytes per 32 weights); its 11-bit significand only rounds the step, and <see cref="Quantize"/> computes
/// <c>q</c> from the stored (rounded up) scale, so <c>q·d</c> is still the nearest point of the block's grid. It is also
/// Q8_0's own block, so a GGUF export can copy blocks without requantizing. Widening it costs one shift per 16 scales
/// (an fp16 bit pattern shifted left 13 is the float times 2⁻¹¹², subnormals included).
/// </para>
/// <para>
/// Kernel: the weights are dequantized in registers and FMA'd in fp32 (option (b) of issue 14), rather than the
/// activations quantized per block and multiplied in integers (option (a)). Measured on this project's machine (AMD
/// EPYC Zen 4, .NET 10.0.12, one thread, 30 layers of SmolLM2-135M matrices cycled so the weights stream from memory;
/// bench/Model.Bench/QuantizedMatMulBenchmarks.cs): see the figures there. The deciding facts: .NET 10 reports
/// <c>AvxVnni.IsSupported == false</c> on Zen 4 (it has AVX512-VNNI, which .NET does not expose, but not the VEX
/// AVX-VNNI), so integer dot products go through <c>vpmaddubsw</c> + <c>vpmaddwd</c>, which need the sign trick
/// (u8·s8 pairs saturate at 16 bits) and the activations quantized into a scratch buffer each call; the one-row
/// product is bound by memory either way, and (b) adds no activation rounding (its result is the fp32 product over the
/// dequantized weights) and needs no scratch, so every output element is the same sum on every path.
/// </para>
/// <para>
/// Every output element is summed in one order on every path, for any row count and any thread count: per block a
/// fused multiply-add chain over its inputs in ascending order from zero, then <c>total = fma(blockSum, d, total)</c>
/// over the blocks in ascending order, then the bias added. The portable path does the same with
/// <see cref="MathF.FusedMultiplyAdd"/>, so all paths give the same bits.
/// </para>
/// </remarks>
public static unsafe class QuantizedMatMul
{
    /// <summary>Weights per block along the input dimension, each block with one scale.</summary>
    public const int BlockSize = 32;

    /// <summary>Output columns (rows of W) per panel.</summary>
    public const int PanelWidth = 64;

    private const int WeightBytes = BlockSize * PanelWidth;                 // 2048
    private const int RecordBytes = WeightBytes + PanelWidth * sizeof(ushort); // + 64 fp16 scales = 2176
    private const int TileRows = 3;        // rows per register tile on the Vector512 path: 12 block sums + 12 totals
    private const int ItemsPerThread = 2;

    /// <summary>Bytes of the quantized form of a <c>[outF, inF]</c> matrix.</summary>
    public static long ByteCount(int outF, int inF)
    {
        SpanChecks.NonNegative(outF, nameof(outF));
        SpanChecks.NonNegative(inF, nameof(inF));
        return (long)Panels(outF) * Blocks(inF) * RecordBytes;
    }

    private static int Panels(int outF) => (outF + PanelWidth - 1) / PanelWidth;

    private static int Blocks(int inF) => (inF + BlockSize - 1) / BlockSize;

    /// <summary>
    /// Quantizes <paramref name="w"/> (<c>[outF, inF]</c>, PyTorch's layout) into <paramref name="q"/>: per row and
    /// block of 32 inputs, the scale <c>d</c> is the smallest fp16 at or above <c>max|w|/127</c>, and
    /// <c>q = round(w/d)</c> (to nearest, ties to even). Allocates nothing.
    /// </summary>
    /// <param name="w">The weight in fp32, rows of inputs.</param>
    /// <param name="outF">Rows (output features).</param>
    /// <param name="inF">Columns (input features).</param>
    /// <param name="q">Receives the quantized matrix, <see cref="ByteCount"/> bytes.</param>
    /// <exception cref="ArgumentException">A weight is not finite or so large that its scale exceeds fp16's range.</exception>
    public static void Quantize(ReadOnlySpan<float> w, int outF, int inF, Span<byte> q)
    {
        SpanChecks.Length(w.Length, (long)outF * inF, nameof(w));
        SpanChecks.Length(q.Length, ByteCount(outF, inF), nameof(q));
        q.Clear(); // padding: zero weights with zero scales
        int blocks = Blocks(inF);
        for (int o = 0; o < outF; o++)
        {
            int p = o / PanelWidth, c = o % PanelWidth;
            for (int b = 0; b < blocks; b++)
            {
                int k0 = b * BlockSize, kc = Math.Min(BlockSize, inF - k0);
                ReadOnlySpan<float> block = w.Slice(o * inF + k0, kc);
                float max = 0f;
                foreach (float v in block)
                {
                    if (!float.IsFinite(v)) throw new ArgumentException($"w[{o}, {k0}..] holds {v}: only finite weights can be quantized", nameof(w));
                    max = Math.Max(max, Math.Abs(v));
                }
                Half scale = ScaleFor(max, o, k0);
                float d = (float)scale;
                Span<byte> record = q.Slice((int)(((long)p * blocks + b) * RecordBytes), RecordBytes);
                for (int k = 0; k < kc; k++)
                {
                    float r = d == 0f ? 0f : MathF.Round(block[k] / d, MidpointRounding.ToEven);
                    record[k * PanelWidth + c] = (byte)(sbyte)Math.Clamp(r, -127f, 127f);
                }
                BitConverter.TryWriteBytes(record.Slice(WeightBytes + c * sizeof(ushort)), BitConverter.HalfToUInt16Bits(scale));
            }
        }
    }

    private static Half ScaleFor(float max, int row, int k0)
    {
        float exact = max / 127f;
        Half scale = (Half)exact;
        if ((float)scale < exact) scale = BitConverter.UInt16BitsToHalf((ushort)(BitConverter.HalfToUInt16Bits(scale) + 1));
        if (!Half.IsFinite(scale))
            throw new ArgumentException($"w[{row}, {k0}..] has |w| = {max}: the scale {exact} exceeds fp16's range", "w");
        return scale;
    }

    /// <summary>The fp32 weights <c>q·d</c> that <paramref name="q"/> stands for, in PyTorch's <c>[outF, inF]</c> layout.</summary>
    /// <param name="q">A matrix quantized by <see cref="Quantize"/>.</param>
    /// <param name="outF">Rows (output features).</param>
    /// <param name="inF">Columns (input features).</param>
    /// <param name="w">Receives the weights, <c>outF·inF</c> floats.</param>
    public static void Dequantize(ReadOnlySpan<byte> q, int outF, int inF, Span<float> w)
    {
        SpanChecks.Length(q.Length, ByteCount(outF, inF), nameof(q));
        SpanChecks.Length(w.Length, (long)outF * inF, nameof(w));
        int blocks = Blocks(inF);
        for (int o = 0; o < outF; o++)
        {
            int p = o / PanelWidth, c = o % PanelWidth;
            for (int b = 0; b < blocks; b++)
            {
                int k0 = b * BlockSize, kc = Math.Min(BlockSize, inF - k0);
                ReadOnlySpan<byte> record = q.Slice((int)(((long)p * blocks + b) * RecordBytes), RecordBytes);
                float d = ScaleOf(record, c);
                for (int k = 0; k < kc; k++) w[o * inF + k0 + k] = (sbyte)record[k * PanelWidth + c] * d;
            }
        }
    }

    private static float ScaleOf(ReadOnlySpan<byte> record, int c)
        => (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(record.Slice(WeightBytes + c * sizeof(ushort))));

    /// <summary>
    /// <c>y[n, outF] = x[n, inF] · Wᵀ + bias[outF]</c> with <c>W</c> the weights that <paramref name="q"/> stands for
    /// (<see cref="Quantize"/>): the fp32 product over the dequantized weights, summed in an order that does not depend
    /// on <paramref name="n"/>, on the thread count or on the instruction set. Allocates nothing.
    /// </summary>
    /// <param name="x">Input rows, <c>[n, inF]</c>.</param>
    /// <param name="q">The quantized weight.</param>
    /// <param name="bias">Bias <c>[outF]</c>, or empty for none.</param>
    /// <param name="y">Output rows, <c>[n, outF]</c>, overwritten.</param>
    /// <param name="n">Rows of <paramref name="x"/>.</param>
    /// <param name="inF">Input features.</param>
    /// <param name="outF">Output features.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<byte> q, ReadOnlySpan<float> bias, Span<float> y, int n, int inF, int outF)
        => Forward(x, q, bias, y, n, inF, outF, Simd.Best);

    internal static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<byte> q, ReadOnlySpan<float> bias, Span<float> y, int n, int inF, int outF, SimdPath path)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.Length(q.Length, ByteCount(outF, inF), nameof(q));
        SpanChecks.Length(x.Length, (long)n * inF, nameof(x));
        SpanChecks.LengthOrEmpty(bias.Length, outF, nameof(bias));
        SpanChecks.Length(y.Length, (long)n * outF, nameof(y));
        if (!Simd.IsSupported(path)) path = SimdPath.Portable;
        if (n == 0 || outF == 0) return;
        fixed (float* px = x, pb = bias, py = y)
        fixed (byte* pq = q)
        {
            float* b = bias.IsEmpty ? null : pb;
            int panels = Panels(outF);
            int threads = Parallelism.ThreadsFor(2L * n * inF * panels * PanelWidth, panels);
            var work = new Work { X = px, Q = pq, Bias = b, Y = py, N = n, InF = inF, OutF = outF, Panels = panels, Path = path };
            if (threads == 1) work.Run(0, panels);
            else
            {
                work.Chunk = Math.Max(1, panels / (ItemsPerThread * threads));
                WorkerPool.For(ref work, (panels + work.Chunk - 1) / work.Chunk, threads);
            }
        }
    }

    private struct Work : IParallelWork
    {
        public float* X, Bias, Y;
        public byte* Q;
        public int N, InF, OutF, Panels, Chunk;
        public SimdPath Path;

        public readonly void Execute(int item)
        {
            int p0 = item * Chunk;
            Run(p0, Math.Min(Panels, p0 + Chunk));
        }

        // Panels p0..p1, every row: one thread computes whole columns, so the thread count cannot change a sum.
        public readonly void Run(int p0, int p1)
        {
            long panelBytes = (long)Blocks(InF) * RecordBytes;
            float* tile = stackalloc float[TileRows * PanelWidth];
            for (int p = p0; p < p1; p++)
            {
                byte* panel = Q + p * panelBytes;
                int j = p * PanelWidth, cols = Math.Min(PanelWidth, OutF - j);
                float* bias = Bias == null ? null : Bias + j;
                if (Path == SimdPath.Portable)
                {
                    for (int i = 0; i < N; i++)
                    {
                        PanelRowPortable(X + (nint)i * InF, panel, InF, tile);
                        Finish(tile, bias, Y + (nint)i * OutF + j, cols);
                    }
                    continue;
                }
                int m = 0;
                if (Path == SimdPath.Vector512)
                    for (; m + TileRows <= N; m += TileRows)
                    {
                        Panel3RowsOf512(X + (nint)m * InF, InF, panel, tile);
                        for (int r = 0; r < TileRows; r++) Finish(tile + r * PanelWidth, bias, Y + (nint)(m + r) * OutF + j, cols);
                    }
                for (; m < N; m++)
                {
                    if (Path == SimdPath.Vector512) PanelRowOf512(X + (nint)m * InF, panel, InF, tile);
                    else PanelRowOf256(X + (nint)m * InF, panel, InF, tile);
                    Finish(tile, bias, Y + (nint)m * OutF + j, cols);
                }
            }
        }
    }

    // y[c] = total[c] + bias[c] for the panel's real columns (one IEEE addition, as a vector add would do it).
    private static void Finish(float* total, float* bias, float* y, int cols)
    {
        if (bias == null) for (int c = 0; c < cols; c++) y[c] = total[c];
        else for (int c = 0; c < cols; c++) y[c] = total[c] + bias[c];
    }

    // 2¹¹² (as float bits): an fp16 bit pattern shifted left by 13 is, read as a float, the half's value times 2⁻¹¹²
    // (exponent biases 15 and 127), for subnormal halves too; one exact multiplication restores it. A constant, not a
    // static readonly float: methods marked AggressiveOptimization are never rejitted once the class is initialized, so
    // a static field costs an initialization check in the loop, whose helper call made the JIT spill the block sums to
    // the stack on every input (measured: 57 µs rather than 15 µs for a 576 × 1536 product in cache).
    private const int HalfExponentFixBits = (127 + 112) << 23;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Scales512(ushort* s)
        => Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(Vector256.Load(s)), 13).AsSingle() * Vector512.Create(HalfExponentFixBits).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Weights512(byte* q)
        => Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)q)));

    // One row of x against one panel: total[0..64) (without bias).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    private static void PanelRowOf512(float* x, byte* panel, int inF, float* total)
    {
        Vector512<float> t0 = default, t1 = default, t2 = default, t3 = default;
        for (int k0 = 0; k0 < inF; k0 += BlockSize, panel += RecordBytes)
        {
            int kc = Math.Min(BlockSize, inF - k0);
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int k = 0; k < kc; k++)
            {
                byte* q = panel + k * PanelWidth;
                Vector512<float> xv = Vector512.Create(x[k0 + k]);
                a0 = Vector512.FusedMultiplyAdd(xv, Weights512(q), a0);
                a1 = Vector512.FusedMultiplyAdd(xv, Weights512(q + 16), a1);
                a2 = Vector512.FusedMultiplyAdd(xv, Weights512(q + 32), a2);
                a3 = Vector512.FusedMultiplyAdd(xv, Weights512(q + 48), a3);
            }
            ushort* s = (ushort*)(panel + WeightBytes);
            t0 = Vector512.FusedMultiplyAdd(a0, Scales512(s), t0);
            t1 = Vector512.FusedMultiplyAdd(a1, Scales512(s + 16), t1);
            t2 = Vector512.FusedMultiplyAdd(a2, Scales512(s + 32), t2);
            t3 = Vector512.FusedMultiplyAdd(a3, Scales512(s + 48), t3);
        }
        t0.Store(total);
        t1.Store(total + 16);
        t2.Store(total + 32);
        t3.Store(total + 48);
    }

    // Three rows of x (row stride inF) against one panel: each weight vector is widened once for three rows, with the
    // same operations per row as PanelRowOf512.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Panel3RowsOf512(float* x, int inF, byte* panel, float* total)
    {
        Vector512<float> t00 = default, t01 = default, t02 = default, t03 = default;
        Vector512<float> t10 = default, t11 = default, t12 = default, t13 = default;
        Vector512<float> t20 = default, t21 = default, t22 = default, t23 = default;
        float* x1 = x + inF, x2 = x1 + inF;
        for (int k0 = 0; k0 < inF; k0 += BlockSize, panel += RecordBytes)
        {
            int kc = Math.Min(BlockSize, inF - k0);
            Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
            Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
            Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
            for (int k = 0; k < kc; k++)
            {
                byte* q = panel + k * PanelWidth;
                Vector512<float> w0 = Weights512(q), w1 = Weights512(q + 16), w2 = Weights512(q + 32), w3 = Weights512(q + 48);
                Vector512<float> xv = Vector512.Create(x[k0 + k]);
                a00 = Vector512.FusedMultiplyAdd(xv, w0, a00);
                a01 = Vector512.FusedMultiplyAdd(xv, w1, a01);
                a02 = Vector512.FusedMultiplyAdd(xv, w2, a02);
                a03 = Vector512.FusedMultiplyAdd(xv, w3, a03);
                xv = Vector512.Create(x1[k0 + k]);
                a10 = Vector512.FusedMultiplyAdd(xv, w0, a10);
                a11 = Vector512.FusedMultiplyAdd(xv, w1, a11);
                a12 = Vector512.FusedMultiplyAdd(xv, w2, a12);
                a13 = Vector512.FusedMultiplyAdd(xv, w3, a13);
                xv = Vector512.Create(x2[k0 + k]);
                a20 = Vector512.FusedMultiplyAdd(xv, w0, a20);
                a21 = Vector512.FusedMultiplyAdd(xv, w1, a21);
                a22 = Vector512.FusedMultiplyAdd(xv, w2, a22);
                a23 = Vector512.FusedMultiplyAdd(xv, w3, a23);
            }
            ushort* s = (ushort*)(panel + WeightBytes);
            Vector512<float> d = Scales512(s);
            t00 = Vector512.FusedMultiplyAdd(a00, d, t00);
            t10 = Vector512.FusedMultiplyAdd(a10, d, t10);
            t20 = Vector512.FusedMultiplyAdd(a20, d, t20);
            d = Scales512(s + 16);
            t01 = Vector512.FusedMultiplyAdd(a01, d, t01);
            t11 = Vector512.FusedMultiplyAdd(a11, d, t11);
            t21 = Vector512.FusedMultiplyAdd(a21, d, t21);
            d = Scales512(s + 32);
            t02 = Vector512.FusedMultiplyAdd(a02, d, t02);
            t12 = Vector512.FusedMultiplyAdd(a12, d, t12);
            t22 = Vector512.FusedMultiplyAdd(a22, d, t22);
            d = Scales512(s + 48);
            t03 = Vector512.FusedMultiplyAdd(a03, d, t03);
            t13 = Vector512.FusedMultiplyAdd(a13, d, t13);
            t23 = Vector512.FusedMultiplyAdd(a23, d, t23);
        }
        t00.Store(total); t01.Store(total + 16); t02.Store(total + 32); t03.Store(total + 48);
        total += PanelWidth;
        t10.Store(total); t11.Store(total + 16); t12.Store(total + 32); t13.Store(total + 48);
        total += PanelWidth;
        t20.Store(total); t21.Store(total + 16); t22.Store(total + 32); t23.Store(total + 48);
    }

    // AVX2: one row, the panel in two halves of 32 columns (8 block sums and 8 totals fit the 16 ymm registers).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PanelRowOf256(float* x, byte* panel, int inF, float* total)
    {
        Vector256<float> fix = Vector256.Create(HalfExponentFixBits).AsSingle();
        for (int h = 0; h < PanelWidth; h += 32)
        {
            Vector256<float> t0 = default, t1 = default, t2 = default, t3 = default;
            byte* record = panel + h;
            for (int k0 = 0; k0 < inF; k0 += BlockSize, record += RecordBytes)
            {
                int kc = Math.Min(BlockSize, inF - k0);
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int k = 0; k < kc; k++)
                {
                    byte* q = record + k * PanelWidth;
                    Vector256<float> xv = Vector256.Create(x[k0 + k]);
                    a0 = Vector256.FusedMultiplyAdd(xv, Weights256(q), a0);
                    a1 = Vector256.FusedMultiplyAdd(xv, Weights256(q + 8), a1);
                    a2 = Vector256.FusedMultiplyAdd(xv, Weights256(q + 16), a2);
                    a3 = Vector256.FusedMultiplyAdd(xv, Weights256(q + 24), a3);
                }
                ushort* s = (ushort*)(record - h + WeightBytes) + h;
                t0 = Vector256.FusedMultiplyAdd(a0, Scales256(s, fix), t0);
                t1 = Vector256.FusedMultiplyAdd(a1, Scales256(s + 8, fix), t1);
                t2 = Vector256.FusedMultiplyAdd(a2, Scales256(s + 16, fix), t2);
                t3 = Vector256.FusedMultiplyAdd(a3, Scales256(s + 24, fix), t3);
            }
            t0.Store(total + h);
            t1.Store(total + h + 8);
            t2.Store(total + h + 16);
            t3.Store(total + h + 24);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Weights256(byte* q)
        => Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Vector128.CreateScalarUnsafe(*(long*)q).AsSByte()));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Scales256(ushort* s, Vector256<float> fix)
        => Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(Vector128.Load(s)), 13).AsSingle() * fix;

    // Without SIMD: the same operations in the same order, one column at a time.
    private static void PanelRowPortable(float* x, byte* panel, int inF, float* total)
    {
        for (int c = 0; c < PanelWidth; c++)
        {
            float t = 0f;
            byte* record = panel;
            for (int k0 = 0; k0 < inF; k0 += BlockSize, record += RecordBytes)
            {
                int kc = Math.Min(BlockSize, inF - k0);
                float a = 0f;
                for (int k = 0; k < kc; k++) a = MathF.FusedMultiplyAdd(x[k0 + k], (sbyte)record[k * PanelWidth + c], a);
                t = MathF.FusedMultiplyAdd(a, (float)BitConverter.UInt16BitsToHalf(((ushort*)(record + WeightBytes))[c]), t);
            }
            total[c] = t;
        }
    }
}
