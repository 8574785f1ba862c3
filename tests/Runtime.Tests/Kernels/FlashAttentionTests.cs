using System;
using System.Linq;
using TransformerGen.Kernels;
using TransformerGen.Tests.Threading;
using Xunit;

namespace TransformerGen.Tests.Kernels;

/// <summary>
/// The tiled attention (<see cref="Attention.FlashForward(ReadOnlySpan{float}, int, ReadOnlySpan{float}, ReadOnlySpan{float}, int, ReadOnlySpan{byte}, Span{float}, Span{float}, int, int, int, int, int, bool, int, int, float)"/>
/// and its backward) against the stored-probabilities kernel on the same inputs (outputs, recomputed probabilities and
/// all three gradients within 1e-5 relative), against finite differences, with the masks, grouped heads, lengths that
/// cross the 32-row and 128-key tiles and head sizes that are not multiples of the vector width.
/// </summary>
[Collection(ThreadSettingsCollection.Name)]
public class FlashAttentionTests
{
    /// <summary>
    /// One call's inputs: queries, keys and values in one buffer per row (Q heads | K kv-heads | V kv-heads | one foreign
    /// column) for self-attention, or queries in a buffer of their own for cross-attention (queryLen ≠ keyLen).
    /// </summary>
    private sealed class Case
    {
        public int Batch, QueryLen, KeyLen, Heads, KvHeads, HeadDim, Window;
        public bool Causal;
        public float[] QBuffer = [], KvBuffer = [];
        public int QStride, KvStride, KOffset, VOffset;
        public byte[] Padding = [];

        public int C => Heads * HeadDim;
        public bool SelfAttention => ReferenceEquals(QBuffer, KvBuffer);
        public override string ToString() => $"B={Batch} Tq={QueryLen} Tk={KeyLen} H={Heads} KV={KvHeads} D={HeadDim} causal={Causal} window={Window} padded={Padding.Length > 0}";

        public static Case Make(int seed, int batch, int queryLen, int keyLen, int heads, int kvHeads, int headDim, bool causal, int window = 0, bool cross = false, byte[]? padding = null)
        {
            var rng = new Rng((ulong)seed);
            int c = heads * headDim, kvC = kvHeads * headDim;
            var t = new Case
            {
                Batch = batch, QueryLen = queryLen, KeyLen = keyLen, Heads = heads, KvHeads = kvHeads, HeadDim = headDim, Window = window, Causal = causal,
                Padding = padding ?? [],
            };
            if (cross)
            {
                t.QStride = c + 1;
                t.QBuffer = TestTensors.Normal(rng, batch * queryLen * t.QStride);
                t.KvStride = 2 * kvC + 3;
                t.KvBuffer = TestTensors.Normal(rng, batch * keyLen * t.KvStride);
                t.KOffset = 0;
                t.VOffset = kvC + 2;
            }
            else
            {
                t.QStride = t.KvStride = c + 2 * kvC + 1;
                t.QBuffer = t.KvBuffer = TestTensors.Normal(rng, batch * queryLen * t.QStride);
                t.KOffset = c;
                t.VOffset = c + kvC;
            }
            return t;
        }

        public void Stored(float[] output, float[] probabilities)
            => Attention.Forward(QBuffer, QStride, KvBuffer.AsSpan(KOffset), KvBuffer.AsSpan(VOffset), KvStride, Padding, output, probabilities,
                Batch, QueryLen, KeyLen, Heads, HeadDim, Causal, Window, KvHeads);

        public void StoredBackward(float[] dOutput, float[] probabilities, float[] dQ, float[] dKv)
            => Attention.Backward(dOutput, QBuffer, QStride, KvBuffer.AsSpan(KOffset), KvBuffer.AsSpan(VOffset), KvStride, probabilities,
                dQ, dKv.AsSpan(KOffset), dKv.AsSpan(VOffset), Batch, QueryLen, KeyLen, Heads, HeadDim, kvHeads: KvHeads);

        public float[] NewStatistics() => new float[Attention.FlashStatisticsLength(Batch, Heads, QueryLen)];

        public void Flash(float[] output, float[] statistics, SimdPath? path = null)
            => Attention.FlashForward(QBuffer, QStride, KvBuffer.AsSpan(KOffset), KvBuffer.AsSpan(VOffset), KvStride, Padding, output, statistics,
                Batch, QueryLen, KeyLen, Heads, HeadDim, Causal, Window, KvHeads, path ?? Simd.Best);

        /// <summary>Flash backward; for self-attention <paramref name="dQ"/> and <paramref name="dKv"/> are the same buffer.</summary>
        public void FlashBackward(float[] dOutput, float[] output, float[] statistics, float[] dQ, float[] dKv, bool overwriteDq = false, bool overwriteDkv = false, SimdPath? path = null)
            => Attention.FlashBackward(dOutput, QBuffer, QStride, KvBuffer.AsSpan(KOffset), KvBuffer.AsSpan(VOffset), KvStride, Padding, output, statistics,
                dQ, dKv.AsSpan(KOffset), dKv.AsSpan(VOffset), Batch, QueryLen, KeyLen, Heads, HeadDim, Causal, Window, overwriteDq, overwriteDkv, KvHeads, path ?? Simd.Best);

        public (float[] DQ, float[] DKv) NewGradients()
        {
            var dQ = new float[QBuffer.Length];
            return (dQ, SelfAttention ? dQ : new float[KvBuffer.Length]);
        }
    }

    private static byte[] PaddingOf(int batch, int keyLen, params (int B, int J)[] padded)
    {
        var padding = new byte[batch * keyLen];
        foreach (var (b, j) in padded) padding[b * keyLen + j] = 1;
        return padding;
    }

    private static Case Named(string name) => name switch
    {
        "causal 37" => Case.Make(1, 2, 37, 37, 3, 3, 6, causal: true),
        "full 37" => Case.Make(2, 2, 37, 37, 3, 3, 6, causal: false),
        // 300 positions: ten query tiles, three key tiles (the last one partial), head size 20.
        "causal 300" => Case.Make(3, 1, 300, 300, 2, 2, 20, causal: true),
        "full 300" => Case.Make(4, 1, 300, 300, 2, 2, 20, causal: false),
        "causal 161 head 32" => Case.Make(5, 2, 161, 161, 2, 2, 32, causal: true),
        "GQA causal 150" => Case.Make(6, 2, 150, 150, 6, 2, 12, causal: true),
        "GQA causal 40" => Case.Make(15, 2, 40, 40, 6, 2, 6, causal: true),
        // Head size 72: two whole 32-float column blocks and a part of a third in the AVX-512 products.
        "causal 100 head 72" => Case.Make(16, 1, 100, 100, 2, 2, 72, causal: true),
        "MQA full 70" => Case.Make(7, 1, 70, 70, 4, 1, 10, causal: false),
        // Keys scaled up along the sequence: each key tile raises every row's running max, by scores of up to about 10
        // in the exponent, so the online softmax rescales its sums and outputs at every tile.
        "rising scores causal 400 head 40" => RisingKeys(Case.Make(17, 1, 400, 400, 2, 2, 40, causal: true)),
        // Full tiles of head 32 between partial ones: 70 queries (two tiles and 6 rows), 260 keys (two tiles and 4 keys).
        "cross 70 over 260 head 32" => Case.Make(18, 2, 70, 260, 2, 2, 32, causal: false, cross: true),
        "window 5 causal 90" => Case.Make(8, 2, 90, 90, 2, 2, 6, causal: true, window: 5),
        "window 40 full 200" => Case.Make(9, 1, 200, 200, 2, 2, 6, causal: false, window: 40),
        "padding full 140" => Case.Make(10, 2, 140, 140, 2, 2, 6, causal: false, padding: PaddingOf(2, 140, (1, 0), (1, 3), (1, 70), (1, 139), (0, 138), (0, 139))),
        "padding causal GQA 140" => Case.Make(11, 2, 140, 140, 4, 2, 6, causal: true, padding: PaddingOf(2, 140, (1, 0), (1, 1), (1, 64), (0, 130))),
        "cross 45 over 150, padding" => Case.Make(12, 2, 45, 150, 3, 3, 7, causal: false, cross: true, padding: PaddingOf(2, 150, (0, 149), (1, 5), (1, 100))),
        // Sequence 1 is all padding: its queries see nothing, output and gradients 0.
        "cross, one sequence all padding" => Case.Make(13, 2, 9, 20, 2, 2, 5, causal: false, cross: true, padding: Enumerable.Range(0, 40).Select(i => (byte)(i >= 20 ? 1 : 0)).ToArray()),
        // Key 0 of sequence 1 is padding, so its causal query 0 sees nothing; with window 1, query 3 sees only padded keys 2 and 3.
        "causal window 1, empty queries" => Case.Make(14, 2, 40, 40, 2, 2, 4, causal: true, window: 1, padding: PaddingOf(2, 40, (1, 0), (1, 2), (1, 3))),
        _ => throw new ArgumentException(name),
    };

    /// <summary>Multiplies key j's channels by 0.5 + j/200 (self-attention cases: the K columns of the shared rows).</summary>
    private static Case RisingKeys(Case t)
    {
        int kvC = t.KvHeads * t.HeadDim;
        for (int b = 0; b < t.Batch; b++)
            for (int j = 0; j < t.KeyLen; j++)
                for (int col = 0; col < kvC; col++)
                    t.KvBuffer[(b * t.KeyLen + j) * t.KvStride + t.KOffset + col] *= 0.5f + j / 200f;
        return t;
    }

    public static TheoryData<string> Cases => new()
    {
        "causal 37", "full 37", "causal 300", "full 300", "causal 161 head 32", "causal 100 head 72", "GQA causal 150", "MQA full 70",
        "rising scores causal 400 head 40", "cross 70 over 260 head 32", "window 5 causal 90",
        "window 40 full 200", "padding full 140", "padding causal GQA 140", "cross 45 over 150, padding", "cross, one sequence all padding",
        "causal window 1, empty queries",
    };

    /// <summary>
    /// 1e-5 relative: ‖a − b‖ ≤ 1e-5·‖b‖ over the tensor, and |a − b| ≤ 1e-5·max(|b|, rms(b)) element by element. An
    /// element far below the tensor's rms is a sum whose terms cancel (an output averaging values of both signs), and
    /// its rounding is that of its terms, so it is compared at the rms.
    /// </summary>
    private static void AssertClose(string what, float[] expected, float[] actual, double relative = 1e-5)
    {
        Assert.Equal(expected.Length, actual.Length);
        double squares = 0, diffSquares = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            squares += (double)expected[i] * expected[i];
            diffSquares += ((double)actual[i] - expected[i]) * ((double)actual[i] - expected[i]);
        }
        double rms = Math.Sqrt(squares / Math.Max(1, expected.Length));
        Assert.True(Math.Sqrt(diffSquares) <= relative * Math.Sqrt(squares), $"{what}: ‖flash − stored‖ / ‖stored‖ = {Math.Sqrt(diffSquares / squares):E2}");
        for (int i = 0; i < expected.Length; i++)
        {
            double tolerance = relative * Math.Max(Math.Abs(expected[i]), rms);
            if (!(Math.Abs(actual[i] - expected[i]) <= tolerance))
                Assert.Fail($"{what}[{i}] = {actual[i]:R}, stored-probabilities kernel {expected[i]:R} (tolerance {tolerance:E2})");
        }
    }

    /// <summary>Every instruction-set path this machine runs: the AVX-512 transposed tiles, and the general product kernels' paths.</summary>
    private static SimdPath[] Paths => Enum.GetValues<SimdPath>().Where(Simd.IsSupported).ToArray();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Forward_backward_and_probabilities_equal_the_stored_probabilities_kernel(string name)
    {
        foreach (SimdPath path in Paths) EqualsStored(name, path);
    }

    private static void EqualsStored(string name, SimdPath path)
    {
        Case t = Named(name);
        int outputLength = t.Batch * t.QueryLen * t.C;
        var rng = new Rng(99);
        float[] dOutput = TestTensors.Normal(rng, outputLength);

        float[] storedOut = new float[outputLength], probs = new float[t.Batch * t.Heads * t.QueryLen * t.KeyLen];
        t.Stored(storedOut, probs);
        (float[] storedDq, float[] storedDkv) = t.NewGradients();
        t.StoredBackward(dOutput, probs, storedDq, storedDkv);

        float[] flashOut = new float[outputLength], stats = t.NewStatistics();
        t.Flash(flashOut, stats, path);
        (float[] flashDq, float[] flashDkv) = t.NewGradients();
        t.FlashBackward(dOutput, flashOut, stats, flashDq, flashDkv, path: path);

        AssertClose($"{path}: output", storedOut, flashOut);
        AssertClose($"{path}: dQ", storedDq, flashDq);
        if (!t.SelfAttention) AssertClose($"{path}: dK|dV", storedDkv, flashDkv);

        var recomputed = new float[probs.Length];
        Attention.FlashProbabilities(t.QBuffer, t.QStride, t.KvBuffer.AsSpan(t.KOffset), t.KvStride, t.Padding, stats, recomputed,
            t.Batch, t.QueryLen, t.KeyLen, t.Heads, t.HeadDim, t.Causal, t.Window, t.KvHeads);
        AssertClose($"{path}: probabilities", probs, recomputed);
        for (int i = 0; i < probs.Length; i++)
            Assert.True((probs[i] == 0f) == (recomputed[i] == 0f), $"{path}: probabilities[{i}]: masked in one kernel and not in the other ({probs[i]} vs {recomputed[i]})");
    }

    [Fact]
    public void A_NaN_query_makes_its_row_NaN_on_every_path()
    {
        // A diverged model must show NaN, not a silently finite output: the exponentials keep NaN (masked scores, −∞,
        // become exactly 0, a NaN score does not).
        foreach (SimdPath path in Paths)
        {
            Case t = Named("causal 161 head 32");
            int row = 100, outputLength = t.Batch * t.QueryLen * t.C;
            t.QBuffer[row * t.QStride + 3] = float.NaN; // sequence 0, query 100, head 0
            float[] output = new float[outputLength], stats = t.NewStatistics();
            t.Flash(output, stats, path);
            for (int col = 0; col < t.HeadDim; col++) Assert.True(float.IsNaN(output[row * t.C + col]), $"{path}: output[{row}, {col}] = {output[row * t.C + col]}");
            Assert.All(output.AsSpan(0, row * t.C).ToArray(), x => Assert.True(float.IsFinite(x), $"{path}: an earlier row is not finite"));
        }
    }

    [Fact]
    public void A_query_that_sees_no_key_gets_output_zero_and_adds_no_gradient()
    {
        Case t = Named("cross, one sequence all padding");
        int outputLength = t.Batch * t.QueryLen * t.C, half = outputLength / 2;
        float[] output = Enumerable.Repeat(float.NaN, outputLength).ToArray(), stats = t.NewStatistics();
        t.Flash(output, stats);
        Assert.All(output.Skip(half), x => Assert.Equal(0f, x));
        Assert.All(output.Take(half), x => Assert.True(float.IsFinite(x)));
        Assert.Contains(output.Take(half), x => x != 0f);
        (float[] dQ, float[] dKv) = t.NewGradients();
        t.FlashBackward(TestTensors.Normal(new Rng(3), outputLength), output, stats, dQ, dKv);
        // Sequence 1's rows of dQ and of dK|dV stay 0.
        Assert.All(dQ.Skip(dQ.Length / 2), x => Assert.Equal(0f, x));
        Assert.All(dKv.Skip(dKv.Length / 2), x => Assert.Equal(0f, x));
        Assert.All(dQ, x => Assert.True(float.IsFinite(x)));
    }

    [Theory]
    [InlineData("causal 37")]
    [InlineData("full 37")]
    [InlineData("GQA causal 40")]
    [InlineData("window 5 causal 90")]
    [InlineData("padding causal GQA 140")]
    [InlineData("cross 45 over 150, padding")]
    public void Backward_matches_finite_differences(string name)
    {
        Case t = Named(name);
        int outputLength = t.Batch * t.QueryLen * t.C;
        float[] g = TestTensors.Normal(new Rng(5), outputLength);
        float[] output = new float[outputLength], stats = t.NewStatistics();
        double Loss() { t.Flash(output, stats); return GradientCheck.Dot(g, output); }
        Loss();
        float[] savedOut = (float[])output.Clone(), savedStats = (float[])stats.Clone();
        (float[] dQ, float[] dKv) = t.NewGradients();
        t.FlashBackward(g, savedOut, savedStats, dQ, dKv);

        // Finite differences of every input element would take minutes at these lengths: check a sample of rows of
        // each buffer (all their columns), spread over the sequences and tiles.
        foreach ((float[] buffer, float[] gradient, string what) in t.SelfAttention
                     ? new[] { (t.QBuffer, dQ, "dQ|dK|dV") }
                     : new[] { (t.QBuffer, dQ, "dQ"), (t.KvBuffer, dKv, "dK|dV") })
        {
            int stride = buffer == t.QBuffer ? t.QStride : t.KvStride, rowCount = buffer.Length / stride;
            int[] rows = Enumerable.Range(0, 8).Select(i => (int)((long)i * (rowCount - 1) / 7)).Distinct().ToArray();
            var analytic = new float[rows.Length * stride];
            var numeric = new double[rows.Length * stride];
            for (int r = 0; r < rows.Length; r++)
            {
                for (int col = 0; col < stride; col++)
                {
                    int index = rows[r] * stride + col;
                    analytic[r * stride + col] = gradient[index];
                    float saved = buffer[index];
                    float plus = saved + GradientCheck.Step, minus = saved - GradientCheck.Step;
                    buffer[index] = plus;
                    double lossPlus = Loss();
                    buffer[index] = minus;
                    double lossMinus = Loss();
                    buffer[index] = saved;
                    numeric[r * stride + col] = (lossPlus - lossMinus) / ((double)plus - minus);
                }
            }
            GradientCheck.AssertClose(what, analytic, numeric);
        }
    }

    [Theory]
    [InlineData("causal 37")]
    [InlineData("GQA causal 150")]
    [InlineData("cross 45 over 150, padding")]
    public void Backward_accumulates_and_overwrite_stores(string name)
    {
        Case t = Named(name);
        int outputLength = t.Batch * t.QueryLen * t.C;
        float[] g = TestTensors.Normal(new Rng(6), outputLength);
        float[] output = new float[outputLength], stats = t.NewStatistics();
        t.Flash(output, stats);
        (float[] dQ, float[] dKv) = t.NewGradients();
        t.FlashBackward(g, output, stats, dQ, dKv);
        float[] twiceQ = dQ.ToArray(), twiceKv = t.SelfAttention ? twiceQ : dKv.ToArray();
        t.FlashBackward(g, output, stats, twiceQ, twiceKv);
        GradientCheck.AssertDoubled("dQ", dQ, twiceQ);
        if (!t.SelfAttention) GradientCheck.AssertDoubled("dK|dV", dKv, twiceKv);

        // Stored over garbage in the columns the kernel owns gives the same bits as accumulated into zeros.
        (float[] storedQ, float[] storedKv) = t.NewGradients();
        Array.Fill(storedQ, 7f);
        if (!t.SelfAttention) Array.Fill(storedKv, 7f);
        t.FlashBackward(g, output, stats, storedQ, storedKv, overwriteDq: true, overwriteDkv: true);
        int kvC = t.KvHeads * t.HeadDim;
        for (int i = 0; i < dQ.Length; i++)
        {
            int col = i % t.QStride;
            bool owned = col < t.C || (t.SelfAttention && col < t.C + 2 * kvC);
            Assert.Equal(owned ? dQ[i] : 7f, storedQ[i]);
        }
        if (!t.SelfAttention)
            for (int i = 0; i < dKv.Length; i++)
            {
                int col = i % t.KvStride;
                bool owned = col < kvC || (col >= t.VOffset && col < t.VOffset + kvC);
                Assert.Equal(owned ? dKv[i] : 7f, storedKv[i]);
            }
    }

    [Theory]
    [InlineData("causal 300")]
    [InlineData("GQA causal 150")]
    [InlineData("padding full 140")]
    [InlineData("window 5 causal 90")]
    [InlineData("cross 45 over 150, padding")]
    [InlineData("cross 70 over 260 head 32")]
    public void Results_are_bit_identical_for_any_thread_count(string name)
    {
        Case t = Named(name);
        int outputLength = t.Batch * t.QueryLen * t.C;
        float[] g = TestTensors.Normal(new Rng(8), outputLength);
        (float[] Out, float[] Stats, float[] DQ, float[] DKv) Run(int threads)
        {
            using var settings = new ThreadSettings(threads);
            float[] output = new float[outputLength], stats = t.NewStatistics();
            t.Flash(output, stats);
            (float[] dQ, float[] dKv) = t.NewGradients();
            t.FlashBackward(g, output, stats, dQ, dKv);
            return (output, stats, dQ, dKv);
        }
        var one = Run(1);
        foreach (int threads in new[] { 2, 3 })
        {
            var many = Run(threads);
            ThreadSettings.AssertBitIdentical(one.Out, many.Out, $"output ({threads} threads)");
            ThreadSettings.AssertBitIdentical(one.Stats, many.Stats, $"statistics ({threads} threads)");
            ThreadSettings.AssertBitIdentical(one.DQ, many.DQ, $"dQ ({threads} threads)");
            ThreadSettings.AssertBitIdentical(one.DKv, many.DKv, $"dKv ({threads} threads)");
        }
    }

    [Fact]
    public void Packed_forms_equal_the_general_form()
    {
        int batch = 2, seqLen = 45, heads = 3, headDim = 5, c = heads * headDim;
        var rng = new Rng(9);
        float[] qkv = TestTensors.Normal(rng, batch * seqLen * 3 * c), g = TestTensors.Normal(rng, batch * seqLen * c);
        float[] packedOut = new float[g.Length], packedStats = new float[Attention.FlashStatisticsLength(batch, heads, seqLen)];
        Attention.FlashForward(qkv, packedOut, packedStats, batch, seqLen, heads, headDim, causal: true);
        var packedGrad = new float[qkv.Length];
        Attention.FlashBackward(g, qkv, packedOut, packedStats, packedGrad, batch, seqLen, heads, headDim, causal: true);

        float[] generalOut = new float[g.Length], generalStats = new float[packedStats.Length];
        Attention.FlashForward(qkv, 3 * c, qkv.AsSpan(c), qkv.AsSpan(2 * c), 3 * c, default, generalOut, generalStats, batch, seqLen, seqLen, heads, headDim, causal: true);
        var generalGrad = new float[qkv.Length];
        Attention.FlashBackward(g, qkv, 3 * c, qkv.AsSpan(c), qkv.AsSpan(2 * c), 3 * c, default, generalOut, generalStats, generalGrad, generalGrad.AsSpan(c), generalGrad.AsSpan(2 * c),
            batch, seqLen, seqLen, heads, headDim, causal: true);
        ThreadSettings.AssertBitIdentical(generalOut, packedOut, "output");
        ThreadSettings.AssertBitIdentical(generalGrad, packedGrad, "dQkv");
    }

    [Theory]
    [InlineData(false, 0, 0)]
    [InlineData(true, 0, 2)]
    [InlineData(false, 3, 0)]
    public void Sequences_laid_end_to_end_each_get_what_they_get_alone(bool causal, int window, int kvHeads)
    {
        int heads = 4, headDim = 9, c = heads * headDim, kvC = (kvHeads == 0 ? heads : kvHeads) * headDim, stride = c + 2 * kvC;
        int[] lengths = [70, 1, 33, 40];
        int n = lengths.Sum();
        var rng = new Rng(12);
        float[] qkv = TestTensors.Normal(rng, n * stride);
        var padding = new byte[n];
        padding[5] = padding[69] = padding[71 + 10] = 1;
        var output = new float[n * c];
        Attention.FlashForwardSequences(qkv, stride, qkv.AsSpan(c), qkv.AsSpan(c + kvC), stride, padding, output, lengths, heads, headDim, causal, window, kvHeads);
        var stored = new float[n * c];
        Attention.ForwardSequences(qkv, stride, qkv.AsSpan(c), qkv.AsSpan(c + kvC), stride, padding, stored, new float[heads * 70 * 70], lengths, heads, headDim, causal, window, kvHeads);
        AssertClose("sequences", stored, output);

        int row = 0;
        foreach (int length in lengths)
        {
            var alone = new float[length * c];
            Attention.FlashForward(qkv.AsSpan(row * stride, length * stride), stride, qkv.AsSpan(row * stride + c), qkv.AsSpan(row * stride + c + kvC), stride,
                padding.AsSpan(row, length), alone, new float[Attention.FlashStatisticsLength(1, heads, length)], 1, length, length, heads, headDim, causal, window, kvHeads);
            ThreadSettings.AssertBitIdentical(alone, output.AsSpan(row * c, length * c), $"sequence at row {row}");
            row += length;
        }
    }

    [Fact]
    public void Forward_without_statistics_gives_the_same_output()
    {
        Case t = Named("padding causal GQA 140");
        int outputLength = t.Batch * t.QueryLen * t.C;
        float[] withStats = new float[outputLength], without = new float[outputLength];
        t.Flash(withStats, t.NewStatistics());
        Attention.FlashForward(t.QBuffer, t.QStride, t.KvBuffer.AsSpan(t.KOffset), t.KvBuffer.AsSpan(t.VOffset), t.KvStride, t.Padding, without, default,
            t.Batch, t.QueryLen, t.KeyLen, t.Heads, t.HeadDim, t.Causal, t.Window, t.KvHeads);
        ThreadSettings.AssertBitIdentical(withStats, without, "output");
    }

    [Fact]
    public void Wrong_lengths_throw()
    {
        int batch = 1, seqLen = 4, heads = 2, headDim = 3, c = heads * headDim;
        var qkv = new float[batch * seqLen * 3 * c];
        var output = new float[batch * seqLen * c];
        var stats = new float[Attention.FlashStatisticsLength(batch, heads, seqLen)];
        Assert.Throws<ArgumentException>(() => Attention.FlashForward(qkv, output, new float[stats.Length - 1], batch, seqLen, heads, headDim, true));
        Assert.Throws<ArgumentException>(() => Attention.FlashForward(qkv, new float[output.Length + 1], stats, batch, seqLen, heads, headDim, true));
        Assert.Throws<ArgumentException>(() => Attention.FlashBackward(output, qkv, output, new float[stats.Length + 2], new float[qkv.Length], batch, seqLen, heads, headDim, true));
        Assert.Throws<ArgumentException>(() => Attention.FlashForward(qkv, 3 * c, qkv.AsSpan(c), qkv.AsSpan(2 * c), 3 * c, new byte[seqLen - 1], output, stats, batch, seqLen, seqLen, heads, headDim, false));
        Assert.Throws<ArgumentException>(() => Attention.FlashForward(qkv, 3 * c, qkv.AsSpan(c), qkv.AsSpan(2 * c), 3 * c, default, output, stats, batch, seqLen, seqLen, heads, headDim, false, kvHeads: 3));
    }
}
