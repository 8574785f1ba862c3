using System;
using Microsoft.CodeAnalysis;
using Xunit;
using static TransformerGen.Generator.Tests.ConfigFixtures;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// T5 configs (t5-small's v1.0 keys, Flan-T5's v1.1 ones): an encoder–decoder with T5's names, relative-position bias and
/// unscaled scores, the tied head's d_model^−½, GEGLU, no sequence limit; and located refusals for what it cannot build.
/// </summary>
public partial class ConfigTests
{
    /// <summary>flan-t5-small's config.json at odd sizes (4 heads of 7 on d_model 26), with the keys its file carries.</summary>
    private const string FlanT5 = """
        {
          "architectures": ["T5ForConditionalGeneration"],
          "d_ff": 30,
          "d_kv": 7,
          "d_model": 26,
          "decoder_start_token_id": 0,
          "dense_act_fn": "gelu_new",
          "dropout_rate": 0.1,
          "eos_token_id": 1,
          "feed_forward_proj": "gated-gelu",
          "initializer_factor": 1.0,
          "is_encoder_decoder": true,
          "is_gated_act": true,
          "layer_norm_epsilon": 1e-06,
          "model_type": "t5",
          "n_positions": 512,
          "num_decoder_layers": 3,
          "num_heads": 4,
          "num_layers": 2,
          "pad_token_id": 0,
          "relative_attention_max_distance": 128,
          "relative_attention_num_buckets": 32,
          "tie_word_embeddings": false,
          "vocab_size": 37
        }
        """;

    [Fact]
    public void A_flan_t5_config_compiles_to_t5s_layers_with_relative_positions_and_no_length_limit()
    {
        // SeqLen 600 is past n_positions = 512, which T5 never reads: its positions are relative.
        Type m = Compile(At("flan-t5", FlanT5), Declared("flan-t5", ", TargetSeqLen = 9", seqLen: 600), out string source);
        Assert.Equal(26, Constant(m, "DModel"));
        Assert.Equal(7, Constant(m, "HeadDim"));
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.T5,", source);
        foreach (string name in new[]
                 {
                     "shared.weight", "lm_head.weight", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                     "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", "encoder.block.1.layer.1.DenseReluDense.wi_0.weight",
                     "decoder.block.2.layer.1.EncDecAttention.o.weight", "decoder.block.2.layer.2.DenseReluDense.wo.weight", "decoder.final_layer_norm.weight",
                 })
            Assert.Contains($"new(\"{name}\"", source);
        // Only block 0 holds a table; no biases anywhere; the untied head reads the decoder's output unscaled.
        Assert.DoesNotContain("block.1.layer.0.SelfAttention.relative_attention_bias", source);
        Assert.DoesNotContain(".bias\"", source);
        Assert.DoesNotContain("Scaling.Forward(", source);
        Assert.Contains("Activations.GeGluTanhForward(", source);
        Assert.Contains("RelativePosition.BiasForward(", source);
        Assert.Contains("scale: 1f, positionBias:", source);
        Assert.Contains("bidirectional: true, 32, 128", source);
        Assert.Contains("bidirectional: false, 32, 128", source);
        Assert.Contains("PadToken = 0, BosToken = 0, EosToken = 1,", source);
    }

    [Fact]
    public void A_tied_t5_config_scales_the_head_input_by_the_inverse_square_root_of_d_model()
    {
        string json = Set(Set(Set(FlanT5, "tie_word_embeddings", "true"), "feed_forward_proj", "\"relu\""), "is_gated_act", "false");
        json = Set(json, "dense_act_fn", "\"relu\"");
        Type m = Compile(At("t5", json), Declared("t5", ", TargetSeqLen = 9", seqLen: 11), out string source);
        Assert.DoesNotContain("lm_head.weight", source);
        Assert.Contains("Scaling.Forward(", source);
        Assert.Contains("0.19611613f", source); // 26^−½
        Assert.Contains("Activations.ReluForward(", source);
        Assert.DoesNotContain("wi_0", source);
        _ = m;
    }

    [Theory]
    [InlineData("feed_forward_proj", "\"gated-relu\"", "is_gated_act", "true", "dense_act_fn", "\"relu\"", "\"dense_act_fn\": gated relu cannot be compiled")]
    [InlineData("relative_attention_num_buckets", "2", "d_ff", "30", "d_kv", "7", "\"relative_attention_num_buckets\": 2 cannot be compiled")]
    public void TG0042_what_a_t5_config_asks_and_the_compiler_cannot_build(string key, string value, string key2, string value2, string key3, string value3, string expected)
    {
        string message = Unsupported("flan-t5", Set(Set(Set(FlanT5, key, value), key2, value2), key3, value3), ", TargetSeqLen = 9");
        Assert.StartsWith("flan-t5/config.json: " + expected, message);
    }

    [Fact]
    public void TG0015_tiled_attention_is_refused_for_t5()
    {
        Diagnostic d = SingleError(At("flan-t5", FlanT5), Declared("flan-t5", ", TargetSeqLen = 9, AttentionKernel = AttentionKernel.Tiled", seqLen: 11),
            "TG0015", "AttentionKernel = AttentionKernel.Tiled");
        Assert.Contains("AttentionKernel.Tiled applies to models without a relative-position bias", d.GetMessage());
    }

    [Fact]
    public void TG0015_positional_relative_is_refused_on_a_declaration_of_its_own()
    {
        Diagnostic d = SingleError([], Model("Vocab = 40, DModel = 16, Heads = 2, Layers = 1, DFF = 32, SeqLen = 8, Positional = Positional.Relative"),
            "TG0015", "Positional = Positional.Relative");
        Assert.Contains("Positional.Relative applies to Hugging Face T5", d.GetMessage());
    }
}
