using System;
using System.Linq;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Tests.Kernels;

using Positional = TransformerGen.Kernels.Positional;

/// <summary>
/// The rope scalings of <see cref="RotaryScaling"/> against each method's formula evaluated in double (llama3's three
/// bands, YaRN's ramp over its correction range, LongRoPE's per-pair divisors), the attention factor on the tables, the
/// backward's exact transpose over scaled tables, and the refusals of bad numbers.
/// </summary>
public class RotaryScalingTests
{
    private static double[] Default(int headDim, double theta) =>
        Enumerable.Range(0, headDim / 2).Select(j => 1.0 / Math.Pow(theta, 2.0 * j / headDim)).ToArray();

    private static float[] Frequencies(RotaryScaling scaling, int headDim, float theta)
    {
        var inverse = new float[headDim / 2];
        scaling.InverseFrequencies(inverse, headDim, theta);
        return inverse;
    }

    private static void Near(double expected, float actual, double relative = 3e-6) =>
        Assert.True(Math.Abs(actual - expected) <= relative * Math.Abs(expected), $"expected {expected:R}, got {actual:R}");

    [Fact]
    public void Llama3_keeps_short_wavelengths_divides_long_ones_and_blends_between()
    {
        // θ = 100, head 14: wavelengths 2π·100^(2j/14) = 6.3, 12.3, 24.1, 47.3, 92.6, 181, 355. With L = 64, low 1 and
        // high 8 the bands are λ < 8 (kept), λ > 64 (÷ 4) and the blend between: pairs 0 | 1–3 | 4–6.
        const int headDim = 14, original = 64;
        const double factor = 4, low = 1, high = 8;
        float[] actual = Frequencies(RotaryScaling.Llama3((float)factor, (float)low, (float)high, original), headDim, 100f);
        double[] inverse = Default(headDim, 100);
        int kept = 0, divided = 0, blended = 0;
        for (int j = 0; j < inverse.Length; j++)
        {
            double wavelength = 2 * Math.PI / inverse[j], expected;
            if (wavelength < original / high) { expected = inverse[j]; kept++; }
            else if (wavelength > original / low) { expected = inverse[j] / factor; divided++; }
            else
            {
                double smooth = (original / wavelength - low) / (high - low);
                expected = (1 - smooth) * inverse[j] / factor + smooth * inverse[j];
                blended++;
            }
            Near(expected, actual[j]);
        }
        Assert.Equal((1, 3, 3), (kept, blended, divided));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Yarn_ramps_from_kept_to_divided_frequencies_over_its_correction_range(bool truncate)
    {
        // θ = 10000, head 22, L = 16, β 4 and 1: the correction dimensions are 22·ln(16 / (2πβ)) / (2 ln 10⁴) ≈ −0.11 and
        // 1.12, so pair 0 keeps most of its frequency and pairs from 2 on are divided by the factor.
        const int headDim = 22, original = 16;
        const double factor = 3, betaFast = 4, betaSlow = 1;
        RotaryScaling scaling = RotaryScaling.Yarn((float)factor, original, (float)betaFast, (float)betaSlow, truncate, attentionFactor: 1.25f);
        float[] actual = Frequencies(scaling, headDim, 10000f);
        double Dimension(double rotations) => headDim * Math.Log(original / (rotations * 2 * Math.PI)) / (2 * Math.Log(10000));
        double lowDim = Dimension(betaFast), highDim = Dimension(betaSlow);
        if (truncate) (lowDim, highDim) = (Math.Floor(lowDim), Math.Ceiling(highDim));
        (lowDim, highDim) = (Math.Max(lowDim, 0), Math.Min(highDim, headDim - 1));
        double[] inverse = Default(headDim, 10000);
        for (int j = 0; j < inverse.Length; j++)
        {
            double kept = 1 - Math.Clamp((j - lowDim) / (highDim - lowDim), 0, 1);
            Near(inverse[j] / factor * (1 - kept) + inverse[j] * kept, actual[j]);
        }
        // Pair 1 lies inside the ramp: strictly between its divided and its kept frequency.
        Assert.InRange(actual[1], (float)(inverse[1] / factor) * 1.001f, (float)inverse[1] * 0.999f);
        Assert.Equal(1.25f, scaling.AttentionFactor);
        Near(inverse[^1] / factor, actual[^1]);
    }

    [Fact]
    public void LongRope_divides_each_pair_by_its_own_factor_and_the_tables_carry_the_attention_factor()
    {
        float[] factors = [1f, 1.5f, 2.25f, 7f, 1.125f];
        const float attention = 1.1875f;
        RotaryScaling scaling = RotaryScaling.LongRope(attention, factors);
        float[] actual = Frequencies(scaling, 10, 500f);
        double[] inverse = Default(10, 500);
        for (int j = 0; j < 5; j++) Near(inverse[j] / factors[j], actual[j]);

        // cos and sin × the attention factor: every (cos, sin) pair has length 1.1875.
        const int positions = 9;
        float[] cos = new float[positions * 5], sin = new float[positions * 5];
        Positional.RotaryTables(cos, sin, positions, 10, 500f, scaling);
        for (int p = 0; p < positions; p++)
            for (int j = 0; j < 5; j++)
            {
                double angle = p * (double)actual[j];
                Near(Math.Cos(angle) * attention, cos[p * 5 + j], p == 0 ? 1e-7 : 2e-5);
                Assert.Equal(Math.Sin(angle) * attention, sin[p * 5 + j], 5e-6);
            }
    }

    [Fact]
    public void The_backward_over_scaled_tables_is_the_transpose_of_the_forward()
    {
        // ⟨R·x, y⟩ = ⟨x, Rᵀ·y⟩ with R a turn times the attention factor: the backward kernel's turn by the opposite
        // angle over the same tables is Rᵀ.
        const int seqLen = 7, heads = 3, headDim = 10, width = heads * headDim;
        float[] cos = new float[seqLen * 5], sin = new float[seqLen * 5];
        Positional.RotaryTables(cos, sin, seqLen, headDim, 1000f, RotaryScaling.Yarn(4f, 4, 32f, 1f, true, 1.3f));
        var random = new Random(3);
        float[] x = Enumerable.Range(0, seqLen * width).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        float[] y = Enumerable.Range(0, seqLen * width).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        float[] rx = (float[])x.Clone(), ry = (float[])y.Clone();
        Positional.RotaryHalfForward(rx, cos, sin, 1, seqLen, heads, headDim, width);
        Positional.RotaryHalfBackward(ry, cos, sin, 1, seqLen, heads, headDim, width);
        double left = 0, right = 0, norm = 0, scaledNorm = 0;
        for (int i = 0; i < x.Length; i++)
        {
            left += (double)rx[i] * y[i];
            right += (double)x[i] * ry[i];
            norm += (double)x[i] * x[i];
            scaledNorm += (double)rx[i] * rx[i];
        }
        Assert.Equal(left, right, 1e-4);
        Assert.Equal(1.3 * 1.3, scaledNorm / norm, 1e-5); // every pair grows by the attention factor
    }

    [Fact]
    public void None_is_the_plain_table_and_linear_scaling_halves_each_frequency_exactly()
    {
        float[] cos = new float[6 * 4], sin = new float[6 * 4], linearCos = new float[6 * 4], linearSin = new float[6 * 4];
        Positional.RotaryTables(cos, sin, 6, 8, 10000f);
        Positional.RotaryTables(linearCos, linearSin, 6, 8, 10000f, RotaryScaling.Linear(2f));
        float[] viaNone = new float[6 * 4], viaNoneSin = new float[6 * 4];
        Positional.RotaryTables(viaNone, viaNoneSin, 6, 8, 10000f, RotaryScaling.None);
        Assert.Equal(cos, viaNone);
        Assert.Equal(sin, viaNoneSin);
        // Linear ×2 halves each frequency exactly, so position 2p of its table is position p of the plain one, bit for bit.
        for (int p = 0; p < 3; p++)
            for (int j = 0; j < 4; j++)
            {
                Assert.Equal(cos[p * 4 + j], linearCos[2 * p * 4 + j]);
                Assert.Equal(sin[p * 4 + j], linearSin[2 * p * 4 + j]);
            }
    }

    [Fact]
    public void Bad_numbers_are_refused_with_their_name()
    {
        Assert.Equal("highFrequencyFactor", Assert.Throws<ArgumentOutOfRangeException>(() => RotaryScaling.Llama3(8f, 4f, 1f, 8192)).ParamName);
        Assert.Equal("originalPositions", Assert.Throws<ArgumentOutOfRangeException>(() => RotaryScaling.Llama3(8f, 1f, 4f, 0)).ParamName);
        Assert.Equal("factor", Assert.Throws<ArgumentOutOfRangeException>(() => RotaryScaling.Linear(0f)).ParamName);
        Assert.Equal("attentionFactor", Assert.Throws<ArgumentOutOfRangeException>(() => RotaryScaling.Yarn(4f, 16, 32f, 1f, true, float.NaN)).ParamName);
        Assert.Equal("factors", Assert.Throws<ArgumentOutOfRangeException>(() => RotaryScaling.LongRope(1f, 1f, -2f)).ParamName);
        var tooFew = new float[5];
        ArgumentException wrong = Assert.Throws<ArgumentException>(() => RotaryScaling.LongRope(1f, 1f, 2f).InverseFrequencies(tooFew, 10, 10000f));
        Assert.Contains("2 factors for a head of 10 channels, which has 5 pairs", wrong.Message);
    }
}
