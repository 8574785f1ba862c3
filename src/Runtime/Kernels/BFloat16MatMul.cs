using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

/// <summary>
/// The linear layer over bf16 weights (the upper 16 bits of an fp32) in a panel layout: widened to fp32 in registers
/// by a 16-bit shift (or a mask) and multiplied in fp32, so a product is the fp32 product over the bf16-rounded weights.
/// </summary>
/// <remarks>
/// <para>
/// Layout. As the fp32 panels of MatMul.Packed.cs: the rows of <c>W [outF, inF]</c> are taken <see cref="PanelWidth"/>
/// at a time (the last panel padded with zero rows, so one kernel serves every shape) and each panel is stored as
/// <c>inF</c> lines of 64 bf16 values (128 bytes), line k holding <c>W[j + c, k]</c>. Within a line each 32-bit word
/// pairs column c (low half) with column c + 16 (high half) of the same 32 columns: a 512-bit load then gives two
/// vectors of 16 columns, one by <c>word &lt;&lt; 16</c> and one by <c>word &amp; 0xFFFF0000</c>, two cheap operations
/// where zero-extending 16-bit values first would need a shuffle per 16 weights.
/// </para>
/// <para>
/// Every output element is one fused multiply-add chain over the inputs in ascending order from zero, then the bias
/// added: the same on every path (the portable one with <see cref="MathF.FusedMultiplyAdd"/>), for any row count and
/// thread count, so all give the same bits.
/// </para>
/// </remarks>
public static unsafe class BFloat16MatMul
{
    /// <summary>Output columns (rows of W) per panel.</summary>
    public const int PanelWidth = 64;

    private const int TileRows = 6; // rows per register tile on the Vector512 path: 24 sums + 4 widened weights
    private const int ItemsPerThread = 2;

    /// <summary>bf16 values (16-bit words) of the panel form of a <c>[outF, inF]</c> matrix.</summary>
    public static long ElementCount(int outF, int inF)
    {
        SpanChecks.NonNegative(outF, nameof(outF));
        SpanChecks.NonNegative(inF, nameof(inF));
        return (long)Panels(outF) * PanelWidth * inF;
    }

    private static int Panels(int outF) => (outF + PanelWidth - 1) / PanelWidth;

    // Where column c of a panel sits within a line of 64 values: word l of the 32 columns' 16 words holds columns l (low
    // half, first in memory) and l + 16 (high half).
    private static int Position(int c) => (c & ~31) + ((c & 15) << 1) + ((c >> 4) & 1);

    /// <summary>The bf16 nearest to <paramref name="value"/>, ties to even (NaN stays a quiet NaN with its sign).</summary>
    public static ushort RoundToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1)) >> 16);
    }

    /// <summary>The fp32 value of a bf16.</summary>
    public static float ToSingle(ushort value) => BitConverter.UInt32BitsToSingle((uint)value << 16);

    /// <summary>
    /// Rounds <paramref name="w"/> (<c>[outF, inF]</c>, PyTorch's layout) to bf16, to nearest with ties to even, into
    /// the panel layout in <paramref name="packed"/>. Allocates nothing.
    /// </summary>
    /// <param name="w">The weight in fp32, rows of inputs.</param>
    /// <param name="outF">Rows (output features).</param>
    /// <param name="inF">Columns (input features).</param>
    /// <param name="packed">Receives <see cref="ElementCount"/> values.</param>
    public static void Convert(ReadOnlySpan<float> w, int outF, int inF, Span<ushort> packed)
    {
        SpanChecks.Length(w.Length, (long)outF * inF, nameof(w));
        SpanChecks.Length(packed.Length, ElementCount(outF, inF), nameof(packed));
        packed.Clear(); // the padding rows of the last panel
        for (int o = 0; o < outF; o++)
        {
            int line = o / PanelWidth * PanelWidth * inF, at = Position(o % PanelWidth);
            for (int k = 0; k < inF; k++) packed[line + k * PanelWidth + at] = RoundToBFloat16(w[o * inF + k]);
        }
    }

    /// <summary>The fp32 weights (exactly the bf16 values) of a matrix made by <see cref="Convert"/>, in PyTorch's layout.</summary>
    /// <param name="packed">The bf16 panels.</param>
    /// <param name="outF">Rows (output features).</param>
    /// <param name="inF">Columns (input features).</param>
    /// <param name="w">Receives <c>outF·inF</c> floats.</param>
    public static void ConvertBack(ReadOnlySpan<ushort> packed, int outF, int inF, Span<float> w)
    {
        SpanChecks.Length(packed.Length, ElementCount(outF, inF), nameof(packed));
        SpanChecks.Length(w.Length, (long)outF * inF, nameof(w));
        for (int o = 0; o < outF; o++)
        {
            int line = o / PanelWidth * PanelWidth * inF, at = Position(o % PanelWidth);
            for (int k = 0; k < inF; k++) w[o * inF + k] = ToSingle(packed[line + k * PanelWidth + at]);
        }
    }

    /// <summary>
    /// True when the bf16 panels of a <c>[outF, inF]</c> matrix fit in the bytes of its fp32 form (as
    /// <see cref="ConvertInPlace"/> needs): whenever it has at least 32 rows, the last panel's padding included.
    /// </summary>
    public static bool FitsInPlace(int outF, int inF) => outF > 0 && inF > 0 && ElementCount(outF, inF) <= 2L * outF * inF;

    /// <summary>
    /// Rounds <paramref name="w"/> (<c>[outF, inF]</c>, PyTorch's layout) to bf16 panels in place: afterwards its first
    /// <see cref="ElementCount"/> 16-bit words hold what <see cref="Convert"/> writes. Panels are made in ascending order,
    /// each from a copy of its rows and half their bytes, so none reaches rows not yet read. Allocates one buffer of
    /// 64·inF floats.
    /// </summary>
    /// <exception cref="ArgumentException">The matrix does not fit (<see cref="FitsInPlace"/>).</exception>
    public static void ConvertInPlace(Span<float> w, int outF, int inF)
    {
        SpanChecks.Length(w.Length, (long)outF * inF, nameof(w));
        if (!FitsInPlace(outF, inF))
            throw new ArgumentException($"the bf16 panels of a [{outF}, {inF}] matrix do not fit in place of its fp32 form", nameof(w));
        PanelsInPlace.Pack(w, outF, inF, PanelWidth * inF * sizeof(ushort),
            (rows, r, k, panel) => Convert(rows, r, k, MemoryMarshal.Cast<byte, ushort>(panel)));
    }

    /// <summary>
    /// Undoes <see cref="ConvertInPlace"/>: <paramref name="w"/> receives the bf16 values as fp32 in PyTorch's layout,
    /// panels taken in descending order through a buffer of 64·inF floats (the only allocation).
    /// </summary>
    public static void ConvertBackInPlace(Span<float> w, int outF, int inF)
    {
        SpanChecks.Length(w.Length, (long)outF * inF, nameof(w));
        if (!FitsInPlace(outF, inF))
            throw new ArgumentException($"a [{outF}, {inF}] matrix is never converted in place", nameof(w));
        PanelsInPlace.Unpack(w, outF, inF, PanelWidth * inF * sizeof(ushort),
            (panel, r, k, rows) => ConvertBack(MemoryMarshal.Cast<byte, ushort>(panel), r, k, rows));
    }

    /// <summary>
    /// Row <paramref name="row"/> of the bf16 weights in <paramref name="w"/>, each times <paramref name="scale"/>, into
    /// <paramref name="destination"/> (<c>inF</c> floats): an embedding lookup in a table that is also a bf16 output
    /// head. Allocates nothing.
    /// </summary>
    public static void ReadRow(ReadOnlySpan<ushort> w, int outF, int inF, int row, float scale, Span<float> destination)
    {
        SpanChecks.Length(w.Length, ElementCount(outF, inF), nameof(w));
        SpanChecks.Length(destination.Length, inF, nameof(destination));
        if ((uint)row >= (uint)outF) throw new ArgumentOutOfRangeException(nameof(row), row, $"a row of a matrix of {outF} rows");
        ReadOnlySpan<ushort> line = w.Slice(row / PanelWidth * PanelWidth * inF);
        for (int k = 0, at = Position(row % PanelWidth); k < inF; k++, at += PanelWidth) destination[k] = ToSingle(line[at]) * scale;
    }

    /// <summary>
    /// <c>y[n, outF] = x[n, inF] · Wᵀ + bias[outF]</c> with <c>W</c> the bf16 weights of <paramref name="w"/>
    /// (<see cref="Convert"/>), in fp32, summed in an order that does not depend on <paramref name="n"/>, the thread
    /// count or the instruction set. Allocates nothing.
    /// </summary>
    /// <param name="x">Input rows, <c>[n, inF]</c>.</param>
    /// <param name="w">The bf16 weight in panels.</param>
    /// <param name="bias">Bias <c>[outF]</c>, or empty for none.</param>
    /// <param name="y">Output rows, <c>[n, outF]</c>, overwritten.</param>
    /// <param name="n">Rows of <paramref name="x"/>.</param>
    /// <param name="inF">Input features.</param>
    /// <param name="outF">Output features.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<ushort> w, ReadOnlySpan<float> bias, Span<float> y, int n, int inF, int outF)
        => Forward(x, w, bias, y, n, inF, outF, Simd.Best);

    internal static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<ushort> w, ReadOnlySpan<float> bias, Span<float> y, int n, int inF, int outF, SimdPath path)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.Length(w.Length, ElementCount(outF, inF), nameof(w));
        SpanChecks.Length(x.Length, (long)n * inF, nameof(x));
        SpanChecks.LengthOrEmpty(bias.Length, outF, nameof(bias));
        SpanChecks.Length(y.Length, (long)n * outF, nameof(y));
        if (!Simd.IsSupported(path)) path = SimdPath.Portable;
        if (n == 0 || outF == 0) return;
        fixed (float* px = x, pb = bias, py = y)
        fixed (ushort* pw = w)
        {
            int panels = Panels(outF);
            var work = new Work { X = px, W = pw, Bias = bias.IsEmpty ? null : pb, Y = py, N = n, InF = inF, OutF = outF, Panels = panels, Path = path };
            int threads = Parallelism.ThreadsFor(2L * n * inF * panels * PanelWidth, (long)panels * PanelWidth * inF * sizeof(ushort), panels);
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
        public ushort* W;
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
            float* tile = stackalloc float[TileRows * PanelWidth];
            for (int p = p0; p < p1; p++)
            {
                ushort* panel = W + (nint)p * PanelWidth * InF;
                int j = p * PanelWidth, cols = Math.Min(PanelWidth, OutF - j);
                float* bias = Bias == null ? null : Bias + j;
                int m = 0;
                if (Path == SimdPath.Vector512)
                {
                    // Tiles of 6 rows, then one of 4 and one of 2 for what is left: each line widened once per tile.
                    for (; m + TileRows <= N; m += TileRows) RunTile<RowTile.Six>(X + (nint)m * InF, InF, panel, tile, bias, Y + (nint)m * OutF + j, OutF, cols);
                    if (N - m >= 4) { RunTile<RowTile.Four>(X + (nint)m * InF, InF, panel, tile, bias, Y + (nint)m * OutF + j, OutF, cols); m += 4; }
                    if (N - m >= 2) { RunTile<RowTile.Two>(X + (nint)m * InF, InF, panel, tile, bias, Y + (nint)m * OutF + j, OutF, cols); m += 2; }
                }
                for (; m < N; m++)
                {
                    float* xm = X + (nint)m * InF;
                    if (Path == SimdPath.Vector512) PanelRowOf512(xm, panel, InF, tile);
                    else if (Path == SimdPath.Vector256) PanelRowOf256(xm, panel, InF, tile);
                    else PanelRowPortable(xm, panel, InF, tile);
                    Finish(tile, bias, Y + (nint)m * OutF + j, cols);
                }
            }
        }
    }

    // y[c] = sum[c] + bias[c] for the panel's real columns.
    private static void Finish(float* sum, float* bias, float* y, int cols)
    {
        if (bias == null) for (int c = 0; c < cols; c++) y[c] = sum[c];
        else for (int c = 0; c < cols; c++) y[c] = sum[c] + bias[c];
    }

    private static Vector512<float> Low512(Vector512<uint> words) => Vector512.ShiftLeft(words, 16).AsSingle();

    private static Vector512<float> High512(Vector512<uint> words) => (words & Vector512.Create(0xFFFF0000u)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    private static void PanelRowOf512(float* x, ushort* panel, int inF, float* sum)
    {
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
        for (int k = 0; k < inF; k++)
        {
            uint* line = (uint*)(panel + (nint)k * PanelWidth);
            Vector512<uint> v0 = Vector512.Load(line), v1 = Vector512.Load(line + 16);
            Vector512<float> xv = Vector512.Create(x[k]);
            s0 = Vector512.FusedMultiplyAdd(xv, Low512(v0), s0);
            s1 = Vector512.FusedMultiplyAdd(xv, High512(v0), s1);
            s2 = Vector512.FusedMultiplyAdd(xv, Low512(v1), s2);
            s3 = Vector512.FusedMultiplyAdd(xv, High512(v1), s3);
        }
        s0.Store(sum);
        s1.Store(sum + 16);
        s2.Store(sum + 32);
        s3.Store(sum + 48);
    }

    // TRows (2, 4 or 6) rows (row stride inF) against one panel: each line widened once for all of them, the same
    // operations per row as PanelRowOf512. TRows is a constant in each instantiation: the rows past it are never touched.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PanelRowsOf512<TRows>(float* x, int inF, ushort* panel, float* sum) where TRows : struct, IRowTile
    {
        int rows = TRows.Rows;
        Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default;
        Vector512<float> s10 = default, s11 = default, s12 = default, s13 = default;
        Vector512<float> s20 = default, s21 = default, s22 = default, s23 = default;
        Vector512<float> s30 = default, s31 = default, s32 = default, s33 = default;
        Vector512<float> s40 = default, s41 = default, s42 = default, s43 = default;
        Vector512<float> s50 = default, s51 = default, s52 = default, s53 = default;
        for (int k = 0; k < inF; k++)
        {
            uint* line = (uint*)(panel + (nint)k * PanelWidth);
            Vector512<uint> v0 = Vector512.Load(line), v1 = Vector512.Load(line + 16);
            Vector512<float> w0 = Low512(v0), w1 = High512(v0), w2 = Low512(v1), w3 = High512(v1);
            Vector512<float> xv = Vector512.Create(x[k]);
            s00 = Vector512.FusedMultiplyAdd(xv, w0, s00); s01 = Vector512.FusedMultiplyAdd(xv, w1, s01);
            s02 = Vector512.FusedMultiplyAdd(xv, w2, s02); s03 = Vector512.FusedMultiplyAdd(xv, w3, s03);
            xv = Vector512.Create(x[inF + k]);
            s10 = Vector512.FusedMultiplyAdd(xv, w0, s10); s11 = Vector512.FusedMultiplyAdd(xv, w1, s11);
            s12 = Vector512.FusedMultiplyAdd(xv, w2, s12); s13 = Vector512.FusedMultiplyAdd(xv, w3, s13);
            if (rows > 2)
            {
                xv = Vector512.Create(x[2 * inF + k]);
                s20 = Vector512.FusedMultiplyAdd(xv, w0, s20); s21 = Vector512.FusedMultiplyAdd(xv, w1, s21);
                s22 = Vector512.FusedMultiplyAdd(xv, w2, s22); s23 = Vector512.FusedMultiplyAdd(xv, w3, s23);
                xv = Vector512.Create(x[3 * inF + k]);
                s30 = Vector512.FusedMultiplyAdd(xv, w0, s30); s31 = Vector512.FusedMultiplyAdd(xv, w1, s31);
                s32 = Vector512.FusedMultiplyAdd(xv, w2, s32); s33 = Vector512.FusedMultiplyAdd(xv, w3, s33);
            }
            if (rows > 4)
            {
                xv = Vector512.Create(x[4 * inF + k]);
                s40 = Vector512.FusedMultiplyAdd(xv, w0, s40); s41 = Vector512.FusedMultiplyAdd(xv, w1, s41);
                s42 = Vector512.FusedMultiplyAdd(xv, w2, s42); s43 = Vector512.FusedMultiplyAdd(xv, w3, s43);
                xv = Vector512.Create(x[5 * inF + k]);
                s50 = Vector512.FusedMultiplyAdd(xv, w0, s50); s51 = Vector512.FusedMultiplyAdd(xv, w1, s51);
                s52 = Vector512.FusedMultiplyAdd(xv, w2, s52); s53 = Vector512.FusedMultiplyAdd(xv, w3, s53);
            }
        }
        s00.Store(sum); s01.Store(sum + 16); s02.Store(sum + 32); s03.Store(sum + 48);
        sum += PanelWidth;
        s10.Store(sum); s11.Store(sum + 16); s12.Store(sum + 32); s13.Store(sum + 48);
        if (rows > 2)
        {
            sum += PanelWidth;
            s20.Store(sum); s21.Store(sum + 16); s22.Store(sum + 32); s23.Store(sum + 48);
            sum += PanelWidth;
            s30.Store(sum); s31.Store(sum + 16); s32.Store(sum + 32); s33.Store(sum + 48);
        }
        if (rows > 4)
        {
            sum += PanelWidth;
            s40.Store(sum); s41.Store(sum + 16); s42.Store(sum + 32); s43.Store(sum + 48);
            sum += PanelWidth;
            s50.Store(sum); s51.Store(sum + 16); s52.Store(sum + 32); s53.Store(sum + 48);
        }
    }

    // One tile of TRows rows against one panel, then their outputs y[r·outF + 0..cols).
    private static void RunTile<TRows>(float* x, int inF, ushort* panel, float* tile, float* bias, float* y, int outF, int cols) where TRows : struct, IRowTile
    {
        PanelRowsOf512<TRows>(x, inF, panel, tile);
        for (int r = 0; r < TRows.Rows; r++) Finish(tile + r * PanelWidth, bias, y + (nint)r * outF, cols);
    }

    private static Vector256<float> Low256(Vector256<uint> words) => Vector256.ShiftLeft(words, 16).AsSingle();

    private static Vector256<float> High256(Vector256<uint> words) => (words & Vector256.Create(0xFFFF0000u)).AsSingle();

    // AVX2: a 256-bit load of words l..l+7 holds columns l..l+7 (low halves) and l+16..l+23 (high halves).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PanelRowOf256(float* x, ushort* panel, int inF, float* sum)
    {
        Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
        for (int k = 0; k < inF; k++)
        {
            uint* line = (uint*)(panel + (nint)k * PanelWidth);
            Vector256<uint> u0 = Vector256.Load(line), u1 = Vector256.Load(line + 8), u2 = Vector256.Load(line + 16), u3 = Vector256.Load(line + 24);
            Vector256<float> xv = Vector256.Create(x[k]);
            s0 = Vector256.FusedMultiplyAdd(xv, Low256(u0), s0);  // columns 0-7
            s1 = Vector256.FusedMultiplyAdd(xv, Low256(u1), s1);  // 8-15
            s2 = Vector256.FusedMultiplyAdd(xv, High256(u0), s2); // 16-23
            s3 = Vector256.FusedMultiplyAdd(xv, High256(u1), s3); // 24-31
            s4 = Vector256.FusedMultiplyAdd(xv, Low256(u2), s4);  // 32-39
            s5 = Vector256.FusedMultiplyAdd(xv, Low256(u3), s5);  // 40-47
            s6 = Vector256.FusedMultiplyAdd(xv, High256(u2), s6); // 48-55
            s7 = Vector256.FusedMultiplyAdd(xv, High256(u3), s7); // 56-63
        }
        s0.Store(sum); s1.Store(sum + 8); s2.Store(sum + 16); s3.Store(sum + 24);
        s4.Store(sum + 32); s5.Store(sum + 40); s6.Store(sum + 48); s7.Store(sum + 56);
    }

    // Without SIMD: the same chain per column.
    private static void PanelRowPortable(float* x, ushort* panel, int inF, float* sum)
    {
        for (int c = 0; c < PanelWidth; c++)
        {
            int at = Position(c);
            float s = 0f;
            for (int k = 0; k < inF; k++) s = MathF.FusedMultiplyAdd(x[k], ToSingle(panel[(nint)k * PanelWidth + at]), s);
            sum[c] = s;
        }
    }
}
