using System;
using System.Collections.Generic;
using TransformerGen.Kernels;
using TransformerGen.Tests.Threading;
using Xunit;

namespace TransformerGen.Tests.Kernels;

/// <summary>The linear layer over weights in the panel layout (MatMul.Packed.cs), and the tied embedding lookup over them.</summary>
[Collection(ThreadSettingsCollection.Name)]
public class MatMulPackedTests
{
    // Whole panels with rows left over (131 = 2·64 + 3), exactly one panel, no whole panel at all, depths below one
    // vector, between vectors and past one 256-deep slice, and row counts of 1, of the 6-row kernel with a remainder,
    // and past 128.
    public static IEnumerable<object[]> Shapes() => new[]
    {
        new object[] { 1, 37, 131 }, new object[] { 7, 37, 131 }, new object[] { 1, 300, 64 }, new object[] { 13, 300, 64 },
        new object[] { 5, 9, 20 }, new object[] { 130, 270, 193 }, new object[] { 1, 1, 65 }, new object[] { 6, 513, 128 },
    };

    private static IEnumerable<SimdPath> SupportedPaths()
    {
        foreach (SimdPath path in Enum.GetValues<SimdPath>())
            if (Simd.IsSupported(path)) yield return path;
    }

    [Theory]
    [InlineData(131, 37)]
    [InlineData(64, 1)]
    [InlineData(20, 9)]
    [InlineData(257, 576)]
    public void Packing_then_unpacking_gives_back_every_bit(int outF, int inF)
    {
        float[] w = TestTensors.Normal(new Rng(3), outF * inF);
        float[] copy = (float[])w.Clone();
        MatMul.PackPanels(w, outF, inF);
        if (outF >= 64 && inF > 1) Assert.NotEqual(copy, w);
        // The first panel holds column 0 of Wᵀ's first 64 columns: W[c, 0] at c, then W[c, 1] at 64 + c.
        if (outF >= 64)
            for (int c = 0; c < 64; c++)
            {
                Assert.Equal(copy[c * inF], w[c]);
                if (inF > 1) Assert.Equal(copy[c * inF + 1], w[64 + c]);
            }
        // Rows past the last whole panel stay where they were.
        int wide = outF - outF % 64;
        Assert.Equal(copy.AsSpan(wide * inF).ToArray(), w.AsSpan(wide * inF).ToArray());
        MatMul.UnpackPanels(w, outF, inF);
        Assert.Equal(copy, w);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Packed_forward_matches_the_forward_over_rows_on_every_path(int n, int inF, int outF)
    {
        var rng = new Rng(4);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF), b = TestTensors.Normal(rng, outF);
        float[] packed = (float[])w.Clone();
        MatMul.PackPanels(packed, outF, inF);
        foreach (SimdPath path in SupportedPaths())
            foreach (bool withBias in new[] { true, false })
            {
                ReadOnlySpan<float> bias = withBias ? b : ReadOnlySpan<float>.Empty;
                var expected = new float[n * outF];
                var actual = new float[n * outF];
                Array.Fill(actual, float.NaN); // must be overwritten
                MatMul.Forward(x, w, bias, expected, n, inF, outF, path);
                MatMul.Forward(x, packed, bias, actual, n, inF, outF, packed: true, path);
                for (int i = 0; i < n; i++)
                    for (int o = 0; o < outF; o++)
                    {
                        double magnitude = withBias ? Math.Abs(b[o]) : 0;
                        for (int k = 0; k < inF; k++) magnitude += Math.Abs((double)x[i * inF + k] * w[o * inF + k]);
                        Assert.True(Math.Abs(actual[i * outF + o] - expected[i * outF + o]) <= 1e-6 * (magnitude + 1),
                            $"{path} bias={withBias} y[{i},{o}] = {actual[i * outF + o]}, over rows {expected[i * outF + o]}");
                    }
            }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_row_gets_the_same_bits_alone_as_within_many_rows_and_on_any_thread_count(bool withBias)
    {
        // Decoding a position alone must agree with the prompt pass that computed it among others (and on 1 or 2
        // threads): every output element is summed in the same order whatever the row count (300 inputs: two depth
        // slices, which one row sums in registers and many rows through y).
        const int n = 9, inF = 300, outF = 200;
        var rng = new Rng(5);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF), b = withBias ? TestTensors.Normal(rng, outF) : [];
        MatMul.PackPanels(w, outF, inF);
        var all = new float[n * outF];
        using (new ThreadSettings(1)) MatMul.Forward(x, w, b, all, n, inF, outF, packed: true);
        foreach (int threads in new[] { 1, 2 })
            using (new ThreadSettings(threads))
            {
                var again = new float[n * outF];
                MatMul.Forward(x, w, b, again, n, inF, outF, packed: true);
                ThreadSettings.AssertBitIdentical(all, again, $"{n} rows on {threads} threads");
                for (int i = 0; i < n; i++)
                {
                    var one = new float[outF];
                    MatMul.Forward(x.AsSpan(i * inF, inF), w, b, one, 1, inF, outF, packed: true);
                    ThreadSettings.AssertBitIdentical(all.AsSpan(i * outF, outF), one, $"row {i} alone on {threads} threads");
                }
            }
    }

    [Fact]
    public void Packed_forward_checks_its_arguments()
    {
        var x = new float[6];
        var w = new float[2 * 3];
        Assert.Throws<ArgumentException>(() => MatMul.Forward(x, new float[5], default, new float[4], 2, 3, 2, packed: true));
        Assert.Throws<ArgumentException>(() => MatMul.Forward(x, w, new float[3], new float[4], 2, 3, 2, packed: true));
        Assert.Throws<ArgumentException>(() => MatMul.Forward(x, w, default, new float[3], 2, 3, 2, packed: true));
        Assert.Throws<ArgumentException>(() => MatMul.PackPanels(new float[5], 2, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => MatMul.UnpackPanels(w, -2, 3));
    }

    [Theory]
    [InlineData(131, 37)]
    [InlineData(64, 16)]
    [InlineData(20, 5)]
    public void The_lookup_of_a_packed_table_gives_the_rows_of_the_table(int vocab, int c)
    {
        float[] table = TestTensors.Normal(new Rng(6), vocab * c);
        float[] packed = (float[])table.Clone();
        MatMul.PackPanels(packed, vocab, c);
        int[] tokens = [0, vocab - 1, 63 % vocab, 64 % vocab, vocab / 2, 1 % vocab];
        var expected = new float[tokens.Length * c];
        var actual = new float[tokens.Length * c];
        Embedding.Forward(tokens, table, expected, vocab, c, 1.5f);
        Embedding.Forward(tokens, packed, actual, vocab, c, 1.5f, packed: true);
        Assert.Equal(expected, actual);
        Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.Forward([vocab], packed, new float[c], vocab, c, 1f, packed: true));
    }
}
