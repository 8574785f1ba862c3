using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Xunit;
using Xunit.Abstractions;
using TransformerGen.Model.Tests;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// The models compiled from Hugging Face configs (<see cref="HfGpt2Model"/> and the others) against the independent
/// libtorch re-implementations of transformers' modules (<see cref="HfReference"/>), with the same weights read from the
/// files HfReference wrote in each family's own layout: logits and hidden states to 1e-5 of the largest value, every
/// parameter's gradient to 1e-4 of its norm, identical greedy continuations through the key/value cache, and sentence
/// embeddings with cosine ≥ 0.99999. Each family is loaded from a different variant of its files (prefixed or not,
/// BF16/F16, sharded, with buffers and tied copies) so the loader's paths are exercised end to end.
/// </summary>
public sealed partial class HuggingFaceModelTests(ITestOutputHelper output) : IDisposable
{
    private const long Seed = 20261205;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "tg-hf-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public void Gpt2_prefixed_file_with_buffers_and_a_tied_copy() =>
        Decoder("gpt2", new HfWriteOptions(Prefix: true, IncludeBuffers: true, KeepTiedCopy: true), new HfGpt2Model(seed: 7), HfGpt2Model.ForInference, HfGpt2Model.Batch, HfGpt2Model.SeqLen, HfGpt2Model.Vocab);

    [Fact]
    public void Llama_grouped_query_bf16_in_two_shards() =>
        Decoder("llama-gqa", new HfWriteOptions(Dtype: HfDtype.BF16, Shards: 2, IncludeBuffers: true), new HfLlamaGqaModel(seed: 7), HfLlamaGqaModel.ForInference, HfLlamaGqaModel.Batch, HfLlamaGqaModel.SeqLen, HfLlamaGqaModel.Vocab);

    [Fact]
    public void Llama_grouped_query_with_tiled_attention() =>
        Decoder("llama-gqa", new HfWriteOptions(), new HfLlamaGqaTiledModel(seed: 7), HfLlamaGqaTiledModel.ForInference, HfLlamaGqaTiledModel.Batch, HfLlamaGqaTiledModel.SeqLen, HfLlamaGqaTiledModel.Vocab);

    [Fact]
    public void Llama_multi_query_tied_without_the_model_prefix() =>
        Decoder("llama-mqa", new HfWriteOptions(Prefix: true), new HfLlamaMqaModel(seed: 7), HfLlamaMqaModel.ForInference, HfLlamaMqaModel.Batch, HfLlamaMqaModel.SeqLen, HfLlamaMqaModel.Vocab);

    [Fact]
    public void Qwen2_with_qkv_biases_in_f16() =>
        Decoder("qwen2", new HfWriteOptions(Dtype: HfDtype.F16), new HfQwen2Model(seed: 7), HfQwen2Model.ForInference, HfQwen2Model.Batch, HfQwen2Model.SeqLen, HfQwen2Model.Vocab);

    [Fact]
    public void Phi3_with_fused_qkv_and_gate_up_projections() =>
        Decoder("phi3", new HfWriteOptions(Prefix: true), new HfPhi3Model(seed: 7), HfPhi3Model.ForInference, HfPhi3Model.Batch, HfPhi3Model.SeqLen, HfPhi3Model.Vocab);

    [Fact]
    public void Qwen3_with_query_and_key_norms_in_bf16() =>
        Decoder("qwen3", new HfWriteOptions(Dtype: HfDtype.BF16), new HfQwen3Model(seed: 7), HfQwen3Model.ForInference, HfQwen3Model.Batch, HfQwen3Model.SeqLen, HfQwen3Model.Vocab);

    // Scaled rotary positions: llama3 (from rope_scaling, and from transformers 5's rope_parameters), yarn and longrope.
    [Fact]
    public void Llama3_scaled_rotary_positions_in_bf16() =>
        Decoder("llama3-rope", new HfWriteOptions(Dtype: HfDtype.BF16), new HfLlama3RopeModel(seed: 7), HfLlama3RopeModel.ForInference, HfLlama3RopeModel.Batch, HfLlama3RopeModel.SeqLen, HfLlama3RopeModel.Vocab);

    [Fact]
    public void Llama3_scaled_rotary_positions_from_rope_parameters() =>
        Decoder("llama3-rope-parameters", new HfWriteOptions(Prefix: true), new HfLlama3RopeParametersModel(seed: 7), HfLlama3RopeParametersModel.ForInference,
            HfLlama3RopeParametersModel.Batch, HfLlama3RopeParametersModel.SeqLen, HfLlama3RopeParametersModel.Vocab);

    [Fact]
    public void Qwen2_yarn_scaled_rotary_positions() =>
        Decoder("qwen2-yarn", new HfWriteOptions(), new HfQwen2YarnModel(seed: 7), HfQwen2YarnModel.ForInference, HfQwen2YarnModel.Batch, HfQwen2YarnModel.SeqLen, HfQwen2YarnModel.Vocab);

    [Fact]
    public void Phi3_longrope_scaled_rotary_positions_within_the_original_context() =>
        Decoder("phi3-longrope", new HfWriteOptions(Prefix: true), new HfPhi3LongRopeModel(seed: 7), HfPhi3LongRopeModel.ForInference, HfPhi3LongRopeModel.Batch, HfPhi3LongRopeModel.SeqLen, HfPhi3LongRopeModel.Vocab);

    // Gemma 3: its padding id 0 is a token of its own, masked as padding by the compiled model, so the tokens start at 1.
    [Fact]
    public void Gemma3_sandwiched_norms_sliding_windows_and_two_rotary_bases() =>
        Decoder("gemma3", new HfWriteOptions(), new HfGemma3Model(seed: 7), HfGemma3Model.ForInference, HfGemma3Model.Batch, HfGemma3Model.SeqLen, HfGemma3Model.Vocab, firstToken: 1);

    [Fact]
    public void Gemma3_with_tiled_attention_from_a_bf16_file_with_the_tied_copy() =>
        Decoder("gemma3", new HfWriteOptions(Dtype: HfDtype.BF16, KeepTiedCopy: true), new HfGemma3TiledModel(seed: 7), HfGemma3TiledModel.ForInference,
            HfGemma3TiledModel.Batch, HfGemma3TiledModel.SeqLen, HfGemma3TiledModel.Vocab, firstToken: 1);

    // Decoder sentence embeddings (Qwen3-Embedding, gte-Qwen2): the final-norm hidden state of each sequence's last token,
    // L2-normalized, against libtorch's hidden states of each sequence alone; AppendedHiddenStates before normalizing.
    [Theory]
    [InlineData("qwen3")]
    [InlineData("llama-gqa")]
    public void Decoder_embeddings_pool_the_last_tokens_hidden_state(string fixture)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
        reference.Save(_folder, new HfWriteOptions());
        LanguageModel model = fixture == "qwen3" ? HfQwen3Model.ForInference(_folder) : HfLlamaGqaModel.ForInference(_folder);
        int vocab = model.Layout.Vocab, seqLen = model.Layout.SeqLen;
        model.Append(TestData.Tokens(3, vocab, 28)); // slot 0 held something before: Embed empties it
        // Two sequences in one pass (AppendedHiddenStates then holds both), and two that need a pass each.
        foreach (int[] lengths in new[] { new[] { seqLen - 5, 5 }, new[] { seqLen, 4 } })
        {
            int[] tokens = TestData.Tokens(lengths.Sum(), vocab, 27);
            float[] embeddings = model.Embed(tokens, lengths).ToArray();
            float[] hidden = model.AppendedHiddenStates.ToArray();
            int width = embeddings.Length / lengths.Length, passes = hidden.Length / width == lengths.Length ? 1 : 2;
            double embeddingError = 0, hiddenError = 0;
            for (int s = 0, start = 0; s < lengths.Length; start += lengths[s], s++)
            {
                float[] last = reference.LastHiddenState(tokens[start..(start + lengths[s])], 1, lengths[s])[^width..];
                double norm = Math.Sqrt(last.Sum(v => (double)v * v));
                embeddingError = Math.Max(embeddingError, HfChecks.RelativeMax(embeddings[(s * width)..((s + 1) * width)], last.Select(v => (float)(v / norm)).ToArray()));
                // One pass: every row; two: the last pass's rows, the last sequence's.
                if (passes == 1) hiddenError = Math.Max(hiddenError, HfChecks.RelativeMax(hidden[(s * width)..((s + 1) * width)], last));
                else if (s == lengths.Length - 1) hiddenError = Math.Max(hiddenError, HfChecks.RelativeMax(hidden[^width..], last));
                Assert.Equal(lengths[s], model.CacheLengthOf(s));
            }
            output.WriteLine($"{fixture} {string.Join("+", lengths)} tokens ({passes} pass{(passes == 1 ? "" : "es")}): embeddings {embeddingError:E2}, last hidden states {hiddenError:E2}");
            Assert.True(embeddingError < 1e-5 && hiddenError < 1e-5, $"embeddings {embeddingError:E2}, hidden states {hiddenError:E2}");
            Assert.Equal(lengths.Sum() <= seqLen ? 1 : 2, passes);
        }

        // Steady-state calls allocate nothing (up to three windows: the runtime may allocate once on this thread).
        int[] some = TestData.Tokens(seqLen + 4, vocab, 29), split = [seqLen, 4];
        long bytes = 0;
        for (int window = 0; window < 3 && (window == 0 || bytes != 0); window++)
        {
            model.Embed(some, split);
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 10; i++) model.Embed(some, split);
            bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Assert.Equal(0, bytes);

        // A refused call runs nothing and leaves the slots as they were.
        Assert.Throws<ArgumentException>(() => model.Embed(new int[10], [seqLen, 4]));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Embed([1, vocab], [2]));
        Assert.Equal(seqLen, model.CacheLengthOf(0));
    }

    /// <summary>
    /// Phi-3 pads with its end-of-text id (pad_token_id = eos_token_id = 32), so the compiled model masks no padding, but
    /// transformers' embed_tokens has padding_idx 32: end-of-text tokens in the input give that row no gradient through
    /// their lookups (its table is untied, so none at all), while every other gradient matches libtorch's.
    /// </summary>
    [Fact]
    public void A_pad_that_is_also_the_end_token_gets_no_lookup_gradient_as_padding_idx_says()
    {
        const int pad = 32;
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath("phi3"), Seed);
        reference.Save(_folder, new HfWriteOptions());
        var model = new HfPhi3Model(seed: 7);
        model.Load(_folder);
        Assert.Equal(-1, model.Layout.PadToken);
        int batch = HfPhi3Model.Batch, seqLen = HfPhi3Model.SeqLen, d = HfPhi3Model.DModel;
        int[] tokens = TestData.Tokens(batch * seqLen, HfPhi3Model.Vocab, 21), targets = TestData.Tokens(batch * seqLen, HfPhi3Model.Vocab, 22);
        for (int i = 3; i < tokens.Length; i += 4) tokens[i] = pad;
        model.Forward(tokens, targets);
        (_, Dictionary<string, float[]> gradients) = reference.LossAndGradients(tokens, targets, batch, seqLen);
        model.ZeroGrad();
        model.Backward();
        (double gradientError, string worst) = HfChecks.GradientError(model, gradients);
        ParameterTensor table = model.ParameterTensors.Single(t => t.Name == "model.embed_tokens.weight");
        float[] padRow = model.Gradients.Slice(table.Offset + pad * d, d).ToArray(), firstRow = model.Gradients.Slice(table.Offset + tokens[0] * d, d).ToArray();
        output.WriteLine($"phi3 with end-of-text in the input: gradients {gradientError:E2} (worst {worst}); row {pad} |g| {padRow.Sum(Math.Abs)}, row {tokens[0]} |g| {firstRow.Sum(Math.Abs):E2}");
        Assert.All(padRow, g => Assert.Equal(0f, g));
        Assert.Contains(firstRow, g => g != 0f);
        Assert.True(gradientError < 1e-4, $"gradient of {worst} differs by {gradientError:E2} of its norm");
    }

    // gemma-3-4b and larger are Gemma3ForConditionalGeneration: the same language model under "language_model.model."
    // (the hub's files) or "model.language_model." (transformers 4.52 on), beside a vision tower and a projector. Its
    // file, renamed and given those tensors, loads into the text model and computes the reference's logits; the skipped
    // tensors are reported.
    [Theory]
    [InlineData("language_model.model.", "vision_tower.vision_model.", "multi_modal_projector.", "language_model.lm_head.weight")]
    [InlineData("model.language_model.", "model.vision_tower.vision_model.", "model.multi_modal_projector.", "lm_head.weight")]
    public void Gemma3_from_a_multimodal_checkpoints_language_model(string prefix, string vision, string projector, string headCopy)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.Gemma3), Seed);
        reference.Save(_folder, new HfWriteOptions());
        string file = Path.Combine(_folder, "model.safetensors");
        var tensors = new List<SafeTensor>();
        foreach ((string name, HfReferenceSelfTests.StoredTensor t) in HfReferenceSelfTests.ReadFolder(_folder, 1))
        {
            tensors.Add(new SafeTensor(prefix + name["model.".Length..], t.Dtype, t.Shape, t.Data));
            if (name == "model.embed_tokens.weight") tensors.Add(new SafeTensor(headCopy, t.Dtype, t.Shape, t.Data));
        }
        tensors.Add(new SafeTensor(vision + "embeddings.patch_embedding.weight", "F32", [4, 3, 2, 2], new byte[4 * 3 * 2 * 2 * 4]));
        tensors.Add(new SafeTensor(vision + "encoder.layers.0.self_attn.q_proj.weight", "BF16", [4, 4], new byte[4 * 4 * 2]));
        tensors.Add(new SafeTensor(projector + "mm_input_projection_weight", "F32", [4, 24], new byte[4 * 24 * 4]));
        tensors.Add(new SafeTensor(projector + "mm_soft_emb_norm.weight", "F32", [4], new byte[4 * 4]));
        SafeTensorsWriter.Write(file, tensors);

        var model = new HfGemma3Model(seed: 7);
        model.Load(_folder);
        SafeTensorsLoadReport report = HuggingFaceCheckpoint.Load(_folder, model.ParameterTensors, new float[model.Parameters.Length], CheckpointFamily.Gemma3);
        Assert.Equal(5, report.Skipped.Count);
        Assert.Equal(4, report.Skipped.Count(t => t.Reason == SafeTensorsSkipReason.UnusedHead));
        Assert.Contains(report.Skipped, t => t.Name == headCopy && t.Reason == SafeTensorsSkipReason.TiedCopy);
        int[] tokens = TestData.Tokens(HfGemma3Model.Batch * HfGemma3Model.SeqLen, HfGemma3Model.Vocab - 1, 11).Select(t => t + 1).ToArray();
        model.Forward(tokens, tokens);
        double error = HfChecks.RelativeMax(model.Logits.ToArray(), reference.Logits(tokens, HfGemma3Model.Batch, HfGemma3Model.SeqLen));
        output.WriteLine($"gemma3 under {prefix}: logits {error:E2}, skipped {string.Join(", ", report.Skipped.Select(t => t.Name))}");
        Assert.True(error < 1e-5, $"logits differ by {error:E2}");
    }

    private void Decoder(string fixture, HfWriteOptions options, LanguageModel model, Func<string, LanguageModel> forInference, int batch, int seqLen, int vocab,
        int firstToken = 0)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
        reference.Save(_folder, options);
        model.Load(_folder);

        int[] tokens = TestData.Tokens(batch * seqLen, vocab - firstToken, 11).Select(t => t + firstToken).ToArray();
        int[] targets = TestData.Tokens(batch * seqLen, vocab - firstToken, 12).Select(t => t + firstToken).ToArray();
        for (int i = 0; i < targets.Length; i += 5) targets[i] = -1;

        float loss = model.Forward(tokens, targets);
        double logitError = HfChecks.RelativeMax(model.Logits.ToArray(), reference.Logits(tokens, batch, seqLen));
        double hiddenError = HfChecks.RelativeMax(model.LastHiddenState.ToArray(), reference.LastHiddenState(tokens, batch, seqLen));
        (float expectedLoss, Dictionary<string, float[]> gradients) = reference.LossAndGradients(tokens, targets, batch, seqLen);
        model.ZeroGrad();
        model.Backward();
        (double gradientError, string worst) = HfChecks.GradientError(model, gradients);
        output.WriteLine($"{fixture}: logits {logitError:E2}, hidden {hiddenError:E2}, loss {loss} vs {expectedLoss}, gradients {gradientError:E2} (worst {worst})");
        Assert.True(logitError < 1e-5, $"{fixture}: logits differ by {logitError:E2} of the largest");
        Assert.True(hiddenError < 1e-5, $"{fixture}: last hidden state differs by {hiddenError:E2} of the largest");
        Assert.True(Math.Abs(loss - expectedLoss) < 1e-5 * Math.Abs(expectedLoss), $"{fixture}: loss {loss} vs {expectedLoss}");
        Assert.True(gradientError < 1e-4, $"{fixture}: gradient of {worst} differs by {gradientError:E2} of its norm");

        // Greedy decoding through the key/value cache of an inference-only instance equals libtorch's full recomputation.
        LanguageModel inference = forInference(_folder);
        int[] prompt = tokens[..4];
        int count = seqLen - prompt.Length;
        int[] expected = reference.GreedyContinuation(prompt, count);
        var produced = new int[count];
        ReadOnlySpan<float> logits = inference.Append(prompt);
        for (int i = 0; i < count; i++)
        {
            produced[i] = ArgMax(logits);
            if (i < count - 1) logits = inference.Append(produced.AsSpan(i, 1));
        }
        Assert.Equal(expected, produced);
    }

    [Fact]
    public void Bert_sentence_embeddings_from_a_prefixed_legacy_file() =>
        BertSentenceEmbeddings(new HfBertModel(seed: 3), clsToken: false, new HfWriteOptions(Prefix: true, LegacyGammaBeta: true, IncludeBuffers: true, IncludeUnusedHeads: true));

    // bge-style [CLS] pooling: the first token's state, normalized; its gradient reaches every position only through attention.
    [Fact]
    public void Bert_sentence_embeddings_pooled_from_the_cls_token()
    {
        var model = new HfBertClsModel(seed: 3);
        Assert.Equal(Pooling.FirstToken, model.Layout.Pooling);
        Assert.Equal(Pooling.Mean, new HfBertModel(seed: 3).Layout.Pooling);
        BertSentenceEmbeddings(model, clsToken: true, new HfWriteOptions(Prefix: false, IncludeUnusedHeads: true));
    }

    // RoBERTa numbers positions over the tokens that are not padding; ours by place. They agree when padding only ends a
    // sequence, so padding before a real token is refused, in Forward and in Predict.
    [Fact]
    public void Roberta_refuses_padding_before_a_real_token()
    {
        var model = new HfRobertaModel(seed: 3);
        int seqLen = HfRobertaModel.SeqLen, pad = model.Layout.PadToken;
        int[] left = [pad, pad, 5, 6, 7];
        var e = Assert.Throws<ArgumentException>(() => model.Predict(left));
        Assert.Contains("padding id 1 at token 0 comes before a real token at 2", e.Message);
        int[] batch = Enumerable.Repeat(pad, 2 * seqLen).ToArray();
        batch[0] = 5; batch[seqLen + 3] = 6; // sequence 1: padding, then a token
        Assert.Throws<ArgumentException>(() => model.Forward(batch, new int[model.Layout.TargetLength]));
        Assert.Throws<ArgumentException>(() => model.Predict([5, 6, pad, 7, 8], [2, 3]));
        model.Predict([5, 6, 7, pad, pad], [5]); // trailing padding is fine
    }

    // RoBERTa: BERT's layers, positions from pad_token_id + 1 (the reference computes them from the ids, as
    // create_position_ids_from_input_ids does), names under "roberta.", the pooler and the position_ids buffer skipped.
    [Fact]
    public void Roberta_sentence_embeddings_with_positions_after_the_padding_id() =>
        BertSentenceEmbeddings(new HfRobertaModel(seed: 3), clsToken: false, new HfWriteOptions(Prefix: true, IncludeBuffers: true, IncludeUnusedHeads: true), "roberta", [HfRobertaModel.SeqLen, 5]);

    // Fine-tuned classifiers from their own files: logits (Predict), the loss of Forward and every gradient.
    [Fact]
    public void Bert_sequence_classifier_reads_the_pooler_and_classifier() =>
        Classifier(new HfBertClassifierModel(seed: 3), "bert-classifier", new HfWriteOptions(Prefix: true, IncludeBuffers: true), [HfBertClassifierModel.SeqLen, 4, 7]);

    [Fact]
    public void Bert_token_classifier_labels_every_token() =>
        Classifier(new HfBertTaggerModel(seed: 3), "bert-tagger", new HfWriteOptions(Prefix: true), [HfBertTaggerModel.SeqLen, 4, 7]);

    [Fact]
    public void Roberta_sequence_classifier_reads_its_dense_and_out_proj() =>
        Classifier(new HfRobertaClassifierModel(seed: 3), "roberta-classifier", new HfWriteOptions(Prefix: true, IncludeBuffers: true), [HfRobertaClassifierModel.SeqLen, 5]);

    /// <summary>
    /// A sequence classifier on sentence pairs (each token's type in <paramref name="types"/>) against the reference: the
    /// loss, logits and gradients of a training pass with the types, and the logits of an exact-length pass of the same
    /// pairs laid end to end (<paramref name="lengths"/>). The types must move the reference's logits. Returns the
    /// reference's logits without types and the indices of the real (unpadded) tokens.
    /// </summary>
    private (float[] WithoutTypes, int[] Real) CheckPairs(EncoderModel model, HfReference reference, int[] tokens, int[] mask, int[] types, int[] lengths, int[] targets, string name)
    {
        int batch = lengths.Length, seqLen = tokens.Length / batch;
        float loss = model.Forward(tokens, types, targets);
        (float expectedLoss, Dictionary<string, float[]> gradients) = reference.ClassifierLossAndGradients(tokens, mask, targets, batch, seqLen, types);
        model.ZeroGrad();
        model.Backward();
        (double gradientError, string worst) = HfChecks.GradientError(model, gradients);
        float[] withoutTypes = reference.ClassifierLogits(tokens, mask, batch, seqLen), expected = reference.ClassifierLogits(tokens, mask, batch, seqLen, types);
        double logitError = HfChecks.RelativeMax(model.Logits.ToArray(), expected);

        // The same pairs laid end to end, at their own lengths.
        int[] real = Enumerable.Range(0, tokens.Length).Where(i => mask[i] == 1).ToArray();
        float[] exact = model.Predict(real.Select(i => tokens[i]).ToArray(), lengths, real.Select(i => types[i]).ToArray()).ToArray();
        double exactError = HfChecks.RelativeMax(exact, expected);
        output.WriteLine($"{name}: logits {logitError:E2}, exact-length {exactError:E2} (types change them by {HfChecks.RelativeMax(withoutTypes, expected):E2}), loss {loss} vs {expectedLoss}, gradients {gradientError:E2} (worst {worst})");
        Assert.True(HfChecks.RelativeMax(withoutTypes, expected) > 1e-3, "the types must matter for this check to mean anything");
        Assert.True(logitError < 1e-5 && exactError < 1e-5, $"logits {logitError:E2}, exact-length {exactError:E2}");
        Assert.True(Math.Abs(loss - expectedLoss) < 1e-5 * Math.Abs(expectedLoss), $"loss {loss} vs {expectedLoss}");
        Assert.True(gradientError < 1e-4, $"gradient of {worst} differs by {gradientError:E2} of its norm");
        return (withoutTypes, real);
    }

    /// <summary>
    /// A model of scores (one label: a cross-encoder's) against the reference: Predict's scores, and the gradients of the
    /// caller's loss Σ scores ⊙ (0.7, −1.3, 0.4) seeded into Backward; a Backward without that seed is refused. Returns the
    /// reference's scores.
    /// </summary>
    private float[] CheckScores(EncoderModel model, HfReference reference, int[] tokens, int[] mask, int batch, int seqLen, string name)
    {
        Assert.True(model.Layout.SeededOutput);
        float[] scores = model.Predict(tokens).ToArray(), expected = reference.ClassifierLogits(tokens, mask, batch, seqLen);
        Assert.Equal(batch, scores.Length);
        double scoreError = HfChecks.RelativeMax(scores, expected);
        float[] upstream = [0.7f, -1.3f, 0.4f];
        model.ZeroGrad();
        model.Backward(upstream);
        (double gradientError, string worst) = HfChecks.GradientError(model, reference.ClassifierGradients(tokens, mask, batch, seqLen, upstream));
        output.WriteLine($"{name}: scores {scoreError:E2}, gradients {gradientError:E2} (worst {worst})");
        Assert.True(scoreError < 1e-5, $"scores differ by {scoreError:E2}");
        Assert.True(gradientError < 1e-4, $"gradient of {worst} differs by {gradientError:E2} of its norm");
        Assert.Throws<InvalidOperationException>(() => model.Backward()); // no loss of its own
        return expected;
    }

    // A cross-encoder (num_labels 1): Predict gives each pair's score; no loss of its own, so Backward takes the gradient
    // of the caller's loss with respect to the scores (here Σ scores ⊙ upstream, the gradient an MSE would pass).
    [Fact]
    public void Bert_cross_encoder_scores_with_one_output_and_a_seeded_backward()
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath("bert-cross-encoder"), Seed);
        reference.Save(_folder, new HfWriteOptions(Prefix: true, IncludeBuffers: true));
        var model = new HfBertCrossEncoderModel(seed: 3);
        model.Load(_folder);
        const int batch = HfBertCrossEncoderModel.Batch, seqLen = HfBertCrossEncoderModel.SeqLen;
        int[] lengths = [seqLen, 4, 7];
        int[] tokens = new int[batch * seqLen], mask = new int[batch * seqLen];
        int[] random = TestData.Tokens(batch * seqLen, HfBertCrossEncoderModel.Vocab - 1, 25);
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < lengths[b]; t++) { tokens[b * seqLen + t] = random[b * seqLen + t] + 1; mask[b * seqLen + t] = 1; }

        Assert.Equal(1, HfBertCrossEncoderModel.Classes);
        float[] expected = CheckScores(model, reference, tokens, mask, batch, seqLen, "bert-cross-encoder");
        model.Forward(tokens, [5, -3, 40]); // the targets stand for the shape: a model of scores reads none
        Assert.True(HfChecks.RelativeMax(model.Logits.ToArray(), expected) < 1e-5);
    }

    // Sentence pairs: each token's type (segment 0, then 1 after the first [SEP]) as token_type_ids gives it, in training
    // (Forward with types, Backward) and in exact-length passes (Predict with lengths and types), for a classifier and a
    // cross-encoder.
    [Fact]
    public void Bert_sentence_pairs_take_each_tokens_type()
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath("bert-classifier"), Seed);
        reference.Save(_folder, new HfWriteOptions(Prefix: true));
        var model = new HfBertClassifierModel(seed: 3);
        model.Load(_folder);
        const int batch = HfBertClassifierModel.Batch, seqLen = HfBertClassifierModel.SeqLen;
        int[] lengths = [seqLen, 5, 7], firstSegment = [4, 2, 3];
        int[] tokens = new int[batch * seqLen], mask = new int[batch * seqLen], types = new int[batch * seqLen];
        int[] random = TestData.Tokens(batch * seqLen, HfBertClassifierModel.Vocab - 1, 26);
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < lengths[b]; t++)
            {
                tokens[b * seqLen + t] = random[b * seqLen + t] + 1;
                mask[b * seqLen + t] = 1;
                types[b * seqLen + t] = t < firstSegment[b] ? 0 : 1;
            }
        int[] targets = [2, 0, 1];

        (float[] withoutTypes, int[] real) = CheckPairs(model, reference, tokens, mask, types, lengths, targets, "pairs");
        float[] typeGradient = model.Gradients.Slice(model.ParameterTensors.Single(t => t.Name == "embeddings.token_type_embeddings.weight").Offset + HfBertClassifierModel.DModel, HfBertClassifierModel.DModel).ToArray();
        Assert.Contains(typeGradient, g => g != 0f); // segment 1's row learns

        // A plain Forward and Predict afterwards take every token as segment 0 again.
        model.Forward(tokens, targets);
        Assert.True(HfChecks.RelativeMax(model.Logits.ToArray(), withoutTypes) < 1e-5);
        Assert.True(HfChecks.RelativeMax(model.Predict(real.Select(i => tokens[i]).ToArray(), lengths).ToArray(), withoutTypes) < 1e-5);

        // Refusals: wrong length, a type outside the table, and a model without token types.
        Assert.Throws<ArgumentException>(() => model.Predict(tokens.AsSpan(0, 4), [4], new int[3]));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => model.Predict(tokens.AsSpan(0, 4), [4], [0, 0, 2, 0]));
        Assert.Contains("position 2 is 2", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new HfRobertaClassifierModel(1).Predict([3, 4], [2], [0, 1])); // one type only
        Assert.Throws<InvalidOperationException>(() => new TransformerGen.Reference.Tests.MeanPoolPreClassifier(1).Predict([3, 4], [2], [0, 0]));      // no token types
    }

    // Reduced weights through this session's heads and norms (the pooler and tanh, DistilBERT's ReLU pre-classifier, the
    // one-label score, Qwen3's q_norm/k_norm, Phi-3's fused projections, Gemma 3's sandwich norms and windows): each reduced instance computes what fp32 computes
    // over its matrices rounded to the format, and differs from fp32 itself by about the format's precision.
    [Theory]
    [InlineData(WeightType.Int8)]
    [InlineData(WeightType.BFloat16)]
    public void Reduced_weights_run_the_classifier_heads_and_the_new_decoders(WeightType type)
    {
        foreach (string fixture in new[] { "bert-classifier", "distilbert-classifier", "bert-cross-encoder" })
        {
            using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
            reference.Save(_folder, new HfWriteOptions());
            Func<WeightType, EncoderModel> open = fixture switch
            {
                "bert-classifier" => w => HfBertClassifierModel.ForInference(_folder, w),
                "distilbert-classifier" => w => HfDistilBertClassifierModel.ForInference(_folder, w),
                _ => w => HfBertCrossEncoderModel.ForInference(_folder, w),
            };
            EncoderModel reduced = open(type), exact = open(WeightType.Float32), rounded = open(WeightType.Float32);
            ReducedWeights.RoundMatrices(rounded, type); // reading Parameters unpacks the fp32 panels
            rounded.PackWeights();
            int[] tokens = TestData.Tokens(7, reduced.Layout.Vocab - 1, 30).Select(t => t + 1).ToArray();
            Compare($"{fixture} {type}", reduced.Predict(tokens).ToArray(), rounded.Predict(tokens).ToArray(), exact.Predict(tokens).ToArray(), type);
        }
        foreach (string fixture in new[] { "qwen3", "phi3", "gemma3" })
        {
            using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
            reference.Save(_folder, new HfWriteOptions());
            Func<WeightType, LanguageModel> open = fixture switch
            {
                "qwen3" => w => HfQwen3Model.ForInference(_folder, w),
                "phi3" => w => HfPhi3Model.ForInference(_folder, w),
                _ => w => HfGemma3Model.ForInference(_folder, w),
            };
            LanguageModel reduced = open(type), exact = open(WeightType.Float32), rounded = open(WeightType.Float32);
            ReducedWeights.RoundMatrices(rounded, type); // reading Parameters unpacks the fp32 panels
            rounded.PackWeights();
            // Gemma 3's padding id 0 is a token of its own: the prompt avoids it.
            int[] prompt = TestData.Tokens(6, reduced.Layout.Vocab - 1, 31).Select(t => t + 1).ToArray();
            Compare($"{fixture} {type}", reduced.Append(prompt).ToArray(), rounded.Append(prompt).ToArray(), exact.Append(prompt).ToArray(), type);
        }
    }

    private void Compare(string what, float[] reduced, float[] rounded, float[] exact, WeightType type)
    {
        double sameArithmetic = HfChecks.RelativeMax(reduced, rounded), gap = HfChecks.RelativeMax(reduced, exact);
        output.WriteLine($"{what}: against fp32 over the rounded weights {sameArithmetic:E2}, against fp32 {gap:E2}");
        Assert.True(sameArithmetic < 1e-5, $"{what}: {sameArithmetic:E2} from fp32 over the rounded weights");
        Assert.InRange(gap, 1e-7, type == WeightType.Int8 ? 5e-2 : 3e-2);
    }

    private void Classifier(EncoderModel model, string config, HfWriteOptions files, int[] lengths)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(config), Seed);
        reference.Save(_folder, files);
        model.Load(_folder);
        ModelLayout layout = model.Layout;
        int batch = layout.Batch, seqLen = layout.SeqLen, pad = layout.PadToken, labels = layout.TargetVocab;
        bool perToken = layout.TargetLength == batch * seqLen;
        int[] tokens = Enumerable.Repeat(pad, batch * seqLen).ToArray(), mask = new int[batch * seqLen];
        int[] random = TestData.Tokens(batch * seqLen, layout.Vocab - 1, 23), classes = TestData.Tokens(batch * seqLen, labels, 24);
        int[] targets = Enumerable.Repeat(-1, layout.TargetLength).ToArray();
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < lengths[b]; t++)
            {
                tokens[b * seqLen + t] = random[b * seqLen + t] >= pad ? random[b * seqLen + t] + 1 : random[b * seqLen + t];
                mask[b * seqLen + t] = 1;
                if (perToken) targets[b * seqLen + t] = classes[b * seqLen + t];
            }
            if (!perToken) targets[b] = classes[b];
        }

        // Logits of the padded batch, and of each sentence alone at its own length (an exact-length pass).
        float[] expected = reference.ClassifierLogits(tokens, mask, batch, seqLen), logits = model.Predict(tokens).ToArray();
        Func<int, bool> real = row => !perToken || mask[row] == 1;
        double logitError = HfChecks.RelativeMax(logits.Where((_, i) => real(i / labels)).ToArray(), expected.Where((_, i) => real(i / labels)).ToArray());
        float[] alone = model.Predict(tokens.AsSpan(seqLen, lengths[1])).ToArray();
        float[] expectedAlone = perToken ? expected.AsSpan(seqLen * labels, lengths[1] * labels).ToArray() : expected.AsSpan(labels, labels).ToArray();
        double aloneError = HfChecks.RelativeMax(alone, expectedAlone);

        float loss = model.Forward(tokens, targets);
        (float expectedLoss, Dictionary<string, float[]> gradients) = reference.ClassifierLossAndGradients(tokens, mask, targets, batch, seqLen);
        model.ZeroGrad();
        model.Backward();
        (double gradientError, string worst) = HfChecks.GradientError(model, gradients);
        output.WriteLine($"{config}: logits {logitError:E2} (a sentence alone {aloneError:E2}), loss {loss} vs {expectedLoss}, gradients {gradientError:E2} (worst {worst})");
        Assert.Equal(labels, perToken ? model.Predict(tokens).Length / (batch * seqLen) : model.Predict(tokens).Length / batch);
        Assert.True(logitError < 1e-5, $"{config}: logits differ by {logitError:E2}");
        Assert.True(aloneError < 1e-5, $"{config}: a sentence alone differs by {aloneError:E2}");
        Assert.True(Math.Abs(loss - expectedLoss) < 1e-5 * Math.Abs(expectedLoss), $"{config}: loss {loss} vs {expectedLoss}");
        Assert.True(gradientError < 1e-4, $"{config}: gradient of {worst} differs by {gradientError:E2} of its norm");
    }

    // ModernBertForSequenceClassification: mean pooling, then the prediction head (head.dense, GELU, head.norm without bias)
    // before the classifier; model.-prefixed names as the task model saves them.
    [Fact]
    public void ModernBert_sequence_classifier() =>
        Classifier(new HfModernBertClassifierModel(seed: 3), HfFixtures.ModernBertClassifier, new HfWriteOptions(Prefix: true), [HfModernBertClassifierModel.SeqLen, 4, 10]);

    // ModernBertForTokenClassification: the same head on every token, with the biases the config asks for.
    [Fact]
    public void ModernBert_token_classifier() =>
        Classifier(new HfModernBertTaggerModel(seed: 3), HfFixtures.ModernBertTagger, new HfWriteOptions(Prefix: true), [HfModernBertTaggerModel.SeqLen, 4, 10]);

    // DistilBERT: BERT's computation under its own names (distilbert. prefix, the position_ids buffer and the MLM head's
    // tensors skipped), without token types; its classifier's pre_classifier and ReLU.
    [Fact]
    public void DistilBert_sentence_embeddings_and_classifier()
    {
        BertSentenceEmbeddings(new HfDistilBertModel(seed: 3), clsToken: false, new HfWriteOptions(Prefix: true, IncludeBuffers: true), "distilbert", [HfDistilBertModel.SeqLen, 4, 9]);
        Classifier(new HfDistilBertClassifierModel(seed: 3), "distilbert-classifier", new HfWriteOptions(Prefix: true, IncludeBuffers: true), [HfDistilBertClassifierModel.SeqLen, 4, 7]);
        Assert.Equal(0, new HfDistilBertModel(seed: 3).Layout.TokenTypes);
    }

    private void BertSentenceEmbeddings(EncoderModel model, bool clsToken, HfWriteOptions files, string config = "bert", int[]? lengths = null)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(config), Seed);
        reference.Save(_folder, files);
        ModelLayout layout = model.Layout;
        int batch = layout.Batch, seqLen = layout.SeqLen, c = layout.HiddenStateLength / (batch * seqLen), pad = layout.PadToken;
        lengths ??= [seqLen, 4, 7];
        int[] tokens = Enumerable.Repeat(pad, batch * seqLen).ToArray(), mask = new int[batch * seqLen];
        int[] random = TestData.Tokens(batch * seqLen, layout.Vocab - 1, 21);
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < lengths[b]; t++)
            {
                tokens[b * seqLen + t] = random[b * seqLen + t] >= pad ? random[b * seqLen + t] + 1 : random[b * seqLen + t]; // never the padding id
                mask[b * seqLen + t] = 1;
            }

        model.Load(_folder);
        float[] embeddings = model.Predict(tokens).ToArray();
        float[] expected = reference.SentenceEmbeddings(tokens, mask, batch, seqLen, clsToken);
        for (int b = 0; b < batch; b++)
        {
            double cosine = HfChecks.Cosine(embeddings.AsSpan(b * c, c), expected.AsSpan(b * c, c));
            output.WriteLine($"sentence {b}: cosine {cosine:F9}");
            Assert.True(cosine >= 0.99999, $"sentence {b}: cosine {cosine}");
        }
        Assert.True(HfChecks.RelativeMax(embeddings, expected) < 1e-5);
        // Hidden states at real (unpadded) positions.
        float[] hidden = model.LastHiddenState.ToArray(), expectedHidden = reference.LastHiddenState(tokens, batch, seqLen, mask);
        double hiddenError = 0, scale = expectedHidden.Max(Math.Abs);
        for (int i = 0; i < mask.Length; i++)
            if (mask[i] == 1)
                for (int j = 0; j < c; j++) hiddenError = Math.Max(hiddenError, Math.Abs(hidden[i * c + j] - expectedHidden[i * c + j]) / scale);
        Assert.True(hiddenError < 1e-5, $"hidden states differ by {hiddenError:E2}");

        // Fine-tuning: the gradient of Σ embeddings ⊙ upstream, seeded by the caller.
        float[] upstream = TestData.Tokens(batch * c, 1000, 5).Select(v => (v - 500) / 500f).ToArray();
        model.Predict(tokens);
        model.ZeroGrad();
        model.Backward(upstream);
        (double gradientError, string worst) = HfChecks.GradientError(model, reference.EmbeddingGradients(tokens, mask, batch, seqLen, upstream, clsToken));
        output.WriteLine($"{config} ({(clsToken ? "[CLS]" : "mean")} pooling): embeddings {HfChecks.RelativeMax(embeddings, expected):E2}, hidden {hiddenError:E2}, gradients {gradientError:E2} (worst {worst})");
        Assert.True(gradientError < 1e-4, $"gradient of {worst} differs by {gradientError:E2} of its norm");
    }

    [Fact]
    public void Saved_files_load_back_bit_identically_in_the_family_layout()
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath("gpt2"), Seed);
        reference.Save(_folder, new HfWriteOptions());
        var model = new HfGpt2Model(seed: 1);
        model.Load(_folder);
        string saved = Path.Combine(_folder, "again.safetensors");
        model.Save(saved);
        var other = new HfGpt2Model(seed: 2);
        other.Load(saved);
        Assert.True(model.Parameters.SequenceEqual(other.Parameters));
        // The saved Conv1D weight is [in, out] again, as the file the reference wrote.
        Assert.Equal(reference.ParameterValues("h.0.attn.c_attn.weight"), ValuesInFileLayout(other, "h.0.attn.c_attn.weight"));
    }

    // ----- helpers -----

    /// <summary>Over the parameter tensors, the largest 2-norm of the difference over the reference's 2-norm (tensors the loss cannot move are skipped: their reference gradient is rounding noise).</summary>
    private static float[] ValuesInFileLayout(TransformerModel model, string name)
    {
        ParameterTensor t = model.ParameterTensors.Single(p => p.Name == name);
        return HfChecks.InFileLayout(t, model.Parameters.Slice(t.Offset, t.Length).ToArray());
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }
}
