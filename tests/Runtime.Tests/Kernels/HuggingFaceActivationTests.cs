using System;
using System.Collections.Generic;
using TransformerGen.Kernels;
using TransformerGen.Tests.Threading;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Tests.Kernels;

/// <summary>
/// The activations of the Hugging Face families: GELU's tanh approximation (GPT-2's <c>gelu_new</c>), SiLU and SwiGLU
/// (Llama, Qwen2), against formulas in double written here.
/// </summary>
public sealed class HuggingFaceActivationTests(ITestOutputHelper output)
{
    private static readonly double SqrtTwoOverPi = Math.Sqrt(2 / Math.PI);

    // Ulps are counted where |y| is at least this: below it the e^z inside is near the end of float's normal range,
    // where Exponential returns 0 (absolute errors there are below 1e-35·max(1, |x|), which the absolute checks cover).
    private const double UlpFloor = 1e-35;

    /// <summary>The definition, literally: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).</summary>
    private static double GeluTanhLiteral(double x) => 0.5 * x * (1 + Math.Tanh(SqrtTwoOverPi * (x + 0.044715 * x * x * x)));

    /// <summary>The same value as x·σ(2u), u tanh's argument: exact in double where 1 + tanh(u) would cancel (u ≪ 0).</summary>
    private static double GeluTanhSigmoidForm(double x) => x / (1 + Math.Exp(-2 * SqrtTwoOverPi * (x + 0.044715 * x * x * x)));

    /// <summary>d/dx of x·σ(z), z = 2u: σ(z) + x·z′·σ(z)·(1 − σ(z)).</summary>
    private static double GeluTanhDerivative(double x)
    {
        double s = 1 / (1 + Math.Exp(-2 * SqrtTwoOverPi * (x + 0.044715 * x * x * x)));
        double dz = 2 * SqrtTwoOverPi * (1 + 3 * 0.044715 * x * x);
        return s + x * dz * s * (1 - s);
    }

    private static double Silu(double x) => x / (1 + Math.Exp(-x));

    private static double SiluDerivative(double x)
    {
        double s = 1 / (1 + Math.Exp(-x));
        return s + x * s * (1 - s);
    }

    /// <summary>|a − b| in units of the float spacing at |b| (the spacing of the smallest normal below it).</summary>
    private static double Ulps(float a, double b)
    {
        float magnitude = Math.Max((float)Math.Abs(b), 1.17549435e-38f);
        return Math.Abs(a - b) / (MathF.BitIncrement(magnitude) - magnitude);
    }

    // Required points, their neighbours in magnitude, the far ends of float, and a dense grid over [−12, 12].
    private static float[] Sweep()
    {
        var values = new List<float>
        {
            0f, -0f, 1e-3f, -1e-3f, 3f, -3f, 10f, -10f, 40f, -40f, 1e4f, -1e4f,
            1e-30f, -1e-30f, float.Epsilon, -float.Epsilon, 1e13f, -1e13f, 1e20f, -1e20f, float.MaxValue, -float.MaxValue,
        };
        for (int i = 0; i <= 96_000; i++) values.Add(-12f + i * 2.5e-4f);
        return values.ToArray();
    }

    [Fact]
    public void Gelu_tanh_forward_matches_the_formula_in_double_over_a_wide_sweep()
    {
        float[] x = Sweep();
        var y = new float[x.Length];
        Activations.GeluTanhForward(x, y);

        // Absolute error scaled by max(1, |x|) against the literal formula, and ulps of y against the σ form by where
        // x lies (y ≈ x·e^z on the left, so there float's rounding of z shows as a relative error of about 1e-7·|z|).
        double maxScaled = 0, ulpsRight = 0, ulpsNear = 0, ulpsLeft = 0, ulpsFarLeft = 0, maxUlpsPerCondition = 0;
        float worstScaled = 0;
        for (int i = 0; i < x.Length; i++)
        {
            Assert.True(float.IsFinite(y[i]), $"gelu_tanh({x[i]:R}) = {y[i]:R}");
            double scaled = Math.Abs(y[i] - GeluTanhLiteral(x[i])) / Math.Max(1, Math.Abs(x[i]));
            if (scaled > maxScaled) (maxScaled, worstScaled) = (scaled, x[i]);
            double reference = GeluTanhSigmoidForm(x[i]);
            if (Math.Abs(reference) < UlpFloor) continue;
            double ulps = Ulps(y[i], reference);
            // The function's condition number |x·f′(x)/f(x)|: the ulps that rounding x itself by half an ulp costs.
            double condition = Math.Abs(x[i] * GeluTanhDerivative(x[i]) / reference);
            maxUlpsPerCondition = Math.Max(maxUlpsPerCondition, ulps / Math.Max(1, condition));
            if (x[i] >= 0) ulpsRight = Math.Max(ulpsRight, ulps);
            else if (x[i] >= -3) ulpsNear = Math.Max(ulpsNear, ulps);
            else if (x[i] >= -6) ulpsLeft = Math.Max(ulpsLeft, ulps);
            else ulpsFarLeft = Math.Max(ulpsFarLeft, ulps);
        }
        output.WriteLine($"max |y − formula|/max(1, |x|) = {maxScaled:E2} at x = {worstScaled:R}");
        output.WriteLine($"max ulps: x ≥ 0 {ulpsRight:F1}, [−3, 0) {ulpsNear:F1}, [−6, −3) {ulpsLeft:F1}, [−12, −6) {ulpsFarLeft:F1}; max ulps/max(1, condition) {maxUlpsPerCondition:F2}");
        Assert.True(maxScaled <= 1.5e-7, $"absolute error {maxScaled:E2}·max(1, |x|) at x = {worstScaled:R}");
        Assert.True(ulpsRight <= 3, $"{ulpsRight:F1} ulps for x ≥ 0");
        Assert.True(ulpsNear <= 16, $"{ulpsNear:F1} ulps on [−3, 0)");
        Assert.True(ulpsLeft <= 60, $"{ulpsLeft:F1} ulps on [−6, −3)");
        Assert.True(ulpsFarLeft <= 200, $"{ulpsFarLeft:F1} ulps on [−12, −6)");
        // The left tail's ulps are the function's own sensitivity (y ≈ x·e^z, and float rounds z): never more than a few
        // times what rounding x alone would cost.
        Assert.True(maxUlpsPerCondition <= 4, $"{maxUlpsPerCondition:F2} ulps per unit of the condition number");

        // Far out: x itself on the right, a zero on the left (where the literal formula's 1 + tanh is 0 as well).
        foreach (float v in new[] { 40f, 1e4f, 1e20f, float.MaxValue })
        {
            Assert.Equal(v, y[Array.IndexOf(x, v)]);
            Assert.Equal(0f, y[Array.IndexOf(x, -v)]);
        }
        Assert.Equal(0f, y[Array.IndexOf(x, 0f)]);

        var inPlace = (float[])x.Clone();
        Activations.GeluTanhForward(inPlace, inPlace);
        ThreadSettings.AssertBitIdentical(y, inPlace, "in place");
    }

    [Fact]
    public void Gelu_tanh_backward_matches_the_derivative_in_double_and_is_finite_everywhere()
    {
        float[] x = Sweep();
        float[] ones = new float[x.Length], dx = new float[x.Length];
        Array.Fill(ones, 1f);
        Activations.GeluTanhBackward(ones, x, dx);
        double maxError = 0;
        float worst = 0;
        for (int i = 0; i < x.Length; i++)
        {
            Assert.True(float.IsFinite(dx[i]), $"gelu_tanh'({x[i]:R}) = {dx[i]:R}");
            double error = Math.Abs(dx[i] - GeluTanhDerivative(x[i]));
            if (error > maxError) (maxError, worst) = (error, x[i]);
        }
        output.WriteLine($"max |dx − derivative| = {maxError:E2} at x = {worst:R}");
        // The derivative lies in [−0.17, 1.13]: an absolute bound is the meaningful one.
        Assert.True(maxError <= 5e-7, $"derivative error {maxError:E2} at x = {worst:R}");
        foreach (float v in new[] { 40f, 1e4f, 1e20f, float.MaxValue })
        {
            Assert.Equal(1f, dx[Array.IndexOf(x, v)]);
            Assert.Equal(0f, dx[Array.IndexOf(x, -v)]);
        }
        Assert.Equal(0.5f, dx[Array.IndexOf(x, 0f)]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(37)]
    [InlineData(67)]
    public void Gelu_tanh_backward_matches_finite_differences_of_the_double_formula(int length)
    {
        var rng = new Rng(60);
        float[] x = TestTensors.Normal(rng, length, 2.5f), g = TestTensors.Normal(rng, length);
        double[] xd = ReferenceGradient.ToDouble(x);
        double Loss()
        {
            double sum = 0;
            for (int i = 0; i < length; i++) sum += g[i] * GeluTanhLiteral(xd[i]);
            return sum;
        }
        var dx = new float[length];
        Activations.GeluTanhBackward(g, x, dx);
        double error = ReferenceGradient.AssertClose("dx", dx, ReferenceGradient.Numeric(xd, Loss), 1e-6);
        output.WriteLine($"length {length}: max error {error:E2} of the gradient's scale");

        // The kernel's own forward agrees with its backward too (float differences, as the other activations' tests).
        var y = new float[length];
        double FloatLoss() { Activations.GeluTanhForward(x, y); return GradientCheck.Dot(g, y); }
        GradientCheck.Check("dx", x, dx, FloatLoss);
    }

    [Fact]
    public void Silu_forward_and_backward_match_the_formulas_in_double()
    {
        float[] x = Sweep();
        float[] y = new float[x.Length], ones = new float[x.Length], dx = new float[x.Length];
        Array.Fill(ones, 1f);
        Activations.SiluForward(x, y);
        Activations.SiluBackward(ones, x, dx);
        double maxUlps = 0, maxDerivativeError = 0;
        float worstUlps = 0, worstDerivative = 0;
        for (int i = 0; i < x.Length; i++)
        {
            Assert.True(float.IsFinite(y[i]) && float.IsFinite(dx[i]), $"silu({x[i]:R}) = {y[i]:R}, silu'= {dx[i]:R}");
            double reference = Silu(x[i]);
            if (Math.Abs(reference) >= UlpFloor)
            {
                double ulps = Ulps(y[i], reference);
                if (ulps > maxUlps) (maxUlps, worstUlps) = (ulps, x[i]);
            }
            else Assert.True(Math.Abs(y[i] - reference) <= UlpFloor * Math.Max(1, Math.Abs(x[i])), $"silu({x[i]:R}) = {y[i]:R}, expected {reference:R}");
            double error = Math.Abs(dx[i] - SiluDerivative(x[i]));
            if (error > maxDerivativeError) (maxDerivativeError, worstDerivative) = (error, x[i]);
        }
        output.WriteLine($"silu: max {maxUlps:F1} ulps at x = {worstUlps:R}; derivative max abs error {maxDerivativeError:E2} at x = {worstDerivative:R}");
        Assert.True(maxUlps <= 4, $"silu error {maxUlps:F1} ulps at x = {worstUlps:R}");
        Assert.True(maxDerivativeError <= 3e-7, $"silu' error {maxDerivativeError:E2} at x = {worstDerivative:R}");
        Assert.Equal(float.MaxValue, y[Array.IndexOf(x, float.MaxValue)]);
        Assert.Equal(0f, y[Array.IndexOf(x, -float.MaxValue)]);
        Assert.Equal(0f, dx[Array.IndexOf(x, -float.MaxValue)]);
        Assert.Equal(1f, dx[Array.IndexOf(x, 1e20f)]);

        var inPlace = (float[])x.Clone();
        Activations.SiluForward(inPlace, inPlace);
        ThreadSettings.AssertBitIdentical(y, inPlace, "in place");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(45)]
    public void Silu_backward_matches_finite_differences_of_the_double_formula(int length)
    {
        var rng = new Rng(61);
        float[] x = TestTensors.Normal(rng, length, 3f), g = TestTensors.Normal(rng, length);
        double[] xd = ReferenceGradient.ToDouble(x);
        double Loss()
        {
            double sum = 0;
            for (int i = 0; i < length; i++) sum += g[i] * Silu(xd[i]);
            return sum;
        }
        var dx = new float[length];
        Activations.SiluBackward(g, x, dx);
        ReferenceGradient.AssertClose("dx", dx, ReferenceGradient.Numeric(xd, Loss), 1e-6);
    }

    [Fact]
    public void Every_vector_width_and_the_scalar_tail_give_the_same_bits()
    {
        // Element i of a span starting at offset k goes through a different width (and the scalar tail) for different k.
        var rng = new Rng(62);
        float[] x = TestTensors.Normal(rng, 80, 4f), dy = TestTensors.Normal(rng, 80);
        float[] Run(Action<float[], float[], float[]> kernel, int offset)
        {
            float[] xs = x[offset..], dys = dy[offset..], result = new float[xs.Length];
            kernel(xs, dys, result);
            return result;
        }
        var kernels = new (string Name, Action<float[], float[], float[]> Kernel)[]
        {
            ("gelu_tanh", (a, _, r) => Activations.GeluTanhForward(a, r)),
            ("gelu_tanh backward", (a, d, r) => Activations.GeluTanhBackward(d, a, r)),
            ("silu", (a, _, r) => Activations.SiluForward(a, r)),
            ("silu backward", (a, d, r) => Activations.SiluBackward(d, a, r)),
        };
        foreach (var (name, kernel) in kernels)
        {
            float[] whole = Run(kernel, 0);
            for (int offset = 1; offset < 20; offset++)
                ThreadSettings.AssertBitIdentical(whole.AsSpan(offset), Run(kernel, offset), $"{name} from offset {offset}");
        }
    }

    [Fact]
    public void Nan_stays_nan()
    {
        float[] x = { float.NaN, 1f, float.NaN, -2f, 0.5f }, y = new float[5], dx = new float[5], ones = { 1f, 1f, 1f, 1f, 1f };
        Activations.GeluTanhForward(x, y);
        Assert.True(float.IsNaN(y[0]) && float.IsNaN(y[2]) && float.IsFinite(y[1]));
        Activations.GeluTanhBackward(ones, x, dx, overwriteDx: true);
        Assert.True(float.IsNaN(dx[0]) && float.IsNaN(dx[2]) && float.IsFinite(dx[1]));
        Activations.SiluForward(x, y);
        Assert.True(float.IsNaN(y[0]) && float.IsNaN(y[2]) && float.IsFinite(y[1]));
        Activations.SiluBackward(ones, x, dx, overwriteDx: true);
        Assert.True(float.IsNaN(dx[0]) && float.IsNaN(dx[2]) && float.IsFinite(dx[1]));
    }

    public static IEnumerable<object[]> SwiGluShapes()
    {
        foreach (int n in new[] { 1, 5, 33 })
            foreach (int hidden in new[] { 1, 7, 37, 45, 67 })
                yield return new object[] { n, hidden };
    }

    [Theory]
    [MemberData(nameof(SwiGluShapes))]
    public void SwiGlu_forward_matches_double_and_silu_times_up_to_the_bit(int n, int hidden)
    {
        var rng = new Rng(63);
        float[] gateUp = TestTensors.Normal(rng, n * 2 * hidden, 3f);
        float[] y = OverwriteChecks.Poisoned(n * hidden);
        Activations.SwiGluForward(gateUp, y, n, hidden);
        float[] gate = new float[hidden], silu = new float[hidden];
        double maxRelative = 0;
        for (int r = 0; r < n; r++)
        {
            Array.Copy(gateUp, r * 2 * hidden, gate, 0, hidden);
            Activations.SiluForward(gate, silu);
            for (int j = 0; j < hidden; j++)
            {
                float up = gateUp[r * 2 * hidden + hidden + j];
                Assert.Equal(BitConverter.SingleToInt32Bits(silu[j] * up), BitConverter.SingleToInt32Bits(y[r * hidden + j]));
                double expected = Silu(gate[j]) * up;
                if (Math.Abs(expected) < UlpFloor) continue;
                maxRelative = Math.Max(maxRelative, Math.Abs(y[r * hidden + j] - expected) / Math.Abs(expected));
            }
        }
        // silu within 4 ulps (above) and one more rounding: 5 ulps ≤ 6e-7 relative.
        Assert.True(maxRelative <= 6e-7, $"relative error {maxRelative:E2}");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(5, 7)]
    [InlineData(3, 37)]
    [InlineData(2, 67)]
    public void SwiGlu_backward_matches_finite_differences_of_the_double_formula(int n, int hidden)
    {
        var rng = new Rng(64);
        float[] gateUp = TestTensors.Normal(rng, n * 2 * hidden, 2f), g = TestTensors.Normal(rng, n * hidden);
        double[] gateUpD = ReferenceGradient.ToDouble(gateUp);
        double Loss()
        {
            double sum = 0;
            for (int r = 0; r < n; r++)
                for (int j = 0; j < hidden; j++)
                    sum += g[r * hidden + j] * Silu(gateUpD[r * 2 * hidden + j]) * gateUpD[r * 2 * hidden + hidden + j];
            return sum;
        }
        var dGateUp = new float[gateUp.Length];
        Activations.SwiGluBackward(g, gateUp, dGateUp, n, hidden);
        double error = ReferenceGradient.AssertClose("dGateUp", dGateUp, ReferenceGradient.Numeric(gateUpD, Loss), 1e-6);
        output.WriteLine($"n={n} hidden={hidden}: max error {error:E2} of the gradient's scale");

        var twice = (float[])dGateUp.Clone();
        Activations.SwiGluBackward(g, gateUp, twice, n, hidden);
        GradientCheck.AssertDoubled("dGateUp", dGateUp, twice);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 37)]
    [InlineData(2, 20_000)] // one row per block of the split
    public void SwiGlu_backward_stores_both_halves_without_reading_them(int n, int hidden)
    {
        var rng = new Rng(65);
        float[] gateUp = TestTensors.Normal(rng, n * 2 * hidden, 2f), dy = TestTensors.Normal(rng, n * hidden);
        float[] added = new float[gateUp.Length], stored = OverwriteChecks.Poisoned(gateUp.Length);
        Activations.SwiGluBackward(dy, gateUp, added, n, hidden);
        Activations.SwiGluBackward(dy, gateUp, stored, n, hidden, overwriteDGateUp: true);
        OverwriteChecks.AssertSameValues(added, stored, "dGateUp");

        // Accumulating adds to what is there.
        float[] start = TestTensors.Normal(rng, gateUp.Length), accumulated = (float[])start.Clone();
        Activations.SwiGluBackward(dy, gateUp, accumulated, n, hidden);
        for (int i = 0; i < start.Length; i++) Assert.Equal(start[i] + added[i], accumulated[i]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(37)]
    [InlineData(20_000)] // long enough to split
    public void Pointwise_backwards_store_dx_without_reading_it_and_accumulate_otherwise(int length)
    {
        var rng = new Rng(66);
        float[] x = TestTensors.Normal(rng, length, 2f), dy = TestTensors.Normal(rng, length), start = TestTensors.Normal(rng, length);
        foreach (bool gelu in new[] { true, false })
        {
            void Backward(float[] dx, bool overwrite)
            {
                if (gelu) Activations.GeluTanhBackward(dy, x, dx, overwrite);
                else Activations.SiluBackward(dy, x, dx, overwrite);
            }
            string name = gelu ? "gelu_tanh dx" : "silu dx";
            float[] added = new float[length], stored = OverwriteChecks.Poisoned(length), accumulated = (float[])start.Clone();
            Backward(added, false);
            Backward(stored, true);
            Backward(accumulated, false);
            OverwriteChecks.AssertSameValues(added, stored, name);
            for (int i = 0; i < length; i++) Assert.Equal(start[i] + added[i], accumulated[i]);
        }
    }

    [Fact]
    public void Wrong_lengths_and_sizes_throw_naming_the_argument()
    {
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => Activations.GeluTanhForward(new float[5], new float[4])).ParamName);
        Assert.Equal("dx", Assert.Throws<ArgumentException>(() => Activations.GeluTanhBackward(new float[5], new float[5], new float[6])).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Activations.GeluTanhBackward(new float[5], new float[4], new float[5])).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => Activations.SiluForward(new float[5], new float[6])).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Activations.SiluBackward(new float[5], new float[3], new float[5])).ParamName);
        Assert.Equal("dx", Assert.Throws<ArgumentException>(() => Activations.SiluBackward(new float[5], new float[5], new float[4])).ParamName);

        Assert.Equal("gateUp", Assert.Throws<ArgumentException>(() => Activations.SwiGluForward(new float[13], new float[6], 2, 3)).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => Activations.SwiGluForward(new float[12], new float[12], 2, 3)).ParamName);
        Assert.Equal("hidden", Assert.Throws<ArgumentOutOfRangeException>(() => Activations.SwiGluForward(new float[0], new float[0], 2, 0)).ParamName);
        Assert.Equal("n", Assert.Throws<ArgumentOutOfRangeException>(() => Activations.SwiGluForward(new float[0], new float[0], -1, 3)).ParamName);
        Assert.Equal("dy", Assert.Throws<ArgumentException>(() => Activations.SwiGluBackward(new float[5], new float[12], new float[12], 2, 3)).ParamName);
        Assert.Equal("gateUp", Assert.Throws<ArgumentException>(() => Activations.SwiGluBackward(new float[6], new float[6], new float[12], 2, 3)).ParamName);
        Assert.Equal("dGateUp", Assert.Throws<ArgumentException>(() => Activations.SwiGluBackward(new float[6], new float[12], new float[6], 2, 3)).ParamName);
    }
}
