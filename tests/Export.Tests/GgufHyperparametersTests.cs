using System;
using System.IO;
using System.Linq;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Export.Tests;

/// <summary>Hyperparameters read from config.json with each family's defaults (MODEL_FAMILIES.md §1.3, §3.4).</summary>
public sealed class GgufHyperparametersTests : System.IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("gguf-config-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private GgufHyperparameters Read(string json)
    {
        string path = Path.Combine(_folder, "config.json");
        File.WriteAllText(path, json);
        return GgufHyperparameters.FromConfig(path);
    }

    [Fact]
    public void LlamaDefaults()
    {
        GgufHyperparameters h = Read("""{ "model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": null, "head_dim": null }""");
        Assert.Equal(4, h.Heads);
        Assert.Equal(4, h.KeyValueHeads); // null → as many as the heads
        Assert.Equal(16, h.HeadDim);      // null → hidden / heads
        Assert.Equal(1e-6f, h.NormEpsilon);
        Assert.Equal(10000f, h.RopeTheta);
        Assert.Equal(0, h.ContextLength);
        Assert.Equal(-1, h.BosToken);
    }

    [Fact]
    public void Qwen2AndLlama3Keys()
    {
        GgufHyperparameters h = Read("""
            { "model_type": "qwen2", "hidden_size": 896, "num_attention_heads": 14, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
              "rope_parameters": { "rope_type": "default", "rope_theta": 1000000.0 }, "max_position_embeddings": 32768,
              "bos_token_id": 151643, "eos_token_id": [151645, 151643] }
            """);
        Assert.Equal((14, 2, 64), (h.Heads, h.KeyValueHeads, h.HeadDim));
        Assert.Equal(1e6f, h.RopeTheta);    // transformers v5's rope_parameters
        Assert.Equal(32768, h.ContextLength);
        Assert.Equal(151645, h.EosToken);   // a list: its first id
    }

    [Fact]
    public void Qwen3HeadSize()
    {
        GgufHyperparameters h = Read("""
            { "model_type": "qwen3", "hidden_size": 1024, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
              "rms_norm_eps": 1e-06, "rope_theta": 1000000, "max_position_embeddings": 40960, "bos_token_id": 151643, "eos_token_id": 151645 }
            """);
        Assert.Equal((16, 8, 128), (h.Heads, h.KeyValueHeads, h.HeadDim)); // head_dim, not 1024 / 16
        Assert.Equal(1e-6f, h.NormEpsilon);
        Assert.Equal(1e6f, h.RopeTheta);
        Assert.Equal(40960, h.ContextLength);
    }

    [Fact]
    public void Phi3MiniKeysAndItsWindow()
    {
        // Phi-3-mini-4k-instruct's config, the keys GGUF reads.
        GgufHyperparameters h = Read("""
            { "model_type": "phi3", "hidden_size": 3072, "num_attention_heads": 32, "num_key_value_heads": 32, "rms_norm_eps": 1e-05,
              "rope_theta": 10000.0, "rope_scaling": null, "max_position_embeddings": 4096, "sliding_window": 2047,
              "bos_token_id": 1, "eos_token_id": 32000 }
            """);
        Assert.Equal((32, 32, 96), (h.Heads, h.KeyValueHeads, h.HeadDim));
        Assert.Equal(1e-5f, h.NormEpsilon);
        Assert.Equal(4096, h.ContextLength);
        Assert.Equal(2047, h.SlidingWindow);
        Assert.Equal(0, Read("""{ "model_type": "phi3", "hidden_size": 64, "num_attention_heads": 4, "sliding_window": null }""").SlidingWindow);
        // Only Phi-3's is read: Qwen2's sliding_window is off unless use_sliding_window says otherwise, and llama has no such key.
        Assert.Equal(0, Read("""{ "model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4, "sliding_window": 32768 }""").SlidingWindow);
    }

    [Fact]
    public void Gemma3KeysAndDefaults()
    {
        // gemma-3-270m's config, the keys GGUF reads: its layer_types make every sixth layer full.
        string types = string.Join(", ", Enumerable.Range(0, 18).Select(i => (i + 1) % 6 == 0 ? "\"full_attention\"" : "\"sliding_attention\""));
        GgufHyperparameters h = Read($$"""
            { "model_type": "gemma3_text", "hidden_size": 640, "num_hidden_layers": 18, "num_attention_heads": 4, "num_key_value_heads": 1,
              "head_dim": 256, "intermediate_size": 2048, "layer_types": [{{types}}], "max_position_embeddings": 32768, "pad_token_id": 0,
              "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000.0, "rope_scaling": null,
              "rope_theta": 1000000.0, "sliding_window": 512, "_sliding_window_pattern": 6, "bos_token_id": 2, "eos_token_id": 1 }
            """);
        Assert.Equal((4, 1, 256), (h.Heads, h.KeyValueHeads, h.HeadDim));
        Assert.Equal((1e6f, 1e4f, 1f), (h.RopeTheta, h.LocalRopeTheta, LinearFactor(h)));
        Assert.Equal((512, 256f, 32768), (h.SlidingWindow, h.QueryPreAttentionScalar, h.ContextLength));
        Assert.Equal((2, 1, 0), (h.BosToken, h.EosToken, h.PadToken));
        Assert.Equal(Enumerable.Range(0, 18).Select(i => (i + 1) % 6 != 0), h.SlidingLayers);

        // Gemma3TextConfig's defaults; without layer_types, every sliding_window_pattern-th layer is full; linear scaling read.
        h = Read("""
            { "model_type": "gemma3_text", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 2, "sliding_window_pattern": 2,
              "rope_scaling": { "rope_type": "linear", "factor": 8.0 } }
            """);
        Assert.Equal((4, 256, 1e-6f), (h.KeyValueHeads, h.HeadDim, h.NormEpsilon));
        Assert.Equal((1e6f, 1e4f, 8f), (h.RopeTheta, h.LocalRopeTheta, LinearFactor(h)));
        Assert.Equal((4096, 256f, 131072, 0), (h.SlidingWindow, h.QueryPreAttentionScalar, h.ContextLength, h.PadToken));
        Assert.Equal((2, 1), (h.BosToken, h.EosToken));
        Assert.Equal([true, false, true, false], h.SlidingLayers);

        // gemma-3-4b-it's form: the language model's text_config, the end ids from the top level.
        h = Read("""
            { "model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"], "eos_token_id": [1, 106], "image_token_index": 262144,
              "text_config": { "model_type": "gemma3_text", "hidden_size": 64, "num_hidden_layers": 6, "num_attention_heads": 8, "num_key_value_heads": 4,
                               "rope_scaling": { "rope_type": "linear", "factor": 8.0 }, "sliding_window": 1024 },
              "vision_config": { "model_type": "siglip_vision_model", "hidden_size": 1152 } }
            """);
        Assert.Equal((8, 4, 256), (h.Heads, h.KeyValueHeads, h.HeadDim));
        Assert.Equal((1e6f, 1e4f, 8f, 1024), (h.RopeTheta, h.LocalRopeTheta, LinearFactor(h), h.SlidingWindow));
        Assert.Equal((2, 1, 0), (h.BosToken, h.EosToken, h.PadToken));
        Assert.Equal([true, true, true, true, true, false], h.SlidingLayers);
        Assert.Contains("text_config", Assert.Throws<InvalidDataException>(() => Read("""{ "model_type": "gemma3", "vision_config": {} }""")).Message);
        Assert.Contains("rope_scaling", Assert.Throws<InvalidDataException>(() => Read("""
            { "model_type": "gemma3_text", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 2, "rope_scaling": { "rope_type": "yarn", "factor": 8.0 } }
            """)).Message);
    }

    [Fact]
    public void Gemma3RotationsFromTransformers5sRopeParameters()
    {
        // transformers 5 writes each layer kind's rotation under rope_parameters, gemma-3-1b's linear factor with the full layers'.
        GgufHyperparameters h = Read("""
            { "model_type": "gemma3_text", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 2,
              "rope_parameters": { "full_attention": { "factor": 8.0, "rope_theta": 1000000.0, "rope_type": "linear" },
                                   "sliding_attention": { "rope_theta": 20000.0, "rope_type": "default" } } }
            """);
        Assert.Equal((1e6f, 2e4f, 8f), (h.RopeTheta, h.LocalRopeTheta, LinearFactor(h)));
        Assert.Contains("rope_parameters", Assert.Throws<InvalidDataException>(() => Read("""
            { "model_type": "gemma3_text", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 2,
              "rope_parameters": { "full_attention": { "rope_theta": 1000000.0, "rope_type": "yarn", "factor": 8.0 }, "sliding_attention": { "rope_theta": 10000.0 } } }
            """)).Message);
        Assert.Contains("sliding layers", Assert.Throws<InvalidDataException>(() => Read("""
            { "model_type": "gemma3_text", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 2,
              "rope_parameters": { "full_attention": { "rope_theta": 1000000.0 }, "sliding_attention": { "rope_theta": 10000.0, "rope_type": "linear", "factor": 2.0 } } }
            """)).Message);
    }

    [Fact]
    public void Gpt2Defaults()
    {
        GgufHyperparameters h = Read("""{ "model_type": "gpt2", "n_embd": 768, "n_head": 12, "n_positions": 1024 }""");
        Assert.Equal((12, 12, 64), (h.Heads, h.KeyValueHeads, h.HeadDim));
        Assert.Equal(1e-5f, h.NormEpsilon);
        Assert.Equal(1024, h.ContextLength);
    }

    /// <summary>BertConfig's defaults where all-MiniLM-L6-v2's config (and most BERT configs) leave keys out.</summary>
    [Fact]
    public void BertDefaults()
    {
        GgufHyperparameters h = Read("""{ "model_type": "bert", "hidden_size": 384, "num_attention_heads": 12 }""");
        Assert.Equal((12, 12, 32), (h.Heads, h.KeyValueHeads, h.HeadDim));
        Assert.Equal(1e-12f, h.NormEpsilon);
        Assert.Equal(512, h.ContextLength);
        Assert.Equal(("gelu", 2, "absolute", 0), (h.FeedForwardActivation, h.TokenTypeCount, h.PositionEmbeddingType, h.PadToken));
    }

    [Fact]
    public void RefusesWhatItCannotSay()
    {
        Assert.Contains("'roberta'", Assert.Throws<InvalidDataException>(() => Read("""{ "model_type": "roberta", "hidden_size": 64 }""")).Message);
        Assert.Contains("num_attention_heads", Assert.Throws<InvalidDataException>(() => Read("""{ "model_type": "llama", "hidden_size": 64 }""")).Message);
    }

    /// <summary>The inverse frequencies of <paramref name="scaling"/> for <paramref name="headDim"/> and <paramref name="theta"/>.</summary>
    private static float[] Frequencies(RotaryScaling scaling, int headDim, float theta)
    {
        var inverse = new float[headDim / 2];
        scaling.InverseFrequencies(inverse, headDim, theta);
        return inverse;
    }

    /// <summary>Llama 3.1's rope_scaling, read as the compiler builds it: the same frequency bands.</summary>
    [Fact]
    public void Llama3ScalingIsRead()
    {
        GgufHyperparameters h = Read("""
            { "model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "rope_theta": 500000.0, "max_position_embeddings": 131072,
              "rope_scaling": { "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192, "rope_type": "llama3" } }
            """);
        RotaryScaling rope = Assert.IsType<RotaryScaling>(h.RopeScaling);
        Assert.Equal("llama3 (factor 8, low_freq_factor 1, high_freq_factor 4, original_max_position_embeddings 8192)", rope.ToString());
        Assert.Equal(Frequencies(RotaryScaling.Llama3(8f, 1f, 4f, 8192), 16, 500000f), Frequencies(rope, 16, 500000f));
        Assert.Equal(1f, rope.AttentionFactor);
        Assert.Null(h.RopeLongFactors);
    }

    /// <summary>
    /// YaRN with the compiler's defaults (Qwen2.5's form, "type" rather than "rope_type"): the original context from
    /// max_position_embeddings, betas 32 and 1, attention 0.1·ln factor + 1; DeepSeek's mscale over mscale_all_dim; and
    /// transformers 5's rope_parameters.
    /// </summary>
    [Fact]
    public void YarnScalingTakesTheCompilersDefaults()
    {
        GgufHyperparameters h = Read("""
            { "model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4, "max_position_embeddings": 32768, "rope_theta": 1000000.0,
              "rope_scaling": { "factor": 4.0, "type": "yarn" } }
            """);
        RotaryScaling rope = h.RopeScaling!;
        Assert.Equal($"yarn (factor 4, original_max_position_embeddings 32768, beta_fast 32, beta_slow 1, attention factor {(float)(0.1 * Math.Log(4) + 1)})", rope.ToString());
        Assert.Equal(Frequencies(RotaryScaling.Yarn(4f, 32768, 32f, 1f, true, (float)(0.1 * Math.Log(4) + 1)), 16, 1e6f), Frequencies(rope, 16, 1e6f));

        h = Read("""
            { "model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "max_position_embeddings": 4096,
              "rope_scaling": { "factor": 40.0, "mscale": 1.0, "mscale_all_dim": 0.5, "beta_fast": 0, "truncate": false, "rope_type": "yarn" } }
            """);
        Assert.Equal((float)((0.1 * Math.Log(40) + 1) / (0.05 * Math.Log(40) + 1)), h.RopeScaling!.AttentionFactor);
        Assert.Equal((32f, 1f, false), h.RopeScaling.YarnRange); // a beta of 0 takes the default

        h = Read("""
            { "model_type": "qwen3", "hidden_size": 64, "num_attention_heads": 4, "head_dim": 32, "max_position_embeddings": 131072,
              "rope_parameters": { "rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0, "original_max_position_embeddings": 32768, "attention_factor": 1.5 } }
            """);
        Assert.Equal((1e6f, 32768, 1.5f), (h.RopeTheta, h.RopeScaling!.OriginalPositions, h.RopeScaling.AttentionFactor));
    }

    /// <summary>
    /// Phi-3 128k's LongRoPE: the top-level original context (4096 by default for phi3), factor = max / original,
    /// attention √(1 + ln factor / ln original), short_factor in the rotation and long_factor kept for llama.cpp.
    /// </summary>
    [Fact]
    public void LongRopeScalingReadsPhi3sKeys()
    {
        string Factors(double f) => "[" + string.Join(", ", Enumerable.Range(0, 8).Select(j => (f + j / 8.0).ToString(System.Globalization.CultureInfo.InvariantCulture))) + "]";
        GgufHyperparameters h = Read($$"""
            { "model_type": "phi3", "hidden_size": 64, "num_attention_heads": 4, "max_position_embeddings": 131072,
              "rope_scaling": { "type": "longrope", "short_factor": {{Factors(1)}}, "long_factor": {{Factors(4)}} } }
            """);
        RotaryScaling rope = h.RopeScaling!;
        Assert.Equal(4096, h.RopeOriginalContext);
        Assert.Equal((float)Math.Sqrt(1 + Math.Log(32) / Math.Log(4096)), rope.AttentionFactor);
        Assert.Equal(Enumerable.Range(0, 8).Select(j => (float)(1 + j / 8.0)), rope.Divisors.ToArray());
        Assert.Equal(Enumerable.Range(0, 8).Select(j => (float)(4 + j / 8.0)), h.RopeLongFactors!);

        h = Read($$"""
            { "model_type": "phi3", "hidden_size": 64, "num_attention_heads": 4, "max_position_embeddings": 1024, "original_max_position_embeddings": 256,
              "rope_scaling": { "type": "longrope", "short_factor": {{Factors(1)}}, "long_factor": {{Factors(2)}}, "attention_factor": 1.2 } }
            """);
        Assert.Equal((256, 1.2f), (h.RopeOriginalContext, h.RopeScaling!.AttentionFactor));
    }

    /// <summary>Linear scaling; dynamic and the default rotation (either form) are none.</summary>
    [Fact]
    public void LinearDynamicAndDefault()
    {
        Assert.Equal("linear ×2", Read("""{ "model_type": "mistral", "hidden_size": 64, "num_attention_heads": 4, "rope_scaling": { "type": "linear", "factor": 2.0 } }""").RopeScaling!.ToString());
        Assert.Null(Read("""{ "model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "rope_scaling": { "rope_type": "dynamic", "factor": 2.0 } }""").RopeScaling);
        Assert.Null(Read("""{ "model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "rope_scaling": null, "rope_parameters": { "rope_type": "default", "rope_theta": 10000.0 } }""").RopeScaling);
    }

    /// <summary>What the compiler refuses is an InvalidDataException naming the key, its value and why.</summary>
    [Theory]
    [InlineData("\"rope_scaling\": { \"rope_type\": \"llama3\", \"factor\": 8.0 }", "rope_scaling", "llama3 scaling needs low_freq_factor, high_freq_factor and original_max_position_embeddings")]
    [InlineData("\"rope_scaling\": { \"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 4.0, \"high_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192 }", "rope_scaling", "0 < low_freq_factor < high_freq_factor")]
    [InlineData("\"rope_scaling\": { \"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 81.5 }", "rope_scaling", "original_max_position_embeddings must be a positive integer")]
    [InlineData("\"rope_scaling\": { \"type\": \"linear\", \"factor\": -2.0 }", "rope_scaling", "linear scaling needs a positive factor")]
    [InlineData("\"rope_scaling\": { \"type\": \"yarn\", \"factor\": 4.0, \"beta_slow\": -1.0 }", "rope_scaling", "beta_fast and beta_slow must be positive")]
    [InlineData("\"rope_scaling\": { \"type\": \"longrope\", \"short_factor\": [1.0, 1.0], \"long_factor\": [1.0, 1.0] }", "rope_scaling", "longrope needs short_factor: 8 positive numbers, one per pair of head_dim")]
    [InlineData("\"rope_scaling\": { \"type\": \"su\", \"factor\": 2.0 }", "rope_scaling", "of the scaled rotary positions linear, llama3, yarn, longrope and dynamic")]
    [InlineData("\"rope_scaling\": \"llama3\"", "rope_scaling", "an object with rope_type and its numbers is expected")]
    [InlineData("\"rope_parameters\": { \"rope_type\": \"yarn\", \"rope_theta\": 10000.0 }", "rope_parameters", "yarn scaling needs a positive factor")]
    public void RefusesABadRopeScalingNamingTheKey(string scaling, string key, string why)
    {
        var e = Assert.Throws<InvalidDataException>(() => Read($$"""{ "model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "max_position_embeddings": 64, {{scaling}} }"""));
        Assert.Contains($"': {key} ", e.Message, StringComparison.Ordinal);
        Assert.Contains(why, e.Message, StringComparison.Ordinal);
    }

    /// <summary>Gemma 3's linear scaling of its full layers as read: the factor of a linear <see cref="GgufHyperparameters.RopeScaling"/>, 1 for none.</summary>
    private static float LinearFactor(GgufHyperparameters h)
    {
        if (h.RopeScaling is not { } scaling) return 1f;
        Assert.Equal(RotaryScaling.Kind.Linear, scaling.ScalingKind);
        return scaling.Factor;
    }
}
