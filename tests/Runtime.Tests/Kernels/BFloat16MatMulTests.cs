using System;
using System.Collections.Generic;
using TransformerGen.Kernels;
using TransformerGen.Tests.Threading;
using Xunit;

namespace TransformerGen.Tests.Kernels;

/// <summary>The linear layer over bf16 weights in panels (BFloat16MatMul.cs).</summary>
[Collection(ThreadSettingsCollection.Name)]
public class BFloat16MatMulTests
{
    // Outputs below one panel, just past one, two and three panels; rows of 1, of the 6-row tile with remainders and
    // past 64; depths odd and SmolLM2's 576.
    public static IEnumerable<object[]> Shapes() => new[]
    {
        new object[] { 1, 37, 1 }, new object[] { 7, 37, 131 }, new object[] { 1, 300, 65 }, new object[] { 67, 300, 193 },
        new object[] { 1, 576, 131 }, new object[] { 13, 576, 64 }, new object[] { 4, 5, 65 }, new object[] { 5, 300, 131 }, new object[] { 3, 37, 65 }, new object[] { 2, 0, 20 },
    };

    private static IEnumerable<SimdPath> SupportedPaths()
    {
        foreach (SimdPath path in Enum.GetValues<SimdPath>())
            if (Simd.IsSupported(path)) yield return path;
    }

    private static ushort[] Converted(float[] w, int outF, int inF)
    {
        var packed = new ushort[BFloat16MatMul.ElementCount(outF, inF)];
        BFloat16MatMul.Convert(w, outF, inF, packed);
        return packed;
    }

    [Fact]
    public void Rounding_is_to_nearest_with_ties_to_even()
    {
        Assert.Equal(0x3F80, BFloat16MatMul.RoundToBFloat16(1f));
        Assert.Equal(0x3F80, BFloat16MatMul.RoundToBFloat16(1f + MathF.Pow(2, -8)));       // tie, 1.0 is even
        Assert.Equal(0x3F82, BFloat16MatMul.RoundToBFloat16(1f + 3 * MathF.Pow(2, -8)));   // tie, up to the even 1 + 2⁻⁶
        Assert.Equal(0x3F81, BFloat16MatMul.RoundToBFloat16(1f + MathF.Pow(2, -8) + MathF.Pow(2, -20))); // above the tie
        Assert.Equal(0xBF80, BFloat16MatMul.RoundToBFloat16(-1f));
        Assert.Equal(0x7F80, BFloat16MatMul.RoundToBFloat16(float.MaxValue));              // rounds up to infinity
        Assert.True(float.IsNaN(BFloat16MatMul.ToSingle(BFloat16MatMul.RoundToBFloat16(float.NaN))));
        // Against the definition on random values: the nearer of the two neighbours, the even one on a tie.
        var rng = new Rng(11);
        for (int i = 0; i < 100_000; i++)
        {
            float v = rng.NextNormal() * MathF.Pow(2, (int)(rng.NextFloat() * 60) - 30);
            uint bits = BitConverter.SingleToUInt32Bits(v);
            ushort down = (ushort)(bits >> 16), up = (ushort)(down + 1);
            double dDown = Math.Abs((double)v - BFloat16MatMul.ToSingle(down)), dUp = Math.Abs((double)v - BFloat16MatMul.ToSingle(up));
            ushort expected = dDown < dUp ? down : dUp < dDown ? up : (down & 1) == 0 ? down : up;
            Assert.Equal(expected, BFloat16MatMul.RoundToBFloat16(v));
        }
    }

    [Theory]
    [InlineData(131, 37)]
    [InlineData(1, 300)]
    [InlineData(64, 16)]
    public void Converting_back_gives_the_rounded_weights_in_place(int outF, int inF)
    {
        float[] w = TestTensors.Normal(new Rng(12), outF * inF);
        ushort[] packed = Converted(w, outF, inF);
        var back = new float[outF * inF];
        BFloat16MatMul.ConvertBack(packed, outF, inF, back);
        for (int i = 0; i < w.Length; i++) Assert.Equal(BFloat16MatMul.ToSingle(BFloat16MatMul.RoundToBFloat16(w[i])), back[i]);
        // The layout: W[0, 0] first, W[16, 0] beside it (the high half of the first word), W[1, 0] next.
        if (outF >= 64)
        {
            Assert.Equal(BFloat16MatMul.RoundToBFloat16(w[0]), packed[0]);
            Assert.Equal(BFloat16MatMul.RoundToBFloat16(w[16 * inF]), packed[1]);
            Assert.Equal(BFloat16MatMul.RoundToBFloat16(w[inF]), packed[2]);
            Assert.Equal(BFloat16MatMul.RoundToBFloat16(w[32 * inF + 1]), packed[64 + 32]);
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_is_the_fp32_product_over_the_rounded_weights_on_every_path(int n, int inF, int outF)
    {
        var rng = new Rng(13);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF), b = TestTensors.Normal(rng, outF);
        ushort[] packed = Converted(w, outF, inF);
        var rounded = new float[outF * inF];
        BFloat16MatMul.ConvertBack(packed, outF, inF, rounded);
        var fp32 = new float[n * outF];
        MatMul.Forward(x, rounded, b, fp32, n, inF, outF);
        // One FMA chain of inF steps and the bias: at most (inF + 1)·2⁻²⁴ of Σ|x·w| + |bias| from the exact sum.
        double epsilon = (inF + 2) * Math.Pow(2, -24);
        float[]? portable = null;
        foreach (SimdPath path in SupportedPaths())
            foreach (bool withBias in new[] { true, false })
            {
                ReadOnlySpan<float> bias = withBias ? b : ReadOnlySpan<float>.Empty;
                var y = new float[n * outF];
                Array.Fill(y, float.NaN); // must be overwritten
                BFloat16MatMul.Forward(x, packed, bias, y, n, inF, outF, path);
                for (int i = 0; i < n; i++)
                    for (int o = 0; o < outF; o++)
                    {
                        double exact = withBias ? b[o] : 0, magnitude = withBias ? Math.Abs(b[o]) : 0;
                        for (int k = 0; k < inF; k++)
                        {
                            exact += (double)x[i * inF + k] * rounded[o * inF + k];
                            magnitude += Math.Abs((double)x[i * inF + k] * rounded[o * inF + k]);
                        }
                        float actual = y[i * outF + o];
                        Assert.True(Math.Abs(actual - exact) <= epsilon * magnitude + 1e-30, $"{path} bias={withBias} y[{i},{o}] = {actual}, exact {exact}");
                        if (withBias)
                            Assert.True(Math.Abs(actual - fp32[i * outF + o]) <= 2 * epsilon * magnitude + 1e-30,
                                $"{path} y[{i},{o}] = {actual}, MatMul.Forward over the rounded weights {fp32[i * outF + o]}");
                    }
                if (!withBias) continue;
                if (portable == null) { Assert.Equal(SimdPath.Portable, path); portable = y; }
                else ThreadSettings.AssertBitIdentical(portable, y, $"{path} against portable");
            }
    }

    [Fact]
    public void A_row_gets_the_same_bits_alone_as_within_many_rows_and_on_any_thread_count()
    {
        const int n = 67, inF = 300, outF = 193;
        var rng = new Rng(14);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF), b = TestTensors.Normal(rng, outF);
        ushort[] packed = Converted(w, outF, inF);
        foreach (SimdPath path in SupportedPaths())
        {
            var all = new float[n * outF];
            using (new ThreadSettings(1)) BFloat16MatMul.Forward(x, packed, b, all, n, inF, outF, path);
            foreach (int threads in new[] { 1, 2 })
                using (new ThreadSettings(threads))
                {
                    var again = new float[n * outF];
                    BFloat16MatMul.Forward(x, packed, b, again, n, inF, outF, path);
                    ThreadSettings.AssertBitIdentical(all, again, $"{path}: {n} rows on {threads} threads");
                    foreach (int i in new[] { 0, 6, n - 1 })
                    {
                        var one = new float[outF];
                        BFloat16MatMul.Forward(x.AsSpan(i * inF, inF), packed, b, one, 1, inF, outF, path);
                        ThreadSettings.AssertBitIdentical(all.AsSpan(i * outF, outF), one, $"{path}: row {i} alone on {threads} threads");
                    }
                }
        }
    }

    [Fact]
    public void Arguments_are_checked()
    {
        ushort[] packed = Converted(new float[6], 2, 3);
        var x = new float[6];
        Assert.Throws<ArgumentException>(() => BFloat16MatMul.Convert(new float[5], 2, 3, packed));
        Assert.Throws<ArgumentException>(() => BFloat16MatMul.Convert(new float[6], 2, 3, new ushort[packed.Length - 1]));
        Assert.Throws<ArgumentException>(() => BFloat16MatMul.ConvertBack(packed, 2, 3, new float[5]));
        Assert.Throws<ArgumentOutOfRangeException>(() => BFloat16MatMul.ElementCount(2, -3));
        Assert.Throws<ArgumentException>(() => BFloat16MatMul.Forward(new float[5], packed, default, new float[4], 2, 3, 2));
        Assert.Throws<ArgumentException>(() => BFloat16MatMul.Forward(x, packed, new float[3], new float[4], 2, 3, 2));
        Assert.Throws<ArgumentException>(() => BFloat16MatMul.Forward(x, packed, default, new float[3], 2, 3, 2));
        Assert.Throws<ArgumentException>(() => BFloat16MatMul.Forward(x, packed.AsSpan(1), default, new float[4], 2, 3, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => BFloat16MatMul.Forward(x, packed, default, new float[4], -1, 3, 2));
    }
}
