using System;
using System.Collections.Generic;
using TransformerGen.Kernels;
using TransformerGen.Tests.Threading;
using Xunit;

namespace TransformerGen.Tests.Kernels;

/// <summary>
/// Grouped-query and multi-query attention (<c>kvHeads</c> &lt; heads): the general forward, its backward and the
/// cached forward against Hugging Face's <c>repeat_kv</c> done by hand (K and V expanded to one head per query head,
/// then the multi-head kernel and a double-precision loop), finite differences, the overwrite flags, and
/// kvHeads == heads giving exactly the multi-head bits.
/// </summary>
public class GroupedQueryAttentionTests
{
    /// <summary>
    /// One grouped attention call. Layouts: "packed" is a Llama-style packed row Q | K | V of (heads + 2·kvHeads)·headDim
    /// floats (self-attention, q, k and v slices of one buffer); "cross" has queries in a tensor of their own (stride
    /// C + 1) and keys and values packed K | V with stride 2·Ckv + 1, so that strides and foreign columns are exercised.
    /// Gradient buffers mirror the input buffers one to one.
    /// </summary>
    internal sealed class Case
    {
        public int Batch, QueryLen, KeyLen, Heads, KvHeads, HeadDim, Window;
        public bool Causal;
        public float[] QBuffer = [], KBuffer = [], VBuffer = [];
        public int QOffset, KOffset, VOffset, QStride, KvStride;
        public byte[] Padding = [];

        public int C => Heads * HeadDim;
        public int KvC => KvHeads * HeadDim;
        public int Group => Heads / KvHeads;
        public int OutputLength => Batch * QueryLen * C;
        public int ProbabilitiesLength => Batch * Heads * QueryLen * KeyLen;

        public override string ToString() => $"B={Batch} Tq={QueryLen} Tk={KeyLen} H={Heads} KV={KvHeads} D={HeadDim} causal={Causal} window={Window} padded={Padding.Length > 0}";

        public List<float[]> Buffers()
        {
            var list = new List<float[]> { QBuffer };
            if (!list.Contains(KBuffer)) list.Add(KBuffer);
            if (!list.Contains(VBuffer)) list.Add(VBuffer);
            return list;
        }

        public void Forward(float[] output, float[] probabilities, int? kvHeads = null)
            => Attention.Forward(QBuffer.AsSpan(QOffset), QStride, KBuffer.AsSpan(KOffset), VBuffer.AsSpan(VOffset), KvStride, Padding,
                output, probabilities, Batch, QueryLen, KeyLen, Heads, HeadDim, Causal, Window, kvHeads ?? KvHeads);

        /// <summary>Backward into gradient buffers laid out like <see cref="Buffers"/>.</summary>
        public void Backward(float[] dOutput, float[] probabilities, List<float[]> gradients, bool overwriteDq = false, bool overwriteDkv = false,
            float[]? scratch = null, int? kvHeads = null)
        {
            List<float[]> buffers = Buffers();
            float[] dQ = gradients[buffers.IndexOf(QBuffer)], dK = gradients[buffers.IndexOf(KBuffer)], dV = gradients[buffers.IndexOf(VBuffer)];
            if (scratch is null)
                Attention.Backward(dOutput, QBuffer.AsSpan(QOffset), QStride, KBuffer.AsSpan(KOffset), VBuffer.AsSpan(VOffset), KvStride, probabilities,
                    dQ.AsSpan(QOffset), dK.AsSpan(KOffset), dV.AsSpan(VOffset), Batch, QueryLen, KeyLen, Heads, HeadDim, overwriteDq, overwriteDkv, kvHeads ?? KvHeads);
            else
                Attention.Backward(dOutput, QBuffer.AsSpan(QOffset), QStride, KBuffer.AsSpan(KOffset), VBuffer.AsSpan(VOffset), KvStride, probabilities,
                    dQ.AsSpan(QOffset), dK.AsSpan(KOffset), dV.AsSpan(VOffset), Batch, QueryLen, KeyLen, Heads, HeadDim, scratch, overwriteDq, overwriteDkv, kvHeads ?? KvHeads);
        }

        public float Q(int b, int i, int col) => QBuffer[QOffset + (b * QueryLen + i) * QStride + col];
        public float K(int b, int j, int col) => KBuffer[KOffset + (b * KeyLen + j) * KvStride + col];
        public float V(int b, int j, int col) => VBuffer[VOffset + (b * KeyLen + j) * KvStride + col];

        public bool Visible(int b, int i, int j)
            => (Padding.Length == 0 || Padding[b * KeyLen + j] == 0) && (!Causal || j <= i) && (Window == 0 || Math.Abs(i - j) <= Window);

        /// <summary>
        /// repeat_kv by hand: dense Q <c>[B·Tq, C]</c>, and K and V expanded to <c>[B·Tk, C]</c> with query head h's columns
        /// copied from key/value head h / (heads / kvHeads).
        /// </summary>
        public (float[] Q, float[] K, float[] V) Expanded()
        {
            float[] q = new float[Batch * QueryLen * C], k = new float[Batch * KeyLen * C], v = new float[Batch * KeyLen * C];
            for (int b = 0; b < Batch; b++)
            {
                for (int i = 0; i < QueryLen; i++)
                    for (int col = 0; col < C; col++) q[(b * QueryLen + i) * C + col] = Q(b, i, col);
                for (int j = 0; j < KeyLen; j++)
                    for (int h = 0; h < Heads; h++)
                        for (int d = 0; d < HeadDim; d++)
                        {
                            int from = h / Group * HeadDim + d;
                            k[(b * KeyLen + j) * C + h * HeadDim + d] = K(b, j, from);
                            v[(b * KeyLen + j) * C + h * HeadDim + d] = V(b, j, from);
                        }
            }
            return (q, k, v);
        }
    }

    internal static byte[] PaddingOf(int batch, int keyLen, params (int Batch, int Key)[] padded)
    {
        var padding = new byte[batch * keyLen];
        foreach (var (b, j) in padded) padding[b * keyLen + j] = 1;
        return padding;
    }

    /// <summary>Self-attention on packed Llama-style rows Q | K | V, (heads + 2·kvHeads)·headDim floats each.</summary>
    internal static Case Packed(int seed, int batch, int seqLen, int heads, int kvHeads, int headDim, byte[] padding, bool causal, int window = 0)
    {
        int c = heads * headDim, kvC = kvHeads * headDim, stride = c + 2 * kvC;
        float[] qkv = TestTensors.Normal(new Rng((ulong)seed), batch * seqLen * stride);
        return new Case
        {
            Batch = batch, QueryLen = seqLen, KeyLen = seqLen, Heads = heads, KvHeads = kvHeads, HeadDim = headDim, Causal = causal, Window = window,
            QBuffer = qkv, KBuffer = qkv, VBuffer = qkv, QOffset = 0, KOffset = c, VOffset = c + kvC, QStride = stride, KvStride = stride,
            Padding = padding,
        };
    }

    /// <summary>Queries alone (stride C + 1), keys and values packed K | V with stride 2·Ckv + 1; queryLen ≠ keyLen allowed.</summary>
    internal static Case Cross(int seed, int batch, int queryLen, int keyLen, int heads, int kvHeads, int headDim, byte[] padding, bool causal = false, int window = 0)
    {
        var rng = new Rng((ulong)seed);
        int c = heads * headDim, kvC = kvHeads * headDim;
        float[] kv = TestTensors.Normal(rng, batch * keyLen * (2 * kvC + 1));
        return new Case
        {
            Batch = batch, QueryLen = queryLen, KeyLen = keyLen, Heads = heads, KvHeads = kvHeads, HeadDim = headDim, Causal = causal, Window = window,
            QBuffer = TestTensors.Normal(rng, batch * queryLen * (c + 1)), QStride = c + 1,
            KBuffer = kv, VBuffer = kv, KOffset = 0, VOffset = kvC, KvStride = 2 * kvC + 1,
            Padding = padding,
        };
    }

    /// <summary>The configurations, by name: 6 query heads over kvHeads of them, masks of every kind.</summary>
    internal static Case Configuration(string name, int headDim, int kvHeads, int batch = 2, int queryLen = 5, int keyLen = 7, int heads = 6) => name switch
    {
        // Sequence 1: key 4 padded inside the unpadded span, the last key at its end; queries fewer than keys.
        "cross, padding" => Cross(80, batch, queryLen, keyLen, heads, kvHeads, headDim, PaddingOf(batch, keyLen, (1, 4), (1, keyLen - 1))),
        // More queries than keys, causal (query i sees keys 0…i), so the last queries see every key.
        "cross causal, more queries" => Cross(81, batch, keyLen + 3, keyLen, heads, kvHeads, headDim, [], causal: true),
        "packed causal, padding" => Packed(82, batch, keyLen, heads, kvHeads, headDim, PaddingOf(batch, keyLen, (1, 2), (1, keyLen - 1)), causal: true),
        // Key 0 of sequence 1 padded: its causal query 0 sees nothing (output 0, no gradient).
        "packed causal window 2, empty query" => Packed(83, batch, keyLen, heads, kvHeads, headDim, PaddingOf(batch, keyLen, (1, 0)), causal: true, window: 2),
        _ => throw new ArgumentException(name),
    };

    internal static readonly string[] ConfigurationNames = ["cross, padding", "cross causal, more queries", "packed causal, padding", "packed causal window 2, empty query"];

    public static TheoryData<string, int, int> ReferenceConfigurations()
    {
        var data = new TheoryData<string, int, int>();
        foreach (string name in ConfigurationNames)
            foreach (int headDim in new[] { 5, 7, 12 })
                foreach (int kvHeads in new[] { 1, 2, 3, 6 })
                    data.Add(name, headDim, kvHeads);
        return data;
    }

    public static TheoryData<string, int, int> GradientConfigurations()
    {
        var data = new TheoryData<string, int, int>();
        foreach (string name in ConfigurationNames)
            foreach ((int headDim, int kvHeads) in new[] { (5, 1), (7, 2), (12, 3), (5, 6) })
                data.Add(name, headDim, kvHeads);
        return data;
    }

    /// <summary>Naive attention in double over the expanded K and V; a query that sees no key gets zeros.</summary>
    private static (double[] Output, double[] Probabilities) Reference(Case a)
    {
        var (_, kExpanded, vExpanded) = a.Expanded();
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
                        for (int d = 0; d < a.HeadDim; d++) dot += (double)a.Q(b, i, h * a.HeadDim + d) * kExpanded[(b * a.KeyLen + j) * c + h * a.HeadDim + d];
                        scores[j] = a.Visible(b, i, j) ? dot * scale : double.NegativeInfinity;
                        max = Math.Max(max, scores[j]);
                    }
                    if (double.IsNegativeInfinity(max)) continue;
                    double sum = 0;
                    for (int j = 0; j < a.KeyLen; j++) sum += Math.Exp(scores[j] - max);
                    for (int j = 0; j < a.KeyLen; j++)
                    {
                        double p = Math.Exp(scores[j] - max) / sum;
                        probs[((b * a.Heads + h) * a.QueryLen + i) * a.KeyLen + j] = p;
                        for (int d = 0; d < a.HeadDim; d++)
                            output[(b * a.QueryLen + i) * c + h * a.HeadDim + d] += p * vExpanded[(b * a.KeyLen + j) * c + h * a.HeadDim + d];
                    }
                }
        return (output, probs);
    }

    /// <summary>The multi-head kernel on the expanded tensors: output, probabilities, and (given dOutput) dq, dk, dv [.., C].</summary>
    private static (float[] Output, float[] Probs, float[] Dq, float[] Dk, float[] Dv) ExpandedMultiHead(Case a, float[] dOutput)
    {
        var (q, k, v) = a.Expanded();
        int c = a.C;
        var output = new float[a.OutputLength];
        var probs = new float[a.ProbabilitiesLength];
        Attention.Forward(q, c, k, v, c, a.Padding, output, probs, a.Batch, a.QueryLen, a.KeyLen, a.Heads, a.HeadDim, a.Causal, a.Window);
        float[] dq = new float[q.Length], dk = new float[k.Length], dv = new float[v.Length];
        Attention.Backward(dOutput, q, c, k, v, c, probs, dq, dk, dv, a.Batch, a.QueryLen, a.KeyLen, a.Heads, a.HeadDim);
        return (output, probs, dq, dk, dv);
    }

    [Theory]
    [MemberData(nameof(ReferenceConfigurations))]
    public void Forward_matches_repeat_kv_in_double_and_the_multi_head_kernel_bit_for_bit(string configuration, int headDim, int kvHeads)
        => AssertForwardMatchesReferenceAndRepeatKv(Configuration(configuration, headDim, kvHeads));

    /// <summary>
    /// The forward pass of <paramref name="a"/> writes every output and probability, within 1e-5 and 1e-6 of the double
    /// reference (masked probabilities exactly 0), and bit for bit what the multi-head kernel gives on repeated K and V:
    /// a query head reads its group's K and V in place exactly as the multi-head kernel reads the copies.
    /// </summary>
    private static void AssertForwardMatchesReferenceAndRepeatKv(Case a)
    {
        var output = new float[a.OutputLength];
        var probs = new float[a.ProbabilitiesLength];
        Array.Fill(output, float.NaN);
        Array.Fill(probs, float.NaN); // every entry must be written, the masked ones as 0
        a.Forward(output, probs);

        var (refOut, refProbs) = Reference(a);
        for (int i = 0; i < output.Length; i++) Assert.True(Math.Abs(refOut[i] - output[i]) <= 1e-5, $"{a}: output[{i}] = {output[i]}, reference {refOut[i]}");
        for (int i = 0; i < probs.Length; i++)
        {
            Assert.True(Math.Abs(refProbs[i] - probs[i]) <= 1e-6, $"{a}: probabilities[{i}] = {probs[i]}, reference {refProbs[i]}");
            if (refProbs[i] == 0) Assert.Equal(0f, probs[i]);
        }

        var expanded = ExpandedMultiHead(a, new float[a.OutputLength]);
        ThreadSettings.AssertBitIdentical(expanded.Output, output, $"{a}: output against repeat_kv + multi-head");
        ThreadSettings.AssertBitIdentical(expanded.Probs, probs, $"{a}: probabilities against repeat_kv + multi-head");
    }

    public static TheoryData<string, int, int> WholeVectorConfigurations()
    {
        var data = new TheoryData<string, int, int>();
        foreach (string name in ConfigurationNames)
            foreach ((int headDim, int kvHeads) in new[] { (16, 6), (32, 2), (48, 3), (64, 1), (128, 2) })
                data.Add(name, headDim, kvHeads);
        return data;
    }

    /// <summary>
    /// Head sizes of whole vectors, which the AVX-512 path computes in outer-product tiles of 64 keys (Attention.Tiled.cs):
    /// 70 keys are a whole tile and a tail of 6, and 73 rows end in a partial block of rows.
    /// </summary>
    [Theory]
    [MemberData(nameof(WholeVectorConfigurations))]
    public void Whole_vector_head_sizes_across_key_tiles_match_the_reference(string configuration, int headDim, int kvHeads)
        => AssertForwardMatchesReferenceAndRepeatKv(Configuration(configuration, headDim, kvHeads, batch: 2, queryLen: 73, keyLen: 70));

    [Theory]
    [MemberData(nameof(ReferenceConfigurations))]
    public void Backward_equals_the_multi_head_kernel_on_repeat_kv_with_group_sums(string configuration, int headDim, int kvHeads)
    {
        Case a = Configuration(configuration, headDim, kvHeads);
        float[] g = TestTensors.Normal(new Rng(84), a.OutputLength);
        var probs = new float[a.ProbabilitiesLength];
        a.Forward(new float[a.OutputLength], probs);
        List<float[]> buffers = a.Buffers();
        var gradients = buffers.ConvertAll(x => new float[x.Length]);
        a.Backward(g, probs, gradients);

        var expanded = ExpandedMultiHead(a, g);
        float[] dQ = gradients[buffers.IndexOf(a.QBuffer)], dK = gradients[buffers.IndexOf(a.KBuffer)], dV = gradients[buffers.IndexOf(a.VBuffer)];
        int c = a.C, d = a.HeadDim;
        for (int b = 0; b < a.Batch; b++)
        {
            // dQ: the same products in the same order as the multi-head kernel, so the same bits.
            for (int i = 0; i < a.QueryLen; i++)
                for (int col = 0; col < c; col++)
                {
                    float expected = expanded.Dq[(b * a.QueryLen + i) * c + col], actual = dQ[a.QOffset + (b * a.QueryLen + i) * a.QStride + col];
                    if (BitConverter.SingleToInt32Bits(expected) != BitConverter.SingleToInt32Bits(actual))
                        Assert.Fail($"{a}: dq[{b}, {i}, {col}] = {actual:R}, multi-head {expected:R}");
                }
            // dK, dV of key/value head gk: the sum of the expanded heads' gradients over its group (added in another order).
            for (int j = 0; j < a.KeyLen; j++)
                for (int gk = 0; gk < a.KvHeads; gk++)
                    for (int e = 0; e < d; e++)
                    {
                        double sumK = 0, sumV = 0, magnitude = 0;
                        for (int h = gk * a.Group; h < (gk + 1) * a.Group; h++)
                        {
                            float pk = expanded.Dk[(b * a.KeyLen + j) * c + h * d + e], pv = expanded.Dv[(b * a.KeyLen + j) * c + h * d + e];
                            sumK += pk;
                            sumV += pv;
                            magnitude += Math.Abs(pk) + Math.Abs(pv);
                        }
                        int at = (b * a.KeyLen + j) * a.KvStride + gk * d + e;
                        double tolerance = 1e-6 * (1 + magnitude);
                        Assert.True(Math.Abs(dK[a.KOffset + at] - sumK) <= tolerance, $"{a}: dk[{b}, {j}, {gk}, {e}] = {dK[a.KOffset + at]}, group sum {sumK}");
                        Assert.True(Math.Abs(dV[a.VOffset + at] - sumV) <= tolerance, $"{a}: dv[{b}, {j}, {gk}, {e}] = {dV[a.VOffset + at]}, group sum {sumV}");
                    }
        }
        // Columns that are neither Q, K nor V of the heads (the stride padding of the cross layout) are untouched.
        if (configuration.StartsWith("cross", StringComparison.Ordinal))
        {
            for (int row = 0; row < a.Batch * a.QueryLen; row++) Assert.Equal(0f, dQ[row * a.QStride + c]);
            for (int row = 0; row < a.Batch * a.KeyLen; row++) Assert.Equal(0f, dK[row * a.KvStride + 2 * a.KvC]);
        }
    }

    [Theory]
    [MemberData(nameof(GradientConfigurations))]
    public void Backward_matches_finite_differences_and_accumulates(string configuration, int headDim, int kvHeads)
    {
        Case a = Configuration(configuration, headDim, kvHeads);
        float[] g = TestTensors.Normal(new Rng(85), a.OutputLength);
        var output = new float[a.OutputLength];
        var probs = new float[a.ProbabilitiesLength];
        double Loss() { a.Forward(output, probs); return GradientCheck.Dot(g, output); }
        Loss();
        float[] savedProbs = (float[])probs.Clone();
        List<float[]> buffers = a.Buffers();
        var gradients = buffers.ConvertAll(x => new float[x.Length]);
        a.Backward(g, savedProbs, gradients);
        for (int n = 0; n < buffers.Count; n++)
            GradientCheck.Check($"{a}: gradient of input buffer {n}", buffers[n], gradients[n], Loss);

        var twice = gradients.ConvertAll(x => (float[])x.Clone());
        a.Backward(g, savedProbs, twice);
        for (int n = 0; n < buffers.Count; n++)
            GradientCheck.AssertDoubled($"{a}: buffer {n}", gradients[n], twice[n]);
    }

    [Theory]
    [InlineData("cross, padding", 7, 2)]
    [InlineData("cross, padding", 5, 1)]
    [InlineData("packed causal, padding", 12, 3)]
    [InlineData("packed causal window 2, empty query", 5, 1)]
    public void Overwrite_flags_store_what_adding_into_zeros_gives_and_clear_each_group_once(string configuration, int headDim, int kvHeads)
    {
        Case a = Configuration(configuration, headDim, kvHeads);
        var rng = new Rng(86);
        float[] g = TestTensors.Normal(rng, a.OutputLength);
        var probs = new float[a.ProbabilitiesLength];
        a.Forward(new float[a.OutputLength], probs);
        List<float[]> buffers = a.Buffers();
        List<float[]> start = buffers.ConvertAll(x => TestTensors.Normal(rng, x.Length)); // gradients already there

        foreach (bool scratchTooSmall in new[] { false, true })
            foreach ((bool overwriteDq, bool overwriteDkv) in new[] { (true, false), (false, true), (true, true) })
            {
                // Expected: the heads' columns that are overwritten cleared, then the gradient added.
                List<float[]> expected = start.ConvertAll(x => (float[])x.Clone());
                List<float[]> stored = start.ConvertAll(x => (float[])x.Clone());
                ForColumns(a, expected, overwriteDq, overwriteDkv, (buffer, at) => buffer[at] = 0f);
                ForColumns(a, stored, overwriteDq, overwriteDkv, (buffer, at) => buffer[at] = float.NaN); // never read
                float[]? scratch = scratchTooSmall ? new float[a.KeyLen - 1] : null; // the row-at-a-time form too
                a.Backward(g, probs, expected, scratch: scratch);
                a.Backward(g, probs, stored, overwriteDq, overwriteDkv, scratch);
                for (int n = 0; n < buffers.Count; n++)
                    for (int i = 0; i < expected[n].Length; i++)
                        if (!(expected[n][i] == stored[n][i]))
                            Assert.Fail($"{a} overwriteDq={overwriteDq} overwriteDkv={overwriteDkv} small scratch={scratchTooSmall}: buffer {n}[{i}] = {stored[n][i]:R}, expected {expected[n][i]:R}");
            }
    }

    /// <summary>Applies <paramref name="action"/> to every gradient element of the Q heads (when <paramref name="q"/>) and of the K and V heads (when <paramref name="kv"/>).</summary>
    private static void ForColumns(Case a, List<float[]> gradients, bool q, bool kv, Action<float[], int> action)
    {
        List<float[]> buffers = a.Buffers();
        float[] dQ = gradients[buffers.IndexOf(a.QBuffer)], dK = gradients[buffers.IndexOf(a.KBuffer)], dV = gradients[buffers.IndexOf(a.VBuffer)];
        if (q)
            for (int row = 0; row < a.Batch * a.QueryLen; row++)
                for (int col = 0; col < a.C; col++) action(dQ, a.QOffset + row * a.QStride + col);
        if (kv)
            for (int row = 0; row < a.Batch * a.KeyLen; row++)
                for (int col = 0; col < a.KvC; col++)
                {
                    action(dK, a.KOffset + row * a.KvStride + col);
                    action(dV, a.VOffset + row * a.KvStride + col);
                }
    }

    [Theory]
    [InlineData(5, 1, 0)]
    [InlineData(7, 2, 0)]
    [InlineData(12, 3, 0)]
    [InlineData(7, 6, 0)]
    [InlineData(5, 2, 3)]
    [InlineData(12, 1, 1)]
    public void ForwardCached_with_kv_heads_equals_rows_of_the_batched_causal_forward(int headDim, int kvHeads, int window)
    {
        int seqLen = 11, heads = 6, maxLen = 14;
        Case a = Packed(87, 1, seqLen, heads, kvHeads, headDim, [], causal: true, window);
        int c = a.C, kvC = a.KvC, stride = a.QStride;
        float[] qkv = a.QBuffer;
        var full = new float[a.OutputLength];
        a.Forward(full, new float[a.ProbabilitiesLength]);

        // The caches hold only the key/value heads: [maxLen, kvHeads·headDim].
        float[] keys = new float[maxLen * kvC], values = new float[maxLen * kvC];
        for (int t = 0; t < seqLen; t++)
        {
            Array.Copy(qkv, t * stride + c, keys, t * kvC, kvC);
            Array.Copy(qkv, t * stride + c + kvC, values, t * kvC, kvC);
        }
        var scores = new float[maxLen];
        for (int t = 0; t < seqLen; t++)
        {
            var row = new float[c];
            Attention.ForwardCached(qkv.AsSpan(t * stride, stride), stride, keys, values, row, scores, t, 1, heads, headDim, window, kvHeads);
            for (int j = 0; j < c; j++) Assert.True(Math.Abs(full[t * c + j] - row[j]) <= 1e-6, $"token {t} column {j}: {row[j]}, batched {full[t * c + j]}");
        }

        int position0 = 3, n = 6;
        var chunk = new float[n * c];
        Attention.ForwardCached(qkv.AsSpan(position0 * stride), stride, keys, values, chunk, scores, position0, n, heads, headDim, window, kvHeads);
        for (int i = 0; i < n * c; i++) Assert.True(Math.Abs(full[position0 * c + i] - chunk[i]) <= 1e-6, $"chunk[{i}] = {chunk[i]}, batched {full[position0 * c + i]}");
    }

    [Theory]
    [InlineData("cross, padding", 7)]
    [InlineData("packed causal, padding", 5)]
    [InlineData("packed causal window 2, empty query", 12)]
    public void Kv_heads_equal_to_heads_or_zero_give_the_multi_head_bits(string configuration, int headDim)
    {
        Case a = Configuration(configuration, headDim, kvHeads: 6);
        float[] g = TestTensors.Normal(new Rng(88), a.OutputLength);
        List<float[]> buffers = a.Buffers();
        (float[] Output, float[] Probs, List<float[]> Gradients) Run(int? kvHeads)
        {
            var output = new float[a.OutputLength];
            var probs = new float[a.ProbabilitiesLength];
            var gradients = buffers.ConvertAll(x => new float[x.Length]);
            if (kvHeads is null)
            {
                // The calls as they were before kvHeads existed.
                List<float[]> bs = buffers;
                float[] dQ = gradients[bs.IndexOf(a.QBuffer)], dK = gradients[bs.IndexOf(a.KBuffer)], dV = gradients[bs.IndexOf(a.VBuffer)];
                Attention.Forward(a.QBuffer.AsSpan(a.QOffset), a.QStride, a.KBuffer.AsSpan(a.KOffset), a.VBuffer.AsSpan(a.VOffset), a.KvStride, a.Padding,
                    output, probs, a.Batch, a.QueryLen, a.KeyLen, a.Heads, a.HeadDim, a.Causal, a.Window);
                Attention.Backward(g, a.QBuffer.AsSpan(a.QOffset), a.QStride, a.KBuffer.AsSpan(a.KOffset), a.VBuffer.AsSpan(a.VOffset), a.KvStride, probs,
                    dQ.AsSpan(a.QOffset), dK.AsSpan(a.KOffset), dV.AsSpan(a.VOffset), a.Batch, a.QueryLen, a.KeyLen, a.Heads, a.HeadDim);
            }
            else
            {
                a.Forward(output, probs, kvHeads);
                a.Backward(g, probs, gradients, kvHeads: kvHeads);
            }
            return (output, probs, gradients);
        }
        var before = Run(null);
        foreach (int kvHeads in new[] { 0, 6 })
        {
            var now = Run(kvHeads);
            ThreadSettings.AssertBitIdentical(before.Output, now.Output, $"kvHeads={kvHeads} output");
            ThreadSettings.AssertBitIdentical(before.Probs, now.Probs, $"kvHeads={kvHeads} probabilities");
            for (int n = 0; n < buffers.Count; n++)
                ThreadSettings.AssertBitIdentical(before.Gradients[n], now.Gradients[n], $"kvHeads={kvHeads} gradient buffer {n}");
        }

        // And the cached form, against the default call.
        int c = a.C;
        float[] keys = new float[a.KeyLen * c], values = new float[a.KeyLen * c];
        for (int j = 0; j < a.KeyLen; j++)
            for (int col = 0; col < c; col++) { keys[j * c + col] = a.K(0, j, col); values[j * c + col] = a.V(0, j, col); }
        float[] plain = new float[2 * c], withKv = new float[2 * c];
        Attention.ForwardCached(a.QBuffer.AsSpan(a.QOffset + 3 * a.QStride), a.QStride, keys, values, plain, new float[a.KeyLen], 3, 2, a.Heads, headDim);
        Attention.ForwardCached(a.QBuffer.AsSpan(a.QOffset + 3 * a.QStride), a.QStride, keys, values, withKv, new float[a.KeyLen], 3, 2, a.Heads, headDim, kvHeads: a.Heads);
        ThreadSettings.AssertBitIdentical(plain, withKv, "cached output");
    }

    [Fact]
    public void Kv_heads_that_do_not_divide_heads_or_are_negative_throw()
    {
        int batch = 1, queryLen = 3, keyLen = 4, heads = 6, headDim = 2, c = heads * headDim;
        float[] q = new float[batch * queryLen * c], kv = new float[batch * keyLen * c];
        float[] output = new float[batch * queryLen * c], probs = new float[batch * heads * queryLen * keyLen];

        void Forward(int kvHeads, int kvStride)
            => Attention.Forward(q, c, kv, kv, kvStride, default, output, probs, batch, queryLen, keyLen, heads, headDim, causal: true, window: 0, kvHeads);
        void Backward(int kvHeads)
            => Attention.Backward(output, q, c, kv, kv, c, probs, new float[q.Length], new float[kv.Length], new float[kv.Length], batch, queryLen, keyLen, heads, headDim, kvHeads: kvHeads);
        void Cached(int kvHeads)
            => Attention.ForwardCached(new float[c], c, new float[keyLen * c], new float[keyLen * c], new float[c], new float[keyLen], 3, 1, heads, headDim, kvHeads: kvHeads);

        foreach (int kvHeads in new[] { 4, 5, 7, 12 })
        {
            Assert.Equal("kvHeads", Assert.Throws<ArgumentException>(() => Forward(kvHeads, c)).ParamName);
            Assert.Equal("kvHeads", Assert.Throws<ArgumentException>(() => Backward(kvHeads)).ParamName);
            Assert.Equal("kvHeads", Assert.Throws<ArgumentException>(() => Cached(kvHeads)).ParamName);
        }
        Assert.Equal("kvHeads", Assert.Throws<ArgumentOutOfRangeException>(() => Forward(-2, c)).ParamName);
        Assert.Equal("kvHeads", Assert.Throws<ArgumentOutOfRangeException>(() => Backward(-1)).ParamName);
        Assert.Equal("kvHeads", Assert.Throws<ArgumentOutOfRangeException>(() => Cached(-3)).ParamName);

        // With 2 KV heads the K and V rows need only 2·headDim columns: a stride of 4 passes, 3 does not.
        Forward(2, 2 * headDim);
        Assert.Equal("kvStride", Assert.Throws<ArgumentOutOfRangeException>(() => Forward(2, 2 * headDim - 1)).ParamName);
        // Keys sized for the KV heads only.
        Attention.Forward(q, c, new float[keyLen * 2 * headDim], new float[keyLen * 2 * headDim], 2 * headDim, default, output, probs,
            batch, queryLen, keyLen, heads, headDim, causal: false, kvHeads: 2);
        Assert.Equal("v", Assert.Throws<ArgumentException>(() => Attention.Forward(q, c, new float[keyLen * 2 * headDim], new float[keyLen * 2 * headDim - 1], 2 * headDim,
            default, output, probs, batch, queryLen, keyLen, heads, headDim, causal: false, kvHeads: 2)).ParamName);
        // A cache of [keys, Ckv] is enough; one float less is not.
        Attention.ForwardCached(new float[c], c, new float[4 * 3 * headDim], new float[4 * 3 * headDim], new float[c], new float[4], 3, 1, heads, headDim, kvHeads: 3);
        Assert.Equal("valueCache", Assert.Throws<ArgumentException>(() =>
            Attention.ForwardCached(new float[c], c, new float[4 * 3 * headDim], new float[4 * 3 * headDim - 1], new float[c], new float[4], 3, 1, heads, headDim, kvHeads: 3)).ParamName);
    }
}

/// <summary>Grouped-query attention gives bit-identical results on 1, 2 and 3 threads, with every problem split.</summary>
[Collection(ThreadSettingsCollection.Name)]
public sealed class GroupedQueryAttentionThreadingTests
{
    public static TheoryData<string, int, int, int> Shapes()
    {
        var data = new TheoryData<string, int, int, int>();
        foreach (string name in GroupedQueryAttentionTests.ConfigurationNames)
            foreach ((int headDim, int kvHeads) in new[] { (5, 1), (7, 2), (12, 3), (5, 6), (32, 2) })
                foreach (int batch in new[] { 2, 3 })
                    data.Add(name, headDim, kvHeads, batch);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_and_backward_are_bit_identical_on_any_thread_count(string configuration, int headDim, int kvHeads, int batch)
    {
        GroupedQueryAttentionTests.Case a = GroupedQueryAttentionTests.Configuration(configuration, headDim, kvHeads, batch, queryLen: 19, keyLen: 21);
        var rng = new Rng(89);
        float[] g = TestTensors.Normal(rng, a.OutputLength);
        List<float[]> buffers = a.Buffers();
        List<float[]> start = buffers.ConvertAll(x => TestTensors.Normal(rng, x.Length));
        foreach ((bool overwriteDq, bool overwriteDkv) in new[] { (false, false), (true, true), (false, true) })
            foreach (bool smallScratch in new[] { false, true })
            {
                (float[] Out, float[] Probs, List<float[]> Gradients) Run(int threads)
                {
                    var output = new float[a.OutputLength];
                    var probs = new float[a.ProbabilitiesLength];
                    List<float[]> gradients = start.ConvertAll(x => (float[])x.Clone());
                    using (new ThreadSettings(threads))
                    {
                        a.Forward(output, probs);
                        // A scratch of 3 rows: backward in chunks of 3 query rows.
                        a.Backward(g, probs, gradients, overwriteDq, overwriteDkv, smallScratch ? new float[3 * a.KeyLen] : null);
                    }
                    return (output, probs, gradients);
                }
                var expected = Run(1);
                foreach (int threads in new[] { 2, 3 })
                {
                    var actual = Run(threads);
                    string what = $"{a} overwrite=({overwriteDq}, {overwriteDkv}) small scratch={smallScratch} threads={threads}";
                    ThreadSettings.AssertBitIdentical(expected.Out, actual.Out, what + " output");
                    ThreadSettings.AssertBitIdentical(expected.Probs, actual.Probs, what + " probabilities");
                    for (int n = 0; n < buffers.Count; n++)
                        ThreadSettings.AssertBitIdentical(expected.Gradients[n], actual.Gradients[n], $"{what} gradient buffer {n}");
                }
            }
    }
}
