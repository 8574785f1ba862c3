using System;
using System.Collections.Generic;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Tests.Kernels;

/// <summary>
/// The general attention kernel: queries and keys/values from different (or packed) tensors, key padding, causal and
/// windowed masks, fully masked queries; its backward by finite differences; and the agreement of the packed,
/// cached and cross-attention forms with it.
/// </summary>
public class MaskedAttentionTests
{
    /// <summary>
    /// One attention call: where Q, K and V live (buffers may be shared, as in a packed Q | K | V tensor), the sizes
    /// and the masks. Gradient buffers mirror the input buffers one to one, so shared inputs get shared gradients.
    /// </summary>
    private sealed class Case
    {
        public int Batch, QueryLen, KeyLen, Heads, HeadDim, Window;
        public bool Causal;
        public float[] QBuffer = [], KBuffer = [], VBuffer = [];
        public int QOffset, KOffset, VOffset, QStride, KvStride;
        public byte[] Padding = [];

        public int C => Heads * HeadDim;
        public int OutputLength => Batch * QueryLen * C;
        public int ProbabilitiesLength => Batch * Heads * QueryLen * KeyLen;

        public float Q(int b, int i, int col) => QBuffer[QOffset + (b * QueryLen + i) * QStride + col];
        public float K(int b, int j, int col) => KBuffer[KOffset + (b * KeyLen + j) * KvStride + col];
        public float V(int b, int j, int col) => VBuffer[VOffset + (b * KeyLen + j) * KvStride + col];

        public bool Visible(int b, int i, int j)
            => (Padding.Length == 0 || Padding[b * KeyLen + j] == 0) && (!Causal || j <= i) && (Window == 0 || Math.Abs(i - j) <= Window);

        /// <summary>The distinct input buffers, each once.</summary>
        public List<float[]> Buffers()
        {
            var list = new List<float[]> { QBuffer };
            if (!list.Contains(KBuffer)) list.Add(KBuffer);
            if (!list.Contains(VBuffer)) list.Add(VBuffer);
            return list;
        }

        public void Forward(float[] output, float[] probabilities)
            => Attention.Forward(QBuffer.AsSpan(QOffset), QStride, KBuffer.AsSpan(KOffset), VBuffer.AsSpan(VOffset), KvStride, Padding,
                output, probabilities, Batch, QueryLen, KeyLen, Heads, HeadDim, Causal, Window);

        /// <summary>Backward into gradient buffers laid out like <see cref="Buffers"/> (same order).</summary>
        public void Backward(float[] dOutput, float[] probabilities, List<float[]> gradients, Span<float> scratch = default, bool givenScratch = false)
        {
            List<float[]> buffers = Buffers();
            float[] dQ = gradients[buffers.IndexOf(QBuffer)], dK = gradients[buffers.IndexOf(KBuffer)], dV = gradients[buffers.IndexOf(VBuffer)];
            if (givenScratch)
                Attention.Backward(dOutput, QBuffer.AsSpan(QOffset), QStride, KBuffer.AsSpan(KOffset), VBuffer.AsSpan(VOffset), KvStride, probabilities,
                    dQ.AsSpan(QOffset), dK.AsSpan(KOffset), dV.AsSpan(VOffset), Batch, QueryLen, KeyLen, Heads, HeadDim, scratch);
            else
                Attention.Backward(dOutput, QBuffer.AsSpan(QOffset), QStride, KBuffer.AsSpan(KOffset), VBuffer.AsSpan(VOffset), KvStride, probabilities,
                    dQ.AsSpan(QOffset), dK.AsSpan(KOffset), dV.AsSpan(VOffset), Batch, QueryLen, KeyLen, Heads, HeadDim);
        }
    }

    private static byte[] PaddingOf(int batch, int keyLen, params (int Batch, int Key)[] padded)
    {
        var padding = new byte[batch * keyLen];
        foreach (var (b, j) in padded) padding[b * keyLen + j] = 1;
        return padding;
    }

    /// <summary>Queries in a tensor of their own (row stride C + 1, so strides are exercised), keys and values packed K | V (stride 2C).</summary>
    private static Case Cross(int seed, int batch, int queryLen, int keyLen, int heads, int headDim, byte[] padding, bool causal = false, int window = 0)
    {
        var rng = new Rng((ulong)seed);
        int c = heads * headDim;
        float[] kv = TestTensors.Normal(rng, batch * keyLen * 2 * c);
        return new Case
        {
            Batch = batch, QueryLen = queryLen, KeyLen = keyLen, Heads = heads, HeadDim = headDim, Causal = causal, Window = window,
            QBuffer = TestTensors.Normal(rng, batch * queryLen * (c + 1)), QStride = c + 1,
            KBuffer = kv, VBuffer = kv, KOffset = 0, VOffset = c, KvStride = 2 * c,
            Padding = padding,
        };
    }

    /// <summary>Self-attention on a packed Q | K | V tensor: q, k, v slices of one buffer with stride 3C.</summary>
    private static Case Packed(int seed, int batch, int seqLen, int heads, int headDim, byte[] padding, bool causal, int window = 0)
    {
        int c = heads * headDim;
        float[] qkv = TestTensors.Normal(new Rng((ulong)seed), batch * seqLen * 3 * c);
        return new Case
        {
            Batch = batch, QueryLen = seqLen, KeyLen = seqLen, Heads = heads, HeadDim = headDim, Causal = causal, Window = window,
            QBuffer = qkv, KBuffer = qkv, VBuffer = qkv, QOffset = 0, KOffset = c, VOffset = 2 * c, QStride = 3 * c, KvStride = 3 * c,
            Padding = padding,
        };
    }

    /// <summary>Q, K and V each in a dense tensor of its own (stride C).</summary>
    private static Case Separate(int seed, int batch, int queryLen, int keyLen, int heads, int headDim, byte[] padding, bool causal, int window)
    {
        var rng = new Rng((ulong)seed);
        int c = heads * headDim;
        return new Case
        {
            Batch = batch, QueryLen = queryLen, KeyLen = keyLen, Heads = heads, HeadDim = headDim, Causal = causal, Window = window,
            QBuffer = TestTensors.Normal(rng, batch * queryLen * c), KBuffer = TestTensors.Normal(rng, batch * keyLen * c),
            VBuffer = TestTensors.Normal(rng, batch * keyLen * c), QStride = c, KvStride = c, Padding = padding,
        };
    }

    /// <summary>The configurations of the finite-difference and reference tests, by name.</summary>
    private static Case Configuration(string name, int headDim, int batch = 2, int queryLen = 5, int keyLen = 7, int heads = 3) => name switch
    {
        // Sequence 1 has two padded keys: key 4 inside the unpadded span (masked with −∞), key 6 at its end (trimmed off).
        "cross, padding" => Cross(50, batch, queryLen, keyLen, heads, headDim, PaddingOf(batch, keyLen, (1, 4), (1, keyLen - 1))),
        // Sequence 1: key 2 inside, the last key at the end.
        "packed causal, padding" => Packed(51, batch, keyLen, heads, headDim, PaddingOf(batch, keyLen, (1, 2), (1, keyLen - 1)), causal: true),
        "window 1" => Separate(52, batch, queryLen, keyLen, heads, headDim, [], causal: false, window: 1),
        "window 2" => Separate(53, batch, queryLen, keyLen, heads, headDim, [], causal: false, window: 2),
        "causal window 1" => Separate(54, batch, queryLen, keyLen, heads, headDim, [], causal: true, window: 1),
        "causal window 2" => Separate(55, batch, queryLen, keyLen, heads, headDim, [], causal: true, window: 2),
        // Every key of sequence 1 is padding: all its queries see nothing.
        "cross, one sequence all padding" => Cross(56, batch, queryLen, keyLen, heads, headDim, AllPadded(batch, keyLen, 1)),
        // Key 0 of sequence 1 is padding, so its causal query 0 sees nothing; a window of 1 also empties query 3 (keys 2, 3, padded).
        "packed causal window, empty queries" => Packed(57, batch, keyLen, heads, headDim, PaddingOf(batch, keyLen, (1, 0), (1, 2), (1, 3)), causal: true, window: 1),
        _ => throw new ArgumentException(name),
    };

    private static byte[] AllPadded(int batch, int keyLen, int sequence)
    {
        var padding = new byte[batch * keyLen];
        Array.Fill(padding, (byte)1, sequence * keyLen, keyLen);
        return padding;
    }

    public static TheoryData<string, int> Configurations()
    {
        var data = new TheoryData<string, int>();
        foreach (string name in new[] { "cross, padding", "packed causal, padding", "window 1", "window 2", "causal window 1", "causal window 2",
                     "cross, one sequence all padding", "packed causal window, empty queries" })
            foreach (int headDim in new[] { 4, 6 })
                data.Add(name, headDim);
        return data;
    }

    /// <summary>
    /// Naive attention in double with masked scores set to −∞ before the softmax; a query with no visible key gets
    /// output 0 and probabilities 0 (where the softmax of an all −∞ row would be NaN).
    /// </summary>
    private static (double[] Output, double[] Probabilities) Reference(Case a)
    {
        int c = a.C;
        var output = new double[a.OutputLength];
        var probs = new double[a.ProbabilitiesLength];
        double scale = 1 / Math.Sqrt(a.HeadDim);
        var scores = new double[a.KeyLen];
        for (int b = 0; b < a.Batch; b++)
            for (int h = 0; h < a.Heads; h++)
                for (int i = 0; i < a.QueryLen; i++)
                {
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < a.KeyLen; j++)
                    {
                        double dot = 0;
                        for (int d = 0; d < a.HeadDim; d++) dot += (double)a.Q(b, i, h * a.HeadDim + d) * a.K(b, j, h * a.HeadDim + d);
                        scores[j] = a.Visible(b, i, j) ? dot * scale : double.NegativeInfinity;
                        max = Math.Max(max, scores[j]);
                    }
                    if (double.IsNegativeInfinity(max)) continue; // nothing visible: zeros
                    double sum = 0;
                    for (int j = 0; j < a.KeyLen; j++) sum += Math.Exp(scores[j] - max);
                    for (int j = 0; j < a.KeyLen; j++)
                    {
                        double p = Math.Exp(scores[j] - max) / sum;
                        probs[((b * a.Heads + h) * a.QueryLen + i) * a.KeyLen + j] = p;
                        for (int d = 0; d < a.HeadDim; d++)
                            output[(b * a.QueryLen + i) * c + h * a.HeadDim + d] += p * a.V(b, j, h * a.HeadDim + d);
                    }
                }
        return (output, probs);
    }

    private static void AssertMatchesReference(Case a)
    {
        var output = new float[a.OutputLength];
        var probs = new float[a.ProbabilitiesLength];
        Array.Fill(output, float.NaN);
        Array.Fill(probs, float.NaN); // everything must be written, the masked entries as 0
        a.Forward(output, probs);
        var (refOut, refProbs) = Reference(a);
        for (int i = 0; i < output.Length; i++) Assert.True(Math.Abs(refOut[i] - output[i]) <= 1e-5, $"output[{i}] = {output[i]}, reference {refOut[i]}");
        for (int i = 0; i < probs.Length; i++)
        {
            Assert.True(Math.Abs(refProbs[i] - probs[i]) <= 1e-6, $"probabilities[{i}] = {probs[i]}, reference {refProbs[i]}");
            if (refProbs[i] == 0) Assert.Equal(0f, probs[i]); // masked: exactly 0, which backward relies on
        }
    }

    [Theory]
    [MemberData(nameof(Configurations))]
    public void Forward_matches_naive_double_reference(string configuration, int headDim)
        => AssertMatchesReference(Configuration(configuration, headDim));

    [Theory]
    // Past one query block (16 rows), with windows narrower and wider than a block, and head sizes off the vector widths.
    [InlineData("cross, padding", 33, 2, 37, 41)]
    [InlineData("packed causal, padding", 8, 2, 37, 37)]
    [InlineData("window 2", 16, 1, 37, 37)]
    [InlineData("causal window 2", 6, 2, 40, 37)]
    [InlineData("packed causal window, empty queries", 5, 2, 37, 37)]
    public void Forward_matches_reference_across_query_blocks(string configuration, int headDim, int batch, int queryLen, int keyLen)
        => AssertMatchesReference(Configuration(configuration, headDim, batch, queryLen, keyLen, heads: 2));

    [Theory]
    [InlineData(5)]
    [InlineData(20)]
    [InlineData(37)]
    public void Wide_windows_match_the_reference(int window)
    {
        AssertMatchesReference(Separate(58, 1, 37, 37, 2, 8, [], causal: false, window));
        AssertMatchesReference(Packed(59, 1, 37, 2, 8, PaddingOf(1, 37, (0, 3), (0, 36)), causal: true, window));
    }

    [Theory]
    [MemberData(nameof(Configurations))]
    public void Backward_matches_finite_differences_and_accumulates(string configuration, int headDim)
    {
        Case a = Configuration(configuration, headDim);
        float[] g = TestTensors.Normal(new Rng(60), a.OutputLength);
        var output = new float[a.OutputLength];
        var probs = new float[a.ProbabilitiesLength];
        double Loss() { a.Forward(output, probs); return GradientCheck.Dot(g, output); }
        Loss();
        float[] savedProbs = (float[])probs.Clone();

        List<float[]> buffers = a.Buffers();
        var gradients = buffers.ConvertAll(b => new float[b.Length]);
        a.Backward(g, savedProbs, gradients);
        for (int n = 0; n < buffers.Count; n++)
            GradientCheck.Check($"{configuration}: gradient of input buffer {n}", buffers[n], gradients[n], Loss);

        var twice = gradients.ConvertAll(x => (float[])x.Clone());
        a.Backward(g, savedProbs, twice);
        for (int n = 0; n < buffers.Count; n++)
            GradientCheck.AssertDoubled($"{configuration}: buffer {n}", gradients[n], twice[n]);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(6)]
    public void A_query_that_sees_no_key_has_output_zero_and_contributes_no_gradient(int headDim)
    {
        // Sequence 1 of "cross, one sequence all padding" sees nothing at all.
        Case a = Configuration("cross, one sequence all padding", headDim);
        int c = a.C;
        var output = new float[a.OutputLength];
        var probs = new float[a.ProbabilitiesLength];
        a.Forward(output, probs);
        Assert.All(output.AsSpan(a.QueryLen * c).ToArray(), x => Assert.Equal(0f, x));
        Assert.All(probs.AsSpan(a.Heads * a.QueryLen * a.KeyLen).ToArray(), p => Assert.Equal(0f, p));

        float[] g = TestTensors.Normal(new Rng(61), a.OutputLength);
        List<float[]> buffers = a.Buffers();
        var gradients = buffers.ConvertAll(b => new float[b.Length]);
        a.Backward(g, probs, gradients);
        float[] dQ = gradients[0], dKv = gradients[1];
        for (int i = 0; i < a.QueryLen; i++)
            for (int col = 0; col < c; col++)
                Assert.Equal(0f, dQ[(a.QueryLen + i) * a.QStride + col]);
        for (int j = 0; j < a.KeyLen; j++)
            for (int col = 0; col < 2 * c; col++)
                Assert.Equal(0f, dKv[(a.KeyLen + j) * a.KvStride + col]);
        Assert.Contains(dQ, x => x != 0f); // sequence 0 does get gradients

        // Causal query 0 of sequence 1 of the packed case with padded key 0: its row of output is 0, as is its query's gradient.
        Case packed = Configuration("packed causal window, empty queries", headDim);
        var packedOut = new float[packed.OutputLength];
        var packedProbs = new float[packed.ProbabilitiesLength];
        packed.Forward(packedOut, packedProbs);
        foreach (int query in new[] { 0, 3 })
        {
            Assert.All(packedOut.AsSpan((packed.QueryLen + query) * c, c).ToArray(), x => Assert.Equal(0f, x));
            var dQkv = new float[packed.QBuffer.Length];
            packed.Backward(TestTensors.Normal(new Rng(62), packed.OutputLength), packedProbs, [dQkv]);
            Assert.All(dQkv.AsSpan((packed.QueryLen + query) * 3 * c, c).ToArray(), x => Assert.Equal(0f, x));
        }
    }

    [Theory]
    [InlineData("cross, padding")]
    [InlineData("packed causal, padding")]
    [InlineData("causal window 2")]
    [InlineData("packed causal window, empty queries")]
    public void Backward_gives_the_same_gradient_for_every_scratch_size(string configuration)
    {
        Case a = Configuration(configuration, 6, batch: 2, queryLen: 23, keyLen: 21);
        float[] g = TestTensors.Normal(new Rng(63), a.OutputLength);
        var probs = new float[a.ProbabilitiesLength];
        a.Forward(new float[a.OutputLength], probs);
        List<float[]> buffers = a.Buffers();

        // Less than one row of scratch: the row-at-a-time form, the reference here.
        var rowwise = buffers.ConvertAll(b => new float[b.Length]);
        a.Backward(g, probs, rowwise, new float[a.KeyLen - 1], givenScratch: true);
        foreach (int rowsOfScratch in new[] { 1, 2, 5, 16, a.QueryLen })
        {
            var chunked = buffers.ConvertAll(b => new float[b.Length]);
            a.Backward(g, probs, chunked, new float[rowsOfScratch * a.KeyLen], givenScratch: true);
            for (int n = 0; n < buffers.Count; n++)
                for (int i = 0; i < chunked[n].Length; i++)
                    Assert.True(Math.Abs(chunked[n][i] - rowwise[n][i]) <= 1e-5 * (1 + Math.Abs(rowwise[n][i])),
                        $"scratch {rowsOfScratch} rows: buffer {n}[{i}] = {chunked[n][i]}, row-wise {rowwise[n][i]}");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Packed_forward_and_backward_equal_the_general_kernel_on_separate_tensors(bool causal)
    {
        int batch = 2, seqLen = 19, heads = 3, headDim = 6, c = heads * headDim;
        var rng = new Rng(64);
        float[] qkv = TestTensors.Normal(rng, batch * seqLen * 3 * c), g = TestTensors.Normal(rng, batch * seqLen * c);
        var packedOut = new float[batch * seqLen * c];
        var packedProbs = new float[batch * heads * seqLen * seqLen];
        Attention.Forward(qkv, packedOut, packedProbs, batch, seqLen, heads, headDim, causal);
        var dQkv = new float[qkv.Length];
        Attention.Backward(g, qkv, packedProbs, dQkv, batch, seqLen, heads, headDim, causal);

        // The same numbers unpacked into three dense [batch·seqLen, C] tensors.
        float[] q = Columns(qkv, 3 * c, 0, c), k = Columns(qkv, 3 * c, c, c), v = Columns(qkv, 3 * c, 2 * c, c);
        var output = new float[packedOut.Length];
        var probs = new float[packedProbs.Length];
        Attention.Forward(q, c, k, v, c, default, output, probs, batch, seqLen, seqLen, heads, headDim, causal);
        float[] dq = new float[q.Length], dk = new float[k.Length], dv = new float[v.Length];
        Attention.Backward(g, q, c, k, v, c, probs, dq, dk, dv, batch, seqLen, seqLen, heads, headDim);

        Assert.Equal(packedOut, output);
        Assert.Equal(packedProbs, probs);
        Assert.Equal(Columns(dQkv, 3 * c, 0, c), dq);
        Assert.Equal(Columns(dQkv, 3 * c, c, c), dk);
        Assert.Equal(Columns(dQkv, 3 * c, 2 * c, c), dv);
    }

    private static float[] Columns(float[] x, int stride, int from, int count)
    {
        int rows = x.Length / stride;
        var result = new float[rows * count];
        for (int r = 0; r < rows; r++) Array.Copy(x, r * stride + from, result, r * count, count);
        return result;
    }

    [Theory]
    [InlineData(4)]
    [InlineData(6)]
    public void ForwardCross_equals_rows_of_the_general_forward(int headDim)
    {
        // Three sources: unpadded; two padded keys (one inside, one at the end); all padding.
        int batch = 3, queryLen = 5, keyLen = 7, heads = 3, c = heads * headDim;
        var padding = PaddingOf(batch, keyLen, (1, 4), (1, 6));
        Array.Fill(padding, (byte)1, 2 * keyLen, keyLen);
        Case a = Cross(65, batch, queryLen, keyLen, heads, headDim, padding);
        var full = new float[a.OutputLength];
        a.Forward(full, new float[a.ProbabilitiesLength]);

        var scores = new float[keyLen + 3];
        for (int b = 0; b < batch; b++)
        {
            ReadOnlySpan<float> q = a.QBuffer.AsSpan(b * queryLen * a.QStride, queryLen * a.QStride);
            ReadOnlySpan<float> kv = a.KBuffer.AsSpan(b * keyLen * a.KvStride, keyLen * a.KvStride);
            ReadOnlySpan<byte> pad = padding.AsSpan(b * keyLen, keyLen);
            // All queries at once…
            var rows = new float[queryLen * c];
            Attention.ForwardCross(q, a.QStride, kv, kv.Slice(c), a.KvStride, pad, rows, scores, queryLen, keyLen, heads, headDim);
            for (int i = 0; i < rows.Length; i++) Assert.Equal(full[b * queryLen * c + i], rows[i], 1e-6);
            // …and one at a time.
            for (int i = 0; i < queryLen; i++)
            {
                var row = new float[c];
                Attention.ForwardCross(q.Slice(i * a.QStride, c), a.QStride, kv, kv.Slice(c), a.KvStride, pad, row, scores, 1, keyLen, heads, headDim);
                for (int j = 0; j < c; j++) Assert.Equal(full[(b * queryLen + i) * c + j], row[j], 1e-6);
            }
        }

        // No padding given: as a sequence without padding.
        var unpadded = new float[queryLen * c];
        Attention.ForwardCross(a.QBuffer.AsSpan(0, queryLen * a.QStride), a.QStride, a.KBuffer, a.KBuffer.AsSpan(c), a.KvStride, default, unpadded, scores, queryLen, keyLen, heads, headDim);
        for (int i = 0; i < unpadded.Length; i++) Assert.Equal(full[i], unpadded[i], 1e-6);
    }

    [Theory]
    [InlineData(1, 4)]
    [InlineData(2, 6)]
    [InlineData(3, 4)]
    [InlineData(20, 6)]
    public void Windowed_ForwardCached_equals_rows_of_windowed_causal_forward(int window, int headDim)
    {
        int seqLen = 9, heads = 3, c = heads * headDim, maxLen = 12;
        Case a = Packed(66, 1, seqLen, heads, headDim, [], causal: true, window);
        float[] qkv = a.QBuffer;
        var full = new float[seqLen * c];
        a.Forward(full, new float[a.ProbabilitiesLength]);

        float[] keys = new float[maxLen * c], values = new float[maxLen * c];
        for (int t = 0; t < seqLen; t++)
        {
            Array.Copy(qkv, t * 3 * c + c, keys, t * c, c);
            Array.Copy(qkv, t * 3 * c + 2 * c, values, t * c, c);
        }
        var scores = new float[maxLen];
        for (int t = 0; t < seqLen; t++)
        {
            var row = new float[c];
            Attention.ForwardCached(qkv.AsSpan(t * 3 * c, 3 * c), 3 * c, keys, values, row, scores, t, 1, heads, headDim, window);
            for (int j = 0; j < c; j++) Assert.Equal(full[t * c + j], row[j], 1e-6);
        }

        int position0 = 2, n = 6;
        var chunk = new float[n * c];
        Attention.ForwardCached(qkv.AsSpan(position0 * 3 * c), 3 * c, keys, values, chunk, scores, position0, n, heads, headDim, window);
        for (int i = 0; i < n * c; i++) Assert.Equal(full[position0 * c + i], chunk[i], 1e-6);
    }

    [Fact]
    public void Windows_as_wide_as_the_sequence_change_nothing()
    {
        Case windowed = Packed(67, 2, 7, 2, 4, PaddingOf(2, 7, (1, 5)), causal: false, window: 6);
        Case plain = Packed(67, 2, 7, 2, 4, PaddingOf(2, 7, (1, 5)), causal: false, window: 0);
        float[] a = new float[windowed.OutputLength], b = new float[plain.OutputLength];
        windowed.Forward(a, new float[windowed.ProbabilitiesLength]);
        plain.Forward(b, new float[plain.ProbabilitiesLength]);
        Assert.Equal(b, a);
    }

    [Fact]
    public void Wrong_lengths_throw()
    {
        int batch = 2, queryLen = 3, keyLen = 4, heads = 2, headDim = 3, c = heads * headDim;
        float[] q = new float[batch * queryLen * c], kv = new float[batch * keyLen * 2 * c];
        float[] output = new float[batch * queryLen * c], probs = new float[batch * heads * queryLen * keyLen];
        byte[] padding = new byte[batch * keyLen];

        void Forward(float[] qq, int qStride, ReadOnlySpan<float> k, byte[] pad, float[] outp, float[] pr, int window = 0)
            => Attention.Forward(qq, qStride, k, kv.AsSpan(c), 2 * c, pad, outp, pr, batch, queryLen, keyLen, heads, headDim, causal: false, window);
        Forward(q, c, kv, padding, output, probs); // the right sizes pass
        Assert.Equal("q", Assert.Throws<ArgumentException>(() => Forward(new float[q.Length - 1], c, kv, padding, output, probs)).ParamName);
        Assert.Equal("k", Assert.Throws<ArgumentException>(() => Forward(q, c, kv.AsSpan(0, kv.Length - c - 1).ToArray(), padding, output, probs)).ParamName);
        Assert.Equal("keyPadding", Assert.Throws<ArgumentException>(() => Forward(q, c, kv, new byte[3], output, probs)).ParamName);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => Forward(q, c, kv, padding, new float[1], probs)).ParamName);
        Assert.Equal("probabilities", Assert.Throws<ArgumentException>(() => Forward(q, c, kv, padding, output, new float[probs.Length + 1])).ParamName);
        Assert.Equal("qStride", Assert.Throws<ArgumentOutOfRangeException>(() => Forward(q, c - 1, kv, padding, output, probs)).ParamName);
        Assert.Equal("window", Assert.Throws<ArgumentOutOfRangeException>(() => Forward(q, c, kv, padding, output, probs, window: -1)).ParamName);

        float[] dq = new float[q.Length], dkv = new float[kv.Length];
        Assert.Equal("dk", Assert.Throws<ArgumentException>(() =>
            Attention.Backward(output, q, c, kv, kv.AsSpan(c), 2 * c, probs, dq, new float[3], dkv.AsSpan(c), batch, queryLen, keyLen, heads, headDim)).ParamName);
        Assert.Equal("kvStride", Assert.Throws<ArgumentOutOfRangeException>(() =>
            Attention.Backward(output, q, c, kv, kv.AsSpan(c), c - 1, probs, dq, dkv, dkv.AsSpan(c), batch, queryLen, keyLen, heads, headDim)).ParamName);

        Assert.Equal("scores", Assert.Throws<ArgumentException>(() =>
            Attention.ForwardCross(new float[c], c, new float[keyLen * c], new float[keyLen * c], c, default, new float[c], new float[keyLen - 1], 1, keyLen, heads, headDim)).ParamName);
        Assert.Equal("keyPadding", Assert.Throws<ArgumentException>(() =>
            Attention.ForwardCross(new float[c], c, new float[keyLen * c], new float[keyLen * c], c, new byte[keyLen + 1], new float[c], new float[keyLen], 1, keyLen, heads, headDim)).ParamName);
        Assert.Equal("window", Assert.Throws<ArgumentOutOfRangeException>(() =>
            Attention.ForwardCached(new float[c], c, new float[8 * c], new float[8 * c], new float[c], new float[8], 3, 1, heads, headDim, window: -2)).ParamName);
    }
}
