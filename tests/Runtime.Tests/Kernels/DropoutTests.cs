using System;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Tests.Kernels;

public class DropoutTests
{
    [Fact]
    public void Zero_probability_is_the_identity_with_an_all_ones_mask()
    {
        float[] x = TestTensors.Normal(new Rng(70), 37);
        float[] y = new float[x.Length], mask = new float[x.Length];
        Dropout.Forward(x, y, mask, 0f, new Rng(1));
        Assert.Equal(x, y);
        Assert.All(mask, m => Assert.Equal(1f, m));
    }

    [Fact]
    public void Keeps_about_1_minus_p_scaled_by_its_inverse_and_is_reproducible()
    {
        const float p = 0.3f;
        int length = 100_003;
        float[] x = TestTensors.Normal(new Rng(71), length);
        float[] y = new float[length], mask = new float[length];
        Dropout.Forward(x, y, mask, p, new Rng(7));
        int kept = 0;
        for (int i = 0; i < length; i++)
        {
            if (mask[i] == 0f) { Assert.Equal(0f, y[i]); continue; }
            kept++;
            Assert.Equal(1f / 0.7f, mask[i]);
            Assert.Equal(x[i] / 0.7f, y[i], 1e-5f * Math.Max(1f, Math.Abs(y[i])));
        }
        // Binomial(100003, 0.7): standard deviation ≈ 145 elements, ≈ 0.0015 of the fraction; allow 5σ.
        Assert.InRange(kept / (double)length, 0.7 - 0.0075, 0.7 + 0.0075);

        float[] y2 = new float[length], mask2 = new float[length];
        Dropout.Forward(x, y2, mask2, p, new Rng(7));
        Assert.Equal(mask, mask2);
        Assert.Equal(y, y2);
        Dropout.Forward(x, y2, mask2, p, new Rng(8));
        Assert.NotEqual(mask, mask2);
    }

    [Fact]
    public void Backward_matches_finite_differences_and_accumulates()
    {
        var rng = new Rng(72);
        float[] x = TestTensors.Normal(rng, 37), g = TestTensors.Normal(rng, 37);
        float[] y = new float[37], mask = new float[37];
        // The same seed every time keeps the mask fixed while x is perturbed.
        double Loss() { Dropout.Forward(x, y, mask, 0.4f, new Rng(5)); return GradientCheck.Dot(g, y); }
        Loss();
        float[] savedMask = (float[])mask.Clone();
        var dx = new float[37];
        Dropout.Backward(g, savedMask, dx);
        GradientCheck.Check("dx", x, dx, Loss);

        var twice = (float[])dx.Clone();
        Dropout.Backward(g, savedMask, twice);
        GradientCheck.AssertDoubled("dx", dx, twice);
    }

    [Fact]
    public void Invalid_probability_and_lengths_throw()
    {
        var rng = new Rng(1);
        Assert.Throws<ArgumentOutOfRangeException>(() => Dropout.Forward(new float[3], new float[3], new float[3], 1f, rng));
        Assert.Throws<ArgumentOutOfRangeException>(() => Dropout.Forward(new float[3], new float[3], new float[3], -0.1f, rng));
        Assert.Throws<ArgumentOutOfRangeException>(() => Dropout.Forward(new float[3], new float[3], new float[3], float.NaN, rng));
        Assert.Equal("mask", Assert.Throws<ArgumentException>(() => Dropout.Forward(new float[3], new float[3], new float[2], 0.5f, rng)).ParamName);
        Assert.Equal("dx", Assert.Throws<ArgumentException>(() => Dropout.Backward(new float[3], new float[3], new float[4])).ParamName);
    }
}
