using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TransformerGen.Kernels;

// The integer product for many rows (option (a) of issue 14, as a tiled GEMM): see ForwardIntegers.
public static unsafe partial class QuantizedMatMul
{
    /// <summary>
    /// The fewest rows for which <see cref="ForwardIntegers(ReadOnlySpan{float}, ReadOnlySpan{byte}, ReadOnlySpan{float}, Span{float}, int, int, int)"/>
    /// is the faster product (bench/Model.Bench/QuantizedMatMulBenchmarks.cs); below it the weights' bytes, not the
    /// arithmetic, bound the time and <see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{byte}, ReadOnlySpan{float}, Span{float}, int, int, int)"/> is kept.
    /// </summary>
    public const int IntegerProductMinimumRows = 16;

    /// <summary>
    /// The largest magnitude of a quantized activation: 13 bits, so a block's integer sum (at most
    /// 32·4095·127 &lt; 2²⁴) converts to fp32 exactly.
    /// </summary>
    internal const int ActivationMax = 4095;

    private const int PairLineShorts = 2 * PanelWidth;                       // one pair of inputs for 64 columns: 128 int16
    private const int WideWeightBytes = BlockSize * PanelWidth * sizeof(short);   // 4096
    private const int WideRecordBytes = WideWeightBytes + PanelWidth * sizeof(float); // + 64 fp32 scales = 4352
    private const int TileRows512 = 3, TileRows256 = 6;

    // Rows per tile: 3 × 64 columns on AVX-512 (12 zmm sums and 12 totals), 6 × 16 on AVX2 (12 ymm sums); one row portable.
    private static int TileRowsOf(SimdPath path) => path switch { SimdPath.Vector512 => TileRows512, SimdPath.Vector256 => TileRows256, _ => 1 };

    // Per-thread scratch, grown to the largest product seen and then reused: the activations of a call (on the calling
    // thread) and one panel's widened weights (on each thread that computes panels). Pinned, so a pointer stays valid.
    [ThreadStatic] private static byte[]? t_activations;
    [ThreadStatic] private static byte[]? t_panel;

    /// <summary>
    /// <c>y[n, outF] = x[n, inF] · Wᵀ + bias[outF]</c> with <c>W</c> the weights that <paramref name="q"/> stands for, the
    /// activations rounded too and the products taken in integers: the faster form for products of many rows
    /// (<see cref="IntegerProductMinimumRows"/>).
    /// </summary>
    /// <remarks>
    /// <para>
    /// Each row of <paramref name="x"/> is quantized per block of 32 inputs, as the weights are: <c>d_x = max|x|/4095</c>
    /// (fp32) and <c>q_x = round(x/d_x)</c> (through <c>x·(4095/max|x|)</c>, ties to even) in [−4095, 4095], stored as
    /// int16. Per output and block the integer sum <c>Σ q_x·q_w</c> is exact in int32 and in its conversion to fp32;
    /// then <c>total = fma(sum, d_w·d_x, total)</c> over the blocks in ascending order, then the bias added. Every path
    /// (AVX-512BW, AVX2, portable) and every thread count gives the same bits, and a row gives the same bits in any
    /// product of this kernel; it differs from <see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{byte}, ReadOnlySpan{float}, Span{float}, int, int, int)"/>
    /// by the activations' rounding (relative 2⁻¹³ of a block's largest input, at most).
    /// </para>
    /// <para>
    /// Why int16 activations rather than Q8_0's int8. Without VNNI (on Zen 4 .NET 10 exposes neither AVX512-VNNI nor
    /// AVX-VNNI) the byte product is <c>vpmaddubsw</c>, u8 × s8, whose pair sums saturate at int16 unless one factor
    /// is made unsigned by a sign flip per weight vector and row, then <c>vpmaddwd</c> by ones to widen: four
    /// operations per 64 products, two of them multiplications. <c>vpmaddwd</c> on int16 pairs (the weights widened to
    /// int16 once per panel and call) is two operations per 64 products, both on the same multiply pipes: the same rate,
    /// no saturation to work around, and 13-bit rather than 8-bit activations for free. Measured (2026-12-06, Zen 4,
    /// one thread, QuantizedMultiRowBenchmarks with the variant beside this kernel, load average 4-10): the int8 variant
    /// (|q_x| as u8, the weight negated where q_x &lt; 0 by a select between the panel and its negation, widened once per
    /// call, vpmaddubsw + vpmaddwd by ones, tiles of 2 × 64) took 1.07 against 1.14 ms for 128 rows of 1536→384,
    /// 1.11 against 1.22 ms for 384→1536, 0.91 against 0.97 ms for 64 rows of 576→1536, 6.0 against 6.6 ms for 512 rows
    /// of 1536→576 (7-10% faster); a second run at load 3-9 put them within each other's spread. Its outputs differed
    /// from the fp32-activation product by 5.2e-3 of the largest, where this kernel's stay within the 1e-3 the benchmark's
    /// setup checks. The activations' 13 bits were judged worth more than those 7-10%. Taking the panels in runs of 2 or
    /// 4 blocks so that their widened weights stay in L1 across the row tiles gained nothing measurable.
    /// </para>
    /// <para>
    /// Kernel. The weights of a panel are widened once per call into per-thread scratch, each pair of inputs of a column
    /// side by side (<c>vpmaddwd</c> sums adjacent int16 products into one int32 lane) and the scales widened to fp32;
    /// then tiles of 3 rows × 64 columns keep 12 int32 block sums and 12 fp32 totals in zmm registers, the sums added into
    /// the totals once per block (AVX2: 6 rows × 16 columns, 12 ymm sums, the totals in L1). Allocates only its scratch, the first time a size is seen on
    /// a thread.
    /// </para>
    /// </remarks>
    /// <param name="x">Input rows, <c>[n, inF]</c>.</param>
    /// <param name="q">The quantized weight (<see cref="Quantize"/>).</param>
    /// <param name="bias">Bias <c>[outF]</c>, or empty for none.</param>
    /// <param name="y">Output rows, <c>[n, outF]</c>, overwritten.</param>
    /// <param name="n">Rows of <paramref name="x"/>.</param>
    /// <param name="inF">Input features.</param>
    /// <param name="outF">Output features.</param>
    public static void ForwardIntegers(ReadOnlySpan<float> x, ReadOnlySpan<byte> q, ReadOnlySpan<float> bias, Span<float> y, int n, int inF, int outF)
        => ForwardIntegers(x, q, bias, y, n, inF, outF, Simd.Best);

    internal static void ForwardIntegers(ReadOnlySpan<float> x, ReadOnlySpan<byte> q, ReadOnlySpan<float> bias, Span<float> y, int n, int inF, int outF, SimdPath path)
    {
        CheckProduct(x.Length, q.Length, bias.Length, y.Length, n, inF, outF);
        if (path == SimdPath.Vector512 && !Avx512BW.IsSupported) path = SimdPath.Vector256;
        if (!Simd.IsSupported(path)) path = SimdPath.Portable;
        if (n == 0 || outF == 0) return;
        int blocks = Blocks(inF), step = TileRowsOf(path), rows = (n + step - 1) / step * step;
        long stride = (long)blocks * BlockSize;
        byte* scratch = Scratch(ref t_activations, rows * stride * sizeof(short) + (long)rows * blocks * sizeof(float));
        short* xq = (short*)scratch;
        float* dx = (float*)(xq + rows * stride);
        fixed (float* px = x, pb = bias, py = y)
        fixed (byte* pq = q)
        {
            QuantizeActivations(px, n, rows, inF, xq, dx, path != SimdPath.Portable, path == SimdPath.Vector512);
            var work = new IntegerWork
            {
                X = xq, Dx = dx, Q = pq, Bias = bias.IsEmpty ? null : pb, Y = py,
                N = n, Rows = rows, Blocks = blocks, OutF = outF, Panels = Panels(outF), Path = path,
            };
            RunPanels(ref work, n, inF, outF);
        }
    }

    // A 64-byte aligned pointer to at least `bytes` of this thread's buffer (a pinned array, never moved).
    private static byte* Scratch(ref byte[]? buffer, long bytes)
    {
        if (buffer == null || buffer.Length < bytes + 64)
            buffer = GC.AllocateUninitializedArray<byte>(checked((int)(bytes + 64)), pinned: true);
        nint at = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
        return (byte*)((at + 63) & ~(nint)63);
    }

    private struct IntegerWork : IPanelWork
    {
        public short* X;
        public float* Dx, Bias, Y;
        public byte* Q;
        public int N, Rows, Blocks, OutF;
        public SimdPath Path;

        public int Panels { get; set; }
        public int Chunk { get; set; }

        public readonly void Execute(int item)
        {
            int p0 = item * Chunk;
            Run(p0, Math.Min(Panels, p0 + Chunk));
        }

        // Panels p0..p1, every row (padding rows of the scratch computed and dropped).
        public readonly void Run(int p0, int p1)
        {
            long panelBytes = (long)Blocks * RecordBytes, stride = (long)Blocks * BlockSize;
            float* tile = stackalloc float[TileRows256 * PanelWidth];
            byte* wide = Path == SimdPath.Portable ? null : Scratch(ref t_panel, (long)Blocks * WideRecordBytes);
            for (int p = p0; p < p1; p++)
            {
                byte* panel = Q + p * panelBytes;
                int j = p * PanelWidth, cols = Math.Min(PanelWidth, OutF - j);
                float* bias = Bias == null ? null : Bias + j;
                if (Path == SimdPath.Portable)
                {
                    for (int i = 0; i < N; i++)
                    {
                        IntegerRowPortable(X + i * stride, Dx + (nint)i * Blocks, panel, Blocks, tile);
                        Finish(tile, bias, Y + (nint)i * OutF + j, cols);
                    }
                    continue;
                }
                WidenPanel(panel, Blocks, wide, Path == SimdPath.Vector512);
                int step = TileRowsOf(Path);
                for (int m = 0; m < Rows; m += step)
                {
                    if (Path == SimdPath.Vector512) IntegerTileOf512(X + m * stride, (int)stride, Dx + (nint)m * Blocks, Blocks, wide, tile);
                    else IntegerTileOf256(X + m * stride, (int)stride, Dx + (nint)m * Blocks, Blocks, wide, tile);
                    for (int r = 0; r < step && m + r < N; r++) Finish(tile + r * PanelWidth, bias, Y + (nint)(m + r) * OutF + j, cols);
                }
            }
        }
    }

    // Rows 0..n of x into int16 blocks (row stride blocks·32, the last block padded with zeros) and their fp32 scales;
    // rows n..rows are zeros with scale 0. A block with a NaN or an infinity gets the scale NaN, so its outputs are NaN.
    // The SIMD form does the same operations lane by lane: an exact max, one division for each of d and 4095/max, one
    // rounded product per input; so the same int16 values on every path.
    private static void QuantizeActivations(float* x, int n, int rows, int inF, short* xq, float* dx, bool simd, bool wide512)
    {
        int blocks = Blocks(inF);
        long stride = (long)blocks * BlockSize;
        new Span<short>(xq + n * stride, (int)((rows - n) * stride)).Clear();
        new Span<float>(dx + (nint)n * blocks, (rows - n) * blocks).Clear();
        for (int i = 0; i < n; i++)
            for (int b = 0; b < blocks; b++)
            {
                int k0 = b * BlockSize, kc = Math.Min(BlockSize, inF - k0);
                float* src = x + (nint)i * inF + k0;
                short* dst = xq + i * stride + k0;
                if (wide512 && kc == BlockSize) dx[(nint)i * blocks + b] = QuantizeActivationBlock512(src, dst);
                else if (simd && kc == BlockSize && Vector256.IsHardwareAccelerated) dx[(nint)i * blocks + b] = QuantizeActivationBlock256(src, dst);
                else dx[(nint)i * blocks + b] = QuantizeActivationBlock(src, kc, dst);
            }
    }

    private static float QuantizeActivationBlock(float* x, int count, short* q)
    {
        float max = 0f;
        bool finite = true;
        for (int k = 0; k < count; k++)
        {
            finite &= float.IsFinite(x[k]);
            max = Math.Max(max, Math.Abs(x[k]));
        }
        new Span<short>(q, BlockSize).Clear();
        if (!finite) return float.NaN;
        if (max == 0f) return 0f;
        float inverse = ActivationMax / max;
        for (int k = 0; k < count; k++) q[k] = (short)MathF.Round(x[k] * inverse, MidpointRounding.ToEven);
        return max / ActivationMax;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float QuantizeActivationBlock256(float* x, short* q)
    {
        Vector256<float> v0 = Vector256.Load(x), v1 = Vector256.Load(x + 8), v2 = Vector256.Load(x + 16), v3 = Vector256.Load(x + 24);
        Vector256<float> a0 = Vector256.Abs(v0), a1 = Vector256.Abs(v1), a2 = Vector256.Abs(v2), a3 = Vector256.Abs(v3);
        Vector256<float> largest = Vector256.Create(float.MaxValue);
        if (!Vector256.LessThanOrEqualAll(a0, largest) || !Vector256.LessThanOrEqualAll(a1, largest)
            || !Vector256.LessThanOrEqualAll(a2, largest) || !Vector256.LessThanOrEqualAll(a3, largest))
        {
            Vector256<short>.Zero.Store(q);
            Vector256<short>.Zero.Store(q + 16);
            return float.NaN;
        }
        Vector256<float> m = Vector256.Max(Vector256.Max(a0, a1), Vector256.Max(a2, a3));
        Vector128<float> m4 = Vector128.Max(m.GetLower(), m.GetUpper());
        m4 = Vector128.Max(m4, Vector128.Shuffle(m4, Vector128.Create(2, 3, 0, 1)));
        float max = Vector128.Max(m4, Vector128.Shuffle(m4, Vector128.Create(1, 0, 3, 2))).ToScalar();
        if (max == 0f)
        {
            Vector256<short>.Zero.Store(q);
            Vector256<short>.Zero.Store(q + 16);
            return 0f;
        }
        Vector256<float> inverse = Vector256.Create(ActivationMax / max);
        // |x·inverse| ≤ 4095 up to one rounding, so the rounded values fit int16 and narrowing keeps them.
        Vector256<int> i0 = Vector256.ConvertToInt32(Vector256.Round(v0 * inverse)), i1 = Vector256.ConvertToInt32(Vector256.Round(v1 * inverse));
        Vector256<int> i2 = Vector256.ConvertToInt32(Vector256.Round(v2 * inverse)), i3 = Vector256.ConvertToInt32(Vector256.Round(v3 * inverse));
        Vector256.Narrow(i0, i1).Store(q);
        Vector256.Narrow(i2, i3).Store(q + 16);
        return max / ActivationMax;
    }

    // QuantizeActivationBlock256 in two Vector512 (the same operations lane by lane, so the same values).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float QuantizeActivationBlock512(float* x, short* q)
    {
        Vector512<float> v0 = Vector512.Load(x), v1 = Vector512.Load(x + 16);
        Vector512<float> a0 = Vector512.Abs(v0), a1 = Vector512.Abs(v1);
        Vector512<float> largest = Vector512.Create(float.MaxValue);
        if (!Vector512.LessThanOrEqualAll(a0, largest) || !Vector512.LessThanOrEqualAll(a1, largest))
        {
            Vector512<short>.Zero.Store(q);
            return float.NaN;
        }
        Vector512<float> m = Vector512.Max(a0, a1);
        Vector256<float> m8 = Vector256.Max(m.GetLower(), m.GetUpper());
        Vector128<float> m4 = Vector128.Max(m8.GetLower(), m8.GetUpper());
        m4 = Vector128.Max(m4, Vector128.Shuffle(m4, Vector128.Create(2, 3, 0, 1)));
        float max = Vector128.Max(m4, Vector128.Shuffle(m4, Vector128.Create(1, 0, 3, 2))).ToScalar();
        if (max == 0f)
        {
            Vector512<short>.Zero.Store(q);
            return 0f;
        }
        Vector512<float> inverse = Vector512.Create(ActivationMax / max);
        Vector512.Narrow(Vector512.ConvertToInt32(Vector512.Round(v0 * inverse)), Vector512.ConvertToInt32(Vector512.Round(v1 * inverse))).Store(q);
        return max / ActivationMax;
    }

    // One panel's records into the wide form: per block, per pair of inputs (2t, 2t+1), 64 columns of two int16
    // (w[2t, c], w[2t+1, c]), then the 64 scales as fp32. On AVX-512 this and the activations' rounding take 512-bit
    // vectors: 0.5-3.5% faster products than their AVX2 forms at MiniLM's shapes (one run at load 1.3-2).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WidenPanel(byte* panel, int blocks, byte* wide, bool avx512)
    {
        Vector256<float> fix = Vector256.Create(HalfExponentFixBits).AsSingle();
        // Quadwords of two unpacked halves, in column order: 16 columns from lanes 0-1 (or 2-3) of each.
        Vector512<long> first = Vector512.Create(0L, 1, 8, 9, 2, 3, 10, 11), second = Vector512.Create(4L, 5, 12, 13, 6, 7, 14, 15);
        for (int b = 0; b < blocks; b++, panel += RecordBytes, wide += WideRecordBytes)
        {
            short* w = (short*)wide;
            for (int t = 0; t < BlockSize / 2; t++, w += PairLineShorts)
            {
                sbyte* even = (sbyte*)panel + 2 * t * PanelWidth, odd = even + PanelWidth;
                if (avx512)
                {
                    for (int c = 0; c < PanelWidth; c += 32)
                    {
                        Vector512<short> e = Avx512BW.ConvertToVector512Int16(Vector256.Load(even + c)), o = Avx512BW.ConvertToVector512Int16(Vector256.Load(odd + c));
                        // Per 128-bit lane of 8 columns: low = its first 4 columns' pairs, high = its last 4.
                        Vector512<long> low = Avx512BW.UnpackLow(e, o).AsInt64(), high = Avx512BW.UnpackHigh(e, o).AsInt64();
                        Avx512F.PermuteVar8x64x2(low, first, high).AsInt16().Store(w + 2 * c);
                        Avx512F.PermuteVar8x64x2(low, second, high).AsInt16().Store(w + 2 * c + 32);
                    }
                    continue;
                }
                for (int c = 0; c < PanelWidth; c += 16)
                {
                    Vector256<short> e = Avx2.ConvertToVector256Int16(Vector128.Load(even + c)), o = Avx2.ConvertToVector256Int16(Vector128.Load(odd + c));
                    // Unpacking works within 128-bit lanes: low = columns c..c+3 | c+8..c+11, high = c+4..c+7 | c+12..c+15.
                    Vector256<short> low = Avx2.UnpackLow(e, o), high = Avx2.UnpackHigh(e, o);
                    Avx2.Permute2x128(low, high, 0x20).Store(w + 2 * c);
                    Avx2.Permute2x128(low, high, 0x31).Store(w + 2 * c + 16);
                }
            }
            ushort* s = (ushort*)(panel + WeightBytes);
            float* scales = (float*)(wide + WideWeightBytes);
            for (int c = 0; c < PanelWidth; c += 8) Scales256(s + c, fix).Store(scales + c);
        }
    }

    // Three rows of quantized x (row stride `stride` int16, scales dx with row stride `blocks`) against one widened
    // panel: total[3 × 64] = the rows' fp32 totals (without bias). Per block, 12 int32 sums in registers, each lane the
    // sum over the block of one row and column; then total = fma(sum, d_w·d_x, total), the 12 totals in registers too.
    // Measured against six rows with the totals in L1 (24 sums in registers, the totals loaded and stored once per
    // block): 3-6% faster at MiniLM's and SmolLM2's shapes, one run at load 5-9.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void IntegerTileOf512(short* x, int stride, float* dx, int blocks, byte* wide, float* total)
    {
        Vector512<float> t00 = default, t01 = default, t02 = default, t03 = default;
        Vector512<float> t10 = default, t11 = default, t12 = default, t13 = default;
        Vector512<float> t20 = default, t21 = default, t22 = default, t23 = default;
        int* x0 = (int*)x, x1 = (int*)(x + stride), x2 = (int*)(x + 2 * stride);
        for (int b = 0; b < blocks; b++, wide += WideRecordBytes)
        {
            Vector512<int> a00 = default, a01 = default, a02 = default, a03 = default;
            Vector512<int> a10 = default, a11 = default, a12 = default, a13 = default;
            Vector512<int> a20 = default, a21 = default, a22 = default, a23 = default;
            short* w = (short*)wide;
            for (int t = 0; t < BlockSize / 2; t++, w += PairLineShorts)
            {
                Vector512<short> w0 = Vector512.Load(w), w1 = Vector512.Load(w + 32), w2 = Vector512.Load(w + 64), w3 = Vector512.Load(w + 96);
                Vector512<short> xv = Vector512.Create(x0[t]).AsInt16();
                a00 += Avx512BW.MultiplyAddAdjacent(xv, w0); a01 += Avx512BW.MultiplyAddAdjacent(xv, w1);
                a02 += Avx512BW.MultiplyAddAdjacent(xv, w2); a03 += Avx512BW.MultiplyAddAdjacent(xv, w3);
                xv = Vector512.Create(x1[t]).AsInt16();
                a10 += Avx512BW.MultiplyAddAdjacent(xv, w0); a11 += Avx512BW.MultiplyAddAdjacent(xv, w1);
                a12 += Avx512BW.MultiplyAddAdjacent(xv, w2); a13 += Avx512BW.MultiplyAddAdjacent(xv, w3);
                xv = Vector512.Create(x2[t]).AsInt16();
                a20 += Avx512BW.MultiplyAddAdjacent(xv, w0); a21 += Avx512BW.MultiplyAddAdjacent(xv, w1);
                a22 += Avx512BW.MultiplyAddAdjacent(xv, w2); a23 += Avx512BW.MultiplyAddAdjacent(xv, w3);
            }
            x0 += BlockSize / 2; x1 += BlockSize / 2; x2 += BlockSize / 2;
            float* s = (float*)(wide + WideWeightBytes);
            Vector512<float> d = Vector512.Create(dx[b]);
            t00 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(a00), Vector512.Load(s) * d, t00);
            t01 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(a01), Vector512.Load(s + 16) * d, t01);
            t02 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(a02), Vector512.Load(s + 32) * d, t02);
            t03 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(a03), Vector512.Load(s + 48) * d, t03);
            d = Vector512.Create(dx[blocks + b]);
            t10 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(a10), Vector512.Load(s) * d, t10);
            t11 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(a11), Vector512.Load(s + 16) * d, t11);
            t12 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(a12), Vector512.Load(s + 32) * d, t12);
            t13 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(a13), Vector512.Load(s + 48) * d, t13);
            d = Vector512.Create(dx[2 * blocks + b]);
            t20 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(a20), Vector512.Load(s) * d, t20);
            t21 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(a21), Vector512.Load(s + 16) * d, t21);
            t22 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(a22), Vector512.Load(s + 32) * d, t22);
            t23 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(a23), Vector512.Load(s + 48) * d, t23);
        }
        t00.Store(total); t01.Store(total + 16); t02.Store(total + 32); t03.Store(total + 48);
        t10.Store(total + 64); t11.Store(total + 80); t12.Store(total + 96); t13.Store(total + 112);
        t20.Store(total + 128); t21.Store(total + 144); t22.Store(total + 160); t23.Store(total + 176);
    }

    // AVX2: six rows in four quarters of 16 columns (12 int32 sums in the 16 ymm registers), the totals in L1.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void IntegerTileOf256(short* x, int stride, float* dx, int blocks, byte* wide, float* total)
    {
        for (int h = 0; h < PanelWidth; h += 16)
        {
            for (int r = 0; r < TileRows256; r++)
            {
                Vector256<float>.Zero.Store(total + r * PanelWidth + h);
                Vector256<float>.Zero.Store(total + r * PanelWidth + h + 8);
            }
            int* x0 = (int*)x, x1 = (int*)(x + stride), x2 = (int*)(x + 2 * stride);
            int* x3 = (int*)(x + 3 * stride), x4 = (int*)(x + 4 * stride), x5 = (int*)(x + 5 * stride);
            byte* record = wide;
            for (int b = 0; b < blocks; b++, record += WideRecordBytes)
            {
                Vector256<int> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default;
                Vector256<int> a30 = default, a31 = default, a40 = default, a41 = default, a50 = default, a51 = default;
                short* w = (short*)record + 2 * h;
                for (int t = 0; t < BlockSize / 2; t++, w += PairLineShorts)
                {
                    Vector256<short> w0 = Vector256.Load(w), w1 = Vector256.Load(w + 16);
                    Vector256<short> xv = Vector256.Create(x0[t]).AsInt16();
                    a00 += Avx2.MultiplyAddAdjacent(xv, w0); a01 += Avx2.MultiplyAddAdjacent(xv, w1);
                    xv = Vector256.Create(x1[t]).AsInt16();
                    a10 += Avx2.MultiplyAddAdjacent(xv, w0); a11 += Avx2.MultiplyAddAdjacent(xv, w1);
                    xv = Vector256.Create(x2[t]).AsInt16();
                    a20 += Avx2.MultiplyAddAdjacent(xv, w0); a21 += Avx2.MultiplyAddAdjacent(xv, w1);
                    xv = Vector256.Create(x3[t]).AsInt16();
                    a30 += Avx2.MultiplyAddAdjacent(xv, w0); a31 += Avx2.MultiplyAddAdjacent(xv, w1);
                    xv = Vector256.Create(x4[t]).AsInt16();
                    a40 += Avx2.MultiplyAddAdjacent(xv, w0); a41 += Avx2.MultiplyAddAdjacent(xv, w1);
                    xv = Vector256.Create(x5[t]).AsInt16();
                    a50 += Avx2.MultiplyAddAdjacent(xv, w0); a51 += Avx2.MultiplyAddAdjacent(xv, w1);
                }
                x0 += BlockSize / 2; x1 += BlockSize / 2; x2 += BlockSize / 2; x3 += BlockSize / 2; x4 += BlockSize / 2; x5 += BlockSize / 2;
                float* s = (float*)(record + WideWeightBytes) + h;
                AddBlock256(total + h, a00, a01, s, dx[b]);
                AddBlock256(total + PanelWidth + h, a10, a11, s, dx[blocks + b]);
                AddBlock256(total + 2 * PanelWidth + h, a20, a21, s, dx[2 * blocks + b]);
                AddBlock256(total + 3 * PanelWidth + h, a30, a31, s, dx[3 * blocks + b]);
                AddBlock256(total + 4 * PanelWidth + h, a40, a41, s, dx[4 * blocks + b]);
                AddBlock256(total + 5 * PanelWidth + h, a50, a51, s, dx[5 * blocks + b]);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddBlock256(float* total, Vector256<int> a0, Vector256<int> a1, float* s, float d)
    {
        Vector256<float> dv = Vector256.Create(d);
        Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(a0), Vector256.Load(s) * dv, Vector256.Load(total)).Store(total);
        Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(a1), Vector256.Load(s + 8) * dv, Vector256.Load(total + 8)).Store(total + 8);
    }

    // Without SIMD: one row against a panel's records as stored, the same integer sums and the same fp32 steps.
    private static void IntegerRowPortable(short* x, float* dx, byte* panel, int blocks, float* total)
    {
        for (int c = 0; c < PanelWidth; c++)
        {
            float t = 0f;
            byte* record = panel;
            for (int b = 0; b < blocks; b++, record += RecordBytes)
            {
                int sum = 0;
                for (int k = 0; k < BlockSize; k++) sum += x[b * BlockSize + k] * (sbyte)record[k * PanelWidth + c];
                float d = (float)BitConverter.UInt16BitsToHalf(((ushort*)(record + WeightBytes))[c]);
                t = MathF.FusedMultiplyAdd(sum, d * dx[b], t);
            }
            total[c] = t;
        }
    }
}
