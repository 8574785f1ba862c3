using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// Checks of the T5 reference (<see cref="HfT5"/>) on its own, before any compiled model is compared with it: the configs
/// read with T5Config's and MT5Config's defaults, the relative position buckets against the formula evaluated another way,
/// the position bias laid out heads first and computed once per stack, cross-attention without position bias, the source
/// padding mask, cached step-by-step decoding against the teacher-forced pass, the loss's −100 labels, gradients against
/// central differences in float64, and the saved files read back.
/// </summary>
public sealed class HfT5SelfTests(ITestOutputHelper output)
{
    private const long Seed = 5151;
    private const int Pad = 0, Eos = 1;

    public static TheoryData<string> Fixtures => new() { HfFixtures.T5, HfFixtures.FlanT5 };

    // ------------------------------------------------------------------------------------------------------------
    // Config

    [Fact]
    public void Configs_read_the_t5_keys()
    {
        HfConfig t5 = HfConfig.Read(HfFixtures.ConfigPath(HfFixtures.T5));
        Assert.Equal((HfFamily.T5, "t5", 41, 44, 2, 3, 3, 12, 70, 70),
            (t5.Family, t5.ModelType, t5.VocabSize, t5.HiddenSize, t5.Layers, t5.DecoderLayers, t5.Heads, t5.HeadDim, t5.IntermediateSize, t5.DecoderIntermediateSize));
        Assert.Equal(("relu", false, true, 1e-6, 8, 20, Pad, Pad, Eos), (t5.Activation, t5.GatedFeedForward, t5.TieWordEmbeddings, t5.NormEps, t5.RelativeBuckets, t5.RelativeMaxDistance, t5.PadTokenId, t5.DecoderStartTokenId, t5.EosTokenId));
        Assert.False(t5.IsDecoder);

        HfConfig flan = HfConfig.Read(HfFixtures.ConfigPath(HfFixtures.FlanT5));
        Assert.Equal((HfFamily.T5, "t5", 43, 52, 2, 2, 4, 20, 60), (flan.Family, flan.ModelType, flan.VocabSize, flan.HiddenSize, flan.Layers, flan.DecoderLayers, flan.Heads, flan.HeadDim, flan.IntermediateSize));
        Assert.Equal(("gelu_new", true, false, 1e-6, 10, 24, Pad, Pad, Eos), (flan.Activation, flan.GatedFeedForward, flan.TieWordEmbeddings, flan.NormEps, flan.RelativeBuckets, flan.RelativeMaxDistance, flan.PadTokenId, flan.DecoderStartTokenId, flan.EosTokenId));
    }

    /// <summary>
    /// The defaults where keys are absent: T5Config's (vocab 32128, d_model 512, d_kv 64, d_ff 2048, 6 layers and as many
    /// decoder layers, 8 heads, 32 buckets to distance 128, relu, tied); MT5Config's (vocab 250112, d_ff 1024, "gated-gelu"
    /// read as gelu_new, untied); feed_forward_proj's forms, a saved dense_act_fn/is_gated_act overriding the derivation
    /// (PretrainedConfig sets them after T5Config derives them); and the refusals.
    /// </summary>
    [Fact]
    public void Config_defaults_are_t5configs_and_mt5configs()
    {
        HfConfig t5 = ReadJson("""{"model_type": "t5", "decoder_start_token_id": 0}""");
        Assert.Equal((32128, 512, 64, 2048, 6, 6, 8, 32, 128, "relu", false, true, 1e-6, Pad, Eos),
            (t5.VocabSize, t5.HiddenSize, t5.HeadDim, t5.IntermediateSize, t5.Layers, t5.DecoderLayers, t5.Heads, t5.RelativeBuckets, t5.RelativeMaxDistance, t5.Activation, t5.GatedFeedForward, t5.TieWordEmbeddings, t5.NormEps, t5.PadTokenId, t5.EosTokenId));
        HfConfig mt5 = ReadJson("""{"model_type": "mt5", "decoder_start_token_id": 0, "num_layers": 3}""");
        Assert.Equal((250112, 1024, 3, 3, "gelu_new", true, false), (mt5.VocabSize, mt5.IntermediateSize, mt5.Layers, mt5.DecoderLayers, mt5.Activation, mt5.GatedFeedForward, mt5.TieWordEmbeddings));

        (string Projection, string Activation, bool Gated)[] forms = [("gated-silu", "silu", true), ("gelu", "gelu", false), ("gated-relu", "relu", true), ("gated-gelu", "gelu_new", true)];
        foreach ((string projection, string activation, bool gated) in forms)
        {
            HfConfig c = ReadJson($$"""{"model_type": "t5", "decoder_start_token_id": 0, "feed_forward_proj": "{{projection}}"}""");
            Assert.True((activation, gated) == (c.Activation, c.GatedFeedForward), $"{projection}: {c.Activation}, gated {c.GatedFeedForward}");
        }
        HfConfig saved = ReadJson("""{"model_type": "t5", "decoder_start_token_id": 0, "feed_forward_proj": "gated-gelu", "dense_act_fn": "gelu", "is_gated_act": true}""");
        Assert.Equal(("gelu", true), (saved.Activation, saved.GatedFeedForward));

        Assert.Throws<InvalidDataException>(() => ReadJson("""{"model_type": "t5", "decoder_start_token_id": 0, "feed_forward_proj": "relu-gated"}"""));
        Assert.Throws<InvalidDataException>(() => ReadJson("""{"model_type": "t5"}"""));
        Assert.Throws<NotSupportedException>(() => ReadJson("""{"model_type": "t5", "decoder_start_token_id": 0, "is_encoder_decoder": false}"""));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Relative positions

    public static TheoryData<int, int> BucketSettings => new() { { 32, 128 }, { 8, 20 }, { 10, 24 }, { 16, 64 }, { 12, 40 }, { 6, 9 } };

    /// <summary>
    /// libtorch's bucket of every relative position in [−300, 300], both directions, equals the formula evaluated another
    /// way in double: instead of truncating max_exact + log(n/max_exact)/log(max_distance/max_exact)·(b − max_exact), the
    /// bucket of n ≥ max_exact is max_exact + the number of thresholds max_exact·(max_distance/max_exact)^(k/(b − max_exact)),
    /// k = 1 … b − max_exact − 1, that n reaches. The two can only part where n lands on a threshold; such n are listed.
    /// </summary>
    [Theory]
    [MemberData(nameof(BucketSettings))]
    public void Buckets_follow_the_formula(int buckets, int maxDistance)
    {
        int[] deltas = Enumerable.Range(-300, 601).ToArray();
        foreach (bool bidirectional in new[] { true, false })
        {
            int[] libtorch = HfReference.T5RelativePositionBuckets(deltas, bidirectional, buckets, maxDistance);
            var used = new SortedSet<int>();
            for (int i = 0; i < deltas.Length; i++)
            {
                int expected = ScalarBucket(deltas[i], bidirectional, buckets, maxDistance, out bool onThreshold);
                if (onThreshold) output.WriteLine($"({buckets}, {maxDistance}) {(bidirectional ? "bidirectional" : "causal")} Δ = {deltas[i]}: on a threshold, libtorch {libtorch[i]}, formula {expected}");
                Assert.True(libtorch[i] == expected, $"({buckets}, {maxDistance}, bidirectional {bidirectional}) Δ = {deltas[i]}: libtorch {libtorch[i]}, formula {expected}");
                used.Add(libtorch[i]);
            }
            // Every bucket is reached within ±300 (max_distance ≤ 300 here), but bidirectional the upper half's first: a key
            // after the query is at distance 1 or more.
            Assert.Equal(Enumerable.Range(0, buckets).Where(b => !bidirectional || b != buckets / 2), used);
        }
    }

    /// <summary>
    /// Every real T5 checkpoint's settings (32 buckets, distance 128), worked by hand: the encoder's 16 buckets a side, 8
    /// exact, then 8·16^(k/8) ≤ n for bucket 8 + k, so that 16, 32 and 64 land exactly on the thresholds of buckets 10, 12
    /// and 14 (log(n/8)/log 16·8 = 2, 4, 6 in exact arithmetic; float32 must not truncate 5.9999995 to 5); the decoder's 32
    /// buckets, 16 exact, keys after the query in bucket 0.
    /// </summary>
    [Fact]
    public void Buckets_of_the_t5_checkpoints_settings()
    {
        int[] deltas = [0, -1, 1, -7, 7, -8, 8, -11, 12, -15, 16, -16, 32, -32, 64, -64, 63, -127, 128, -129, 1000, -1000];
        Assert.Equal([0, 1, 17, 7, 23, 8, 24, 8, 25, 9, 26, 10, 28, 12, 30, 14, 29, 15, 31, 15, 31, 15], HfReference.T5RelativePositionBuckets(deltas, bidirectional: true, 32, 128));
        Assert.Equal([0, 1, 0, 7, 0, 8, 0, 11, 0, 15, 0, 16, 0, 21, 0, 26, 0, 31, 0, 31, 0, 31], HfReference.T5RelativePositionBuckets(deltas, bidirectional: false, 32, 128));
    }

    /// <summary>
    /// compute_bias's layout: the encoder's bias at [h, q, k] is row bucket(k − q) column h of block 0's table (heads
    /// first, keys last, key − query not query − key), the decoder's one-directional likewise from a later first query
    /// (as after a cache), and the decoder's bias for query p alone is row p of the full one.
    /// </summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Position_bias_is_the_table_row_of_each_bucket(string fixture)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
        HfConfig c = HfConfig.Read(HfFixtures.ConfigPath(fixture));
        int heads = c.Heads;
        foreach ((bool decoder, int first, int queries, int keys) in new[] { (false, 0, 9, 9), (true, 3, 5, 8) })
        {
            float[] bias = reference.T5PositionBias(decoder, first, queries, keys);
            float[] table = reference.ParameterValues(decoder ? HfT5.DecoderRelativeBias : HfT5.EncoderRelativeBias);
            for (int h = 0; h < heads; h++)
                for (int q = 0; q < queries; q++)
                    for (int k = 0; k < keys; k++)
                    {
                        int bucket = ScalarBucket(k - (first + q), !decoder, c.RelativeBuckets, c.RelativeMaxDistance, out _);
                        Assert.Equal(table[bucket * heads + h], bias[(h * queries + q) * keys + k]);
                    }
        }
        float[] full = reference.T5PositionBias(decoder: true, 0, 8, 8);
        for (int p = 0; p < 8; p++)
        {
            float[] step = reference.T5PositionBias(decoder: true, p, 1, p + 1);
            for (int h = 0; h < heads; h++)
                Assert.Equal(full.AsSpan((h * 8 + p) * 8, p + 1).ToArray(), step.AsSpan(h * (p + 1), p + 1).ToArray());
        }
        // The encoder's bias differs before and after the diagonal; the decoder's is one bucket for every key after the query.
        float[] encoder = reference.T5PositionBias(decoder: false, 0, 5, 5);
        Assert.NotEqual(encoder[0 * 5 + 1], encoder[1 * 5 + 0]);
    }

    /// <summary>
    /// Cross-attention has no position bias: the decoder's output is the same (to rounding) when the encoder output's rows
    /// and the source mask are permuted together; the encoder's self-attention has one, so permuting the source's tokens
    /// moves the encoder output by more than reordering its rows.
    /// </summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Cross_attention_has_no_position_bias(string fixture)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
        var model = (HfT5)reference.Model;
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        const int sourceLength = 9, length = 6;
        HfConfig c = model.Config;
        int[] source = RandomTokens(sourceLength - 2, c.VocabSize, seed: 11).Concat([Pad, Pad]).ToArray();
        long[] permutation = [4, 8, 0, 6, 2, 7, 1, 5, 3];
        Tensor ids = Ids(source), mask = tensor(source.Select(t => t == Pad ? 0f : 1f).ToArray(), new long[] { 1, sourceLength });
        Tensor memory = model.Encode(ids, mask);
        Tensor decoderInput = tensor(model.ShiftRight(RandomTokens(length, c.VocabSize, seed: 12), 1, length), new long[] { 1, length });
        Tensor order = tensor(permutation);
        Tensor straight = model.Decode(decoderInput, memory, mask);
        Tensor permuted = model.Decode(decoderInput, memory.index_select(1, order), mask.index_select(1, order));
        double scale = straight.abs().max().item<float>(), error = (straight - permuted).abs().max().item<float>() / scale;

        Tensor reordered = model.Encode(ids.index_select(1, order), mask.index_select(1, order));
        double encoderGap = (reordered - memory.index_select(1, order)).abs().max().item<float>() / memory.abs().max().item<float>();
        output.WriteLine($"{fixture}: decoder with permuted memory vs straight {error:E2}; encoder of permuted tokens vs permuted rows {encoderGap:F3}");
        Assert.True(error < 1e-6, $"the cross-attention depends on the memory's order: {error:E2}");
        Assert.True(encoderGap > 1e-2);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Forward passes

    /// <summary>
    /// The teacher-forced logits equal T5 written out again in double with plain loops over the saved parameter values (no
    /// libtorch): RMS norms, per-head attention without scaling, the bias table's row for bucket(key − query) added in the
    /// self-attentions only, hidden keys skipped, the feed-forward, the head; to 1e-5 of the largest logit.
    /// </summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Logits_equal_the_model_written_out(string fixture)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
        HfConfig c = reference.Model.Config;
        int[] source = RandomTokens(7, c.VocabSize, seed: 21).Concat([Pad, Pad]).ToArray(), labels = RandomTokens(8, c.VocabSize, seed: 22);
        float[] logits = reference.TranslationLogits(source, labels, 1, source.Length, labels.Length);
        double[] expected = new WrittenOutT5(reference, c).Logits(source, labels);
        double scale = expected.Max(Math.Abs), error = logits.Zip(expected, (a, b) => Math.Abs(a - b)).Max() / scale;
        output.WriteLine($"{fixture}: logits vs written out {error:E2} of the largest ({scale:F3})");
        Assert.True(error < 1e-5, $"the logits differ from the written-out model by {error:E2}");
    }

    /// <summary>
    /// Trailing source pads under the attention mask leave every logit as with the source alone (to 1e-6 of the largest);
    /// left visible, they move them.
    /// </summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Source_padding_is_masked(string fixture)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
        int vocab = reference.Model.Config.VocabSize;
        const int length = 10, real = 6, targets = 7;
        int[] sentence = RandomTokens(real, vocab, seed: 1);
        int[] padded = sentence.Concat(Enumerable.Repeat(Pad, length - real)).ToArray();
        int[] labels = RandomTokens(targets, vocab, seed: 2);

        float[] alone = reference.TranslationLogits(sentence, labels, 1, real, targets);
        float[] masked = reference.TranslationLogits(padded, labels, 1, length, targets);
        float[] visible = reference.TranslationLogits(padded, labels, 1, length, targets, Enumerable.Repeat(1, length).ToArray());
        double scale = alone.Max(Math.Abs), maskedError = MaxAbs(masked, alone) / scale, visibleGap = MaxAbs(visible, alone) / scale;
        output.WriteLine($"{fixture}: padded and masked vs alone {maskedError:E2}; pads left visible move the logits by {visibleGap:E2}");
        Assert.True(maskedError < 1e-6, $"masked padding changed the logits by {maskedError:E2}");
        Assert.True(visibleGap > 1e-2);

        float[] encoded = reference.EncoderLastHiddenState(padded, 1, length), encodedAlone = reference.EncoderLastHiddenState(sentence, 1, real);
        Assert.True(MaxAbs(encoded[..encodedAlone.Length], encodedAlone) < 1e-6 * encodedAlone.Max(Math.Abs));
    }

    /// <summary>
    /// generate's path: the decoder run one token at a time through the key/value cache (position bias for query p over keys
    /// 0…p, cross-attention keys computed once) gives the teacher-forced pass's logits at every position, to 1e-5 of the
    /// largest; the next-token logits equal the full pass's last row; greedy decoding stops at &lt;/s&gt; or the length.
    /// </summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Cached_decoding_equals_the_teacher_forced_pass(string fixture)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
        int vocab = reference.Model.Config.VocabSize;
        const int sourceLength = 10, length = 11;
        int[] source = RandomTokens(sourceLength - 3, vocab, seed: 5).Concat([Pad, Pad, Pad]).ToArray();
        int[] labels = RandomTokens(length, vocab, seed: 6);
        int[] decoderInput = new[] { Pad }.Concat(labels[..^1]).ToArray();

        float[] full = reference.TranslationLogits(source, labels, 1, sourceLength, length);
        float[] cached = reference.CachedDecoderLogits(source, decoderInput);
        float[] last = reference.NextTokenLogits(source, decoderInput);
        double scale = full.Max(Math.Abs), error = MaxAbs(cached, full) / scale, lastError = MaxAbs(last, full[^vocab..]) / scale;
        output.WriteLine($"{fixture}: cached vs full {error:E2}, next-token logits vs the full pass's last row {lastError:E2} (largest logit {scale:F2})");
        Assert.True(error < 1e-5, $"cached decoding differs by {error:E2}");
        Assert.True(lastError < 1e-5);

        int[] greedy = reference.GreedyTranslation(source, 12, out double margin, out bool padding);
        output.WriteLine($"{fixture}: greedy {string.Join(' ', greedy)} (smallest margin {margin:E2}, padding was the argmax: {padding})");
        Assert.DoesNotContain(Pad, greedy);
        Assert.DoesNotContain(Eos, greedy);
        Assert.True(greedy.Length <= 12);
        // Each greedy token is the argmax of the recomputed next-token logits.
        var input = new List<int> { Pad };
        foreach (int token in greedy)
        {
            float[] logits = reference.NextTokenLogits(source, input.ToArray());
            logits[Pad] = float.NegativeInfinity;
            Assert.Equal(Array.IndexOf(logits, logits.Max()), token);
            input.Add(token);
        }
    }

    /// <summary>
    /// The loss with labels: the mean over the labels ≠ −100 of −log softmax(logits)[label], written out in double from the
    /// logits, to 1e-6; an ignored label is read by the decoder as the padding id, so the logits equal those with label 0
    /// there, while the loss, which counts a 0 label, differs.
    /// </summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Loss_ignores_minus_100_labels(string fixture)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
        int vocab = reference.Model.Config.VocabSize;
        (int[] source, int[] labels) = Batch(vocab);
        const int batch = 2, sourceLength = 8, length = 7;
        float[] logits = reference.TranslationLogits(source, labels, batch, sourceLength, length);
        double sum = 0;
        int counted = 0;
        for (int n = 0; n < batch * length; n++)
        {
            if (labels[n] < 0) continue;
            double[] row = logits.AsSpan(n * vocab, vocab).ToArray().Select(v => (double)v).ToArray();
            double max = row.Max(), logSum = max + Math.Log(row.Sum(v => Math.Exp(v - max)));
            sum += logSum - row[labels[n]];
            counted++;
        }
        float loss = reference.TranslationLossAndGradients(source, labels, batch, sourceLength, length).Loss;
        output.WriteLine($"{fixture}: loss {loss:F6} over {counted} of {batch * length} labels, written out {sum / counted:F6}");
        Assert.True(Math.Abs(loss - sum / counted) < 1e-6 * Math.Abs(sum / counted), $"loss {loss} vs {sum / counted}");

        int[] zeros = labels.Select(t => t < 0 ? 0 : t).ToArray();
        Assert.Equal(logits, reference.TranslationLogits(source, zeros, batch, sourceLength, length));
        float zeroLoss = reference.TranslationLossAndGradients(source, zeros, batch, sourceLength, length).Loss;
        Assert.True(Math.Abs(zeroLoss - loss) > 1e-3, "counting the ignored labels as 0 should change the loss");
    }

    // ------------------------------------------------------------------------------------------------------------
    // Gradients

    /// <summary>
    /// In float64, gradient entries against central differences of the loss (h = 1e-5) to 1e-6 relative: one among the
    /// larger of each listed parameter (both relative bias tables, a layer norm, the feed-forward, the cross-attention, the
    /// shared table, the untied head), and chosen ones: the padding row of <c>shared.weight</c> (no padding_idx: it learns
    /// from its lookups) and a bucket that only far keys use. Every parameter has a gradient, and the float32 gradients
    /// equal the float64 ones to 1e-4 of each tensor's norm.
    /// </summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Gradients_match_central_differences(string fixture)
    {
        using HfReference precise = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed, ScalarType.Float64);
        using HfReference single = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
        HfConfig c = precise.Model.Config;
        (int[] source, int[] labels) = Batch(c.VocabSize);
        const int batch = 2, sourceLength = 8, length = 7;
        Dictionary<string, float[]> gradients = precise.TranslationLossAndGradients(source, labels, batch, sourceLength, length).Gradients;
        Dictionary<string, float[]> singleGradients = single.TranslationLossAndGradients(source, labels, batch, sourceLength, length).Gradients;
        Assert.Equal(precise.ParameterNames.Order(StringComparer.Ordinal), gradients.Keys.Order(StringComparer.Ordinal));
        double Loss() => CentralDifferences.Evaluate(() => precise.TranslationLoss(source, labels, batch, sourceLength, length));

        bool gated = c.GatedFeedForward;
        List<string> names =
        [
            HfT5.Shared, HfT5.EncoderRelativeBias, HfT5.DecoderRelativeBias, "encoder.block.1.layer.0.layer_norm.weight",
            "decoder.block.1.layer.1.EncDecAttention.k.weight", "decoder.block.0.layer.0.SelfAttention.q.weight",
            gated ? "encoder.block.0.layer.1.DenseReluDense.wi_1.weight" : "encoder.block.0.layer.1.DenseReluDense.wi.weight",
            "decoder.block.1.layer.2.DenseReluDense.wo.weight", "decoder.final_layer_norm.weight", "encoder.final_layer_norm.weight",
        ];
        if (!c.TieWordEmbeddings) names.Add("lm_head.weight");
        CentralDifferences.Check(precise, gradients, names, seed: 7, pad: -1, c.HiddenSize, Loss, line => output.WriteLine($"{fixture} {line}"));

        // The padding row (read by every decoder start and the padded sources) and the encoder's bucket of the farthest
        // keys after the query (Δ ≥ 7 here: only the longest source reaches it), each at its largest entry.
        CheckEntry(precise, gradients, HfT5.Shared, LargestIn(gradients[HfT5.Shared], Pad * c.HiddenSize, c.HiddenSize), Loss, fixture);
        int farBucket = HfReference.T5RelativePositionBuckets([sourceLength - 1], bidirectional: true, c.RelativeBuckets, c.RelativeMaxDistance)[0];
        CheckEntry(precise, gradients, HfT5.EncoderRelativeBias, LargestIn(gradients[HfT5.EncoderRelativeBias], farBucket * c.Heads, c.Heads), Loss, fixture);

        double worst = 0;
        string worstName = "";
        foreach ((string parameter, float[] g) in gradients)
        {
            double norm = Math.Sqrt(g.Sum(v => (double)v * v));
            Assert.True(norm > 1e-6, $"the gradient of {parameter} is zero");
            double error = Math.Sqrt(g.Zip(singleGradients[parameter], (a, b) => ((double)a - b) * ((double)a - b)).Sum()) / norm;
            if (error > worst) (worst, worstName) = (error, parameter);
        }
        output.WriteLine($"{fixture}: float32 vs float64 gradients: worst {worst:E2} of the tensor's norm ({worstName})");
        Assert.True(worst < 1e-4, $"the float32 gradient of {worstName} differs from float64 by {worst:E2}");
    }

    // ------------------------------------------------------------------------------------------------------------
    // Files

    public static TheoryData<string, HfWriteOptions> FileVariants => new()
    {
        { HfFixtures.T5, new HfWriteOptions() },
        { HfFixtures.T5, new HfWriteOptions(KeepTiedCopy: true) },
        { HfFixtures.T5, new HfWriteOptions(Dtype: HfDtype.BF16) },
        { HfFixtures.T5, new HfWriteOptions(Shards: 3) },
        { HfFixtures.T5, new HfWriteOptions(KeepTiedCopy: true, IncludeUnusedHeads: true) },
        { HfFixtures.FlanT5, new HfWriteOptions() },
        { HfFixtures.FlanT5, new HfWriteOptions(KeepTiedCopy: true) },
        { HfFixtures.FlanT5, new HfWriteOptions(Dtype: HfDtype.BF16, Shards: 2) },
    };

    /// <summary>
    /// A saved folder holds exactly T5ForConditionalGeneration's names (written out here, not taken from the reference),
    /// their dtypes and shapes, the weights' values rounded to the dtype, and the tied copies equal to <c>shared.weight</c>
    /// (with the old cross-attention table, the old layout of t5-small's era); the reference then computes with the
    /// rounded weights.
    /// </summary>
    [Theory]
    [MemberData(nameof(FileVariants))]
    public void Saved_folder_reads_back(string fixture, HfWriteOptions options)
    {
        string folder = Path.Combine(Path.GetTempPath(), "hf-t5-" + Guid.NewGuid().ToString("N"));
        try
        {
            using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
            HfConfig c = reference.Model.Config;
            int[] source = RandomTokens(6, c.VocabSize, seed: 3), labels = RandomTokens(5, c.VocabSize, seed: 4);
            float[] before = reference.TranslationLogits(source, labels, 1, 6, 5);
            reference.Save(folder, options);
            Dictionary<string, HfReferenceSelfTests.StoredTensor> stored = HfReferenceSelfTests.ReadFolder(folder, options.Shards);

            long d = c.HiddenSize, inner = c.Heads * c.HeadDim, ff = c.IntermediateSize;
            var expected = new Dictionary<string, long[]>(StringComparer.Ordinal) { ["shared.weight"] = [c.VocabSize, d] };
            void Attention(string prefix)
            {
                foreach (string p in new[] { "q", "k", "v" }) expected[$"{prefix}.{p}.weight"] = [inner, d];
                expected[prefix + ".o.weight"] = [d, inner];
            }
            void FeedForward(string prefix)
            {
                foreach (string wi in c.GatedFeedForward ? new[] { "wi_0", "wi_1" } : ["wi"]) expected[$"{prefix}.{wi}.weight"] = [ff, d];
                expected[prefix + ".wo.weight"] = [d, ff];
            }
            for (int i = 0; i < c.Layers; i++)
            {
                Attention($"encoder.block.{i}.layer.0.SelfAttention");
                expected[$"encoder.block.{i}.layer.0.layer_norm.weight"] = [d];
                FeedForward($"encoder.block.{i}.layer.1.DenseReluDense");
                expected[$"encoder.block.{i}.layer.1.layer_norm.weight"] = [d];
            }
            for (int i = 0; i < c.DecoderLayers; i++)
            {
                Attention($"decoder.block.{i}.layer.0.SelfAttention");
                expected[$"decoder.block.{i}.layer.0.layer_norm.weight"] = [d];
                Attention($"decoder.block.{i}.layer.1.EncDecAttention");
                expected[$"decoder.block.{i}.layer.1.layer_norm.weight"] = [d];
                FeedForward($"decoder.block.{i}.layer.2.DenseReluDense");
                expected[$"decoder.block.{i}.layer.2.layer_norm.weight"] = [d];
            }
            expected["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"] = [c.RelativeBuckets, c.Heads];
            expected["decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"] = [c.RelativeBuckets, c.Heads];
            expected["encoder.final_layer_norm.weight"] = [d];
            expected["decoder.final_layer_norm.weight"] = [d];
            if (!c.TieWordEmbeddings) expected["lm_head.weight"] = [c.VocabSize, d];
            string[] copies = !options.KeepTiedCopy ? []
                : c.TieWordEmbeddings ? ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"]
                : ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"];
            foreach (string copy in copies) expected[copy] = [c.VocabSize, d];
            if (options.IncludeUnusedHeads) expected[HfT5.LegacyCrossAttentionBias] = [c.RelativeBuckets, c.Heads];

            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), stored.Keys.Order(StringComparer.Ordinal));
            string dtype = options.Dtype == HfDtype.BF16 ? "BF16" : "F32";
            foreach ((string name, long[] shape) in expected)
            {
                HfReferenceSelfTests.StoredTensor t = stored[name];
                Assert.True(dtype == t.Dtype, $"{name}: dtype {t.Dtype}");
                Assert.True(shape.SequenceEqual(t.Shape), $"{name}: shape [{string.Join(",", t.Shape)}]");
                float[] values = HfReferenceSelfTests.Decode(t);
                float[] want = name == HfT5.LegacyCrossAttentionBias ? reference.ParameterValues(HfT5.DecoderRelativeBias).Select(v => -v).ToArray()
                    : reference.ParameterValues(copies.Contains(name) ? "shared.weight" : name);
                Assert.True(values.SequenceEqual(want), $"{name}: the file's values differ from the reference's");
                Assert.True(values.All(v => HfFloats.Round(v, options.Dtype) == v), $"{name}: not rounded to {options.Dtype}");
            }
            // The norm weights are off 1 and the bias tables spread, so that a loader which drops or misplaces one shows.
            Assert.Contains(HfReferenceSelfTests.Decode(stored["decoder.final_layer_norm.weight"]), v => Math.Abs(v - 1) > 0.05);
            float[] bias = HfReferenceSelfTests.Decode(stored[HfT5.EncoderRelativeBias]);
            Assert.True(bias.Max() - bias.Min() > 1, $"the relative bias table spans {bias.Min()} … {bias.Max()}");

            float[] after = reference.TranslationLogits(source, labels, 1, 6, 5);
            double moved = MaxAbs(after, before) / before.Max(Math.Abs);
            output.WriteLine($"{fixture} {options}: {stored.Count} tensors; rounding the weights moved the logits by {moved:E2}");
            if (options.Dtype == HfDtype.F32) Assert.Equal(before, after);
            else Assert.True(moved > 0, "the reference should compute with the rounded weights");
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Options_that_do_not_apply_are_refused()
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.T5), Seed);
        Assert.Throws<ArgumentException>(() => reference.Save(Path.GetTempPath(), new HfWriteOptions(Prefix: true)));
        Assert.Throws<ArgumentException>(() => reference.Save(Path.GetTempPath(), new HfWriteOptions(LegacyGammaBeta: true)));
        Assert.Throws<InvalidOperationException>(() => reference.Logits([1, 2], 1, 2));
        Assert.Throws<InvalidOperationException>(() => reference.SentenceEmbeddings([1, 2], [1, 1], 1, 2));
        Assert.DoesNotContain(reference.ParameterNames, n => n.Contains("EncDecAttention.relative_attention_bias", StringComparison.Ordinal));
        using HfReference marian = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.Marian), Seed);
        Assert.Throws<InvalidOperationException>(() => marian.T5PositionBias(false, 0, 2, 2));
    }

    // ------------------------------------------------------------------------------------------------------------

    /// <summary>
    /// The bucket of relative position <paramref name="delta"/> by thresholds in double: bidirectional, keys after the query
    /// take the upper half; distances below max_exact are exact; above, max_exact plus how many of the thresholds
    /// max_exact·r^(k/m), r = max_distance/max_exact, m = buckets − max_exact, k = 1 … m − 1 the distance reaches.
    /// <paramref name="onThreshold"/>: the distance is within 1e-9 of one, where float32 rounding could decide.
    /// </summary>
    internal static int ScalarBucket(int delta, bool bidirectional, int buckets, int maxDistance, out bool onThreshold)
    {
        int offset = 0;
        long distance;
        if (bidirectional)
        {
            buckets /= 2;
            if (delta > 0) offset = buckets;
            distance = Math.Abs((long)delta);
        }
        else distance = Math.Max(-(long)delta, 0);
        onThreshold = false;
        int maxExact = buckets / 2, steps = buckets - maxExact;
        if (distance < maxExact) return offset + (int)distance;
        int reached = 0;
        for (int k = 1; k < steps; k++)
        {
            double threshold = maxExact * Math.Pow((double)maxDistance / maxExact, (double)k / steps);
            if (Math.Abs(distance - threshold) < 1e-9 * threshold) onThreshold = true;
            if (distance >= threshold) reached = k;
        }
        return offset + maxExact + reached;
    }

    private static int LargestIn(float[] values, int start, int count)
    {
        int best = start;
        for (int i = start; i < start + count; i++) if (Math.Abs(values[i]) > Math.Abs(values[best])) best = i;
        return best;
    }

    private void CheckEntry(HfReference precise, Dictionary<string, float[]> gradients, string parameter, int index, Func<double> loss, string fixture)
    {
        const double h = 1e-5;
        Tensor values = precise.Model[parameter];
        double original = CentralDifferences.Evaluate(() => values.view(-1)[index]);
        double Shifted(double by)
        {
            CentralDifferences.Evaluate(() => values.view(-1)[index].fill_(original + by));
            return loss();
        }
        double difference = (Shifted(h) - Shifted(-h)) / (2 * h);
        Shifted(0);
        float g = gradients[parameter][index];
        output.WriteLine($"{fixture} {parameter}[{index}] (chosen): analytic {g:E6}, central difference {difference:E6}");
        Assert.True(Math.Abs(g) > 1e-8, $"{parameter}[{index}] has no gradient");
        Assert.True(Math.Abs(difference - g) <= 1e-6 * Math.Abs(g) + 1e-9, $"{parameter}[{index}]: analytic {g} vs central difference {difference}");
    }

    // Two sources (the second padded after 5 tokens) and their labels (the second ignored after 4; one a padding label,
    // which counts).
    private static (int[] Source, int[] Labels) Batch(int vocab)
    {
        const int sourceLength = 8, length = 7;
        int[] source = RandomTokens(2 * sourceLength, vocab, seed: 8);
        for (int t = 5; t < sourceLength; t++) source[sourceLength + t] = Pad;
        int[] labels = RandomTokens(2 * length, vocab, seed: 9);
        for (int t = 4; t < length; t++) labels[length + t] = -100;
        labels[2] = Pad;
        return (source, labels);
    }

    private static HfConfig ReadJson(string json)
    {
        string path = Path.Combine(Path.GetTempPath(), "t5-config-" + Guid.NewGuid().ToString("N") + ".json");
        try
        {
            File.WriteAllText(path, json);
            return HfConfig.Read(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static Tensor Ids(int[] tokens) => tensor(tokens.Select(t => (long)t).ToArray(), new long[] { 1, tokens.Length });

    // Ids 2 … vocab − 1: neither the padding id 0 nor </s> 1.
    private static int[] RandomTokens(int count, int vocab, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(2, vocab)).ToArray();
    }

    private static double MaxAbs(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs((double)a[i] - b[i]));
        return m;
    }
}

/// <summary>T5ForConditionalGeneration for one source and its labels, in double with plain loops, from a reference's parameter values.</summary>
internal sealed class WrittenOutT5(HfReference reference, HfConfig c)
{
    private readonly Dictionary<string, double[]> _values = new(StringComparer.Ordinal);

    private double[] P(string name)
    {
        if (!_values.TryGetValue(name, out double[]? v)) _values[name] = v = reference.ParameterValues(name).Select(f => (double)f).ToArray();
        return v;
    }

    public double[] Logits(int[] source, int[] labels)
    {
        int d = c.HiddenSize;
        bool[] sourceVisible = source.Select(t => t != c.PadTokenId).ToArray();
        double[][] x = source.Select(t => P("shared.weight").AsSpan(t * d, d).ToArray()).ToArray();
        for (int i = 0; i < c.Layers; i++)
        {
            string block = $"encoder.block.{i}.layer.";
            double[][] normed = Norm(x, block + "0.layer_norm");
            x = Add(x, Attention(block + "0.SelfAttention", normed, normed, "encoder", (q, k) => sourceVisible[k]));
            x = Add(x, FeedForward(block + "1.DenseReluDense", Norm(x, block + "1.layer_norm")));
        }
        double[][] memory = Norm(x, "encoder.final_layer_norm");

        int[] input = new[] { c.DecoderStartTokenId }.Concat(labels[..^1].Select(t => t < 0 ? c.PadTokenId : t)).ToArray();
        double[][] y = input.Select(t => P("shared.weight").AsSpan(t * d, d).ToArray()).ToArray();
        for (int i = 0; i < c.DecoderLayers; i++)
        {
            string block = $"decoder.block.{i}.layer.";
            double[][] normed = Norm(y, block + "0.layer_norm");
            y = Add(y, Attention(block + "0.SelfAttention", normed, normed, "decoder", (q, k) => k <= q));
            y = Add(y, Attention(block + "1.EncDecAttention", Norm(y, block + "1.layer_norm"), memory, null, (q, k) => sourceVisible[k]));
            y = Add(y, FeedForward(block + "2.DenseReluDense", Norm(y, block + "2.layer_norm")));
        }
        double[][] hidden = Norm(y, "decoder.final_layer_norm");
        if (c.TieWordEmbeddings) hidden = hidden.Select(row => row.Select(v => v / Math.Sqrt(d)).ToArray()).ToArray();
        return Linear(hidden, c.TieWordEmbeddings ? "shared.weight" : "lm_head.weight").SelectMany(row => row).ToArray();
    }

    // weight_i · x_i / √(mean(x²) + ε), row by row.
    private double[][] Norm(double[][] x, string prefix)
    {
        double[] w = P(prefix + ".weight");
        return x.Select(row =>
        {
            double rms = Math.Sqrt(row.Sum(v => v * v) / row.Length + c.NormEps);
            return row.Select((v, i) => w[i] * v / rms).ToArray();
        }).ToArray();
    }

    // y[t][o] = Σ_i W[o, i]·x[t][i], W [out, in] row-major.
    private double[][] Linear(double[][] x, string name)
    {
        double[] w = P(name);
        int inputs = x[0].Length, outputs = w.Length / inputs;
        return x.Select(row => Enumerable.Range(0, outputs).Select(o => Enumerable.Range(0, inputs).Sum(i => w[o * inputs + i] * row[i])).ToArray()).ToArray();
    }

    // Per head h (columns h·d_kv … of q, k, v): scores q·k + (self-attention) table[bucket(k − q), h], softmax over the
    // visible keys, the weighted values side by side, then o.
    private double[][] Attention(string prefix, double[][] queries, double[][] keysFrom, string? stack, Func<int, int, bool> visible)
    {
        double[][] q = Linear(queries, prefix + ".q.weight"), k = Linear(keysFrom, prefix + ".k.weight"), v = Linear(keysFrom, prefix + ".v.weight");
        double[]? table = stack is null ? null : P($"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
        int heads = c.Heads, dkv = c.HeadDim;
        var joined = new double[queries.Length][];
        for (int t = 0; t < queries.Length; t++)
        {
            joined[t] = new double[heads * dkv];
            for (int h = 0; h < heads; h++)
            {
                var scores = new double[keysFrom.Length];
                for (int s = 0; s < keysFrom.Length; s++)
                {
                    if (!visible(t, s)) { scores[s] = double.NegativeInfinity; continue; }
                    for (int j = 0; j < dkv; j++) scores[s] += q[t][h * dkv + j] * k[s][h * dkv + j];
                    if (table is not null) scores[s] += table[HfT5SelfTests.ScalarBucket(s - t, stack == "encoder", c.RelativeBuckets, c.RelativeMaxDistance, out _) * heads + h];
                }
                double max = scores.Max(), total = scores.Sum(z => Math.Exp(z - max));
                for (int s = 0; s < keysFrom.Length; s++)
                    for (int j = 0; j < dkv; j++) joined[t][h * dkv + j] += Math.Exp(scores[s] - max) / total * v[s][h * dkv + j];
            }
        }
        return Linear(joined, prefix + ".o.weight");
    }

    private double[][] FeedForward(string prefix, double[][] x)
    {
        double Act(double z) => c.Activation switch
        {
            "relu" => Math.Max(z, 0),
            "gelu_new" => 0.5 * z * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (z + 0.044715 * z * z * z))),
            _ => throw new NotSupportedException(c.Activation),
        };
        double[][] inner = c.GatedFeedForward
            ? Linear(x, prefix + ".wi_0.weight").Zip(Linear(x, prefix + ".wi_1.weight"), (g, l) => g.Select((z, i) => Act(z) * l[i]).ToArray()).ToArray()
            : Linear(x, prefix + ".wi.weight").Select(row => row.Select(Act).ToArray()).ToArray();
        return Linear(inner, prefix + ".wo.weight");
    }

    private static double[][] Add(double[][] a, double[][] b) => a.Zip(b, (r, s) => r.Zip(s, (u, v) => u + v).ToArray()).ToArray();
}
