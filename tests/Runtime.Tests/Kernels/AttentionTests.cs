using System;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Tests.Kernels;

public class AttentionTests
{
    /// <summary>Naive attention in double: output [B, T, C] and probabilities [B, H, T, T].</summary>
    private static (double[] Output, double[] Probabilities) Reference(float[] qkv, int batch, int seqLen, int heads, int headDim, bool causal)
    {
        int c = heads * headDim;
        var output = new double[batch * seqLen * c];
        var probs = new double[batch * heads * seqLen * seqLen];
        double scale = 1 / Math.Sqrt(headDim);
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int t = 0; t < seqLen; t++)
                {
                    var scores = new double[seqLen];
                    double max = double.NegativeInfinity;
                    for (int s = 0; s < seqLen; s++)
                    {
                        if (causal && s > t) { scores[s] = double.NegativeInfinity; continue; }
                        double dot = 0;
                        for (int d = 0; d < headDim; d++)
                            dot += (double)qkv[(b * seqLen + t) * 3 * c + h * headDim + d] * qkv[(b * seqLen + s) * 3 * c + c + h * headDim + d];
                        scores[s] = dot * scale;
                        max = Math.Max(max, scores[s]);
                    }
                    double sum = 0;
                    for (int s = 0; s < seqLen; s++) sum += Math.Exp(scores[s] - max);
                    for (int s = 0; s < seqLen; s++)
                    {
                        double p = Math.Exp(scores[s] - max) / sum;
                        probs[((b * heads + h) * seqLen + t) * seqLen + s] = p;
                        for (int d = 0; d < headDim; d++)
                            output[(b * seqLen + t) * c + h * headDim + d] += p * qkv[(b * seqLen + s) * 3 * c + 2 * c + h * headDim + d];
                    }
                }
        return (output, probs);
    }

    [Theory]
    [InlineData(2, 5, 3, 4, true)]
    [InlineData(2, 5, 3, 4, false)]
    [InlineData(2, 5, 3, 6, true)]
    [InlineData(1, 17, 2, 33, false)]
    [InlineData(2, 37, 2, 8, true)]
    [InlineData(1, 37, 2, 16, false)]
    public void Forward_matches_naive_double_reference(int batch, int seqLen, int heads, int headDim, bool causal)
    {
        int c = heads * headDim;
        float[] qkv = TestTensors.Normal(new Rng(40), batch * seqLen * 3 * c);
        var output = new float[batch * seqLen * c];
        var probs = new float[batch * heads * seqLen * seqLen];
        Array.Fill(probs, float.NaN); // everything must be written, the masked entries as 0
        Attention.Forward(qkv, output, probs, batch, seqLen, heads, headDim, causal);
        var (refOut, refProbs) = Reference(qkv, batch, seqLen, heads, headDim, causal);
        for (int i = 0; i < output.Length; i++) Assert.Equal(refOut[i], output[i], 1e-5);
        for (int i = 0; i < probs.Length; i++) Assert.Equal(refProbs[i], probs[i], 1e-6);
        if (causal) Assert.Equal(0f, probs[1]); // query 0, key 1
    }

    [Theory]
    [InlineData(4, true)]
    [InlineData(4, false)]
    [InlineData(6, true)]
    [InlineData(6, false)]
    public void Backward_matches_finite_differences_and_accumulates(int headDim, bool causal)
    {
        int batch = 2, seqLen = 5, heads = 3, c = heads * headDim;
        var rng = new Rng(41);
        float[] qkv = TestTensors.Normal(rng, batch * seqLen * 3 * c);
        float[] g = TestTensors.Normal(rng, batch * seqLen * c);
        var output = new float[g.Length];
        var probs = new float[batch * heads * seqLen * seqLen];
        double Loss() { Attention.Forward(qkv, output, probs, batch, seqLen, heads, headDim, causal); return GradientCheck.Dot(g, output); }
        Loss();
        float[] savedProbs = (float[])probs.Clone();
        var dQkv = new float[qkv.Length];
        Attention.Backward(g, qkv, savedProbs, dQkv, batch, seqLen, heads, headDim, causal);
        GradientCheck.Check("dQkv", qkv, dQkv, Loss);

        var twice = (float[])dQkv.Clone();
        Attention.Backward(g, qkv, savedProbs, twice, batch, seqLen, heads, headDim, causal);
        GradientCheck.AssertDoubled("dQkv", dQkv, twice);
    }

    [Theory]
    [InlineData(37, 8, true)]
    [InlineData(37, 6, false)]
    public void Backward_matches_finite_differences_across_query_blocks(int seqLen, int headDim, bool causal)
    {
        int batch = 1, heads = 2, c = heads * headDim;
        var rng = new Rng(43);
        float[] qkv = TestTensors.Normal(rng, batch * seqLen * 3 * c);
        float[] g = TestTensors.Normal(rng, batch * seqLen * c);
        var output = new float[g.Length];
        var probs = new float[batch * heads * seqLen * seqLen];
        double Loss() { Attention.Forward(qkv, output, probs, batch, seqLen, heads, headDim, causal); return GradientCheck.Dot(g, output); }
        Loss();
        var dQkv = new float[qkv.Length];
        Attention.Backward(g, qkv, (float[])probs.Clone(), dQkv, batch, seqLen, heads, headDim, causal);
        GradientCheck.Check("dQkv", qkv, dQkv, Loss);
    }

    [Theory]
    [InlineData(5, true)]
    [InlineData(5, false)]
    [InlineData(37, true)]
    [InlineData(37, false)]
    public void Backward_gives_the_same_gradient_for_every_scratch_size(int seqLen, bool causal)
    {
        int batch = 2, heads = 3, headDim = 6, c = heads * headDim;
        var rng = new Rng(44);
        float[] qkv = TestTensors.Normal(rng, batch * seqLen * 3 * c), g = TestTensors.Normal(rng, batch * seqLen * c);
        var probs = new float[batch * heads * seqLen * seqLen];
        Attention.Forward(qkv, new float[g.Length], probs, batch, seqLen, heads, headDim, causal);

        // Less than one row of scratch: the row-at-a-time form, the reference here.
        var rowwise = new float[qkv.Length];
        Attention.Backward(g, qkv, probs, rowwise, batch, seqLen, heads, headDim, causal, new float[seqLen - 1]);
        // Chunks of 1, 2 and 4 query rows, and everything at once.
        foreach (int rowsOfScratch in new[] { 1, 2, 5, seqLen })
        {
            var chunked = new float[qkv.Length];
            Attention.Backward(g, qkv, probs, chunked, batch, seqLen, heads, headDim, causal, new float[rowsOfScratch * seqLen]);
            for (int i = 0; i < qkv.Length; i++)
                Assert.True(Math.Abs(chunked[i] - rowwise[i]) <= 1e-5 * (1 + Math.Abs(rowwise[i])), $"scratch {rowsOfScratch} rows: dQkv[{i}] = {chunked[i]}, row-wise {rowwise[i]}");
        }
    }

    [Theory]
    [InlineData(4)]
    [InlineData(6)]
    public void ForwardCached_equals_rows_of_full_causal_forward(int headDim)
    {
        int seqLen = 9, heads = 3, c = heads * headDim, maxLen = 12;
        float[] qkv = TestTensors.Normal(new Rng(42), seqLen * 3 * c);
        var full = new float[seqLen * c];
        Attention.Forward(qkv, full, new float[heads * seqLen * seqLen], 1, seqLen, heads, headDim, causal: true);

        // Caches [maxLen, C] filled from the K and V columns of every token.
        float[] keys = new float[maxLen * c], values = new float[maxLen * c];
        for (int t = 0; t < seqLen; t++)
        {
            Array.Copy(qkv, t * 3 * c + c, keys, t * c, c);
            Array.Copy(qkv, t * 3 * c + 2 * c, values, t * c, c);
        }
        var scores = new float[maxLen];

        // One token at a time (n = 1), the query read straight out of the packed row (qStride = 3C).
        for (int t = 0; t < seqLen; t++)
        {
            var row = new float[c];
            Attention.ForwardCached(qkv.AsSpan(t * 3 * c, 3 * c), 3 * c, keys, values, row, scores, t, 1, heads, headDim);
            for (int j = 0; j < c; j++) Assert.Equal(full[t * c + j], row[j], 1e-6);
        }

        // A chunk: tokens 2…6 at once, queries packed densely (qStride = C).
        int position0 = 2, n = 5;
        var queries = new float[n * c];
        for (int i = 0; i < n; i++) Array.Copy(qkv, (position0 + i) * 3 * c, queries, i * c, c);
        var chunk = new float[n * c];
        Attention.ForwardCached(queries, c, keys, values, chunk, scores, position0, n, heads, headDim);
        for (int i = 0; i < n * c; i++) Assert.Equal(full[position0 * c + i], chunk[i], 1e-6);
    }

    [Fact]
    public void Wrong_lengths_throw()
    {
        int c = 2 * 3;
        Assert.Equal("probabilities", Assert.Throws<ArgumentException>(() =>
            Attention.Forward(new float[2 * 4 * 3 * c], new float[2 * 4 * c], new float[2 * 2 * 4 * 4 - 1], 2, 4, 2, 3, true)).ParamName);
        Assert.Equal("dQkv", Assert.Throws<ArgumentException>(() =>
            Attention.Backward(new float[2 * 4 * c], new float[2 * 4 * 3 * c], new float[2 * 2 * 4 * 4], new float[1], 2, 4, 2, 3, true)).ParamName);
        Assert.Equal("scores", Assert.Throws<ArgumentException>(() =>
            Attention.ForwardCached(new float[c], c, new float[8 * c], new float[8 * c], new float[c], new float[3], 3, 1, 2, 3)).ParamName);
        Assert.Equal("keyCache", Assert.Throws<ArgumentException>(() =>
            Attention.ForwardCached(new float[c], c, new float[3 * c], new float[8 * c], new float[c], new float[8], 3, 1, 2, 3)).ParamName);
    }
}
