using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// Checks of the BART and mBART reference (<see cref="HfMarian"/> with learned positions) on its own: the configs read
/// with transformers' defaults, the learned positions' 2-row offset against a formula written another way, the norms'
/// placement (pre-LN vs post-LN, mBART's final norms) shown to matter, cached decoding against the teacher-forced pass,
/// mBART's shift_tokens_right, and gradients against central differences in float64.
/// </summary>
public sealed class HfBartSelfTests(ITestOutputHelper output)
{
    private const long Seed = 8765;
    private const int Vocab = 41, D = 18, Pad = 1, Eos = 2, Positions = 14;

    public static TheoryData<string> Fixtures => new() { HfFixtures.Bart, HfFixtures.MBart };

    [Fact]
    public void Configs_read_the_bart_and_mbart_keys()
    {
        foreach (string fixture in new[] { HfFixtures.Bart, HfFixtures.MBart })
        {
            HfConfig c = HfConfig.Read(HfFixtures.ConfigPath(fixture));
            bool mbart = fixture == HfFixtures.MBart;
            Assert.Equal((HfFamily.Marian, fixture, Vocab, D, 2, 3, 6, 34, Positions, "gelu", 1e-5),
                (c.Family, c.ModelType, c.VocabSize, c.HiddenSize, c.Layers, c.Heads, c.HeadDim, c.IntermediateSize, c.MaxPositions, c.Activation, c.NormEps));
            Assert.Equal((3, 3, 34, mbart, Pad, Eos, Eos, true, mbart), (c.DecoderLayers, c.DecoderHeads, c.DecoderIntermediateSize, c.ScaleEmbedding, c.PadTokenId, c.DecoderStartTokenId, c.EosTokenId, c.LearnedPositions, c.PreNorm));
            Assert.Empty(c.BannedTokens);
        }
    }

    /// <summary>
    /// A stack's input is LayerNorm(shared[id]·s + table[p + 2]), here computed as one-hot matrices times the tables and a
    /// LayerNorm written out (mean, biased variance, ε 1e-5), for the encoder from position 0 and the decoder from position
    /// 3 (as after 3 cached tokens); reading rows p instead of p + 2 would differ.
    /// </summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Learned_positions_read_two_rows_in(string fixture)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed, ScalarType.Float64);
        var model = (HfMarian)reference.Model;
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        long[] ids = [0, 17, 5, 40, 2, 1, 9];
        foreach ((string stack, int first) in new[] { ("model.encoder.", 0), ("model.decoder.", 3) })
        {
            Tensor embedded = model.Embed(tensor(ids, new long[] { 1, ids.Length }), first, stack).view(ids.Length, D);
            Tensor Formula(int offset)
            {
                Tensor tokenHot = F.one_hot(tensor(ids), Vocab).to(ScalarType.Float64);
                Tensor positionHot = F.one_hot(arange(first + offset, first + offset + ids.Length, ScalarType.Int64), Positions + 2).to(ScalarType.Float64);
                Tensor sum = tokenHot.matmul(model["model.shared.weight"]) * (model.Config.ScaleEmbedding ? Math.Sqrt(D) : 1.0)
                    + positionHot.matmul(model[stack + "embed_positions.weight"]);
                Tensor centred = sum - sum.mean(new long[] { 1 }, keepdim: true);
                Tensor variance = (centred * centred).mean(new long[] { 1 }, keepdim: true);
                return centred / (variance + 1e-5).sqrt() * model[stack + "layernorm_embedding.weight"] + model[stack + "layernorm_embedding.bias"];
            }
            double error = (embedded - Formula(2)).abs().max().item<double>(), withoutOffset = (embedded - Formula(0)).abs().max().item<double>();
            output.WriteLine($"{fixture} {stack} from position {first}: vs the formula {error:E2}; rows p instead of p + 2 would differ by {withoutOffset:F3}");
            Assert.True(error < 1e-12, $"{stack}: {error:E2}");
            Assert.True(withoutOffset > 0.1);
        }
        Assert.Throws<ArgumentException>(() => model.Embed(tensor(new long[] { 3, 4 }, new long[] { 1, 2 }), Positions - 1, "model.decoder."));
    }

    /// <summary>
    /// The norms' placement matters: the same weights computed with the other placement (mBART's as post-LN, its final
    /// norms then unread; BART's layers as pre-LN, with no final norms to add) give logits that differ by more than 5% of
    /// the largest; and mBART's final norms are read: the encoder's <c>layer_norm</c> (what the cross-attention reads) and
    /// the decoder's (before the head) have gradients.
    /// </summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Norm_placement_matters(string fixture)
    {
        bool mbart = fixture == HfFixtures.MBart;
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
        var model = (HfMarian)reference.Model;
        Assert.Equal(mbart, model.PreNorm);
        Assert.Equal(mbart, model.Contains("model.encoder.layer_norm.weight"));
        (int[] source, int[] labels) = Batch();
        float[] own = reference.TranslationLogits(source, labels, 2, 8, 7);
        model.PreNorm = !mbart;
        float[] flipped = reference.TranslationLogits(source, labels, 2, 8, 7);
        model.PreNorm = mbart;
        Assert.Equal(own, reference.TranslationLogits(source, labels, 2, 8, 7));
        double gap = MaxAbs(own, flipped) / own.Max(Math.Abs);
        output.WriteLine($"{fixture} computed {(mbart ? "post-LN" : "pre-LN")}: the logits move by {gap:F3} of the largest");
        Assert.True(gap > 0.05);
        if (!mbart) return;
        Dictionary<string, float[]> gradients = reference.TranslationLossAndGradients(source, labels, 2, 8, 7).Gradients;
        foreach (string norm in new[] { "model.encoder.layer_norm.weight", "model.encoder.layer_norm.bias", "model.decoder.layer_norm.weight", "model.decoder.layer_norm.bias" })
            Assert.True(gradients[norm].Max(Math.Abs) > 1e-4, $"{norm} has no gradient");
    }

    /// <summary>
    /// generate's path: one token at a time through the cache (decoder positions counted on from it, pre-LN keys from the
    /// normed input) gives the teacher-forced logits at every position, to 1e-6 of the largest; trailing source pads
    /// under the mask change nothing.
    /// </summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Cached_decoding_equals_the_teacher_forced_pass(string fixture)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
        const int length = 9;
        int[] sentence = RandomTokens(8, seed: 5).Append(Eos).ToArray(), padded = sentence.Concat([Pad, Pad]).ToArray();
        int[] labels = RandomTokens(length - 1, seed: 6).Append(Eos).ToArray();
        int[] decoderInput = new[] { Eos }.Concat(labels[..^1]).ToArray();
        float[] full = reference.TranslationLogits(padded, labels, 1, padded.Length, length);
        float[] alone = reference.TranslationLogits(sentence, labels, 1, sentence.Length, length);
        float[] cached = reference.CachedDecoderLogits(padded, decoderInput);
        double scale = full.Max(Math.Abs), error = MaxAbs(cached, full) / scale, padError = MaxAbs(alone, full) / scale;
        output.WriteLine($"{fixture}: cached vs full {error:E2}, padded vs alone {padError:E2}");
        Assert.True(error < 1e-6, $"cached decoding differs by {error:E2}");
        Assert.True(padError < 1e-6, $"masked pads moved the logits by {padError:E2}");
    }

    /// <summary>
    /// mBART's shift_tokens_right starts the decoder from the label at (count of non-padding labels − 1), the language code
    /// that ends an mBART-cc25 target, not from decoder_start_token_id; BART's from decoder_start_token_id. −100 reads as pad.
    /// </summary>
    [Fact]
    public void Mbart_shift_starts_from_the_last_label_before_padding()
    {
        int[] labels = [7, 8, 9, Eos, 40, -1, -1, 11, 12, Eos, 39, Pad, Pad, Pad];
        using HfReference mbart = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.MBart), Seed);
        using HfReference bart = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.Bart), Seed);
        Assert.Equal(new long[] { 40, 7, 8, 9, Eos, 40, Pad, 39, 11, 12, Eos, 39, Pad, Pad }, ((HfMarian)mbart.Model).ShiftRight(labels, 2, 7));
        Assert.Equal(new long[] { Eos, 7, 8, 9, Eos, 40, Pad, Eos, 11, 12, Eos, 39, Pad, Pad }, ((HfMarian)bart.Model).ShiftRight(labels, 2, 7));
    }

    /// <summary>
    /// In float64, one larger entry of each of a few parameters (the position tables, the embedding norms, mBART's final
    /// norms, final_logits_bias) has the gradient of its central difference to 1e-6 relative; the position tables' rows
    /// before position 0 and past the last position read get exactly none.
    /// </summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Gradients_match_central_differences(string fixture)
    {
        bool mbart = fixture == HfFixtures.MBart;
        using HfReference precise = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed, ScalarType.Float64);
        (int[] source, int[] labels) = Batch();
        const int batch = 2, sourceLength = 8, length = 7;
        Dictionary<string, float[]> gradients = precise.TranslationLossAndGradients(source, labels, batch, sourceLength, length).Gradients;
        Assert.Equal(precise.ParameterNames.Order(StringComparer.Ordinal), gradients.Keys.Order(StringComparer.Ordinal));

        var names = new List<string>
        {
            "final_logits_bias", "model.shared.weight", "model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight",
            "model.encoder.layernorm_embedding.weight", "model.decoder.layernorm_embedding.bias", "model.encoder.layers.1.fc1.weight",
            "model.decoder.layers.2.encoder_attn.q_proj.weight", "model.decoder.layers.0.self_attn_layer_norm.weight",
        };
        if (mbart) names.AddRange(["model.encoder.layer_norm.weight", "model.decoder.layer_norm.bias"]);
        CentralDifferences.Check(precise, gradients, names, seed: 11, Pad, D,
            () => CentralDifferences.Evaluate(() => precise.TranslationLoss(source, labels, batch, sourceLength, length)), line => output.WriteLine($"{fixture} {line}"));

        foreach ((string table, int used) in new[] { ("model.encoder.embed_positions.weight", sourceLength), ("model.decoder.embed_positions.weight", length) })
            for (int row = 0; row < Positions + 2; row++)
            {
                bool read = row >= 2 && row < 2 + used;
                double norm = gradients[table].Skip(row * D).Take(D).Sum(v => Math.Abs((double)v));
                Assert.True(read ? norm > 1e-6 : norm == 0, $"{table} row {row}: |g| {norm:E2}");
            }
    }

    // Two sources (the second padded after 5 tokens) and labels ending in </s> (the second's tail ignored after 4).
    private static (int[] Source, int[] Labels) Batch()
    {
        const int sourceLength = 8, length = 7;
        int[] source = RandomTokens(2 * sourceLength, seed: 8);
        source[sourceLength - 1] = Eos;
        source[sourceLength + 4] = Eos;
        for (int t = 5; t < sourceLength; t++) source[sourceLength + t] = Pad;
        int[] labels = RandomTokens(2 * length, seed: 9);
        labels[length - 1] = Eos;
        labels[length + 3] = Eos;
        for (int t = 4; t < length; t++) labels[length + t] = -1;
        return (source, labels);
    }

    // Ids 3 … 40: no <s>, <pad> or </s>.
    private static int[] RandomTokens(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => 3 + rng.Next(Vocab - 3)).ToArray();
    }

    private static double MaxAbs(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs((double)a[i] - b[i]));
        return m;
    }
}
