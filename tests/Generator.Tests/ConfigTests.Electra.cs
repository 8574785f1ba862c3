using System;
using Xunit;
using static TransformerGen.Generator.Tests.ConfigFixtures;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// ELECTRA configs (google/electra-small-discriminator's keys at odd sizes): BERT's post-LN layers under <c>electra.</c>,
/// embeddings <c>embedding_size</c> wide widened by <c>embeddings_project</c>, no pooler, and ElectraClassificationHead's
/// dense layer and GELU before <c>classifier.out_proj</c>.
/// </summary>
public partial class ConfigTests
{
    /// <summary>An ELECTRA discriminator: embeddings 14 wide, layers 30 wide (3 heads of 10), 2 layers.</summary>
    private const string Electra = """
        {
          "architectures": ["ElectraForPreTraining"],
          "attention_probs_dropout_prob": 0.1,
          "embedding_size": 14,
          "hidden_act": "gelu",
          "hidden_dropout_prob": 0.1,
          "hidden_size": 30,
          "initializer_range": 0.02,
          "intermediate_size": 37,
          "layer_norm_eps": 1e-12,
          "max_position_embeddings": 20,
          "model_type": "electra",
          "num_attention_heads": 3,
          "num_hidden_layers": 2,
          "pad_token_id": 0,
          "position_embedding_type": "absolute",
          "summary_activation": "gelu",
          "summary_last_dropout": 0.1,
          "summary_type": "first",
          "summary_use_proj": true,
          "type_vocab_size": 2,
          "vocab_size": 41
        }
        """;

    [Fact]
    public void An_electra_discriminator_embeds_narrow_and_projects_to_the_layers_width()
    {
        Compile(At("electra", Electra), Declared("electra", ", Head = EncoderHead.SentenceEmbedding", seqLen: 12), out string source);
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.Electra,", source);
        Assert.Contains("new(\"embeddings.word_embeddings.weight\", new[] { 41, 14 }", source);
        Assert.Contains("new(\"embeddings.position_embeddings.weight\", new[] { 20, 14 }", source);
        Assert.Contains("new(\"embeddings.token_type_embeddings.weight\", new[] { 2, 14 }", source);
        Assert.Contains("new(\"embeddings.LayerNorm.weight\", new[] { 14 }", source);
        Assert.Contains("new(\"embeddings_project.weight\", new[] { 30, 14 }", source);
        Assert.Contains("new(\"embeddings_project.bias\", new[] { 30 }", source);
        Assert.Contains("new(\"encoder.layer.1.output.LayerNorm.weight\", new[] { 30 }", source);
        Assert.DoesNotContain("pooler", source);
        Assert.Contains("embedding projection (14 to 30, embeddings_project)", source);
        // The lookups, the position and type rows and the embedding LayerNorm run 14 wide.
        Assert.Contains("Embedding.Forward(Tokens, ", source);
        Assert.Contains(", 41, 14);", source);
        Assert.Contains("Embedding.AddTypeRows(", source);

        // Without embedding_size, ElectraConfig's default 128.
        Compile(At("electra-default", Remove(Electra, "embedding_size")), Declared("electra-default", ", Head = EncoderHead.SentenceEmbedding", seqLen: 12), out source);
        Assert.Contains("new(\"embeddings_project.weight\", new[] { 30, 128 }", source);

        // embedding_size equal to hidden_size (ELECTRA-base's) has no projection.
        Compile(At("electra-base", Set(Electra, "embedding_size", "30")), Declared("electra-base", ", Head = EncoderHead.SentenceEmbedding", seqLen: 12), out source);
        Assert.DoesNotContain("embeddings_project", source);
        Assert.Contains("new(\"embeddings.word_embeddings.weight\", new[] { 41, 30 }", source);
    }

    [Fact]
    public void An_electra_sequence_classifier_puts_a_dense_layer_and_gelu_before_out_proj_and_a_tagger_a_linear_head()
    {
        string classifier = Set(Electra.Replace("ElectraForPreTraining", "ElectraForSequenceClassification"), "num_labels", "3");
        Compile(At("electra-sst", classifier), Declared("electra-sst", seqLen: 12), out string source);
        Assert.Contains("new(\"classifier.dense.weight\", new[] { 30, 30 }", source);
        Assert.Contains("new(\"classifier.out_proj.weight\", new[] { 3, 30 }", source);
        Assert.Contains("a dense layer and GELU (classifier.dense)", source);
        Assert.Contains("Activations.GeluForward(", source);
        Assert.DoesNotContain("Activations.TanhForward(", source);

        // One label: cross-encoder/ms-marco-electra-base's relevance score.
        string reranker = Set(Electra.Replace("ElectraForPreTraining", "ElectraForSequenceClassification"), "num_labels", "1");
        Compile(At("electra-rerank", reranker), Declared("electra-rerank", seqLen: 12), out source);
        Assert.Contains("a linear head gives a score", source);

        string tagger = Set(Electra.Replace("ElectraForPreTraining", "ElectraForTokenClassification"), "num_labels", "5");
        Compile(At("electra-ner", tagger), Declared("electra-ner", ", Head = EncoderHead.Tagging", seqLen: 12), out source);
        Assert.Contains("new(\"classifier.weight\", new[] { 5, 30 }", source);
        Assert.DoesNotContain("classifier.dense", source);
    }

    [Fact]
    public void TG0042_an_electra_with_relative_positions_or_a_question_answering_head()
    {
        Assert.EndsWith("cannot be compiled: only absolute learned positions are compiled",
            Unsupported("electra", Set(Electra, "position_embedding_type", "\"relative_key\""), ", Head = EncoderHead.SentenceEmbedding"));
        Assert.StartsWith("electra/config.json: \"architectures\": ElectraForQuestionAnswering cannot be compiled",
            Unsupported("electra", Electra.Replace("ElectraForPreTraining", "ElectraForQuestionAnswering"), ", Head = EncoderHead.SentenceEmbedding"));
    }
}
