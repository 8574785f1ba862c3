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
/// Checks of the EmbeddingGemma reference (<see cref="HfGemma3"/> with <c>use_bidirectional_attention</c> and the
/// sentence-transformers modules) on its own: the config and modules read as Gemma3TextConfig and sentence-transformers
/// read them, the bidirectional masks, the whole sentence embedding against a plain-loop float64 implementation (and
/// that the same loops with one plausible mistake do not match it), padding, gradients against central differences in
/// float64, and the folder it writes.
/// </summary>
public sealed class HfEmbeddingGemmaSelfTests(ITestOutputHelper output)
{
    private const long Seed = 1618;
    private const int Vocab = 45, E = 20, Heads = 3, KeyValueHeads = 1, HeadDim = 10, Inner = 37, Layers = 3, Pad = 0;
    /// <summary>The file's sliding_window and the one Gemma3TextConfig makes of it: 6 // 2 + 1 = 4, so |i − j| ≤ 3.</summary>
    private const int RawWindow = 6, Window = 4;
    /// <summary>2_Dense: 20 → 33, no bias, Identity; 3_Dense: 33 → 17, bias, Tanh.</summary>
    private const int Projected = 33, Out = 17;

    private static string ConfigPath => HfFixtures.ConfigPath(HfFixtures.EmbeddingGemma);

    private static readonly string[] ModuleFiles = ["modules.json", "1_Pooling/config.json", "2_Dense/config.json", "3_Dense/config.json"];

    // ------------------------------------------------------------------------------------------------------------
    // Config

    [Fact]
    public void Config_reads_the_bidirectional_text_model_and_its_modules()
    {
        HfConfig c = HfConfig.Read(ConfigPath);
        Assert.Equal((HfFamily.Gemma3, "gemma3_text", Vocab, E, Layers, Heads, KeyValueHeads, HeadDim, Inner, 64),
            (c.Family, c.ModelType, c.VocabSize, c.HiddenSize, c.Layers, c.Heads, c.KeyValueHeads, c.HeadDim, c.IntermediateSize, c.MaxPositions));
        Assert.Equal((1e6, 1e4, 1.0, 12.0, 1e-6, Pad, true), (c.RopeTheta, c.RopeLocalTheta, c.RopeLinearFactor, c.QueryPreAttnScalar, c.NormEps, c.PadTokenId, c.TieWordEmbeddings));
        Assert.Equal([true, true, false], c.SlidingLayers);
        Assert.Equal((true, RawWindow / 2 + 1, Window, false), (c.Bidirectional, c.SlidingWindow, Window, c.IsDecoder));
        Assert.Equal((HfPooling.Mean, true, Out, true), (c.Pooling, c.Normalize, c.EmbeddingSize, c.HasSentenceModules));
        Assert.Equal([new HfDenseLayer("2_Dense", E, Projected, false, false), new HfDenseLayer("3_Dense", Projected, Out, true, true)], c.DenseLayers);
        Assert.Equal(ModuleFiles, c.SentenceModuleFiles.Select(f => f.Replace('\\', '/')));
    }

    /// <summary>
    /// The modules' variants: cls pooling, Dense's defaults (bias, Tanh) where keys are absent, no Normalize; and the
    /// refusals: another activation, another pooling, widths that do not chain, a module these references lack, Dense on
    /// a family other than Gemma 3.
    /// </summary>
    [Fact]
    public void Modules_variants_and_refusals()
    {
        HfConfig Read(Action<string> edit) => WithEditedCopy(edit, HfConfig.Read);

        HfConfig cls = Read(f => Edit(f, "1_Pooling/config.json", j => { j["pooling_mode_mean_tokens"] = false; j["pooling_mode_cls_token"] = true; }));
        Assert.Equal(HfPooling.Cls, cls.Pooling);
        HfConfig defaults = Read(f => Edit(f, "2_Dense/config.json", j => { j.Remove("bias"); j.Remove("activation_function"); }));
        Assert.Equal(new HfDenseLayer("2_Dense", E, Projected, true, true), defaults.DenseLayers[0]);
        HfConfig plain = Read(f => EditList(f, list => list.RemoveAt(4)));
        Assert.False(plain.Normalize);

        Assert.Throws<NotSupportedException>(() => Read(f => Edit(f, "3_Dense/config.json", j => j["activation_function"] = "torch.nn.modules.activation.ReLU")));
        Assert.Throws<NotSupportedException>(() => Read(f => Edit(f, "1_Pooling/config.json", j => j["pooling_mode_max_tokens"] = true)));
        Assert.Throws<NotSupportedException>(() => Read(f => Edit(f, "1_Pooling/config.json", j => j["pooling_mode_mean_tokens"] = false)));
        Assert.Throws<InvalidDataException>(() => Read(f => Edit(f, "3_Dense/config.json", j => j["in_features"] = 32)));
        Assert.Throws<InvalidDataException>(() => Read(f => Edit(f, "1_Pooling/config.json", j => j["word_embedding_dimension"] = 768)));
        Assert.Throws<NotSupportedException>(() => Read(f => EditList(f, list => list.Insert(4, new JsonObject { ["idx"] = 9, ["name"] = "9", ["path"] = "9_LayerNorm", ["type"] = "sentence_transformers.models.LayerNorm" }))));
        // The BERT fixture (E 30) under the same modules, their widths made to fit, reads them (a LaBSE-shaped folder); an
        // MPNet's Dense layers have no reference here.
        HfConfig bert = Read(f =>
        {
            File.Copy(HfFixtures.ConfigPath("bert"), Path.Combine(f, "config.json"), overwrite: true);
            Edit(f, "1_Pooling/config.json", j => j["word_embedding_dimension"] = 30);
            Edit(f, "2_Dense/config.json", j => j["in_features"] = 30);
        });
        Assert.Equal((2, Out), (bert.DenseLayers.Length, bert.EmbeddingSize));
        Assert.Throws<NotSupportedException>(() => Read(f =>
        {
            File.Copy(HfFixtures.ConfigPath(HfFixtures.MPNet), Path.Combine(f, "config.json"), overwrite: true);
            Edit(f, "1_Pooling/config.json", j => j["word_embedding_dimension"] = 30);
            Edit(f, "2_Dense/config.json", j => j["in_features"] = 30);
        }));

        // Without modules.json: mean pooling and Normalize, no Dense, no files to copy.
        HfConfig bare = Read(f => File.Delete(Path.Combine(f, "modules.json")));
        Assert.Equal((false, 0, E, true), (bare.HasSentenceModules, bare.DenseLayers.Length, bare.EmbeddingSize, bare.Normalize));
    }

    /// <summary>
    /// The masks: every key on the global layer, and on the sliding ones the keys less than the halved window away on
    /// either side (|i − j| ≤ 3), not the causal ones.
    /// </summary>
    [Fact]
    public void Masks_are_bidirectional_with_the_halved_window()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        var model = (HfGemma3)reference.Model;
        using DisposeScope scope = NewDisposeScope();
        bool[] sliding = model.Visible(Length, sliding: true).flatten().data<bool>().ToArray();
        bool[] global = model.Visible(Length, sliding: false).flatten().data<bool>().ToArray();
        Assert.All(global, v => Assert.True(v));
        for (int i = 0; i < Length; i++)
            for (int j = 0; j < Length; j++)
                Assert.True(sliding[i * Length + j] == Math.Abs(i - j) <= 3, $"sliding ({i}, {j})");
        Assert.Throws<InvalidOperationException>(() => reference.Logits(new int[Length], 1, Length));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Forward pass

    /// <summary>The mistakes the written-out model can be told to make, each one a plausible misreading of EmbeddingGemma.</summary>
    public enum Mistake
    {
        None,
        /// <summary>Gemma3ForCausalLM's masks: causal, and the sliding layers' window looking back only.</summary>
        Causal,
        /// <summary>The sliding layers see |i − j| ≤ window (the halved one) instead of &lt;.</summary>
        InclusiveWindow,
        /// <summary>The file's sliding_window used as it is, not halved.</summary>
        RawWindow,
        /// <summary>The window applied on the global layer too.</summary>
        WindowOnGlobalLayer,
        /// <summary>The pooling's mean taken over the padding positions too.</summary>
        PaddingPooled,
        /// <summary>3_Dense's Tanh left out.</summary>
        NoDenseActivation,
        /// <summary>3_Dense's bias left out.</summary>
        NoDenseBias,
        /// <summary>No Normalize.</summary>
        NotNormalized,
    }

    /// <summary>
    /// The float64 reference's sentence embeddings of a padded batch (9 positions, over twice the window) equal
    /// EmbeddingGemma written out with plain loops (no libtorch) to 1e-12; so do the last hidden states, to 1e-12 of the
    /// largest.
    /// </summary>
    [Fact]
    public void Embeddings_equal_the_model_written_out()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        (int[] tokens, int[] mask) = Inputs();
        var written = new WrittenOut(reference, reference.Model.Config, Mistake.None);
        double[] expected = ReferenceEmbeddings(reference, tokens, mask);
        double error = HfChecks.MaxDifference(expected, written.Embeddings(tokens, mask, Batch, Length));
        double[] hidden = ReferenceHidden(reference, tokens, mask);
        double hiddenError = HfChecks.MaxDifference(hidden, written.Hidden(tokens, mask, Batch, Length)) / hidden.Max(Math.Abs);
        output.WriteLine($"written out vs reference: embeddings {error:E2} (largest entry {expected.Max(Math.Abs):F3}), hidden states {hiddenError:E2} of the largest");
        Assert.True(error < 1e-12, $"the written-out embeddings differ from the reference by {error:E2}");
        Assert.True(hiddenError < 1e-12, $"the written-out hidden states differ from the reference by {hiddenError:E2} of the largest");
    }

    /// <summary>
    /// The comparison above can fail: the same loops with any one mistake miss the reference's embeddings by at least
    /// 1e-3 (each entry is at most 1).
    /// </summary>
    [Fact]
    public void Written_out_models_with_a_mistake_do_not_match()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        (int[] tokens, int[] mask) = Inputs();
        double[] expected = ReferenceEmbeddings(reference, tokens, mask);
        foreach (Mistake mistake in Enum.GetValues<Mistake>().Where(m => m != Mistake.None))
        {
            double error = HfChecks.MaxDifference(expected, new WrittenOut(reference, reference.Model.Config, mistake).Embeddings(tokens, mask, Batch, Length));
            output.WriteLine($"{mistake}: {error:E2}");
            Assert.True(error > 1e-3, $"{mistake}: the written-out model still matches the reference ({error:E2})");
        }
    }

    /// <summary>
    /// A right-padded row equals its sentence alone at its own length (the padding keys hidden on every layer), the float32
    /// embeddings follow the float64 ones, and each is of unit length. Unmasked, the padding (keys after the sentence,
    /// which a bidirectional model does see) moves the embedding.
    /// </summary>
    [Fact]
    public void Padding_changes_nothing_and_float32_follows_float64()
    {
        using HfReference single = HfReference.Create(ConfigPath, Seed);
        using HfReference precise = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        (int[] tokens, int[] mask) = Inputs();
        int real = 6;
        for (int i = Length + real; i < 2 * Length; i++) (tokens[i], mask[i]) = (Pad, 0);
        mask[Length + 2] = 1;
        float[] padded = single.SentenceEmbeddings(tokens, mask, Batch, Length);
        float[] alone = single.SentenceEmbeddings(tokens[Length..(Length + real)], Enumerable.Repeat(1, real).ToArray(), 1, real);
        float[] unmasked = single.SentenceEmbeddings(tokens[Length..], Enumerable.Repeat(1, Length).ToArray(), 1, Length);
        double paddingError = HfChecks.MaxDifference(padded[Out..].Select(v => (double)v).ToArray(), alone.Select(v => (double)v).ToArray());
        double withoutMask = HfChecks.MaxDifference(unmasked.Select(v => (double)v).ToArray(), alone.Select(v => (double)v).ToArray());
        double precisionError = HfChecks.MaxDifference(ReferenceEmbeddings(precise, tokens, mask), padded.Select(v => (double)v).ToArray());
        output.WriteLine($"padded vs alone {paddingError:E2}; padding left unmasked moves it by {withoutMask:E2}; float32 vs float64 {precisionError:E2}");
        Assert.Equal(Batch * Out, padded.Length);
        Assert.True(paddingError < 1e-6, $"padding changed the embedding by {paddingError:E2}");
        Assert.True(withoutMask > 1e-2, "the padding hardly matters even unmasked: the test would prove nothing");
        Assert.True(precisionError < 1e-5, $"float32 vs float64 embeddings: {precisionError:E2}");
        for (int b = 0; b < Batch; b++) Assert.Equal(1.0, Math.Sqrt(padded.Skip(b * Out).Take(Out).Sum(v => (double)v * v)), 6);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Gradients

    /// <summary>
    /// The float64 reference's gradients of Σ embeddings ⊙ upstream against central differences (the table, attention,
    /// norms, the MLP, both Dense weights and the Dense bias); every parameter, the Dense ones under their module names,
    /// gets one; the padding row none (padding_idx; no head reads the table); float32 follows float64.
    /// </summary>
    [Fact]
    public void Gradients_match_central_differences()
    {
        using HfReference precise = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        using HfReference single = HfReference.Create(ConfigPath, Seed);
        (int[] tokens, int[] mask) = Inputs();
        Assert.Contains(Pad, tokens);
        float[] upstream = HfChecks.Normals(Batch * Out, seed: 10).Select(v => (float)v).ToArray();
        Dictionary<string, float[]> gradients = precise.EmbeddingGradients(tokens, mask, Batch, Length, upstream);
        Assert.Equal(precise.ParameterNames.Order(StringComparer.Ordinal), gradients.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(1 + Layers * 13 + 1 + 3, gradients.Count);
        Assert.Equal(["2_Dense.linear.weight", "3_Dense.linear.weight", "3_Dense.linear.bias"], precise.ParameterNames.TakeLast(3));

        string[] names =
        [
            "model.embed_tokens.weight",
            "model.layers.0.self_attn.q_proj.weight",
            "model.layers.1.self_attn.k_proj.weight",
            "model.layers.2.self_attn.v_proj.weight",
            "model.layers.2.self_attn.k_norm.weight",
            "model.layers.0.post_attention_layernorm.weight",
            "model.layers.1.mlp.down_proj.weight",
            "model.norm.weight",
            "2_Dense.linear.weight",
            "3_Dense.linear.weight",
            "3_Dense.linear.bias",
        ];
        CentralDifferences.Check(precise, gradients, names, seed: 11, Pad, E,
            () => CentralDifferences.Evaluate(() => precise.EmbeddingObjective(tokens, mask, Batch, Length, upstream)), output.WriteLine);

        Assert.All(gradients["model.embed_tokens.weight"][..E], v => Assert.Equal(0f, v));
        Dictionary<string, float[]> singleGradients = single.EmbeddingGradients(tokens, mask, Batch, Length, upstream);
        double worst = 0;
        string worstName = "";
        foreach ((string name, float[] g) in gradients)
        {
            double norm = Math.Sqrt(g.Sum(v => (double)v * v));
            Assert.True(norm > 1e-6, $"the gradient of {name} is zero");
            double error = Math.Sqrt(g.Zip(singleGradients[name], (a, b) => ((double)a - b) * ((double)a - b)).Sum()) / norm;
            if (error > worst) (worst, worstName) = (error, name);
        }
        output.WriteLine($"float32 vs float64 gradients: worst {worst:E2} of the tensor's norm ({worstName})");
        Assert.True(worst < 1e-4, $"the float32 gradient of {worstName} differs from float64 by {worst:E2}");
    }

    // ------------------------------------------------------------------------------------------------------------
    // Files

    public static TheoryData<HfWriteOptions> FileVariants => new()
    {
        new HfWriteOptions(),
        new HfWriteOptions(Dtype: HfDtype.BF16, Prefix: true),
        new HfWriteOptions(Dtype: HfDtype.F16, Shards: 2, IncludeBuffers: false),
    };

    /// <summary>
    /// A saved folder is a sentence-transformers folder: config.json and the modules' files copied byte for byte;
    /// <c>model.safetensors</c> (or shards) with exactly Gemma3TextModel's names (written out here), bare unless Prefix asks
    /// for <c>model.</c>, no <c>lm_head</c>; <c>2_Dense/model.safetensors</c> with <c>linear.weight</c> [33, 20] alone and
    /// <c>3_Dense/model.safetensors</c> with <c>linear.weight</c> [17, 33] and <c>linear.bias</c> [17]; every value the
    /// reference's rounded to the dtype, which the reference then computes with.
    /// </summary>
    [Theory]
    [MemberData(nameof(FileVariants))]
    public void Saved_folder_is_a_sentence_transformers_folder(HfWriteOptions options)
    {
        string folder = HfChecks.TemporaryFolder("tg-embeddinggemma-");
        try
        {
            using HfReference reference = HfReference.Create(ConfigPath, Seed);
            Dictionary<string, float[]> before = reference.ParameterNames.ToDictionary(n => n, reference.ParameterValues);
            reference.Save(folder, options);
            string source = Path.GetDirectoryName(ConfigPath)!;
            foreach (string file in ModuleFiles.Prepend("config.json"))
                Assert.Equal(File.ReadAllBytes(Path.Combine(source, file)), File.ReadAllBytes(Path.Combine(folder, file)));

            void CheckTensors(Dictionary<string, HfReferenceSelfTests.StoredTensor> stored, Dictionary<string, (long[] Shape, string Canonical)> expected)
            {
                Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), stored.Keys.Order(StringComparer.Ordinal));
                foreach ((string name, (long[] shape, string canonical)) in expected)
                {
                    HfReferenceSelfTests.StoredTensor t = stored[name];
                    Assert.Equal(options.Dtype.ToString(), t.Dtype);
                    Assert.True(shape.SequenceEqual(t.Shape), $"{name}: shape [{string.Join(",", t.Shape)}], expected [{string.Join(",", shape)}]");
                    float[] rounded = before[canonical].Select(v => HfFloats.Round(v, options.Dtype)).ToArray();
                    Assert.True(HfReferenceSelfTests.Decode(t).SequenceEqual(rounded), $"{name}: the file's values are not the reference's rounded to {options.Dtype}");
                    Assert.True(reference.ParameterValues(canonical).SequenceEqual(rounded), $"{name}: the reference does not compute with the file's values");
                }
            }

            var expected = new Dictionary<string, (long[] Shape, string Canonical)>(StringComparer.Ordinal);
            void Weight(string name, params long[] shape) => expected.Add(options.Prefix ? "model." + name : name, (shape, "model." + name));
            Weight("embed_tokens.weight", Vocab, E);
            for (int i = 0; i < Layers; i++)
            {
                string l = $"layers.{i}.";
                Weight(l + "input_layernorm.weight", E);
                Weight(l + "self_attn.q_proj.weight", Heads * HeadDim, E);
                Weight(l + "self_attn.k_proj.weight", KeyValueHeads * HeadDim, E);
                Weight(l + "self_attn.v_proj.weight", KeyValueHeads * HeadDim, E);
                Weight(l + "self_attn.o_proj.weight", E, Heads * HeadDim);
                Weight(l + "self_attn.q_norm.weight", HeadDim);
                Weight(l + "self_attn.k_norm.weight", HeadDim);
                Weight(l + "post_attention_layernorm.weight", E);
                Weight(l + "pre_feedforward_layernorm.weight", E);
                Weight(l + "post_feedforward_layernorm.weight", E);
                Weight(l + "mlp.gate_proj.weight", Inner, E);
                Weight(l + "mlp.up_proj.weight", Inner, E);
                Weight(l + "mlp.down_proj.weight", E, Inner);
            }
            Weight("norm.weight", E);
            Dictionary<string, HfReferenceSelfTests.StoredTensor> stored = HfReferenceSelfTests.ReadFolder(folder, options.Shards);
            if (options.Shards == 1)
            {
                Dictionary<string, long[]> shapes = SafeTensorsReader.Shapes(Path.Combine(folder, "model.safetensors"));
                Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), shapes.Keys.Order(StringComparer.Ordinal));
                Assert.All(expected, e => Assert.Equal(e.Value.Shape, shapes[e.Key]));
            }
            CheckTensors(stored, expected);

            var dense2 = new Dictionary<string, (long[] Shape, string Canonical)>(StringComparer.Ordinal) { ["linear.weight"] = ([Projected, E], "2_Dense.linear.weight") };
            var dense3 = new Dictionary<string, (long[] Shape, string Canonical)>(StringComparer.Ordinal)
            {
                ["linear.weight"] = ([Out, Projected], "3_Dense.linear.weight"),
                ["linear.bias"] = ([Out], "3_Dense.linear.bias"),
            };
            foreach ((string module, Dictionary<string, (long[] Shape, string Canonical)> want) in new[] { ("2_Dense", dense2), ("3_Dense", dense3) })
            {
                string file = Path.Combine(folder, module, "model.safetensors");
                Dictionary<string, long[]> shapes = SafeTensorsReader.Shapes(file);
                Assert.Equal(want.Keys.Order(StringComparer.Ordinal), shapes.Keys.Order(StringComparer.Ordinal));
                Assert.All(want, e => Assert.Equal(e.Value.Shape, shapes[e.Key]));
                CheckTensors(HfReferenceSelfTests.ReadFolder(Path.Combine(folder, module), 1), want);
            }
            Assert.False(Directory.Exists(Path.Combine(folder, "4_Normalize")));
            output.WriteLine($"{options}: {stored.Count} tensors in the model's file{(options.Shards > 1 ? "s" : "")}, 1 + 2 in the Dense files");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }

    }

    /// <summary>With BF16 the reference's own weights, the Dense ones too, are rounded for good: the files' values are what it computes with.</summary>
    [Fact]
    public void Bf16_files_hold_the_values_the_reference_computes_with()
    {
        string folder = HfChecks.TemporaryFolder("tg-embeddinggemma-");
        try
        {
            using HfReference reference = HfReference.Create(ConfigPath, Seed);
            Dictionary<string, float[]> before = reference.ParameterNames.ToDictionary(n => n, reference.ParameterValues);
            reference.Save(folder, new HfWriteOptions(Dtype: HfDtype.BF16));
            var files = new Dictionary<string, float[]>(StringComparer.Ordinal);
            foreach ((string n, float[] v) in SafeTensorsReader.Bf16(Path.Combine(folder, "model.safetensors"))) files.Add("model." + n, v);
            foreach (string module in new[] { "2_Dense", "3_Dense" })
                foreach ((string n, float[] v) in SafeTensorsReader.Bf16(Path.Combine(folder, module, "model.safetensors"))) files.Add($"{module}.{n}", v);
            Assert.Equal(reference.ParameterNames.Order(StringComparer.Ordinal), files.Keys.Order(StringComparer.Ordinal));
            foreach ((string name, float[] values) in files)
            {
                float[] rounded = before[name].Select(v => HfFloats.Round(v, HfDtype.BF16)).ToArray();
                Assert.True(values.SequenceEqual(rounded), $"{name}: the file's values are not the reference's rounded to BF16");
                Assert.True(reference.ParameterValues(name).SequenceEqual(rounded), $"{name}: the reference does not compute with the file's values");
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Options without a meaning for EmbeddingGemma are refused: no head to keep a tied copy of, no unused heads, no gamma/beta.</summary>
    [Fact]
    public void Options_that_do_not_apply_are_refused()
    {
        string folder = HfChecks.TemporaryFolder("tg-embeddinggemma-");
        try
        {
            using HfReference reference = HfReference.Create(ConfigPath, Seed);
            Assert.Throws<ArgumentException>(() => reference.Save(folder, new HfWriteOptions(KeepTiedCopy: true)));
            Assert.Throws<ArgumentException>(() => reference.Save(folder, new HfWriteOptions(IncludeUnusedHeads: true)));
            Assert.Throws<ArgumentException>(() => reference.Save(folder, new HfWriteOptions(LegacyGammaBeta: true)));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // EmbeddingGemma written out

    private const int Batch = 2, Length = 9;

    // Two sequences of 9 tokens with a padding id among the real ones; the second one's mask hides position 2 and the
    // last two, as right padding would.
    private static (int[] Tokens, int[] Mask) Inputs()
    {
        int[] tokens = Tokens(Batch * Length, seed: 2);
        tokens[4] = Pad;
        int[] mask = Enumerable.Range(0, Batch * Length).Select(i => i == Length + 2 || i >= 2 * Length - 2 ? 0 : 1).ToArray();
        for (int i = 0; i < mask.Length; i++) if (mask[i] == 0) tokens[i] = Pad;
        return (tokens, mask);
    }

    private static double[] ReferenceEmbeddings(HfReference reference, int[] tokens, int[] mask)
    {
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        (Tensor ids, Tensor m) = Tensors(reference, tokens, mask);
        return ((HfGemma3)reference.Model).SentenceEmbeddings(ids, m).to(ScalarType.Float64).flatten().data<double>().ToArray();
    }

    private static double[] ReferenceHidden(HfReference reference, int[] tokens, int[] mask)
    {
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        (Tensor ids, Tensor m) = Tensors(reference, tokens, mask);
        return reference.Model.LastHiddenState(ids, m).to(ScalarType.Float64).flatten().data<double>().ToArray();
    }

    private static (Tensor Ids, Tensor Mask) Tensors(HfReference reference, int[] tokens, int[] mask) =>
        (tensor(tokens.Select(t => (long)t).ToArray(), new long[] { Batch, Length }),
         tensor(mask.Select(v => (double)v).ToArray(), new long[] { Batch, Length }).to(reference.Model.Dtype));

    /// <summary>
    /// EmbeddingGemma in double with plain loops over the reference's parameter values, with an optional
    /// <see cref="Mistake"/>: Gemma 3's layers (embeddings × float32(√E); x + norm(attention(norm(x))), then
    /// + norm(mlp(norm(·))); the final norm) under the bidirectional masks, then the mean over the unpadded positions, each
    /// Dense, and division by the 2-norm.
    /// </summary>
    private sealed class WrittenOut(HfReference reference, HfConfig c, Mistake mistake)
    {
        private readonly Gemma3WrittenOut _layers = new(reference, c) { Sees = (t, s, sliding) => Sees(t, s, sliding, c, mistake) };

        public double[] Hidden(int[] tokens, int[] mask, int batch, int length) =>
            Enumerable.Range(0, batch).SelectMany(b => _layers.Hidden(tokens[(b * length)..((b + 1) * length)], Keep(mask, b, length)).SelectMany(row => row)).ToArray();

        public double[] Embeddings(int[] tokens, int[] mask, int batch, int length)
        {
            var result = new List<double>();
            for (int b = 0; b < batch; b++)
            {
                bool[] keep = Keep(mask, b, length);
                double[][] hidden = _layers.Hidden(tokens[(b * length)..((b + 1) * length)], keep);
                // Pooling: the mean of the hidden states at the unpadded positions.
                var pooled = new double[c.HiddenSize];
                int counted = 0;
                for (int t = 0; t < length; t++)
                {
                    if (!keep[t] && mistake != Mistake.PaddingPooled) continue;
                    counted++;
                    for (int e = 0; e < c.HiddenSize; e++) pooled[e] += hidden[t][e];
                }
                double[] x = pooled.Select(v => v / counted).ToArray();
                foreach (HfDenseLayer dense in c.DenseLayers)
                {
                    double[] w = _layers.P(dense.Path + ".linear.weight");
                    double[]? bias = dense.Bias && mistake != Mistake.NoDenseBias ? _layers.P(dense.Path + ".linear.bias") : null;
                    var y = new double[dense.OutFeatures];
                    for (int o = 0; o < dense.OutFeatures; o++)
                    {
                        double sum = bias?[o] ?? 0;
                        for (int i = 0; i < dense.InFeatures; i++) sum += w[o * dense.InFeatures + i] * x[i];
                        y[o] = dense.Tanh && mistake != Mistake.NoDenseActivation ? Math.Tanh(sum) : sum;
                    }
                    x = y;
                }
                double norm = mistake == Mistake.NotNormalized ? 1 : Math.Max(Math.Sqrt(x.Sum(v => v * v)), 1e-12);
                result.AddRange(x.Select(v => v / norm));
            }
            return result.ToArray();
        }

        private static bool[] Keep(int[] mask, int b, int length) => mask[(b * length)..((b + 1) * length)].Select(v => v == 1).ToArray();

        // Whether query t sees key s on a layer of this kind (padding aside): the two-sided window of the halved size on a
        // sliding layer, every key on a global one.
        private static bool Sees(int t, int s, bool sliding, HfConfig c, Mistake mistake)
        {
            int distance = Math.Abs(t - s), window = c.SlidingWindow;
            return mistake switch
            {
                Mistake.Causal => s <= t && (!sliding || t - s < window),
                Mistake.InclusiveWindow => !sliding || distance <= window,
                Mistake.RawWindow => !sliding || distance < RawWindow,
                Mistake.WindowOnGlobalLayer => distance < window,
                _ => !sliding || distance < window,
            };
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Helpers

    // A copy of the fixture folder (config.json and the modules' files), changed by edit, read by read, then deleted.
    private static T WithEditedCopy<T>(Action<string> edit, Func<string, T> read)
    {
        string folder = HfChecks.TemporaryFolder("tg-embeddinggemma-"), source = Path.GetDirectoryName(ConfigPath)!;
        try
        {
            foreach (string file in ModuleFiles.Prepend("config.json"))
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(folder, file))!);
                File.Copy(Path.Combine(source, file), Path.Combine(folder, file));
            }
            edit(folder);
            return read(Path.Combine(folder, "config.json"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static void Edit(string folder, string file, Action<JsonObject> change)
    {
        string path = Path.Combine(folder, file);
        JsonObject json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        change(json);
        File.WriteAllText(path, json.ToJsonString());
    }

    private static void EditList(string folder, Action<JsonArray> change)
    {
        string path = Path.Combine(folder, "modules.json");
        JsonArray list = JsonNode.Parse(File.ReadAllText(path))!.AsArray();
        change(list);
        File.WriteAllText(path, list.ToJsonString());
    }

    private static int[] Tokens(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(Vocab)).ToArray();
    }
}
