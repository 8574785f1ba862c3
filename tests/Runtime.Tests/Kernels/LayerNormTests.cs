using System;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Tests.Kernels;

public class LayerNormTests
{
    [Theory]
    [InlineData(7, 13)]
    [InlineData(3, 33)]
    [InlineData(2, 1)]
    public void Forward_matches_double_reference(int n, int c)
    {
        var rng = new Rng(20);
        float[] x = TestTensors.Normal(rng, n * c, 2f), gamma = TestTensors.Normal(rng, c), beta = TestTensors.Normal(rng, c);
        for (int i = 0; i < x.Length; i++) x[i] += 5f; // a mean far from zero tests the two-pass variance
        float[] y = new float[n * c], mean = new float[n], rstd = new float[n];
        LayerNorm.Forward(x, gamma, beta, y, mean, rstd, n, c);
        for (int i = 0; i < n; i++)
        {
            double mu = 0, var = 0;
            for (int j = 0; j < c; j++) mu += x[i * c + j];
            mu /= c;
            for (int j = 0; j < c; j++) var += (x[i * c + j] - mu) * (x[i * c + j] - mu);
            var /= c;
            double rs = 1 / Math.Sqrt(var + 1e-5);
            Assert.Equal(mu, mean[i], 1e-5);
            Assert.True(Math.Abs(rstd[i] - rs) <= 1e-5 * rs, $"rstd[{i}] = {rstd[i]}, expected {rs}");
            for (int j = 0; j < c; j++)
            {
                double expected = (x[i * c + j] - mu) * rs * gamma[j] + beta[j];
                Assert.True(Math.Abs(y[i * c + j] - expected) <= 1e-5 * (1 + Math.Abs(expected)), $"y[{i},{j}] = {y[i * c + j]}, expected {expected}");
            }
        }
    }

    [Theory]
    [InlineData(7, 13)]
    [InlineData(3, 33)]
    public void Backward_matches_finite_differences_and_accumulates(int n, int c)
    {
        var rng = new Rng(21);
        float[] x = TestTensors.Normal(rng, n * c), gamma = TestTensors.Normal(rng, c), beta = TestTensors.Normal(rng, c);
        float[] g = TestTensors.Normal(rng, n * c);
        float[] y = new float[n * c], mean = new float[n], rstd = new float[n];
        double Loss() { LayerNorm.Forward(x, gamma, beta, y, mean, rstd, n, c); return GradientCheck.Dot(g, y); }

        Loss(); // fills mean and rstd for the unperturbed input
        float[] savedMean = (float[])mean.Clone(), savedRstd = (float[])rstd.Clone();
        float[] dx = new float[x.Length], dgamma = new float[c], dbeta = new float[c];
        LayerNorm.Backward(g, x, gamma, savedMean, savedRstd, dx, dgamma, dbeta, n, c);
        GradientCheck.Check("dx", x, dx, Loss, 1e-3f);
        GradientCheck.Check("dgamma", gamma, dgamma, Loss, 1e-3f);
        GradientCheck.Check("dbeta", beta, dbeta, Loss, 1e-3f);

        float[] dx2 = (float[])dx.Clone(), dgamma2 = (float[])dgamma.Clone(), dbeta2 = (float[])dbeta.Clone();
        LayerNorm.Backward(g, x, gamma, savedMean, savedRstd, dx2, dgamma2, dbeta2, n, c);
        GradientCheck.AssertDoubled("dx", dx, dx2);
        GradientCheck.AssertDoubled("dgamma", dgamma, dgamma2);
        GradientCheck.AssertDoubled("dbeta", dbeta, dbeta2);
    }

    [Theory]
    [InlineData(5, 64)]
    [InlineData(40, 200)] // three whole 64-column blocks and a partial one
    public void Parameter_gradients_add_each_row_in_order_to_the_bit(int n, int c)
    {
        // dgamma[j] and dbeta[j] are sums over the rows in row order, whichever block and vector width computes them,
        // so they equal this scalar loop bit for bit (and do not depend on how the columns are split).
        var rng = new Rng(31);
        float[] x = TestTensors.Normal(rng, n * c, 2f), gamma = TestTensors.Normal(rng, c), beta = TestTensors.Normal(rng, c), dy = TestTensors.Normal(rng, n * c);
        float[] y = new float[n * c], mean = new float[n], rstd = new float[n];
        LayerNorm.Forward(x, gamma, beta, y, mean, rstd, n, c);
        float[] dgamma = TestTensors.Normal(rng, c), dbeta = TestTensors.Normal(rng, c);
        float[] expectedGamma = (float[])dgamma.Clone(), expectedBeta = (float[])dbeta.Clone();
        for (int i = 0; i < n; i++)
            for (int j = 0; j < c; j++)
            {
                float d = dy[i * c + j];
                expectedGamma[j] += d * ((x[i * c + j] - mean[i]) * rstd[i]);
                expectedBeta[j] += d;
            }
        LayerNorm.Backward(dy, x, gamma, mean, rstd, new float[n * c], dgamma, dbeta, n, c);
        for (int j = 0; j < c; j++)
        {
            Assert.True(BitConverter.SingleToInt32Bits(expectedGamma[j]) == BitConverter.SingleToInt32Bits(dgamma[j]), $"dgamma[{j}] = {dgamma[j]:R}, the row-order sum is {expectedGamma[j]:R}");
            Assert.True(BitConverter.SingleToInt32Bits(expectedBeta[j]) == BitConverter.SingleToInt32Bits(dbeta[j]), $"dbeta[{j}] = {dbeta[j]:R}, the row-order sum is {expectedBeta[j]:R}");
        }
    }

    [Theory]
    [InlineData(7, 13)]
    [InlineData(40, 200)] // whole 64-column blocks of the parameter gradient and a partial one
    public void Without_a_shift_it_is_the_shifted_norm_with_beta_zero_and_leaves_no_beta_gradient(int n, int c)
    {
        // nn.LayerNorm(c, bias=False) (ModernBERT's norms): an empty beta, and an empty dbeta in the backward pass.
        var rng = new Rng(22);
        float[] x = TestTensors.Normal(rng, n * c, 2f), gamma = TestTensors.Normal(rng, c), g = TestTensors.Normal(rng, n * c);
        float[] y = new float[n * c], mean = new float[n], rstd = new float[n];
        float[] zeroY = new float[n * c], zeroMean = new float[n], zeroRstd = new float[n];
        LayerNorm.Forward(x, gamma, default, y, mean, rstd, n, c);
        LayerNorm.Forward(x, gamma, new float[c], zeroY, zeroMean, zeroRstd, n, c);
        Assert.Equal(zeroY, y);
        Assert.Equal(zeroMean, mean);
        Assert.Equal(zeroRstd, rstd);

        float[] dx = new float[n * c], dgamma = new float[c], zeroDx = new float[n * c], zeroDgamma = new float[c];
        LayerNorm.Backward(g, x, gamma, mean, rstd, dx, dgamma, default, n, c);
        LayerNorm.Backward(g, x, gamma, mean, rstd, zeroDx, zeroDgamma, new float[c], n, c);
        Assert.Equal(zeroDx, dx);
        Assert.Equal(zeroDgamma, dgamma);

        double Loss() { LayerNorm.Forward(x, gamma, default, y, mean, rstd, n, c); return GradientCheck.Dot(g, y); }
        if (n * c < 1000)
        {
            GradientCheck.Check("dx", x, dx, Loss, 1e-3f);
            GradientCheck.Check("dgamma", gamma, dgamma, Loss, 1e-3f);
        }
    }

    [Fact]
    public void Wrong_lengths_throw()
    {
        float[] x = new float[12], p = new float[4], y = new float[12], s = new float[3];
        Assert.Equal("gamma", Assert.Throws<ArgumentException>(() => LayerNorm.Forward(x, new float[5], p, y, s, s, 3, 4)).ParamName);
        Assert.Equal("mean", Assert.Throws<ArgumentException>(() => LayerNorm.Forward(x, p, p, y, new float[2], s, 3, 4)).ParamName);
        Assert.Equal("dbeta", Assert.Throws<ArgumentException>(() => LayerNorm.Backward(x, x, p, s, s, y, p, new float[3], 3, 4)).ParamName);
        Assert.Equal("beta", Assert.Throws<ArgumentException>(() => LayerNorm.Forward(x, p, new float[3], y, s, s, 3, 4)).ParamName);
    }
}
