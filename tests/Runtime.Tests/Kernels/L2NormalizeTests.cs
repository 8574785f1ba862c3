using System;
using System.Collections.Generic;
using TransformerGen.Kernels;
using TransformerGen.Tests.Threading;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Tests.Kernels;

public sealed class L2NormalizeTests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> Shapes()
    {
        foreach (int n in new[] { 1, 5, 33 })
            foreach (int c in new[] { 1, 7, 37, 45, 67 })
                yield return new object[] { n, c };
    }

    /// <summary>F.normalize in double: y = x / max(‖x‖₂, eps) per row.</summary>
    private static void Reference(double[] x, double[] y, double[] norms, int n, int c, double eps)
    {
        for (int i = 0; i < n; i++)
        {
            double sumSquares = 0;
            for (int j = 0; j < c; j++) sumSquares += x[i * c + j] * x[i * c + j];
            norms[i] = Math.Sqrt(sumSquares);
            for (int j = 0; j < c; j++) y[i * c + j] = x[i * c + j] / Math.Max(norms[i], eps);
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_matches_double_reference(int n, int c)
    {
        var rng = new Rng(80);
        float[] x = TestTensors.Normal(rng, n * c, 3f);
        float[] y = OverwriteChecks.Poisoned(n * c), norms = OverwriteChecks.Poisoned(n);
        L2Normalize.Forward(x, y, norms, n, c);

        double[] yRef = new double[n * c], normsRef = new double[n];
        Reference(ReferenceGradient.ToDouble(x), yRef, normsRef, n, c, 1e-12);
        // A quotient: every element keeps a relative error (the float sum of squares, the root and the division).
        double maxNorm = 0, maxY = 0;
        for (int i = 0; i < n; i++) maxNorm = Math.Max(maxNorm, Math.Abs(norms[i] - normsRef[i]) / normsRef[i]);
        for (int k = 0; k < y.Length; k++)
            if (yRef[k] != 0) maxY = Math.Max(maxY, Math.Abs(y[k] - yRef[k]) / Math.Abs(yRef[k]));
        output.WriteLine($"n={n} c={c}: max relative error norms {maxNorm:E2}, y {maxY:E2}");
        Assert.True(maxNorm <= 3e-7, $"norm relative error {maxNorm:E2}");
        Assert.True(maxY <= 4e-7, $"y relative error {maxY:E2}");

        float[] inPlace = (float[])x.Clone();
        L2Normalize.Forward(inPlace, inPlace, new float[n], n, c);
        ThreadSettings.AssertBitIdentical(y, inPlace, "in place y");
    }

    [Fact]
    public void Rows_shorter_than_eps_are_divided_by_eps_and_the_unclamped_norm_is_saved()
    {
        // Row 0: zeros. Row 1: norm 5e-13 < eps = 1e-12. Row 2: norm 5.
        float[] x = { 0f, 0f, 3e-13f, 4e-13f, 3f, 4f }, y = new float[6], norms = new float[3];
        L2Normalize.Forward(x, y, norms, 3, 2);
        Assert.Equal(new[] { 0f, 0f }, y[..2]);
        Assert.Equal(0f, norms[0]);
        Assert.Equal(5e-13, norms[1], 1e-19);
        Assert.Equal(3e-13f / 1e-12f, y[2]);
        Assert.Equal(4e-13f / 1e-12f, y[3]);
        Assert.Equal(new[] { 0.6f, 0.8f }, y[4..]);
        Assert.Equal(5f, norms[2]);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(5, 7)]
    [InlineData(3, 37)]
    [InlineData(2, 67)]
    public void Backward_matches_finite_differences_of_the_double_reference_on_both_branches(int n, int c)
    {
        // eps = 0.5 with rows scaled so that about half fall below it (norms 2·0.05·√c … vs 0.5), far enough from it
        // that the finite differences stay on one side.
        const float eps = 0.5f;
        var rng = new Rng(81);
        float[] x = TestTensors.Normal(rng, n * c), g = TestTensors.Normal(rng, n * c);
        for (int i = 0; i < n; i++)
        {
            float norm = 0;
            for (int j = 0; j < c; j++) norm += x[i * c + j] * x[i * c + j];
            float target = i % 2 == 0 ? 2f : 0.2f;
            for (int j = 0; j < c; j++) x[i * c + j] *= target / MathF.Sqrt(norm);
        }
        float[] y = new float[n * c], norms = new float[n];
        L2Normalize.Forward(x, y, norms, n, c, eps);
        float[] dx = new float[n * c];
        L2Normalize.Backward(g, y, norms, dx, n, c, eps);

        double[] xd = ReferenceGradient.ToDouble(x), yd = new double[n * c], nd = new double[n];
        double Loss()
        {
            Reference(xd, yd, nd, n, c, eps);
            double sum = 0;
            for (int k = 0; k < yd.Length; k++) sum += g[k] * yd[k];
            return sum;
        }
        // c = 1 above eps: y = sign(x), dx exactly 0 up to rounding of dy − y·(y·dy); judged by |dy|/norm.
        double scale = 0;
        if (c == 1)
            for (int i = 0; i < n; i++) scale = Math.Max(scale, Math.Abs(g[i]) / Math.Max(norms[i], eps));
        double error = ReferenceGradient.AssertClose("dx", dx, ReferenceGradient.Numeric(xd, Loss), 2e-6, scale);
        output.WriteLine($"n={n} c={c}: max error {error:E2} of the gradient's scale");

        float[] twice = (float[])dx.Clone();
        L2Normalize.Backward(g, y, norms, twice, n, c, eps);
        if (n > 1 || c > 1) GradientCheck.AssertDoubled("dx", dx, twice);
    }

    [Fact]
    public void A_row_exactly_at_eps_takes_the_unclamped_gradient_as_torch_clamp_min_does()
    {
        // x = [0.5, 0, 0], eps = 0.5: norm = eps, y = [1, 0, 0]; clamp_min passes its gradient where input ≥ min, so
        // dx = (dy − y·(y·dy))/norm = [0, 2·dy₁, 2·dy₂], not dy/eps = [2·dy₀, 2·dy₁, 2·dy₂].
        float[] x = { 0.5f, 0f, 0f }, y = new float[3], norms = new float[1], dy = { 1f, 2f, 3f }, dx = new float[3];
        L2Normalize.Forward(x, y, norms, 1, 3, 0.5f);
        L2Normalize.Backward(dy, y, norms, dx, 1, 3, 0.5f);
        Assert.Equal(new[] { 0f, 4f, 6f }, dx);
    }

    [Theory]
    [InlineData(3, 12)]
    [InlineData(70, 37)]
    public void Overwrite_stores_dx_without_reading_it_and_accumulate_adds(int n, int c)
    {
        var rng = new Rng(82);
        float[] x = TestTensors.Normal(rng, n * c), dy = TestTensors.Normal(rng, n * c), dx0 = TestTensors.Normal(rng, n * c);
        x.AsSpan(0, c).Clear(); // a zero row: the clamped branch
        float[] y = new float[n * c], norms = new float[n];
        L2Normalize.Forward(x, y, norms, n, c);
        float[] added = new float[n * c], stored = OverwriteChecks.Poisoned(n * c), accumulated = (float[])dx0.Clone();
        L2Normalize.Backward(dy, y, norms, added, n, c);
        L2Normalize.Backward(dy, y, norms, stored, n, c, overwriteDx: true);
        L2Normalize.Backward(dy, y, norms, accumulated, n, c);
        OverwriteChecks.AssertSameValues(added, stored, "dx");
        for (int k = 0; k < dx0.Length; k++) Assert.Equal(dx0[k] + added[k], accumulated[k]);
        Assert.Equal(dy[0] / 1e-12f, added[0]);
    }

    [Fact]
    public void Wrong_lengths_and_sizes_throw_naming_the_argument()
    {
        float[] x = new float[12], norms = new float[3];
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => L2Normalize.Forward(new float[11], x, norms, 3, 4)).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => L2Normalize.Forward(x, new float[13], norms, 3, 4)).ParamName);
        Assert.Equal("norms", Assert.Throws<ArgumentException>(() => L2Normalize.Forward(x, x, new float[4], 3, 4)).ParamName);
        Assert.Equal("c", Assert.Throws<ArgumentOutOfRangeException>(() => L2Normalize.Forward(x, x, norms, 3, 0)).ParamName);
        Assert.Equal("n", Assert.Throws<ArgumentOutOfRangeException>(() => L2Normalize.Forward(x, x, norms, -1, 4)).ParamName);
        Assert.Equal("dy", Assert.Throws<ArgumentException>(() => L2Normalize.Backward(new float[4], x, norms, x, 3, 4)).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => L2Normalize.Backward(x, new float[4], norms, x, 3, 4)).ParamName);
        Assert.Equal("norms", Assert.Throws<ArgumentException>(() => L2Normalize.Backward(x, x, new float[2], x, 3, 4)).ParamName);
        Assert.Equal("dx", Assert.Throws<ArgumentException>(() => L2Normalize.Backward(x, x, norms, new float[3], 3, 4)).ParamName);
    }
}
