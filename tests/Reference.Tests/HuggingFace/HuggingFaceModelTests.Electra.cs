using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using TransformerGen.Model.Tests;
using Xunit;

namespace TransformerGen.Reference.Tests.HuggingFace;

// ELECTRA compiled from the fixtures against the libtorch reference (HfBert with model_type electra): the embeddings
// embedding_size wide and embeddings_project, BERT's layers, ElectraClassificationHead's dense and GELU, the token
// classifier; files in the layouts transformers writes (ElectraModel's bare names, the task models' electra. prefix,
// ElectraForPreTraining's discriminator head and ElectraForMaskedLM's generator head, which the loader skips).
public sealed partial class HuggingFaceModelTests
{
    // An ElectraForPreTraining file (electra.…, the position_ids buffer, discriminator_predictions.*) read as a sentence
    // embedder: mean pooling and Normalize over the discriminator's last hidden states.
    [Fact]
    public void Electra_discriminator_file_embeds_sentences_through_embeddings_project()
    {
        Assert.Equal((20, 36), (new HfElectraModel(seed: 3).ParameterTensors.Single(t => t.Name == "embeddings.word_embeddings.weight").Shape[1], HfElectraModel.DModel));
        BertSentenceEmbeddings(new HfElectraModel(seed: 3), clsToken: false, new HfWriteOptions(Prefix: true, IncludeBuffers: true, IncludeUnusedHeads: true),
            HfFixtures.Electra, [HfElectraModel.SeqLen, 4, 8]);
    }

    // ElectraModel's own file: bare names, no buffer, BF16 (the reference computes with the rounded weights).
    [Fact]
    public void Electra_bare_model_file_in_bf16() =>
        BertSentenceEmbeddings(new HfElectraModel(seed: 3), clsToken: false, new HfWriteOptions(Dtype: HfDtype.BF16, IncludeBuffers: false),
            HfFixtures.Electra, [HfElectraModel.SeqLen, 6, 2]);

    // An ElectraForMaskedLM file of the same sizes, in two shards: generator_predictions.*, generator_lm_head.bias and the
    // tied generator_lm_head.weight are skipped, the encoder's tensors read.
    [Fact]
    public void Electra_generator_file_has_its_masked_lm_head_skipped()
    {
        string configFolder = Path.Combine(_folder, "config");
        Directory.CreateDirectory(configFolder);
        string configPath = Path.Combine(configFolder, "config.json");
        JsonObject json = JsonNode.Parse(File.ReadAllText(HfFixtures.ConfigPath(HfFixtures.Electra)))!.AsObject();
        json["architectures"] = new JsonArray("ElectraForMaskedLM");
        File.WriteAllText(configPath, json.ToJsonString());
        using HfReference reference = HfReference.Create(configPath, Seed);
        string files = Path.Combine(_folder, "generator");
        reference.Save(files, new HfWriteOptions(Prefix: true, IncludeUnusedHeads: true, KeepTiedCopy: true, Shards: 2));
        Assert.Contains("generator_lm_head.weight", File.ReadAllText(Path.Combine(files, "model.safetensors.index.json")));

        var model = new HfElectraModel(seed: 3);
        model.Load(files);
        const int batch = HfElectraModel.Batch, seqLen = HfElectraModel.SeqLen;
        (int[] tokens, int[] mask) = PaddedBatch(batch, seqLen, HfElectraModel.Vocab, [seqLen, 5, 9], seed: 27);
        float[] embeddings = model.Predict(tokens).ToArray(), expected = reference.SentenceEmbeddings(tokens, mask, batch, seqLen);
        double error = HfChecks.RelativeMax(embeddings, expected);
        output.WriteLine($"electra as ElectraForMaskedLM: embeddings {error:E2}");
        Assert.True(error < 1e-5, $"embeddings differ by {error:E2}");
    }

    // ElectraForSequenceClassification: token 0 through classifier.dense, GELU and classifier.out_proj; logits, the loss of
    // Forward and every gradient, embeddings_project's included.
    [Fact]
    public void Electra_sequence_classifier_reads_its_dense_gelu_and_out_proj() =>
        Classifier(new HfElectraClassifierModel(seed: 3), HfFixtures.ElectraClassifier, new HfWriteOptions(Prefix: true, IncludeBuffers: true),
            [HfElectraClassifierModel.SeqLen, 4, 7]);

    // ElectraForTokenClassification: classifier on every token.
    [Fact]
    public void Electra_token_classifier_labels_every_token() =>
        Classifier(new HfElectraTaggerModel(seed: 3), HfFixtures.ElectraTagger, new HfWriteOptions(Prefix: true), [HfElectraTaggerModel.SeqLen, 4, 7]);

    // cross-encoder/ms-marco-electra-base in small: one label, E = H (no projection); Predict gives each pair's score and
    // Backward takes the gradient of the caller's loss with respect to the scores.
    [Fact]
    public void Electra_reranker_scores_with_one_output_and_a_seeded_backward()
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.ElectraReranker), Seed);
        reference.Save(_folder, new HfWriteOptions(Prefix: true, IncludeBuffers: false));
        var model = new HfElectraRerankerModel(seed: 3);
        model.Load(_folder);
        const int batch = HfElectraRerankerModel.Batch, seqLen = HfElectraRerankerModel.SeqLen;
        (int[] tokens, int[] mask) = PaddedBatch(batch, seqLen, HfElectraRerankerModel.Vocab, [seqLen, 4, 7], seed: 25);

        Assert.Equal(1, HfElectraRerankerModel.Classes);
        Assert.DoesNotContain(model.ParameterTensors, t => t.Name.StartsWith("embeddings_project", StringComparison.Ordinal));
        CheckScores(model, reference, tokens, mask, batch, seqLen, "electra-reranker");
    }

    // Sentence pairs: each token's type row, E = 22 wide, added before the embeddings' LayerNorm and the projection, in
    // training (Forward with types, Backward) and in exact-length passes (Predict with lengths and types).
    [Fact]
    public void Electra_sentence_pairs_add_each_tokens_type_at_the_embedding_width()
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.ElectraClassifier), Seed);
        reference.Save(_folder, new HfWriteOptions(Prefix: true));
        var model = new HfElectraClassifierModel(seed: 3);
        model.Load(_folder);
        const int batch = HfElectraClassifierModel.Batch, seqLen = HfElectraClassifierModel.SeqLen;
        int[] lengths = [seqLen, 5, 7], firstSegment = [4, 2, 3];
        (int[] tokens, int[] mask) = PaddedBatch(batch, seqLen, HfElectraClassifierModel.Vocab, lengths, seed: 26);
        int[] types = new int[batch * seqLen];
        for (int b = 0; b < batch; b++)
            for (int t = firstSegment[b]; t < lengths[b]; t++) types[b * seqLen + t] = 1;
        CheckPairs(model, reference, tokens, mask, types, lengths, [2, 0, 1], "electra pairs");
        ParameterTensor typeTable = model.ParameterTensors.Single(t => t.Name == "embeddings.token_type_embeddings.weight");
        Assert.Equal(new[] { 2, 22 }, typeTable.Shape);
        Assert.Contains(model.Gradients.Slice(typeTable.Offset + 22, 22).ToArray(), g => g != 0f); // segment 1's row learns
    }

    // Right-padded sequences of the given lengths, never the padding id 0 among the real tokens.
    private static (int[] Tokens, int[] Mask) PaddedBatch(int batch, int seqLen, int vocab, int[] lengths, ulong seed)
    {
        int[] tokens = new int[batch * seqLen], mask = new int[batch * seqLen];
        int[] random = TestData.Tokens(batch * seqLen, vocab - 1, seed);
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < lengths[b]; t++) { tokens[b * seqLen + t] = random[b * seqLen + t] + 1; mask[b * seqLen + t] = 1; }
        return (tokens, mask);
    }
}
