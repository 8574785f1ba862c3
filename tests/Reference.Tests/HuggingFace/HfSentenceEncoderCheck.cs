using System;
using System.Collections.Generic;
using System.Linq;
using Xunit;
using TransformerGen.Model.Tests;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// One compiled sentence encoder against its libtorch reference, with the same weights read from the folder the reference
/// wrote: sentence embeddings (cosine ≥ 0.99999 and 1e-5 of the largest value) of a padded batch and of each sentence
/// alone, the last hidden states at the real positions (1e-5 of the largest), an inference-only instance, and every
/// parameter's gradient of Σ embeddings ⊙ upstream (1e-4 of its norm).
/// </summary>
internal static class HfSentenceEncoderCheck
{
    /// <summary>
    /// Writes <paramref name="reference"/>'s weights to <paramref name="folder"/> as <paramref name="files"/> says, loads
    /// them into <paramref name="model"/> and compares; the batch holds sentences of <paramref name="lengths"/> tokens
    /// drawn from the vocabulary without the padding id, the rest padding. Returns the line of figures.
    /// </summary>
    public static string Run(string family, HfReference reference, string folder, HfWriteOptions files, EncoderModel model,
        Func<string, EncoderModel> forInference, int[] lengths)
    {
        reference.Save(folder, files);
        model.Load(folder);
        ModelLayout layout = model.Layout;
        // c: the embedding's width (the last Dense layer's outputs, or the hidden width); hiddenWidth: the last hidden state's.
        int batch = layout.Batch, seqLen = layout.SeqLen, hiddenWidth = layout.HiddenStateLength / (batch * seqLen), pad = layout.PadToken;
        int c = layout.LogitsLength / batch;
        Assert.Equal(batch, lengths.Length);
        int[] tokens = Enumerable.Repeat(pad, batch * seqLen).ToArray(), mask = new int[batch * seqLen];
        int[] random = TestData.Tokens(batch * seqLen, layout.Vocab - 1, 21);
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < lengths[b]; t++)
            {
                int token = random[b * seqLen + t];
                tokens[b * seqLen + t] = token >= pad ? token + 1 : token; // never the padding id
                mask[b * seqLen + t] = 1;
            }
        string what = files.Dtype != HfDtype.F32 ? files.Dtype.ToString()
            : string.Join(", ", new[] { files.Prefix ? "prefixed" : null, files.IncludeUnusedHeads ? "with unused heads" : null }.OfType<string>().DefaultIfEmpty("fp32"));

        // The padded batch.
        float[] embeddings = model.Predict(tokens).ToArray(), expected = reference.SentenceEmbeddings(tokens, mask, batch, seqLen);
        double worstCosine = 1;
        for (int b = 0; b < batch; b++) worstCosine = Math.Min(worstCosine, HfChecks.Cosine(embeddings.AsSpan(b * c, c), expected.AsSpan(b * c, c)));
        double embeddingError = HfChecks.RelativeMax(embeddings, expected);
        float[] hidden = model.LastHiddenState.ToArray(), expectedHidden = reference.LastHiddenState(tokens, batch, seqLen, mask);
        double hiddenError = 0, scale = expectedHidden.Max(Math.Abs);
        for (int i = 0; i < mask.Length; i++)
            if (mask[i] == 1)
                for (int j = 0; j < hiddenWidth; j++) hiddenError = Math.Max(hiddenError, Math.Abs(hidden[i * hiddenWidth + j] - expectedHidden[i * hiddenWidth + j]) / scale);

        // Each sentence alone at its own length, one call each, and all of them laid end to end.
        double aloneError = 0;
        var real = new List<int>();
        for (int b = 0; b < batch; b++)
        {
            int[] sentence = tokens.AsSpan(b * seqLen, lengths[b]).ToArray();
            real.AddRange(sentence);
            float[] alone = model.Predict(sentence, [lengths[b]]).ToArray();
            float[] expectedAlone = reference.SentenceEmbeddings(sentence, Enumerable.Repeat(1, lengths[b]).ToArray(), 1, lengths[b]);
            aloneError = Math.Max(aloneError, HfChecks.RelativeMax(alone, expectedAlone));
            worstCosine = Math.Min(worstCosine, HfChecks.Cosine(alone, expectedAlone));
        }
        double endToEndError = HfChecks.RelativeMax(model.Predict(real.ToArray(), lengths).ToArray(), expected);

        // Fine-tuning: the gradient of Σ embeddings ⊙ upstream, seeded by the caller.
        float[] upstream = TestData.Tokens(batch * c, 1000, 5).Select(v => (v - 500) / 500f).ToArray();
        model.Predict(tokens);
        model.ZeroGrad();
        model.Backward(upstream);
        Dictionary<string, float[]> expectedGradients = reference.EmbeddingGradients(tokens, mask, batch, seqLen, upstream);
        Assert.Equal(expectedGradients.Keys.Order(StringComparer.Ordinal), model.ParameterTensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        (double gradientError, string worst) = HfChecks.GradientError(model, expectedGradients);

        // An inference-only instance from the same folder.
        double inferenceError = HfChecks.RelativeMax(forInference(folder).Predict(tokens).ToArray(), expected);

        string figures = $"{family} ({what}): embeddings {embeddingError:E2} (worst cosine {worstCosine:F9}), hidden {hiddenError:E2}, alone {aloneError:E2}, end to end {endToEndError:E2}, ForInference {inferenceError:E2}, gradients {gradientError:E2} (worst {worst})";
        Assert.True(worstCosine >= 0.99999, $"cosine {worstCosine}; {figures}");
        Assert.True(embeddingError < 1e-5, $"embeddings differ by {embeddingError:E2}; {figures}");
        Assert.True(hiddenError < 1e-5, $"hidden states differ by {hiddenError:E2}; {figures}");
        Assert.True(aloneError < 1e-5 && endToEndError < 1e-5, $"exact-length embeddings differ by {aloneError:E2} alone, {endToEndError:E2} end to end; {figures}");
        Assert.True(inferenceError < 1e-5, $"ForInference differs by {inferenceError:E2}; {figures}");
        Assert.True(gradientError < 1e-4, $"gradient of {worst} differs by {gradientError:E2} of its norm; {figures}");
        return figures;
    }
}
