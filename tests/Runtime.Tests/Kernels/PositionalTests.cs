using System;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Tests.Kernels;

// The attribute library's enum TransformerGen.Positional would win name lookup inside TransformerGen.* namespaces.
using Positional = TransformerGen.Kernels.Positional;

public class PositionalTests
{
    [Theory]
    [InlineData(16)]
    [InlineData(7)]
    public void Sinusoidal_table_follows_the_paper(int c)
    {
        int seqLen = 11;
        var table = new float[seqLen * c];
        Positional.SinusoidalTable(table, seqLen, c);
        for (int pos = 0; pos < seqLen; pos++)
            for (int i = 0; 2 * i < c; i++)
            {
                double angle = pos / Math.Pow(10000, 2.0 * i / c);
                Assert.Equal(Math.Sin(angle), table[pos * c + 2 * i], 1e-7);
                if (2 * i + 1 < c) Assert.Equal(Math.Cos(angle), table[pos * c + 2 * i + 1], 1e-7);
            }
        Assert.Equal(0f, table[0]);
        Assert.Equal(1f, table[1]);
    }

    /// <summary>
    /// Marian's table holds the same sines and cosines as the paper's, de-interleaved: column i of the first half is the
    /// paper's column 2i, column c/2 + i of the second half its column 2i + 1; checked against the paper's table and the
    /// exponential form of the frequency, exp(−2i·ln(10000)/c).
    /// </summary>
    [Theory]
    [InlineData(2)]
    [InlineData(20)]
    [InlineData(34)]
    public void Split_table_is_the_paper_table_with_sines_first_and_cosines_second(int c)
    {
        int seqLen = 13;
        var split = new float[seqLen * c];
        var paper = new float[seqLen * c];
        Positional.SinusoidalSplitTable(split, seqLen, c);
        Positional.SinusoidalTable(paper, seqLen, c);
        for (int pos = 0; pos < seqLen; pos++)
            for (int i = 0; i < c / 2; i++)
            {
                Assert.Equal(paper[pos * c + 2 * i], split[pos * c + i]);
                Assert.Equal(paper[pos * c + 2 * i + 1], split[pos * c + c / 2 + i]);
                double angle = pos * Math.Exp(-2.0 * i * Math.Log(10000.0) / c);
                Assert.Equal(Math.Sin(angle), split[pos * c + i], 1e-6);
                Assert.Equal(Math.Cos(angle), split[pos * c + c / 2 + i], 1e-6);
            }
        Assert.Throws<ArgumentException>(() => Positional.SinusoidalSplitTable(new float[3 * 5], 3, 5));
    }

    /// <summary>
    /// fairseq's table (M2M100, NLLB): row r holds position firstPosition + r, sines of the frequencies
    /// 10000^(−i/(h−1)) in the first h = c/2 columns and their cosines in the next h, a zero column for an odd c; against
    /// the formula in double (the kernel rounds as PyTorch does, in float: within 2e-5 at these positions).
    /// </summary>
    [Theory]
    [InlineData(4, 2)]
    [InlineData(18, 2)]
    [InlineData(21, 5)]
    public void Fairseq_table_numbers_positions_from_the_first_and_spaces_frequencies_over_half_minus_one(int c, int first)
    {
        int seqLen = 30, half = c / 2;
        var table = new float[seqLen * c];
        Positional.SinusoidalFairseqTable(table, seqLen, c, first);
        for (int row = 0; row < seqLen; row++)
        {
            for (int i = 0; i < half; i++)
            {
                double angle = (first + row) * Math.Pow(10000.0, -(double)i / (half - 1));
                Assert.Equal(Math.Sin(angle), table[row * c + i], 2e-5);
                Assert.Equal(Math.Cos(angle), table[row * c + half + i], 2e-5);
            }
            if (c % 2 != 0) Assert.Equal(0f, table[row * c + c - 1]);
        }
        // The lowest frequency is 1e-4 exactly: the last sine column is sin(position / 10000).
        Assert.Equal(Math.Sin((first + 7) / 10000.0), table[7 * c + half - 1], 1e-7);
        Assert.Throws<ArgumentOutOfRangeException>(() => Positional.SinusoidalFairseqTable(new float[3 * 3], 3, 3, 0));
    }

    [Fact]
    public void Add_uses_rows_from_position0_for_every_sequence()
    {
        int batch = 2, seqLen = 3, c = 5, maxLen = 8, position0 = 4;
        var rng = new Rng(60);
        float[] x = TestTensors.Normal(rng, batch * seqLen * c), table = TestTensors.Normal(rng, maxLen * c);
        float[] original = (float[])x.Clone();
        Positional.Add(x, table, batch, seqLen, c, position0);
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < seqLen; t++)
                for (int j = 0; j < c; j++)
                    Assert.Equal(original[(b * seqLen + t) * c + j] + table[(position0 + t) * c + j], x[(b * seqLen + t) * c + j]);
        Assert.Equal("table", Assert.Throws<ArgumentException>(() => Positional.Add(x, table, batch, seqLen, c, 6)).ParamName);
    }

    [Fact]
    public void Add_backward_matches_finite_differences_and_accumulates()
    {
        int batch = 2, seqLen = 5, c = 7, maxLen = 6;
        var rng = new Rng(61);
        float[] x0 = TestTensors.Normal(rng, batch * seqLen * c), table = TestTensors.Normal(rng, maxLen * c), g = TestTensors.Normal(rng, x0.Length);
        var x = new float[x0.Length];
        double Loss() { x0.CopyTo(x, 0); Positional.Add(x, table, batch, seqLen, c); return GradientCheck.Dot(g, x); }
        var dTable = new float[table.Length];
        Positional.AddBackward(g, dTable, batch, seqLen, c);
        // The last table row is beyond seqLen: its gradient is zero, and the check covers it too.
        GradientCheck.Check("dTable", table, dTable, Loss);

        var twice = (float[])dTable.Clone();
        Positional.AddBackward(g, twice, batch, seqLen, c);
        GradientCheck.AssertDoubled("dTable", dTable, twice);
    }

    [Fact]
    public void Rotary_tables_and_forward_match_complex_rotation_in_double()
    {
        int batch = 2, seqLen = 5, heads = 3, headDim = 6, c = heads * headDim, rowStride = 3 * c, maxLen = 9, position0 = 2;
        float[] cos = new float[maxLen * headDim / 2], sin = new float[maxLen * headDim / 2];
        Positional.RotaryTables(cos, sin, maxLen, headDim);
        float[] qkv = TestTensors.Normal(new Rng(62), batch * seqLen * rowStride);
        float[] rotated = (float[])qkv.Clone();
        Positional.RotaryForward(rotated, cos, sin, batch, seqLen, heads, headDim, rowStride, position0);
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < seqLen; t++)
            {
                int row = (b * seqLen + t) * rowStride;
                for (int col = 0; col < rowStride; col += 2)
                {
                    double re = qkv[row + col], im = qkv[row + col + 1];
                    if (col < 2 * c)
                    {
                        int i = (col % headDim) / 2;
                        double angle = (position0 + t) * Math.Pow(10000, -2.0 * i / headDim);
                        (re, im) = (re * Math.Cos(angle) - im * Math.Sin(angle), re * Math.Sin(angle) + im * Math.Cos(angle));
                    }
                    Assert.Equal(re, rotated[row + col], 1e-5);
                    Assert.Equal(im, rotated[row + col + 1], 1e-5);
                }
            }
    }

    [Theory]
    [InlineData(6)]
    [InlineData(4)]
    public void Rotary_backward_matches_finite_differences_in_place(int headDim)
    {
        int batch = 2, seqLen = 5, heads = 3, c = heads * headDim, rowStride = 3 * c, maxLen = 7;
        float[] cos = new float[maxLen * headDim / 2], sin = new float[maxLen * headDim / 2];
        Positional.RotaryTables(cos, sin, maxLen, headDim);
        var rng = new Rng(63);
        float[] qkv = TestTensors.Normal(rng, batch * seqLen * rowStride), g = TestTensors.Normal(rng, qkv.Length);
        var y = new float[qkv.Length];
        double Loss() { qkv.CopyTo(y, 0); Positional.RotaryForward(y, cos, sin, batch, seqLen, heads, headDim, rowStride); return GradientCheck.Dot(g, y); }
        float[] dQkv = (float[])g.Clone(); // gradient w.r.t. the rotated values …
        Positional.RotaryBackward(dQkv, cos, sin, batch, seqLen, heads, headDim, rowStride); // … becomes w.r.t. the unrotated ones
        GradientCheck.Check("dQkv", qkv, dQkv, Loss);
        for (int i = 0; i < qkv.Length; i++)
            if (i % rowStride >= 2 * c) Assert.Equal(g[i], dQkv[i]); // V untouched
    }

    [Fact]
    public void Rotary_rejects_odd_head_dim_and_short_tables()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Positional.RotaryTables(new float[15], new float[15], 5, 5));
        float[] cos = new float[4 * 2], sin = new float[4 * 2];
        Assert.Equal("cos", Assert.Throws<ArgumentException>(() =>
            Positional.RotaryForward(new float[5 * 12], cos, sin, 1, 5, 1, 4, 12)).ParamName);
        Assert.Equal("qkv", Assert.Throws<ArgumentException>(() =>
            Positional.RotaryForward(new float[3 * 12 + 1], cos, sin, 1, 3, 1, 4, 12)).ParamName);
    }
}
