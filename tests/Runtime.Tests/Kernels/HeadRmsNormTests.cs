using System;
using TransformerGen.Kernels;
using TransformerGen.Tests.Threading;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Tests.Kernels;

/// <summary>
/// Qwen3's per-head query and key norms over a packed Q | K | V projection (<see cref="RmsNorm.HeadsForward"/>,
/// <see cref="RmsNorm.HeadsBackward"/>): against a double reference written head by head, finite differences, and the
/// row kernel on each head; values pass through; any thread count gives the same bits.
/// </summary>
public sealed class HeadRmsNormTests(ITestOutputHelper output)
{
    /// <summary>Qwen3Attention in double: q_norm over each query head's channels, k_norm over each key head's, v unchanged.</summary>
    private static void Reference(double[] x, double[] qw, double[] kw, double[] y, int rows, int heads, int kvHeads, int hd, double eps)
    {
        int width = (heads + 2 * kvHeads) * hd;
        for (int i = 0; i < rows; i++)
            for (int g = 0; g < heads + 2 * kvHeads; g++)
            {
                int at = i * width + g * hd;
                if (g >= heads + kvHeads)
                {
                    for (int j = 0; j < hd; j++) y[at + j] = x[at + j];
                    continue;
                }
                double sum = 0;
                for (int j = 0; j < hd; j++) sum += x[at + j] * x[at + j];
                double r = 1 / Math.Sqrt(sum / hd + eps);
                double[] w = g < heads ? qw : kw;
                for (int j = 0; j < hd; j++) y[at + j] = w[j] * (x[at + j] * r);
            }
    }

    [Theory]
    [InlineData(1, 2, 1, 6)]
    [InlineData(5, 3, 3, 10)]   // multi-head: as many key heads as query heads
    [InlineData(7, 4, 2, 18)]   // grouped-query
    [InlineData(3, 3, 1, 34)]   // multi-query, a head wider than a vector
    public void Forward_and_backward_match_the_double_reference_and_finite_differences(int rows, int heads, int kvHeads, int hd)
    {
        const float eps = 1e-6f;
        var rng = new Rng(72);
        int width = (heads + 2 * kvHeads) * hd, normed = heads + kvHeads;
        float[] x = TestTensors.Normal(rng, rows * width, 2f), qw = TestTensors.Normal(rng, hd), kw = TestTensors.Normal(rng, hd), g = TestTensors.Normal(rng, rows * width);
        for (int i = 0; i < x.Length; i++) x[i] += 0.5f;
        float[] y = OverwriteChecks.Poisoned(rows * width), rstd = OverwriteChecks.Poisoned(rows * normed);
        RmsNorm.HeadsForward(x, qw, kw, y, rstd, rows, heads, kvHeads, hd, eps);

        double[] xd = ReferenceGradient.ToDouble(x), qd = ReferenceGradient.ToDouble(qw), kd = ReferenceGradient.ToDouble(kw), yd = new double[rows * width];
        Reference(xd, qd, kd, yd, rows, heads, kvHeads, hd, eps);
        double maxY = 0;
        for (int k = 0; k < y.Length; k++)
            if (yd[k] != 0) maxY = Math.Max(maxY, Math.Abs(y[k] - yd[k]) / Math.Abs(yd[k]));
        Assert.True(maxY <= 8e-7, $"y relative error {maxY:E2}");
        for (int i = 0; i < rows; i++) // the values are copied exactly
            for (int j = normed * hd; j < width; j++) Assert.Equal(x[i * width + j], y[i * width + j]);

        float[] dx = OverwriteChecks.Poisoned(rows * width), dq = new float[hd], dk = new float[hd];
        RmsNorm.HeadsBackward(g, x, qw, kw, rstd, dx, dq, dk, rows, heads, kvHeads, hd, overwriteDx: true);
        double Loss()
        {
            Reference(xd, qd, kd, yd, rows, heads, kvHeads, hd, eps);
            double sum = 0;
            for (int k = 0; k < yd.Length; k++) sum += g[k] * yd[k];
            return sum;
        }
        double dxError = ReferenceGradient.AssertClose("dx", dx, ReferenceGradient.Numeric(xd, Loss), 2e-6);
        double dqError = ReferenceGradient.AssertClose("dQueryWeight", dq, ReferenceGradient.Numeric(qd, Loss), 2e-6);
        double dkError = ReferenceGradient.AssertClose("dKeyWeight", dk, ReferenceGradient.Numeric(kd, Loss), 2e-6);
        output.WriteLine($"rows={rows} heads={heads}/{kvHeads} hd={hd}: y {maxY:E2}, dx {dxError:E2}, dq {dqError:E2}, dk {dkError:E2}");

        // Accumulating: a second call adds the same again.
        float[] dx2 = (float[])dx.Clone(), dq2 = (float[])dq.Clone(), dk2 = (float[])dk.Clone();
        RmsNorm.HeadsBackward(g, x, qw, kw, rstd, dx2, dq2, dk2, rows, heads, kvHeads, hd);
        GradientCheck.AssertDoubled("dx", dx, dx2);
        GradientCheck.AssertDoubled("dQueryWeight", dq, dq2);
        GradientCheck.AssertDoubled("dKeyWeight", dk, dk2);
    }

    [Fact]
    public void Each_head_is_what_the_row_kernel_gives_it()
    {
        const int rows = 3, heads = 4, kvHeads = 2, hd = 20, width = (heads + 2 * kvHeads) * hd;
        var rng = new Rng(73);
        float[] x = TestTensors.Normal(rng, rows * width), qw = TestTensors.Normal(rng, hd), kw = TestTensors.Normal(rng, hd);
        float[] y = new float[rows * width], rstd = new float[rows * (heads + kvHeads)];
        RmsNorm.HeadsForward(x, qw, kw, y, rstd, rows, heads, kvHeads, hd, 1e-6f);
        for (int i = 0; i < rows; i++)
            for (int h = 0; h < heads + kvHeads; h++)
            {
                float[] one = new float[hd], r = new float[1];
                RmsNorm.Forward(x.AsSpan(i * width + h * hd, hd), h < heads ? qw : kw, one, r, 1, hd, 1e-6f);
                ThreadSettings.AssertBitIdentical(one, y.AsSpan(i * width + h * hd, hd).ToArray(), $"row {i} head {h}");
                Assert.Equal(r[0], rstd[i * (heads + kvHeads) + h]);
            }
    }

    [Fact]
    public void Wrong_lengths_throw_naming_the_argument()
    {
        float[] x = new float[2 * 4 * 3], w = new float[3], rstd = new float[2 * 3];
        Assert.Equal("y", Assert.ThrowsAny<ArgumentException>(() => RmsNorm.HeadsForward(x, w, w, new float[5], rstd, 2, 2, 1, 3, 1e-6f)).ParamName);
        Assert.Equal("rstd", Assert.ThrowsAny<ArgumentException>(() => RmsNorm.HeadsForward(x, w, w, new float[24], new float[4], 2, 2, 1, 3, 1e-6f)).ParamName);
        Assert.Equal("kvHeads", Assert.ThrowsAny<ArgumentException>(() => RmsNorm.HeadsForward(x, w, w, new float[24], rstd, 2, 2, 0, 3, 1e-6f)).ParamName);
        Assert.Equal("dKeyWeight", Assert.ThrowsAny<ArgumentException>(() => RmsNorm.HeadsBackward(x, x, w, w, rstd, new float[24], w, new float[2], 2, 2, 1, 3)).ParamName);
        float[] both = new float[48];
        Assert.Equal("y", Assert.ThrowsAny<ArgumentException>(() => RmsNorm.HeadsForward(both.AsSpan(0, 24), w, w, both.AsSpan(12, 24), rstd, 2, 2, 1, 3, 1e-6f)).ParamName);
    }
}

/// <summary>The head norms split rows between threads: the same bits on 1, 2 and 3 threads.</summary>
[Collection(ThreadSettingsCollection.Name)]
public sealed class HeadRmsNormThreadTests
{
    [Fact]
    public void Any_thread_count_gives_the_same_bits()
    {
        const int rows = 97, heads = 4, kvHeads = 2, hd = 24, width = (heads + 2 * kvHeads) * hd;
        var rng = new Rng(74);
        float[] x = TestTensors.Normal(rng, rows * width), qw = TestTensors.Normal(rng, hd), kw = TestTensors.Normal(rng, hd), g = TestTensors.Normal(rng, rows * width);
        (float[] Y, float[] Dx, float[] Dq, float[] Dk) Run()
        {
            float[] y = new float[rows * width], rstd = new float[rows * (heads + kvHeads)], dx = new float[rows * width], dq = new float[hd], dk = new float[hd];
            RmsNorm.HeadsForward(x, qw, kw, y, rstd, rows, heads, kvHeads, hd, 1e-6f);
            RmsNorm.HeadsBackward(g, x, qw, kw, rstd, dx, dq, dk, rows, heads, kvHeads, hd);
            return (y, dx, dq, dk);
        }
        var one = RunOn(1, Run);
        foreach (int threads in new[] { 2, 3 })
        {
            var many = RunOn(threads, Run);
            ThreadSettings.AssertBitIdentical(one.Y, many.Y, $"y on {threads} threads");
            ThreadSettings.AssertBitIdentical(one.Dx, many.Dx, $"dx on {threads} threads");
            ThreadSettings.AssertBitIdentical(one.Dq, many.Dq, $"dq on {threads} threads");
            ThreadSettings.AssertBitIdentical(one.Dk, many.Dk, $"dk on {threads} threads");
        }
    }

    private static T RunOn<T>(int threads, Func<T> run)
    {
        using var settings = new ThreadSettings(threads);
        return run();
    }
}
