using System;
using Microsoft.CodeAnalysis;
using Xunit;
using static TransformerGen.Generator.Tests.ConfigFixtures;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// The encoder–decoder configs (Marian's opus-mt, BART, mBART, M2M100/NLLB): an encoder–decoder read from the config,
/// with its checkpoint names, shared and tied token table, logits bias, positions and activation, and a located refusal
/// for what it cannot build.
/// </summary>
public partial class ConfigTests
{
    /// <summary>opus-mt-en-de's config.json at odd sizes, with the keys transformers' MarianMTModel never reads left in.</summary>
    private const string Marian = """
        {
          "_name_or_path": "Helsinki-NLP/opus-mt-en-de",
          "activation_dropout": 0.0,
          "activation_function": "swish",
          "add_bias_logits": false,
          "add_final_layer_norm": false,
          "architectures": ["MarianMTModel"],
          "attention_dropout": 0.0,
          "bad_words_ids": [[36]],
          "bos_token_id": 0,
          "classif_dropout": 0.0,
          "d_model": 20,
          "decoder_attention_heads": 4,
          "decoder_ffn_dim": 44,
          "decoder_layerdrop": 0.0,
          "decoder_layers": 3,
          "decoder_start_token_id": 36,
          "decoder_vocab_size": 37,
          "dropout": 0.1,
          "encoder_attention_heads": 4,
          "encoder_ffn_dim": 44,
          "encoder_layerdrop": 0.0,
          "encoder_layers": 2,
          "eos_token_id": 0,
          "forced_eos_token_id": 0,
          "init_std": 0.02,
          "is_encoder_decoder": true,
          "max_length": 24,
          "max_position_embeddings": 24,
          "model_type": "marian",
          "normalize_before": false,
          "normalize_embedding": false,
          "num_beams": 4,
          "num_hidden_layers": 2,
          "pad_token_id": 36,
          "scale_embedding": true,
          "share_encoder_decoder_embeddings": true,
          "static_position_embeddings": true,
          "transformers_version": "4.40.0",
          "use_cache": true,
          "vocab_size": 37
        }
        """;

    [Fact]
    public void A_marian_config_compiles_to_an_encoder_decoder_with_its_checkpoint_names()
    {
        Type m = Compile(At("opus-mt", Marian), Declared("opus-mt", ", TargetSeqLen = 9", seqLen: 11), out string source);
        Assert.Equal(37, Constant(m, "Vocab"));
        Assert.Equal(20, Constant(m, "DModel"));
        Assert.Equal(5, Constant(m, "HeadDim"));
        Assert.Equal(44, Constant(m, "DFF"));
        Assert.Equal(9, Constant(m, "TargetSeqLen"));
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.Marian,", source);
        Assert.Contains("Architecture = global::TransformerGen.Architecture.EncoderDecoder,", source);
        // One token table for both stacks and the head, scaled by √20; the logits bias is a [1, vocab] tensor of its own.
        Assert.Contains("new(\"model.shared.weight\", new[] { 37, 20 }", source);
        Assert.Contains("new(\"final_logits_bias\", new[] { 1, 37 }", source);
        Assert.DoesNotContain("lm_head.weight", source);
        Assert.DoesNotContain("embed_tokens", source);
        Assert.Contains(", 37, 20, 4.472136f);", source);
        foreach (string name in new[]
                 {
                     "model.encoder.layers.1.self_attn.q_proj.weight", "model.encoder.layers.1.self_attn.v_proj.bias", "model.encoder.layers.1.final_layer_norm.bias",
                     "model.decoder.layers.2.encoder_attn.k_proj.weight", "model.decoder.layers.2.encoder_attn.out_proj.bias", "model.decoder.layers.2.encoder_attn_layer_norm.weight",
                     "model.decoder.layers.2.fc1.weight", "model.decoder.layers.2.self_attn_layer_norm.weight",
                 })
            Assert.Contains($"new(\"{name}\"", source);
        Assert.Contains("Positional.SinusoidalSplitTable(", source);
        Assert.Contains("Activations.SiluForward(", source);
        // encoder_layers and decoder_layers, each stack with its own names.
        Assert.Contains("new(\"model.encoder.layers.1.fc2.bias\"", source);
        Assert.DoesNotContain("model.encoder.layers.2.", source);
        Assert.DoesNotContain("model.decoder.layers.3.", source);
        // The decoder starts from decoder_start_token_id (the padding id) and ends at eos_token_id.
        Assert.Contains("DecoderSeqLen = 9, PadToken = 36, BosToken = 36, EosToken = 0,", source);
    }

    [Theory]
    [InlineData("decoder_attention_heads", "2", "\"decoder_attention_heads\": 2 cannot be compiled: the decoder must have as many heads as the encoder (encoder_attention_heads = 4)")]
    [InlineData("decoder_ffn_dim", "40", "\"decoder_ffn_dim\": 40 cannot be compiled: the decoder's feed-forward must be as wide as the encoder's (encoder_ffn_dim = 44)")]
    [InlineData("share_encoder_decoder_embeddings", "false", "\"share_encoder_decoder_embeddings\": false cannot be compiled: separate encoder and decoder token tables is not implemented")]
    [InlineData("decoder_vocab_size", "40", "\"decoder_vocab_size\": 40 cannot be compiled: with one shared token table it must equal vocab_size = 37")]
    [InlineData("activation_function", "\"tanh\"", "\"activation_function\": tanh cannot be compiled: this family's feed-forward has kernels for gelu, gelu_new (gelu_pytorch_tanh, gelu_fast), relu and silu (swish)")]
    public void TG0042_what_a_marian_config_asks_and_the_compiler_cannot_build(string key, string value, string expected)
    {
        string message = Unsupported("opus-mt", Set(Marian, key, value), ", TargetSeqLen = 9");
        Assert.Equal("opus-mt/config.json: " + expected, message);
    }

    [Fact]
    public void TG0043_a_marian_target_longer_than_its_positions_is_refused_at_TargetSeqLen()
    {
        Diagnostic d = SingleError(At("opus-mt", Marian), Declared("opus-mt", ", TargetSeqLen = 25", seqLen: 11), "TG0043", "TargetSeqLen = 25");
        Assert.Equal("TargetSeqLen = 25 contradicts opus-mt/config.json's \"max_position_embeddings\": the model knows 24 positions; leave TargetSeqLen out to take the config's value", d.GetMessage());
    }

    [Fact]
    public void TG0043_a_marian_stack_size_that_contradicts_the_config_is_refused_where_it_is_written()
    {
        Diagnostic d = SingleError(At("opus-mt", Marian), Declared("opus-mt", ", DecoderLayers = 6", seqLen: 11), "TG0043", "DecoderLayers = 6");
        Assert.Equal("DecoderLayers = 6 contradicts opus-mt/config.json's \"decoder_layers\": 3; leave DecoderLayers out to take the config's value", d.GetMessage());
    }

    /// <summary>facebook/bart-base's config.json at odd sizes (its fairseq leftovers kept).</summary>
    private const string Bart = """
        {
          "activation_dropout": 0.1,
          "activation_function": "gelu",
          "add_bias_logits": false,
          "add_final_layer_norm": false,
          "architectures": ["BartModel"],
          "attention_dropout": 0.1,
          "bos_token_id": 0,
          "classif_dropout": 0.1,
          "d_model": 24,
          "decoder_attention_heads": 3,
          "decoder_ffn_dim": 40,
          "decoder_layers": 2,
          "decoder_start_token_id": 2,
          "dropout": 0.1,
          "encoder_attention_heads": 3,
          "encoder_ffn_dim": 40,
          "encoder_layers": 2,
          "eos_token_id": 2,
          "forced_bos_token_id": 0,
          "forced_eos_token_id": 2,
          "is_encoder_decoder": true,
          "max_position_embeddings": 20,
          "model_type": "bart",
          "no_repeat_ngram_size": 3,
          "normalize_before": false,
          "normalize_embedding": true,
          "num_hidden_layers": 2,
          "pad_token_id": 1,
          "scale_embedding": false,
          "vocab_size": 50
        }
        """;

    [Fact]
    public void A_bart_config_has_learned_positions_two_rows_in_and_an_embedding_layernorm_per_stack()
    {
        Type m = Compile(At("bart-base", Bart), Declared("bart-base", ", TargetSeqLen = 9", seqLen: 20), out string source);
        Assert.Equal(24, Constant(m, "DModel"));
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.Bart,", source);
        Assert.Contains("new(\"model.encoder.embed_positions.weight\", new[] { 22, 24 }", source);
        Assert.Contains("new(\"model.decoder.embed_positions.weight\", new[] { 22, 24 }", source);
        Assert.Contains("new(\"model.encoder.layernorm_embedding.bias\"", source);
        Assert.Contains("new(\"model.decoder.layernorm_embedding.weight\"", source);
        Assert.Contains("new(\"final_logits_bias\", new[] { 1, 50 }", source);
        Assert.Contains("learned positions (position 0 is row 2 of the table)", source);
        Assert.DoesNotContain("SinusoidalSplitTable", source);
        Assert.DoesNotContain("model.encoder.layer_norm.", source);
        Assert.Contains("Activations.GeluForward(", source);
        // Not scaled: the lookup takes no factor.
        Assert.Contains("Embedding.Forward(Tokens, p.Slice(0, 1200), a.Slice(0, ", source);
        Assert.Contains("DecoderSeqLen = 9, PadToken = 1, BosToken = 2, EosToken = 2,", source);
    }

    [Fact]
    public void An_mbart_config_is_pre_ln_with_a_final_layernorm_on_each_stack()
    {
        string json = Set(Set(Bart, "model_type", "\"mbart\""), "scale_embedding", "true");
        Type m = Compile(At("mbart", json), Declared("mbart", ", TargetSeqLen = 9", seqLen: 11), out string source);
        Assert.Equal(3, Constant(m, "Heads"));
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.MBart,", source);
        Assert.Contains("new(\"model.encoder.layer_norm.weight\", new[] { 24 }", source);
        Assert.Contains("new(\"model.decoder.layer_norm.bias\", new[] { 24 }", source);
        Assert.Contains("encoder output · the encoder's final LayerNorm", source);
        Assert.Contains("head · the decoder's final LayerNorm", source);
        Assert.Contains("LayerNorm eps 1E-05 before each sub-layer", source);
        Assert.Contains(", 50, 24, 4.8989797f);", source);
    }

    [Fact]
    public void TG0043_a_bart_sequence_longer_than_its_positions_counts_the_two_rows_before_position_0()
    {
        Diagnostic d = SingleError(At("bart-base", Bart), Declared("bart-base", "", seqLen: 21), "TG0043", "SeqLen = 21");
        Assert.Equal("SeqLen = 21 contradicts bart-base/config.json's \"max_position_embeddings\": the model knows 20 positions (its learned table has 2 more rows before position 0); leave SeqLen out to take the config's value", d.GetMessage());
    }

    /// <summary>facebook/nllb-200-distilled-600M's config.json at odd sizes.</summary>
    private const string Nllb = """
        {
          "_name_or_path": "facebook/nllb-200-distilled-600M",
          "activation_dropout": 0.0,
          "activation_function": "relu",
          "architectures": ["M2M100ForConditionalGeneration"],
          "attention_dropout": 0.1,
          "bos_token_id": 0,
          "d_model": 22,
          "decoder_attention_heads": 2,
          "decoder_ffn_dim": 30,
          "decoder_layerdrop": 0,
          "decoder_layers": 3,
          "decoder_start_token_id": 2,
          "dropout": 0.1,
          "encoder_attention_heads": 2,
          "encoder_ffn_dim": 30,
          "encoder_layerdrop": 0,
          "encoder_layers": 2,
          "eos_token_id": 2,
          "init_std": 0.02,
          "is_encoder_decoder": true,
          "max_length": 200,
          "max_position_embeddings": 16,
          "model_type": "m2m_100",
          "num_hidden_layers": 2,
          "pad_token_id": 1,
          "scale_embedding": true,
          "tokenizer_class": "NllbTokenizer",
          "torch_dtype": "float32",
          "use_cache": true,
          "vocab_size": 53
        }
        """;

    [Fact]
    public void An_m2m100_config_is_pre_ln_with_fairseq_sinusoids_from_the_row_after_padding_and_no_logits_bias()
    {
        Type m = Compile(At("nllb", Nllb), Declared("nllb", ", TargetSeqLen = 9", seqLen: 16), out string source);
        Assert.Equal(53, Constant(m, "Vocab"));
        Assert.Equal(11, Constant(m, "HeadDim"));
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.M2M100,", source);
        Assert.Contains("Positional.SinusoidalFairseqTable(ConstantBuffer.Slice(0, 352), 16, 22, 2);", source);
        Assert.Contains("new(\"model.encoder.layer_norm.weight\", new[] { 22 }", source);
        Assert.Contains("new(\"model.decoder.layer_norm.bias\", new[] { 22 }", source);
        Assert.DoesNotContain("final_logits_bias", source);
        Assert.DoesNotContain("layernorm_embedding", source);
        Assert.DoesNotContain("embed_positions", source);
        Assert.Contains("Activations.ReluForward(", source);
        Assert.Contains("LayerNorm eps 1E-05 before each sub-layer", source);
        Assert.Contains(", 53, 22, 4.690416f);", source);
        Assert.Contains("DecoderSeqLen = 9, PadToken = 1, BosToken = 2, EosToken = 2,", source);
    }

    /// <summary>M2M100Config's defaults differ from BART's: relu and a scaled embedding when the config leaves them out.</summary>
    [Fact]
    public void An_m2m100_config_without_activation_or_scale_takes_m2m100s_defaults()
    {
        string json = Remove(Remove(Nllb, "activation_function"), "scale_embedding");
        Compile(At("nllb", json), Declared("nllb", ", TargetSeqLen = 9", seqLen: 16), out string source);
        Assert.Contains("Activations.ReluForward(", source);
        Assert.Contains(", 53, 22, 4.690416f);", source);
        string bart = Remove(Remove(Bart, "activation_function"), "scale_embedding");
        Compile(At("bart-base", bart), Declared("bart-base", ", TargetSeqLen = 9", seqLen: 20), out string bartSource);
        Assert.Contains("Activations.GeluForward(", bartSource);
        Assert.DoesNotContain("4.898979", bartSource);
    }

    [Fact]
    public void TG0043_an_m2m100_sequence_longer_than_max_position_embeddings_is_refused()
    {
        Diagnostic d = SingleError(At("nllb", Nllb), Declared("nllb", "", seqLen: 17), "TG0043", "SeqLen = 17");
        Assert.Equal("SeqLen = 17 contradicts nllb/config.json's \"max_position_embeddings\": the model knows 16 positions; leave SeqLen out to take the config's value", d.GetMessage());
    }
}
