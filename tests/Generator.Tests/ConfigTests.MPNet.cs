using System;
using Microsoft.CodeAnalysis;
using Xunit;
using static TransformerGen.Generator.Tests.ConfigFixtures;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// MPNet configs (sentence-transformers/all-mpnet-base-v2's keys): BERT's post-LN layers under MPNet's names, RoBERTa's
/// positions, one relative-position bias for the encoder on scaled scores; and located refusals for what it cannot build.
/// </summary>
public partial class ConfigTests
{
    /// <summary>all-mpnet-base-v2's config.json at odd sizes (3 heads of 10 on 30).</summary>
    private const string MPNet = """
        {
          "architectures": ["MPNetForMaskedLM"],
          "attention_probs_dropout_prob": 0.1,
          "bos_token_id": 0,
          "eos_token_id": 2,
          "hidden_act": "gelu",
          "hidden_dropout_prob": 0.1,
          "hidden_size": 30,
          "initializer_range": 0.02,
          "intermediate_size": 37,
          "layer_norm_eps": 1e-05,
          "max_position_embeddings": 48,
          "model_type": "mpnet",
          "num_attention_heads": 3,
          "num_hidden_layers": 2,
          "pad_token_id": 1,
          "relative_attention_num_buckets": 32,
          "vocab_size": 47
        }
        """;

    [Fact]
    public void An_mpnet_config_compiles_to_berts_layers_with_robertas_positions_and_one_relative_bias_for_the_encoder()
    {
        Type m = Compile(At("mpnet", MPNet), Declared("mpnet", ", Head = EncoderHead.SentenceEmbedding", seqLen: 40), out string source);
        Assert.Equal(30, Constant(m, "DModel"));
        Assert.Equal(10, Constant(m, "HeadDim"));
        Assert.Equal(37, Constant(m, "DFF"));
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.MPNet,", source);
        foreach (string name in new[]
                 {
                     "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight", "embeddings.LayerNorm.bias",
                     "encoder.relative_attention_bias.weight", "encoder.layer.1.attention.attn.q.weight", "encoder.layer.1.attention.attn.k.bias",
                     "encoder.layer.0.attention.attn.o.weight", "encoder.layer.0.attention.LayerNorm.weight", "encoder.layer.1.intermediate.dense.bias",
                     "encoder.layer.1.output.dense.weight", "encoder.layer.1.output.LayerNorm.bias",
                 })
            Assert.Contains($"new(\"{name}\"", source);
        Assert.Contains("new(\"encoder.relative_attention_bias.weight\", new[] { 32, 3 }", source);
        Assert.DoesNotContain("token_type", source);
        Assert.DoesNotContain("pooler", source);
        // One table for the encoder (bidirectional, 32 buckets up to 128), read by both layers' scaled scores.
        Assert.Equal(1, Count(source, "new(\"encoder.relative_attention_bias.weight\""));
        Assert.DoesNotContain("attention.attn.relative", source);
        Assert.Contains("RelativePosition.BiasForward(", source);
        Assert.Contains("bidirectional: true, 32, 128", source);
        Assert.Contains(", positionBias:", source);
        Assert.DoesNotContain("scale: 1f", source);
        // RoBERTa's positions: position p is row 2 + p of the 48-row table.
        Assert.Contains("PadToken = 1,", source);
        Assert.Contains("LayerNorm eps 1E-05 after each residual add", source);
        Assert.Contains("scores plus a relative-position bias (32 buckets up to distance 128)", source);
    }

    [Fact]
    public void An_mpnet_sequence_classifier_takes_robertas_head()
    {
        string json = MPNet.Replace("\"MPNetForMaskedLM\"", "\"MPNetForSequenceClassification\"");
        json = Set(json, "id2label", "{\"0\": \"NEGATIVE\", \"1\": \"NEUTRAL\", \"2\": \"POSITIVE\"}");
        Type m = Compile(At("mpnet-classifier", json), Declared("mpnet-classifier", "", seqLen: 12), out string source);
        Assert.Equal(3, Constant(m, "Classes"));
        Assert.Contains("new(\"classifier.dense.weight\", new[] { 30, 30 }", source);
        Assert.Contains("new(\"classifier.out_proj.weight\", new[] { 3, 30 }", source);
        Assert.DoesNotContain("pooler.dense", source);
    }

    [Fact]
    public void TG0043_an_mpnet_seq_len_past_its_table_counts_from_the_padding_id()
    {
        // 48 rows, positions from pad + 1 = 2: 46 usable.
        Compile(At("mpnet", MPNet), Declared("mpnet", ", Head = EncoderHead.SentenceEmbedding", seqLen: 46), out _);
        Diagnostic d = SingleError(At("mpnet", MPNet), Declared("mpnet", ", Head = EncoderHead.SentenceEmbedding", seqLen: 47), "TG0043", "SeqLen = 47");
        Assert.Contains("the model knows 46 positions (48 rows, positions counted from the padding id + 1 = 2)", d.GetMessage());
    }

    [Theory]
    [InlineData("relative_attention_num_buckets", "64", "\"relative_attention_num_buckets\": 64 cannot be compiled: MPNetEncoder.compute_position_bias buckets relative positions into 32 whatever the table's size")]
    [InlineData("pad_token_id", "0", "\"pad_token_id\": 0 cannot be compiled: MPNetEmbeddings numbers positions from its fixed padding id 1")]
    [InlineData("hidden_act", "\"tanh\"", "\"hidden_act\": tanh cannot be compiled")]
    public void TG0042_what_an_mpnet_config_asks_and_the_compiler_cannot_build(string key, string value, string expected)
    {
        string message = Unsupported("mpnet", Set(MPNet, key, value), ", Head = EncoderHead.SentenceEmbedding");
        Assert.StartsWith("mpnet/config.json: " + expected, message);
    }

    [Fact]
    public void TG0042_an_mpnet_question_answering_head_is_refused()
    {
        string message = Unsupported("mpnet", MPNet.Replace("\"MPNetForMaskedLM\"", "\"MPNetForQuestionAnswering\""), ", Head = EncoderHead.SentenceEmbedding");
        Assert.StartsWith("mpnet/config.json: \"architectures\": MPNetForQuestionAnswering cannot be compiled", message);
    }

    [Fact]
    public void TG0015_tiled_attention_is_refused_for_mpnet()
    {
        Diagnostic d = SingleError(At("mpnet", MPNet), Declared("mpnet", ", Head = EncoderHead.SentenceEmbedding, AttentionKernel = AttentionKernel.Tiled", seqLen: 12),
            "TG0015", "AttentionKernel = AttentionKernel.Tiled");
        Assert.Contains("a MPNet (its scores take a bias the tiled kernels do not add)", d.GetMessage());
    }

    private static int Count(string text, string part)
    {
        int n = 0;
        for (int at = text.IndexOf(part, StringComparison.Ordinal); at >= 0; at = text.IndexOf(part, at + part.Length, StringComparison.Ordinal)) n++;
        return n;
    }
}
