using System;
using Xunit;
using static TransformerGen.Generator.Tests.ConfigFixtures;

namespace TransformerGen.Generator.Tests;

/// <summary>NomicBERT configs (nomic-embed-text): a rotary BERT with a fused Wqkv and a SwiGLU feed-forward, and what is refused.</summary>
public partial class ConfigTests
{
    /// <summary>nomic-embed-text-v1.5's config.json at odd sizes (its flash-attention switches kept).</summary>
    private const string Nomic = """
        {
          "activation_function": "swiglu",
          "architectures": ["NomicBertModel"],
          "causal": false,
          "fused_bias_fc": true,
          "fused_dropout_add_ln": true,
          "layer_norm_epsilon": 1e-12,
          "max_trained_positions": 2048,
          "mlp_fc1_bias": false,
          "mlp_fc2_bias": false,
          "model_type": "nomic_bert",
          "n_embd": 24,
          "n_head": 4,
          "n_inner": 40,
          "n_layer": 2,
          "n_positions": 64,
          "pad_vocab_size_multiple": 8,
          "prenorm": false,
          "qkv_proj_bias": false,
          "rotary_emb_base": 1000,
          "rotary_emb_fraction": 1.0,
          "rotary_emb_interleaved": false,
          "rotary_emb_scale_base": null,
          "rotary_scaling_factor": null,
          "type_vocab_size": 2,
          "use_flash_attn": true,
          "vocab_size": 53
        }
        """;

    [Fact]
    public void A_nomic_bert_config_compiles_to_a_rotary_bert_with_a_fused_wqkv_and_a_swiglu_gated_by_fc12()
    {
        Type m = Compile(At("nomic", Nomic), Declared("nomic", ", Head = EncoderHead.SentenceEmbedding", seqLen: 9), out string source);
        Assert.Equal(56, Constant(m, "Vocab")); // 53 rounded up to pad_vocab_size_multiple 8
        Assert.Equal(6, Constant(m, "HeadDim"));
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.NomicBert,", source);
        Assert.Contains("new(\"encoder.layers.1.attn.Wqkv.weight\", new[] { 72, 24 }", source);
        // NomciBertGatedMLP rounds n_inner (40) up to a multiple of 256.
        Assert.Equal(256, Constant(m, "DFF"));
        Assert.Contains("new(\"encoder.layers.0.mlp.fc11.weight\", new[] { 256, 24 }", source);
        Assert.Contains("new(\"emb_ln.bias\", new[] { 24 }", source);
        Assert.Contains("new(\"embeddings.token_type_embeddings.weight\", new[] { 2, 24 }", source);
        // The gate (fc12) comes first in the packed gate | up weight, as the SwiGLU kernel reads it.
        Assert.True(source.IndexOf("encoder.layers.0.mlp.fc12.weight", StringComparison.Ordinal) < source.IndexOf("encoder.layers.0.mlp.fc11.weight", StringComparison.Ordinal));
        Assert.Contains("Positional.RotaryTables(", source);
        Assert.Contains(", 1000f);", source);
        Assert.Contains("LayerNorm eps 1E-12 after each residual add", source);
        Assert.DoesNotContain("position_embeddings", source);
        Assert.DoesNotContain(".bias\", new[] { 72 }", source);
    }

    [Theory]
    [InlineData("prenorm", "true", "\"prenorm\": true cannot be compiled: pre-norm NomicBERT layers is not implemented")]
    [InlineData("rotary_emb_fraction", "0.5", "\"rotary_emb_fraction\": 0.5 cannot be compiled: only whole-head rotation is implemented")]
    [InlineData("qkv_proj_bias", "true", "\"qkv_proj_bias\": true cannot be compiled: attention biases are not implemented")]
    [InlineData("activation_function", "\"gelu\"", "\"activation_function\": gelu cannot be compiled: only the swiglu feed-forward (fc2(fc11(x)·silu(fc12(x)))) is compiled for nomic_bert")]
    [InlineData("rotary_emb_scale_base", "512", "\"rotary_emb_scale_base\": 512 cannot be compiled: xPos-scaled rotation is not implemented")]
    public void TG0042_what_a_nomic_bert_config_asks_and_the_compiler_cannot_build(string key, string value, string expected)
    {
        string message = Unsupported("nomic", Set(Nomic, key, value), ", Head = EncoderHead.SentenceEmbedding");
        Assert.Equal("nomic/config.json: " + expected, message);
    }

    /// <summary>NomicBertConfig's defaults apply to absent keys: biases on (refused, saying so), rotary base 1000.</summary>
    [Fact]
    public void Absent_nomic_bert_keys_take_nomic_bert_configs_defaults()
    {
        string message = Unsupported("nomic", Remove(Nomic, "mlp_fc1_bias"), ", Head = EncoderHead.SentenceEmbedding");
        Assert.Equal("nomic/config.json: \"mlp_fc1_bias\": true cannot be compiled: feed-forward biases are not implemented (NomicBertConfig's default when the key is absent)", message);
        Compile(At("nomic", Remove(Nomic, "rotary_emb_base")), Declared("nomic", ", Head = EncoderHead.SentenceEmbedding", seqLen: 9), out string source);
        Assert.Contains(", 1000f);", source);
    }

    /// <summary>Dynamic NTK scaling changes nothing within max_trained_positions: allowed there, refused beyond.</summary>
    [Fact]
    public void Nomic_bert_rotary_scaling_is_refused_only_beyond_the_trained_positions()
    {
        string json = Set(Set(Nomic, "rotary_scaling_factor", "2.0"), "max_trained_positions", "7");
        Compile(At("nomic", Set(json, "max_trained_positions", "9")), Declared("nomic", ", Head = EncoderHead.SentenceEmbedding", seqLen: 9), out _);
        string message = Unsupported("nomic", json, ", Head = EncoderHead.SentenceEmbedding");
        Assert.Equal("nomic/config.json: \"rotary_scaling_factor\": 2 cannot be compiled: dynamic NTK scaling is not implemented; it changes nothing up to max_trained_positions = 7, which SeqLen = 8 exceeds", message);
    }
}
