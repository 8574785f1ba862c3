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
/// Checks of the M2M100 reference (<see cref="HfMarian"/> with fairseq's sinusoids numbered from the padding id) on its
/// own: the config read with transformers' defaults, the sinusoid table against the formula written another way (its
/// padding row, its odd-width column), the rows each token reads, the pre-LN placement shown to matter, the names a file
/// holds, cached decoding against the teacher-forced pass, the standard shift, and gradients against central differences
/// in float64.
/// </summary>
public sealed class HfM2M100SelfTests(ITestOutputHelper output)
{
    private const long Seed = 9876;
    private const int Vocab = 45, D = 22, Pad = 1, Eos = 2, Positions = 16;

    private static string ConfigPath => HfFixtures.ConfigPath(HfFixtures.M2M100);

    [Fact]
    public void Config_reads_the_nllb_keys()
    {
        HfConfig c = HfConfig.Read(ConfigPath);
        Assert.Equal((HfFamily.Marian, "m2m_100", Vocab, D, 2, 2, 11, 30, Positions, "relu", 1e-5),
            (c.Family, c.ModelType, c.VocabSize, c.HiddenSize, c.Layers, c.Heads, c.HeadDim, c.IntermediateSize, c.MaxPositions, c.Activation, c.NormEps));
        Assert.Equal((3, 2, 30, true, Pad, Eos, Eos), (c.DecoderLayers, c.DecoderHeads, c.DecoderIntermediateSize, c.ScaleEmbedding, c.PadTokenId, c.DecoderStartTokenId, c.EosTokenId));
        Assert.Equal((false, true, true, false, true), (c.LearnedPositions, c.PositionsFromPadding, c.PreNorm, c.FinalLogitsBias, c.TieWordEmbeddings));
        Assert.Empty(c.BannedTokens);
    }

    /// <summary>
    /// get_embedding against the formula in float64 written another way: frequency i is 10000^(−i/(h − 1)) (so the last
    /// is 1e-4 exactly, not Marian's 10000^(−2(h − 1)/d)), the sine in column i and the cosine, as the sine a quarter turn
    /// on, in column h + i; row pad all zeros; an odd width's last column zeros. Within 1e-5 (float32 angles up to ~20);
    /// Marian's spacing of the frequencies would differ by more than 0.1.
    /// </summary>
    [Theory]
    [InlineData(D)]
    [InlineData(23)]
    public void Sinusoid_table_follows_fairseq(int d)
    {
        const int rows = Positions + 2;
        int half = d / 2;
        float[] table;
        using (NewDisposeScope()) table = HfMarian.FairseqSinusoids(rows, d, Pad).data<float>().ToArray();
        double worst = 0, marianGap = 0;
        for (int p = 0; p < rows; p++)
        {
            for (int i = 0; i < half; i++)
            {
                double angle = p / Math.Pow(10000.0, (double)i / (half - 1));
                double sine = p == Pad ? 0 : Math.Sin(angle), cosine = p == Pad ? 0 : Math.Sin(angle + Math.PI / 2);
                worst = Math.Max(worst, Math.Max(Math.Abs(table[p * d + i] - sine), Math.Abs(table[p * d + half + i] - cosine)));
                if (p != Pad) marianGap = Math.Max(marianGap, Math.Abs(table[p * d + i] - Math.Sin(p / Math.Pow(10000.0, 2.0 * i / d))));
            }
            if (d % 2 == 1) Assert.Equal(0f, table[p * d + d - 1]);
        }
        output.WriteLine($"d {d}: table vs formula {worst:E2}; Marian's frequencies would differ by {marianGap:F3}");
        Assert.True(worst < 1e-5, $"the table differs from the formula by {worst:E2}");
        Assert.True(marianGap > 0.1);
        Assert.All(table[(Pad * d)..((Pad + 1) * d)], v => Assert.Equal(0f, v));
        Assert.Equal(1f, table[half]); // row 0: cos 0
    }

    /// <summary>
    /// A stack's input is shared[id]·√d + table[row], here with one-hot matrices: with padding at the end, token t reads row
    /// pad + 1 + t and each pad the zero row; a pad in the middle is skipped by the count (the token after it reads the row
    /// the pad would have); with 3 cached positions the rows continue at pad + 4. Reading pad + 1 + t everywhere (the
    /// compiled model's rule) would differ only at the pads.
    /// </summary>
    [Fact]
    public void Tokens_read_rows_counted_from_the_padding_id()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        var model = (HfMarian)reference.Model;
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        Tensor table = HfMarian.FairseqSinusoids(Positions + 2, D, Pad).to(ScalarType.Float64);
        (long[] ids, int past, long[] rows)[] cases =
        [
            ([44, 17, 5, 30, Eos, Pad, Pad], 0, [2, 3, 4, 5, 6, 1, 1]),
            ([44, 17, Pad, 30, Eos], 0, [2, 3, 1, 4, 5]),
            ([Eos, 43, 9], 3, [5, 6, 7]),
        ];
        foreach ((long[] ids, int past, long[] rows) in cases)
        {
            Tensor embedded = model.Embed(tensor(ids, new long[] { 1, ids.Length }), past, "model.decoder.").view(ids.Length, D);
            Tensor Formula(long[] positions) =>
                F.one_hot(tensor(ids), Vocab).to(ScalarType.Float64).matmul(model["model.shared.weight"]) * Math.Sqrt(D)
                + F.one_hot(tensor(positions), Positions + 2).to(ScalarType.Float64).matmul(table);
            double error = (embedded - Formula(rows)).abs().max().item<double>();
            long[] plain = Enumerable.Range(0, ids.Length).Select(t => (long)(Pad + 1 + past + t)).ToArray();
            Tensor gapPerToken = (embedded - Formula(plain)).abs().amax(new long[] { 1 });
            string gaps = string.Join(' ', gapPerToken.data<double>().ToArray().Select(g => g.ToString("F2")));
            output.WriteLine($"[{string.Join(' ', ids)}] after {past}: rows [{string.Join(' ', rows)}], vs the formula {error:E2}; rows pad + 1 + t would differ per token by [{gaps}]");
            Assert.True(error < 1e-12, $"{error:E2}");
            for (int t = 0; t < ids.Length; t++)
                Assert.True(rows[t] == plain[t] ? gapPerToken[t].item<double>() == 0 : gapPerToken[t].item<double>() > 0.1, $"token {t}");
        }
        // Past max_position_embeddings + 2 rows, transformers grows the table (make_weights) and so does the reference.
        Tensor far = model.Embed(tensor(new long[] { 9 }, new long[] { 1, 1 }), Positions + 5, "model.decoder.").view(D);
        Tensor want = model["model.shared.weight"][9] * Math.Sqrt(D) + HfMarian.FairseqSinusoids(Positions + 8, D, Pad).to(ScalarType.Float64)[Positions + 7];
        Assert.True((far - want).abs().max().item<double>() < 1e-12);
    }

    /// <summary>
    /// The model's names: no <c>final_logits_bias</c>, no <c>layernorm_embedding</c>, no position tables (a non-persistent
    /// buffer), a final <c>layer_norm</c> per stack; the pre-LN placement matters (computed post-LN, the final norms then
    /// unread, the logits move by more than 5% of the largest), and the final norms have gradients.
    /// </summary>
    [Fact]
    public void Names_and_norm_placement()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        var model = (HfMarian)reference.Model;
        Assert.DoesNotContain(model.State, e => e.IsBuffer);
        Assert.DoesNotContain(reference.ParameterNames, n => n == "final_logits_bias" || n.Contains("embed_positions") || n.Contains("layernorm_embedding"));
        Assert.Equal(1 + 2 * 16 + 3 * 26 + 2 * 2, reference.ParameterNames.Count); // shared, 2 encoder and 3 decoder layers, 2 final norms
        Assert.Equal("model.shared.weight", reference.ParameterNames[0]);
        Assert.True(model.PreNorm);

        (int[] source, int[] labels) = Batch();
        float[] own = reference.TranslationLogits(source, labels, 2, 8, 7);
        model.PreNorm = false;
        float[] flipped = reference.TranslationLogits(source, labels, 2, 8, 7);
        model.PreNorm = true;
        Assert.Equal(own, reference.TranslationLogits(source, labels, 2, 8, 7));
        double gap = MaxAbs(own, flipped) / own.Max(Math.Abs);
        output.WriteLine($"computed post-LN: the logits move by {gap:F3} of the largest");
        Assert.True(gap > 0.05);
        Dictionary<string, float[]> gradients = reference.TranslationLossAndGradients(source, labels, 2, 8, 7).Gradients;
        foreach (string norm in new[] { "model.encoder.layer_norm.weight", "model.encoder.layer_norm.bias", "model.decoder.layer_norm.weight", "model.decoder.layer_norm.bias" })
            Assert.True(gradients[norm].Max(Math.Abs) > 1e-4, $"{norm} has no gradient");
    }

    /// <summary>
    /// generate's path: one token at a time through the cache (rows counted on from it) gives the teacher-forced logits at
    /// every position, to 1e-6 of the largest; trailing source pads (which read the zero row, under the mask) change nothing.
    /// </summary>
    [Fact]
    public void Cached_decoding_equals_the_teacher_forced_pass()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        const int length = 9;
        int[] sentence = new[] { 44 }.Concat(RandomTokens(7, seed: 5)).Append(Eos).ToArray(), padded = sentence.Concat([Pad, Pad]).ToArray();
        int[] labels = new[] { 43 }.Concat(RandomTokens(length - 2, seed: 6)).Append(Eos).ToArray();
        int[] decoderInput = new[] { Eos }.Concat(labels[..^1]).ToArray();
        float[] full = reference.TranslationLogits(padded, labels, 1, padded.Length, length);
        float[] alone = reference.TranslationLogits(sentence, labels, 1, sentence.Length, length);
        float[] cached = reference.CachedDecoderLogits(padded, decoderInput);
        double scale = full.Max(Math.Abs), error = MaxAbs(cached, full) / scale, padError = MaxAbs(alone, full) / scale;
        output.WriteLine($"cached vs full {error:E2}, padded vs alone {padError:E2}");
        Assert.True(error < 1e-6, $"cached decoding differs by {error:E2}");
        Assert.True(padError < 1e-6, $"masked pads moved the logits by {padError:E2}");
    }

    /// <summary>
    /// M2M100's shift_tokens_right is BART's (copied from it): decoder_start_token_id (</s> = 2) first, then the labels
    /// but the last, −100 read as the padding id; not mBART's, which starts from the last label before the padding.
    /// </summary>
    [Fact]
    public void Shift_starts_from_decoder_start()
    {
        int[] labels = [43, 8, 9, Eos, 40, -1, -1, 43, 12, Eos, Pad, Pad, Pad, Pad];
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        Assert.Equal(new long[] { Eos, 43, 8, 9, Eos, 40, Pad, Eos, 43, 12, Eos, Pad, Pad, Pad }, ((HfMarian)reference.Model).ShiftRight(labels, 2, 7));
    }

    /// <summary>
    /// In float64, one larger entry of each of a few parameters (the shared table, the final norms, layers of both stacks)
    /// has the gradient of its central difference to 1e-6 relative; the padding row of the shared table learns as a row of
    /// the head only (its lookups read the zero-gradient row).
    /// </summary>
    [Fact]
    public void Gradients_match_central_differences()
    {
        using HfReference precise = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        (int[] source, int[] labels) = Batch();
        const int batch = 2, sourceLength = 8, length = 7;
        Dictionary<string, float[]> gradients = precise.TranslationLossAndGradients(source, labels, batch, sourceLength, length).Gradients;
        Assert.Equal(precise.ParameterNames.Order(StringComparer.Ordinal), gradients.Keys.Order(StringComparer.Ordinal));
        string[] names =
        [
            "model.shared.weight", "model.encoder.layer_norm.weight", "model.decoder.layer_norm.bias", "model.encoder.layers.0.self_attn.q_proj.weight",
            "model.encoder.layers.1.fc2.weight", "model.decoder.layers.2.encoder_attn.v_proj.weight", "model.decoder.layers.1.self_attn_layer_norm.bias",
            "model.decoder.layers.0.fc1.bias",
        ];
        CentralDifferences.Check(precise, gradients, names, seed: 13, Pad, D,
            () => CentralDifferences.Evaluate(() => precise.TranslationLoss(source, labels, batch, sourceLength, length)), line => output.WriteLine(line));

        // The padding row: its lookups pass nothing. The decoder reads <pad> after the counted padding label (its zero
        // position row, the tokens after it counted on without it) and at the ignored tail, the encoder at the source's.
        var model = (HfMarian)precise.Model;
        model.PaddingRowLearnsFromLookups = true;
        float[] withLookups = precise.TranslationLossAndGradients(source, labels, batch, sourceLength, length).Gradients["model.shared.weight"];
        model.PaddingRowLearnsFromLookups = false;
        float[] row = gradients["model.shared.weight"][(Pad * D)..((Pad + 1) * D)], rowWithLookups = withLookups[(Pad * D)..((Pad + 1) * D)];
        double lookupPart = MaxAbs(row, rowWithLookups);
        output.WriteLine($"padding row: |g| max {row.Max(Math.Abs):E2}, its lookups would add up to {lookupPart:E2}");
        Assert.True(lookupPart > 1e-6, "the padding row's lookups carry no gradient: the check would prove nothing");
        Assert.True(MaxAbs(gradients["model.shared.weight"][..(Pad * D)], withLookups[..(Pad * D)]) < 1e-12);
        Assert.True(MaxAbs(gradients["model.shared.weight"][((Pad + 1) * D)..], withLookups[((Pad + 1) * D)..]) < 1e-12);
    }

    // Two sources "lang words </s>" (the second padded after 5 tokens) and labels "lang words </s>" (the second ignored
    // after 4; the first with a padding label, which transformers counts: only −100 is ignored).
    private static (int[] Source, int[] Labels) Batch()
    {
        const int sourceLength = 8, length = 7;
        int[] source = RandomTokens(2 * sourceLength, seed: 8);
        source[0] = source[sourceLength] = 44;
        source[sourceLength - 1] = Eos;
        source[sourceLength + 4] = Eos;
        for (int t = 5; t < sourceLength; t++) source[sourceLength + t] = Pad;
        int[] labels = RandomTokens(2 * length, seed: 9);
        labels[0] = labels[length] = 43;
        labels[length - 1] = Eos;
        labels[length + 3] = Eos;
        for (int t = 4; t < length; t++) labels[length + t] = -1;
        labels[2] = Pad;
        return (source, labels);
    }

    // Ids 4 … 42: no special token or language code.
    private static int[] RandomTokens(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => 4 + rng.Next(39)).ToArray();
    }

    private static double MaxAbs(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs((double)a[i] - b[i]));
        return m;
    }
}
