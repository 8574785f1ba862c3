using System;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Tests.Kernels;

// The attribute library's enum TransformerGen.Pooling would win name lookup inside TransformerGen.* namespaces.
using Pooling = TransformerGen.Kernels.Pooling;

public class PoolingTests
{
    private const int Batch = 3, SeqLen = 5, C = 7;

    /// <summary>Sequence 0 unpadded, sequence 1 with positions 1 and 4 padded, sequence 2 all padding.</summary>
    private static byte[] Padding()
    {
        var padding = new byte[Batch * SeqLen];
        padding[1 * SeqLen + 1] = padding[1 * SeqLen + 4] = 1;
        Array.Fill(padding, (byte)1, 2 * SeqLen, SeqLen);
        return padding;
    }

    private static double[] MeanReference(float[] x, byte[] padding)
    {
        var y = new double[Batch * C];
        for (int b = 0; b < Batch; b++)
        {
            int n = 0;
            for (int t = 0; t < SeqLen; t++)
            {
                if (padding.Length > 0 && padding[b * SeqLen + t] != 0) continue;
                n++;
                for (int j = 0; j < C; j++) y[b * C + j] += x[(b * SeqLen + t) * C + j];
            }
            for (int j = 0; j < C; j++) y[b * C + j] = n == 0 ? 0 : y[b * C + j] / n;
        }
        return y;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Mean_forward_matches_reference_and_is_zero_for_an_all_padding_sequence(bool padded)
    {
        byte[] padding = padded ? Padding() : [];
        float[] x = TestTensors.Normal(new Rng(70), Batch * SeqLen * C);
        var y = new float[Batch * C];
        Array.Fill(y, float.NaN);
        Pooling.MeanForward(x, padding, y, Batch, SeqLen, C);
        double[] reference = MeanReference(x, padding);
        for (int i = 0; i < y.Length; i++) Assert.Equal(reference[i], y[i], 1e-6);
        if (padded) Assert.All(y.AsSpan(2 * C).ToArray(), v => Assert.Equal(0f, v));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Mean_backward_matches_finite_differences_and_accumulates(bool padded)
    {
        byte[] padding = padded ? Padding() : [];
        var rng = new Rng(71);
        float[] x = TestTensors.Normal(rng, Batch * SeqLen * C), g = TestTensors.Normal(rng, Batch * C);
        var y = new float[g.Length];
        double Loss() { Pooling.MeanForward(x, padding, y, Batch, SeqLen, C); return GradientCheck.Dot(g, y); }
        var dx = new float[x.Length];
        Pooling.MeanBackward(g, padding, dx, Batch, SeqLen, C);
        GradientCheck.Check("dx", x, dx, Loss);
        if (padded) // padded positions, and every position of the all-padding sequence, get exactly nothing
            for (int i = 0; i < Batch * SeqLen; i++)
                if (padding[i] != 0) Assert.All(dx.AsSpan(i * C, C).ToArray(), v => Assert.Equal(0f, v));

        var twice = (float[])dx.Clone();
        Pooling.MeanBackward(g, padding, twice, Batch, SeqLen, C);
        GradientCheck.AssertDoubled("dx", dx, twice);
    }

    [Fact]
    public void First_forward_takes_the_first_token_and_backward_matches_finite_differences()
    {
        var rng = new Rng(72);
        float[] x = TestTensors.Normal(rng, Batch * SeqLen * C), g = TestTensors.Normal(rng, Batch * C);
        var y = new float[Batch * C];
        Pooling.FirstForward(x, y, Batch, SeqLen, C);
        for (int b = 0; b < Batch; b++)
            Assert.Equal(x.AsSpan(b * SeqLen * C, C).ToArray(), y.AsSpan(b * C, C).ToArray());

        double Loss() { Pooling.FirstForward(x, y, Batch, SeqLen, C); return GradientCheck.Dot(g, y); }
        var dx = new float[x.Length];
        Pooling.FirstBackward(g, dx, Batch, SeqLen, C);
        GradientCheck.Check("dx", x, dx, Loss);
        var twice = (float[])dx.Clone();
        Pooling.FirstBackward(g, twice, Batch, SeqLen, C);
        GradientCheck.AssertDoubled("dx", dx, twice);
    }

    [Fact]
    public void Wrong_lengths_throw()
    {
        float[] x = new float[Batch * SeqLen * C], y = new float[Batch * C];
        Assert.Equal("padding", Assert.Throws<ArgumentException>(() => Pooling.MeanForward(x, new byte[Batch * SeqLen - 1], y, Batch, SeqLen, C)).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => Pooling.MeanForward(x, default, new float[C], Batch, SeqLen, C)).ParamName);
        Assert.Equal("dx", Assert.Throws<ArgumentException>(() => Pooling.MeanBackward(y, default, new float[1], Batch, SeqLen, C)).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Pooling.FirstForward(new float[3], y, Batch, SeqLen, C)).ParamName);
        Assert.Equal("seqLen", Assert.Throws<ArgumentOutOfRangeException>(() => Pooling.FirstBackward(y, [], Batch, 0, C)).ParamName);
    }
}
