using System;
using System.Collections.Generic;
using TransformerGen.Kernels;
using TransformerGen.Tests.Threading;
using Xunit;

namespace TransformerGen.Tests.Kernels;

/// <summary>The integer product of many rows over 8-bit weights (QuantizedMatMul.Integer.cs).</summary>
[Collection(ThreadSettingsCollection.Name)]
public class QuantizedMatMulIntegerTests
{
    // Rows: one, fewer than a tile, tiles with 1 and 5 rows left over, past 64. Inputs: below one block, between blocks,
    // SmolLM2's 576. Outputs: below one panel, just past one and two panels, a whole panel.
    public static IEnumerable<object[]> Shapes() => new[]
    {
        new object[] { 1, 37, 1 }, new object[] { 5, 37, 131 }, new object[] { 7, 300, 65 }, new object[] { 17, 5, 64 },
        new object[] { 67, 300, 193 }, new object[] { 13, 576, 131 }, new object[] { 6, 32, 70 }, new object[] { 3, 0, 20 },
    };

    private static IEnumerable<SimdPath> SupportedPaths() => QuantizedMatMulTests.SupportedPaths();

    private static byte[] Quantized(float[] w, int outF, int inF) => QuantizedMatMulTests.Quantized(w, outF, inF);

    /// <summary>
    /// The definition, written out plainly: per row and block of 32 inputs, d = max|x|/4095 and q = round(x·(4095/max|x|))
    /// in fp32 (the kernel's documented steps); per output, Σ over blocks of (Σ q_x·q_w)·d_x·d_w in double, plus the bias.
    /// Also returns, per output, Σ |block term| for the bound on the kernel's fp32 rounding.
    /// </summary>
    private static (double[] Y, double[] Magnitude) Reference(float[] x, float[] w, float[]? bias, int n, int inF, int outF)
    {
        var rowsQ = new sbyte[outF * inF];
        var scales = new Half[outF * QuantizedMatMul.BlocksPerRow(inF)];
        QuantizedMatMul.QuantizeRows(w, outF, inF, rowsQ, scales);
        int blocks = QuantizedMatMul.BlocksPerRow(inF);
        var y = new double[n * outF];
        var magnitude = new double[n * outF];
        var xq = new int[inF];
        var dx = new float[blocks];
        for (int i = 0; i < n; i++)
        {
            for (int b = 0; b < blocks; b++)
            {
                int k0 = b * 32, kc = Math.Min(32, inF - k0);
                float max = 0f;
                for (int k = k0; k < k0 + kc; k++) max = Math.Max(max, Math.Abs(x[i * inF + k]));
                dx[b] = max / 4095f;
                float inverse = max == 0f ? 0f : 4095f / max;
                for (int k = k0; k < k0 + kc; k++)
                {
                    xq[k] = (int)MathF.Round(x[i * inF + k] * inverse, MidpointRounding.ToEven);
                    Assert.InRange(xq[k], -4095, 4095);
                }
            }
            for (int o = 0; o < outF; o++)
            {
                double total = bias?[o] ?? 0, size = Math.Abs(bias?[o] ?? 0);
                for (int b = 0; b < blocks; b++)
                {
                    long sum = 0;
                    for (int k = b * 32; k < Math.Min(inF, b * 32 + 32); k++) sum += xq[k] * rowsQ[o * inF + k];
                    double term = sum * (double)dx[b] * (double)scales[o * blocks + b];
                    total += term;
                    size += Math.Abs(term);
                }
                y[i * outF + o] = total;
                magnitude[i * outF + o] = size;
            }
        }
        return (y, magnitude);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Every_path_computes_the_quantized_arithmetic_and_all_give_the_same_bits(int n, int inF, int outF)
    {
        var rng = new Rng(31);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF, 0.1f), b = TestTensors.Normal(rng, outF);
        // A zero block of inputs (scale 0) and a row of one large outlier.
        if (inF >= 32 && n > 1) Array.Clear(x, inF, 32);
        if (n > 2 && inF > 0) x[2 * inF + inF / 2] = 40f;
        byte[] q = Quantized(w, outF, inF);
        // Per output: the product d_x·d_w rounded to fp32 and one fma per block, each within 2⁻²⁴ of its terms.
        int blocks = (inF + 31) / 32;
        double epsilon = (2 * blocks + 2) * Math.Pow(2, -24);
        float[]? portable = null;
        foreach (bool withBias in new[] { false, true })
        {
            (double[] expected, double[] magnitude) = Reference(x, w, withBias ? b : null, n, inF, outF);
            foreach (SimdPath path in SupportedPaths())
            {
                var y = new float[n * outF];
                Array.Fill(y, float.NaN); // must be overwritten
                QuantizedMatMul.ForwardIntegers(x, q, withBias ? b : default, y, n, inF, outF, path);
                for (int i = 0; i < y.Length; i++)
                    Assert.True(Math.Abs(y[i] - expected[i]) <= epsilon * magnitude[i] + 1e-30,
                        $"{path} bias={withBias} y[{i / outF},{i % outF}] = {y[i]}, expected {expected[i]}");
                if (!withBias) continue;
                if (portable == null) { Assert.Equal(SimdPath.Portable, path); portable = y; }
                else ThreadSettings.AssertBitIdentical(portable, y, $"{path} against portable");
            }
        }
    }

    [Fact]
    public void The_product_is_the_dequantized_product_within_the_activations_rounding()
    {
        // |Σ (x − x̂)·ŵ| ≤ Σ_blocks d_x/2 · Σ |ŵ|, against the fp32-activation kernel over the same weights.
        const int n = 20, inF = 576, outF = 131;
        var rng = new Rng(32);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF, 0.05f);
        byte[] q = Quantized(w, outF, inF);
        var wq = new float[outF * inF];
        QuantizedMatMul.Dequantize(q, outF, inF, wq);
        var exact = new float[n * outF];
        var y = new float[n * outF];
        QuantizedMatMul.Forward(x, q, default, exact, n, inF, outF);
        QuantizedMatMul.ForwardIntegers(x, q, default, y, n, inF, outF);
        for (int i = 0; i < n; i++)
            for (int o = 0; o < outF; o++)
            {
                double bound = 1e-5 * Math.Abs(exact[i * outF + o]) + 1e-6;
                for (int k0 = 0; k0 < inF; k0 += 32)
                {
                    double max = 0, weights = 0;
                    for (int k = k0; k < k0 + 32; k++) { max = Math.Max(max, Math.Abs(x[i * inF + k])); weights += Math.Abs(wq[o * inF + k]); }
                    bound += max / 4095 / 2 * weights;
                }
                double error = Math.Abs(y[i * outF + o] - exact[i * outF + o]);
                Assert.True(error <= bound, $"y[{i},{o}] = {y[i * outF + o]}, fp32 activations {exact[i * outF + o]}, bound {bound}");
            }
    }

    [Fact]
    public void A_row_gets_the_same_bits_in_any_product_and_on_any_thread_count()
    {
        const int n = 67, inF = 300, outF = 193;
        var rng = new Rng(33);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF), b = TestTensors.Normal(rng, outF);
        byte[] q = Quantized(w, outF, inF);
        foreach (SimdPath path in SupportedPaths())
        {
            var all = new float[n * outF];
            using (new ThreadSettings(1)) QuantizedMatMul.ForwardIntegers(x, q, b, all, n, inF, outF, path);
            foreach (int threads in new[] { 1, 2, 3 })
                using (new ThreadSettings(threads))
                {
                    var again = new float[n * outF];
                    QuantizedMatMul.ForwardIntegers(x, q, b, again, n, inF, outF, path);
                    ThreadSettings.AssertBitIdentical(all, again, $"{path}: {n} rows on {threads} threads");
                    foreach ((int start, int count) in new[] { (0, 1), (4, 9), (60, 7) })
                    {
                        var some = new float[count * outF];
                        QuantizedMatMul.ForwardIntegers(x.AsSpan(start * inF, count * inF), q, b, some, count, inF, outF, path);
                        ThreadSettings.AssertBitIdentical(all.AsSpan(start * outF, count * outF), some, $"{path}: rows {start}..{start + count} on {threads} threads");
                    }
                }
        }
    }

    [Fact]
    public void A_non_finite_input_makes_only_its_rows_outputs_NaN()
    {
        const int n = 8, inF = 70, outF = 65;
        var rng = new Rng(34);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF, 0.1f);
        x[3 * inF + 40] = float.PositiveInfinity; // row 3, a whole block
        x[5 * inF + 66] = float.NaN;              // row 5, the partial block
        byte[] q = Quantized(w, outF, inF);
        foreach (SimdPath path in SupportedPaths())
        {
            var y = new float[n * outF];
            QuantizedMatMul.ForwardIntegers(x, q, default, y, n, inF, outF, path);
            for (int i = 0; i < n; i++)
                for (int o = 0; o < outF; o++)
                    Assert.True(float.IsNaN(y[i * outF + o]) == (i is 3 or 5), $"{path} y[{i},{o}] = {y[i * outF + o]}");
        }
    }

    [Fact]
    public void Arguments_are_checked()
    {
        byte[] q = Quantized(new float[2 * 3], 2, 3);
        var x = new float[2 * 3];
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.ForwardIntegers(new float[5], q, default, new float[4], 2, 3, 2));
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.ForwardIntegers(x, q, new float[3], new float[4], 2, 3, 2));
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.ForwardIntegers(x, q, default, new float[3], 2, 3, 2));
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.ForwardIntegers(x, q.AsSpan(1), default, new float[4], 2, 3, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => QuantizedMatMul.ForwardIntegers(x, q, default, new float[4], -1, 3, 2));
    }
}
