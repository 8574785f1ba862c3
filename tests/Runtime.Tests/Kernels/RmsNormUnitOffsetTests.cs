using System;
using TransformerGen.Kernels;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Tests.Kernels;

/// <summary>
/// Gemma's RMSNorm, <c>y = x̂·(1 + w)</c> with the weight stored as an offset from 1 (<c>unitOffset</c>): against a double
/// reference, finite differences of it, and the plain kernel given <c>1 + w</c> (the same bits: the scale is rounded
/// once, as Gemma3RMSNorm rounds <c>1.0 + weight</c>); for the rows and for the per-head query and key norms; wide rows
/// (past the stack's scale buffer) too.
/// </summary>
public sealed class RmsNormUnitOffsetTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(1, 7)]
    [InlineData(5, 37)]
    [InlineData(3, 4099)]
    public void Rows_scale_by_one_plus_the_weight_and_their_gradients_match_finite_differences(int n, int c)
    {
        const float eps = 1e-6f;
        var rng = new Rng(81);
        float[] x = TestTensors.Normal(rng, n * c, 2f), weight = TestTensors.Normal(rng, c, 0.3f), g = TestTensors.Normal(rng, n * c);
        float[] y = new float[n * c], rstd = new float[n];
        RmsNorm.Forward(x, weight, y, rstd, n, c, eps, unitOffset: true);

        // The plain kernel with the weight plus one: the same bits.
        float[] shifted = Array.ConvertAll(weight, w => w + 1f), plain = new float[n * c];
        RmsNorm.Forward(x, shifted, plain, new float[n], n, c, eps);
        Assert.Equal(plain, y);

        double[] xd = ReferenceGradient.ToDouble(x), wd = ReferenceGradient.ToDouble(weight), yd = new double[n * c];
        double Loss()
        {
            double sum = 0;
            for (int i = 0; i < n; i++)
            {
                double squares = 0;
                for (int j = 0; j < c; j++) squares += xd[i * c + j] * xd[i * c + j];
                double r = 1 / Math.Sqrt(squares / c + eps);
                for (int j = 0; j < c; j++)
                {
                    yd[i * c + j] = xd[i * c + j] * r * (1 + wd[j]);
                    sum += g[i * c + j] * yd[i * c + j];
                }
            }
            return sum;
        }
        Loss();
        double maxY = 0;
        for (int k = 0; k < y.Length; k++) maxY = Math.Max(maxY, Math.Abs(y[k] - yd[k]) / Math.Max(Math.Abs(yd[k]), 1e-3));
        Assert.True(maxY <= 1e-6, $"y relative error {maxY:E2}");

        if (c > 1000) return; // the finite differences of the widest rows are slow and add nothing
        float[] dx = new float[n * c], dweight = new float[c];
        RmsNorm.Backward(g, x, weight, rstd, dx, dweight, n, c, unitOffset: true);
        double dxError = ReferenceGradient.AssertClose("dx", dx, ReferenceGradient.Numeric(xd, Loss), 2e-6);
        double dwError = ReferenceGradient.AssertClose("dweight", dweight, ReferenceGradient.Numeric(wd, Loss), 2e-6);
        output.WriteLine($"n={n} c={c}: y {maxY:E2}, dx {dxError:E2}, dweight {dwError:E2}");

        // Without the offset the input's gradient is another: the flag reaches backward.
        float[] dxPlain = new float[n * c];
        RmsNorm.Backward(g, x, weight, rstd, dxPlain, new float[c], n, c);
        Assert.NotEqual(dx, dxPlain);
    }

    [Theory]
    [InlineData(3, 3, 1, 10)]
    [InlineData(4, 4, 2, 18)]
    public void Query_and_key_heads_scale_by_one_plus_their_weights(int rows, int heads, int kvHeads, int hd)
    {
        const float eps = 1e-6f;
        var rng = new Rng(82);
        int width = (heads + 2 * kvHeads) * hd, normed = heads + kvHeads;
        float[] x = TestTensors.Normal(rng, rows * width, 2f), qw = TestTensors.Normal(rng, hd, 0.3f), kw = TestTensors.Normal(rng, hd, 0.3f), g = TestTensors.Normal(rng, rows * width);
        float[] y = new float[rows * width], rstd = new float[rows * normed];
        RmsNorm.HeadsForward(x, qw, kw, y, rstd, rows, heads, kvHeads, hd, eps, unitOffset: true);
        float[] q1 = Array.ConvertAll(qw, w => w + 1f), k1 = Array.ConvertAll(kw, w => w + 1f);
        float[] plain = new float[rows * width];
        RmsNorm.HeadsForward(x, q1, k1, plain, new float[rows * normed], rows, heads, kvHeads, hd, eps);
        Assert.Equal(plain, y);

        // Backward: the input's gradient is the plain kernel's with 1 + w; the weights' gradients are dy·x̂ either way.
        float[] dx = new float[rows * width], dq = new float[hd], dk = new float[hd];
        RmsNorm.HeadsBackward(g, x, qw, kw, rstd, dx, dq, dk, rows, heads, kvHeads, hd, unitOffset: true);
        float[] dxPlain = new float[rows * width], dqPlain = new float[hd], dkPlain = new float[hd];
        RmsNorm.HeadsBackward(g, x, q1, k1, rstd, dxPlain, dqPlain, dkPlain, rows, heads, kvHeads, hd);
        Assert.Equal(dxPlain, dx);
        Assert.Equal(dqPlain, dq);
        Assert.Equal(dkPlain, dk);
        float[] dxWithout = new float[rows * width];
        RmsNorm.HeadsBackward(g, x, qw, kw, rstd, dxWithout, new float[hd], new float[hd], rows, heads, kvHeads, hd);
        Assert.NotEqual(dx, dxWithout);
    }
}
