using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
/// Kernel: the weights are dequantized in registers (vpmovsxbd, vcvtdq2ps) and FMA'd in fp32 (option (b) of issue 14),
/// rather than the activations quantized per block and multiplied in integers (option (a)). Measured with
/// bench/Model.Bench/QuantizedMatMulBenchmarks.cs, which keeps an (a) kernel for this comparison (AMD EPYC Zen 4,
/// .NET 10.0.12, copies of each matrix cycled so the weights stream from memory, one thread, 2 shared cores):
/// one row, 1536→576: (b) 38-41 µs, (a) 30 µs, fp32 panels 154-252 µs; 576→1536: (b) 42-43 µs, (a) 36 µs, fp32
/// 168-186 µs; 576→49152: (b) 1.30-1.77 ms, (a) 1.48 ms, fp32 6.6 ms. 64 rows, 1536→576: (b) 1.20-1.27 ms, (a) 1.26 ms
/// (rows one at a time), fp32 1.09-1.12 ms. So (a) is 15-25% faster for one row on the layer shapes, and both are
/// 4-6× the fp32 product, past issue 14's 2.5×. (b) is kept because: on Zen 4 .NET 10 reports
/// <c>AvxVnni.IsSupported == false</c> (the CPU has AVX512-VNNI, which .NET does not expose, not the VEX AVX-VNNI), so
/// (a) costs vpmaddubsw + vpmaddwd + add plus a sign flip (u8·s8 pairs of full-range bytes saturate at 16 bits) per 64
/// products and gains little; (b) adds no activation rounding (its result is the fp32 product over the dequantized
/// weights, which the quality targets of issue 14 need most), needs no scratch buffer nor a quantization pass over x per
/// call, and sums each output in the same order for a row alone as within a prompt. On a CPU where <c>AvxVnni</c> is
/// supported (vpdpbusd: one instruction per 32 products), (a) should be measured again.
/// </para>
/// <para>
/// That comparison was of rows one at a time. For products of many rows, where the arithmetic rather than the weights'
/// bytes bounds the time, <see cref="ForwardIntegers(ReadOnlySpan{float}, ReadOnlySpan{byte}, ReadOnlySpan{float}, Span{float}, int, int, int)"/>
/// (QuantizedMatMul.Integer.cs) is (a) as a tiled product: the activations rounded per block to int16 once per call, the
/// weights widened to int16 once per panel, <c>vpmaddwd</c> tiles. It is faster than this kernel from about 16 rows
/// (<see cref="IntegerProductMinimumRows"/>; QuantizedMultiRowBenchmarks in bench/Model.Bench), and 8-bit model
/// instances use it there unless <c>TransformerModel.IntegerProducts</c> is turned off.
/// </para>
/// <para>
/// Every output element is summed in one order on every path, for any row count and any thread count: per block a
/// fused multiply-add chain over its inputs in ascending order from zero, then <c>total = fma(blockSum, d, total)</c>
/// over the blocks in ascending order, then the bias added. The portable path does the same with
/// <see cref="MathF.FusedMultiplyAdd"/>, so all paths give the same bits.
/// </para>
/// </remarks>
public static unsafe partial class QuantizedMatMul
{
    /// <summary>Weights per block along the input dimension, each block with one scale.</summary>
    public const int BlockSize = 32;

    /// <summary>Output columns (rows of W) per panel.</summary>
    public const int PanelWidth = 64;

    private const int WeightBytes = BlockSize * PanelWidth;                 // 2048
    private const int RecordBytes = WeightBytes + PanelWidth * sizeof(ushort); // + 64 fp16 scales = 2176
    private const int TileRows = 6;        // rows per tile on the Vector512 path: 24 block sums in registers
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
        Span<sbyte> values = stackalloc sbyte[BlockSize];
        for (int o = 0; o < outF; o++)
        {
            int p = o / PanelWidth, c = o % PanelWidth;
            for (int b = 0; b < blocks; b++)
            {
                int k0 = b * BlockSize, kc = Math.Min(BlockSize, inF - k0);
                Half scale = QuantizeBlock(w.Slice(o * inF + k0, kc), values, o, k0);
                Span<byte> record = q.Slice((int)(((long)p * blocks + b) * RecordBytes), RecordBytes);
                for (int k = 0; k < kc; k++) record[k * PanelWidth + c] = (byte)values[k];
                BitConverter.TryWriteBytes(record.Slice(WeightBytes + c * sizeof(ushort)), BitConverter.HalfToUInt16Bits(scale));
            }
        }
    }

    /// <summary>
    /// Quantizes <paramref name="w"/> (<c>[outF, inF]</c>) with the arithmetic of <see cref="Quantize"/> into plain rows:
    /// <paramref name="q"/> <c>[outF, inF]</c> and one scale per row and block of 32 inputs in <paramref name="scales"/>
    /// <c>[outF, ⌈inF/32⌉]</c>, the form an 8-bit safetensors checkpoint stores (<c>I8</c> and <c>F16</c> tensors).
    /// </summary>
    /// <exception cref="ArgumentException">A weight is not finite or so large that its scale exceeds fp16's range.</exception>
    public static void QuantizeRows(ReadOnlySpan<float> w, int outF, int inF, Span<sbyte> q, Span<Half> scales)
    {
        SpanChecks.Length(w.Length, (long)outF * inF, nameof(w));
        SpanChecks.Length(q.Length, (long)outF * inF, nameof(q));
        SpanChecks.Length(scales.Length, (long)outF * Blocks(inF), nameof(scales));
        int blocks = Blocks(inF);
        for (int o = 0; o < outF; o++)
            for (int b = 0; b < blocks; b++)
            {
                int k0 = b * BlockSize, kc = Math.Min(BlockSize, inF - k0);
                scales[o * blocks + b] = QuantizeBlock(w.Slice(o * inF + k0, kc), q.Slice(o * inF + k0, kc), o, k0);
            }
    }

    /// <summary>The fp32 weights <c>q·d</c> of rows quantized by <see cref="QuantizeRows"/>, <c>[outF, inF]</c>.</summary>
    public static void DequantizeRows(ReadOnlySpan<sbyte> q, ReadOnlySpan<Half> scales, int outF, int inF, Span<float> w)
    {
        SpanChecks.Length(q.Length, (long)outF * inF, nameof(q));
        SpanChecks.Length(scales.Length, (long)outF * Blocks(inF), nameof(scales));
        SpanChecks.Length(w.Length, (long)outF * inF, nameof(w));
        int blocks = Blocks(inF);
        for (int o = 0; o < outF; o++)
            for (int b = 0; b < blocks; b++)
            {
                int k0 = b * BlockSize, kc = Math.Min(BlockSize, inF - k0);
                float d = (float)scales[o * blocks + b];
                for (int k = k0; k < k0 + kc; k++) w[o * inF + k] = q[o * inF + k] * d;
            }
    }

    /// <summary>
    /// Writes <paramref name="count"/> ≤ 64 rows in <see cref="QuantizeRows"/>' form (<paramref name="q"/>
    /// <c>[count, inF]</c>, <paramref name="scales"/> <c>[count, ⌈inF/32⌉]</c>) as one panel of <see cref="Quantize"/>'s
    /// form (<see cref="ByteCount"/>(64, inF) bytes, missing rows zero): an 8-bit checkpoint goes into an 8-bit instance
    /// without being widened to fp32 and quantized again, which gives the same bytes.
    /// </summary>
    internal static void WritePanel(ReadOnlySpan<sbyte> q, ReadOnlySpan<Half> scales, int count, int inF, Span<byte> panel)
    {
        int blocks = Blocks(inF);
        SpanChecks.Length(panel.Length, (long)blocks * RecordBytes, nameof(panel));
        panel.Clear();
        for (int c = 0; c < count; c++)
            for (int b = 0; b < blocks; b++)
            {
                int k0 = b * BlockSize, kc = Math.Min(BlockSize, inF - k0);
                Span<byte> record = panel.Slice(b * RecordBytes, RecordBytes);
                ReadOnlySpan<sbyte> row = q.Slice(c * inF + k0, kc);
                for (int k = 0; k < kc; k++) record[k * PanelWidth + c] = (byte)row[k];
                BitConverter.TryWriteBytes(record.Slice(WeightBytes + c * sizeof(ushort)), BitConverter.HalfToUInt16Bits(scales[c * blocks + b]));
            }
    }

    /// <summary>Scales per row of a <c>[.., inF]</c> matrix: one per block of <see cref="BlockSize"/> inputs.</summary>
    public static int BlocksPerRow(int inF) => Blocks(inF);

    // One block: d = the smallest fp16 at or above max|w|/127, q = round(w/d) to nearest, ties to even.
    private static Half QuantizeBlock(ReadOnlySpan<float> block, Span<sbyte> q, int row, int k0)
    {
        if (block.Length == BlockSize && Vector256.IsHardwareAccelerated && QuantizeWholeBlock256(block, q) is { } quick) return quick;
        float max = 0f;
        foreach (float v in block)
        {
            if (!float.IsFinite(v)) throw new ArgumentException($"w[{row}, {k0}..] holds {v}: only finite weights can be quantized", "w");
            max = Math.Max(max, Math.Abs(v));
        }
        Half scale = ScaleFor(max, row, k0);
        float d = (float)scale;
        for (int k = 0; k < block.Length; k++)
            q[k] = (sbyte)Math.Clamp(d == 0f ? 0f : MathF.Round(block[k] / d, MidpointRounding.ToEven), -127f, 127f);
        return scale;
    }

    // QuantizeBlock for a whole block of finite weights in four Vector256 (the same division and rounding lane by lane, so
    // the same bytes): loading an 8-bit instance quantizes every matrix, and the scalar loop took 20-25 ns a weight.
    // Null when a weight is not finite or the scale leaves fp16's range, for the scalar path to report.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Half? QuantizeWholeBlock256(ReadOnlySpan<float> block, Span<sbyte> q)
    {
        ref float w = ref MemoryMarshal.GetReference(block);
        Vector256<float> v0 = Vector256.LoadUnsafe(ref w), v1 = Vector256.LoadUnsafe(ref w, 8), v2 = Vector256.LoadUnsafe(ref w, 16), v3 = Vector256.LoadUnsafe(ref w, 24);
        Vector256<float> m = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
        Vector256<float> finite = Vector256.Create(float.MaxValue);
        if (!Vector256.LessThanOrEqualAll(Vector256.Abs(v0), finite) || !Vector256.LessThanOrEqualAll(Vector256.Abs(v1), finite)
            || !Vector256.LessThanOrEqualAll(Vector256.Abs(v2), finite) || !Vector256.LessThanOrEqualAll(Vector256.Abs(v3), finite))
            return null;
        Vector128<float> m4 = Vector128.Max(m.GetLower(), m.GetUpper());
        m4 = Vector128.Max(m4, Vector128.Shuffle(m4, Vector128.Create(2, 3, 0, 1)));
        float max = Vector128.Max(m4, Vector128.Shuffle(m4, Vector128.Create(1, 0, 3, 2))).ToScalar();
        float exact = max / 127f;
        Half scale = (Half)exact;
        if ((float)scale < exact) scale = BitConverter.UInt16BitsToHalf((ushort)(BitConverter.HalfToUInt16Bits(scale) + 1));
        if (!Half.IsFinite(scale)) return null;
        float d = (float)scale;
        if (d == 0f)
        {
            q.Slice(0, BlockSize).Clear();
            return scale;
        }
        Vector256<float> dv = Vector256.Create(d), lo = Vector256.Create(-127f), hi = Vector256.Create(127f);
        Vector256<int> i0 = Vector256.ConvertToInt32(Vector256.Clamp(Vector256.Round(v0 / dv), lo, hi));
        Vector256<int> i1 = Vector256.ConvertToInt32(Vector256.Clamp(Vector256.Round(v1 / dv), lo, hi));
        Vector256<int> i2 = Vector256.ConvertToInt32(Vector256.Clamp(Vector256.Round(v2 / dv), lo, hi));
        Vector256<int> i3 = Vector256.ConvertToInt32(Vector256.Clamp(Vector256.Round(v3 / dv), lo, hi));
        // Narrowing keeps each lane's low bits, in order; every lane is within [−127, 127], so nothing is lost.
        Vector256<sbyte> bytes = Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3));
        bytes.StoreUnsafe(ref MemoryMarshal.GetReference(q));
        return scale;
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

    /// <summary>
    /// True when the quantized form of a <c>[outF, inF]</c> matrix fits in the bytes of its fp32 form with every panel at
    /// or before the rows it is made from, as <see cref="QuantizeInPlace"/> needs: all but matrices of very few inputs
    /// (fewer than about 12) or of not quite one panel's rows.
    /// </summary>
    public static bool FitsInPlace(int outF, int inF) =>
        outF > 0 && inF > 0 && ByteCount(PanelWidth, inF) <= (long)PanelWidth * inF * sizeof(float)
        && ByteCount(outF, inF) <= (long)outF * inF * sizeof(float);

    /// <summary>
    /// Quantizes <paramref name="w"/> (<c>[outF, inF]</c>, PyTorch's layout) in place: afterwards its first
    /// <see cref="ByteCount"/> bytes hold what <see cref="Quantize"/> writes, and the rest is unused. Panels are made in
    /// ascending order, each from a copy of its rows, and every panel ends before the rows of the next one start
    /// (<see cref="FitsInPlace"/>), so nothing is read after it is overwritten. The weights are checked before anything is
    /// written: a refusal leaves them as they were. Allocates one buffer of 64·inF floats.
    /// </summary>
    /// <exception cref="ArgumentException">The matrix does not fit (<see cref="FitsInPlace"/>), or a weight is not finite or too large for an fp16 scale.</exception>
    public static void QuantizeInPlace(Span<float> w, int outF, int inF)
    {
        SpanChecks.Length(w.Length, (long)outF * inF, nameof(w));
        if (!FitsInPlace(outF, inF))
            throw new ArgumentException($"the 8-bit form of a [{outF}, {inF}] matrix ({ByteCount(outF, inF)} bytes) does not fit in place of its fp32 form", nameof(w));
        int bad = FirstUnquantizable(w);
        if (bad >= 0)
            throw new ArgumentException($"w[{bad / inF}, {bad % inF}] holds {w[bad]}: only finite weights whose block scale fits fp16 can be quantized", nameof(w));
        PanelsInPlace.Pack(w, outF, inF, (int)ByteCount(PanelWidth, inF), (rows, r, k, panel) => Quantize(rows, r, k, panel));
    }

    /// <summary>The index of the first weight that cannot be quantized (not finite, or a block scale beyond fp16), or −1.</summary>
    internal static int FirstUnquantizable(ReadOnlySpan<float> w)
    {
        // |w|/127 > fp16's largest (65504); NaN compares false, so it is caught by IsFinite. The test only grows with
        // |w|: when the largest magnitude (NaN if any is NaN) passes, every weight does, and one vectorized pass over
        // the matrix answers; the scalar scan runs only to find the weight that fails.
        float largest = (float)Half.MaxValue;
        if (w.IsEmpty) return -1;
        float max = System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(w);
        if (float.IsFinite(max) && Math.Abs(max) / 127f <= largest) return -1;
        for (int i = 0; i < w.Length; i++)
            if (!float.IsFinite(w[i]) || Math.Abs(w[i]) / 127f > largest) return i;
        return -1;
    }

    /// <summary>
    /// Undoes <see cref="QuantizeInPlace"/>: <paramref name="w"/> receives the fp32 weights <c>q·d</c> in PyTorch's layout,
    /// panels taken in descending order through a buffer of 64·inF floats (the only allocation), so each is read before
    /// the rows written after it reach its bytes.
    /// </summary>
    public static void DequantizeInPlace(Span<float> w, int outF, int inF)
    {
        SpanChecks.Length(w.Length, (long)outF * inF, nameof(w));
        if (!FitsInPlace(outF, inF))
            throw new ArgumentException($"a [{outF}, {inF}] matrix is never quantized in place", nameof(w));
        PanelsInPlace.Unpack(w, outF, inF, (int)ByteCount(PanelWidth, inF), (panel, r, k, rows) => Dequantize(panel, r, k, rows));
    }

    /// <summary>
    /// Row <paramref name="row"/> of the weights <paramref name="q"/> stands for, each <c>q·d</c> times
    /// <paramref name="scale"/>, into <paramref name="destination"/> (<c>inF</c> floats): an embedding lookup in a table
    /// that is also a quantized output head. Allocates nothing.
    /// </summary>
    public static void ReadRow(ReadOnlySpan<byte> q, int outF, int inF, int row, float scale, Span<float> destination)
    {
        SpanChecks.Length(q.Length, ByteCount(outF, inF), nameof(q));
        SpanChecks.Length(destination.Length, inF, nameof(destination));
        if ((uint)row >= (uint)outF) throw new ArgumentOutOfRangeException(nameof(row), row, $"a row of a matrix of {outF} rows");
        int blocks = Blocks(inF), p = row / PanelWidth, c = row % PanelWidth;
        for (int b = 0; b < blocks; b++)
        {
            int k0 = b * BlockSize, kc = Math.Min(BlockSize, inF - k0);
            ReadOnlySpan<byte> record = q.Slice((int)(((long)p * blocks + b) * RecordBytes), RecordBytes);
            float d = ScaleOf(record, c);
            for (int k = 0; k < kc; k++) destination[k0 + k] = (sbyte)record[k * PanelWidth + c] * d * scale;
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
        CheckProduct(x.Length, q.Length, bias.Length, y.Length, n, inF, outF);
        if (!Simd.IsSupported(path)) path = SimdPath.Portable;
        if (n == 0 || outF == 0) return;
        fixed (float* px = x, pb = bias, py = y)
        fixed (byte* pq = q)
        {
            var work = new Work { X = px, Q = pq, Bias = bias.IsEmpty ? null : pb, Y = py, N = n, InF = inF, OutF = outF, Panels = Panels(outF), Path = path };
            RunPanels(ref work, n, inF, outF);
        }
    }

    // The argument checks of both products.
    private static void CheckProduct(int xLength, int qLength, int biasLength, int yLength, int n, int inF, int outF)
    {
        SpanChecks.NonNegative(n, "n");
        SpanChecks.Length(qLength, ByteCount(outF, inF), "q");
        SpanChecks.Length(xLength, (long)n * inF, "x");
        SpanChecks.LengthOrEmpty(biasLength, outF, "bias");
        SpanChecks.Length(yLength, (long)n * outF, "y");
    }

    /// <summary>Work over ranges of panels, each panel's columns computed by one thread.</summary>
    private interface IPanelWork : IParallelWork
    {
        int Panels { get; }
        int Chunk { set; }
        void Run(int p0, int p1);
    }

    // Runs all of work's panels: on this thread, or in chunks of panels over the threads the product's size is worth.
    private static void RunPanels<TWork>(ref TWork work, int n, int inF, int outF) where TWork : unmanaged, IPanelWork
    {
        int panels = work.Panels;
        int threads = Parallelism.ThreadsFor(2L * n * inF * panels * PanelWidth, ByteCount(outF, inF), panels);
        if (threads == 1)
        {
            work.Run(0, panels);
            return;
        }
        int chunk = Math.Max(1, panels / (ItemsPerThread * threads));
        work.Chunk = chunk;
        WorkerPool.For(ref work, (panels + chunk - 1) / chunk, threads);
    }

    private struct Work : IPanelWork
    {
        public float* X, Bias, Y;
        public byte* Q;
        public int N, InF, OutF;
        public SimdPath Path;

        public int Panels { get; set; }
        public int Chunk { get; set; }

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
                {
                    // Tiles of 6 rows, then one of 4 and one of 2 for what is left (a step of several decoding
                    // sequences has a few rows): each widened weight serves every row of its tile.
                    for (; m + TileRows <= N; m += TileRows) RunTile<RowTile.Six>(X + (nint)m * InF, InF, panel, tile, bias, Y + (nint)m * OutF + j, OutF, cols);
                    if (N - m >= 4) { RunTile<RowTile.Four>(X + (nint)m * InF, InF, panel, tile, bias, Y + (nint)m * OutF + j, OutF, cols); m += 4; }
                    if (N - m >= 2) { RunTile<RowTile.Two>(X + (nint)m * InF, InF, panel, tile, bias, Y + (nint)m * OutF + j, OutF, cols); m += 2; }
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

    // One tile of TRows rows against one panel, then their outputs y[r·outF + 0..cols).
    private static void RunTile<TRows>(float* x, int inF, byte* panel, float* tile, float* bias, float* y, int outF, int cols) where TRows : struct, IRowTile
    {
        PanelRowsOf512<TRows>(x, inF, panel, tile);
        for (int r = 0; r < TRows.Rows; r++) Finish(tile + r * PanelWidth, bias, y + (nint)r * outF, cols);
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

    // TRows (2, 4 or 6) rows of x (row stride inF) against one panel: each weight vector is widened once for all of them
    // (the widening, vpmovsxbd + vcvtdq2ps, costs as much as two FMAs). Six rows' 24 block sums fill the registers, so
    // the running totals live in total[rows × 64] (L1) and are updated once per block, with the same operations per row as
    // PanelRowOf512. TRows is a constant in each instantiation: the rows past it are never touched.
    // Measured against the six-row tile: widening each block once into an L1 buffer of floats for all rows, then 6-row
    // tiles over that buffer, was slower (64 rows of 1536 → 576: 1.27 against 1.20 ms; 576 → 49152: 44.6 against 39.6 ms).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PanelRowsOf512<TRows>(float* x, int inF, byte* panel, float* total) where TRows : struct, IRowTile
    {
        int rows = TRows.Rows;
        for (int i = 0; i < rows * PanelWidth; i += 16) Vector512<float>.Zero.Store(total + i);
        for (int k0 = 0; k0 < inF; k0 += BlockSize, panel += RecordBytes)
        {
            int kc = Math.Min(BlockSize, inF - k0);
            Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
            Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
            Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
            Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
            Vector512<float> a40 = default, a41 = default, a42 = default, a43 = default;
            Vector512<float> a50 = default, a51 = default, a52 = default, a53 = default;
            float* xk = x + k0;
            for (int k = 0; k < kc; k++, xk++)
            {
                byte* q = panel + k * PanelWidth;
                Vector512<float> w0 = Weights512(q), w1 = Weights512(q + 16), w2 = Weights512(q + 32), w3 = Weights512(q + 48);
                Vector512<float> xv = Vector512.Create(xk[0]);
                a00 = Vector512.FusedMultiplyAdd(xv, w0, a00); a01 = Vector512.FusedMultiplyAdd(xv, w1, a01);
                a02 = Vector512.FusedMultiplyAdd(xv, w2, a02); a03 = Vector512.FusedMultiplyAdd(xv, w3, a03);
                xv = Vector512.Create(xk[inF]);
                a10 = Vector512.FusedMultiplyAdd(xv, w0, a10); a11 = Vector512.FusedMultiplyAdd(xv, w1, a11);
                a12 = Vector512.FusedMultiplyAdd(xv, w2, a12); a13 = Vector512.FusedMultiplyAdd(xv, w3, a13);
                if (rows > 2)
                {
                    xv = Vector512.Create(xk[2 * inF]);
                    a20 = Vector512.FusedMultiplyAdd(xv, w0, a20); a21 = Vector512.FusedMultiplyAdd(xv, w1, a21);
                    a22 = Vector512.FusedMultiplyAdd(xv, w2, a22); a23 = Vector512.FusedMultiplyAdd(xv, w3, a23);
                    xv = Vector512.Create(xk[3 * inF]);
                    a30 = Vector512.FusedMultiplyAdd(xv, w0, a30); a31 = Vector512.FusedMultiplyAdd(xv, w1, a31);
                    a32 = Vector512.FusedMultiplyAdd(xv, w2, a32); a33 = Vector512.FusedMultiplyAdd(xv, w3, a33);
                }
                if (rows > 4)
                {
                    xv = Vector512.Create(xk[4 * inF]);
                    a40 = Vector512.FusedMultiplyAdd(xv, w0, a40); a41 = Vector512.FusedMultiplyAdd(xv, w1, a41);
                    a42 = Vector512.FusedMultiplyAdd(xv, w2, a42); a43 = Vector512.FusedMultiplyAdd(xv, w3, a43);
                    xv = Vector512.Create(xk[5 * inF]);
                    a50 = Vector512.FusedMultiplyAdd(xv, w0, a50); a51 = Vector512.FusedMultiplyAdd(xv, w1, a51);
                    a52 = Vector512.FusedMultiplyAdd(xv, w2, a52); a53 = Vector512.FusedMultiplyAdd(xv, w3, a53);
                }
            }
            ushort* s = (ushort*)(panel + WeightBytes);
            AddScaled<TRows>(total, a00, a10, a20, a30, a40, a50, Scales512(s));
            AddScaled<TRows>(total + 16, a01, a11, a21, a31, a41, a51, Scales512(s + 16));
            AddScaled<TRows>(total + 32, a02, a12, a22, a32, a42, a52, Scales512(s + 32));
            AddScaled<TRows>(total + 48, a03, a13, a23, a33, a43, a53, Scales512(s + 48));
        }
    }

    // total[r·64 + 0..16) = fma(a_r, d, total[r·64 + 0..16)) for the tile's rows r.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddScaled<TRows>(float* total, Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3, Vector512<float> a4, Vector512<float> a5, Vector512<float> d)
        where TRows : struct, IRowTile
    {
        Vector512.FusedMultiplyAdd(a0, d, Vector512.Load(total)).Store(total);
        Vector512.FusedMultiplyAdd(a1, d, Vector512.Load(total + PanelWidth)).Store(total + PanelWidth);
        if (TRows.Rows > 2)
        {
            Vector512.FusedMultiplyAdd(a2, d, Vector512.Load(total + 2 * PanelWidth)).Store(total + 2 * PanelWidth);
            Vector512.FusedMultiplyAdd(a3, d, Vector512.Load(total + 3 * PanelWidth)).Store(total + 3 * PanelWidth);
        }
        if (TRows.Rows > 4)
        {
            Vector512.FusedMultiplyAdd(a4, d, Vector512.Load(total + 4 * PanelWidth)).Store(total + 4 * PanelWidth);
            Vector512.FusedMultiplyAdd(a5, d, Vector512.Load(total + 5 * PanelWidth)).Store(total + 5 * PanelWidth);
        }
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
