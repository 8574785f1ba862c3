using System;
using System.Collections.Generic;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Tests.Kernels;

public class MatMulTests
{
    // Sizes chosen to hit every edge: 1s, rows not a multiple of 4 (or 2), outputs not a multiple of 4, inner
    // dimensions below, at, and between vector widths (masked/scalar tails), and backward's 64-column panels with
    // 16-column strips beside them, its 6-row blocks with 1 to 5 rows left over, and depths past one 256-deep slice
    // (forward too from 128 rows on, where it copies panels of Wᵀ).
    public static IEnumerable<object[]> Shapes() => new[]
    {
        new object[] { 1, 1, 1 }, new object[] { 1, 17, 5 }, new object[] { 17, 33, 65 }, new object[] { 5, 7, 3 },
        new object[] { 4, 16, 4 }, new object[] { 8, 64, 64 }, new object[] { 13, 130, 67 }, new object[] { 3, 200, 9 },
        new object[] { 6, 5, 8 }, new object[] { 66, 48, 12 }, new object[] { 139, 129, 133 }, new object[] { 11, 64, 134 },
        new object[] { 130, 200, 64 }, new object[] { 260, 270, 65 },
    };

    private static IEnumerable<SimdPath> SupportedPaths()
    {
        foreach (SimdPath path in Enum.GetValues<SimdPath>())
            if (Simd.IsSupported(path)) yield return path;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_matches_double_reference_on_every_path(int n, int inF, int outF)
    {
        var rng = new Rng(1);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF), b = TestTensors.Normal(rng, outF);
        foreach (SimdPath path in SupportedPaths())
            foreach (bool withBias in new[] { true, false })
            {
                var y = new float[n * outF];
                Array.Fill(y, float.NaN); // must be overwritten
                MatMul.Forward(x, w, withBias ? b : ReadOnlySpan<float>.Empty, y, n, inF, outF, path);
                for (int i = 0; i < n; i++)
                    for (int o = 0; o < outF; o++)
                    {
                        double sum = withBias ? b[o] : 0, magnitude = withBias ? Math.Abs(b[o]) : 0;
                        for (int k = 0; k < inF; k++)
                        {
                            sum += (double)x[i * inF + k] * w[o * inF + k];
                            magnitude += Math.Abs((double)x[i * inF + k] * w[o * inF + k]);
                        }
                        Assert.True(Math.Abs(y[i * outF + o] - sum) <= 1e-6 * (magnitude + 1),
                            $"{path} bias={withBias} y[{i},{o}] = {y[i * outF + o]}, expected {sum}");
                    }
            }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Backward_matches_double_reference_on_every_path(int n, int inF, int outF)
    {
        var rng = new Rng(2);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF), dy = TestTensors.Normal(rng, n * outF);
        float[] dx0 = TestTensors.Normal(rng, n * inF), dw0 = TestTensors.Normal(rng, outF * inF), db0 = TestTensors.Normal(rng, outF);
        foreach (SimdPath path in SupportedPaths())
        {
            float[] dx = (float[])dx0.Clone(), dw = (float[])dw0.Clone(), db = (float[])db0.Clone();
            MatMul.Backward(dy, x, w, dx, dw, db, n, inF, outF, path);
            for (int i = 0; i < n; i++)
                for (int k = 0; k < inF; k++)
                {
                    double sum = dx0[i * inF + k], magnitude = Math.Abs(sum);
                    for (int o = 0; o < outF; o++) { sum += (double)dy[i * outF + o] * w[o * inF + k]; magnitude += Math.Abs((double)dy[i * outF + o] * w[o * inF + k]); }
                    Assert.True(Math.Abs(dx[i * inF + k] - sum) <= 1e-6 * (magnitude + 1), $"{path} dx[{i},{k}] = {dx[i * inF + k]}, expected {sum}");
                }
            for (int o = 0; o < outF; o++)
            {
                for (int k = 0; k < inF; k++)
                {
                    double sum = dw0[o * inF + k], magnitude = Math.Abs(sum);
                    for (int i = 0; i < n; i++) { sum += (double)dy[i * outF + o] * x[i * inF + k]; magnitude += Math.Abs((double)dy[i * outF + o] * x[i * inF + k]); }
                    Assert.True(Math.Abs(dw[o * inF + k] - sum) <= 1e-6 * (magnitude + 1), $"{path} dw[{o},{k}] = {dw[o * inF + k]}, expected {sum}");
                }
                double bSum = db0[o];
                for (int i = 0; i < n; i++) bSum += dy[i * outF + o];
                Assert.True(Math.Abs(db[o] - bSum) <= 1e-5 * (Math.Abs(bSum) + n), $"{path} db[{o}] = {db[o]}, expected {bSum}");
            }
        }
    }

    [Theory]
    [InlineData(7, 13, 33)]
    [InlineData(5, 33, 7)]
    [InlineData(1, 7, 13)]
    public void Backward_matches_finite_differences(int n, int inF, int outF)
    {
        var rng = new Rng(3);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF, 0.3f), b = TestTensors.Normal(rng, outF);
        float[] g = TestTensors.Normal(rng, n * outF);
        var y = new float[n * outF];
        double Loss() { MatMul.Forward(x, w, b, y, n, inF, outF); return GradientCheck.Dot(g, y); }

        float[] dx = new float[x.Length], dw = new float[w.Length], db = new float[b.Length];
        MatMul.Backward(g, x, w, dx, dw, db, n, inF, outF);
        GradientCheck.Check("dx", x, dx, Loss);
        GradientCheck.Check("dw", w, dw, Loss);
        GradientCheck.Check("dbias", b, db, Loss);

        float[] dx2 = (float[])dx.Clone(), dw2 = (float[])dw.Clone(), db2 = (float[])db.Clone();
        MatMul.Backward(g, x, w, dx2, dw2, db2, n, inF, outF);
        GradientCheck.AssertDoubled("dx", dx, dx2);
        GradientCheck.AssertDoubled("dw", dw, dw2);
        GradientCheck.AssertDoubled("dbias", db, db2);
    }

    [Fact]
    public void Backward_without_input_gradient_or_bias_still_gives_weight_gradient()
    {
        var rng = new Rng(4);
        int n = 5, inF = 9, outF = 6;
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF), dy = TestTensors.Normal(rng, n * outF);
        float[] dwFull = new float[w.Length], dwOnly = new float[w.Length];
        MatMul.Backward(dy, x, w, new float[n * inF], dwFull, new float[outF], n, inF, outF);
        MatMul.Backward(dy, x, w, Span<float>.Empty, dwOnly, Span<float>.Empty, n, inF, outF);
        Assert.Equal(dwFull, dwOnly);
    }

    [Fact]
    public void Wrong_lengths_throw_naming_the_argument_and_both_lengths()
    {
        var ex = Assert.Throws<ArgumentException>(() => MatMul.Forward(new float[11], new float[12], new float[4], new float[12], 3, 4, 4));
        Assert.Equal("x", ex.ParamName);
        Assert.Contains("11", ex.Message);
        Assert.Contains("12", ex.Message);
        Assert.Equal("bias", Assert.Throws<ArgumentException>(() => MatMul.Forward(new float[12], new float[16], new float[3], new float[12], 3, 4, 4)).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => MatMul.Forward(new float[12], new float[16], new float[4], new float[13], 3, 4, 4)).ParamName);
        Assert.Equal("dw", Assert.Throws<ArgumentException>(() => MatMul.Backward(new float[12], new float[12], new float[16], new float[12], new float[15], new float[4], 3, 4, 4)).ParamName);
        Assert.Equal("dx", Assert.Throws<ArgumentException>(() => MatMul.Backward(new float[12], new float[12], new float[16], new float[5], new float[16], new float[4], 3, 4, 4)).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => MatMul.Forward(new float[0], new float[0], new float[0], new float[0], -1, 4, 0));
    }
}
