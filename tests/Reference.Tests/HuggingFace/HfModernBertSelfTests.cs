using System;
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
/// Checks of the ModernBERT reference (<see cref="HfModernBert"/>) on its own: the config read as ModernBertConfig reads
/// it (transformers 4.48's keys and transformers 5's layer_types and rope_parameters alike), the layers' masks and rotary
/// tables, the last hidden states, sentence embeddings and classifier logits against a plain-loop float64
/// implementation (<see cref="ModernBertWrittenOut"/>), and that the same loops with one plausible mistake do not match
/// them, padding, gradients against central differences in float64, and the files it writes.
/// </summary>
public sealed class HfModernBertSelfTests(ITestOutputHelper output)
{
    private const long Seed = 5772;
    private const int Vocab = 61, E = 36, Heads = 3, HeadDim = 12, Inner = 50, Layers = 4, LocalAttention = 6, Cls = 56, Sep = 57, Pad = 58;
    // The classifier fixture.
    private const int ClassifierVocab = 53, ClassifierE = 30, ClassifierInner = 43, ClassifierLayers = 3, ClassifierCls = 48, ClassifierSep = 49, ClassifierPad = 50, Labels = 3;

    private static string ConfigPath => HfFixtures.ConfigPath(HfFixtures.ModernBert);

    private static string ClassifierPath => HfFixtures.ConfigPath(HfFixtures.ModernBertClassifier);

    private static readonly string[] ModuleFiles = ["modules.json", "1_Pooling/config.json"];

    // ------------------------------------------------------------------------------------------------------------
    // Config

    [Fact]
    public void Config_reads_the_modernbert_keys_and_the_modules()
    {
        HfConfig c = HfConfig.Read(ConfigPath);
        Assert.Equal((HfFamily.ModernBert, "modernbert", Vocab, E, Layers, Heads, HeadDim, Inner, 64, "gelu", 1e-5),
            (c.Family, c.ModelType, c.VocabSize, c.HiddenSize, c.Layers, c.Heads, c.HeadDim, c.IntermediateSize, c.MaxPositions, c.Activation, c.NormEps));
        Assert.Equal((160000.0, 10000.0, LocalAttention, Pad, true, HfEncoderHead.None), (c.RopeTheta, c.RopeLocalTheta, c.LocalAttention, c.PadTokenId, c.TieWordEmbeddings, c.EncoderHead));
        Assert.Equal((false, false, false, false, false, true), (c.NormBias, c.QkvBias, c.OutputBias, c.MlpBias, c.ClassifierBias, c.DecoderBias));
        Assert.Equal([false, true, true, false], c.SlidingLayers);
        Assert.Equal((HfPooling.Mean, true, E, 0, false), (c.Pooling, c.Normalize, c.EmbeddingSize, c.DenseLayers.Length, c.IsDecoder));
        Assert.Equal(ModuleFiles, c.SentenceModuleFiles.Select(f => f.Replace('\\', '/')));

        HfConfig k = HfConfig.Read(ClassifierPath);
        Assert.Equal((HfEncoderHead.SequenceClassification, Labels, HfPooling.Mean, "gelu", ClassifierE, 10, ClassifierLayers, 8, ClassifierPad),
            (k.EncoderHead, k.Labels, k.ClassifierPooling, k.ClassifierActivation, k.HiddenSize, k.HeadDim, k.Layers, k.LocalAttention, k.PadTokenId));
        Assert.Equal([false, true, true], k.SlidingLayers);
        Assert.False(k.HasSentenceModules);
    }

    /// <summary>
    /// ModernBertConfig's defaults where keys are absent (ModernBERT-base: 22 layers of 12 heads of 64, every third global,
    /// θ 160000 and 10000, a window of 128, "cls" pooling in the classifier); the variants (another global period,
    /// layer_types over it, a null local_rope_theta, rope_parameters with and without their θ, the left-over
    /// layer_norm_eps ignored, no padding row, the classifier's architectures); and the refusals.
    /// </summary>
    [Fact]
    public void Config_defaults_are_modernbertconfigs()
    {
        HfConfig d = ReadJson("""{"model_type": "modernbert"}""");
        Assert.Equal((50368, 768, 1152, 22, 12, 64, 8192, "gelu", 1e-5, 50283, true),
            (d.VocabSize, d.HiddenSize, d.IntermediateSize, d.Layers, d.Heads, d.HeadDim, d.MaxPositions, d.Activation, d.NormEps, d.PadTokenId, d.TieWordEmbeddings));
        Assert.Equal((160000.0, 10000.0, 128, false, false, false, false), (d.RopeTheta, d.RopeLocalTheta, d.LocalAttention, d.NormBias, d.QkvBias, d.OutputBias, d.MlpBias));
        Assert.Equal((HfPooling.Cls, false, "gelu", true, HfEncoderHead.None, 2), (d.ClassifierPooling, d.ClassifierBias, d.ClassifierActivation, d.DecoderBias, d.EncoderHead, d.Labels));
        Assert.Equal(Enumerable.Range(0, 22).Select(i => i % 3 != 0), d.SlidingLayers);

        Assert.Equal([false, true, false, true, false], ReadJson("""{"model_type": "modernbert", "num_hidden_layers": 5, "global_attn_every_n_layers": 2}""").SlidingLayers);
        Assert.Equal([false, false, true], ReadJson("""{"model_type": "modernbert", "num_hidden_layers": 3, "global_attn_every_n_layers": 3, "layer_types": ["full_attention", "full_attention", "sliding_attention"]}""").SlidingLayers);
        HfConfig nullLocal = ReadJson("""{"model_type": "modernbert", "global_rope_theta": 50000.0, "local_rope_theta": null}""");
        Assert.Equal((50000.0, 50000.0), (nullLocal.RopeTheta, nullLocal.RopeLocalTheta));
        HfConfig rope = ReadJson("""{"model_type": "modernbert", "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 200000.0}, "sliding_attention": {"rope_type": "default", "rope_theta": 20000.0}}}""");
        Assert.Equal((200000.0, 20000.0), (rope.RopeTheta, rope.RopeLocalTheta));
        HfConfig partial = ReadJson("""{"model_type": "modernbert", "local_rope_theta": 30000.0, "rope_parameters": {"full_attention": {"rope_type": "default"}}}""");
        Assert.Equal((160000.0, 30000.0), (partial.RopeTheta, partial.RopeLocalTheta));
        Assert.Equal(1e-6, ReadJson("""{"model_type": "modernbert", "norm_eps": 1e-6, "layer_norm_eps": 1e-12}""").NormEps);
        Assert.Equal(-1, ReadJson("""{"model_type": "modernbert", "pad_token_id": null}""").PadTokenId);
        HfConfig classifier = ReadJson("""{"model_type": "modernbert", "architectures": ["ModernBertForSequenceClassification"], "num_labels": 5, "classifier_pooling": "mean", "classifier_bias": true}""");
        Assert.Equal((HfEncoderHead.SequenceClassification, 5, HfPooling.Mean, true), (classifier.EncoderHead, classifier.Labels, classifier.ClassifierPooling, classifier.ClassifierBias));
        Assert.Equal(HfEncoderHead.None, ReadJson("""{"model_type": "modernbert", "architectures": ["ModernBertForMaskedLM"]}""").EncoderHead);

        Assert.Throws<NotSupportedException>(() => ReadJson("""{"model_type": "modernbert", "rope_scaling": {"rope_type": "linear", "factor": 2.0}}"""));
        Assert.Throws<NotSupportedException>(() => ReadJson("""{"model_type": "modernbert", "rope_parameters": {"sliding_attention": {"rope_type": "yarn", "factor": 4.0}}}"""));
        Assert.Equal(HfEncoderHead.TokenClassification, ReadJson("""{"model_type": "modernbert", "architectures": ["ModernBertForTokenClassification"]}""").EncoderHead);
        Assert.Throws<NotSupportedException>(() => ReadJson("""{"model_type": "modernbert", "architectures": ["ModernBertForQuestionAnswering"]}"""));
        Assert.Throws<NotSupportedException>(() => ReadJson("""{"model_type": "modernbert", "hidden_activation": "geglu"}"""));
        Assert.Throws<InvalidDataException>(() => ReadJson("""{"model_type": "modernbert", "classifier_pooling": "max"}"""));
        Assert.Throws<InvalidDataException>(() => ReadJson("""{"model_type": "modernbert", "hidden_size": 36, "num_attention_heads": 5}"""));
        Assert.Throws<InvalidDataException>(() => ReadJson("""{"model_type": "modernbert", "hidden_size": 27, "num_attention_heads": 3}""")); // head_dim 9
        Assert.Throws<InvalidDataException>(() => ReadJson("""{"model_type": "modernbert", "num_hidden_layers": 2, "layer_types": ["full_attention"]}"""));
        Assert.Throws<InvalidDataException>(() => ReadJson("""{"model_type": "modernbert", "num_hidden_layers": 1, "layer_types": ["chunked_attention"]}"""));
        Assert.Throws<InvalidDataException>(() => ReadJson("""{"model_type": "modernbert", "vocab_size": 10, "pad_token_id": 10}"""));
        Assert.Throws<InvalidDataException>(() => ReadJson("""{"model_type": "modernbert", "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}}"""));
    }

    /// <summary>
    /// The fixture rewritten as transformers 5 writes it (layer_types and rope_parameters per layer kind instead of
    /// global_attn_every_n_layers, global_rope_theta and local_rope_theta) reads to the same layers and θ and gives the same
    /// hidden states bit for bit; the same file with every layer full_attention does not.
    /// </summary>
    [Fact]
    public void Transformers5_layer_types_and_rope_parameters_read_alike()
    {
        void Rewrite(JsonObject j, string[] kinds)
        {
            j.Remove("global_attn_every_n_layers");
            j.Remove("global_rope_theta");
            j.Remove("local_rope_theta");
            j["layer_types"] = new JsonArray(kinds.Select(k => (JsonNode)JsonValue.Create(k)!).ToArray());
            j["rope_parameters"] = JsonNode.Parse("""{"full_attention": {"rope_theta": 160000.0, "rope_type": "default"}, "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}}""");
            j["transformers_version"] = "5.0.0";
        }
        string[] pattern = Enumerable.Range(0, Layers).Select(i => i % 3 == 0 ? "full_attention" : "sliding_attention").ToArray();
        (int[] tokens, int[] mask) = Inputs();
        using HfReference old = HfReference.Create(ConfigPath, Seed);
        float[] expected = old.LastHiddenState(tokens, Batch, Length, mask);

        (HfConfig config, float[] hidden) = WithEditedCopy(HfFixtures.ModernBert, j => Rewrite(j, pattern), path =>
        {
            using HfReference reference = HfReference.Create(path, Seed);
            return (HfConfig.Read(path), reference.LastHiddenState(tokens, Batch, Length, mask));
        });
        Assert.Equal([false, true, true, false], config.SlidingLayers);
        Assert.Equal((160000.0, 10000.0), (config.RopeTheta, config.RopeLocalTheta));
        Assert.Equal(expected, hidden);

        float[] allGlobal = WithEditedCopy(HfFixtures.ModernBert, j => Rewrite(j, Enumerable.Repeat("full_attention", Layers).ToArray()), path =>
        {
            using HfReference reference = HfReference.Create(path, Seed);
            return reference.LastHiddenState(tokens, Batch, Length, mask);
        });
        double moved = HfChecks.RelativeMax(allGlobal, expected);
        output.WriteLine($"every layer full_attention moves the hidden states by {moved:E2} of the largest");
        Assert.True(moved > 1e-2, "the layer kinds hardly matter: the test would prove nothing");
    }

    // ------------------------------------------------------------------------------------------------------------
    // Masks and rotary tables

    /// <summary>
    /// Layers 0 and 3 global, 1 and 2 local; a local layer's query i sees key j iff |i − j| ≤ 6 // 2 = 3, a global one every
    /// key; with padding, finfo.min (once) on every hidden key, 0 elsewhere.
    /// </summary>
    [Fact]
    public void Local_layers_see_half_the_window_on_either_side()
    {
        const int length = 10;
        foreach (ScalarType dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
        {
            using HfReference reference = HfReference.Create(ConfigPath, Seed, dtype);
            var model = (HfModernBert)reference.Model;
            Assert.Equal([false, true, true, false], Enumerable.Range(0, Layers).Select(model.IsLocal).ToArray());
            using DisposeScope scope = NewDisposeScope();
            bool[] local = model.Visible(length, local: true).flatten().data<bool>().ToArray();
            Assert.All(model.Visible(length, local: false).flatten().data<bool>().ToArray(), v => Assert.True(v));
            for (int i = 0; i < length; i++)
                for (int j = 0; j < length; j++)
                    Assert.True(local[i * length + j] == Math.Abs(i - j) <= LocalAttention / 2, $"local ({i}, {j})");

            int[] keep = [1, 1, 1, 1, 1, 1, 1, 0, 0, 0];
            Tensor attention = tensor(keep.Select(v => (double)v).ToArray(), new long[] { 1, length }).to(dtype);
            double min = dtype == ScalarType.Float32 ? float.MinValue : double.MinValue;
            foreach (bool isLocal in new[] { false, true })
            {
                double[] additive = model.AdditiveMask(attention, 1, length, isLocal).to(ScalarType.Float64).flatten().data<double>().ToArray();
                Assert.Equal(length * length, additive.Length);
                for (int i = 0; i < length; i++)
                    for (int j = 0; j < length; j++)
                    {
                        bool visible = keep[j] == 1 && (!isLocal || Math.Abs(i - j) <= LocalAttention / 2);
                        Assert.Equal(visible ? 0.0 : min, additive[i * length + j]);
                    }
            }
        }
    }

    /// <summary>
    /// The rotary tables, half-split (channel j and j + D/2 share frequency j): the global layers' from θ = 160000, the local
    /// layers' from θ = 10000; inv_freq exactly the float32 1 / θ^(2j/D) that the written-out model computes, the angles
    /// float32. The float32 model's cos and sin are within an ulp of float32 of the angles', the float64 model's the
    /// angles' to double precision.
    /// </summary>
    [Fact]
    public void Rotary_tables_use_the_two_bases()
    {
        const int length = 12, half = HeadDim / 2;
        foreach (ScalarType dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
        {
            using HfReference reference = HfReference.Create(ConfigPath, Seed, dtype);
            var model = (HfModernBert)reference.Model;
            using DisposeScope scope = NewDisposeScope();
            foreach (bool local in new[] { true, false })
            {
                float theta = local ? 1e4f : 1.6e5f;
                float[] inverse = model.InverseFrequencies(theta).data<float>().ToArray();
                for (int j = 0; j < half; j++) Assert.Equal(1f / (float)Math.Pow(theta, (float)(2 * j) / HeadDim), inverse[j]);

                (Tensor cos, Tensor sin) = model.RotaryTables(length, local);
                Assert.Equal(new long[] { length, HeadDim }, cos.shape);
                double[] c = cos.to(ScalarType.Float64).flatten().data<double>().ToArray(), s = sin.to(ScalarType.Float64).flatten().data<double>().ToArray();
                double worst = 0;
                for (int p = 0; p < length; p++)
                    for (int j = 0; j < HeadDim; j++)
                    {
                        float angle = p * inverse[j % half];
                        worst = Math.Max(worst, Math.Max(Math.Abs(c[p * HeadDim + j] - Math.Cos(angle)), Math.Abs(s[p * HeadDim + j] - Math.Sin(angle))));
                        if (j < half) Assert.Equal(c[p * HeadDim + j], c[p * HeadDim + j + half]);
                    }
                output.WriteLine($"{dtype} {(local ? "local" : "global")}: largest difference from cos/sin of the float32 angles {worst:E2}");
                Assert.True(worst <= (dtype == ScalarType.Float32 ? 1.2e-7 : 1e-15), $"{dtype} {(local ? "local" : "global")} table: off by {worst:E2}");
            }
            // Frequency 1 (j = 1 of 6) turns 10000^(−1/6) ≈ 0.215 per position on a local layer, 160000^(−1/6) ≈ 0.136 on a global one.
            Assert.Equal(Math.Cos(8 * Math.Pow(1e4, -1.0 / 6)), model.RotaryTables(9, local: true).Cos[8, 1].to(ScalarType.Float64).item<double>(), 5);
            Assert.Equal(Math.Cos(8 * Math.Pow(1.6e5, -1.0 / 6)), model.RotaryTables(9, local: false).Cos[8, 1].to(ScalarType.Float64).item<double>(), 5);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // The model written out

    /// <summary>
    /// The float64 reference's last hidden states of a padded batch (12 positions, four times the half window; rows of 12, 8
    /// and 4 real tokens, one a real token with the padding id) equal ModernBERT written out with plain loops to 1e-12 of
    /// the largest, padded positions included (the 4-token row's last positions see no real key on the local layers).
    /// </summary>
    [Fact]
    public void Hidden_states_equal_the_model_written_out()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        (int[] tokens, int[] mask) = Inputs();
        double[] expected = ReferenceHidden(reference, tokens, mask);
        double error = HfChecks.MaxDifference(expected, new ModernBertWrittenOut(reference, reference.Model.Config).Hidden(tokens, mask, Batch, Length)) / expected.Max(Math.Abs);
        output.WriteLine($"largest hidden value {expected.Max(Math.Abs):F3}; written out vs reference {error:E2} of it");
        Assert.True(error < 1e-12, $"the written-out model differs from the reference by {error:E2} of the largest hidden value");
    }

    /// <summary>
    /// The same, and the sentence embeddings, with the options no released model uses switched on in a copy of the config:
    /// norm_bias (every LayerNorm's bias), attention_bias (Wqkv, Wo), mlp_bias (Wi, Wo), the tanh GELU and a global layer
    /// every second one. Layer 0 still has no attn_norm.
    /// </summary>
    [Fact]
    public void Biases_and_the_tanh_gelu_follow_the_model_written_out()
    {
        (int[] tokens, int[] mask) = Inputs();
        (double hidden, double embeddings) = WithEditedCopy(HfFixtures.ModernBert, j =>
        {
            j["norm_bias"] = true;
            j["attention_bias"] = true;
            j["mlp_bias"] = true;
            j["hidden_activation"] = "gelu_pytorch_tanh";
            j["global_attn_every_n_layers"] = 2;
        }, path =>
        {
            using HfReference reference = HfReference.Create(path, Seed, ScalarType.Float64);
            foreach (string name in new[] { "embeddings.norm.bias", "layers.0.attn.Wqkv.bias", "layers.0.attn.Wo.bias", "layers.1.attn_norm.bias", "layers.2.mlp.Wi.bias", "layers.3.mlp.Wo.bias", "final_norm.bias" })
                Assert.Contains(name, reference.ParameterNames);
            Assert.DoesNotContain(reference.ParameterNames, n => n.StartsWith("layers.0.attn_norm", StringComparison.Ordinal));
            Assert.Equal([false, true, false, true], reference.Model.Config.SlidingLayers);
            var written = new ModernBertWrittenOut(reference, reference.Model.Config);
            double[] expected = ReferenceHidden(reference, tokens, mask);
            double hiddenError = HfChecks.MaxDifference(expected, written.Hidden(tokens, mask, Batch, Length)) / expected.Max(Math.Abs);
            double embeddingError = HfChecks.MaxDifference(ReferenceEmbeddings(reference, tokens, mask, cls: false), written.Embeddings(tokens, mask, Batch, Length, cls: false));
            return (hiddenError, embeddingError);
        });
        output.WriteLine($"with biases, tanh GELU, every second layer global: hidden states {hidden:E2} of the largest, embeddings {embeddings:E2}");
        Assert.True(hidden < 1e-12 && embeddings < 1e-12, $"the written-out model differs: hidden {hidden:E2}, embeddings {embeddings:E2}");
    }

    /// <summary>
    /// The comparisons can fail: the same loops with any one mistake (a norm on layer 0, the window's bound exclusive, the
    /// two θ exchanged, the global layers off by one, the activation on the gate, interleaved rotary pairs, no final norm,
    /// the padding visible) miss the reference's hidden states by more than 1e-3 of the largest.
    /// </summary>
    [Fact]
    public void Written_out_models_with_a_mistake_do_not_match()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        (int[] tokens, int[] mask) = Inputs();
        double[] expected = ReferenceHidden(reference, tokens, mask);
        double scale = expected.Max(Math.Abs);
        foreach (ModernBertMistake mistake in Enum.GetValues<ModernBertMistake>().Where(m => m != ModernBertMistake.None))
        {
            double error = HfChecks.MaxDifference(expected, new ModernBertWrittenOut(reference, reference.Model.Config, mistake).Hidden(tokens, mask, Batch, Length)) / scale;
            output.WriteLine($"{mistake}: {error:E2} of the largest hidden value");
            Assert.True(error > 1e-3, $"{mistake}: the written-out model still matches the reference ({error:E2})");
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Sentence embeddings

    /// <summary>
    /// The float64 reference's sentence embeddings (the folder's mean pooling, and token 0 as gte-modernbert-base pools)
    /// equal the written-out model's pooling and normalization to 1e-12; the float32 ones (HfReference's public entry
    /// point) follow them to 1e-5.
    /// </summary>
    [Fact]
    public void Embeddings_equal_the_model_written_out()
    {
        using HfReference precise = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        using HfReference single = HfReference.Create(ConfigPath, Seed);
        (int[] tokens, int[] mask) = Inputs();
        var written = new ModernBertWrittenOut(precise, precise.Model.Config);
        foreach (bool cls in new[] { false, true })
        {
            double[] expected = ReferenceEmbeddings(precise, tokens, mask, cls);
            double error = HfChecks.MaxDifference(expected, written.Embeddings(tokens, mask, Batch, Length, cls));
            double precision = HfChecks.MaxDifference(expected, single.SentenceEmbeddings(tokens, mask, Batch, Length, cls).Select(v => (double)v).ToArray());
            output.WriteLine($"{(cls ? "[CLS]" : "mean")} pooling: written out vs reference {error:E2}; float32 vs float64 {precision:E2}");
            Assert.Equal(Batch * E, expected.Length);
            Assert.True(error < 1e-12, $"the written-out embeddings differ from the reference by {error:E2}");
            Assert.True(precision < 1e-5, $"float32 vs float64 embeddings: {precision:E2}");
        }
    }

    /// <summary>
    /// A right-padded row's embedding equals its sentence alone at its own length (the positions count from 0 either way
    /// and the padding keys are hidden on every layer), and each is of unit length; unmasked, the padding moves it.
    /// </summary>
    [Fact]
    public void Sentence_embedding_ignores_padding()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        (int[] tokens, int[] mask) = Inputs();
        int real = Lengths[1];
        float[] padded = reference.SentenceEmbeddings(tokens, mask, Batch, Length);
        int[] sentence = tokens[Length..(Length + real)];
        float[] alone = reference.SentenceEmbeddings(sentence, Enumerable.Repeat(1, real).ToArray(), 1, real);
        float[] unmasked = reference.SentenceEmbeddings(tokens[Length..(2 * Length)], Enumerable.Repeat(1, Length).ToArray(), 1, Length);
        double paddingError = HfChecks.MaxDifference(padded[E..(2 * E)].Select(v => (double)v).ToArray(), alone.Select(v => (double)v).ToArray());
        double withoutMask = HfChecks.MaxDifference(unmasked.Select(v => (double)v).ToArray(), alone.Select(v => (double)v).ToArray());
        output.WriteLine($"padded vs alone {paddingError:E2}; padding left unmasked moves it by {withoutMask:E2}");
        Assert.True(paddingError < 1e-6, $"padding changed the embedding by {paddingError:E2}");
        Assert.True(withoutMask > 1e-2, "the padding hardly matters even unmasked: the test would prove nothing");
        for (int b = 0; b < Batch; b++) Assert.Equal(1.0, Math.Sqrt(padded.Skip(b * E).Take(E).Sum(v => (double)v * v)), 6);
    }

    // ------------------------------------------------------------------------------------------------------------
    // The classifier

    /// <summary>
    /// ModernBertForSequenceClassification's logits (mean pooling without a clamp, dense, GELU, head.norm, classifier) equal
    /// the written-out model's to 1e-12 of the largest, and so do a copy's with [CLS] pooling, classifier_bias and
    /// norm_bias; the float32 logits of HfReference.ClassifierLogits follow, a right-padded row equals its sentence alone,
    /// and the loss is the mean cross-entropy of those logits.
    /// </summary>
    [Fact]
    public void Classifier_logits_equal_the_model_written_out()
    {
        (int[] tokens, int[] mask) = Inputs(ClassifierCls, ClassifierSep, ClassifierPad);
        double Compare(string path, string what)
        {
            using HfReference reference = HfReference.Create(path, Seed, ScalarType.Float64);
            double[] expected = ReferenceLogits(reference, tokens, mask);
            double error = HfChecks.MaxDifference(expected, new ModernBertWrittenOut(reference, reference.Model.Config).ClassifierLogits(tokens, mask, Batch, Length)) / expected.Max(Math.Abs);
            output.WriteLine($"{what}: largest logit {expected.Max(Math.Abs):F3}, written out vs reference {error:E2} of it");
            return error;
        }
        Assert.True(Compare(ClassifierPath, "mean pooling") < 1e-12);
        double variant = WithEditedCopy(HfFixtures.ModernBertClassifier, j =>
        {
            j["classifier_pooling"] = "cls";
            j["classifier_bias"] = true;
            j["norm_bias"] = true;
        }, path =>
        {
            using HfReference reference = HfReference.Create(path, Seed);
            Assert.Contains("head.dense.bias", reference.ParameterNames);
            Assert.Contains("head.norm.bias", reference.ParameterNames);
            return Compare(path, "[CLS] pooling, classifier_bias, norm_bias");
        });
        Assert.True(variant < 1e-12);

        using HfReference precise = HfReference.Create(ClassifierPath, Seed, ScalarType.Float64);
        using HfReference single = HfReference.Create(ClassifierPath, Seed);
        float[] logits = single.ClassifierLogits(tokens, mask, Batch, Length);
        double precision = HfChecks.MaxDifference(ReferenceLogits(precise, tokens, mask), logits.Select(v => (double)v).ToArray());
        int real = Lengths[1];
        float[] alone = single.ClassifierLogits(tokens[Length..(Length + real)], Enumerable.Repeat(1, real).ToArray(), 1, real);
        double paddingError = HfChecks.MaxDifference(logits[Labels..(2 * Labels)].Select(v => (double)v).ToArray(), alone.Select(v => (double)v).ToArray());
        output.WriteLine($"float32 vs float64 logits {precision:E2}; padded row vs alone {paddingError:E2}");
        Assert.Equal(Batch * Labels, logits.Length);
        Assert.True(precision < 1e-5 && paddingError < 1e-5, $"float32 {precision:E2}, padding {paddingError:E2}");

        int[] labels = [2, 0, 1];
        (float loss, Dictionary<string, float[]> gradients) = single.ClassifierLossAndGradients(tokens, mask, labels, Batch, Length);
        double crossEntropy = Enumerable.Range(0, Batch).Average(b =>
        {
            double[] row = logits.Skip(b * Labels).Take(Labels).Select(v => (double)v).ToArray();
            double top = row.Max();
            return top + Math.Log(row.Sum(v => Math.Exp(v - top))) - row[labels[b]];
        });
        Assert.Equal(crossEntropy, loss, 5);
        Assert.Equal(single.ParameterNames.Order(StringComparer.Ordinal), gradients.Keys.Order(StringComparer.Ordinal));
        Assert.Throws<ArgumentException>(() => single.ClassifierLogits(tokens, mask, Batch, Length, tokenTypes: new int[Batch * Length]));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Gradients

    /// <summary>
    /// The float64 reference's gradients of Σ embeddings ⊙ upstream against central differences: the token table (not its
    /// padding row, which gets none though the batch reads it as a real token and as padding), each norm kind, the query,
    /// key and value rows of Wqkv on global and local layers, Wo, both halves of Wi, the MLP's Wo; every parameter gets a
    /// gradient, under the names of the file; float32 follows float64.
    /// </summary>
    [Fact]
    public void Gradients_match_central_differences()
    {
        using HfReference precise = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        using HfReference single = HfReference.Create(ConfigPath, Seed);
        (int[] tokens, int[] mask) = Inputs();
        float[] upstream = HfChecks.Normals(Batch * E, seed: 10).Select(v => (float)v).ToArray();
        Dictionary<string, float[]> gradients = precise.EmbeddingGradients(tokens, mask, Batch, Length, upstream);
        Assert.Equal(precise.ParameterNames.Order(StringComparer.Ordinal), gradients.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(2 + Layers * 6 - 1 + 1, gradients.Count); // table, embedding norm; 6 a layer but layer 0's attn_norm; final_norm

        (string, int, int)[] ranges =
        [
            (HfModernBert.TokenEmbeddings, 0, Vocab * E),
            ("embeddings.norm.weight", 0, E),
            ("layers.0.attn.Wqkv.weight", 0, E * E),                    // queries, a global layer
            ("layers.1.attn.Wqkv.weight", E * E, 2 * E * E),            // keys, a local layer
            ("layers.2.attn.Wqkv.weight", 2 * E * E, 3 * E * E),        // values
            ("layers.3.attn.Wo.weight", 0, E * E),
            ("layers.1.attn_norm.weight", 0, E),
            ("layers.0.mlp_norm.weight", 0, E),
            ("layers.2.mlp.Wi.weight", 0, Inner * E),                   // the activation's input
            ("layers.2.mlp.Wi.weight", Inner * E, 2 * Inner * E),       // the gate
            ("layers.3.mlp.Wo.weight", 0, E * Inner),
            ("final_norm.weight", 0, E),
        ];
        CentralDifferences.Check(precise, gradients, ranges, seed: 11,
            () => CentralDifferences.Evaluate(() => precise.EmbeddingObjective(tokens, mask, Batch, Length, upstream)), output.WriteLine);

        Assert.Contains(Pad, tokens[..Lengths[0]]);
        Assert.All(gradients[HfModernBert.TokenEmbeddings][(Pad * E)..((Pad + 1) * E)], v => Assert.Equal(0f, v));
        CompareSingle(gradients, single.EmbeddingGradients(tokens, mask, Batch, Length, upstream));
    }

    /// <summary>
    /// With every bias switched on (a copy of the config), the float64 gradients of Σ last_hidden_state ⊙ upstream (zero at
    /// the padded positions) against central differences for each bias kind: the embedding norm's, Wqkv's query, key and
    /// value rows, Wi's, Wo's, attn_norm's and the final norm's. Unlike BERT's, the key bias is not lost to the softmax: it
    /// is rotated with its key's position, so q·R(s)·b differs from key to key.
    /// </summary>
    [Fact]
    public void Hidden_state_gradients_of_the_biases_match_central_differences()
    {
        (int[] tokens, int[] mask) = Inputs();
        WithEditedCopy(HfFixtures.ModernBert, j =>
        {
            j["norm_bias"] = true;
            j["attention_bias"] = true;
            j["mlp_bias"] = true;
        }, path =>
        {
            using HfReference precise = HfReference.Create(path, Seed, ScalarType.Float64);
            // Nothing flows back from the padded positions: the 4-token row's last ones see no key on the local layers, their
            // scores all s + finfo.min = finfo.min, a constant to the float64 sum, while autograd still differentiates the
            // softmax there (as transformers' would), so the central differences could not follow.
            float[] upstream = HfChecks.Normals(Batch * Length * E, seed: 12).Select((v, i) => mask[i / E] == 1 ? (float)v : 0f).ToArray();
            Dictionary<string, float[]> gradients = precise.HiddenStateGradients(tokens, Batch, Length, upstream, mask);
            Assert.Equal(precise.ParameterNames.Order(StringComparer.Ordinal), gradients.Keys.Order(StringComparer.Ordinal));
            (string, int, int)[] ranges =
            [
                ("embeddings.norm.bias", 0, E),
                ("layers.1.attn.Wqkv.bias", 0, E),
                ("layers.0.attn.Wqkv.bias", E, 2 * E),
                ("layers.3.attn.Wqkv.bias", 2 * E, 3 * E),
                ("layers.2.attn.Wo.bias", 0, E),
                ("layers.2.attn_norm.bias", 0, E),
                ("layers.0.mlp.Wi.bias", 0, 2 * Inner),
                ("layers.1.mlp.Wo.bias", 0, E),
                ("final_norm.bias", 0, E),
            ];
            CentralDifferences.Check(precise, gradients, ranges, seed: 13,
                () => CentralDifferences.Evaluate(() => precise.HiddenStateObjective(tokens, Batch, Length, upstream, mask)), output.WriteLine);
            return 0;
        });
    }

    /// <summary>
    /// The classifier's float64 gradients of Σ logits ⊙ upstream against central differences (the head's dense and norm,
    /// the classifier's weight and bias, a layer, the token table); float32 follows float64.
    /// </summary>
    [Fact]
    public void Classifier_gradients_match_central_differences()
    {
        using HfReference precise = HfReference.Create(ClassifierPath, Seed, ScalarType.Float64);
        using HfReference single = HfReference.Create(ClassifierPath, Seed);
        (int[] tokens, int[] mask) = Inputs(ClassifierCls, ClassifierSep, ClassifierPad);
        float[] upstream = HfChecks.Normals(Batch * Labels, seed: 14).Select(v => (float)v).ToArray();
        Dictionary<string, float[]> gradients = precise.ClassifierGradients(tokens, mask, Batch, Length, upstream);
        Assert.Equal(precise.ParameterNames.Order(StringComparer.Ordinal), gradients.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["head.dense.weight", "head.norm.weight", "classifier.weight", "classifier.bias"], precise.ParameterNames.TakeLast(4));
        const int e = ClassifierE;
        (string, int, int)[] ranges =
        [
            ("head.dense.weight", 0, e * e),
            ("head.norm.weight", 0, e),
            ("classifier.weight", 0, Labels * e),
            ("classifier.bias", 0, Labels),
            ("layers.1.attn.Wqkv.weight", 0, 3 * e * e),
            ("layers.2.mlp.Wi.weight", 0, 2 * ClassifierInner * e),
            (HfModernBert.TokenEmbeddings, 0, ClassifierVocab * e),
        ];
        CentralDifferences.Check(precise, gradients, ranges, seed: 15,
            () => CentralDifferences.Evaluate(() => precise.ClassifierObjective(tokens, mask, Batch, Length, upstream)), output.WriteLine);
        CompareSingle(gradients, single.ClassifierGradients(tokens, mask, Batch, Length, upstream));
    }

    // Every gradient nonzero, and the float32 ones within 1e-4 of the tensor's norm of the float64 ones.
    private void CompareSingle(Dictionary<string, float[]> precise, Dictionary<string, float[]> single)
    {
        double worst = 0;
        string worstName = "";
        foreach ((string name, float[] g) in precise)
        {
            double norm = Math.Sqrt(g.Sum(v => (double)v * v));
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
        { HfFixtures.ModernBert, new HfWriteOptions() },
        { HfFixtures.ModernBert, new HfWriteOptions(Prefix: true) },
        { HfFixtures.ModernBert, new HfWriteOptions(Dtype: HfDtype.BF16, Prefix: true, IncludeUnusedHeads: true) },
        { HfFixtures.ModernBert, new HfWriteOptions(Dtype: HfDtype.F16, Shards: 2, KeepTiedCopy: true) },
        { HfFixtures.ModernBertClassifier, new HfWriteOptions() },
        { HfFixtures.ModernBertClassifier, new HfWriteOptions(Dtype: HfDtype.BF16, Prefix: true, Shards: 3) },
    };

    /// <summary>
    /// A saved folder: config.json and the sentence-transformers files copied byte for byte; exactly ModernBertModel's names
    /// (no attn_norm on layer 0, no biases), bare or with <c>model.</c>, the classifier's head and classifier never
    /// prefixed; with <c>IncludeUnusedHeads</c> in the MaskedLM layout ModernBertForMaskedLM's head.dense, head.norm and
    /// decoder.bias; with <c>KeepTiedCopy</c> decoder.weight, the token table's copy; every value the reference's rounded to
    /// the dtype, which the reference then computes with.
    /// </summary>
    [Theory]
    [MemberData(nameof(FileVariants))]
    public void Saved_files_hold_modernbert_names(string fixture, HfWriteOptions options)
    {
        string folder = HfChecks.TemporaryFolder("tg-modernbert-");
        try
        {
            string configPath = HfFixtures.ConfigPath(fixture);
            using HfReference reference = HfReference.Create(configPath, Seed);
            HfConfig c = reference.Model.Config;
            long e = c.HiddenSize, inner = c.IntermediateSize, vocab = c.VocabSize;
            Dictionary<string, float[]> before = reference.ParameterNames.ToDictionary(n => n, reference.ParameterValues);
            reference.Save(folder, options);
            string source = Path.GetDirectoryName(configPath)!;
            foreach (string file in c.SentenceModuleFiles.Prepend("config.json"))
                Assert.Equal(File.ReadAllBytes(Path.Combine(source, file)), File.ReadAllBytes(Path.Combine(folder, file)));
            Assert.False(Directory.Exists(Path.Combine(folder, "2_Normalize")));

            var expected = new Dictionary<string, (long[] Shape, string? Canonical)>(StringComparer.Ordinal);
            void Weight(string name, params long[] shape) => expected.Add(options.Prefix ? "model." + name : name, (shape, name));
            void Head(string name, bool parameter, params long[] shape) => expected.Add(name, (shape, parameter ? name : null));
            Weight(HfModernBert.TokenEmbeddings, vocab, e);
            Weight("embeddings.norm.weight", e);
            for (int i = 0; i < c.Layers; i++)
            {
                if (i > 0) Weight($"layers.{i}.attn_norm.weight", e);
                Weight($"layers.{i}.attn.Wqkv.weight", 3 * e, e);
                Weight($"layers.{i}.attn.Wo.weight", e, e);
                Weight($"layers.{i}.mlp_norm.weight", e);
                Weight($"layers.{i}.mlp.Wi.weight", 2 * inner, e);
                Weight($"layers.{i}.mlp.Wo.weight", e, inner);
            }
            Weight("final_norm.weight", e);
            if (c.EncoderHead == HfEncoderHead.SequenceClassification)
            {
                Head("head.dense.weight", true, e, e);
                Head("head.norm.weight", true, e);
                Head("classifier.weight", true, Labels, e);
                Head("classifier.bias", true, Labels);
            }
            else if (options.IncludeUnusedHeads && options.Prefix)
            {
                Head("head.dense.weight", false, e, e);
                Head("head.norm.weight", false, e);
                Head("decoder.bias", false, vocab);
            }
            if (options.KeepTiedCopy) Head("decoder.weight", false, vocab, e);

            Dictionary<string, HfReferenceSelfTests.StoredTensor> stored = HfReferenceSelfTests.ReadFolder(folder, options.Shards);
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), stored.Keys.Order(StringComparer.Ordinal));
            float[] table = reference.ParameterValues(HfModernBert.TokenEmbeddings);
            foreach ((string name, (long[] shape, string? canonical)) in expected)
            {
                HfReferenceSelfTests.StoredTensor t = stored[name];
                Assert.Equal(options.Dtype.ToString(), t.Dtype);
                Assert.True(shape.SequenceEqual(t.Shape), $"{name}: shape [{string.Join(",", t.Shape)}], expected [{string.Join(",", shape)}]");
                float[] values = HfReferenceSelfTests.Decode(t);
                if (name == "decoder.weight") Assert.Equal(table, values);
                if (canonical is null) continue;
                float[] rounded = before[canonical].Select(v => HfFloats.Round(v, options.Dtype)).ToArray();
                Assert.True(values.SequenceEqual(rounded), $"{name}: the file's values are not the reference's rounded to {options.Dtype}");
                Assert.True(reference.ParameterValues(canonical).SequenceEqual(rounded), $"{name}: the reference does not compute with the file's values");
            }
            if (options.IncludeUnusedHeads && options.Prefix)
                Assert.NotEqual(HfReferenceSelfTests.Decode(stored["head.norm.weight"]), HfReferenceSelfTests.Decode(stored["model.final_norm.weight"]));
            output.WriteLine($"{fixture} {options}: {stored.Count} tensors");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Options without a meaning for ModernBERT are refused: gamma/beta names, a tied copy of a classifier's (absent) decoder.</summary>
    [Fact]
    public void Options_that_do_not_apply_are_refused()
    {
        string folder = HfChecks.TemporaryFolder("tg-modernbert-");
        try
        {
            using HfReference reference = HfReference.Create(ConfigPath, Seed);
            Assert.Throws<ArgumentException>(() => reference.Save(folder, new HfWriteOptions(LegacyGammaBeta: true)));
            using HfReference classifier = HfReference.Create(ClassifierPath, Seed);
            Assert.Throws<ArgumentException>(() => classifier.Save(folder, new HfWriteOptions(KeepTiedCopy: true)));
            Assert.Throws<InvalidOperationException>(() => reference.ClassifierLogits(new int[Length], Enumerable.Repeat(1, Length).ToArray(), 1, Length));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Helpers

    private const int Batch = 3, Length = 12;
    private static readonly int[] Lengths = [Length, 8, 4];

    // Three sequences of [CLS] words [SEP], of 12, 8 and 4 tokens, right-padded to 12; the first holds the padding id as a
    // real token (position 5).
    private static (int[] Tokens, int[] Mask) Inputs(int cls = Cls, int sep = Sep, int pad = Pad)
    {
        var rng = new Random(3);
        var tokens = new int[Batch * Length];
        var mask = new int[Batch * Length];
        for (int b = 0; b < Batch; b++)
            for (int t = 0; t < Length; t++)
            {
                int i = b * Length + t, real = Lengths[b];
                (tokens[i], mask[i]) = t == 0 ? (cls, 1) : t == real - 1 ? (sep, 1) : t < real ? (rng.Next(cls), 1) : (pad, 0);
            }
        tokens[5] = pad;
        return (tokens, mask);
    }

    private static (Tensor Ids, Tensor Mask) Tensors(HfReference reference, int[] tokens, int[] mask) =>
        (tensor(tokens.Select(t => (long)t).ToArray(), new long[] { Batch, Length }),
         tensor(mask.Select(v => (double)v).ToArray(), new long[] { Batch, Length }).to(reference.Model.Dtype));

    private static double[] ReferenceHidden(HfReference reference, int[] tokens, int[] mask) =>
        Evaluate(reference, tokens, mask, (model, ids, m) => model.LastHiddenState(ids, m));

    private static double[] ReferenceEmbeddings(HfReference reference, int[] tokens, int[] mask, bool cls) =>
        Evaluate(reference, tokens, mask, (model, ids, m) => model.SentenceEmbeddings(ids, m, cls));

    private static double[] ReferenceLogits(HfReference reference, int[] tokens, int[] mask) =>
        Evaluate(reference, tokens, mask, (model, ids, m) => model.ClassifierLogits(ids, m));

    private static double[] Evaluate(HfReference reference, int[] tokens, int[] mask, Func<HfModernBert, Tensor, Tensor, Tensor> pass)
    {
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        (Tensor ids, Tensor m) = Tensors(reference, tokens, mask);
        return pass((HfModernBert)reference.Model, ids, m).to(ScalarType.Float64).flatten().data<double>().ToArray();
    }

    private static HfConfig ReadJson(string json)
    {
        string folder = HfChecks.TemporaryFolder("tg-modernbert-");
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

    // A copy of a fixture folder (config.json and any modules' files), its config.json changed, used, then deleted.
    private static T WithEditedCopy<T>(string fixture, Action<JsonObject> change, Func<string, T> use)
    {
        string folder = HfChecks.TemporaryFolder("tg-modernbert-"), configPath = HfFixtures.ConfigPath(fixture), source = Path.GetDirectoryName(configPath)!;
        try
        {
            foreach (string file in HfConfig.Read(configPath).SentenceModuleFiles.Prepend("config.json"))
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(folder, file))!);
                File.Copy(Path.Combine(source, file), Path.Combine(folder, file));
            }
            string path = Path.Combine(folder, "config.json");
            JsonObject json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
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
