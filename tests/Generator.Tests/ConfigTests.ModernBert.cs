using System;
using Xunit;
using static TransformerGen.Generator.Tests.ConfigFixtures;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// ModernBERT (<c>model_type</c> modernbert): pre-norm layers with LayerNorms without bias and none before the first
/// layer's attention, fused Wqkv and Wi, GEGLU with the erf GELU, global and local layers with their own rotary bases,
/// and located refusals of what the compiler cannot build.
/// </summary>
public partial class ConfigTests
{
    /// <summary>ModernBERT-base's config.json keys at odd sizes: 3 heads of 12, width 36, 4 layers (0 and 3 global), window 6.</summary>
    private const string ModernBert = """
        {
          "architectures": ["ModernBertModel"],
          "attention_bias": false,
          "attention_dropout": 0.0,
          "bos_token_id": 50,
          "classifier_activation": "gelu",
          "classifier_bias": false,
          "classifier_dropout": 0.0,
          "classifier_pooling": "mean",
          "cls_token_id": 50,
          "decoder_bias": true,
          "deterministic_flash_attn": false,
          "embedding_dropout": 0.0,
          "eos_token_id": 51,
          "global_attn_every_n_layers": 3,
          "global_rope_theta": 160000.0,
          "hidden_activation": "gelu",
          "hidden_size": 36,
          "initializer_cutoff_factor": 2.0,
          "initializer_range": 0.02,
          "intermediate_size": 50,
          "local_attention": 6,
          "local_rope_theta": 10000.0,
          "max_position_embeddings": 64,
          "mlp_bias": false,
          "mlp_dropout": 0.0,
          "model_type": "modernbert",
          "norm_bias": false,
          "norm_eps": 1e-05,
          "num_attention_heads": 3,
          "num_hidden_layers": 4,
          "pad_token_id": 52,
          "sep_token_id": 51,
          "sparse_pred_ignore_index": -100,
          "sparse_prediction": false,
          "vocab_size": 61
        }
        """;

    private static string ModernBertDeclared(int seqLen = 11) => Declared("modernbert", ", Head = EncoderHead.SentenceEmbedding", seqLen);

    [Fact]
    public void A_modernbert_config_compiles_to_pre_norm_layers_without_norm_biases_geglu_and_local_layers_with_their_own_rotary_base()
    {
        Type m = Compile(At("modernbert", ModernBert), ModernBertDeclared(), out string source);
        // tok_embeddings 61·36 + its norm 36 + 4 × (Wqkv 108·36 + Wo 36·36 + mlp_norm 36 + Wi 100·36 + Wo 36·50) + 3 attn_norms 36 + final_norm 36
        Sizes(m, vocab: 61, dModel: 36, heads: 3, headDim: 12, layers: 4, dff: 50, parameters: 61 * 36 + 36 + 4 * (108 * 36 + 36 * 36 + 36 + 100 * 36 + 36 * 50) + 3 * 36 + 36);
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.ModernBert,", source);
        foreach (string name in new[]
                 {
                     "embeddings.tok_embeddings.weight", "embeddings.norm.weight", "layers.0.attn.Wqkv.weight", "layers.0.attn.Wo.weight",
                     "layers.0.mlp_norm.weight", "layers.0.mlp.Wi.weight", "layers.0.mlp.Wo.weight", "layers.1.attn_norm.weight", "layers.3.attn_norm.weight", "final_norm.weight",
                 })
            Assert.Contains($"new(\"{name}\"", source);
        // Layer 0 reads the normalized embeddings directly; no LayerNorm and no linear layer has a bias.
        Assert.DoesNotContain("layers.0.attn_norm", source);
        Assert.DoesNotContain(".bias\"", source);
        Assert.Contains("new(\"layers.0.mlp.Wi.weight\", new[] { 100, 36 }, ", source);
        // Every LayerNorm passes no shift: the embeddings', 3 attention norms, 4 feed-forward norms and the final one, in the
        // training forward and the inference forward; their backward passes no shift's gradient.
        Assert.Equal(2 * 9, Count(source, "LayerNorm.Forward("));
        string[] lines = source.Split('\n');
        Assert.Equal(2 * 9, Array.FindAll(lines, line => line.Contains("LayerNorm.Forward(") && line.Contains(", default, ")).Length);
        Assert.Equal(9, Array.FindAll(lines, line => line.Contains("LayerNorm.Backward(") && line.Contains(", default, ")).Length);
        Assert.Contains("Activations.GeGluForward(", source);
        Assert.Contains("Activations.GeGluBackward(", source);
        Assert.Contains("GEGLU: gelu(input) ⊙ gate", source);
        // Layers 1 and 2 are local: |i − j| ≤ 3, the kernels' window 3 (training forward, backward, inference; and the
        // summary); 0 and 3 are global.
        Assert.Equal(2 * 3 + 1, Count(source, "keys within 3 positions either side"));
        Assert.Equal(2, Count(source, "3, 12, causal: false, window: 3);"));
        Assert.Equal(2, Count(source, "lengths, 3, 12, window: 3);"));
        Assert.Contains("Positional.RotaryTables(ConstantBuffer.Slice(", source);
        Assert.Contains(", 160000f);", source);
        Assert.Contains("the sliding layers' rotary angles (base 10000)", source);
        Assert.Contains(", 10000f);", source);
        Assert.Contains("LayerNorm without bias eps 1E-05 before each sub-layer (none before the first layer's attention)", source);
        Assert.Contains("on 2 global layers, base 10000 on 2 local layers that see 3 positions either side", source);
        Assert.Contains("a final LayerNorm ends the stack.", source);
        Assert.Contains("PadToken = 52,", source);
    }

    [Fact]
    public void A_modernbert_window_as_long_as_the_sequence_changes_nothing()
    {
        // local_attention 20: |i − j| ≤ 10 covers every pair of an 11-position sequence.
        Compile(At("modernbert", Set(ModernBert, "local_attention", "20")), ModernBertDeclared(), out string source);
        Assert.DoesNotContain("window: 10", source);
        Assert.Contains("The sliding layers rotate with their own base; their window (10 positions either side) spans all SeqLen = 11 positions, so they see every key; a final LayerNorm ends the stack.", source);
        Compile(At("modernbert", Set(ModernBert, "local_attention", "18")), ModernBertDeclared(), out string narrower);
        Assert.Contains("keys within 9 positions either side", narrower);
    }

    [Fact]
    public void A_modernbert_config_in_transformers_5s_form_takes_each_layer_kinds_base_from_rope_parameters()
    {
        string json = ModernBert
            .Replace("\"global_rope_theta\": 160000.0,", "\"layer_types\": [\"full_attention\", \"sliding_attention\", \"sliding_attention\", \"full_attention\"],")
            .Replace("\"local_rope_theta\": 10000.0,", "\"rope_parameters\": {\"full_attention\": {\"rope_theta\": 80000.0, \"rope_type\": \"default\"}, \"sliding_attention\": {\"rope_theta\": 20000.0, \"rope_type\": \"default\"}},");
        Compile(At("modernbert", json), ModernBertDeclared(), out string source);
        Assert.Contains(", 80000f);", source);
        Assert.Contains("the sliding layers' rotary angles (base 20000)", source);
        Assert.Contains(", 20000f);", source);
    }

    [Fact]
    public void Modernbert_norm_and_projection_biases_are_read_when_the_config_asks_for_them()
    {
        string json = Set(Set(Set(ModernBert, "norm_bias", "true"), "attention_bias", "true"), "mlp_bias", "true");
        Compile(At("modernbert", json), ModernBertDeclared(), out string source);
        foreach (string name in new[] { "embeddings.norm.bias", "layers.1.attn_norm.bias", "final_norm.bias", "layers.0.attn.Wqkv.bias", "layers.0.attn.Wo.bias", "layers.2.mlp.Wi.bias", "layers.2.mlp.Wo.bias" })
            Assert.Contains($"new(\"{name}\"", source);
        Assert.Contains("LayerNorm eps 1E-05 before each sub-layer", source);
    }

    [Theory]
    [InlineData("hidden_activation", "\"relu\"", "\"hidden_activation\": relu cannot be compiled: ModernBERT's gated feed-forward has kernels for gelu")]
    [InlineData("num_attention_heads", "4", "\"num_attention_heads\": 4 cannot be compiled: hidden_size 36 must split into heads of an even size")]
    [InlineData("global_attn_every_n_layers", "0", "\"global_attn_every_n_layers\": 0 cannot be compiled: a positive period")]
    [InlineData("local_attention", "1", "\"local_attention\": 1 cannot be compiled: a window of at least 2")]
    public void TG0042_what_a_modernbert_config_asks_and_the_compiler_cannot_build(string key, string value, string expected)
    {
        Assert.StartsWith("modernbert/config.json: " + expected, Unsupported("modernbert", Set(ModernBert, key, value), ", Head = EncoderHead.SentenceEmbedding"));
    }

    [Fact]
    public void TG0042_modernbert_layer_types_that_disagree_with_its_period_and_a_scaled_rotation()
    {
        string types = ModernBert.Replace("\"global_rope_theta\": 160000.0,", "\"layer_types\": [\"full_attention\", \"full_attention\", \"sliding_attention\", \"full_attention\"],");
        Assert.StartsWith("modernbert/config.json: \"layer_types\": [full_attention, full_attention, sliding_attention, full_attention] cannot be compiled: ModernBERT windows every layer",
            Unsupported("modernbert", types, ", Head = EncoderHead.SentenceEmbedding"));
        string scaled = ModernBert.Replace("\"local_rope_theta\": 10000.0,", "\"rope_parameters\": {\"full_attention\": {\"rope_theta\": 160000.0, \"rope_type\": \"yarn\", \"factor\": 2.0}, \"sliding_attention\": {\"rope_theta\": 10000.0, \"rope_type\": \"default\"}},");
        Assert.Contains("cannot be compiled: scaled rotary positions are not implemented", Unsupported("modernbert", scaled, ", Head = EncoderHead.SentenceEmbedding"));
    }
}

public partial class ConfigTests
{
    [Fact]
    public void A_modernbert_sequence_classifier_compiles_its_prediction_head_and_pools_as_classifier_pooling_says()
    {
        string json = Set(ModernBert.Replace("\"ModernBertModel\"", "\"ModernBertForSequenceClassification\""), "num_labels", "3");
        Type m = Compile(At("modernbert", json), Declared("modernbert", seqLen: 11), out string source);
        Assert.Equal(3, Constant(m, "Classes"));
        foreach (string name in new[] { "head.dense.weight", "head.norm.weight", "classifier.weight", "classifier.bias" })
            Assert.Contains($"new(\"{name}\"", source);
        Assert.DoesNotContain("head.dense.bias", source);
        Assert.DoesNotContain("head.norm.bias", source);
        Assert.Contains("The sequence is pooled (mean of non-pad tokens), the prediction head (head.dense, its activation, head.norm) and a linear head gives class logits.", source);
        Assert.Contains("Pooling.MeanForward(", source);

        // classifier_pooling cls reads the first token; a declared Pooling that contradicts the config is TG0043.
        Compile(At("modernbert", Set(json, "classifier_pooling", "\"cls\"")), Declared("modernbert", seqLen: 11), out string cls);
        Assert.Contains("The sequence is pooled (first token)", cls);
        Assert.Contains("Pooling.FirstForward(", cls);
        SingleError(At("modernbert", json), Declared("modernbert", ", Pooling = Pooling.FirstToken", seqLen: 11), "TG0043", "Pooling = Pooling.FirstToken");

        // A reranker (one label, gte-reranker-modernbert-base) gives scores; a classifier_bias adds the dense layer's bias.
        string reranker = Set(Set(json, "num_labels", "1"), "classifier_bias", "true");
        Compile(At("modernbert", reranker), Declared("modernbert", seqLen: 11), out string scores);
        Assert.Contains("a linear head gives a score.", scores);
        Assert.Contains("new(\"head.dense.bias\"", scores);
    }

    [Fact]
    public void A_modernbert_token_classifier_runs_the_prediction_head_on_every_token()
    {
        string json = Set(ModernBert.Replace("\"ModernBertModel\"", "\"ModernBertForTokenClassification\""), "num_labels", "5");
        Type m = Compile(At("modernbert", json), Declared("modernbert", ", Head = EncoderHead.Tagging", seqLen: 11), out string source);
        Assert.Equal(5, Constant(m, "Classes"));
        Assert.Contains("Every token goes through the prediction head (head.dense, its activation, head.norm), then a linear head gives its class logits.", source);
        Assert.Contains("new(\"head.norm.weight\"", source);
    }
}
