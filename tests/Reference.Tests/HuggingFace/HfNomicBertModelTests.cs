using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Xunit;
using Xunit.Abstractions;
using TransformerGen.Model.Tests;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <see cref="HfNomicBertModel"/> (compiled from <c>Configs/nomic-bert/config.json</c>) against the libtorch
/// NomicBertModel of <see cref="HfNomicBert"/>, with the same weights read from the file the reference wrote: sentence
/// embeddings (cosine ≥ 0.99999 and 1e-5 of the largest value) of a padded batch and of each sentence alone, the last
/// hidden states at the real positions (1e-5 of the largest), and every parameter's gradient of Σ embeddings ⊙ upstream
/// (1e-4 of its norm); from an fp32 file, a BF16 file, and a file that also holds the pooler the model skips.
/// </summary>
public sealed class HfNomicBertModelTests(ITestOutputHelper output) : IDisposable
{
    private const long Seed = 20261207;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "tg-hf-nomic-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public void NomicBert_sentence_embeddings_hidden_states_and_gradients() => Check(new HfWriteOptions());

    [Fact]
    public void NomicBert_from_a_bf16_file() => Check(new HfWriteOptions(Dtype: HfDtype.BF16));

    [Fact]
    public void NomicBert_skips_the_pooler_a_file_may_hold() => Check(new HfWriteOptions(IncludeUnusedHeads: true));

    private void Check(HfWriteOptions files)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.NomicBert), Seed);
        reference.Save(_folder, files);
        var model = new HfNomicBertModel(seed: 3);
        model.Load(_folder);
        ModelLayout layout = model.Layout;
        int batch = layout.Batch, seqLen = layout.SeqLen, c = layout.HiddenStateLength / (batch * seqLen), pad = layout.PadToken;
        Assert.Equal((3, 9, 24, 0), (batch, seqLen, c, pad));
        int[] lengths = [seqLen, 4, 7];
        int[] tokens = Enumerable.Repeat(pad, batch * seqLen).ToArray(), mask = new int[batch * seqLen];
        int[] random = TestData.Tokens(batch * seqLen, layout.Vocab - 1, 21);
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < lengths[b]; t++)
            {
                tokens[b * seqLen + t] = random[b * seqLen + t] + 1; // never the padding id 0
                mask[b * seqLen + t] = 1;
            }
        string what = files.Dtype != HfDtype.F32 ? files.Dtype.ToString() : files.IncludeUnusedHeads ? "with pooler" : "fp32";

        // The padded batch.
        float[] embeddings = model.Predict(tokens).ToArray(), expected = reference.SentenceEmbeddings(tokens, mask, batch, seqLen);
        double worstCosine = 1;
        for (int b = 0; b < batch; b++) worstCosine = Math.Min(worstCosine, Cosine(embeddings.AsSpan(b * c, c), expected.AsSpan(b * c, c)));
        double embeddingError = RelativeMax(embeddings, expected);
        float[] hidden = model.LastHiddenState.ToArray(), expectedHidden = reference.LastHiddenState(tokens, batch, seqLen, mask);
        double hiddenError = 0, scale = expectedHidden.Max(Math.Abs);
        for (int i = 0; i < mask.Length; i++)
            if (mask[i] == 1)
                for (int j = 0; j < c; j++) hiddenError = Math.Max(hiddenError, Math.Abs(hidden[i * c + j] - expectedHidden[i * c + j]) / scale);

        // Each sentence alone at its own length, one call each, and all of them laid end to end.
        double aloneError = 0;
        var real = new List<int>();
        for (int b = 0; b < batch; b++)
        {
            int[] sentence = tokens.AsSpan(b * seqLen, lengths[b]).ToArray();
            real.AddRange(sentence);
            float[] alone = model.Predict(sentence, [lengths[b]]).ToArray();
            float[] expectedAlone = reference.SentenceEmbeddings(sentence, Enumerable.Repeat(1, lengths[b]).ToArray(), 1, lengths[b]);
            aloneError = Math.Max(aloneError, RelativeMax(alone, expectedAlone));
            worstCosine = Math.Min(worstCosine, Cosine(alone, expectedAlone));
        }
        double endToEndError = RelativeMax(model.Predict(real.ToArray(), lengths).ToArray(), expected);

        // Fine-tuning: the gradient of Σ embeddings ⊙ upstream, seeded by the caller.
        float[] upstream = TestData.Tokens(batch * c, 1000, 5).Select(v => (v - 500) / 500f).ToArray();
        model.Predict(tokens);
        model.ZeroGrad();
        model.Backward(upstream);
        (double gradientError, string worst) = GradientError(model, reference.EmbeddingGradients(tokens, mask, batch, seqLen, upstream));

        // An inference-only instance from the same folder.
        double inferenceError = RelativeMax(HfNomicBertModel.ForInference(_folder).Predict(tokens).ToArray(), expected);

        output.WriteLine($"nomic-bert ({what}): embeddings {embeddingError:E2} (worst cosine {worstCosine:F9}), hidden {hiddenError:E2}, alone {aloneError:E2}, end to end {endToEndError:E2}, ForInference {inferenceError:E2}, gradients {gradientError:E2} (worst {worst})");
        Assert.True(worstCosine >= 0.99999, $"cosine {worstCosine}");
        Assert.True(embeddingError < 1e-5, $"embeddings differ by {embeddingError:E2}");
        Assert.True(hiddenError < 1e-5, $"hidden states differ by {hiddenError:E2}");
        Assert.True(aloneError < 1e-5 && endToEndError < 1e-5, $"exact-length embeddings differ by {aloneError:E2} alone, {endToEndError:E2} end to end");
        Assert.True(inferenceError < 1e-5, $"ForInference differs by {inferenceError:E2}");
        Assert.True(gradientError < 1e-4, $"gradient of {worst} differs by {gradientError:E2} of its norm");
    }

    /// <summary>Over the parameter tensors, the largest 2-norm of the difference over the reference's 2-norm.</summary>
    private static (double Error, string Worst) GradientError(TransformerModel model, Dictionary<string, float[]> expected)
    {
        double worst = 0;
        string worstName = "";
        double largest = expected.Values.Max(Norm);
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            Assert.True(expected.TryGetValue(t.Name, out float[]? reference), $"the reference has no gradient for {t.Name}");
            Assert.False(t.StoredTransposed);
            float[] ours = model.Gradients.Slice(t.Offset, t.Length).ToArray();
            double norm = Norm(reference!);
            if (norm < 1e-6 * largest) continue;
            double error = Norm(ours.Zip(reference!, (a, b) => a - b).ToArray()) / norm;
            if (error > worst) (worst, worstName) = (error, t.Name);
        }
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), model.ParameterTensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        return (worst, worstName);
    }

    private static double RelativeMax(float[] actual, float[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Max(Math.Abs), worst = 0;
        for (int i = 0; i < actual.Length; i++) worst = Math.Max(worst, Math.Abs((double)actual[i] - expected[i]));
        return worst / scale;
    }

    private static double Norm(float[] v) => Math.Sqrt(v.Sum(x => (double)x * x));

    private static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { dot += a[i] * (double)b[i]; na += a[i] * (double)a[i]; nb += b[i] * (double)b[i]; }
        return dot / Math.Sqrt(na * nb);
    }
}
