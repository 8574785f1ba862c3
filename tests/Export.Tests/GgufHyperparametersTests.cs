using System.IO;
using System.Linq;
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
        Assert.Equal((1e6f, 1e4f, 1f), (h.RopeTheta, h.LocalRopeTheta, h.RopeLinearFactor));
        Assert.Equal((512, 256f, 32768), (h.SlidingWindow, h.QueryPreAttentionScalar, h.ContextLength));
        Assert.Equal((2, 1, 0), (h.BosToken, h.EosToken, h.PadToken));
        Assert.Equal(Enumerable.Range(0, 18).Select(i => (i + 1) % 6 != 0), h.SlidingLayers);

        // Gemma3TextConfig's defaults; without layer_types, every sliding_window_pattern-th layer is full; linear scaling read.
        h = Read("""
            { "model_type": "gemma3_text", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 2, "sliding_window_pattern": 2,
              "rope_scaling": { "rope_type": "linear", "factor": 8.0 } }
            """);
        Assert.Equal((4, 256, 1e-6f), (h.KeyValueHeads, h.HeadDim, h.NormEpsilon));
        Assert.Equal((1e6f, 1e4f, 8f), (h.RopeTheta, h.LocalRopeTheta, h.RopeLinearFactor));
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
        Assert.Equal((1e6f, 1e4f, 8f, 1024), (h.RopeTheta, h.LocalRopeTheta, h.RopeLinearFactor, h.SlidingWindow));
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
        Assert.Equal((1e6f, 2e4f, 8f), (h.RopeTheta, h.LocalRopeTheta, h.RopeLinearFactor));
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
        Assert.Contains("rope_scaling", Assert.Throws<InvalidDataException>(() => Read("""
            { "model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "rope_scaling": { "rope_type": "llama3", "factor": 8.0 } }
            """)).Message);
        Assert.Contains("'roberta'", Assert.Throws<InvalidDataException>(() => Read("""{ "model_type": "roberta", "hidden_size": 64 }""")).Message);
        Assert.Contains("num_attention_heads", Assert.Throws<InvalidDataException>(() => Read("""{ "model_type": "llama", "hidden_size": 64 }""")).Message);
    }
}
