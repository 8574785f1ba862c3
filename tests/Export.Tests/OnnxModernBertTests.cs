using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Onnx;
using Xunit;

namespace TransformerGen.Export.Tests;

/// <summary>
/// ModernBERT's ONNX graph (<see cref="OnnxModernBert"/>, <see cref="OnnxModernBertBias"/>): LayerNorms with or without a
/// shift, no norm before layer 0's attention, Wqkv, rotate_half with a base per layer kind, local layers that see
/// |i − j| ≤ local_attention // 2, GEGLU with the erf GELU, final_norm and the sentence-transformers head, run by ONNX
/// Runtime on padded batches long enough for keys to fall outside the window.
/// </summary>
public sealed partial class OnnxExportTests
{
    /// <summary>Each ModernBERT fixture with random weights at a trained model's scales (norm gains 1 + N(0, 0.1²)).</summary>
    private static EncoderModel ModernBert(string fixture)
    {
        EncoderModel model = fixture switch
        {
            "modernbert-plain" => new OnnxModernBert(1),
            "modernbert-bias" => new OnnxModernBertBias(1),
            "modernbert-tanh" => new OnnxModernBertTanh(1),
            _ => throw new ArgumentException(fixture),
        };
        Weights.Randomize(model, seed: 11);
        model.Training = false;
        return model;
    }

    /// <summary>
    /// Three sequences: all SeqLen tokens, 8 and 4, padded after their tokens with the padding id (which no real token is).
    /// The first two reach distances past the local layers' window (3, or 2 in modernbert-tanh).
    /// </summary>
    private static int[] ModernBertTokens(ModelLayout layout, ulong seed = 21)
    {
        int s = layout.SeqLen, pad = layout.PadToken;
        Assert.InRange(pad, 1, layout.Vocab - 2);
        int[] tokens = Tokens(layout, seed).Select(t => t == pad ? pad + 1 : t).ToArray();
        for (int t = 8; t < s; t++) tokens[s + t] = pad;
        for (int t = 4; t < s; t++) tokens[2 * s + t] = pad;
        return tokens;
    }

    /// <summary>The reference's settings from the fixture's config.json (the keys transformers reads, with its defaults).</summary>
    private static ModernBertReference.Settings ModernBertSettings(string fixture)
    {
        string config = GgufLlamaCppTests.Config(fixture);
        JsonObject json = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        double Base(string kind, string key, double fallback) =>
            json["rope_parameters"]?[kind]?["rope_theta"]?.GetValue<double>() ?? json[key]?.GetValue<double>() ?? fallback;
        string dense = Path.Combine(Path.GetDirectoryName(config)!, "2_Dense", "config.json");
        return new ModernBertReference.Settings(
            json["num_attention_heads"]!.GetValue<int>(), json["norm_eps"]?.GetValue<double>() ?? 1e-5,
            json["global_attn_every_n_layers"]?.GetValue<int>() ?? 3, json["local_attention"]?.GetValue<int>() ?? 128,
            Base("full_attention", "global_rope_theta", 160000), Base("sliding_attention", "local_rope_theta", 10000),
            File.Exists(dense) && File.ReadAllText(dense).Contains("activation.Tanh", StringComparison.Ordinal),
            json["hidden_activation"]?.GetValue<string>() is "gelu_pytorch_tanh" or "gelu_new");
    }

    /// <summary>
    /// A padded batch (11 or 12 tokens, 8, 4): ONNX Runtime's sentence embeddings and last hidden states (real tokens) equal
    /// ours within 1e-5 of the largest value, for the fixture without any bias (mean pooling), the one with every bias
    /// (rope_parameters, [CLS] pooling, a Dense layer) and the one with the tanh GELU.
    /// </summary>
    [Theory]
    [InlineData("modernbert-plain")]
    [InlineData("modernbert-bias")]
    [InlineData("modernbert-tanh")]
    public void ModernBertSentenceEmbeddingsMatchOurs(string fixture)
    {
        EncoderModel model = ModernBert(fixture);
        ModelLayout layout = model.Layout;
        using var runner = new OnnxRuntimeRunner(Export(model, GgufLlamaCppTests.Config(fixture)));
        Assert.Equal(new[] { "input_ids", "attention_mask" }, runner.InputNames);
        Assert.Equal(new[] { "last_hidden_state", "sentence_embedding" }, runner.OutputNames);
        int[] tokens = ModernBertTokens(layout);
        float[] ours = model.Predict(tokens).ToArray();
        float[] oursHidden = model.LastHiddenState.ToArray();
        Dictionary<string, float[]> theirs = runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens));
        double embeddings = Relative(ours, theirs["sentence_embedding"], ours.Length / layout.Batch);
        double states = Relative(oursHidden, theirs["last_hidden_state"], oursHidden.Length / tokens.Length, row => tokens[row] != layout.PadToken);
        output.WriteLine($"{layout.Name} ({layout.Pooling} pooling), lengths {string.Join(", ", Lengths(layout, tokens))}: " +
            $"sentence embeddings relative {embeddings:G3}, last hidden state (real tokens) {states:G3}");
        Assert.True(embeddings < Tolerance, $"sentence embeddings: relative {embeddings}");
        Assert.True(states < Tolerance, $"last hidden state: relative {states}");
    }

    /// <summary>
    /// 8-bit blocks: with ONNX Runtime's default accuracy level 4 (activations quantized per block too) the sentence
    /// embeddings stay within 6e-2 of our fp32 ones (measured 1.2e-2 mean-pooled; 4.2e-2 from [CLS] through the tanh Dense
    /// layer, which no average smooths: the weights' rounding alone moves ours by 2.7% there); with level 0 (fp32
    /// activations) the graph equals, within 1e-5, our model with its matrices rounded to the same blocks (the test's own
    /// rounding: 32 weights along a row, scale max|w|/127 in fp32, halves away from zero), so the 8-bit graph computes
    /// the rounded weights and nothing else.
    /// </summary>
    [Theory]
    [InlineData("modernbert-plain")]
    [InlineData("modernbert-bias")]
    public void ModernBertInt8BlocksAreOurRoundedWeights(string fixture)
    {
        EncoderModel model = ModernBert(fixture);
        ModelLayout layout = model.Layout;
        string config = GgufLlamaCppTests.Config(fixture), int8 = Export(model, config, OnnxWeightFormat.Int8Blocks);
        string exact = Path.Combine(_folder, $"{fixture}.int8-level0.onnx");
        OnnxExport.Save(model, exact, new OnnxExportOptions { Config = config, Weights = OnnxWeightFormat.Int8Blocks, Int8AccuracyLevel = 0 });
        int[] tokens = ModernBertTokens(layout);
        float[] ours = model.Predict(tokens).ToArray();
        int width = ours.Length / layout.Batch;
        Dictionary<string, float[]> theirs, theirsExact;
        using (var runner = new OnnxRuntimeRunner(int8)) theirs = runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens));
        using (var runner = new OnnxRuntimeRunner(exact)) theirsExact = runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens));

        int rounded = 0;
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            if (t.IsVector || t.Name == "embeddings.tok_embeddings.weight") continue; // the token table stays fp32
            Span<float> w = model.Parameters.Slice(t.Offset, t.Length);
            int columns = t.Shape[1];
            for (int row = 0; row < t.Shape[0]; row++)
                for (int start = 0; start < columns; start += 32) RoundBlock(w.Slice(row * columns + start, Math.Min(32, columns - start)));
            rounded++;
        }
        float[] oursRounded = model.Predict(tokens).ToArray();
        double relative = Relative(ours, theirs["sentence_embedding"], width), toRounded = Relative(oursRounded, theirsExact["sentence_embedding"], width);
        long fp32Bytes = new FileInfo(Export(ModernBert(fixture), config)).Length, int8Bytes = new FileInfo(int8).Length;
        output.WriteLine($"{layout.Name} int8 blocks ({layout.Pooling} pooling): relative {relative:G3} to ours (rounding the weights alone: " +
            $"{Relative(ours, oursRounded, width):G3}); accuracy level 0 to ours with {rounded} matrices rounded {toRounded:G3}; {int8Bytes} bytes against {fp32Bytes} ({100.0 * int8Bytes / fp32Bytes:F0}%)");
        Assert.True(relative < 6e-2, $"relative {relative}");
        Assert.True(relative > 1e-6, "the weights were not quantized");
        Assert.True(toRounded < Tolerance, $"level 0 against our rounded weights: {toRounded}");
        Assert.True(int8Bytes < fp32Bytes * 2 / 3, $"{int8Bytes} bytes against {fp32Bytes}");

        // One block as Q8_0 rounds it, with the scale kept in fp32.
        static void RoundBlock(Span<float> block)
        {
            float max = 0f;
            foreach (float v in block) max = Math.Max(max, Math.Abs(v));
            float scale = max / 127f, inverse = scale == 0f ? 0f : 1f / scale;
            for (int i = 0; i < block.Length; i++)
                block[i] = Math.Clamp((int)MathF.Round(block[i] * inverse, MidpointRounding.AwayFromZero), -127, 127) * scale;
        }
    }

    /// <summary>
    /// Batch and sequence are dynamic: the batch at 8 positions equals ours with the first sequence cut to 8 tokens (the
    /// others are no longer), and the second sequence alone, [1, 8], equals its row of the batch.
    /// </summary>
    [Theory]
    [InlineData("modernbert-plain")]
    [InlineData("modernbert-bias")]
    public void ModernBertShorterAndSmallerBatchesMatchOurs(string fixture)
    {
        EncoderModel model = ModernBert(fixture);
        ModelLayout layout = model.Layout;
        using var runner = new OnnxRuntimeRunner(Export(model, GgufLlamaCppTests.Config(fixture)));
        int s = layout.SeqLen, n = 8, pad = layout.PadToken, batch = layout.Batch;
        int[] tokens = ModernBertTokens(layout, seed: 22);
        for (int t = n; t < s; t++) tokens[t] = pad;
        float[] ours = model.Predict(tokens).ToArray();
        float[] oursHidden = model.LastHiddenState.ToArray();
        int width = ours.Length / batch, hidden = oursHidden.Length / tokens.Length;
        var shortTokens = new int[batch * n];
        var oursShortHidden = new float[batch * n * hidden];
        for (int b = 0; b < batch; b++)
        {
            tokens.AsSpan(b * s, n).CopyTo(shortTokens.AsSpan(b * n));
            oursHidden.AsSpan(b * s * hidden, n * hidden).CopyTo(oursShortHidden.AsSpan(b * n * hidden));
        }
        Dictionary<string, float[]> theirs = runner.Run(batch, n, Inputs(runner, layout, shortTokens));
        double embeddings = Relative(ours, theirs["sentence_embedding"], width);
        double states = Relative(oursShortHidden, theirs["last_hidden_state"], hidden, row => shortTokens[row] != pad);
        int[] second = shortTokens.AsSpan(n, n).ToArray();
        Dictionary<string, float[]> alone = runner.Run(1, n, Inputs(runner, layout, second));
        double single = Relative(ours.AsSpan(width, width).ToArray(), alone["sentence_embedding"], width);
        output.WriteLine($"{layout.Name}: {batch}×{n} sentence embeddings relative {embeddings:G3}, last hidden state {states:G3}; 1×{n} {single:G3}");
        Assert.True(embeddings < Tolerance, $"sentence embeddings: relative {embeddings}");
        Assert.True(states < Tolerance, $"last hidden state: relative {states}");
        Assert.True(single < Tolerance, $"one sequence: relative {single}");
    }

    /// <summary>
    /// The graph is ModernBERT's: nine LayerNormalizations (the embeddings', layers 1–3's attention norms, four feed-forward
    /// norms, final_norm), none before layer 0's attention, with the shift input only when the model has the biases; layers
    /// 0 and 3 mask padding only and rotate with the global table, layers 1 and 2 mask padding and |i − j| &gt; 3 and rotate
    /// with the local table; both tables are Positional.RotaryTables' with the config's bases; one Erf per layer (GEGLU).
    /// </summary>
    [Theory]
    [InlineData("modernbert-plain", false, 160000f, 10000f)]
    [InlineData("modernbert-bias", true, 80000f, 20000f)]
    public void ModernBertGraphHasItsNormsMasksAndRotaryTables(string fixture, bool biases, float globalTheta, float localTheta)
    {
        EncoderModel model = ModernBert(fixture);
        int s = model.Layout.SeqLen;
        ModelProto graph = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Export(model, GgufLlamaCppTests.Config(fixture))));
        NodeProto[] nodes = graph.Graph.Node.ToArray();
        NodeProto Producer(string value) => nodes.Single(node => node.Output.Contains(value));

        NodeProto[] norms = nodes.Where(node => node.OpType == "LayerNormalization").ToArray();
        Assert.Equal(new[] { "embedding_norm", "layers.0.ffn_norm", "layers.1.attention_norm", "layers.1.ffn_norm", "layers.2.attention_norm",
            "layers.2.ffn_norm", "layers.3.attention_norm", "layers.3.ffn_norm", "norm_f" }, norms.Select(node => node.Output[0]).Order(StringComparer.Ordinal));
        Assert.All(norms, node => Assert.Equal(biases ? 3 : 2, node.Input.Count));
        // Layer 0's queries, keys and values are projected from the embeddings' norm itself.
        Assert.Equal("embedding_norm", Producer("layers.0.qkv_product").Input[0]);

        for (int layer = 0; layer < 4; layer++)
        {
            bool local = layer % 3 != 0;
            Assert.Equal(local ? "sliding_attention_mask_bool" : "key_mask", Producer($"layers.{layer}.scores_masked").Input[0]);
            Assert.Equal(local ? "rotary_local_cos_rows" : "rotary_cos_rows", Producer($"layers.{layer}.q_rotated_cos").Input[1]);
            Assert.Equal(local ? "rotary_local_sin_rows" : "rotary_sin_rows", Producer($"layers.{layer}.k_rotated_sin").Input[1]);
        }
        TensorProto visible = graph.Graph.Initializer.Single(i => i.Name.StartsWith("query_key_visible", StringComparison.Ordinal));
        Assert.Equal(new long[] { s, s }, visible.Dims);
        byte[] window = visible.RawData.ToByteArray();
        for (int i = 0; i < s; i++)
            for (int j = 0; j < s; j++) Assert.Equal(Math.Abs(i - j) <= 3 ? 1 : 0, window[i * s + j]);

        const int headDim = 12;
        foreach ((string name, float theta) in new[] { ("rotary_cos", globalTheta), ("rotary_local_cos", localTheta) })
        {
            var cos = new float[s * headDim / 2];
            var sin = new float[cos.Length];
            Kernels.Positional.RotaryTables(cos, sin, s, headDim, theta);
            float[] stored = MemoryMarshal.Cast<byte, float>(graph.Graph.Initializer.Single(i => i.Name == name).RawData.Span).ToArray();
            for (int p = 0; p < s; p++)
                for (int c = 0; c < headDim; c++) Assert.Equal(cos[p * headDim / 2 + c % (headDim / 2)], stored[p * headDim + c]);
        }
        Assert.Equal(4, nodes.Count(node => node.OpType == "Erf"));
        Assert.Equal(4, nodes.Count(node => node.OpType == "Split" && node.Output[0].Contains("ffn_gate_up", StringComparison.Ordinal)));
        if (biases)
        {
            Assert.Contains(nodes, node => node.Output[0] == "first_token");
            Assert.Contains(nodes, node => node.OpType == "Tanh" && node.Output[0] == "2_Dense_output");
        }
        else
        {
            Assert.Contains(nodes, node => node.Output[0] == "pool_sum");
        }
    }

    /// <summary>
    /// What decides the match: a double-precision ModernBERT written from transformers' code (<see cref="ModernBertReference"/>)
    /// gives ours and ONNX Runtime's within 1e-5; the same without the local layers' window, or with a norm before layer 0's
    /// attention, is far from ONNX Runtime's (so an export that lost either would fail the tests above); and ONNX Runtime on
    /// the exported graph with its window table set to all true equals the reference without the window.
    /// </summary>
    [Theory]
    [InlineData("modernbert-plain")]
    [InlineData("modernbert-bias")]
    [InlineData("modernbert-tanh")]
    public void ModernBertWindowAndBareFirstLayerAreWhatMatch(string fixture)
    {
        EncoderModel model = ModernBert(fixture);
        ModelLayout layout = model.Layout;
        string path = Export(model, GgufLlamaCppTests.Config(fixture));
        int[] tokens = ModernBertTokens(layout);
        float[] ours = model.Predict(tokens).ToArray();
        float[] oursHidden = model.LastHiddenState.ToArray();
        int width = ours.Length / layout.Batch, hidden = oursHidden.Length / tokens.Length;
        bool Real(int row) => tokens[row] != layout.PadToken;
        Dictionary<string, float[]> theirs;
        using (var runner = new OnnxRuntimeRunner(path)) theirs = runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens));

        ModernBertReference.Settings settings = ModernBertSettings(fixture);
        (float[] Hidden, float[] Embeddings) Reference(ModernBertReference.Settings s) =>
            ModernBertReference.Run(model, s, tokens, layout.Batch, layout.PadToken, layout.Pooling);
        (float[] referenceHidden, float[] reference) = Reference(settings);
        (float[] unwindowedHidden, float[] unwindowed) = Reference(settings with { Window = false });
        (float[] normedHidden, float[] normed) = Reference(settings with { BareFirstLayer = false });

        // The graph with its window table (the only one: the global layers mask padding alone) opened to every pair.
        ModelProto graph = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        TensorProto visible = graph.Graph.Initializer.Single(i => i.Name.StartsWith("query_key_visible", StringComparison.Ordinal));
        visible.RawData = ByteString.CopyFrom(Enumerable.Repeat((byte)1, visible.RawData.Length).ToArray());
        string open = Path.Combine(_folder, $"{fixture}-no-window.onnx");
        File.WriteAllBytes(open, graph.ToByteArray());
        Dictionary<string, float[]> theirsOpen;
        using (var runner = new OnnxRuntimeRunner(open)) theirsOpen = runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens));

        double oursToReference = Math.Max(Relative(reference, ours, width), Relative(referenceHidden, oursHidden, hidden, Real));
        double theirsToReference = Math.Max(Relative(reference, theirs["sentence_embedding"], width), Relative(referenceHidden, theirs["last_hidden_state"], hidden, Real));
        double withoutWindow = Math.Min(Relative(unwindowed, theirs["sentence_embedding"], width), Relative(unwindowedHidden, theirs["last_hidden_state"], hidden, Real));
        double withFirstNorm = Math.Min(Relative(normed, theirs["sentence_embedding"], width), Relative(normedHidden, theirs["last_hidden_state"], hidden, Real));
        double openToUnwindowed = Math.Max(Relative(unwindowed, theirsOpen["sentence_embedding"], width), Relative(unwindowedHidden, theirsOpen["last_hidden_state"], hidden, Real));
        double openToOurs = Relative(ours, theirsOpen["sentence_embedding"], width);
        output.WriteLine($"{layout.Name}: ours to the double-precision reference {oursToReference:G3}, ONNX Runtime {theirsToReference:G3}; " +
            $"ONNX Runtime to the reference without the window {withoutWindow:G3}, with a norm before layer 0's attention {withFirstNorm:G3}; " +
            $"the graph without its window to the reference without {openToUnwindowed:G3}, to ours {openToOurs:G3}");
        Assert.True(oursToReference < Tolerance, $"ours against the reference: {oursToReference}");
        Assert.True(theirsToReference < Tolerance, $"ONNX Runtime against the reference: {theirsToReference}");
        Assert.True(withoutWindow > 100 * Tolerance, $"the window changes the outputs by {withoutWindow} only");
        Assert.True(withFirstNorm > 100 * Tolerance, $"a norm before layer 0's attention changes the outputs by {withFirstNorm} only");
        Assert.True(openToUnwindowed < Tolerance, $"the graph without its window against the reference without: {openToUnwindowed}");
        Assert.True(openToOurs > 100 * Tolerance, $"the graph without its window against ours: {openToOurs}");
    }

    /// <summary>
    /// A config the model was not compiled from, or one whose model the graph would compute otherwise, is refused with the
    /// reason, and no file is left. Each is the fixture's config with one key changed.
    /// </summary>
    [Theory]
    [InlineData("norm_bias", "true", "says norm_bias = true, and OnnxModernBert has no embeddings.norm.bias")]
    [InlineData("attention_bias", "true", "says attention_bias = true, and OnnxModernBert has no layers.0.attn.Wqkv.bias")]
    [InlineData("num_hidden_layers", "5", "says num_hidden_layers = 5; OnnxModernBert has 4 layers")]
    [InlineData("head_dim", "18", "says head_dim = 18; ModernBERT's heads are hidden_size / num_attention_heads = 12 wide")]
    [InlineData("layer_types", """["full_attention", "full_attention", "sliding_attention", "full_attention"]""", "disagree with global_attn_every_n_layers = 3")]
    [InlineData("local_attention", "1", "local_attention 1 lets a local layer's query see its own key only")]
    [InlineData("hidden_activation", "\"relu\"", "hidden_activation relu; ModernBERT's gated feed-forward is exported with gelu")]
    [InlineData("rope_parameters", """{"full_attention": {"rope_theta": 160000.0, "rope_type": "yarn", "factor": 2.0}, "sliding_attention": {"rope_theta": 10000.0}}""", "rope_parameters.full_attention is yarn; scaled rotary positions are not exported")]
    [InlineData("model_type", "\"bert\"", "is a bert config; OnnxModernBert was compiled from a ModernBert one")]
    public void ModernBertExportRefusesWhatItCannotWrite(string key, string json, string expected)
    {
        EncoderModel model = ModernBert("modernbert-plain");
        JsonObject config = JsonNode.Parse(File.ReadAllText(GgufLlamaCppTests.Config("modernbert-plain")))!.AsObject();
        config[key] = JsonNode.Parse(json);
        string configPath = Path.Combine(_folder, "config.json"), path = Path.Combine(_folder, "refused.onnx");
        File.WriteAllText(configPath, config.ToJsonString());
        Exception e = Assert.ThrowsAny<Exception>(() => model.SaveOnnx(path, new OnnxExportOptions { Config = configPath }));
        output.WriteLine($"{e.GetType().Name}: {e.Message}");
        Assert.True(e is ArgumentException or NotSupportedException, e.GetType().Name);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }

    /// <summary>The model with every bias against the config without them: the tensors the config denies are named.</summary>
    [Fact]
    public void ModernBertExportRefusesAConfigWithoutTheModelsBiases()
    {
        EncoderModel model = ModernBert("modernbert-bias");
        string path = Path.Combine(_folder, "refused.onnx");
        var e = Assert.Throws<ArgumentException>(() => model.SaveOnnx(path, new OnnxExportOptions { Config = GgufLlamaCppTests.Config("modernbert-plain") }));
        output.WriteLine(e.Message);
        Assert.Contains("says norm_bias = false, and OnnxModernBertBias has embeddings.norm.bias", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => model.SaveOnnx(path));
        Assert.Contains("config.json", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }
}
