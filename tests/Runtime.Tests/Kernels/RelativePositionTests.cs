using System;
using System.Linq;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Tests.Kernels;

/// <summary>
/// T5's pieces of the attention: the relative-position buckets (values worked out by hand from the formula), the bias rows
/// and their gradient (adjoint of each other), attention with a bias and a chosen scale against a scalar reference in
/// double (forward, every gradient including the bias's by central differences of that reference, the cached form), and
/// GEGLU against the tanh GELU it is made of.
/// </summary>
public class RelativePositionTests
{
    // ----- buckets -----

    [Theory]
    // T5's defaults, 32 buckets up to 128, an encoder's (bidirectional): 16 a side, 8 exact, then log-spaced up to 128.
    [InlineData(0, true, 0)]
    [InlineData(-1, true, 1)]
    [InlineData(1, true, 17)]
    [InlineData(-7, true, 7)]
    [InlineData(-8, true, 8)]       // 8 + log(1)/log(16)·8
    [InlineData(-16, true, 10)]     // 8 + log(2)/log(16)·8 = 10
    [InlineData(16, true, 26)]
    [InlineData(-127, true, 15)]    // 8 + log(15.875)/log(16)·8 = 15.97 → 15
    [InlineData(-128, true, 15)]    // 16, clamped to the side's last bucket
    [InlineData(-100000, true, 15)]
    [InlineData(128, true, 31)]
    // a decoder's (keys after the query share bucket 0): 16 exact, then log-spaced up to 128.
    [InlineData(5, false, 0)]
    [InlineData(-5, false, 5)]
    [InlineData(-16, false, 16)]
    [InlineData(-32, false, 21)]    // 16 + log(2)/log(8)·16 = 21.3
    [InlineData(-127, false, 31)]
    [InlineData(-128, false, 31)]   // 32, clamped
    [InlineData(int.MinValue, false, 31)]
    public void Buckets_follow_the_T5_formula(int relative, bool bidirectional, int bucket)
        => Assert.Equal(bucket, RelativePosition.Bucket(relative, bidirectional, 32, 128));

    [Fact]
    public void Buckets_never_decrease_with_the_distance_and_stay_in_the_table()
    {
        var buckets = new int[2 * 300 - 1];
        foreach (bool bidirectional in new[] { true, false })
            foreach ((int count, int max) in new[] { (32, 128), (8, 20), (10, 24), (4, 3) })
            {
                RelativePosition.Buckets(buckets, 300, bidirectional, count, max);
                int half = bidirectional ? count / 2 : count;
                for (int d = 1; d < 300; d++)
                {
                    int back = buckets[299 - d], backCloser = buckets[299 - d + 1];
                    Assert.True(back >= backCloser, $"distance −{d}: bucket {back} < {backCloser}");
                    Assert.InRange(back, 0, half - 1);
                    if (bidirectional)
                    {
                        Assert.InRange(buckets[299 + d], half, count - 1);
                        Assert.Equal(back + half, buckets[299 + d]); // the same distance ahead lands in the other half
                    }
                    else Assert.Equal(0, buckets[299 + d]);
                }
            }
    }

    [Fact]
    public void Bias_rows_gather_the_table_and_their_gradient_is_the_adjoint()
    {
        const int heads = 3, span = 9, buckets = 8, maxDistance = 20, copies = 2, length = 2 * span - 1;
        var rng = new Rng(41);
        float[] table = TestTensors.Normal(rng, buckets * heads);
        float[] rows = new float[copies * heads * length];
        RelativePosition.BiasForward(table, rows, heads, span, bidirectional: true, buckets, maxDistance, copies);
        for (int s = 0; s < copies; s++)
            for (int h = 0; h < heads; h++)
                for (int d = 0; d < length; d++)
                    Assert.Equal(table[RelativePosition.Bucket(d - (span - 1), true, buckets, maxDistance) * heads + h], rows[(s * heads + h) * length + d]);

        // ⟨BiasForward(T), G⟩ = ⟨T, BiasBackward(G)⟩, and BiasBackward adds into what is there.
        float[] g = TestTensors.Normal(rng, rows.Length);
        float[] dTable = Enumerable.Repeat(0.25f, table.Length).ToArray();
        RelativePosition.BiasBackward(g, dTable, heads, span, bidirectional: true, buckets, maxDistance, copies);
        double left = 0, right = 0;
        for (int i = 0; i < rows.Length; i++) left += (double)rows[i] * g[i];
        for (int i = 0; i < table.Length; i++) right += (double)table[i] * (dTable[i] - 0.25);
        Assert.Equal(left, right, 4);
    }

    [Fact]
    public void Bias_rows_refuse_a_table_of_the_wrong_size()
    {
        var e = Assert.Throws<ArgumentException>(() => RelativePosition.BiasForward(new float[23], new float[3 * 17], 3, 9, true, 8, 20));
        Assert.Contains("table", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => RelativePosition.BiasForward(new float[6], new float[3 * 17], 3, 9, true, 2, 20));
    }

    // ----- attention with a bias and a scale -----

    /// <summary>Softmax(scale·q·k + bias[j − i]) over the visible keys, times V, in double; the loss Σ out·G.</summary>
    private sealed record Shape(int Batch, int Len, int Heads, int HeadDim, int Span, bool Causal, float Scale, bool Padded)
    {
        public int C => Heads * HeadDim;
        public int RowLength => 2 * Span - 1;

        public bool Visible(int b, int i, int j) => (!Causal || j <= i) && !(Padded && b == 0 && j >= Len - 2);

        public double Loss(double[] q, double[] k, double[] v, double[] bias, float[] g)
        {
            double total = 0;
            var logits = new double[Len];
            for (int b = 0; b < Batch; b++)
                for (int h = 0; h < Heads; h++)
                    for (int i = 0; i < Len; i++)
                    {
                        double max = double.NegativeInfinity;
                        for (int j = 0; j < Len; j++)
                        {
                            if (!Visible(b, i, j)) continue;
                            double dot = 0;
                            for (int d = 0; d < HeadDim; d++) dot += q[(b * Len + i) * C + h * HeadDim + d] * k[(b * Len + j) * C + h * HeadDim + d];
                            logits[j] = Scale * dot + bias[(b * Heads + h) * RowLength + Span - 1 + j - i];
                            max = Math.Max(max, logits[j]);
                        }
                        double sum = 0;
                        for (int j = 0; j < Len; j++) if (Visible(b, i, j)) sum += Math.Exp(logits[j] - max);
                        for (int d = 0; d < HeadDim; d++)
                        {
                            double o = 0;
                            for (int j = 0; j < Len; j++)
                                if (Visible(b, i, j)) o += Math.Exp(logits[j] - max) / sum * v[(b * Len + j) * C + h * HeadDim + d];
                            total += o * g[(b * Len + i) * C + h * HeadDim + d];
                        }
                    }
            return total;
        }
    }

    public static TheoryData<int, int, bool, float, bool> Shapes => new()
    {
        { 12, 9, false, 1f, true },    // T5's unscaled scores, an encoder with padding, a head of 12 (general path)
        { 12, 9, true, 1f, false },    // a decoder's causal self-attention
        { 32, 21, false, 1f, true },   // a head of 32: the tiled path on AVX-512
        { 16, 19, true, 0.37f, false }, // a bias with a scale other than 1
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Biased_attention_matches_a_reference_forward_and_backward(int headDim, int len, bool causal, float scale, bool padded)
    {
        var shape = new Shape(2, len, 3, headDim, len + 2, causal, scale, padded);
        int c = shape.C, rowsLength = shape.Batch * shape.Heads * shape.RowLength;
        var rng = new Rng(7);
        float[] q = TestTensors.Normal(rng, shape.Batch * len * c), k = TestTensors.Normal(rng, q.Length), v = TestTensors.Normal(rng, q.Length);
        float[] bias = TestTensors.Normal(rng, rowsLength, 2f), g = TestTensors.Normal(rng, q.Length);
        byte[] padding = new byte[shape.Batch * len];
        if (padded) padding[len - 1] = padding[len - 2] = 1;

        float[] output = new float[q.Length], probabilities = new float[shape.Batch * shape.Heads * len * len];
        Attention.Forward(q, c, k, v, c, padded ? padding : default, output, probabilities, shape.Batch, len, len, shape.Heads, headDim, causal,
            scale: scale, positionBias: bias, biasSpan: shape.Span);
        double[] Q = ReferenceGradient.ToDouble(q), K = ReferenceGradient.ToDouble(k), V = ReferenceGradient.ToDouble(v), B = ReferenceGradient.ToDouble(bias);
        double forwardLoss = 0;
        for (int i = 0; i < output.Length; i++) forwardLoss += (double)output[i] * g[i];
        Assert.Equal(shape.Loss(Q, K, V, B, g), forwardLoss, 3);

        float[] dq = new float[q.Length], dk = new float[q.Length], dv = new float[q.Length], dBias = Enumerable.Repeat(0.5f, rowsLength).ToArray();
        Attention.Backward(g, q, c, k, v, c, probabilities, dq, dk, dv, shape.Batch, len, len, shape.Heads, headDim,
            scale: scale, dPositionBias: dBias, biasSpan: shape.Span);
        for (int i = 0; i < dBias.Length; i++) dBias[i] -= 0.5f; // the bias's gradient is added to what is there
        ReferenceGradient.AssertClose("dBias", dBias, ReferenceGradient.Numeric(B, () => shape.Loss(Q, K, V, B, g)), 1e-4);
        // Q, K and V at 120 entries each (every row of the reference costs a whole pass): enough to see any head, row or
        // channel go wrong, at a test time that stays in seconds.
        AssertSampled("dQ", dq, Q, () => shape.Loss(Q, K, V, B, g));
        AssertSampled("dK", dk, K, () => shape.Loss(Q, K, V, B, g));
        AssertSampled("dV", dv, V, () => shape.Loss(Q, K, V, B, g));
    }

    // Central differences of the double reference at a seeded sample of entries, against the kernel's gradient there,
    // judged by the largest of those differences (as ReferenceGradient.AssertClose judges a whole tensor).
    private static void AssertSampled(string name, float[] analytic, double[] parameter, Func<double> loss)
    {
        var rng = new Random(parameter.Length);
        int[] sample = Enumerable.Range(0, 120).Select(_ => rng.Next(parameter.Length)).Distinct().ToArray();
        var numeric = new double[sample.Length];
        for (int n = 0; n < sample.Length; n++)
        {
            int i = sample[n];
            double saved = parameter[i], h = 1e-5 * Math.Max(1, Math.Abs(saved));
            parameter[i] = saved + h;
            double plus = loss();
            parameter[i] = saved - h;
            double minus = loss();
            parameter[i] = saved;
            numeric[n] = (plus - minus) / (2 * h);
        }
        ReferenceGradient.AssertClose(name, sample.Select(i => analytic[i]).ToArray(), numeric, 1e-4);
    }

    [Fact]
    public void The_cached_form_adds_the_same_bias_as_the_whole_sequence()
    {
        const int heads = 3, headDim = 12, len = 11, span = 13, c = heads * headDim;
        var rng = new Rng(5);
        float[] qkv = TestTensors.Normal(rng, len * 3 * c), bias = TestTensors.Normal(rng, heads * (2 * span - 1), 2f);
        float[] whole = new float[len * c], probabilities = new float[heads * len * len];
        Attention.Forward(qkv, 3 * c, qkv.AsSpan(c), qkv.AsSpan(2 * c), 3 * c, default, whole, probabilities, 1, len, len, heads, headDim, causal: true,
            scale: 1f, positionBias: bias, biasSpan: span);

        float[] keys = new float[len * c], values = new float[len * c], step = new float[c], scores = new float[len];
        for (int p = 0; p < len; p++)
        {
            qkv.AsSpan(p * 3 * c + c, c).CopyTo(keys.AsSpan(p * c));
            qkv.AsSpan(p * 3 * c + 2 * c, c).CopyTo(values.AsSpan(p * c));
            Attention.ForwardCached(qkv.AsSpan(p * 3 * c, c), c, keys, values, step, scores, p, 1, heads, headDim, scale: 1f, positionBias: bias, biasSpan: span);
            for (int i = 0; i < c; i++) Assert.Equal(whole[p * c + i], step[i], 5);
        }
    }

    [Fact]
    public void A_bias_too_short_for_the_positions_is_refused()
    {
        float[] q = new float[9 * 12];
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Attention.Forward(q, 12, q, q, 12, default, new float[q.Length], new float[81], 1, 9, 9, 1, 12, causal: false,
            scale: 1f, positionBias: new float[2 * 8 - 1], biasSpan: 8));
        Assert.Contains("biasSpan = 8", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Attention.Forward(q, 12, q, q, 12, default, new float[q.Length], new float[81], 1, 9, 9, 1, 12, causal: false, scale: -1f));
    }

    // ----- GEGLU -----

    [Fact]
    public void GeGlu_is_the_tanh_GELU_of_the_gate_times_the_up_half()
    {
        const int n = 5, hidden = 37;
        var rng = new Rng(11);
        float[] gateUp = TestTensors.Normal(rng, n * 2 * hidden, 3f), y = new float[n * hidden], dy = TestTensors.Normal(rng, n * hidden);
        Activations.GeGluTanhForward(gateUp, y, n, hidden);
        float[] gate = new float[hidden], gelu = new float[hidden], dGate = new float[hidden];
        float[] dGateUp = new float[gateUp.Length];
        Activations.GeGluTanhBackward(dy, gateUp, dGateUp, n, hidden, overwriteDGateUp: true);
        for (int r = 0; r < n; r++)
        {
            gateUp.AsSpan(r * 2 * hidden, hidden).CopyTo(gate);
            Activations.GeluTanhForward(gate, gelu);
            float[] dyUp = new float[hidden];
            for (int j = 0; j < hidden; j++) dyUp[j] = dy[r * hidden + j] * gateUp[r * 2 * hidden + hidden + j];
            Array.Clear(dGate);
            Activations.GeluTanhBackward(dyUp, gate, dGate, overwriteDx: true);
            for (int j = 0; j < hidden; j++)
            {
                Assert.Equal(gelu[j] * gateUp[r * 2 * hidden + hidden + j], y[r * hidden + j]);
                Assert.Equal(dGate[j], dGateUp[r * 2 * hidden + j]);
                Assert.Equal(dy[r * hidden + j] * gelu[j], dGateUp[r * 2 * hidden + hidden + j]);
            }
        }
        // Backward adds unless told to store.
        float[] twice = (float[])dGateUp.Clone();
        Activations.GeGluTanhBackward(dy, gateUp, twice, n, hidden);
        GradientCheck.AssertDoubled("dGateUp", dGateUp, twice);
    }

    [Fact]
    public void Scaling_multiplies_and_its_backward_adds_or_stores()
    {
        float[] x = [1f, -2f, 3.5f], y = new float[3], dx = [1f, 1f, 1f];
        Scaling.Forward(x, 0.25f, y);
        Assert.Equal(new[] { 0.25f, -0.5f, 0.875f }, y);
        Scaling.Backward(x, 0.5f, dx);
        Assert.Equal(new[] { 1.5f, 0f, 2.75f }, dx);
        Scaling.Backward(x, 0.5f, dx, overwriteDx: true);
        Assert.Equal(new[] { 0.5f, -1f, 1.75f }, dx);
    }
}
