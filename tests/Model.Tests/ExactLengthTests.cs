using System;
using System.IO;
using System.Linq;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Model.Tests;

// Encoders at odd sizes (no width a multiple of 16) for the exact-length passes: a mean-pooling classifier, a
// first-token classifier with post-LN and a window, a tagger with rotary positions, a sentence embedder of one sequence,
// and a BERT sentence embedder compiled from a config.json.

[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 37, Classes = 5, DModel = 36, Heads = 3, Layers = 2, DFF = 45,
    SeqLen = 19, Batch = 3, PadToken = 0, Pooling = Pooling.Mean, Norm = NormPlacement.Pre, Positional = Positional.Learned)]
public partial class ExactMeanClassifier { }

[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 37, Classes = 3, DModel = 30, Heads = 5, Layers = 2, DFF = 41,
    SeqLen = 13, Batch = 4, PadToken = 0, Pooling = Pooling.FirstToken, Norm = NormPlacement.Post, Activation = Activation.Relu, AttentionWindow = 3)]
public partial class ExactFirstTokenClassifier { }

[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 29, Classes = 7, DModel = 42, Heads = 3, Layers = 2, DFF = 53,
    SeqLen = 17, Batch = 2, PadToken = 0, Head = EncoderHead.Tagging, Positional = Positional.Rotary)]
public partial class ExactTagger { }

[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 31, DModel = 34, Heads = 2, Layers = 3, DFF = 47,
    SeqLen = 21, Batch = 1, PadToken = 0, Head = EncoderHead.SentenceEmbedding, Norm = NormPlacement.Post)]
public partial class ExactEmbedder { }

[TransformerModel(Config = "Configs/bert-odd/config.json", SeqLen = 17, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class ExactBert { }

[TransformerModel(Config = "Configs/bert-odd/config.json", SeqLen = 17, Batch = 3, Head = EncoderHead.SentenceEmbedding, Pooling = Pooling.FirstToken)]
public partial class ExactClsBert { }

/// <summary>
/// Encoder-only models pay only for the tokens they are given: <c>Predict</c> runs one sequence at its own length, or up
/// to Batch sequences laid end to end, and gives what the padded batched forward pass gives for the same sentences
/// (within 1e-5 relative: outputs, and hidden states where the model exposes them); bad lengths are refused with
/// messages that name the numbers; nothing is allocated per call.
/// </summary>
public sealed class ExactLengthTests(ITestOutputHelper output) : IDisposable
{
    private const double Tolerance = 1e-5;
    private readonly string _folder = Directory.CreateTempSubdirectory("transformergen-exact-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>A training instance with perturbed weights and an inference instance loaded from its checkpoint.</summary>
    private (T Training, T Inference) Pair<T>(Func<ulong, T> create, Func<string, T> forInference, ulong seed) where T : TransformerModel
    {
        T training = create(seed);
        TestData.Perturb(training, seed + 100);
        string path = Path.Combine(_folder, typeof(T).Name + ".safetensors");
        training.Save(path);
        return (training, forInference(path));
    }

    /// <summary>Sentences of the given lengths with ids in [1, vocab): no padding inside.</summary>
    private static int[][] Sentences(int vocab, ulong seed, params int[] lengths) =>
        lengths.Select((length, i) => TestData.Tokens(length, vocab - 1, seed + (ulong)i).Select(t => t + 1).ToArray()).ToArray();

    /// <summary>Sentences padded (with id 0) to seqLen each, one per row of a batch; rows beyond them are all padding but for one token.</summary>
    private static int[] Padded(int[][] sentences, int batch, int seqLen)
    {
        var tokens = new int[batch * seqLen];
        for (int b = 0; b < batch; b++)
        {
            if (b < sentences.Length) sentences[b].CopyTo(tokens, b * seqLen);
            else tokens[b * seqLen] = 1;
        }
        return tokens;
    }

    /// <summary>max |actual − expected| over max |expected|.</summary>
    private static double Relative(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double error = 0, scale = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            error = Math.Max(error, Math.Abs(actual[i] - expected[i]));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        return error / Math.Max(scale, 1e-30);
    }

    private void Close(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, string what)
    {
        double relative = Relative(actual, expected);
        output.WriteLine($"{what}: {relative:E2}");
        Assert.True(relative <= Tolerance, $"{what} differs by {relative:E2} relative");
    }

    /// <summary>
    /// Each sentence at its own length (alone, on the inference and the training instance) and all of them end to end in
    /// one call give the rows the padded batched pass gives: one per sequence (width per row), or one per token.
    /// </summary>
    private void SameAsPadded<T>(T training, T inference, int[][] sentences, int batch, int seqLen, int width, bool perToken,
        bool hidden = false, int dModel = 0) where T : EncoderModel
    {
        string name = typeof(T).Name;
        float[] padded = training.Predict(Padded(sentences, batch, seqLen)).ToArray();
        float[] paddedHidden = hidden ? training.PredictedHiddenState.ToArray() : [];
        int[] lengths = sentences.Select(s => s.Length).ToArray();
        float[] together = inference.Predict(sentences.SelectMany(s => s).ToArray(), lengths).ToArray();
        float[] togetherHidden = hidden ? inference.PredictedHiddenState.ToArray() : [];
        int row = 0;
        for (int s = 0; s < sentences.Length; s++)
        {
            int length = sentences[s].Length, rows = perToken ? length : 1;
            ReadOnlySpan<float> expected = padded.AsSpan(perToken ? s * seqLen * width : s * width, rows * width);
            Close(inference.Predict(sentences[s]), expected, $"{name} sentence {s} ({length} tokens) alone");
            if (hidden) Close(inference.PredictedHiddenState, paddedHidden.AsSpan(s * seqLen * dModel, length * dModel), $"{name} sentence {s} hidden states alone");
            Close(training.Predict(sentences[s]), expected, $"{name} sentence {s} alone on the training instance");
            Close(together.AsSpan(row * width, rows * width), expected, $"{name} sentence {s} end to end");
            if (hidden) Close(togetherHidden.AsSpan(RowOf(sentences, s) * dModel, length * dModel), paddedHidden.AsSpan(s * seqLen * dModel, length * dModel), $"{name} sentence {s} hidden states end to end");
            row += rows;
        }
        Assert.Equal(row * width, together.Length);
    }

    /// <summary>The first token row of sentence <paramref name="s"/> when the sentences lie end to end.</summary>
    private static int RowOf(int[][] sentences, int s) => sentences.Take(s).Sum(x => x.Length);

    [Fact]
    public void A_mean_pooling_classifier_gives_each_sentence_what_the_padded_batch_gives()
    {
        (ExactMeanClassifier training, ExactMeanClassifier inference) = Pair(seed => new ExactMeanClassifier(seed), path => ExactMeanClassifier.ForInference(path), 1);
        int[][] sentences = Sentences(ExactMeanClassifier.Vocab, 5, 7, ExactMeanClassifier.SeqLen, 1);
        SameAsPadded(training, inference, sentences, ExactMeanClassifier.Batch, ExactMeanClassifier.SeqLen, ExactMeanClassifier.Classes, perToken: false);
    }

    [Fact]
    public void A_first_token_classifier_with_a_window_gives_each_sentence_what_the_padded_batch_gives()
    {
        (ExactFirstTokenClassifier training, ExactFirstTokenClassifier inference) = Pair(seed => new ExactFirstTokenClassifier(seed), path => ExactFirstTokenClassifier.ForInference(path), 2);
        int[][] sentences = Sentences(ExactFirstTokenClassifier.Vocab, 9, 11, 2, ExactFirstTokenClassifier.SeqLen, 5);
        SameAsPadded(training, inference, sentences, ExactFirstTokenClassifier.Batch, ExactFirstTokenClassifier.SeqLen, ExactFirstTokenClassifier.Classes, perToken: false);
    }

    [Fact]
    public void A_tagger_gives_one_row_per_token_given_as_the_padded_batch_does()
    {
        (ExactTagger training, ExactTagger inference) = Pair(seed => new ExactTagger(seed), path => ExactTagger.ForInference(path), 3);
        int[][] sentences = Sentences(ExactTagger.Vocab, 13, 15, 3);
        SameAsPadded(training, inference, sentences, ExactTagger.Batch, ExactTagger.SeqLen, ExactTagger.Classes, perToken: true);
        Assert.Equal(4 * ExactTagger.Classes, inference.Predict([1, 2, 3, 4]).Length);
    }

    [Fact]
    public void A_sentence_embedder_of_batch_one_takes_any_length_from_one_to_SeqLen()
    {
        (ExactEmbedder training, ExactEmbedder inference) = Pair(seed => new ExactEmbedder(seed), path => ExactEmbedder.ForInference(path), 4);
        foreach (int length in new[] { 1, 2, 9, ExactEmbedder.SeqLen - 1, ExactEmbedder.SeqLen })
        {
            int[][] sentence = Sentences(ExactEmbedder.Vocab, 17 + (ulong)length, length);
            SameAsPadded(training, inference, sentence, ExactEmbedder.Batch, ExactEmbedder.SeqLen, ExactEmbedder.DModel, perToken: false);
        }
        float[] embedding = inference.Predict([3, 4, 5]).ToArray();
        Assert.Equal(ExactEmbedder.DModel, embedding.Length);
        Assert.Equal(1.0, Math.Sqrt(embedding.Sum(v => (double)v * v)), 5);
    }

    [Fact]
    public void A_bert_sentence_embedder_gives_the_embeddings_and_hidden_states_of_the_padded_batch()
    {
        (ExactBert training, ExactBert inference) = Pair(seed => new ExactBert(seed), path => ExactBert.ForInference(path), 5);
        int[][] sentences = Sentences(ExactBert.Vocab, 21, 6, 1, ExactBert.SeqLen);
        SameAsPadded(training, inference, sentences, ExactBert.Batch, ExactBert.SeqLen, ExactBert.DModel, perToken: false, hidden: true, dModel: ExactBert.DModel);
        // Fewer sequences than Batch, and padding ids given inside the tokens are masked as in the batched pass.
        int[] padded = Padded(sentences.Take(1).ToArray(), 1, ExactBert.SeqLen);
        float[] alone = inference.Predict(sentences[0]).ToArray();
        Close(inference.Predict(padded), alone, "one sentence padded to SeqLen in an exact-length pass");
        Close(inference.Predict(sentences[1].Concat(sentences[0]).ToArray(), [1, 6]).Slice(ExactBert.DModel), alone, "two of three sequences");
    }

    [Fact]
    public void A_cls_pooled_bert_embeds_the_first_tokens_state_in_exact_length_passes()
    {
        (ExactClsBert training, ExactClsBert inference) = Pair(seed => new ExactClsBert(seed), path => ExactClsBert.ForInference(path), 6);
        int[][] sentences = Sentences(ExactClsBert.Vocab, 22, 6, 1, ExactClsBert.SeqLen);
        SameAsPadded(training, inference, sentences, ExactClsBert.Batch, ExactClsBert.SeqLen, ExactClsBert.DModel, perToken: false, hidden: true, dModel: ExactClsBert.DModel);
        // The embedding is the first position's last hidden state, normalized: computed here from the hidden states.
        const int c = ExactClsBert.DModel;
        float[] embeddings = inference.Predict(sentences.SelectMany(t => t).ToArray(), sentences.Select(t => t.Length).ToArray()).ToArray();
        float[] hidden = inference.PredictedHiddenState.ToArray();
        for (int b = 0, row = 0; b < sentences.Length; row += sentences[b].Length, b++)
        {
            float[] first = hidden.AsSpan(row * c, c).ToArray();
            double norm = Math.Sqrt(first.Sum(v => (double)v * v));
            Close(embeddings.AsSpan(b * c, c), first.Select(v => (float)(v / norm)).ToArray(), $"sentence {b}: its first token's state, normalized");
        }
        Assert.Equal(Pooling.FirstToken, inference.Layout.Pooling);
        Assert.Equal(Pooling.Mean, ExactBert.ForInference(1).Layout.Pooling);
    }

    [Fact]
    public void A_padded_batch_on_an_inference_instance_gives_what_the_training_instance_gives()
    {
        (ExactMeanClassifier training, ExactMeanClassifier inference) = Pair(seed => new ExactMeanClassifier(seed), path => ExactMeanClassifier.ForInference(path), 6);
        int[] padded = Padded(Sentences(ExactMeanClassifier.Vocab, 25, 3, 19, 8), ExactMeanClassifier.Batch, ExactMeanClassifier.SeqLen);
        Close(inference.Predict(padded), training.Predict(padded), "padded batch");
        Assert.Throws<InvalidOperationException>(() => inference.Logits.Length);
    }

    [Fact]
    public void Bad_lengths_are_refused_with_the_numbers_named()
    {
        ExactMeanClassifier model = ExactMeanClassifier.ForInference(1);
        const int seqLen = ExactMeanClassifier.SeqLen, batch = ExactMeanClassifier.Batch;
        int[] tokens = Enumerable.Repeat(1, 30).ToArray();

        var empty = Assert.Throws<ArgumentException>(() => model.Predict([]));
        Assert.Contains("got 0 tokens", empty.Message);
        var tooLong = Assert.Throws<ArgumentException>(() => model.Predict(tokens.AsSpan(0, seqLen + 1)));
        Assert.Contains($"got {seqLen + 1} tokens", tooLong.Message);
        Assert.Contains($"SeqLen = {seqLen}", tooLong.Message);
        Assert.Contains("Predict(tokens, lengths)", tooLong.Message);

        var sum = Assert.Throws<ArgumentException>(() => model.Predict(tokens.AsSpan(0, 10), [4, 5]));
        Assert.Contains("add up to 9 tokens, but 10 were given", sum.Message);
        var many = Assert.Throws<ArgumentException>(() => model.Predict(tokens.AsSpan(0, 4), [1, 1, 1, 1]));
        Assert.Contains($"1 to Batch = {batch} sequences, got 4", many.Message);
        var none = Assert.Throws<ArgumentException>(() => model.Predict([], []));
        Assert.Contains("got 0 lengths", none.Message);
        var zero = Assert.Throws<ArgumentOutOfRangeException>(() => model.Predict(tokens.AsSpan(0, 3), [3, 0]));
        Assert.Contains("lengths[1] = 0", zero.Message);
        var longer = Assert.Throws<ArgumentOutOfRangeException>(() => model.Predict(tokens.AsSpan(0, 21), [1, seqLen + 1]));
        Assert.Contains($"lengths[1] = {seqLen + 1} is outside 1 to SeqLen = {seqLen}", longer.Message);
        var id = Assert.Throws<ArgumentOutOfRangeException>(() => model.Predict([1, 2, ExactMeanClassifier.Vocab]));
        Assert.Contains($"tokens[2] = {ExactMeanClassifier.Vocab}", id.Message);

        ExactEmbedder single = ExactEmbedder.ForInference(1);
        var two = Assert.Throws<ArgumentException>(() => single.Predict([1, 2], [1, 1]));
        Assert.Contains("1 to Batch = 1 sequences, got 2", two.Message);
        var noHidden = Assert.Throws<InvalidOperationException>(() => single.PredictedHiddenState.Length);
        Assert.Contains("needs a Predict first", noHidden.Message);
        single.Predict([1, 2]);
        Assert.Throws<InvalidOperationException>(() => single.PredictedHiddenState.Length); // not exposed by attribute-built models
    }

    [Fact]
    public void Exact_length_passes_allocate_nothing()
    {
        ExactBert model = ExactBert.ForInference(2);
        int[] tokens = Enumerable.Range(1, 30).Select(i => i % (ExactBert.Vocab - 1) + 1).ToArray();
        int[] lengths = [5, 17, 8];
        for (int i = 0; i < 3; i++)
        {
            model.Predict(tokens, lengths);
            model.Predict(tokens.AsSpan(0, 9));
        }
        // Up to three windows, as the training tests: the runtime may allocate once on this thread (it did once in a full
        // run, 2026-12-07, and not in three runs after), a pass never.
        long bytes = 0;
        for (int window = 0; window < 3; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 50; i++)
            {
                model.Predict(tokens, lengths);
                model.Predict(tokens.AsSpan(0, 1 + i % ExactBert.SeqLen));
            }
            bytes = GC.GetAllocatedBytesForCurrentThread() - before;
            output.WriteLine($"100 exact-length passes: {bytes} bytes");
            if (bytes == 0) break;
        }
        Assert.Equal(0, bytes);
    }

    [Fact]
    public void An_inference_instance_holds_the_workspace_of_one_exact_length_batch_not_the_training_activations()
    {
        Assert.Equal(ExactBert.InferenceBytes, ExactBert.ForInference(1).BufferBytes);
        Assert.Equal(ExactBert.TrainingBytes, new ExactBert(1).BufferBytes);
        // The constants differ by the gradients and the training activations with their gradients: none of them is allocated.
        var layout = new ExactBert(1).Layout;
        Assert.Equal(ExactBert.InferenceBytes, ExactBert.TrainingBytes - 4L * (layout.ParameterCount + layout.ActivationCount + layout.ActivationGradientCount));
    }
}
