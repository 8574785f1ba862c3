using System;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Tests.Kernels;

/// <summary>
/// Every backward kernel's overwrite flag (the generated backward pass sets it on the first contribution to an
/// activation's gradient instead of clearing it first): the kernel then stores exactly what adding into zeros gives,
/// never reads the old contents (they start as NaN here), and leaves everything else as it was — parameter gradients
/// still accumulate, and columns outside the heads (a row stride wider than the heads) are not touched.
/// </summary>
public sealed class OverwriteGradientTests
{
    /// <summary>A gradient buffer full of NaN: any read of it would show in the result.</summary>
    private static float[] Poisoned(int length)
    {
        var a = new float[length];
        Array.Fill(a, float.NaN);
        return a;
    }

    /// <summary>Equal values (0 and −0 count as equal: storing a sum is allowed to keep its sign where 0 + sum would not).</summary>
    private static void AssertSameValues(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (!(expected[i] == actual[i] || (float.IsNaN(expected[i]) && float.IsNaN(actual[i]))))
                Assert.Fail($"{what}[{i}]: {actual[i]:R} stored, {expected[i]:R} when added into zeros");
    }

    private static System.Collections.Generic.IEnumerable<SimdPath> SupportedPaths()
    {
        foreach (SimdPath path in Enum.GetValues<SimdPath>())
            if (Simd.IsSupported(path)) yield return path;
    }

    [Theory]
    [InlineData(7, 70, 5)]     // the narrow strip only (fewer than 64 input features past a panel)
    [InlineData(13, 129, 67)]  // two panels and a 1-column rest, 13 rows (a 1-row remainder of the 6-row blocks)
    [InlineData(130, 64, 300)] // one whole panel, a deep product (two depth slices)
    [InlineData(3, 0, 4)]      // no input features: dx is empty
    public void MatMul_stores_dx_and_still_accumulates_dw_and_dbias(int n, int inF, int outF)
    {
        var rng = new Rng(41);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF), dy = TestTensors.Normal(rng, n * outF);
        float[] dw0 = TestTensors.Normal(rng, outF * inF), db0 = TestTensors.Normal(rng, outF);
        foreach (SimdPath path in SupportedPaths())
        {
            float[] dxAdded = new float[n * inF], dwAdded = (float[])dw0.Clone(), dbAdded = (float[])db0.Clone();
            MatMul.Backward(dy, x, w, dxAdded, dwAdded, dbAdded, n, inF, outF, path);
            float[] dxStored = Poisoned(n * inF), dwStored = (float[])dw0.Clone(), dbStored = (float[])db0.Clone();
            MatMul.Backward(dy, x, w, dxStored, dwStored, dbStored, n, inF, outF, path, overwriteDx: true);
            AssertSameValues(dxAdded, dxStored, $"{path} dx");
            AssertSameValues(dwAdded, dwStored, $"{path} dw");
            AssertSameValues(dbAdded, dbStored, $"{path} dbias");
        }
    }

    [Fact]
    public void MatMul_with_no_output_features_stores_a_zero_dx()
    {
        float[] dx = Poisoned(6);
        MatMul.Backward(ReadOnlySpan<float>.Empty, new float[6], ReadOnlySpan<float>.Empty, dx, Span<float>.Empty, Span<float>.Empty, 2, 3, 0, overwriteDx: true);
        Assert.All(dx, v => Assert.Equal(0f, v));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(37)]
    [InlineData(20_000)] // long enough for the GELU split
    public void Activations_store_dx(int length)
    {
        var rng = new Rng(42);
        float[] x = TestTensors.Normal(rng, length, 2f), dy = TestTensors.Normal(rng, length);
        float[] y = new float[length];
        Activations.GeluForward(x, y);
        foreach (string which in new[] { "GELU", "GELU from its output", "ReLU" })
        {
            float[] added = new float[length], stored = Poisoned(length);
            switch (which)
            {
                case "GELU":
                    Activations.GeluBackward(dy, x, added);
                    Activations.GeluBackward(dy, x, stored, overwriteDx: true);
                    break;
                case "GELU from its output":
                    Activations.GeluBackward(dy, x, y, added);
                    Activations.GeluBackward(dy, x, y, stored, overwriteDx: true);
                    break;
                default:
                    Activations.ReluBackward(dy, x, added);
                    Activations.ReluBackward(dy, x, stored, overwriteDx: true);
                    break;
            }
            AssertSameValues(added, stored, which + " dx");
        }
    }

    [Fact]
    public void Dropout_stores_dx()
    {
        var rng = new Rng(43);
        float[] dy = TestTensors.Normal(rng, 53), mask = new float[53];
        for (int i = 0; i < mask.Length; i++) mask[i] = i % 3 == 0 ? 0f : 1.25f;
        float[] added = new float[53], stored = Poisoned(53);
        Dropout.Backward(dy, mask, added);
        Dropout.Backward(dy, mask, stored, overwriteDx: true);
        AssertSameValues(added, stored, "dx");
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(0.1f)]
    public void Cross_entropy_stores_dlogits_and_zero_for_ignored_rows(float smoothing)
    {
        var rng = new Rng(44);
        const int n = 5, vocab = 19;
        float[] probs = TestTensors.Uniform(rng, n * vocab, 0f, 0.1f);
        int[] targets = { 3, -1, 18, 0, -1 };
        float[] added = new float[n * vocab], stored = Poisoned(n * vocab);
        CrossEntropy.Backward(probs, targets, added, n, vocab, smoothing);
        CrossEntropy.Backward(probs, targets, stored, n, vocab, smoothing, overwriteDLogits: true);
        AssertSameValues(added, stored, "dLogits");
        Assert.All(stored.AsSpan(vocab, vocab).ToArray(), v => Assert.Equal(0f, v));

        float[] allIgnored = Poisoned(n * vocab);
        CrossEntropy.Backward(probs, new[] { -1, -1, -1, -1, -1 }, allIgnored, n, vocab, smoothing, overwriteDLogits: true);
        Assert.All(allIgnored, v => Assert.Equal(0f, v));
    }

    [Theory]
    [InlineData(3, 12)]
    [InlineData(70, 37)] // more rows than one block, a width that is no multiple of the vector width
    public void LayerNorm_stores_dx_and_still_accumulates_dgamma_and_dbeta(int n, int c)
    {
        var rng = new Rng(45);
        float[] x = TestTensors.Normal(rng, n * c), gamma = TestTensors.Normal(rng, c), beta = TestTensors.Normal(rng, c), dy = TestTensors.Normal(rng, n * c);
        float[] y = new float[n * c], mean = new float[n], rstd = new float[n];
        LayerNorm.Forward(x, gamma, beta, y, mean, rstd, n, c);
        float[] dg0 = TestTensors.Normal(rng, c), db0 = TestTensors.Normal(rng, c);
        float[] dxAdded = new float[n * c], dgAdded = (float[])dg0.Clone(), dbAdded = (float[])db0.Clone();
        LayerNorm.Backward(dy, x, gamma, mean, rstd, dxAdded, dgAdded, dbAdded, n, c);
        float[] dxStored = Poisoned(n * c), dgStored = (float[])dg0.Clone(), dbStored = (float[])db0.Clone();
        LayerNorm.Backward(dy, x, gamma, mean, rstd, dxStored, dgStored, dbStored, n, c, overwriteDx: true);
        AssertSameValues(dxAdded, dxStored, "dx");
        AssertSameValues(dgAdded, dgStored, "dgamma");
        AssertSameValues(dbAdded, dbStored, "dbeta");
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Residual_backward_copies_or_adds_each_gradient(bool overwriteDa, bool overwriteDb)
    {
        var rng = new Rng(46);
        const int length = 41;
        float[] dy = TestTensors.Normal(rng, length), da0 = TestTensors.Normal(rng, length), db0 = TestTensors.Normal(rng, length);
        float[] da = overwriteDa ? Poisoned(length) : (float[])da0.Clone(), db = overwriteDb ? Poisoned(length) : (float[])db0.Clone();
        Residual.Backward(dy, da, db, overwriteDa, overwriteDb);
        for (int i = 0; i < length; i++)
        {
            Assert.Equal(overwriteDa ? dy[i] : da0[i] + dy[i], da[i]);
            Assert.Equal(overwriteDb ? dy[i] : db0[i] + dy[i], db[i]);
        }
    }

    [Fact]
    public void Residual_add_adds()
    {
        var rng = new Rng(47);
        float[] a = TestTensors.Normal(rng, 23), b = TestTensors.Normal(rng, 23), y = new float[23];
        Residual.Add(a, b, y);
        for (int i = 0; i < y.Length; i++) Assert.Equal(a[i] + b[i], y[i]);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => Residual.Add(a, b, new float[22])).ParamName);
        Assert.Equal("db", Assert.Throws<ArgumentException>(() => Residual.Backward(a, new float[23], new float[24])).ParamName);
    }

    [Theory]
    [InlineData(2, 9, 3, 5, true, 0)]
    [InlineData(3, 7, 2, 4, false, 0)]
    [InlineData(2, 9, 3, 5, true, 20)] // a scratch shorter than one row: the row-at-a-time backward
    public void Packed_attention_stores_dqkv(int batch, int seqLen, int heads, int headDim, bool causal, int scratchFloats)
    {
        int c = heads * headDim;
        var rng = new Rng(48);
        float[] qkv = TestTensors.Normal(rng, batch * seqLen * 3 * c), dOut = TestTensors.Normal(rng, batch * seqLen * c);
        float[] output = new float[batch * seqLen * c], probs = new float[batch * heads * seqLen * seqLen];
        Attention.Forward(qkv, output, probs, batch, seqLen, heads, headDim, causal);
        float[] added = new float[qkv.Length], stored = Poisoned(qkv.Length);
        Span<float> scratch = scratchFloats == 0 ? new float[4096] : new float[scratchFloats];
        Attention.Backward(dOut, qkv, probs, added, batch, seqLen, heads, headDim, causal, scratch);
        Attention.Backward(dOut, qkv, probs, stored, batch, seqLen, heads, headDim, causal, scratch, overwriteDQkv: true);
        AssertSameValues(added, stored, "dQkv");
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Cross_attention_stores_dq_or_dkv_and_leaves_the_stride_padding(bool overwriteDq, bool overwriteDkv)
    {
        const int batch = 3, queryLen = 5, keyLen = 7, heads = 2, headDim = 3, c = heads * headDim;
        const int qStride = c + 2, kvStride = 2 * c + 1; // columns past the heads belong to someone else
        var rng = new Rng(49);
        float[] q = TestTensors.Normal(rng, batch * queryLen * qStride), kv = TestTensors.Normal(rng, batch * keyLen * kvStride);
        float[] dOut = TestTensors.Normal(rng, batch * queryLen * c);
        var padding = new byte[batch * keyLen];
        padding[keyLen - 1] = 1;
        padding.AsSpan(keyLen, keyLen).Fill(1); // the second sequence sees no key at all
        float[] output = new float[batch * queryLen * c], probs = new float[batch * heads * queryLen * keyLen];
        Attention.Forward(q, qStride, kv, kv.AsSpan(c), kvStride, padding, output, probs, batch, queryLen, keyLen, heads, headDim, causal: false);

        float[] dq0 = TestTensors.Normal(rng, q.Length), dkv0 = TestTensors.Normal(rng, kv.Length);
        // What storing should give: the old values outside the heads' columns, the product (added into zeros) inside.
        float[] dqExpected = (float[])dq0.Clone(), dkvExpected = (float[])dkv0.Clone();
        if (overwriteDq) ClearHeads(dqExpected, qStride, c);
        if (overwriteDkv) ClearHeads(dkvExpected, kvStride, 2 * c);
        Attention.Backward(dOut, q, qStride, kv, kv.AsSpan(c), kvStride, probs, dqExpected, dkvExpected, dkvExpected.AsSpan(c), batch, queryLen, keyLen, heads, headDim);

        float[] dq = (float[])dq0.Clone(), dkv = (float[])dkv0.Clone();
        if (overwriteDq) PoisonHeads(dq, qStride, c);
        if (overwriteDkv) PoisonHeads(dkv, kvStride, 2 * c);
        Attention.Backward(dOut, q, qStride, kv, kv.AsSpan(c), kvStride, probs, dq, dkv, dkv.AsSpan(c), batch, queryLen, keyLen, heads, headDim, overwriteDq, overwriteDkv);
        AssertSameValues(dqExpected, dq, "dq");
        AssertSameValues(dkvExpected, dkv, "dk and dv");
    }

    [Fact]
    public void Attention_over_no_keys_stores_zero_gradients()
    {
        const int batch = 2, queryLen = 3, heads = 2, headDim = 2, c = heads * headDim;
        float[] q = new float[batch * queryLen * c], dq = Poisoned(q.Length), dOut = new float[batch * queryLen * c];
        Attention.Backward(dOut, q, c, ReadOnlySpan<float>.Empty, ReadOnlySpan<float>.Empty, c, ReadOnlySpan<float>.Empty, dq, Span<float>.Empty, Span<float>.Empty,
            batch, queryLen, 0, heads, headDim, overwriteDq: true, overwriteDkv: true);
        Assert.All(dq, v => Assert.Equal(0f, v));
    }

    private static void ClearHeads(float[] d, int stride, int columns)
    {
        for (int row = 0; row < d.Length / stride; row++) d.AsSpan(row * stride, columns).Clear();
    }

    private static void PoisonHeads(float[] d, int stride, int columns)
    {
        for (int row = 0; row < d.Length / stride; row++) d.AsSpan(row * stride, columns).Fill(float.NaN);
    }
}
