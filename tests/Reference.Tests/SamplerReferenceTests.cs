using System;
using System.Linq;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace TransformerGen.Reference.Tests;

/// <summary>
/// The sampler's distribution against the same steps written in libtorch the way transformers' <c>generate()</c>
/// writes them (<c>RepetitionPenaltyLogitsProcessor</c>, <c>TemperatureLogitsWarper</c>, <c>TopKLogitsWarper</c>,
/// <c>TopPLogitsWarper</c>, <c>MinPLogitsWarper</c>) and OpenAI's presence and frequency penalties the way vLLM applies
/// them (after the repetition penalty, over the generated tokens): gather, scale and scatter back; bincount; masks of
/// −∞; a sort ascending with the cumulative probabilities compared to 1 − top_p.
/// </summary>
public sealed class SamplerReferenceTests
{
    private const int Vocab = 997; // not a multiple of any vector width

    private sealed record Settings(float Temperature, int TopK, float TopP, float MinP, float Repetition, float Presence, float Frequency);

    // transformers' processors and warpers, one logits row.
    private static float[] TorchProbabilities(float[] logits, int[] prompt, int[] generated, Settings s)
    {
        using var scope = NewDisposeScope();
        Tensor scores = tensor(logits);
        int[] seen = [.. prompt, .. generated];
        if (s.Repetition != 1f && seen.Length > 0)
        {
            Tensor ids = tensor(seen.Select(t => (long)t).ToArray());
            Tensor score = scores.gather(0, ids);
            score = where(score < 0, score * s.Repetition, score / s.Repetition);
            scores = scores.scatter(0, ids, score);
        }
        if ((s.Presence != 0f || s.Frequency != 0f) && generated.Length > 0)
        {
            Tensor counts = bincount(tensor(generated.Select(t => (long)t).ToArray()), minlength: Vocab).to(ScalarType.Float32);
            scores = scores - s.Frequency * counts - s.Presence * (counts > 0).to(ScalarType.Float32);
        }
        scores = scores / s.Temperature;
        if (s.TopK > 0)
        {
            Tensor kth = scores.topk(s.TopK).values[s.TopK - 1];
            scores = scores.masked_fill(scores < kth, float.NegativeInfinity);
        }
        if (s.TopP < 1f)
        {
            (Tensor sorted, Tensor order) = scores.sort(descending: false);
            Tensor cumulative = sorted.softmax(-1).cumsum(-1);
            Tensor remove = cumulative <= 1 - s.TopP;
            remove[-1] = tensor(false); // min_tokens_to_keep = 1
            scores = scores.masked_fill(remove.scatter(0, order, remove), float.NegativeInfinity);
        }
        if (s.MinP > 0f)
        {
            Tensor probabilities = scores.softmax(-1);
            Tensor remove = probabilities < s.MinP * probabilities.max();
            scores = scores.masked_fill(remove, float.NegativeInfinity);
        }
        return scores.softmax(-1).data<float>().ToArray();
    }

    public static TheoryData<float, int, float, float, float, float, float> Cases => new()
    {
        { 1f, 0, 1f, 0f, 1.3f, 0f, 0f },        // repetition penalty alone
        { 0.7f, 40, 0.9f, 0f, 1.1f, 0f, 0f },   // Qwen2.5-Instruct's kind of settings
        { 0.6f, 50, 0.9f, 0f, 1f, 0f, 0f },     // Llama-3.2-Instruct's
        { 1.2f, 0, 1f, 0.05f, 1f, 0f, 0f },     // min-p alone
        { 0.9f, 0, 0.95f, 0.1f, 0.8f, 0f, 0f }, // a repetition "penalty" below 1 favours repeats
        { 1f, 0, 1f, 0f, 1f, 0.6f, 0.35f },     // presence and frequency penalties
        { 0.8f, 100, 0.97f, 0.02f, 1.15f, -0.4f, 0.5f },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ProbabilitiesEqualTransformersSteps(float temperature, int topK, float topP, float minP, float repetition, float presence, float frequency)
    {
        var settings = new Settings(temperature, topK, topP, minP, repetition, presence, frequency);
        var rng = new Rng(41);
        for (int trial = 0; trial < 5; trial++)
        {
            var logits = new float[Vocab];
            for (int i = 0; i < Vocab; i++) logits[i] = 3f * rng.NextNormal();
            // Repeats within and across the two parts, and tokens of either sign.
            int[] prompt = Enumerable.Range(0, 60).Select(_ => rng.NextInt(Vocab / 4)).ToArray();
            int[] generated = Enumerable.Range(0, 25).Select(_ => rng.NextInt(Vocab / 3)).ToArray();

            var sampler = new Sampler(1)
            {
                Temperature = temperature, TopK = topK, TopP = topP, MinP = minP,
                RepetitionPenalty = repetition, PresencePenalty = presence, FrequencyPenalty = frequency,
            };
            var ours = new float[Vocab];
            sampler.Probabilities(logits, prompt, generated, ours);
            float[] expected = TorchProbabilities(logits, prompt, generated, settings);

            int kept = expected.Count(p => p > 0);
            Assert.Equal(kept, ours.Count(p => p > 0));
            for (int i = 0; i < Vocab; i++)
            {
                Assert.Equal(expected[i] > 0, ours[i] > 0);
                Assert.True(Math.Abs(expected[i] - ours[i]) <= 1e-6f + 1e-5f * expected[i], $"token {i}: libtorch {expected[i]}, ours {ours[i]} ({settings}, trial {trial})");
            }
            // The filters bite in these cases (something removed), except where none is set.
            if (topK > 0 || topP < 1f || minP > 0f) Assert.True(kept < Vocab, $"nothing was filtered ({settings})");
        }
    }
}
