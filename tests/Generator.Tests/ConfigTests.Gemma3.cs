using System;
using Microsoft.CodeAnalysis;
using Xunit;
using static TransformerGen.Generator.Tests.ConfigFixtures;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// Gemma 3 text configs (gemma-3-270m's and gemma-3-1b's keys): Llama's decoder with Gemma's RMSNorm (1 + weight) before
/// and after each sub-layer, q_norm and k_norm, GEGLU, embeddings × √hidden_size, sliding-window layers with their own
/// rotary base beside full ones with linearly scaled rotary positions; and located refusals for what it cannot build.
/// </summary>
public partial class ConfigTests
{
    /// <summary>gemma-3-1b-it's config.json at odd sizes: 3 heads of 10 on 1 key/value head, width 24, 3 layers (2 sliding).</summary>
    private const string Gemma3 = """
        {
          "architectures": ["Gemma3ForCausalLM"],
          "attention_bias": false,
          "attention_dropout": 0.0,
          "attn_logit_softcapping": null,
          "bos_token_id": 2,
          "eos_token_id": 1,
          "final_logit_softcapping": null,
          "head_dim": 10,
          "hidden_activation": "gelu_pytorch_tanh",
          "hidden_size": 24,
          "initializer_range": 0.02,
          "intermediate_size": 37,
          "layer_types": ["sliding_attention", "sliding_attention", "full_attention"],
          "max_position_embeddings": 64,
          "model_type": "gemma3_text",
          "num_attention_heads": 3,
          "num_hidden_layers": 3,
          "num_key_value_heads": 1,
          "pad_token_id": 0,
          "query_pre_attn_scalar": 10,
          "rms_norm_eps": 1e-06,
          "rope_local_base_freq": 10000.0,
          "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
          "rope_theta": 1000000.0,
          "sliding_window": 4,
          "sliding_window_pattern": 3,
          "use_bidirectional_attention": false,
          "vocab_size": 45
        }
        """;

    [Fact]
    public void A_gemma3_config_compiles_to_sandwiched_unit_offset_norms_geglu_and_sliding_layers_with_their_own_rotary_base()
    {
        Type m = Compile(At("gemma3", Gemma3), Declared("gemma3", seqLen: 9), out string source);
        Assert.Equal(24, Constant(m, "DModel"));
        Assert.Equal(10, Constant(m, "HeadDim"));
        Assert.Equal(37, Constant(m, "DFF"));
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.Gemma3,", source);
        foreach (string name in new[]
                 {
                     "model.embed_tokens.weight", "model.layers.0.input_layernorm.weight", "model.layers.0.self_attn.q_proj.weight",
                     "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.v_proj.weight", "model.layers.0.self_attn.o_proj.weight",
                     "model.layers.2.self_attn.q_norm.weight", "model.layers.2.self_attn.k_norm.weight", "model.layers.1.post_attention_layernorm.weight",
                     "model.layers.1.pre_feedforward_layernorm.weight", "model.layers.1.post_feedforward_layernorm.weight",
                     "model.layers.2.mlp.gate_proj.weight", "model.layers.2.mlp.up_proj.weight", "model.layers.2.mlp.down_proj.weight", "model.norm.weight",
                 })
            Assert.Contains($"new(\"{name}\"", source);
        Assert.DoesNotContain("lm_head", source);
        Assert.DoesNotContain(".bias\"", source);
        // Every norm scales by 1 + weight and starts at 0: 4 per layer and the final one, and q/k per layer, each in the
        // training forward, the backward and the inference forward.
        Assert.Equal(3 * (4 * 3 + 1) + 3 * 3, Count(source, "unitOffset: true"));
        Assert.Contains("new(\"model.layers.1.post_feedforward_layernorm.weight\", new[] { 24 }, ", source);
        Assert.Contains("post-feed-forward RMSNorm", source);
        Assert.DoesNotContain("WeightInit.Ones", source);
        // Embeddings × √24, GEGLU with the tanh GELU.
        Assert.Contains("token embedding × √DModel", source);
        Assert.Contains("Activations.GeGluTanhForward(", source);
        // The sliding layers (0, 1) see 4 keys: the kernels' window 3; the full layer (2) none, with the linearly scaled table.
        Assert.Equal(2 * 3, Count(source, "sliding window of 4 keys"));
        Assert.Contains("causal: true, window: 3, kvHeads: 1);", source);
        Assert.Contains("causal: true, window: 0, kvHeads: 1);", source);
        Assert.Equal(2, Count(source, "sequences, 3, 10, window: 3, kvHeads: 1);"));
        Assert.Contains("Positional.RotaryTables(ConstantBuffer.Slice(", source);
        Assert.Contains(", 1000000f, global::TransformerGen.Kernels.RotaryScaling.Linear(8f));", source);
        Assert.Contains("the sliding layers' rotary angles (base 10000)", source);
        Assert.Contains(", 10000f);", source);
        Assert.Contains("RMSNorm × (1 + weight) eps 1E-06 before and after each sub-layer", source);
        Assert.Contains("on 1 full layers, base 10000 on 2 layers of a 4-key sliding window", source);
        Assert.Contains("PadToken = 0,", source);
        Assert.Contains("/// Tokens are embedded × √DModel (queries and keys are rotated by position); each layer applies causal multi-head self-attention and a feed-forward network, each inside a residual connection with RMSNorm before the sub-layer and on its output.", source);
        Assert.Contains("/// The sliding layers' queries see only the last 4 keys (themselves included) and rotate with their own base.", source);
    }

    [Fact]
    public void A_gemma3_query_pre_attn_scalar_other_than_head_dim_scales_every_attention_kernels_scores()
    {
        Compile(At("gemma3", Set(Gemma3, "query_pre_attn_scalar", "12")), Declared("gemma3", seqLen: 9), out string source);
        string scale = ", scale: " + (1 / Math.Sqrt(12)).ToString("R", System.Globalization.CultureInfo.InvariantCulture)[..6];
        // Training forward and backward and the cached inference of each of the 3 layers.
        Assert.Equal(3 * 3, Count(source, scale));
        Assert.Contains("scores × query_pre_attn_scalar^−½", source);
        // The default (query_pre_attn_scalar = head_dim) passes no factor.
        Compile(At("gemma3", Gemma3), Declared("gemma3", seqLen: 9), out string plain);
        Assert.DoesNotContain(", scale:", plain);
    }

    [Fact]
    public void A_gemma3_window_as_long_as_the_sequence_changes_nothing_and_a_pattern_stands_for_layer_types()
    {
        string json = Set(Gemma3, "sliding_window", "9").Replace("\"layer_types\": [\"sliding_attention\", \"sliding_attention\", \"full_attention\"],", "");
        Compile(At("gemma3", json), Declared("gemma3", seqLen: 9), out string source);
        Assert.DoesNotContain("sliding window of", source);
        Assert.Contains("The sliding layers rotate with their own base; their window of 9 keys spans all SeqLen = 9 positions, so they see every earlier key.", source);
        // sliding_window_pattern 3: layers 0 and 1 slide (the local table), layer 2 is full.
        Assert.Contains("base 10000 on 2 layers of a 9-key sliding window", source);
    }

    [Theory]
    [InlineData("attn_logit_softcapping", "50.0", "\"attn_logit_softcapping\": 50 cannot be compiled: logit soft-capping")]
    [InlineData("final_logit_softcapping", "30.0", "\"final_logit_softcapping\": 30 cannot be compiled: logit soft-capping")]
    [InlineData("hidden_activation", "\"gelu\"", "\"hidden_activation\": gelu cannot be compiled")]
    public void TG0042_what_a_gemma3_config_asks_and_the_compiler_cannot_build(string key, string value, string expected)
    {
        string message = Unsupported("gemma3", Set(Gemma3, key, value));
        Assert.StartsWith("gemma3/config.json: " + expected, message);
    }

    [Fact]
    public void TG0042_a_gemma3_rope_scaling_other_than_linear_and_layer_types_of_another_count()
    {
        string yarn = Gemma3.Replace("\"rope_type\": \"linear\"", "\"rope_type\": \"yarn\"");
        Assert.StartsWith("gemma3/config.json: \"rope_scaling\": {factor: 8, rope_type: yarn} cannot be compiled", Unsupported("gemma3", yarn));
        string two = Gemma3.Replace("[\"sliding_attention\", \"sliding_attention\", \"full_attention\"]", "[\"sliding_attention\", \"full_attention\"]");
        Assert.StartsWith("gemma3/config.json: \"layer_types\": [sliding_attention, full_attention] cannot be compiled: one entry per layer", Unsupported("gemma3", two));
    }

    [Fact]
    public void A_gemma3_config_in_transformers_5s_form_takes_each_layer_kinds_rotation_from_rope_parameters()
    {
        string json = Gemma3
            .Replace("\"rope_local_base_freq\": 10000.0,", "")
            .Replace("\"rope_scaling\": {\"factor\": 8.0, \"rope_type\": \"linear\"},", "")
            .Replace("\"rope_theta\": 1000000.0,", "\"rope_parameters\": {\"full_attention\": {\"factor\": 4.0, \"rope_theta\": 500000.0, \"rope_type\": \"linear\"}, \"sliding_attention\": {\"rope_theta\": 20000.0, \"rope_type\": \"default\"}},");
        Compile(At("gemma3", json), Declared("gemma3", seqLen: 9), out string source);
        Assert.Contains(", 500000f, global::TransformerGen.Kernels.RotaryScaling.Linear(4f));", source);
        Assert.Contains("the sliding layers' rotary angles (base 20000)", source);
        Assert.Contains(", 20000f);", source);

        string yarn = json.Replace("\"factor\": 4.0, \"rope_theta\": 500000.0, \"rope_type\": \"linear\"", "\"factor\": 4.0, \"rope_theta\": 500000.0, \"rope_type\": \"yarn\"");
        Assert.Contains("\"rope_parameters\": {full_attention: {factor: 4, rope_theta: 500000, rope_type: yarn}, sliding_attention: {rope_theta: 20000, rope_type: default}} cannot be compiled", Unsupported("gemma3", yarn));
    }

    [Fact]
    public void TG0043_a_gemma3_seq_len_past_its_positions()
    {
        Diagnostic d = SingleError(At("gemma3", Gemma3), Declared("gemma3", seqLen: 65), "TG0043", "SeqLen = 65");
        Assert.Contains("the model knows 64 positions", d.GetMessage());
    }
}

public partial class ConfigTests
{
    /// <summary>
    /// gemma-3-4b-it's config.json at odd sizes: Gemma3ForConditionalGeneration's top level (the end ids 1 and 106, the
    /// image tokens, a vision_config) around a text_config that gives only what differs from Gemma3TextConfig's defaults.
    /// </summary>
    private const string Gemma3Multimodal = """
        {
          "architectures": ["Gemma3ForConditionalGeneration"],
          "boi_token_index": 255999,
          "eoi_token_index": 256000,
          "eos_token_id": [1, 106],
          "image_token_index": 262144,
          "initializer_range": 0.02,
          "mm_tokens_per_image": 256,
          "model_type": "gemma3",
          "text_config": {
            "head_dim": 10,
            "hidden_size": 24,
            "intermediate_size": 37,
            "model_type": "gemma3_text",
            "num_attention_heads": 4,
            "num_hidden_layers": 6,
            "num_key_value_heads": 2,
            "query_pre_attn_scalar": 10,
            "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
            "sliding_window": 4,
            "vocab_size": 45
          },
          "torch_dtype": "bfloat16",
          "transformers_version": "4.50.0.dev0",
          "vision_config": {"hidden_size": 1152, "image_size": 896, "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 27, "patch_size": 14, "vision_use_head": false}
        }
        """;

    [Fact]
    public void A_multimodal_gemma3_config_compiles_its_language_model_from_text_config_with_gemma3_text_defaults()
    {
        Type m = Compile(At("gemma3-4b", Gemma3Multimodal), Declared("gemma3-4b", seqLen: 9), out string source);
        Sizes(m, vocab: 45, dModel: 24, heads: 4, headDim: 10, layers: 6, dff: 37, parameters: 45 * 24 + 6 * (24 * 40 + 2 * 24 * 20 + 40 * 24 + 2 * 10 + 3 * 24 * 37 + 4 * 24) + 24);
        Assert.Equal(2, Constant(m, "KvHeads"));
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.Gemma3,", source);
        // sliding_window_pattern's default 6: layers 0–4 slide with rope_local_base_freq's default, layer 5 is global with
        // rope_theta's default 1e6, linearly scaled by 8.
        Assert.Contains("on 1 full layers, base 10000 on 5 layers of a 4-key sliding window", source);
        Assert.Contains(", 1000000f, global::TransformerGen.Kernels.RotaryScaling.Linear(8f));", source);
        // The top level's end ids (1 and 106): the first is the model's end of sequence; pad_token_id's default 0 is masked.
        Assert.Contains("PadToken = 0, BosToken = 2, EosToken = 1,", source);
    }

    [Fact]
    public void TG0042_and_TG0044_a_multimodal_gemma3_config_without_a_text_language_model()
    {
        Diagnostic missing = SingleError(At("gemma3-4b", Gemma3Multimodal.Replace("\"text_config\": {", "\"other_config\": {")), Declared("gemma3-4b"), "TG0044", ConfigArgument("gemma3-4b"));
        Assert.Equal("gemma3-4b/config.json has no \"text_config\", which a gemma3 model needs", missing.GetMessage());
        string llama = Gemma3Multimodal.Replace("\"model_type\": \"gemma3_text\"", "\"model_type\": \"llama\"");
        Assert.StartsWith("gemma3-4b/config.json: \"text_config\": llama cannot be compiled", Unsupported("gemma3-4b", llama));
    }
}
