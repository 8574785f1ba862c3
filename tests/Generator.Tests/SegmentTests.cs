using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Xunit;
using static TransformerGen.Generator.Tests.ConfigFixtures;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// Models of more parameter floats than one array holds (Llama-3.2-3B, Qwen2.5-3B) are laid out in segments of whole
/// tensors. The published 3B config compiles that way; small models split by a low TransformerGenParameterSegmentFloats
/// compute exactly what the same model in one buffer computes, from the same checkpoint, at every weight type.
/// </summary>
public class SegmentTests
{
    private const string Option = "build_property.TransformerGenParameterSegmentFloats";

    // A Llama with every matrix of at least 64 rows (so that each is packed: fp32 panels, bf16, 8-bit), 3 heads of 24 on
    // one key/value head of 24, 3 layers and an untied head; 144,144 parameter floats with the alignment.
    private const string Llama = """
        {
          "architectures": ["LlamaForCausalLM"],
          "bos_token_id": 1,
          "eos_token_id": 2,
          "head_dim": 24,
          "hidden_act": "silu",
          "hidden_size": 72,
          "intermediate_size": 136,
          "max_position_embeddings": 64,
          "model_type": "llama",
          "num_attention_heads": 3,
          "num_hidden_layers": 3,
          "num_key_value_heads": 1,
          "rms_norm_eps": 1e-05,
          "rope_theta": 10000.0,
          "tie_word_embeddings": false,
          "vocab_size": 97
        }
        """;

    private static readonly (string, string)[] Files = [("/repo/models/seg/config.json", Llama)];
    private static readonly string Source = Model("Config = \"models/seg/config.json\", SeqLen = 24, Batch = 2, Sequences = 2");

    private static ImmutableDictionary<string, string> Limit(string floats) => ImmutableDictionary<string, string>.Empty.Add(Option, floats);

    private static Type Load(GeneratorHarness.Result result) =>
        GeneratorHarness.Load(result).GetType("Demo.M") ?? throw new Xunit.Sdk.XunitException("no Demo.M in the output");

    private static (Type Whole, Type Split, ModelLayout Layout) Twins()
    {
        Type whole = Load(RunClean(Files, Source));
        Type split = Load(RunClean(Files, Limit("40000"), Source));
        var layout = (ModelLayout)split.GetField("s_layout", BindingFlags.NonPublic | BindingFlags.Static)!.GetValue(null)!;
        return (whole, split, layout);
    }

    private static TransformerModel ForInference(Type m, params object[] arguments)
    {
        MethodInfo factory = m.GetMethod("ForInference", arguments.Select(a => a.GetType()).ToArray())
            ?? throw new Xunit.Sdk.XunitException("no ForInference(" + string.Join(", ", arguments.Select(a => a.GetType().Name)) + ")");
        try { return (TransformerModel)factory.Invoke(null, arguments)!; }
        catch (TargetInvocationException e) when (e.InnerException is not null) { throw e.InnerException; }
    }

    [Fact]
    public void A_low_limit_splits_the_parameters_between_whole_tensors()
    {
        (_, _, ModelLayout layout) = Twins();
        Assert.Equal(5, layout.ParameterSegments.Count); // 144,144 floats in segments of at most 40,000 that end between tensors
        Assert.All(layout.ParameterSegments, floats => Assert.InRange(floats, 1, 40000));
        Assert.Equal(layout.ParameterCount, layout.ParameterSegments[0]);
        foreach (ParameterTensor t in layout.Tensors)
            Assert.InRange((long)t.Offset + t.Length, t.Length, layout.ParameterSegments[t.Segment]);
        // Projections read as one matrix (q, k, v; gate, up) stay together, back to back in one segment.
        ParameterTensor Named(string name) => layout.Tensors.Single(t => t.Name == name);
        ParameterTensor[] GroupOf(ParameterTensor first)
        {
            string prefix = first.Name[..(first.Name.LastIndexOf('.', first.Name.Length - ".weight".Length - 1) + 1)];
            string[] parts = first.Name.EndsWith("self_attn.q_proj.weight") ? ["q_proj", "k_proj", "v_proj"]
                : first.Name.EndsWith("mlp.gate_proj.weight") ? ["gate_proj", "up_proj"] : [];
            return parts.Length == 0 ? [first] : parts.Select(p => Named(prefix + p + ".weight")).ToArray();
        }
        for (int layer = 0; layer < 3; layer++)
            foreach (string first in new[] { "self_attn.q_proj", "mlp.gate_proj" })
            {
                ParameterTensor[] parts = GroupOf(Named($"model.layers.{layer}.{first}.weight"));
                Assert.True(parts.Length > 1);
                for (int i = 1; i < parts.Length; i++)
                {
                    Assert.Equal(parts[0].Segment, parts[i].Segment);
                    Assert.Equal(parts[i - 1].Offset + parts[i - 1].Length, parts[i].Offset);
                }
            }
        // Every segment but the last is full up to the next group: the one after it did not fit.
        for (int k = 0; k + 1 < layout.ParameterSegments.Count; k++)
        {
            ParameterTensor first = layout.Tensors.First(t => t.Segment == k + 1);
            long group = GroupOf(first).Sum(t => (long)t.Length);
            Assert.True(layout.ParameterSegments[k] + group > 40000, $"segment {k} ends at {layout.ParameterSegments[k]} though {first.Name}'s group ({group}) fit");
        }
        Assert.Equal(layout.Tensors.Count, layout.Tensors.Select(t => (t.Segment, t.Offset)).Distinct().Count());
        Assert.Contains(layout.PackedMatrices, m => m.Segment > 0);
        foreach (WeightMatrix m in layout.PackedMatrices)
            Assert.Contains(layout.Tensors, t => t.Segment == m.Segment && t.Offset == m.Offset);
    }

    [Theory]
    [InlineData(WeightType.Float32)]
    [InlineData(WeightType.BFloat16)]
    [InlineData(WeightType.Int8)]
    public void A_split_model_computes_what_the_whole_one_does_from_the_same_checkpoint(WeightType weights)
    {
        (Type whole, Type split, _) = Twins();
        string folder = Path.Combine(Path.GetTempPath(), "tg-segments-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            string checkpoint = Path.Combine(folder, "model.safetensors");
            ((TransformerModel)Activator.CreateInstance(whole, 3UL)!).Save(checkpoint);
            var a = (LanguageModel)ForInference(whole, checkpoint, weights);
            var b = (LanguageModel)ForInference(split, checkpoint, weights);
            Assert.Equal(a.WeightMatrixBytes, b.WeightMatrixBytes);
            Assert.Equal(a.BufferBytes, b.BufferBytes - 4L * (b.Layout.TotalParameterFloats - a.Layout.ParameterCount));
            int[] prompt = [1, 17, 33, 5, 90, 64, 12, 7, 41, 3, 28];
            float[] expected = a.Append(prompt).ToArray(), actual = b.Append(prompt).ToArray();
            Assert.Equal(expected, actual);
            foreach (int token in new[] { 44, 9, 71 })
                Assert.Equal(a.Append([token]).ToArray(), b.Append([token]).ToArray());
            Assert.Contains(expected, v => v != 0);
            // Two sequences in one pass, each in its own cache slot (a server's batched steps), the second already holding
            // the tokens above: the same bits as well.
            Assert.Equal(a.Append([5, 8, 13, 21, 34, 2, 4], [4, 3], [1, 0]).ToArray(), b.Append([5, 8, 13, 21, 34, 2, 4], [4, 3], [1, 0]).ToArray());
            Assert.Equal(a.Append([7, 9], [1, 1], [0, 1]).ToArray(), b.Append([7, 9], [1, 1], [0, 1]).ToArray());

            // GGUF reads tensor by tensor, each packed matrix unpacked into a copy: the split model writes the whole one's
            // bytes, which are those of the whole model unpacked first (the rounded weights), and neither instance changes.
            string config = Path.Combine(folder, "config.json");
            File.WriteAllText(config, Llama);
            long released = b.ReleasedWeightBytes;
            a.SaveGguf(Path.Combine(folder, "whole.gguf"), config, GgufTensorType.F32);
            b.SaveGguf(Path.Combine(folder, "split.gguf"), config, GgufTensorType.F32);
            byte[] gguf = File.ReadAllBytes(Path.Combine(folder, "whole.gguf"));
            Assert.Equal(gguf, File.ReadAllBytes(Path.Combine(folder, "split.gguf")));
            Assert.True(b.WeightsPacked || weights == WeightType.Float32);
            Assert.Equal(released, b.ReleasedWeightBytes);
            var unpacked = (LanguageModel)ForInference(whole, checkpoint, weights);
            Assert.True(unpacked.Parameters.Length > 0); // reading them unpacks the matrices in place
            Assert.False(unpacked.WeightsPacked);
            unpacked.SaveGguf(Path.Combine(folder, "unpacked.gguf"), config, GgufTensorType.F32);
            Assert.Equal(gguf, File.ReadAllBytes(Path.Combine(folder, "unpacked.gguf")));
            b.ResetCache();
            Assert.Equal(expected, b.Append(prompt).ToArray());

            // Weights loaded once serve several instances, each segment shared.
            var shared = (ModelWeights)split.GetMethod("LoadWeights", [typeof(string), typeof(WeightType)])!.Invoke(null, [checkpoint, weights])!;
            Assert.Equal(4L * b.Layout.TotalParameterFloats, shared.Bytes);
            var c = (LanguageModel)ForInference(split, shared);
            var d = (LanguageModel)ForInference(split, shared);
            Assert.Equal(expected, c.Append(prompt).ToArray());
            Assert.Equal(expected, d.Append(prompt).ToArray());
            c.SaveGguf(Path.Combine(folder, "shared.gguf"), config, GgufTensorType.F32); // shared weights export too, read only
            Assert.Equal(gguf, File.ReadAllBytes(Path.Combine(folder, "shared.gguf")));
            d.ResetCache();
            Assert.Equal(expected, d.Append(prompt).ToArray());
            Assert.True(c.BufferBytes < b.BufferBytes - 4L * 100000, $"an instance over shared weights holds {c.BufferBytes} bytes");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void A_split_model_runs_for_inference_only_and_says_why_elsewhere()
    {
        (_, Type split, _) = Twins();
        var training = Assert.Throws<TargetInvocationException>(() => Activator.CreateInstance(split, 3UL));
        var refusal = Assert.IsType<NotSupportedException>(training.InnerException);
        Assert.Equal("M has 144,144 parameter floats, more than one span holds (2³¹ − 1), in 5 segments: it runs for inference only (ForInference, LoadWeights); training needs its parameters and gradients as one span each", refusal.Message);

        TransformerModel model = ForInference(split, 5UL);
        Assert.Equal("M.Parameters: this model has 144,144 parameter floats in 5 segments, more than one span holds (2³¹ − 1); it loads checkpoints and runs inference, but Parameters needs its parameters as one span",
            Assert.Throws<NotSupportedException>(() => model.Parameters.Length).Message);
        Assert.Contains("Save needs its parameters as one span", Assert.Throws<NotSupportedException>(() => model.Save(Path.Combine(Path.GetTempPath(), "never.safetensors"))).Message);
        Assert.Contains("CopyParametersTo needs", Assert.Throws<NotSupportedException>(() => model.CopyParametersTo(new float[model.Layout.ParameterCount])).Message);
        Assert.Contains("SaveOnnx needs", Assert.Throws<NotSupportedException>(() => ((LanguageModel)model).SaveOnnx(Path.Combine(Path.GetTempPath(), "never.onnx"))).Message);
        Assert.False(File.Exists(Path.Combine(Path.GetTempPath(), "never.safetensors")));
        Assert.False(File.Exists(Path.Combine(Path.GetTempPath(), "never.onnx")));
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("8")]
    [InlineData("-40000")]
    [InlineData("3000000000")]
    public void TG0045_a_limit_that_is_not_a_number_of_floats(string value)
    {
        GeneratorHarness.Result result = GeneratorHarness.RunWith(Files, Limit(value), Source);
        Diagnostic d = Assert.Single(result.Problems);
        Assert.Equal("TG0045", d.Id);
        Assert.Equal($"The project's TransformerGenParameterSegmentFloats is '{value}'; a whole number of floats from 16 to 2,147,483,568 is expected (leave it out for the largest)", d.GetMessage());
        Assert.Empty(result.Run.GeneratedTrees);
    }

    [Fact]
    public void Llama_3_2_3B_Instruct_compiles_in_two_segments()
    {
        // The 1B's config with the 3B's sizes, as the hub publishes them.
        string json = Set(Set(Set(Set(PublishedConfigTests.Llama_3_2_1B_Instruct,
            "hidden_size", "3072"), "num_hidden_layers", "28"), "num_attention_heads", "24"), "head_dim", "128");
        GeneratorHarness.Result result = RunClean([("/repo/models/Llama-3.2-3B-Instruct/config.json", json)],
            Model("Config = \"models/Llama-3.2-3B-Instruct/config.json\", SeqLen = 2048, Batch = 1"));
        string source = result.GeneratedSource;
        // The published count: 128,256 · 3,072 tied + 28 layers of 100,669,440 + 3,072.
        Assert.Contains("public const long ParameterCount = 3212749824;", source);
        Match segments = Regex.Match(source, @"ParameterSegments = new\[\] \{ (\d+), (\d+) \}");
        Assert.True(segments.Success, "no two parameter segments");
        long first = long.Parse(segments.Groups[1].Value), second = long.Parse(segments.Groups[2].Value);
        Assert.InRange(first, 2_000_000_000L, 2_147_483_568L);
        Assert.Equal(3212749824L, first + second); // every tensor is a multiple of 16 floats: no alignment padding
        Assert.Contains($"parameterCount: {first},", source);
        Assert.Contains("global::System.Span<float> p1 = ParameterSegment(1);", source);
        Assert.Contains("{ Segment = 1 }", source);
        // Layer 0 lies in the first segment, the last layer and the final norm in the second; the tied table in the first.
        Assert.Matches(@"new\(""model.layers.0.self_attn.q_proj.weight"", new\[\] \{ 3072, 3072 \}, \d+, [^)]*\),", source);
        Assert.Matches(@"new\(""model.layers.27.mlp.down_proj.weight"", new\[\] \{ 3072, 8192 \}, \d+, [^)]*\) \{ Segment = 1 \},", source);
        Assert.Matches(@"new\(""model.norm.weight"", new\[\] \{ 3072 \}, \d+, [^)]*\) \{ Segment = 1 \},", source);
    }
    [Fact]
    public void Qwen2_5_3B_Instruct_compiles_in_two_segments()
    {
        const string json = """
            {
              "architectures": ["Qwen2ForCausalLM"],
              "attention_dropout": 0.0,
              "bos_token_id": 151643,
              "eos_token_id": 151645,
              "hidden_act": "silu",
              "hidden_size": 2048,
              "initializer_range": 0.02,
              "intermediate_size": 11008,
              "max_position_embeddings": 32768,
              "max_window_layers": 70,
              "model_type": "qwen2",
              "num_attention_heads": 16,
              "num_hidden_layers": 36,
              "num_key_value_heads": 2,
              "rms_norm_eps": 1e-06,
              "rope_theta": 1000000.0,
              "sliding_window": 32768,
              "tie_word_embeddings": true,
              "torch_dtype": "bfloat16",
              "transformers_version": "4.43.1",
              "use_cache": true,
              "use_sliding_window": false,
              "vocab_size": 151936
            }
            """;
        string source = RunClean([("/repo/models/Qwen2.5-3B-Instruct/config.json", json)],
            Model("Config = \"models/Qwen2.5-3B-Instruct/config.json\", SeqLen = 4096, Batch = 1")).GeneratedSource;
        // 151,936 · 2,048 tied + 36 layers of 77,076,992 (q/k/v biases) + 2,048: the published 3.09 B.
        Assert.Contains("public const long ParameterCount = 3085938688;", source);
        Match segments = Regex.Match(source, @"ParameterSegments = new\[\] \{ (\d+), (\d+) \}");
        Assert.True(segments.Success, "no two parameter segments");
        Assert.Equal(3085938688L, long.Parse(segments.Groups[1].Value) + long.Parse(segments.Groups[2].Value));
        Assert.Matches(@"new\(""model.layers.35.self_attn.k_proj.bias"", new\[\] \{ 256 \}, \d+, [^)]*\) \{ Segment = 1 \},", source);
        // Inference only: no training passes, and nothing reads the training workspace.
        Assert.Contains("private void Layer35Infer(", source);
        Assert.DoesNotContain("Layer35Forward(", source);
        Assert.DoesNotContain("Layer0Backward(", source);
        Assert.DoesNotContain("ActivationBuffer", source);
        Assert.Contains("protected override float ForwardCore() => throw new global::System.NotSupportedException(", source);
    }
    [Fact]
    public void Llama_3_1_8B_shaped_config_compiles_in_four_segments()
    {
        // Llama-3.1-8B-Instruct's sizes, untied head and llama3 factor 8 on the 3.2 config's keys.
        string json = Set(Set(Set(Set(Set(Set(Set(PublishedConfigTests.Llama_3_2_1B_Instruct,
            "hidden_size", "4096"), "intermediate_size", "14336"), "num_hidden_layers", "32"), "num_attention_heads", "32"),
            "head_dim", "128"), "tie_word_embeddings", "false"), "factor", "8.0");
        string source = RunClean([("/repo/models/Llama-3.1-8B-Instruct/config.json", json)],
            Model("Config = \"models/Llama-3.1-8B-Instruct/config.json\", SeqLen = 2048, Batch = 1")).GeneratedSource;
        // 2 · 128,256 · 4,096 + 32 layers of 218,112,000 + 4,096: the published 8.03 B.
        Assert.Contains("public const long ParameterCount = 8030261248;", source);
        Match segments = Regex.Match(source, @"ParameterSegments = new\[\] \{ (\d+), (\d+), (\d+), (\d+) \}");
        Assert.True(segments.Success, "no four parameter segments");
        long[] floats = [.. segments.Groups.Cast<Group>().Skip(1).Select(g => long.Parse(g.Value))];
        Assert.Equal(8030261248L, floats.Sum());
        Assert.All(floats, f => Assert.InRange(f, 1L, 2_147_483_568L));
        Assert.Contains("global::System.Span<float> p3 = ParameterSegment(3);", source);
        Assert.Matches(@"new\(""lm_head.weight"", new\[\] \{ 128256, 4096 \}, \d+, [^)]*\) \{ Segment = 3 \},", source);
        Assert.Contains("RotaryScaling.Llama3(factor: 8f,", source);
    }
}
