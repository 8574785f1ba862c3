using System;
using System.Runtime.Intrinsics;
using TransformerGen.Kernels;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Tests.Kernels;

public class ExponentialTests(ITestOutputHelper output)
{
    [Fact]
    public void Exp_is_within_2e_minus_7_relative_on_every_vector_width_and_the_widths_agree_bit_for_bit()
    {
        // A dense grid over the whole normal range, each point through every width and the scalar entry.
        const int count = 400_000;
        const float low = -87.3f, high = 88.3f;
        double maxError = 0;
        float worst = 0;
        var lanes = new float[16];
        for (int i0 = 0; i0 < count; i0 += 16)
        {
            for (int l = 0; l < 16; l++) lanes[l] = low + (high - low) * (i0 + l) / (count - 1);
            Vector512<float> e512 = Exponential.Exp(Vector512.Create(lanes));
            Vector256<float> e256 = Exponential.Exp(Vector256.Create(lanes));
            Vector128<float> e128 = Exponential.Exp(Vector128.Create(lanes));
            for (int l = 0; l < 16; l++)
            {
                float value = e512[l];
                Assert.Equal(BitConverter.SingleToInt32Bits(value), BitConverter.SingleToInt32Bits(Exponential.Exp(lanes[l])));
                if (l < 8) Assert.Equal(BitConverter.SingleToInt32Bits(value), BitConverter.SingleToInt32Bits(e256[l]));
                if (l < 4) Assert.Equal(BitConverter.SingleToInt32Bits(value), BitConverter.SingleToInt32Bits(e128[l]));
                double exact = Math.Exp(lanes[l]);
                double error = Math.Abs(value - exact) / exact;
                if (error > maxError) (maxError, worst) = (error, lanes[l]);
            }
        }
        output.WriteLine($"largest relative error {maxError:E2} at x = {worst}");
        Assert.True(maxError <= 2e-7, $"relative error {maxError:E2} at x = {worst}");
    }

    [Fact]
    public void Exp_is_exact_at_zero_and_one_at_the_ends_and_keeps_nan()
    {
        Assert.Equal(1f, Exponential.Exp(0f));
        Assert.Equal(1f, Exponential.Exp(-0f));
        Assert.Equal(0f, Exponential.Exp(-87.4f));
        Assert.Equal(0f, Exponential.Exp(-1000f));
        Assert.Equal(0f, Exponential.Exp(float.NegativeInfinity));
        Assert.True(Exponential.Exp(-87.29f) > 0f);
        Assert.True(float.IsNaN(Exponential.Exp(float.NaN)));
        // Above 88.3 the result stays finite at e^88.3 instead of overflowing.
        Assert.Equal(Exponential.Exp(88.3f), Exponential.Exp(1000f));
        Assert.True(float.IsFinite(Exponential.Exp(float.PositiveInfinity)));
        Assert.Equal(Math.Exp(88.3), Exponential.Exp(88.3f), 88.3 * 2e-7 * Math.Exp(88.3));
    }
}
