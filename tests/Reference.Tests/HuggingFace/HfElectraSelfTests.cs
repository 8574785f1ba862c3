using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// Checks of the ELECTRA reference (<see cref="HfBert"/> with model_type electra) on its own: the config read as
/// ElectraConfig reads it, the last hidden states and both classifiers' logits against a plain-loop float64
/// implementation (<see cref="ElectraWrittenOut"/>) and that the same loops with one plausible mistake (no projection bias,
/// the LayerNorm after the projection, tanh in the head, the head on another token, the types ignored) do not match them,
/// gradients against central differences in float64, and the names of the files it writes (bare ElectraModel, the
/// task models' <c>electra.</c> prefix, ElectraForPreTraining's and ElectraForMaskedLM's unread heads).
/// </summary>
public sealed class HfElectraSelfTests(ITestOutputHelper output)
{
    private const long Seed = 8128;
    // electra/: ElectraForPreTraining-shaped, embedding_size ≠ hidden_size.
    private const int Vocab = 43, E = 20, H = 36, Heads = 3, Inner = 47, Layers = 2, Positions = 19;
    // electra-classifier/ and electra-tagger/: E ≠ H as well; electra-reranker/: E = H, one label.
    private const int ClassifierVocab = 39, ClassifierE = 22, ClassifierH = 34, ClassifierInner = 45, Labels = 3, TaggerLabels = 5;
    private const int RerankerVocab = 41, RerankerH = 30;

    private static string ConfigPath => HfFixtures.ConfigPath(HfFixtures.Electra);

    // ------------------------------------------------------------------------------------------------------------
    // Config

    [Fact]
    public void Config_reads_the_electra_keys()
    {
        HfConfig c = HfConfig.Read(ConfigPath);
        Assert.Equal((HfFamily.Bert, "electra", Vocab, E, H, Layers, Heads, 12, Inner, Positions, 2, "gelu", 1e-12, 0),
            (c.Family, c.ModelType, c.VocabSize, c.InputEmbeddingSize, c.HiddenSize, c.Layers, c.Heads, c.HeadDim, c.IntermediateSize, c.MaxPositions, c.TypeVocabSize, c.Activation, c.NormEps, c.PadTokenId));
        Assert.Equal((HfEncoderHead.None, "ElectraForPreTraining", true, false, H), (c.EncoderHead, c.Architecture, c.ProjectsEmbeddings, c.PositionsFromPadding, c.EmbeddingSize));

        HfConfig k = HfConfig.Read(HfFixtures.ConfigPath(HfFixtures.ElectraClassifier));
        Assert.Equal((HfEncoderHead.SequenceClassification, Labels, ClassifierE, ClassifierH, 17, ClassifierInner, true),
            (k.EncoderHead, k.Labels, k.InputEmbeddingSize, k.HiddenSize, k.HeadDim, k.IntermediateSize, k.ProjectsEmbeddings));
        HfConfig r = HfConfig.Read(HfFixtures.ConfigPath(HfFixtures.ElectraReranker));
        Assert.Equal((HfEncoderHead.SequenceClassification, 1, RerankerH, RerankerH, false), (r.EncoderHead, r.Labels, r.InputEmbeddingSize, r.HiddenSize, r.ProjectsEmbeddings));
        HfConfig t = HfConfig.Read(HfFixtures.ConfigPath(HfFixtures.ElectraTagger));
        Assert.Equal((HfEncoderHead.TokenClassification, TaggerLabels, ClassifierE, ClassifierH), (t.EncoderHead, t.Labels, t.InputEmbeddingSize, t.HiddenSize));

        // The other families keep their hidden width for the tables.
        HfConfig bert = HfConfig.Read(HfFixtures.ConfigPath("bert"));
        Assert.Equal((30, false), (bert.InputEmbeddingSize, bert.ProjectsEmbeddings));
    }

    /// <summary>
    /// ElectraConfig's defaults where keys are absent (electra-small-discriminator's sizes: embedding_size 128 into hidden
    /// 256, 12 layers of 4 heads, intermediate 1024), the head from architectures, and the refusals.
    /// </summary>
    [Fact]
    public void Config_defaults_are_electraconfigs()
    {
        HfConfig d = ReadJson("""{"model_type": "electra"}""");
        Assert.Equal((30522, 128, 256, 12, 4, 64, 1024, 512, 2, "gelu", 1e-12, 0, true),
            (d.VocabSize, d.InputEmbeddingSize, d.HiddenSize, d.Layers, d.Heads, d.HeadDim, d.IntermediateSize, d.MaxPositions, d.TypeVocabSize, d.Activation, d.NormEps, d.PadTokenId, d.ProjectsEmbeddings));
        Assert.Equal((HfEncoderHead.None, 2, (string?)null), (d.EncoderHead, d.Labels, d.Architecture));
        // electra-base: 768 both ways, no projection; the hidden size's own default does not follow BERT's.
        Assert.False(ReadJson("""{"model_type": "electra", "embedding_size": 768, "hidden_size": 768, "num_attention_heads": 12}""").ProjectsEmbeddings);
        Assert.False(ReadJson("""{"model_type": "electra", "embedding_size": 256}""").ProjectsEmbeddings);
        HfConfig scorer = ReadJson("""{"model_type": "electra", "architectures": ["ElectraForSequenceClassification"], "num_labels": 1}""");
        Assert.Equal((HfEncoderHead.SequenceClassification, 1), (scorer.EncoderHead, scorer.Labels));
        Assert.Equal(HfEncoderHead.TokenClassification, ReadJson("""{"model_type": "electra", "architectures": ["ElectraForTokenClassification"]}""").EncoderHead);
        Assert.Equal(HfEncoderHead.None, ReadJson("""{"model_type": "electra", "architectures": ["ElectraForMaskedLM"]}""").EncoderHead);

        Assert.Throws<NotSupportedException>(() => ReadJson("""{"model_type": "electra", "position_embedding_type": "relative_key"}"""));
        Assert.Throws<NotSupportedException>(() => ReadJson("""{"model_type": "electra", "is_decoder": true}"""));
        Assert.Throws<InvalidDataException>(() => ReadJson("""{"model_type": "electra", "hidden_size": 36, "num_attention_heads": 5}"""));
        Assert.Throws<InvalidDataException>(() => ReadJson("""{"model_type": "electra", "embedding_size": 0}"""));
    }

    // ------------------------------------------------------------------------------------------------------------
    // The forward pass written differently

    /// <summary>
    /// The float64 reference's last hidden states (sentence pairs with both token types, right padding, a real token with
    /// the padding id) equal the written-out model's to 1e-12 of the largest: the E-wide embeddings and LayerNorm, then
    /// embeddings_project [H, E], then the layers; for the reranker (E = H) without a projection, which it does not have;
    /// for a copy of the reranker with embedding_size 24 with one [30, 24]. Leaving out the projection's bias, normalizing
    /// after the projection or ignoring the types is off by far more.
    /// </summary>
    [Fact]
    public void Hidden_states_equal_the_model_written_out()
    {
        (int[] tokens, int[] mask, int[] types) = Inputs(Vocab);
        using (HfReference reference = HfReference.Create(ConfigPath, Seed, ScalarType.Float64))
        {
            Assert.Equal(H * E, reference.ParameterValues("embeddings_project.weight").Length);
            Assert.Equal(E, reference.ParameterValues("embeddings.LayerNorm.weight").Length);
            double[] expected = ReferenceHidden(reference, tokens, mask, types);
            Assert.Equal(Batch * Length * H, expected.Length);
            Assert.True(Relative(expected, new ElectraWrittenOut(reference).Hidden(tokens, mask, types, Batch, Length)) < 1e-12, "written out");
            foreach (ElectraMistake mistake in new[] { ElectraMistake.ProjectionWithoutBias, ElectraMistake.NormAfterProjection, ElectraMistake.TypesIgnored })
            {
                double off = Relative(expected, new ElectraWrittenOut(reference, mistake).Hidden(tokens, mask, types, Batch, Length));
                output.WriteLine($"electra hidden states, written out with {mistake}: {off:E2} of the largest");
                Assert.True(off > 1e-3, $"{mistake} hardly matters: the comparison would prove nothing");
            }
        }

        (int[] rerankerTokens, int[] rerankerMask, int[] rerankerTypes) = Inputs(RerankerVocab);
        double Reranker(string path, string name, bool projects)
        {
            using HfReference reference = HfReference.Create(path, Seed, ScalarType.Float64);
            Assert.Equal(projects, reference.ParameterNames.Contains("embeddings_project.weight"));
            Assert.Equal(projects, reference.ParameterNames.Contains("embeddings_project.bias"));
            double error = Relative(ReferenceHidden(reference, rerankerTokens, rerankerMask, rerankerTypes),
                new ElectraWrittenOut(reference).Hidden(rerankerTokens, rerankerMask, rerankerTypes, Batch, Length));
            output.WriteLine($"{name}: written out vs reference {error:E2}");
            return error;
        }
        Assert.True(Reranker(HfFixtures.ConfigPath(HfFixtures.ElectraReranker), "electra-reranker", projects: false) < 1e-12);
        Assert.True(WithEditedCopy(HfFixtures.ElectraReranker, j => j["embedding_size"] = 24, path =>
        {
            using (HfReference reference = HfReference.Create(path, Seed))
                Assert.Equal(RerankerH * 24, reference.ParameterValues("embeddings_project.weight").Length);
            return Reranker(path, "electra-reranker with embedding_size 24", projects: true);
        }) < 1e-12);
    }

    /// <summary>
    /// ElectraForSequenceClassification's logits (token 0 through classifier.dense, erf GELU, classifier.out_proj) with
    /// three labels and with one (the reranker's score), and ElectraForTokenClassification's (classifier on every token),
    /// equal the written-out model's to 1e-12 of the largest; with tanh in the head (BERT's and RoBERTa's) or the head on
    /// the last real token they do not. A copy with hidden_act relu changes the layers but not the head, which stays GELU.
    /// The float32 logits follow, a right-padded row equals its sentence alone, and the loss is the mean cross-entropy.
    /// </summary>
    [Fact]
    public void Classifier_logits_equal_the_model_written_out()
    {
        double Check(string path, string name, int vocab, bool sequence)
        {
            (int[] tokens, int[] mask, int[] types) = Inputs(vocab);
            using HfReference reference = HfReference.Create(path, Seed, ScalarType.Float64);
            double[] expected = ReferenceLogits(reference, tokens, mask, types);
            double error = Relative(expected, new ElectraWrittenOut(reference).ClassifierLogits(tokens, mask, types, Batch, Length));
            output.WriteLine($"{name}: largest logit {expected.Max(Math.Abs):F3}, written out vs reference {error:E2} of it");
            if (sequence)
                foreach (ElectraMistake mistake in new[] { ElectraMistake.TanhHead, ElectraMistake.HeadOnLastToken })
                {
                    double off = Relative(expected, new ElectraWrittenOut(reference, mistake).ClassifierLogits(tokens, mask, types, Batch, Length));
                    output.WriteLine($"{name}, written out with {mistake}: {off:E2}");
                    Assert.True(off > 1e-3, $"{name}: {mistake} hardly matters");
                }
            return error;
        }
        Assert.True(Check(HfFixtures.ConfigPath(HfFixtures.ElectraClassifier), "electra-classifier", ClassifierVocab, sequence: true) < 1e-12);
        Assert.True(Check(HfFixtures.ConfigPath(HfFixtures.ElectraReranker), "electra-reranker", RerankerVocab, sequence: true) < 1e-12);
        Assert.True(Check(HfFixtures.ConfigPath(HfFixtures.ElectraTagger), "electra-tagger", ClassifierVocab, sequence: false) < 1e-12);
        Assert.True(WithEditedCopy(HfFixtures.ElectraClassifier, j => j["hidden_act"] = "relu", path => Check(path, "electra-classifier with hidden_act relu", ClassifierVocab, sequence: true)) < 1e-12);

        string classifierPath = HfFixtures.ConfigPath(HfFixtures.ElectraClassifier);
        (int[] tokens2, int[] mask2, int[] types2) = Inputs(ClassifierVocab);
        using HfReference precise = HfReference.Create(classifierPath, Seed, ScalarType.Float64);
        using HfReference single = HfReference.Create(classifierPath, Seed);
        Assert.DoesNotContain(single.ParameterNames, n => n.StartsWith("pooler.", StringComparison.Ordinal));
        Assert.Equal(["classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight", "classifier.out_proj.bias"], single.ParameterNames.TakeLast(4));
        float[] logits = single.ClassifierLogits(tokens2, mask2, Batch, Length, types2);
        double precision = Relative(ReferenceLogits(precise, tokens2, mask2, types2), logits.Select(v => (double)v).ToArray());
        int real = Lengths[2];
        float[] alone = single.ClassifierLogits(tokens2[(2 * Length)..(2 * Length + real)], Enumerable.Repeat(1, real).ToArray(), 1, real, types2[(2 * Length)..(2 * Length + real)]);
        double paddingError = HfChecks.MaxDifference(logits[(2 * Labels)..].Select(v => (double)v).ToArray(), alone.Select(v => (double)v).ToArray());
        output.WriteLine($"float32 vs float64 logits {precision:E2}; padded row vs alone {paddingError:E2}");
        Assert.True(precision < 1e-5 && paddingError < 1e-5, $"float32 {precision:E2}, padding {paddingError:E2}");

        int[] labels = [2, 0, 1];
        (float loss, Dictionary<string, float[]> gradients) = single.ClassifierLossAndGradients(tokens2, mask2, labels, Batch, Length, types2);
        double crossEntropy = Enumerable.Range(0, Batch).Average(b =>
        {
            double[] row = logits.Skip(b * Labels).Take(Labels).Select(v => (double)v).ToArray();
            double top = row.Max();
            return top + Math.Log(row.Sum(v => Math.Exp(v - top))) - row[labels[b]];
        });
        Assert.Equal(crossEntropy, loss, 5);
        Assert.Equal(single.ParameterNames.Order(StringComparer.Ordinal), gradients.Keys.Order(StringComparer.Ordinal));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Gradients

    /// <summary>
    /// The bare model's float64 gradients of Σ sentence embeddings ⊙ upstream (mean pooling) against central differences:
    /// the E-wide tables and LayerNorm, both parts of embeddings_project, a query, an output norm; every used parameter
    /// gets a gradient (the key biases' vanish, as softmax ignores them), float32 follows float64.
    /// </summary>
    [Fact]
    public void Gradients_match_central_differences()
    {
        using HfReference precise = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        using HfReference single = HfReference.Create(ConfigPath, Seed);
        (int[] tokens, int[] mask, _) = Inputs(Vocab);
        float[] upstream = HfChecks.Normals(Batch * H, seed: 10).Select(v => (float)v).ToArray();
        Dictionary<string, float[]> gradients = precise.EmbeddingGradients(tokens, mask, Batch, Length, upstream);
        Assert.Equal(precise.ParameterNames.Order(StringComparer.Ordinal), gradients.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(5 + 2 + Layers * 16, gradients.Count); // three tables and a norm, the projection, 16 a layer
        (string, int, int)[] ranges =
        [
            ("embeddings.word_embeddings.weight", 0, Vocab * E),
            ("embeddings.position_embeddings.weight", 0, Positions * E),
            ("embeddings.token_type_embeddings.weight", 0, E),             // type 0: the only one the sentence embeddings read
            ("embeddings.LayerNorm.weight", 0, E),
            ("embeddings.LayerNorm.bias", 0, E),
            ("embeddings_project.weight", 0, H * E),
            ("embeddings_project.bias", 0, H),
            ("encoder.layer.0.attention.self.query.weight", 0, H * H),
            ("encoder.layer.1.output.LayerNorm.weight", 0, H),
        ];
        CentralDifferences.Check(precise, gradients, ranges, seed: 11,
            () => CentralDifferences.Evaluate(() => precise.EmbeddingObjective(tokens, mask, Batch, Length, upstream)), output.WriteLine);
        Assert.All(gradients["embeddings.word_embeddings.weight"][..E], v => Assert.Equal(0f, v)); // padding_idx 0
        CompareSingle(gradients, single.EmbeddingGradients(tokens, mask, Batch, Length, upstream));
    }

    /// <summary>
    /// The classifiers' float64 gradients of Σ logits ⊙ upstream against central differences: the sequence classifier's
    /// head (dense and out_proj, weights and biases) and projection, the reranker's one-row out_proj, the tagger's classifier
    /// and projection bias; float32 follows float64 for each.
    /// </summary>
    [Theory]
    [InlineData(HfFixtures.ElectraClassifier)]
    [InlineData(HfFixtures.ElectraReranker)]
    [InlineData(HfFixtures.ElectraTagger)]
    public void Classifier_gradients_match_central_differences(string fixture)
    {
        string path = HfFixtures.ConfigPath(fixture);
        using HfReference precise = HfReference.Create(path, Seed, ScalarType.Float64);
        using HfReference single = HfReference.Create(path, Seed);
        HfConfig c = precise.Model.Config;
        int e = c.InputEmbeddingSize, h = c.HiddenSize, labels = c.Labels;
        (int[] tokens, int[] mask, _) = Inputs(c.VocabSize);
        int outputs = c.EncoderHead == HfEncoderHead.TokenClassification ? Batch * Length * labels : Batch * labels;
        float[] upstream = HfChecks.Normals(outputs, seed: 14).Select(v => (float)v).ToArray();
        Dictionary<string, float[]> gradients = precise.ClassifierGradients(tokens, mask, Batch, Length, upstream);
        Assert.Equal(precise.ParameterNames.Order(StringComparer.Ordinal), gradients.Keys.Order(StringComparer.Ordinal));
        var ranges = new List<(string, int, int)>();
        if (c.EncoderHead == HfEncoderHead.TokenClassification)
        {
            ranges.Add(("classifier.weight", 0, labels * h));
            ranges.Add(("classifier.bias", 0, labels));
        }
        else
        {
            ranges.Add(("classifier.dense.weight", 0, h * h));
            ranges.Add(("classifier.dense.bias", 0, h));
            ranges.Add(("classifier.out_proj.weight", 0, labels * h));
            ranges.Add(("classifier.out_proj.bias", 0, labels));
        }
        if (c.ProjectsEmbeddings)
        {
            ranges.Add(("embeddings_project.weight", 0, h * e));
            ranges.Add(("embeddings_project.bias", 0, h));
        }
        ranges.Add(("embeddings.LayerNorm.bias", 0, e));
        ranges.Add(("encoder.layer.1.intermediate.dense.weight", 0, c.IntermediateSize * h));
        CentralDifferences.Check(precise, gradients, ranges, seed: 15,
            () => CentralDifferences.Evaluate(() => precise.ClassifierObjective(tokens, mask, Batch, Length, upstream)), output.WriteLine);
        CompareSingle(gradients, single.ClassifierGradients(tokens, mask, Batch, Length, upstream));
    }

    // Every gradient nonzero but the key biases' (zero in exact arithmetic), and the float32 ones within 1e-4 of the
    // tensor's norm of the float64 ones.
    private void CompareSingle(Dictionary<string, float[]> precise, Dictionary<string, float[]> single)
    {
        double worst = 0;
        string worstName = "";
        foreach ((string name, float[] g) in precise)
        {
            double norm = Math.Sqrt(g.Sum(v => (double)v * v));
            if (name.EndsWith("attention.self.key.bias", StringComparison.Ordinal))
            {
                Assert.True(norm < 1e-12, $"the gradient of {name} should vanish, it is {norm:E2}");
                continue;
            }
            Assert.True(norm > 1e-6, $"the gradient of {name} is zero");
            double error = Math.Sqrt(g.Zip(single[name], (a, b) => ((double)a - b) * ((double)a - b)).Sum()) / norm;
            if (error > worst) (worst, worstName) = (error, name);
        }
        output.WriteLine($"float32 vs float64 gradients: worst {worst:E2} of the tensor's norm ({worstName})");
        Assert.True(worst < 1e-4, $"the float32 gradient of {worstName} differs from float64 by {worst:E2}");
    }

    // ------------------------------------------------------------------------------------------------------------
    // Files

    public static TheoryData<string, HfWriteOptions> FileVariants => new()
    {
        { HfFixtures.Electra, new HfWriteOptions() },
        { HfFixtures.Electra, new HfWriteOptions(Dtype: HfDtype.BF16, Prefix: true, IncludeUnusedHeads: true) },
        { HfFixtures.Electra, new HfWriteOptions(Dtype: HfDtype.F16, IncludeBuffers: false, Shards: 2) },
        { HfFixtures.ElectraClassifier, new HfWriteOptions(Prefix: true, IncludeBuffers: false) },
        { HfFixtures.ElectraClassifier, new HfWriteOptions(Prefix: true, LegacyGammaBeta: true, Shards: 3) },
        { HfFixtures.ElectraReranker, new HfWriteOptions(Prefix: true) },
        { HfFixtures.ElectraTagger, new HfWriteOptions() },
        { HfFixtures.ElectraTagger, new HfWriteOptions(Dtype: HfDtype.BF16, Prefix: true) },
    };

    /// <summary>
    /// A saved folder holds exactly the names of the ELECTRA file it stands for, written out here: ElectraModel's bare
    /// names, or the task model's with <c>electra.</c> before the encoder's and none before <c>classifier.*</c> or the
    /// pre-training head; <c>embeddings_project</c> only where E ≠ H; no pooler; the position_ids buffer as older files
    /// have it; ElectraForPreTraining's <c>discriminator_predictions.*</c> with <c>IncludeUnusedHeads</c>; each weight the
    /// reference's rounded to the dtype, which the reference then computes with.
    /// </summary>
    [Theory]
    [MemberData(nameof(FileVariants))]
    public void Saved_files_hold_electra_names(string fixture, HfWriteOptions options)
    {
        string configPath = HfFixtures.ConfigPath(fixture);
        int count = SavedFilesHoldElectraNames(configPath, options, (c, expected) => { });
        output.WriteLine($"{fixture} {options}: {count} tensors");
    }

    /// <summary>
    /// The generator's layout (a copy of electra/ as ElectraForMaskedLM): <c>generator_predictions.LayerNorm.*</c> (E wide),
    /// <c>generator_predictions.dense.*</c> (H → E), <c>generator_lm_head.bias</c> and, with KeepTiedCopy,
    /// <c>generator_lm_head.weight</c>, a copy of the word embeddings.
    /// </summary>
    [Fact]
    public void Saved_generator_files_hold_the_masked_lm_head()
    {
        int count = WithEditedCopy(HfFixtures.Electra, j => j["architectures"] = new JsonArray("ElectraForMaskedLM"), path =>
            SavedFilesHoldElectraNames(path, new HfWriteOptions(Prefix: true, IncludeUnusedHeads: true, KeepTiedCopy: true), (c, expected) =>
            {
                Assert.Equal(new long[] { E }, expected["generator_predictions.LayerNorm.weight"].Shape);
                Assert.Equal(new long[] { E, H }, expected["generator_predictions.dense.weight"].Shape);
            }));
        output.WriteLine($"ElectraForMaskedLM: {count} tensors");
    }

    private static int SavedFilesHoldElectraNames(string configPath, HfWriteOptions options,
        Action<HfConfig, Dictionary<string, (long[] Shape, string? Canonical)>> inspect)
    {
        string folder = HfChecks.TemporaryFolder("tg-electra-");
        try
        {
            using HfReference reference = HfReference.Create(configPath, Seed);
            HfConfig c = reference.Model.Config;
            long e = c.InputEmbeddingSize, h = c.HiddenSize, inner = c.IntermediateSize, vocab = c.VocabSize, p = c.MaxPositions;
            Dictionary<string, float[]> before = reference.ParameterNames.ToDictionary(n => n, reference.ParameterValues);
            reference.Save(folder, options);
            Assert.Equal(File.ReadAllBytes(configPath), File.ReadAllBytes(Path.Combine(folder, "config.json")));

            var expected = new Dictionary<string, (long[] Shape, string? Canonical)>(StringComparer.Ordinal);
            string prefix = options.Prefix ? "electra." : "";
            void Weight(string name, params long[] shape)
            {
                string file = name;
                if (options.LegacyGammaBeta && name.EndsWith(".LayerNorm.weight", StringComparison.Ordinal)) file = name[..^"weight".Length] + "gamma";
                if (options.LegacyGammaBeta && name.EndsWith(".LayerNorm.bias", StringComparison.Ordinal)) file = name[..^"bias".Length] + "beta";
                expected.Add(prefix + file, (shape, name));
            }
            void Head(string name, bool parameter, params long[] shape) => expected.Add(name, (shape, parameter ? name : null));
            if (options.IncludeBuffers) expected.Add(prefix + "embeddings.position_ids", ([1, p], null));
            Weight("embeddings.word_embeddings.weight", vocab, e);
            Weight("embeddings.position_embeddings.weight", p, e);
            Weight("embeddings.token_type_embeddings.weight", 2, e);
            Weight("embeddings.LayerNorm.weight", e);
            Weight("embeddings.LayerNorm.bias", e);
            if (e != h)
            {
                Weight("embeddings_project.weight", h, e);
                Weight("embeddings_project.bias", h);
            }
            for (int i = 0; i < c.Layers; i++)
            {
                string l = $"encoder.layer.{i}.";
                foreach (string part in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
                {
                    Weight(l + part + ".weight", h, h);
                    Weight(l + part + ".bias", h);
                }
                Weight(l + "attention.output.LayerNorm.weight", h);
                Weight(l + "attention.output.LayerNorm.bias", h);
                Weight(l + "intermediate.dense.weight", inner, h);
                Weight(l + "intermediate.dense.bias", inner);
                Weight(l + "output.dense.weight", h, inner);
                Weight(l + "output.dense.bias", h);
                Weight(l + "output.LayerNorm.weight", h);
                Weight(l + "output.LayerNorm.bias", h);
            }
            if (c.EncoderHead == HfEncoderHead.SequenceClassification)
            {
                Head("classifier.dense.weight", true, h, h);
                Head("classifier.dense.bias", true, h);
                Head("classifier.out_proj.weight", true, c.Labels, h);
                Head("classifier.out_proj.bias", true, c.Labels);
            }
            else if (c.EncoderHead == HfEncoderHead.TokenClassification)
            {
                Head("classifier.weight", true, c.Labels, h);
                Head("classifier.bias", true, c.Labels);
            }
            else if (options.IncludeUnusedHeads && c.Architecture == "ElectraForPreTraining")
            {
                Head("discriminator_predictions.dense.weight", false, h, h);
                Head("discriminator_predictions.dense.bias", false, h);
                Head("discriminator_predictions.dense_prediction.weight", false, 1, h);
                Head("discriminator_predictions.dense_prediction.bias", false, 1);
            }
            else if (options.IncludeUnusedHeads && c.Architecture == "ElectraForMaskedLM")
            {
                Head("generator_predictions.LayerNorm.weight", false, e);
                Head("generator_predictions.LayerNorm.bias", false, e);
                Head("generator_predictions.dense.weight", false, e, h);
                Head("generator_predictions.dense.bias", false, e);
                Head("generator_lm_head.bias", false, vocab);
            }
            if (options.KeepTiedCopy) Head("generator_lm_head.weight", false, vocab, e);
            inspect(c, expected);

            Dictionary<string, HfReferenceSelfTests.StoredTensor> stored = HfReferenceSelfTests.ReadFolder(folder, options.Shards);
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), stored.Keys.Order(StringComparer.Ordinal));
            foreach ((string name, (long[] shape, string? canonical)) in expected)
            {
                HfReferenceSelfTests.StoredTensor t = stored[name];
                Assert.True(shape.SequenceEqual(t.Shape), $"{name}: shape [{string.Join(",", t.Shape)}], expected [{string.Join(",", shape)}]");
                if (name.EndsWith("position_ids", StringComparison.Ordinal))
                {
                    Assert.Equal("I64", t.Dtype);
                    for (int i = 0; i < p; i++) Assert.Equal(i, BinaryPrimitives.ReadInt64LittleEndian(t.Data.AsSpan(i * 8)));
                    continue;
                }
                Assert.Equal(options.Dtype.ToString(), t.Dtype);
                float[] values = HfReferenceSelfTests.Decode(t);
                if (name == "generator_lm_head.weight") Assert.Equal(reference.ParameterValues("embeddings.word_embeddings.weight"), values);
                Assert.All(values, v => Assert.Equal(v, HfFloats.Round(v, options.Dtype)));
                if (canonical is null) continue;
                float[] rounded = before[canonical].Select(v => HfFloats.Round(v, options.Dtype)).ToArray();
                Assert.True(values.SequenceEqual(rounded), $"{name}: the file's values are not the reference's rounded to {options.Dtype}");
                Assert.True(reference.ParameterValues(canonical).SequenceEqual(rounded), $"{name}: the reference does not compute with the file's values");
            }
            return stored.Count;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// Options without a meaning for the file are refused: the pre-training head in a bare ElectraModel file or beside a
    /// classifier, a tied generator head where there is none.
    /// </summary>
    [Fact]
    public void Options_that_do_not_apply_are_refused()
    {
        string folder = HfChecks.TemporaryFolder("tg-electra-");
        try
        {
            using HfReference discriminator = HfReference.Create(ConfigPath, Seed);
            Assert.Throws<ArgumentException>(() => discriminator.Save(folder, new HfWriteOptions(IncludeUnusedHeads: true)));
            Assert.Throws<ArgumentException>(() => discriminator.Save(folder, new HfWriteOptions(Prefix: true, KeepTiedCopy: true)));
            using HfReference classifier = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.ElectraClassifier), Seed);
            Assert.Throws<ArgumentException>(() => classifier.Save(folder, new HfWriteOptions(Prefix: true, IncludeUnusedHeads: true)));
            Assert.Throws<InvalidOperationException>(() => discriminator.ClassifierLogits(new int[Length], Enumerable.Repeat(1, Length).ToArray(), 1, Length));
            WithEditedCopy(HfFixtures.Electra, j => j["architectures"] = new JsonArray("ElectraForMaskedLM"), path =>
            {
                using HfReference generator = HfReference.Create(path, Seed);
                Assert.Throws<ArgumentException>(() => generator.Save(folder, new HfWriteOptions(KeepTiedCopy: true)));
                return 0;
            });
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Helpers

    private const int Batch = 3, Length = 9;
    private static readonly int[] Lengths = [Length, 6, 3];

    // Three sequences of 9, 6 and 3 tokens right-padded to 9 with the padding id 0 (mask 0); the first holds the padding id
    // as a real token (position 4); the second is a pair, token type 1 from position 3 on.
    private static (int[] Tokens, int[] Mask, int[] Types) Inputs(int vocab)
    {
        var rng = new Random(3);
        int[] tokens = new int[Batch * Length], mask = new int[Batch * Length], types = new int[Batch * Length];
        for (int b = 0; b < Batch; b++)
            for (int t = 0; t < Lengths[b]; t++)
            {
                int i = b * Length + t;
                (tokens[i], mask[i], types[i]) = (1 + rng.Next(vocab - 1), 1, b == 1 && t >= 3 ? 1 : 0);
            }
        tokens[4] = 0;
        return (tokens, mask, types);
    }

    private static double Relative(double[] expected, double[] actual) => HfChecks.MaxDifference(expected, actual) / expected.Max(Math.Abs);

    private static double[] ReferenceHidden(HfReference reference, int[] tokens, int[] mask, int[] types) =>
        Evaluate(reference, tokens, mask, types, (model, ids, m, t) => model.LastHiddenState(ids, m, t));

    private static double[] ReferenceLogits(HfReference reference, int[] tokens, int[] mask, int[] types) =>
        Evaluate(reference, tokens, mask, types, (model, ids, m, t) => model.ClassifierLogits(ids, m, t));

    private static double[] Evaluate(HfReference reference, int[] tokens, int[] mask, int[] types, Func<HfBert, Tensor, Tensor, Tensor, Tensor> pass)
    {
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        Tensor ids = tensor(tokens.Select(t => (long)t).ToArray(), new long[] { Batch, Length });
        Tensor typeIds = tensor(types.Select(t => (long)t).ToArray(), new long[] { Batch, Length });
        Tensor m = tensor(mask.Select(v => (double)v).ToArray(), new long[] { Batch, Length }).to(reference.Model.Dtype);
        return pass((HfBert)reference.Model, ids, m, typeIds).to(ScalarType.Float64).flatten().data<double>().ToArray();
    }

    private static HfConfig ReadJson(string json)
    {
        string folder = HfChecks.TemporaryFolder("tg-electra-");
        try
        {
            string path = Path.Combine(folder, "config.json");
            File.WriteAllText(path, json);
            return HfConfig.Read(path);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // A copy of a fixture's config.json, changed, used, then deleted.
    private static T WithEditedCopy<T>(string fixture, Action<JsonObject> change, Func<string, T> use)
    {
        string folder = HfChecks.TemporaryFolder("tg-electra-");
        try
        {
            string path = Path.Combine(folder, "config.json");
            JsonObject json = JsonNode.Parse(File.ReadAllText(HfFixtures.ConfigPath(fixture)))!.AsObject();
            change(json);
            File.WriteAllText(path, json.ToJsonString());
            return use(path);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
