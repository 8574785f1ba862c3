using System;
using System.Collections.Generic;
using TransformerGen.Kernels;
using TransformerGen.Tests.Threading;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Tests.Kernels;

public sealed class RmsNormTests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> Shapes()
    {
        foreach (int n in new[] { 1, 5, 33 })
            foreach (int c in new[] { 1, 7, 37, 45, 67 })
                yield return new object[] { n, c };
    }

    /// <summary>Hugging Face's LlamaRMSNorm in double: rstd = 1/√(mean(x²) + eps), y = w·(x·rstd).</summary>
    private static void Reference(double[] x, double[] weight, double[] y, double[] rstd, int n, int c, double eps)
    {
        for (int i = 0; i < n; i++)
        {
            double sumSquares = 0;
            for (int j = 0; j < c; j++) sumSquares += x[i * c + j] * x[i * c + j];
            rstd[i] = 1 / Math.Sqrt(sumSquares / c + eps);
            for (int j = 0; j < c; j++) y[i * c + j] = weight[j] * (x[i * c + j] * rstd[i]);
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_matches_double_reference(int n, int c)
    {
        const float eps = 1e-6f;
        var rng = new Rng(70);
        float[] x = TestTensors.Normal(rng, n * c, 2f), weight = TestTensors.Normal(rng, c);
        for (int i = 0; i < x.Length; i++) x[i] += 1.5f; // not centred: nothing here subtracts a mean
        float[] y = OverwriteChecks.Poisoned(n * c), rstd = OverwriteChecks.Poisoned(n);
        RmsNorm.Forward(x, weight, y, rstd, n, c, eps);

        double[] yRef = new double[n * c], rstdRef = new double[n];
        Reference(ReferenceGradient.ToDouble(x), ReferenceGradient.ToDouble(weight), yRef, rstdRef, n, c, eps);
        // y is a product (no cancellation), so every element keeps a relative error: the float sum of squares, the
        // square root, the reciprocal and two products, a few times 6e-8.
        double maxRstd = 0, maxY = 0;
        for (int i = 0; i < n; i++) maxRstd = Math.Max(maxRstd, Math.Abs(rstd[i] - rstdRef[i]) / rstdRef[i]);
        for (int k = 0; k < y.Length; k++)
            if (yRef[k] != 0) maxY = Math.Max(maxY, Math.Abs(y[k] - yRef[k]) / Math.Abs(yRef[k]));
        output.WriteLine($"n={n} c={c}: max relative error rstd {maxRstd:E2}, y {maxY:E2}");
        Assert.True(maxRstd <= 5e-7, $"rstd relative error {maxRstd:E2}");
        Assert.True(maxY <= 8e-7, $"y relative error {maxY:E2}");

        // In place gives the same bits.
        float[] inPlace = (float[])x.Clone(), rstd2 = new float[n];
        RmsNorm.Forward(inPlace, weight, inPlace, rstd2, n, c, eps);
        ThreadSettings.AssertBitIdentical(y, inPlace, "in place y");
    }

    [Fact]
    public void A_zero_row_gives_zeros_and_eps_sets_its_rstd()
    {
        float[] x = new float[2 * 5], weight = { 1, 2, 3, 4, 5 }, y = new float[10], rstd = new float[2];
        x[5] = 3f; // second row [3, 0, 0, 0, 0]: mean square 9/5
        RmsNorm.Forward(x, weight, y, rstd, 2, 5, 1e-5f);
        Assert.Equal(1 / Math.Sqrt(1e-5), rstd[0], 1e-6 * 316);
        Assert.All(y[..5], v => Assert.Equal(0f, v));
        Assert.Equal(3 / Math.Sqrt(9.0 / 5 + 1e-5), y[5], 1e-6);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(5, 7)]
    [InlineData(3, 37)]
    [InlineData(2, 67)]
    public void Backward_matches_finite_differences_of_the_double_reference_and_accumulates(int n, int c)
    {
        const float eps = 1e-5f;
        var rng = new Rng(71);
        float[] x = TestTensors.Normal(rng, n * c), weight = TestTensors.Normal(rng, c), g = TestTensors.Normal(rng, n * c);
        float[] y = new float[n * c], rstd = new float[n];
        RmsNorm.Forward(x, weight, y, rstd, n, c, eps);
        float[] dx = new float[n * c], dweight = new float[c];
        RmsNorm.Backward(g, x, weight, rstd, dx, dweight, n, c);

        double[] xd = ReferenceGradient.ToDouble(x), wd = ReferenceGradient.ToDouble(weight), yd = new double[n * c], rd = new double[n];
        double Loss()
        {
            Reference(xd, wd, yd, rd, n, c, eps);
            double sum = 0;
            for (int k = 0; k < yd.Length; k++) sum += g[k] * yd[k];
            return sum;
        }
        // With c = 1, dx = rstd·(g − x̂·g·x̂) is about g·w·rstd·eps/x², a difference of terms of size |g·w·rstd| that
        // float cannot resolve better than a few 1e-8 of them: judged by that size.
        double dxScale = 0;
        if (c == 1)
            for (int i = 0; i < n; i++) dxScale = Math.Max(dxScale, Math.Abs(g[i] * weight[0] * rstd[i]));
        double dxError = ReferenceGradient.AssertClose("dx", dx, ReferenceGradient.Numeric(xd, Loss), 2e-6, dxScale);
        double dwError = ReferenceGradient.AssertClose("dweight", dweight, ReferenceGradient.Numeric(wd, Loss), 2e-6);
        output.WriteLine($"n={n} c={c}: max error dx {dxError:E2}, dweight {dwError:E2} of the gradient's scale");

        // The float forward agrees with the backward too (GradientCheck's float differences, as LayerNorm's test).
        double FloatLoss() { RmsNorm.Forward(x, weight, y, new float[n], n, c, eps); return GradientCheck.Dot(g, y); }
        if (c > 1) GradientCheck.Check("dx", x, dx, FloatLoss, 1e-3f); // c = 1: dx is 0 up to eps, nothing to check
        GradientCheck.Check("dweight", weight, dweight, FloatLoss, 1e-3f);

        float[] dx2 = (float[])dx.Clone(), dweight2 = (float[])dweight.Clone();
        RmsNorm.Backward(g, x, weight, rstd, dx2, dweight2, n, c);
        if (c > 1) GradientCheck.AssertDoubled("dx", dx, dx2);
        GradientCheck.AssertDoubled("dweight", dweight, dweight2);
    }

    [Theory]
    [InlineData(5, 64)]
    [InlineData(40, 200)] // three whole 64-column blocks and a partial one
    [InlineData(33, 37)]
    public void Weight_gradient_adds_each_row_in_order_to_the_bit(int n, int c)
    {
        var rng = new Rng(72);
        float[] x = TestTensors.Normal(rng, n * c, 2f), weight = TestTensors.Normal(rng, c), dy = TestTensors.Normal(rng, n * c);
        float[] y = new float[n * c], rstd = new float[n];
        RmsNorm.Forward(x, weight, y, rstd, n, c, 1e-6f);
        float[] dweight = TestTensors.Normal(rng, c), expected = (float[])dweight.Clone();
        for (int i = 0; i < n; i++)
            for (int j = 0; j < c; j++)
                expected[j] += dy[i * c + j] * (x[i * c + j] * rstd[i]);
        RmsNorm.Backward(dy, x, weight, rstd, new float[n * c], dweight, n, c);
        ThreadSettings.AssertBitIdentical(expected, dweight, "dweight");
    }

    [Theory]
    [InlineData(3, 12)]
    [InlineData(70, 37)] // more rows than one block, a width that is no multiple of the vector width
    public void Overwrite_stores_dx_without_reading_it_and_still_accumulates_dweight(int n, int c)
    {
        var rng = new Rng(73);
        float[] x = TestTensors.Normal(rng, n * c), weight = TestTensors.Normal(rng, c), dy = TestTensors.Normal(rng, n * c);
        float[] y = new float[n * c], rstd = new float[n];
        RmsNorm.Forward(x, weight, y, rstd, n, c, 1e-6f);
        float[] dw0 = TestTensors.Normal(rng, c), dx0 = TestTensors.Normal(rng, n * c);
        float[] dxAdded = new float[n * c], dwAdded = (float[])dw0.Clone();
        RmsNorm.Backward(dy, x, weight, rstd, dxAdded, dwAdded, n, c);
        float[] dxStored = OverwriteChecks.Poisoned(n * c), dwStored = (float[])dw0.Clone();
        RmsNorm.Backward(dy, x, weight, rstd, dxStored, dwStored, n, c, overwriteDx: true);
        OverwriteChecks.AssertSameValues(dxAdded, dxStored, "dx");
        OverwriteChecks.AssertSameValues(dwAdded, dwStored, "dweight");

        float[] dxAccumulated = (float[])dx0.Clone();
        RmsNorm.Backward(dy, x, weight, rstd, dxAccumulated, new float[c], n, c);
        for (int k = 0; k < dx0.Length; k++) Assert.Equal(dx0[k] + dxAdded[k], dxAccumulated[k]);
    }

    [Fact]
    public void Wrong_lengths_and_sizes_throw_naming_the_argument()
    {
        float[] x = new float[12], w = new float[4], y = new float[12], r = new float[3];
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => RmsNorm.Forward(new float[11], w, y, r, 3, 4, 1e-6f)).ParamName);
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => RmsNorm.Forward(x, new float[5], y, r, 3, 4, 1e-6f)).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => RmsNorm.Forward(x, w, new float[13], r, 3, 4, 1e-6f)).ParamName);
        Assert.Equal("rstd", Assert.Throws<ArgumentException>(() => RmsNorm.Forward(x, w, y, new float[2], 3, 4, 1e-6f)).ParamName);
        Assert.Equal("c", Assert.Throws<ArgumentOutOfRangeException>(() => RmsNorm.Forward(x, w, y, r, 3, 0, 1e-6f)).ParamName);
        Assert.Equal("n", Assert.Throws<ArgumentOutOfRangeException>(() => RmsNorm.Forward(x, w, y, r, -3, 4, 1e-6f)).ParamName);
        Assert.Equal("dy", Assert.Throws<ArgumentException>(() => RmsNorm.Backward(new float[4], x, w, r, y, w, 3, 4)).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => RmsNorm.Backward(x, new float[4], w, r, y, w, 3, 4)).ParamName);
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => RmsNorm.Backward(x, x, new float[3], r, y, w, 3, 4)).ParamName);
        Assert.Equal("rstd", Assert.Throws<ArgumentException>(() => RmsNorm.Backward(x, x, w, new float[4], y, w, 3, 4)).ParamName);
        Assert.Equal("dx", Assert.Throws<ArgumentException>(() => RmsNorm.Backward(x, x, w, r, new float[3], w, 3, 4)).ParamName);
        Assert.Equal("dweight", Assert.Throws<ArgumentException>(() => RmsNorm.Backward(x, x, w, r, y, new float[3], 3, 4)).ParamName);
    }
}
