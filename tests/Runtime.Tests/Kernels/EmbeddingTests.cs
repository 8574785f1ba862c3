using System;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Tests.Kernels;

public class EmbeddingTests
{
    [Fact]
    public void Forward_looks_up_and_scales_rows()
    {
        int vocab = 7, c = 13;
        float[] table = TestTensors.Normal(new Rng(50), vocab * c);
        int[] tokens = { 3, 0, 6, 3 };
        var output = new float[tokens.Length * c];
        Embedding.Forward(tokens, table, output, vocab, c, 2.5f);
        for (int i = 0; i < tokens.Length; i++)
            for (int j = 0; j < c; j++)
                Assert.Equal(table[tokens[i] * c + j] * 2.5f, output[i * c + j]);
    }

    [Fact]
    public void Backward_matches_finite_differences_and_accumulates_repeated_tokens()
    {
        int vocab = 7, c = 13;
        var rng = new Rng(51);
        float[] table = TestTensors.Normal(rng, vocab * c);
        int[] tokens = { 3, 0, 6, 3, 3 };
        float[] g = TestTensors.Normal(rng, tokens.Length * c);
        var output = new float[g.Length];
        const float scale = 1.7f;
        double Loss() { Embedding.Forward(tokens, table, output, vocab, c, scale); return GradientCheck.Dot(g, output); }
        var dTable = new float[table.Length];
        Embedding.Backward(tokens, g, dTable, c, scale);
        GradientCheck.Check("dTable", table, dTable, Loss);
        for (int j = 0; j < c; j++) Assert.Equal(0f, dTable[1 * c + j]); // unused token: no gradient

        var twice = (float[])dTable.Clone();
        Embedding.Backward(tokens, g, twice, c, scale);
        GradientCheck.AssertDoubled("dTable", dTable, twice);
    }

    /// <summary>
    /// nn.Embedding(padding_idx): lookups of the padding row add nothing to its gradient, what the row already holds (the tied
    /// head's part) stays, and every other row gets exactly what it gets without a padding row.
    /// </summary>
    [Fact]
    public void Backward_passes_no_gradient_to_the_padding_row_and_leaves_its_other_gradient()
    {
        int vocab = 7, c = 13, pad = 3;
        var rng = new Rng(52);
        int[] tokens = { 3, 0, 6, 3, 3, 5 };
        float[] g = TestTensors.Normal(rng, tokens.Length * c);
        float[] held = TestTensors.Normal(rng, vocab * c);
        var plain = (float[])held.Clone();
        var padded = (float[])held.Clone();
        Embedding.Backward(tokens, g, plain, c, 1.5f);
        Embedding.Backward(tokens, g, padded, c, 1.5f, paddingRow: pad);
        for (int v = 0; v < vocab; v++)
            for (int j = 0; j < c; j++)
                Assert.Equal(v == pad ? held[v * c + j] : plain[v * c + j], padded[v * c + j]);
        Assert.NotEqual(held[pad * c], plain[pad * c]);
    }

    [Fact]
    public void Out_of_range_token_throws_naming_position_and_id()
    {
        int vocab = 5, c = 3;
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.Forward(new[] { 1, 4, 5 }, new float[vocab * c], new float[3 * c], vocab, c));
        Assert.Equal("tokens", ex.ParamName);
        Assert.Contains("position 2", ex.Message);
        Assert.Contains("is 5", ex.Message);
        var negative = Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.Forward(new[] { -1 }, new float[vocab * c], new float[c], vocab, c));
        Assert.Contains("position 0", negative.Message);
        var backward = Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.Backward(new[] { 0, 9 }, new float[2 * c], new float[vocab * c], c));
        Assert.Contains("position 1", backward.Message);
    }

    [Fact]
    public void Wrong_lengths_throw()
    {
        Assert.Equal("table", Assert.Throws<ArgumentException>(() => Embedding.Forward(new[] { 0 }, new float[14], new float[3], 5, 3)).ParamName);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => Embedding.Forward(new[] { 0 }, new float[15], new float[4], 5, 3)).ParamName);
        Assert.Equal("dTable", Assert.Throws<ArgumentException>(() => Embedding.Backward(new[] { 0 }, new float[3], new float[14], 3)).ParamName);
    }
}
