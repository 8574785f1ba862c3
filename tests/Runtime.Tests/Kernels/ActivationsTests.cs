using System;
using System.Runtime.Intrinsics;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Tests.Kernels;

public class ActivationsTests
{
    // 37 = 32 + 4 + 1 elements: two Vector512 blocks, one Vector128 block and a scalar tail.
    private const int Length = 37;

    [Fact]
    public void Reference_erf_reproduces_known_values()
    {
        // Values from Abramowitz & Stegun table 7.1 and standard tables of erfc.
        Assert.Equal(0.5204998778130465, ReferenceMath.Erf(0.5), 14);
        Assert.Equal(0.8427007929497149, ReferenceMath.Erf(1.0), 14);
        Assert.Equal(-0.9953222650189527, ReferenceMath.Erf(-2.0), 14);
        Assert.Equal(0.9999779095030014, ReferenceMath.Erf(3.0), 14);
        Assert.Equal(2.209049699858544e-05, ReferenceMath.Erfc(3.0), 1e-18);
        // The two branches of the reference agree where they meet.
        Assert.Equal(ReferenceMath.Erf(2.4999999), 1 - ReferenceMath.Erfc(2.4999999), 13);
    }

    [Fact]
    public void Erf_is_accurate_to_about_1e_minus_7_absolute_on_every_vector_width()
    {
        // A dense grid over [−6, 6], through each vector width's code explicitly and through the scalar entry.
        const int count = 120_000;
        double maxError = 0;
        float worst = 0;
        var lanes = new float[16];
        for (int i0 = 0; i0 < count; i0 += 16)
        {
            for (int l = 0; l < 16; l++) lanes[l] = -6f + 12f * (i0 + l) / count;
            Vector512<float> e512 = ErrorFunction.Erf(Vector512.Create(lanes));
            Vector256<float> e256 = ErrorFunction.Erf(Vector256.Create(lanes));
            Vector128<float> e128 = ErrorFunction.Erf(Vector128.Create(lanes));
            for (int l = 0; l < 16; l++)
            {
                double reference = ReferenceMath.Erf(lanes[l]);
                float scalar = ErrorFunction.Erf(lanes[l]);
                Assert.Equal(scalar, e512[l]);
                if (l < 8) Assert.Equal(scalar, e256[l]);
                if (l < 4) Assert.Equal(scalar, e128[l]);
                double error = Math.Abs(scalar - reference);
                if (error > maxError) { maxError = error; worst = lanes[l]; }
            }
        }
        Assert.True(maxError < 1.5e-7, $"max |erf error| {maxError:E2} at x = {worst}");

        Assert.Equal(0f, ErrorFunction.Erf(0f));
        Assert.Equal(1f, ErrorFunction.Erf(float.PositiveInfinity));
        Assert.Equal(-1f, ErrorFunction.Erf(float.NegativeInfinity));
        Assert.Equal(1f, ErrorFunction.Erf(30f));
        Assert.True(float.IsNaN(ErrorFunction.Erf(float.NaN)));
        Assert.Equal(1e-30 * 2 / Math.Sqrt(Math.PI), ErrorFunction.Erf(1e-30f), 1e-36); // no underflow to zero near 0
    }

    [Fact]
    public void Gelu_forward_matches_double_reference()
    {
        var rng = new Rng(10);
        float[] x = TestTensors.Normal(rng, 1001, 3f);
        x[0] = 0; x[1] = -10; x[2] = 10; x[3] = 1e-20f;
        var y = new float[x.Length];
        Activations.GeluForward(x, y);
        for (int i = 0; i < x.Length; i++)
            Assert.True(Math.Abs(y[i] - ReferenceMath.Gelu(x[i])) <= 2e-7 * Math.Max(1, Math.Abs(x[i])), $"gelu({x[i]}) = {y[i]}, expected {ReferenceMath.Gelu(x[i])}");

        // In place gives the same.
        var inPlace = (float[])x.Clone();
        Activations.GeluForward(inPlace, inPlace);
        Assert.Equal(y, inPlace);
    }

    [Fact]
    public void Gelu_backward_matches_finite_differences_and_accumulates()
    {
        var rng = new Rng(11);
        float[] x = TestTensors.Normal(rng, Length, 2f), g = TestTensors.Normal(rng, Length);
        var y = new float[Length];
        double Loss() { Activations.GeluForward(x, y); return GradientCheck.Dot(g, y); }
        var dx = new float[Length];
        Activations.GeluBackward(g, x, dx);
        GradientCheck.Check("dx", x, dx, Loss);

        var twice = (float[])dx.Clone();
        Activations.GeluBackward(g, x, twice);
        GradientCheck.AssertDoubled("dx", dx, twice);
    }

    [Fact]
    public void Tanh_matches_double_and_its_backward_matches_finite_differences_and_accumulates()
    {
        var rng = new Rng(14);
        float[] x = TestTensors.Normal(rng, Length, 2f), g = TestTensors.Normal(rng, Length);
        var y = new float[Length];
        Activations.TanhForward(x, y);
        for (int i = 0; i < Length; i++) Assert.Equal(Math.Tanh(x[i]), y[i], 3e-7);
        double Loss() { Activations.TanhForward(x, y); return GradientCheck.Dot(g, y); }
        Activations.TanhForward(x, y);
        var dx = new float[Length];
        Activations.TanhBackward(g, y, dx, overwriteDx: true);
        GradientCheck.Check("dx", x, dx, Loss);

        var twice = (float[])dx.Clone();
        Activations.TanhForward(x, y);
        Activations.TanhBackward(g, y, twice);
        GradientCheck.AssertDoubled("dx", dx, twice);
    }

    [Fact]
    public void Gelu_backward_matches_the_analytic_derivative_in_double()
    {
        var rng = new Rng(12);
        float[] x = TestTensors.Normal(rng, 1001, 3f);
        var ones = new float[x.Length];
        Array.Fill(ones, 1f);
        var dx = new float[x.Length];
        Activations.GeluBackward(ones, x, dx);
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            double expected = 0.5 * (1 + ReferenceMath.Erf(v / Math.Sqrt(2))) + v * Math.Exp(-v * v / 2) / Math.Sqrt(2 * Math.PI);
            Assert.True(Math.Abs(dx[i] - expected) <= 5e-7 * Math.Max(1, Math.Abs(v)), $"gelu'({v}) = {dx[i]}, expected {expected}");
        }
    }

    [Fact]
    public void Gelu_backward_from_the_forward_output_matches_the_derivative_in_double()
    {
        // Normal inputs, and the places where reading Φ back as y/x needs care: 0 and −0 (0/0), tiny inputs (where y
        // may lose bits), and far tails (Φ below the smallest normal float on the left, 1 on the right).
        var rng = new Rng(14);
        float[] special = { 0f, -0f, 1e-30f, -1e-30f, 1e-19f, -2e-18f, 3e-7f, -3e-7f, 0.5f, -0.5f, 6f, -6f, 9f, -9f, 12f, -12f, 15f, -15f, 40f, -40f };
        float[] x = new float[1001 + special.Length];
        TestTensors.Normal(rng, 1001, 3f).CopyTo(x, 0);
        special.CopyTo(x, 1001);
        float[] y = new float[x.Length], ones = new float[x.Length], dx = new float[x.Length], dxRecomputed = new float[x.Length];
        Array.Fill(ones, 1f);
        Activations.GeluForward(x, y);
        Activations.GeluBackward(ones, x, y, dx);
        Activations.GeluBackward(ones, x, dxRecomputed);
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            double expected = 0.5 * (1 + ReferenceMath.Erf(v / Math.Sqrt(2))) + v * Math.Exp(-v * v / 2) / Math.Sqrt(2 * Math.PI);
            Assert.True(Math.Abs(dx[i] - expected) <= 5e-7 * Math.Max(1, Math.Abs(v)), $"gelu'({v:R}) = {dx[i]:R} from the output, expected {expected:R}");
            Assert.True(Math.Abs(dx[i] - dxRecomputed[i]) <= 3e-7, $"gelu'({v:R}) = {dx[i]:R} from the output, {dxRecomputed[i]:R} recomputed");
        }
    }

    [Fact]
    public void Relu_forward_and_backward()
    {
        var rng = new Rng(13);
        float[] x = TestTensors.Normal(rng, Length), g = TestTensors.Normal(rng, Length);
        // Keep inputs away from the kink so that x ± h stays on one side.
        for (int i = 0; i < x.Length; i++) if (Math.Abs(x[i]) < 0.05f) x[i] += 0.1f;
        var y = new float[Length];
        Activations.ReluForward(x, y);
        for (int i = 0; i < Length; i++) Assert.Equal(Math.Max(x[i], 0f), y[i]);

        double Loss() { Activations.ReluForward(x, y); return GradientCheck.Dot(g, y); }
        var dx = new float[Length];
        Activations.ReluBackward(g, x, dx);
        GradientCheck.Check("dx", x, dx, Loss);
        for (int i = 0; i < Length; i++) Assert.Equal(x[i] > 0 ? g[i] : 0f, dx[i]);

        var twice = (float[])dx.Clone();
        Activations.ReluBackward(g, x, twice);
        GradientCheck.AssertDoubled("dx", dx, twice);
    }

    [Fact]
    public void Mismatched_lengths_throw()
    {
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => Activations.GeluForward(new float[5], new float[4])).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => Activations.ReluForward(new float[5], new float[6])).ParamName);
        Assert.Equal("dx", Assert.Throws<ArgumentException>(() => Activations.GeluBackward(new float[5], new float[5], new float[4])).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => Activations.GeluBackward(new float[5], new float[5], new float[4], new float[5])).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Activations.ReluBackward(new float[5], new float[3], new float[5])).ParamName);
    }
}
