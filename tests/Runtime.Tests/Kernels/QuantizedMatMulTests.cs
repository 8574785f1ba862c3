using System;
using System.Collections.Generic;
using TransformerGen.Kernels;
using TransformerGen.Tests.Threading;
using Xunit;

namespace TransformerGen.Tests.Kernels;

/// <summary>The linear layer over 8-bit block-quantized weights (QuantizedMatMul.cs).</summary>
[Collection(ThreadSettingsCollection.Name)]
public class QuantizedMatMulTests
{
    // Inputs below one block, between blocks, SmolLM2's 576; outputs below one panel, just past one, two and three
    // panels; rows of 1, of the 3-row tile with remainders, and past 64.
    public static IEnumerable<object[]> Shapes() => new[]
    {
        new object[] { 1, 37, 1 }, new object[] { 7, 37, 131 }, new object[] { 1, 300, 65 }, new object[] { 67, 300, 193 },
        new object[] { 1, 576, 131 }, new object[] { 7, 576, 64 }, new object[] { 4, 5, 65 }, new object[] { 5, 300, 131 }, new object[] { 3, 37, 65 }, new object[] { 2, 32, 193 }, new object[] { 2, 0, 20 },
    };

    internal static IEnumerable<SimdPath> SupportedPaths()
    {
        foreach (SimdPath path in Enum.GetValues<SimdPath>())
            if (Simd.IsSupported(path)) yield return path;
    }

    internal static byte[] Quantized(float[] w, int outF, int inF)
    {
        var q = new byte[QuantizedMatMul.ByteCount(outF, inF)];
        QuantizedMatMul.Quantize(w, outF, inF, q);
        return q;
    }

    [Fact]
    public void The_size_is_34_bytes_per_32_weights_over_padded_panels_and_blocks()
    {
        Assert.Equal(2 * 2 * (2048 + 128), QuantizedMatMul.ByteCount(65, 37));
        Assert.Equal(9 * 18 * (2048 + 128), QuantizedMatMul.ByteCount(576, 576));
        Assert.Equal(0, QuantizedMatMul.ByteCount(0, 37));
    }

    [Theory]
    [InlineData(3, 96)]
    [InlineData(5, 77)]
    public void Rows_hold_the_scale_and_rounding_of_the_definition_bit_for_bit(int outF, int inF)
    {
        var rng = new Rng(9);
        float[] w = TestTensors.Normal(rng, outF * inF, 0.05f);
        // Row 1's first block: multiples of a scale that is exactly an fp16 (2⁻⁸) with halves between them, so
        // w/d lands exactly on .5 and the ties go to the even integer (2.5 → 2, 3.5 → 4, −0.5 → 0).
        for (int k = 0; k < 32; k++) w[inF + k] = (k - 15.5f) * 0.00390625f;
        w[inF + 31] = 127 * 0.00390625f;
        w[2 * inF + 3] = 0f;
        for (int k = 0; k < 32; k++) w[2 * inF + 32 + k] = 0f; // a zero block: scale 0, values 0
        var q = new sbyte[outF * inF];
        var scales = new Half[outF * QuantizedMatMul.BlocksPerRow(inF)];
        QuantizedMatMul.QuantizeRows(w, outF, inF, q, scales);
        int blocks = QuantizedMatMul.BlocksPerRow(inF);
        for (int o = 0; o < outF; o++)
            for (int b = 0; b < blocks; b++)
            {
                int k0 = b * 32, kc = Math.Min(32, inF - k0);
                float max = 0f;
                for (int k = 0; k < kc; k++) max = Math.Max(max, Math.Abs(w[o * inF + k0 + k]));
                // The smallest fp16 at or above max/127.
                Half d = (Half)(max / 127f);
                if ((float)d < max / 127f) d = BitConverter.UInt16BitsToHalf((ushort)(BitConverter.HalfToUInt16Bits(d) + 1));
                Assert.Equal(d, scales[o * blocks + b]);
                for (int k = 0; k < kc; k++)
                {
                    float x = (float)d == 0f ? 0f : w[o * inF + k0 + k] / (float)d;
                    float r = MathF.Round(x, MidpointRounding.ToEven);
                    Assert.True((sbyte)Math.Clamp(r, -127f, 127f) == q[o * inF + k0 + k], $"w[{o}, {k0 + k}] = {w[o * inF + k0 + k]}: q {q[o * inF + k0 + k]}, expected {r}");
                }
            }
        Assert.Equal(-16, q[inF]);      // −15.5 → −16 (even)
        Assert.Equal(0, q[inF + 15]);   // −0.5 → 0
        Assert.Equal(2, q[inF + 18]);   // 2.5 → 2
        Assert.Equal(4, q[inF + 19]);   // 3.5 → 4

        w[inF + 7] = float.NaN;
        Assert.Contains("w[1, 0..] holds NaN", Assert.Throws<ArgumentException>(() => QuantizedMatMul.QuantizeRows(w, outF, inF, q, scales)).Message);
    }

    [Theory]
    [InlineData(131, 37)]
    [InlineData(1, 300)]
    [InlineData(65, 576)]
    public void Dequantized_weights_are_within_half_a_step_of_the_originals(int outF, int inF)
    {
        var rng = new Rng(7);
        float[] w = TestTensors.Normal(rng, outF * inF, 0.05f);
        // A zero block, a block of tiny weights (fp16 subnormal scale) and one large outlier.
        for (int k = 0; k < Math.Min(32, inF); k++) { w[k] = 0f; if (outF > 1) w[inF + k] *= 1e-4f; }
        w[outF * inF / 2] = 3f;
        byte[] q = Quantized(w, outF, inF);
        var back = new float[outF * inF];
        QuantizedMatMul.Dequantize(q, outF, inF, back);
        for (int o = 0; o < outF; o++)
            for (int k0 = 0; k0 < inF; k0 += 32)
            {
                int kc = Math.Min(32, inF - k0);
                float max = 0f;
                for (int k = 0; k < kc; k++) max = Math.Max(max, Math.Abs(w[o * inF + k0 + k]));
                // The scale is max/127 rounded up to fp16 (relative step 2⁻¹⁰, absolute 2⁻²⁴ for subnormals).
                double step = max / 127.0 * (1 + 1.0 / 1024) + Math.Pow(2, -24);
                for (int k = 0; k < kc; k++)
                {
                    int i = o * inF + k0 + k;
                    Assert.True(Math.Abs(back[i] - w[i]) <= step / 2 + 1e-12, $"w[{o},{k0 + k}] = {w[i]}, dequantized {back[i]}, step {step}");
                }
                if (max == 0f) for (int k = 0; k < kc; k++) Assert.Equal(0f, back[o * inF + k0 + k]);
            }
        // Weights already on the grid quantize to themselves.
        var again = new float[outF * inF];
        QuantizedMatMul.Dequantize(Quantized(back, outF, inF), outF, inF, again);
        Assert.Equal(back, again);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_is_the_product_over_the_dequantized_weights_on_every_path(int n, int inF, int outF)
    {
        var rng = new Rng(8);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF, 0.1f), b = TestTensors.Normal(rng, outF);
        byte[] q = Quantized(w, outF, inF);
        var wq = new float[outF * inF];
        QuantizedMatMul.Dequantize(q, outF, inF, wq);
        // fp32 rounding of one FMA chain of at most 32 per block, one FMA per block and the bias: each step's relative
        // error is at most 2⁻²⁴ of the running sum, bounded by Σ|x·w| (+|bias|).
        int blocks = (inF + 31) / 32;
        double epsilon = (32 + blocks + 2) * Math.Pow(2, -24);
        float[]? portable = null;
        foreach (SimdPath path in SupportedPaths())
            foreach (bool withBias in new[] { true, false })
            {
                ReadOnlySpan<float> bias = withBias ? b : ReadOnlySpan<float>.Empty;
                var y = new float[n * outF];
                Array.Fill(y, float.NaN); // must be overwritten
                QuantizedMatMul.Forward(x, q, bias, y, n, inF, outF, path);
                for (int i = 0; i < n; i++)
                    for (int o = 0; o < outF; o++)
                    {
                        double exact = withBias ? b[o] : 0, magnitude = withBias ? Math.Abs(b[o]) : 0;
                        for (int k = 0; k < inF; k++)
                        {
                            exact += (double)x[i * inF + k] * wq[o * inF + k];
                            magnitude += Math.Abs((double)x[i * inF + k] * wq[o * inF + k]);
                        }
                        Assert.True(Math.Abs(y[i * outF + o] - exact) <= epsilon * magnitude + 1e-30,
                            $"{path} bias={withBias} y[{i},{o}] = {y[i * outF + o]}, exact {exact}");
                    }
                // Every path sums in the same order: the same bits as the portable loop.
                if (!withBias) continue;
                if (portable == null) { Assert.Equal(SimdPath.Portable, path); portable = y; }
                else ThreadSettings.AssertBitIdentical(portable, y, $"{path} against portable");
            }
    }

    [Fact]
    public void The_product_approximates_the_fp32_product_within_the_weight_rounding()
    {
        // What the format costs: |Σ x·(w − ŵ)| ≤ Σ |x|·step/2 per output.
        const int n = 3, inF = 576, outF = 131;
        var rng = new Rng(9);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF, 0.05f);
        var y = new float[n * outF];
        QuantizedMatMul.Forward(x, Quantized(w, outF, inF), default, y, n, inF, outF);
        for (int i = 0; i < n; i++)
            for (int o = 0; o < outF; o++)
            {
                double exact = 0, bound = 0;
                for (int k0 = 0; k0 < inF; k0 += 32)
                {
                    double max = 0;
                    for (int k = k0; k < k0 + 32; k++) max = Math.Max(max, Math.Abs(w[o * inF + k]));
                    for (int k = k0; k < k0 + 32; k++)
                    {
                        exact += (double)x[i * inF + k] * w[o * inF + k];
                        bound += Math.Abs(x[i * inF + k]) * max / 127 * (1 + 1.0 / 1024) / 2 + 1e-6 * Math.Abs(x[i * inF + k] * w[o * inF + k]);
                    }
                }
                Assert.True(Math.Abs(y[i * outF + o] - exact) <= bound, $"y[{i},{o}] = {y[i * outF + o]}, fp32 weights {exact}, bound {bound}");
            }
    }

    [Fact]
    public void A_row_gets_the_same_bits_alone_as_within_many_rows_and_on_any_thread_count()
    {
        const int n = 67, inF = 300, outF = 193;
        var rng = new Rng(10);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF), b = TestTensors.Normal(rng, outF);
        byte[] q = Quantized(w, outF, inF);
        foreach (SimdPath path in SupportedPaths())
        {
            var all = new float[n * outF];
            using (new ThreadSettings(1)) QuantizedMatMul.Forward(x, q, b, all, n, inF, outF, path);
            foreach (int threads in new[] { 1, 2 })
                using (new ThreadSettings(threads))
                {
                    var again = new float[n * outF];
                    QuantizedMatMul.Forward(x, q, b, again, n, inF, outF, path);
                    ThreadSettings.AssertBitIdentical(all, again, $"{path}: {n} rows on {threads} threads");
                    foreach (int i in new[] { 0, 4, n - 1 })
                    {
                        var one = new float[outF];
                        QuantizedMatMul.Forward(x.AsSpan(i * inF, inF), q, b, one, 1, inF, outF, path);
                        ThreadSettings.AssertBitIdentical(all.AsSpan(i * outF, outF), one, $"{path}: row {i} alone on {threads} threads");
                    }
                }
        }
    }

    [Fact]
    public void Arguments_are_checked()
    {
        var w = new float[2 * 3];
        byte[] q = Quantized(w, 2, 3);
        var x = new float[2 * 3];
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.Quantize(new float[5], 2, 3, q));
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.Quantize(w, 2, 3, new byte[q.Length - 1]));
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.Quantize([0f, float.NaN, 0f, 0f, 0f, 0f], 2, 3, q));
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.Quantize([0f, 1e8f, 0f, 0f, 0f, 0f], 2, 3, q)); // scale > 65504
        Assert.Throws<ArgumentOutOfRangeException>(() => QuantizedMatMul.ByteCount(-1, 3));
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.Dequantize(q, 2, 3, new float[5]));
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.Forward(new float[5], q, default, new float[4], 2, 3, 2));
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.Forward(x, q, new float[3], new float[4], 2, 3, 2));
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.Forward(x, q, default, new float[3], 2, 3, 2));
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.Forward(x, q.AsSpan(1), default, new float[4], 2, 3, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => QuantizedMatMul.Forward(x, q, default, new float[4], -1, 3, 2));
    }
}
