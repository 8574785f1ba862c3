using System;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Onnx;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Export.Tests;

/// <summary>
/// What is T5's own in its ONNX graphs (the logits, cached steps and greedy decoding are checked with the other Hugging Face
/// encoder–decoders in <c>OnnxSeq2SeqFamilyTests.cs</c>): the buckets the graph looks distances up in are
/// <see cref="RelativePosition.Bucket"/>'s, the scores are not scaled, the bias goes to self-attention only, the tied head
/// reads × d_model^−½, the gated feed-forward is built from Tanh; and configs that contradict the model are refused.
/// </summary>
public sealed partial class OnnxExportTests
{
    /// <summary>An int64 initializer's values.</summary>
    private static long[] Int64Initializer(ModelProto model, string name) =>
        MemoryMarshal.Cast<byte, long>(model.Graph.Initializer.Single(i => i.Name == name).RawData.Span).ToArray();

    /// <summary>
    /// The whole graph of T5 (tied, ReLU) and Flan-T5 (untied, GEGLU): each stack's bucket of every distance −(span − 1) …
    /// span − 1 is RelativePosition.Bucket's (bidirectional in the encoder, causal in the decoder), and reaches the last
    /// bucket; one bias per stack, added in every self-attention and no cross-attention; no Mul by 1/√d_kv; the tied head's
    /// × d_model^−½ and no lm_head, or lm_head and no factor; Tanh (GEGLU) or Relu, no Erf; no position table.
    /// </summary>
    [Theory]
    [InlineData("t5")]
    [InlineData("flan-t5")]
    public void T5GraphHasTheModelsBucketsUnscaledScoresAndHead(string name)
    {
        (Seq2SeqModel model, string config) = BuildFamilySeq2Seq(name);
        ModelLayout layout = model.Layout;
        JsonElement json = JsonDocument.Parse(File.ReadAllBytes(config)).RootElement;
        int buckets = json.GetProperty("relative_attention_num_buckets").GetInt32(), maxDistance = json.GetProperty("relative_attention_max_distance").GetInt32();
        int encoderLayers = json.GetProperty("num_layers").GetInt32(), decoderLayers = json.GetProperty("num_decoder_layers").GetInt32();
        int dModel = json.GetProperty("d_model").GetInt32();
        bool tied = name == "t5";
        ModelProto graph = ModelProto.Parser.ParseFrom(File.ReadAllBytes(ExportFamilySeq2Seq(model, config).Path));

        foreach ((string stack, int span, bool bidirectional) in new[] { ("encoder", layout.SeqLen, true), ("decoder", layout.DecoderSeqLen, false) })
        {
            long[] theirs = Int64Initializer(graph, stack + ".relative_position_buckets");
            long[] ours = Enumerable.Range(-(span - 1), 2 * span - 1).Select(d => (long)RelativePosition.Bucket(d, bidirectional, buckets, maxDistance)).ToArray();
            Assert.Equal(ours, theirs);
            Assert.Contains(buckets - 1L, theirs); // keys after the query at the longest distances (the encoder), or before it (the decoder)
            if (bidirectional) Assert.Contains(buckets / 2 - 1L, theirs);
            output.WriteLine($"{layout.Name} {stack}: {theirs.Length} distances, buckets [{string.Join(" ", theirs)}]");
        }
        string[] outputs = graph.Graph.Node.SelectMany(n => n.Output).ToArray();
        Assert.DoesNotContain(outputs, o => o.EndsWith("scores_scaled", StringComparison.Ordinal));
        Assert.Equal(encoderLayers + decoderLayers, outputs.Count(o => o.EndsWith("scores_biased", StringComparison.Ordinal)));
        Assert.DoesNotContain(outputs, o => o.Contains("cross_scores_biased", StringComparison.Ordinal));
        Assert.Equal(["decoder.relative_position_bias", "encoder.relative_position_bias"], outputs.Where(o => o.EndsWith("relative_position_bias", StringComparison.Ordinal)).Order());

        string[] initializers = graph.Graph.Initializer.Select(i => i.Name).ToArray();
        Assert.Equal(tied, !initializers.Contains("lm_head.weight"));
        NodeProto[] scaled = graph.Graph.Node.Where(n => n.Output[0] == "head_input_scaled").ToArray();
        if (tied)
        {
            float factor = MemoryMarshal.Read<float>(graph.Graph.Initializer.Single(i => i.Name == scaled.Single().Input[1]).RawData.Span);
            Assert.Equal((float)(1.0 / Math.Sqrt(dModel)), factor);
        }
        else Assert.Empty(scaled);
        int layers = encoderLayers + decoderLayers;
        Assert.Equal(tied ? 0 : layers, graph.Graph.Node.Count(n => n.OpType == "Tanh"));
        Assert.Equal(tied ? layers : 0, graph.Graph.Node.Count(n => n.OpType == "Relu"));
        Assert.DoesNotContain(graph.Graph.Node, n => n.OpType is "Erf" or "LayerNormalization");
        Assert.DoesNotContain(initializers, n => n.Contains("position", StringComparison.Ordinal) && !n.Contains("relative", StringComparison.Ordinal));
    }

    /// <summary>
    /// A config that contradicts the model is refused (T5's with the untied Flan-T5, Flan-T5's with the tied T5, a table of
    /// other buckets, a Marian config), leaving no file; an mT5 config (model_type mt5, untied by default) of Flan-T5's sizes
    /// writes Flan-T5's graph byte for byte.
    /// </summary>
    [Fact]
    public void T5ExportReadsItsConfigAndRefusesOneThatContradictsIt()
    {
        (Seq2SeqModel t5, string t5Config) = BuildFamilySeq2Seq("t5");
        (Seq2SeqModel flan, string flanConfig) = BuildFamilySeq2Seq("flan-t5");
        string refused = Path.Combine(_folder, "refused.onnx");
        var e = Assert.Throws<ArgumentException>(() => t5.SaveOnnx(refused, new OnnxExportOptions { Config = flanConfig }));
        Assert.Contains("tie_word_embeddings = False", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => flan.SaveOnnx(refused, new OnnxExportOptions { Config = t5Config }));
        Assert.Contains("tie_word_embeddings = True", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => t5.SaveOnnx(refused, new OnnxExportOptions { Config = GgufLlamaCppTests.Config("marian") }));
        Assert.Contains("marian", e.Message, StringComparison.Ordinal);
        JsonObject moreBuckets = JsonNode.Parse(File.ReadAllText(t5Config))!.AsObject();
        moreBuckets["relative_attention_num_buckets"] = 16;
        string moreBucketsPath = Path.Combine(_folder, "t5-16-buckets.json");
        File.WriteAllText(moreBucketsPath, moreBuckets.ToJsonString());
        e = Assert.Throws<ArgumentException>(() => t5.SaveOnnx(refused, new OnnxExportOptions { Config = moreBucketsPath }));
        Assert.Contains("[16, 3]", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(refused));

        JsonObject mt5 = JsonNode.Parse(File.ReadAllText(flanConfig))!.AsObject();
        mt5["model_type"] = "mt5";
        mt5.Remove("tie_word_embeddings");
        string mt5Path = Path.Combine(_folder, "mt5.json");
        File.WriteAllText(mt5Path, mt5.ToJsonString());
        string a = Path.Combine(_folder, "flan.onnx"), b = Path.Combine(_folder, "flan-as-mt5.onnx");
        flan.SaveOnnx(a, new OnnxExportOptions { Config = flanConfig });
        flan.SaveOnnx(b, new OnnxExportOptions { Config = mt5Path });
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
    }
}
