using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

// The linear layer over weights kept in the panel layout, for inference instances.
//
// A weight W [outF, inF] in PyTorch's layout is rows of inputs; the packed product (PanelLoop512) reads it as panels of
// Wᵀ, 64 output columns wide, and copies each panel out of W, transposed, on every call. An instance that never trains
// can keep its weights in that form instead: the first whole 64-row blocks of W each become one panel
// panel[k, c] = W[j + c, k] (inF rows of 64 floats, contiguous), and the rows past the last whole block (outF mod 64)
// stay as they are at the end. The matrix keeps its size and place in the parameter buffer.
//
// Measured on this project's machines (AMD EPYC, Zen 4, one thread, 424 MB of 1536 × 576 weights, no cache reuse):
// a one-row product over panels streams the weights at 30-32 GB/s, above the 24-29 GB/s of a plain read loop, where
// the dot-product kernel over rows (Block1x4Of512) reads 15 GB/s and 22-24 GB/s with software prefetch: in the panel
// layout every load is the next 64 bytes of one stream and no horizontal sum is left at the end. At 128 rows and more
// the product runs the same 6 × 64 kernel as before without copying the panels (the copy was 24% of the
// all-MiniLM-L6-v2 encoder's time at batch 1).
public static unsafe partial class MatMul
{
    /// <summary>True where keeping weights in the panel layout pays: the packed kernels need AVX-512.</summary>
    internal static bool PanelLayoutPays => Simd.Best == SimdPath.Vector512;

    /// <summary>
    /// Rearranges <paramref name="w"/> (<c>[outF, inF]</c>, PyTorch's layout) in place into the panel layout that
    /// <see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int, bool)"/>
    /// reads with <c>packed: true</c>: each whole block of 64 rows becomes one panel <c>[inF, 64]</c> of its transpose,
    /// and the remaining <c>outF mod 64</c> rows stay rows. Allocates a scratch block of <c>64·inF</c> floats.
    /// </summary>
    /// <param name="w">The weight, overwritten with its packed form.</param>
    /// <param name="outF">Rows (output features).</param>
    /// <param name="inF">Columns (input features).</param>
    public static void PackPanels(Span<float> w, int outF, int inF) => Repanel(w, outF, inF, pack: true);

    /// <summary>Undoes <see cref="PackPanels"/>: <paramref name="w"/> is back in PyTorch's <c>[outF, inF]</c> layout, bit for bit.</summary>
    /// <param name="w">The packed weight, overwritten with its rows.</param>
    /// <param name="outF">Rows (output features).</param>
    /// <param name="inF">Columns (input features).</param>
    public static void UnpackPanels(Span<float> w, int outF, int inF) => Repanel(w, outF, inF, pack: false);

    // Transposes each whole 64-row block of w in place through a scratch copy: rows [64, inF] into a panel [inF, 64],
    // or back.
    private static void Repanel(Span<float> w, int outF, int inF, bool pack)
    {
        CheckMatrix(w.Length, outF, inF);
        var scratch = new float[PanelWidth * inF];
        int wide = outF - outF % PanelWidth;
        for (int j = 0; j < wide; j += PanelWidth)
        {
            Span<float> block = w.Slice(j * inF, PanelWidth * inF);
            block.CopyTo(scratch);
            for (int c = 0; c < PanelWidth; c++)
                for (int k = 0; k < inF; k++)
                {
                    int row = c * inF + k, panel = k * PanelWidth + c;
                    if (pack) block[panel] = scratch[row];
                    else block[row] = scratch[panel];
                }
        }
    }

    /// <summary>
    /// <c>y[n, outF] = x[n, inF] · w[outF, inF]ᵀ + bias[outF]</c> as <see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int)"/>;
    /// with <paramref name="packed"/>, <paramref name="w"/> is in the panel layout of <see cref="PackPanels"/>. Each output
    /// element of a packed product is summed in the same order whatever <paramref name="n"/> is and however many threads
    /// run, so a position gives the same bits alone (decoding) as within a prompt.
    /// </summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, int inF, int outF, bool packed)
        => Forward(x, w, bias, y, n, inF, outF, packed, Simd.Best);

    internal static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, int inF, int outF, bool packed, SimdPath path)
    {
        if (!packed)
        {
            Forward(x, w, bias, y, n, inF, outF, path);
            return;
        }
        SpanChecks.NonNegative(n, nameof(n));
        CheckMatrix(w.Length, outF, inF);
        SpanChecks.Length(x.Length, (long)n * inF, nameof(x));
        SpanChecks.LengthOrEmpty(bias.Length, outF, nameof(bias));
        SpanChecks.Length(y.Length, (long)n * outF, nameof(y));
        if (n == 0 || outF == 0) return;
        if (inF == 0)
        {
            if (bias.IsEmpty) y.Clear();
            else for (int i = 0; i < n; i++) bias.CopyTo(y.Slice(i * outF, outF));
            return;
        }

        fixed (float* px = x, pw = w, pb = bias, py = y)
        {
            float* b = bias.IsEmpty ? null : pb;
            int panels = outF / PanelWidth, wide = panels * PanelWidth;
            int threads = Parallelism.ThreadsFor(2L * n * inF * wide, (long)wide * inF * sizeof(float), panels);
            if (threads == 1) PackedPanels(px, pw, b, py, n, inF, outF, 0, panels, path);
            else
            {
                int chunk = Math.Max(1, panels / (ItemsPerThread * threads));
                var work = new PackedWork { X = px, W = pw, Bias = b, Y = py, N = n, InF = inF, OutF = outF, Panels = panels, Chunk = chunk, Path = path };
                WorkerPool.For(ref work, Count(panels, chunk), threads);
            }
            // The rows past the last whole panel are still rows: the dot-product kernels, one row of x at a time, whose
            // sums do not depend on how many rows come with it (the 4-row block reduces in another order).
            if (wide < outF)
                for (int i = 0; i < n; i++)
                    ForwardStrided(px + (nint)i * inF, inF, pw + (nint)wide * inF, inF, b == null ? null : b + wide, py + (nint)i * outF + wide, outF, 1, inF, outF - wide, path);
        }
    }

    private static void CheckMatrix(int length, int outF, int inF)
    {
        SpanChecks.NonNegative(outF, nameof(outF));
        SpanChecks.NonNegative(inF, nameof(inF));
        SpanChecks.Length(length, (long)outF * inF, "w");
    }

    private struct PackedWork : IParallelWork
    {
        public float* X, W, Bias, Y;
        public int N, InF, OutF, Panels, Chunk;
        public SimdPath Path;

        public readonly void Execute(int item)
        {
            int p0 = item * Chunk;
            PackedPanels(X, W, Bias, Y, N, InF, OutF, p0, Math.Min(Panels, p0 + Chunk), Path);
        }
    }

    // y[:, 64·p0 .. 64·p1) for panels p0..p1 of a packed weight, depth slice by depth slice: the first slice stores its
    // sums plus the bias, the later ones add theirs, as PanelLoop512 does.
    private static void PackedPanels(float* x, float* w, float* bias, float* y, int n, int inF, int outF, int p0, int p1, SimdPath path)
    {
        if (path != SimdPath.Vector512)
        {
            PackedPanelsPortable(x, w, bias, y, n, inF, outF, p0, p1);
            return;
        }
        if (n == 1)
        {
            for (int p = p0; p < p1; p++)
            {
                int j = p * PanelWidth;
                Panel1x64WholeDepth(x, w + (nint)j * inF, y + j, inF, bias == null ? null : bias + j);
            }
            return;
        }
        for (int k0 = 0; k0 < inF; k0 += PanelDepth)
        {
            int kc = Math.Min(PanelDepth, inF - k0);
            bool accumulate = k0 > 0;
            for (int p = p0; p < p1; p++)
            {
                int j = p * PanelWidth;
                float* panel = w + (nint)j * inF + (nint)k0 * PanelWidth;
                float* bj = accumulate || bias == null ? null : bias + j;
                for (int m = 0; m < n; m += PanelRows)
                    Panel6x64Of512(x + (nint)m * inF + k0, inF, 1, panel, y + (nint)m * outF + j, outF, kc, Math.Min(PanelRows, n - m), accumulate, bj);
            }
        }
    }

    // One row over a whole panel, panel after panel: the matrix is read as one forward stream (a depth slice at a time
    // over all panels, as above, jumps between panels every 64 KB). The sums are those of Panel6x64Of512's rows, in
    // the same order, kept in registers instead of y: per depth slice one accumulator per 16 columns, k ascending from
    // zero; the first slice's plus the bias, each later one added to the total.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier-0 SIMD code is ~30× slower; skip it
    private static void Panel1x64WholeDepth(float* x, float* panel, float* y, int inF, float* bias)
    {
        Vector512<float> t0 = default, t1 = default, t2 = default, t3 = default;
        for (int k0 = 0; k0 < inF; k0 += PanelDepth)
        {
            int k1 = Math.Min(inF, k0 + PanelDepth);
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int k = k0; k < k1; k++)
            {
                float* p = panel + (nint)k * PanelWidth;
                Vector512<float> av = Vector512.Create(x[k]);
                s0 = Vector512.FusedMultiplyAdd(av, Vector512.Load(p), s0);
                s1 = Vector512.FusedMultiplyAdd(av, Vector512.Load(p + 16), s1);
                s2 = Vector512.FusedMultiplyAdd(av, Vector512.Load(p + 32), s2);
                s3 = Vector512.FusedMultiplyAdd(av, Vector512.Load(p + 48), s3);
            }
            if (k0 > 0) (t0, t1, t2, t3) = (s0 + t0, s1 + t1, s2 + t2, s3 + t3);
            else if (bias != null) (t0, t1, t2, t3) = (s0 + Vector512.Load(bias), s1 + Vector512.Load(bias + 16), s2 + Vector512.Load(bias + 32), s3 + Vector512.Load(bias + 48));
            else (t0, t1, t2, t3) = (s0, s1, s2, s3);
        }
        StoreRow(y, t0, t1, t2, t3, null);
    }

    // Without AVX-512 (instances do not pack weights then, see TransformerModel; this keeps the layout usable anywhere):
    // the same sums, one scalar at a time, in the same order per depth slice.
    private static void PackedPanelsPortable(float* x, float* w, float* bias, float* y, int n, int inF, int outF, int p0, int p1)
    {
        for (int i = 0; i < n; i++)
            for (int p = p0; p < p1; p++)
            {
                int j = p * PanelWidth;
                for (int c = 0; c < PanelWidth; c++)
                {
                    float total = 0f;
                    for (int k0 = 0; k0 < inF; k0 += PanelDepth)
                    {
                        float sum = 0f;
                        int k1 = Math.Min(inF, k0 + PanelDepth);
                        for (int k = k0; k < k1; k++) sum = MathF.FusedMultiplyAdd(x[(nint)i * inF + k], w[(nint)j * inF + (nint)k * PanelWidth + c], sum);
                        total = k0 == 0 ? sum + (bias == null ? 0f : bias[j + c]) : total + sum;
                    }
                    y[(nint)i * outF + j + c] = total;
                }
            }
    }
}
