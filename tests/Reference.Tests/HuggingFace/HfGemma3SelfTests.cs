using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// Checks of the Gemma 3 reference (<see cref="HfGemma3"/>) on its own: the config read as Gemma3TextConfig reads it, the
/// layers' masks, the whole forward pass against a plain-loop float64 implementation (and that the same loops with one
/// plausible mistake do not match it), the loss, gradients against central differences in float64, the padding row's
/// gradient, and the files it writes.
/// </summary>
public sealed class HfGemma3SelfTests(ITestOutputHelper output)
{
    private const long Seed = 3141;
    private const int Vocab = 45, E = 24, Heads = 3, KeyValueHeads = 1, HeadDim = 10, Inner = 37, Layers = 3, Window = 4, Pad = 0;

    private static string ConfigPath => HfFixtures.ConfigPath(HfFixtures.Gemma3);

    // ------------------------------------------------------------------------------------------------------------
    // Config

    [Fact]
    public void Config_reads_the_gemma3_text_keys()
    {
        HfConfig c = HfConfig.Read(ConfigPath);
        Assert.Equal((HfFamily.Gemma3, "gemma3_text", Vocab, E, Layers, Heads, KeyValueHeads, HeadDim, Inner, 64),
            (c.Family, c.ModelType, c.VocabSize, c.HiddenSize, c.Layers, c.Heads, c.KeyValueHeads, c.HeadDim, c.IntermediateSize, c.MaxPositions));
        Assert.Equal(("gelu_pytorch_tanh", 1e-6, true, Pad, 1, true, true, false, false),
            (c.Activation, c.NormEps, c.TieWordEmbeddings, c.PadTokenId, c.EosTokenId, c.QueryKeyNorm, c.ScaleEmbedding, c.QkvBias, c.OutputBias));
        Assert.Equal((1e6, 1e4, 8.0, 12.0, Window), (c.RopeTheta, c.RopeLocalTheta, c.RopeLinearFactor, c.QueryPreAttnScalar, c.SlidingWindow));
        Assert.Equal([true, true, false], c.SlidingLayers);
        Assert.True(c.IsDecoder);
    }

    /// <summary>
    /// Gemma3TextConfig's defaults where keys are absent (gemma-3-4b's text model, roughly: head_dim 256 whatever
    /// hidden/heads is, tied, θ 1e6 and 1e4, query_pre_attn_scalar 256, window 4096, every sixth layer global); the
    /// layer kinds from sliding_window_pattern when layer_types is absent (and a saved "_sliding_window_pattern" ignored,
    /// as the constructor overwrites it); gemma-3-1b-it's list of end ids; and the refusals.
    /// </summary>
    [Fact]
    public void Config_defaults_are_gemma3textconfigs()
    {
        HfConfig d = ReadJson("""{"model_type": "gemma3_text"}""");
        Assert.Equal((262208, 2304, 9216, 26, 8, 4, 256, 131072, "gelu_pytorch_tanh", 1e-6, true, 0, 1),
            (d.VocabSize, d.HiddenSize, d.IntermediateSize, d.Layers, d.Heads, d.KeyValueHeads, d.HeadDim, d.MaxPositions, d.Activation, d.NormEps, d.TieWordEmbeddings, d.PadTokenId, d.EosTokenId));
        Assert.Equal((1e6, 1e4, 1.0, 256.0, 4096, false), (d.RopeTheta, d.RopeLocalTheta, d.RopeLinearFactor, d.QueryPreAttnScalar, d.SlidingWindow, d.QkvBias));
        Assert.Equal(Enumerable.Range(0, 26).Select(i => i % 6 != 5), d.SlidingLayers);

        HfConfig pattern = ReadJson("""{"model_type": "gemma3_text", "num_hidden_layers": 7, "sliding_window_pattern": 3, "_sliding_window_pattern": 2}""");
        Assert.Equal([true, true, false, true, true, false, true], pattern.SlidingLayers);
        HfConfig saved = ReadJson("""{"model_type": "gemma3_text", "num_hidden_layers": 7, "_sliding_window_pattern": 2}""");
        Assert.Equal([true, true, true, true, true, false, true], saved.SlidingLayers);
        HfConfig listed = ReadJson("""{"model_type": "gemma3_text", "num_hidden_layers": 2, "sliding_window_pattern": 2, "layer_types": ["full_attention", "sliding_attention"]}""");
        Assert.Equal([false, true], listed.SlidingLayers);

        HfConfig instruct = ReadJson("""{"model_type": "gemma3_text", "eos_token_id": [1, 106], "rope_scaling": null, "attention_bias": true, "rope_local_base_freq": 10000}""");
        Assert.Equal((1, 1.0, true, true, 1e4), (instruct.EosTokenId, instruct.RopeLinearFactor, instruct.QkvBias, instruct.OutputBias, instruct.RopeLocalTheta));
        Assert.Equal(4.0, ReadJson("""{"model_type": "gemma3_text", "rope_scaling": {"type": "linear", "factor": 4}}""").RopeLinearFactor);

        Assert.Throws<NotSupportedException>(() => ReadJson("""{"model_type": "gemma3_text", "final_logit_softcapping": 30.0}"""));
        Assert.Throws<NotSupportedException>(() => ReadJson("""{"model_type": "gemma3_text", "attn_logit_softcapping": 50.0}"""));
        // EmbeddingGemma's switch: no longer a decoder, and the window halved as Gemma3TextConfig.__init__ does (4096 → 2049).
        HfConfig bidirectional = ReadJson("""{"model_type": "gemma3_text", "use_bidirectional_attention": true}""");
        Assert.Equal((true, 2049, false), (bidirectional.Bidirectional, bidirectional.SlidingWindow, bidirectional.IsDecoder));
        Assert.Throws<NotSupportedException>(() => ReadJson("""{"model_type": "gemma3_text", "rope_scaling": {"rope_type": "yarn", "factor": 8.0}}"""));
        Assert.Throws<InvalidDataException>(() => ReadJson("""{"model_type": "gemma3_text", "num_hidden_layers": 2, "layer_types": ["sliding_attention"]}"""));
        Assert.Throws<InvalidDataException>(() => ReadJson("""{"model_type": "gemma3_text", "num_hidden_layers": 1, "layer_types": ["chunked_attention"]}"""));
        Assert.Throws<InvalidDataException>(() => ReadJson("""{"model_type": "gemma3_text", "sliding_window": null}"""));
        Assert.Equal(0, ReadJson("""{"model_type": "gemma3_text", "num_hidden_layers": 1, "layer_types": ["full_attention"], "sliding_window": null}""").SlidingWindow);
    }

    /// <summary>The masks: key j visible from query i iff j ≤ i on the global layer, and also i − j &lt; 4 on the sliding ones.</summary>
    [Fact]
    public void Sliding_layers_see_the_last_window_positions()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        var model = (HfGemma3)reference.Model;
        using DisposeScope scope = NewDisposeScope();
        const int length = 9;
        bool[] sliding = model.Visible(length, sliding: true).flatten().data<bool>().ToArray();
        bool[] global = model.Visible(length, sliding: false).flatten().data<bool>().ToArray();
        for (int i = 0; i < length; i++)
            for (int j = 0; j < length; j++)
            {
                Assert.True(global[i * length + j] == j <= i, $"global ({i}, {j})");
                Assert.True(sliding[i * length + j] == (j <= i && i - j < Window), $"sliding ({i}, {j})");
            }
    }

    /// <summary>
    /// The rotary tables, half-split (channel j and j + D/2 share frequency j): the sliding layers' from θ = 1e4 unscaled,
    /// the global layer's from θ = 1e6 with the frequencies divided by 8; angles in float32. The float32 model's cos and
    /// sin are within an ulp of float32 of the angles' (libtorch does not always round them correctly), the float64
    /// model's are the angles' to double precision.
    /// </summary>
    [Fact]
    public void Rotary_tables_use_the_two_bases_and_the_linear_factor()
    {
        const int length = 12, half = HeadDim / 2;
        foreach (ScalarType dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
        {
            using HfReference reference = HfReference.Create(ConfigPath, Seed, dtype);
            var model = (HfGemma3)reference.Model;
            using DisposeScope scope = NewDisposeScope();
            foreach (bool sliding in new[] { true, false })
            {
                (Tensor cos, Tensor sin) = model.RotaryTables(length, sliding);
                Assert.Equal(new long[] { length, HeadDim }, cos.shape);
                double[] c = cos.to(ScalarType.Float64).flatten().data<double>().ToArray(), s = sin.to(ScalarType.Float64).flatten().data<double>().ToArray();
                double worst = 0;
                for (int p = 0; p < length; p++)
                    for (int j = 0; j < HeadDim; j++)
                    {
                        int i = j % half;
                        float inverse = 1f / (float)Math.Pow(sliding ? 1e4f : 1e6f, (float)(2 * i) / HeadDim);
                        if (!sliding) inverse /= 8f;
                        float angle = p * inverse;
                        worst = Math.Max(worst, Math.Max(Math.Abs(c[p * HeadDim + j] - Math.Cos(angle)), Math.Abs(s[p * HeadDim + j] - Math.Sin(angle))));
                    }
                output.WriteLine($"{dtype} {(sliding ? "sliding" : "global")}: largest difference from cos/sin of the float32 angles {worst:E2}");
                Assert.True(worst <= (dtype == ScalarType.Float32 ? 1.2e-7 : 1e-15), $"{dtype} {(sliding ? "sliding" : "global")} table: off by {worst:E2}");
            }
        }
        // Neither table is the other's, and the global one is not the unscaled θ = 1e6 table either: at position 8 the
        // first frequency (1 for both θ) turns by 8 radians on a sliding layer, by 1 on the global one.
        using HfReference single = HfReference.Create(ConfigPath, Seed);
        using DisposeScope scope2 = NewDisposeScope();
        var gemma = (HfGemma3)single.Model;
        Assert.Equal((float)Math.Cos(8.0), gemma.RotaryTables(9, sliding: true).Cos[8, 0].item<float>(), 6);
        Assert.Equal((float)Math.Cos(1.0), gemma.RotaryTables(9, sliding: false).Cos[8, 0].item<float>(), 6);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Forward pass

    /// <summary>The mistakes the written-out model can be told to make, each one a plausible misreading of Gemma 3.</summary>
    public enum Mistake
    {
        None,
        /// <summary>Scores scaled by head_dim^−½ (Llama's) instead of query_pre_attn_scalar^−½.</summary>
        HeadDimScale,
        /// <summary>RMSNorm times w instead of 1 + w.</summary>
        NormWeightWithoutOne,
        /// <summary>The sliding layers only causal.</summary>
        NoWindow,
        /// <summary>The global table without the linear factor.</summary>
        NoLinearFactor,
        /// <summary>θ of the global and the sliding tables exchanged.</summary>
        SwappedRopeBases,
        /// <summary>The embeddings not multiplied by √hidden.</summary>
        UnscaledEmbedding,
    }

    /// <summary>
    /// The float64 reference's logits, with a padding mask on the second sequence (9 positions, over twice the window),
    /// equal Gemma 3 written out with plain loops over positions, heads and channels (no libtorch) to 1e-9 of the largest
    /// logit; the rotary angles there are rounded to float32 where transformers computes them in float32.
    /// </summary>
    [Fact]
    public void Logits_equal_the_model_written_out()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        (int[] tokens, int[] mask) = Inputs();
        double[] expected = ReferenceLogits(reference, tokens, mask);
        double scale = expected.Max(Math.Abs);
        double error = HfChecks.MaxDifference(expected, new WrittenOut(reference, reference.Model.Config, Mistake.None).Logits(tokens, mask, Batch, Length)) / scale;
        output.WriteLine($"largest logit {scale:F3}; written out vs reference {error:E2} of it");
        Assert.True(error < 1e-9, $"the written-out model differs from the reference by {error:E2} of the largest logit");
    }

    /// <summary>
    /// The same with <c>attention_bias</c> (biases on q_proj, k_proj, v_proj and o_proj) and an untied <c>lm_head</c>,
    /// from a copy of the config.
    /// </summary>
    [Fact]
    public void Attention_biases_and_an_untied_head_follow_the_written_out_model()
    {
        string folder = HfChecks.TemporaryFolder("tg-gemma3-");
        try
        {
            JsonObject json = JsonNode.Parse(File.ReadAllText(ConfigPath))!.AsObject();
            json["attention_bias"] = true;
            json["tie_word_embeddings"] = false;
            string path = Path.Combine(folder, "config.json");
            File.WriteAllText(path, json.ToJsonString());
            using HfReference reference = HfReference.Create(path, Seed, ScalarType.Float64);
            foreach (string projection in new[] { "q_proj", "k_proj", "v_proj", "o_proj" })
                Assert.Contains($"model.layers.1.self_attn.{projection}.bias", reference.ParameterNames);
            Assert.DoesNotContain(reference.ParameterNames, n => n.StartsWith("model.layers.1.mlp.", StringComparison.Ordinal) && n.EndsWith(".bias", StringComparison.Ordinal));
            Assert.Equal("lm_head.weight", reference.ParameterNames[^1]);
            (int[] tokens, int[] mask) = Inputs();
            double[] expected = ReferenceLogits(reference, tokens, mask);
            double scale = expected.Max(Math.Abs);
            double error = HfChecks.MaxDifference(expected, new WrittenOut(reference, reference.Model.Config, Mistake.None).Logits(tokens, mask, Batch, Length)) / scale;
            output.WriteLine($"with biases, untied: written out vs reference {error:E2} of the largest logit");
            Assert.True(error < 1e-9, $"with biases and an untied head, the written-out model differs by {error:E2}");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// The comparison above can fail: the same loops with any one mistake (the 1/√head_dim scale, no 1 + w, no window, no
    /// linear factor, the two θ exchanged, no √hidden) miss the reference by far more than 1e-9, by at least 1e-3 of the
    /// largest logit.
    /// </summary>
    [Fact]
    public void Written_out_models_with_a_mistake_do_not_match()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        (int[] tokens, int[] mask) = Inputs();
        double[] expected = ReferenceLogits(reference, tokens, mask);
        double scale = expected.Max(Math.Abs);
        foreach (Mistake mistake in Enum.GetValues<Mistake>().Where(m => m != Mistake.None))
        {
            double error = HfChecks.MaxDifference(expected, new WrittenOut(reference, reference.Model.Config, mistake).Logits(tokens, mask, Batch, Length)) / scale;
            output.WriteLine($"{mistake}: {error:E2} of the largest logit");
            Assert.True(error > 1e-3, $"{mistake}: the written-out model still matches the reference ({error:E2})");
        }
    }

    /// <summary>The float32 reference agrees with the float64 one to float32 rounding (1e-5 of the largest logit).</summary>
    [Fact]
    public void Float32_logits_follow_float64()
    {
        using HfReference precise = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        using HfReference single = HfReference.Create(ConfigPath, Seed);
        (int[] tokens, int[] mask) = Inputs();
        double[] expected = ReferenceLogits(precise, tokens, mask), actual = ReferenceLogits(single, tokens, mask);
        double error = HfChecks.MaxDifference(expected, actual) / expected.Max(Math.Abs);
        output.WriteLine($"float32 vs float64: {error:E2} of the largest logit");
        Assert.True(error < 1e-5, $"float32 vs float64 logits: {error:E2}");
        // Without a mask, HfReference.Logits is the same pass.
        float[] plain = single.Logits(tokens, Batch, Length);
        Assert.Equal(ReferenceLogits(single, tokens, null).Select(v => (float)v), plain);
    }

    /// <summary>The decoders' loss: the mean cross-entropy of each position's logits against the target there, −1 ignored.</summary>
    [Fact]
    public void Loss_is_the_mean_cross_entropy_of_the_logits()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        int[] tokens = Tokens(Batch * Length, seed: 4), targets = Tokens(Batch * Length, seed: 5);
        targets[3] = -1;
        float[] logits = reference.Logits(tokens, Batch, Length);
        double sum = 0;
        int counted = 0;
        for (int r = 0; r < Batch * Length; r++)
        {
            if (targets[r] < 0) continue;
            double[] row = logits.AsSpan(r * Vocab, Vocab).ToArray().Select(v => (double)v).ToArray();
            double max = row.Max();
            sum += max + Math.Log(row.Sum(v => Math.Exp(v - max))) - row[targets[r]];
            counted++;
        }
        Assert.Equal(sum / counted, reference.LossAndGradients(tokens, targets, Batch, Length).Loss, 5);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Gradients

    public static TheoryData<string> GradientChecks => new()
    {
        "model.embed_tokens.weight",
        "model.layers.0.input_layernorm.weight",
        "model.layers.1.post_attention_layernorm.weight",
        "model.layers.2.pre_feedforward_layernorm.weight",
        "model.layers.0.post_feedforward_layernorm.weight",
        "model.layers.2.self_attn.q_norm.weight",
        "model.layers.1.self_attn.k_norm.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.2.self_attn.k_proj.weight",
        "model.layers.1.self_attn.v_proj.weight",
        "model.layers.2.self_attn.o_proj.weight",
        "model.layers.1.mlp.gate_proj.weight",
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.2.mlp.down_proj.weight",
        "model.norm.weight",
    };

    /// <summary>
    /// In the float64 model, two entries of the parameter (among its larger gradients; the embedding table never in the
    /// padding row) have the loss gradient of a central difference, to 1e-6 relative. The inputs hold padding tokens and
    /// the targets an ignored −1.
    /// </summary>
    [Theory]
    [MemberData(nameof(GradientChecks))]
    public void Gradients_match_central_differences(string parameter)
    {
        using HfReference precise = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        (int[] tokens, int[] targets) = LossInputs();
        float[] g = precise.LossAndGradients(tokens, targets, Batch, Length).Gradients[parameter];
        double largest = g.Max(v => Math.Abs(v));
        int[] candidates = Enumerable.Range(0, g.Length)
            .Where(i => Math.Abs(g[i]) >= 0.1 * largest && !(parameter == "model.embed_tokens.weight" && i / E == Pad)).ToArray();
        var rng = new Random(parameter.Length * 31 + parameter[^10]);
        Tensor values = precise.Model[parameter];
        const double h = 1e-5;
        foreach (int index in candidates.OrderBy(_ => rng.Next()).Take(2))
        {
            double original = Evaluate(() => values.view(-1)[index]);
            double Shifted(double by)
            {
                Evaluate(() => values.view(-1)[index].fill_(original + by));
                return Evaluate(() => precise.Loss(tokens, targets, Batch, Length));
            }
            double difference = (Shifted(h) - Shifted(-h)) / (2 * h);
            Shifted(0);
            double error = Math.Abs(difference - g[index]);
            output.WriteLine($"{parameter}[{index}]: analytic {g[index]:E6}, central difference {difference:E6}, error {error / Math.Abs(g[index]):E2} relative");
            Assert.True(error <= 1e-6 * Math.Abs(g[index]) + 1e-9, $"{parameter}[{index}]: analytic {g[index]} vs central difference {difference}");
        }
    }

    /// <summary>
    /// Every parameter gets a gradient, and the float32 gradients equal the float64 ones to 1e-4 of each tensor's norm.
    /// </summary>
    [Fact]
    public void Every_parameter_has_a_gradient_in_float32_as_in_float64()
    {
        using HfReference precise = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        using HfReference single = HfReference.Create(ConfigPath, Seed);
        (int[] tokens, int[] targets) = LossInputs();
        Dictionary<string, float[]> expected = precise.LossAndGradients(tokens, targets, Batch, Length).Gradients;
        Dictionary<string, float[]> actual = single.LossAndGradients(tokens, targets, Batch, Length).Gradients;
        Assert.Equal(precise.ParameterNames.Order(StringComparer.Ordinal), expected.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(1 + Layers * 13 + 1, expected.Count);
        double worst = 0;
        foreach ((string name, float[] g) in expected)
        {
            double norm = Math.Sqrt(g.Sum(v => (double)v * v));
            Assert.True(norm > 1e-6, $"the gradient of {name} is zero");
            double error = Math.Sqrt(g.Zip(actual[name], (a, b) => ((double)a - b) * ((double)a - b)).Sum()) / norm;
            worst = Math.Max(worst, error);
            Assert.True(error < 1e-4, $"the float32 gradient of {name} differs from float64 by {error:E2} of its norm");
        }
        output.WriteLine($"float32 vs float64 gradients: worst {worst:E2} of the tensor's norm");
    }

    /// <summary>
    /// nn.Embedding(padding_idx = 0): lookups of the padding row pass no gradient back. Untied, the row's gradient is
    /// exactly zero though padding tokens are read (their value does reach the loss: the central difference is not zero),
    /// rows of tokens never read have none either, and every row read has one. Tied, the padding row's gradient is the
    /// head's part alone: Σ over the counted positions of (softmax − one-hot)[0]·h / count.
    /// </summary>
    [Fact]
    public void The_padding_row_gets_no_gradient_from_its_lookups()
    {
        (int[] tokens, int[] targets) = LossInputs();
        Assert.Contains(Pad, tokens);
        string folder = HfChecks.TemporaryFolder("tg-gemma3-");
        try
        {
            JsonObject json = JsonNode.Parse(File.ReadAllText(ConfigPath))!.AsObject();
            json["tie_word_embeddings"] = false;
            string untiedPath = Path.Combine(folder, "config.json");
            File.WriteAllText(untiedPath, json.ToJsonString());
            using (HfReference untied = HfReference.Create(untiedPath, Seed, ScalarType.Float64))
            {
                Assert.Contains("lm_head.weight", untied.ParameterNames);
                float[] g = untied.LossAndGradients(tokens, targets, Batch, Length).Gradients["model.embed_tokens.weight"];
                for (int row = 0; row < Vocab; row++)
                {
                    bool read = row != Pad && tokens.Contains(row);
                    double norm = Math.Sqrt(g.AsSpan(row * E, E).ToArray().Sum(v => (double)v * v));
                    Assert.True(read ? norm > 1e-9 : norm == 0, $"row {row} (read: {tokens.Contains(row)}): gradient norm {norm}");
                }
                // The padding row's value does matter: moving it moves the loss.
                Tensor table = untied.Model["model.embed_tokens.weight"];
                double original = Evaluate(() => table[Pad, 3]);
                Evaluate(() => table[Pad, 3].fill_(original + 1e-3));
                double moved = Evaluate(() => untied.Loss(tokens, targets, Batch, Length));
                Evaluate(() => table[Pad, 3].fill_(original));
                Assert.True(Math.Abs(moved - Evaluate(() => untied.Loss(tokens, targets, Batch, Length))) > 1e-9);
            }

            using HfReference tied = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
            using DisposeScope scope = NewDisposeScope();
            Tensor tiedTable = tied.Model["model.embed_tokens.weight"];
            Tensor gradient = autograd.grad(new[] { tied.Loss(tokens, targets, Batch, Length) }, new[] { tiedTable })[0];
            Tensor hidden, probabilities;
            using (no_grad())
            {
                hidden = tied.Model.LastHiddenState(tensor(tokens.Select(t => (long)t).ToArray(), new long[] { Batch, Length }), null).reshape(-1, E);
                probabilities = F.softmax(tied.Model.Logits(hidden), -1);
            }
            double[] p0 = probabilities.select(1, Pad).contiguous().data<double>().ToArray(), h = hidden.flatten().data<double>().ToArray();
            int count = targets.Count(t => t >= 0);
            var head = new double[E];
            for (int r = 0; r < targets.Length; r++)
            {
                if (targets[r] < 0) continue;
                double weight = (p0[r] - (targets[r] == Pad ? 1 : 0)) / count;
                for (int e = 0; e < E; e++) head[e] += weight * h[r * E + e];
            }
            double[] row0 = gradient[Pad].data<double>().ToArray();
            double error = HfChecks.MaxDifference(head, row0) / head.Max(Math.Abs);
            output.WriteLine($"tied padding row: gradient vs the head's part {error:E2} relative");
            Assert.True(error < 1e-12, $"the tied padding row's gradient is not the head's part alone: {error:E2}");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Files

    public static TheoryData<HfWriteOptions> FileVariants => new()
    {
        new HfWriteOptions(),
        new HfWriteOptions(KeepTiedCopy: true),
        new HfWriteOptions(Dtype: HfDtype.BF16, Prefix: true, Shards: 3),
        new HfWriteOptions(Dtype: HfDtype.F16, KeepTiedCopy: true, IncludeBuffers: false),
    };

    /// <summary>
    /// A saved folder holds exactly Gemma3ForCausalLM's names (written out here, not taken from the reference), with their
    /// shapes and the reference's values rounded to the dtype; <c>lm_head.weight</c> (a copy of the table) only with
    /// KeepTiedCopy, no buffer (the rotary frequencies are not persistent), and with Prefix the bare Gemma3TextModel names.
    /// </summary>
    [Theory]
    [MemberData(nameof(FileVariants))]
    public void Saved_folder_holds_exactly_the_gemma3_names(HfWriteOptions options)
    {
        string folder = HfChecks.TemporaryFolder("tg-gemma3-");
        try
        {
            using HfReference reference = HfReference.Create(ConfigPath, Seed);
            Dictionary<string, float[]> before = reference.ParameterNames.ToDictionary(n => n, reference.ParameterValues);
            reference.Save(folder, options);
            Assert.Equal(File.ReadAllBytes(ConfigPath), File.ReadAllBytes(Path.Combine(folder, "config.json")));

            var expected = new Dictionary<string, (long[] Shape, string Canonical)>(StringComparer.Ordinal);
            void Weight(string name, params long[] shape) =>
                expected.Add(options.Prefix ? name["model.".Length..] : name, (shape, name));
            Weight("model.embed_tokens.weight", Vocab, E);
            for (int i = 0; i < Layers; i++)
            {
                string l = $"model.layers.{i}.";
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
            Weight("model.norm.weight", E);
            if (options.KeepTiedCopy) expected.Add("lm_head.weight", (new long[] { Vocab, E }, "model.embed_tokens.weight"));

            Dictionary<string, HfReferenceSelfTests.StoredTensor> stored = HfReferenceSelfTests.ReadFolder(folder, options.Shards);
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), stored.Keys.Order(StringComparer.Ordinal));
            foreach ((string name, (long[] shape, string canonical)) in expected)
            {
                HfReferenceSelfTests.StoredTensor t = stored[name];
                Assert.Equal(options.Dtype.ToString(), t.Dtype);
                Assert.True(shape.SequenceEqual(t.Shape), $"{name}: shape [{string.Join(",", t.Shape)}], expected [{string.Join(",", shape)}]");
                float[] values = HfReferenceSelfTests.Decode(t), now = reference.ParameterValues(canonical);
                float[] rounded = before[canonical].Select(v => HfFloats.Round(v, options.Dtype)).ToArray();
                Assert.True(values.SequenceEqual(rounded), $"{name}: the file's values are not the reference's rounded to {options.Dtype}");
                Assert.True(now.SequenceEqual(rounded), $"{name}: the reference does not compute with the file's values");
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Options without a meaning for Gemma 3 are refused: there are no unused heads.</summary>
    [Fact]
    public void Unused_heads_are_refused()
    {
        string folder = HfChecks.TemporaryFolder("tg-gemma3-");
        try
        {
            using HfReference reference = HfReference.Create(ConfigPath, Seed);
            Assert.Throws<ArgumentException>(() => reference.Save(folder, new HfWriteOptions(IncludeUnusedHeads: true)));
            Assert.Throws<ArgumentException>(() => reference.Save(folder, new HfWriteOptions(LegacyGammaBeta: true)));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Gemma 3 written out

    private const int Batch = 2, Length = 9;

    // Two sequences of 9 tokens (padding tokens among them); the second sequence's mask hides positions 2 and 8, so that
    // every query still sees a key.
    private static (int[] Tokens, int[] Mask) Inputs()
    {
        int[] tokens = Tokens(Batch * Length, seed: 2);
        tokens[1] = Pad;
        tokens[Length + 2] = Pad;
        int[] mask = Enumerable.Range(0, Batch * Length).Select(i => i == Length + 2 || i == 2 * Length - 1 ? 0 : 1).ToArray();
        return (tokens, mask);
    }

    private static (int[] Tokens, int[] Targets) LossInputs()
    {
        int[] tokens = Tokens(Batch * Length, seed: 8), targets = Tokens(Batch * Length, seed: 9);
        tokens[0] = Pad;
        tokens[Length + 4] = Pad;
        targets[2] = -1;
        targets[5] = Pad;
        return (tokens, targets);
    }

    // The float64 (or float32) reference's logits with a mask, through the model itself (HfReference.Logits rounds to float).
    private static double[] ReferenceLogits(HfReference reference, int[] tokens, int[]? mask)
    {
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        HfTorchModel model = reference.Model;
        Tensor ids = tensor(tokens.Select(t => (long)t).ToArray(), new long[] { Batch, Length });
        Tensor? m = mask is null ? null : tensor(mask.Select(v => (double)v).ToArray(), new long[] { Batch, Length }).to(model.Dtype);
        return model.Logits(model.LastHiddenState(ids, m)).to(ScalarType.Float64).flatten().data<double>().ToArray();
    }

    /// <summary>
    /// Gemma3ForCausalLM in double with plain loops over the reference's parameter values, with an optional
    /// <see cref="Mistake"/>: embeddings × float32(√E); per layer h = x + norm(attention(norm(x))), x = h + norm(mlp(norm(h)));
    /// the final norm; logits against the unscaled table.
    /// </summary>
    private sealed class WrittenOut(HfReference reference, HfConfig c, Mistake mistake)
    {
        // Gemma3ForCausalLM's keys: causal, and on a sliding layer only the last sliding_window.
        private readonly Gemma3WrittenOut _layers = new(reference, c)
        {
            Sees = (t, s, sliding) => s <= t && (!sliding || mistake == Mistake.NoWindow || t - s < c.SlidingWindow),
            HeadDimScale = mistake == Mistake.HeadDimScale,
            NormWeightWithoutOne = mistake == Mistake.NormWeightWithoutOne,
            NoLinearFactor = mistake == Mistake.NoLinearFactor,
            SwappedRopeBases = mistake == Mistake.SwappedRopeBases,
            UnscaledEmbedding = mistake == Mistake.UnscaledEmbedding,
        };

        public double[] Logits(int[] tokens, int[] mask, int batch, int length)
        {
            int d = c.HiddenSize;
            double[] head = c.TieWordEmbeddings ? _layers.P("model.embed_tokens.weight") : _layers.P("lm_head.weight");
            var logits = new List<double>();
            for (int b = 0; b < batch; b++)
            {
                int[] ids = tokens[(b * length)..((b + 1) * length)];
                bool[] keep = mask[(b * length)..((b + 1) * length)].Select(v => v == 1).ToArray();
                foreach (double[] h in _layers.Hidden(ids, keep))
                    logits.AddRange(Enumerable.Range(0, c.VocabSize).Select(v => Enumerable.Range(0, d).Sum(e => head[v * d + e] * h[e])));
            }
            return logits.ToArray();
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Helpers

    private static HfConfig ReadJson(string json)
    {
        string path = Path.Combine(Path.GetTempPath(), $"tg-gemma3-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        try { return HfConfig.Read(path); }
        finally { File.Delete(path); }
    }

    private static double Evaluate(Func<Tensor> objective)
    {
        using DisposeScope scope = NewDisposeScope();
        using (no_grad()) return objective().item<double>();
    }

    private static int[] Tokens(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(Vocab)).ToArray();
    }
}
