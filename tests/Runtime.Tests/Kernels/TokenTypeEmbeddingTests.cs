using System;
using TransformerGen.Kernels;
using TransformerGen.Tests.Threading;
using Xunit;

namespace TransformerGen.Tests.Kernels;

/// <summary>
/// <see cref="Embedding.AddRow"/> and its backward: BERT's token-type embedding for one segment; <see cref="Embedding.AddTypeRows"/>
/// and its backward for each token's own segment.
/// </summary>
public sealed class TokenTypeEmbeddingTests
{
    [Theory]
    [InlineData(1, 1, 2)]
    [InlineData(9, 7, 2)]
    [InlineData(13, 37, 3)]
    public void AddTypeRows_adds_each_tokens_row_and_its_backward_sums_them_in_order(int n, int c, int typeVocab)
    {
        var rng = new Rng(92);
        float[] x = TestTensors.Normal(rng, n * c), table = TestTensors.Normal(rng, typeVocab * c), dx = TestTensors.Normal(rng, n * c);
        int[] types = new int[n];
        for (int i = 0; i < n; i++) types[i] = (i * 5 + 1) % typeVocab;
        float[] result = (float[])x.Clone();
        Embedding.AddTypeRows(result, table, types, c);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < c; j++)
                Assert.Equal(x[i * c + j] + table[types[i] * c + j], result[i * c + j]);

        // Backward: each row of dx added to its type's row, in row order (the same bits as a plain loop).
        float[] dTable = TestTensors.Normal(rng, typeVocab * c), expected = (float[])dTable.Clone();
        for (int i = 0; i < n; i++)
            for (int j = 0; j < c; j++)
                expected[types[i] * c + j] += dx[i * c + j];
        Embedding.AddTypeRowsBackward(dx, dTable, types, c);
        ThreadSettings.AssertBitIdentical(expected, dTable, "dTable");

        // With every type 0 both match AddRow and its backward.
        float[] zeros = (float[])x.Clone(), row0 = (float[])x.Clone();
        Embedding.AddTypeRows(zeros, table, new int[n], c);
        Embedding.AddRow(row0, table.AsSpan(0, c), n, c);
        ThreadSettings.AssertBitIdentical(row0, zeros, "type 0 everywhere");
    }

    [Fact]
    public void A_type_outside_the_table_throws_naming_its_position_and_writes_nothing()
    {
        float[] x = new float[3 * 4], table = new float[2 * 4];
        int[] types = [0, 1, 2];
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.AddTypeRows(x, table, types, 4));
        Assert.Contains("position 2 is 2, outside the token-type table [0, 2)", e.Message);
        Assert.All(x, v => Assert.Equal(0f, v));
        Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.AddTypeRowsBackward(x, table, [0, -1, 0], 4));
        Assert.Equal("x", Assert.ThrowsAny<ArgumentException>(() => Embedding.AddTypeRows(new float[5], table, types, 4)).ParamName);
        Assert.Equal("table", Assert.ThrowsAny<ArgumentException>(() => Embedding.AddTypeRows(x, new float[9], [0, 0, 0], 4)).ParamName);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(5, 7)]
    [InlineData(33, 37)]
    [InlineData(5, 67)]
    public void AddRow_adds_the_row_to_every_row_exactly(int n, int c)
    {
        var rng = new Rng(90);
        float[] x = TestTensors.Normal(rng, n * c), row = TestTensors.Normal(rng, c);
        float[] result = (float[])x.Clone();
        Embedding.AddRow(result, row, n, c);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < c; j++)
                Assert.Equal(x[i * c + j] + row[j], result[i * c + j]);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(5, 7)]
    [InlineData(33, 37)]
    [InlineData(40, 200)] // three whole 64-column blocks and a partial one
    public void AddRowBackward_adds_the_rows_in_order_to_the_bit(int n, int c)
    {
        var rng = new Rng(91);
        float[] dx = TestTensors.Normal(rng, n * c), dRow = TestTensors.Normal(rng, c), expected = (float[])dRow.Clone();
        for (int i = 0; i < n; i++)
            for (int j = 0; j < c; j++)
                expected[j] += dx[i * c + j];
        Embedding.AddRowBackward(dx, dRow, n, c);
        ThreadSettings.AssertBitIdentical(expected, dRow, "dRow");
    }

    [Fact]
    public void AddRowBackward_matches_finite_differences_and_accumulates()
    {
        const int n = 5, c = 13;
        var rng = new Rng(92);
        float[] x = TestTensors.Normal(rng, n * c), row = TestTensors.Normal(rng, c), g = TestTensors.Normal(rng, n * c);
        var y = new float[n * c];
        double Loss()
        {
            x.CopyTo(y, 0);
            Embedding.AddRow(y, row, n, c);
            return GradientCheck.Dot(g, y);
        }
        var dRow = new float[c];
        Embedding.AddRowBackward(g, dRow, n, c);
        GradientCheck.Check("dRow", row, dRow, Loss);

        var twice = (float[])dRow.Clone();
        Embedding.AddRowBackward(g, twice, n, c);
        GradientCheck.AssertDoubled("dRow", dRow, twice);
    }

    [Fact]
    public void No_rows_or_no_columns_do_nothing()
    {
        float[] dRow = { 1f, 2f };
        Embedding.AddRow(Span<float>.Empty, dRow, 0, 2);
        Embedding.AddRowBackward(ReadOnlySpan<float>.Empty, dRow, 0, 2);
        Assert.Equal(new[] { 1f, 2f }, dRow);
        Embedding.AddRow(Span<float>.Empty, ReadOnlySpan<float>.Empty, 3, 0);
        Embedding.AddRowBackward(ReadOnlySpan<float>.Empty, Span<float>.Empty, 3, 0);
    }

    [Fact]
    public void Wrong_lengths_and_sizes_throw_naming_the_argument()
    {
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => Embedding.AddRow(new float[11], new float[4], 3, 4)).ParamName);
        Assert.Equal("row", Assert.Throws<ArgumentException>(() => Embedding.AddRow(new float[12], new float[3], 3, 4)).ParamName);
        Assert.Equal("n", Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.AddRow(new float[12], new float[4], -3, 4)).ParamName);
        Assert.Equal("dx", Assert.Throws<ArgumentException>(() => Embedding.AddRowBackward(new float[13], new float[4], 3, 4)).ParamName);
        Assert.Equal("dRow", Assert.Throws<ArgumentException>(() => Embedding.AddRowBackward(new float[12], new float[5], 3, 4)).ParamName);
        Assert.Equal("c", Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.AddRowBackward(new float[12], new float[4], 3, -4)).ParamName);
    }
}
