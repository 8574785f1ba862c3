using System;
using System.Linq;
using Xunit;

namespace TransformerGen.Tests.Inference;

public sealed class SamplerTests
{
    private static float[] RandomLogits(int length, ulong seed)
    {
        var rng = new Rng(seed);
        var logits = new float[length];
        for (int i = 0; i < length; i++) logits[i] = 2f * rng.NextNormal();
        return logits;
    }

    private static int ArgMax(float[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    private static int[] Counts(Sampler sampler, float[] logits, int draws)
    {
        var counts = new int[logits.Length];
        for (int i = 0; i < draws; i++) counts[sampler.Sample(logits)]++;
        return counts;
    }

    [Fact]
    public void GreedyIsArgMaxWithTiesToTheLowestIndex()
    {
        var sampler = new Sampler(1) { Temperature = 0f };
        for (ulong seed = 0; seed < 20; seed++)
        {
            float[] logits = RandomLogits(37, seed);
            Assert.Equal(ArgMax(logits), sampler.Sample(logits));
        }
        Assert.Equal(1, sampler.Sample([1f, 3f, 3f, 2f, 3f]));
        Assert.Equal(0, sampler.Sample([float.NegativeInfinity]));
    }

    [Theory]
    [InlineData(0.1f)]
    [InlineData(1f)]
    [InlineData(50f)]
    public void TopKOfOneIsGreedyAtAnyTemperature(float temperature)
    {
        var sampler = new Sampler(2) { Temperature = temperature, TopK = 1 };
        float[] logits = RandomLogits(100, 3);
        int best = ArgMax(logits);
        for (int i = 0; i < 200; i++) Assert.Equal(best, sampler.Sample(logits));
    }

    [Fact]
    public void TopKNeverPicksOutsideTheTopK()
    {
        float[] logits = RandomLogits(50, 4);
        int[] top3 = Enumerable.Range(0, 50).OrderByDescending(i => logits[i]).Take(3).ToArray();
        var sampler = new Sampler(5) { Temperature = 5f, TopK = 3 }; // a high temperature makes the tail likely without top-k
        int[] counts = Counts(sampler, logits, 2000);
        for (int i = 0; i < 50; i++)
        {
            if (top3.Contains(i)) Assert.True(counts[i] > 0, $"top-3 token {i} was never drawn");
            else Assert.Equal(0, counts[i]);
        }
    }

    [Fact]
    public void TopKKeepsAllTiesAtTheBoundary()
    {
        // As Hugging Face's TopKLogitsWarper: everything at least the k-th largest logit survives.
        var sampler = new Sampler(6) { TopK = 2, Temperature = 100f };
        int[] counts = Counts(sampler, [5f, 4f, 4f, 1f, 0f], 600);
        Assert.True(counts[0] > 0 && counts[1] > 0 && counts[2] > 0);
        Assert.Equal(0, counts[3] + counts[4]);
    }

    [Fact]
    public void TopPKeepsOnlyTheNucleus()
    {
        // Probabilities 0.1, 0.4, 0.2, 0.3: sorted, 0.4 < 0.5 ≤ 0.4 + 0.3, so the nucleus is {1, 3}, renormalized to 4/7 and 3/7.
        float[] logits = [MathF.Log(0.1f), MathF.Log(0.4f), MathF.Log(0.2f), MathF.Log(0.3f)];
        var sampler = new Sampler(7) { TopP = 0.5f };
        int[] counts = Counts(sampler, logits, 4000);
        Assert.Equal(0, counts[0] + counts[2]);
        Assert.Equal(4.0 / 7, counts[1] / 4000.0, 0.04);
        Assert.Equal(3.0 / 7, counts[3] / 4000.0, 0.04);

        sampler.TopP = 0f; // at least one token is always kept: the most probable
        Assert.All(Enumerable.Range(0, 50), _ => Assert.Equal(1, sampler.Sample(logits)));
    }

    [Fact]
    public void TopKThenTopPAreBothApplied()
    {
        // Top-3 of [0.05, 0.35, 0.25, 0.2, 0.15] leaves 0.35, 0.25, 0.2 (renormalized 0.4375, 0.3125, 0.25);
        // top-p 0.7 then keeps tokens 1 and 2 (0.75 ≥ 0.7).
        float[] logits = new[] { 0.05f, 0.35f, 0.25f, 0.2f, 0.15f }.Select(p => MathF.Log(p)).ToArray();
        var sampler = new Sampler(8) { TopK = 3, TopP = 0.7f };
        int[] counts = Counts(sampler, logits, 2000);
        Assert.True(counts[1] > 0 && counts[2] > 0);
        Assert.Equal(0, counts[0] + counts[3] + counts[4]);
    }

    [Fact]
    public void TemperatureSamplingMatchesSoftmaxOfScaledLogits()
    {
        float[] logits = [1f, 2f, 0.5f, 3f, -1f];
        const float temperature = 0.7f;
        double[] scaled = logits.Select(l => Math.Exp(l / temperature)).ToArray();
        double total = scaled.Sum();
        const int draws = 20000;
        int[] counts = Counts(new Sampler(9) { Temperature = temperature }, logits, draws);
        for (int i = 0; i < logits.Length; i++)
        {
            double p = scaled[i] / total;
            double tolerance = 4 * Math.Sqrt(p * (1 - p) / draws) + 1e-3; // about four standard errors
            Assert.True(Math.Abs(counts[i] / (double)draws - p) <= tolerance, $"token {i}: frequency {counts[i] / (double)draws}, softmax {p}");
        }
    }

    [Fact]
    public void TheSameSeedGivesTheSameSequence()
    {
        float[] logits = RandomLogits(64, 10);
        Sampler Make(ulong seed) => new(seed) { Temperature = 1.3f, TopK = 20, TopP = 0.95f };
        Sampler a = Make(42), b = Make(42), c = Make(43);
        int[] first = Enumerable.Range(0, 200).Select(_ => a.Sample(logits)).ToArray();
        int[] second = Enumerable.Range(0, 200).Select(_ => b.Sample(logits)).ToArray();
        int[] third = Enumerable.Range(0, 200).Select(_ => c.Sample(logits)).ToArray();
        Assert.Equal(first, second);
        Assert.NotEqual(first, third);
    }

    [Fact]
    public void SamplingAllocatesNothingAfterTheFirstCall()
    {
        float[] logits = RandomLogits(1000, 11);
        Sampler[] samplers =
        [
            new(1) { Temperature = 0.8f, TopK = 40, TopP = 0.9f },
            new(2) { Temperature = 1f },
            new(3) { TopP = 0.8f },
            new(4, vocabSize: 1000) { TopK = 10 },
            new(5) { Temperature = 0f },
        ];
        int sink = 0;
        foreach (Sampler sampler in samplers)
            Assert.Equal(0, Training.Allocations.Measure(() => sink += sampler.Sample(logits), iterations: 100));
        Assert.True(sink >= 0);
    }

    [Fact]
    public void ScratchGrowsForALargerVocabulary()
    {
        var sampler = new Sampler(12, vocabSize: 4);
        Assert.InRange(sampler.Sample(RandomLogits(4, 1)), 0, 3);
        Assert.InRange(sampler.Sample(RandomLogits(300, 2)), 0, 299);
    }

    [Fact]
    public void RejectsBadInputAndSettings()
    {
        var sampler = new Sampler(13);
        Assert.Throws<ArgumentException>(() => sampler.Sample([]));
        Assert.Throws<ArgumentException>(() => sampler.Sample([1f, float.NaN, 2f]));
        Assert.Throws<ArgumentException>(() => new Sampler(13) { Temperature = 0f }.Sample([1f, float.NaN, 2f]));
        Assert.Throws<ArgumentException>(() => new Sampler(13) { TopK = 2 }.Sample([1f, float.NaN, 2f, 0f]));
        Assert.Throws<ArgumentException>(() => sampler.Sample([float.NegativeInfinity, float.NegativeInfinity]));
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.Temperature = -1f);
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.Temperature = float.NaN);
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.TopK = -1);
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.TopP = 1.5f);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(1, vocabSize: -1));
        Assert.Throws<ArgumentNullException>(() => new Sampler(null!));
    }

    private static float[] Softmax(params float[] logits)
    {
        float max = logits.Max();
        double[] e = logits.Select(l => Math.Exp(l - max)).ToArray();
        double total = e.Sum();
        return e.Select(v => (float)(v / total)).ToArray();
    }

    [Fact]
    public void RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfEachDistinctTokenOnce()
    {
        // Token 0 occurs in the prompt and the reply and token 1 twice in the prompt: each is penalized once.
        float[] logits = [2f, -1f, 0.5f, 3f];
        var sampler = new Sampler(1) { RepetitionPenalty = 2f };
        var probabilities = new float[4];
        sampler.Probabilities(logits, [0, 1, 1], [0], probabilities);
        float[] expected = Softmax(1f, -2f, 0.5f, 3f);
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i], probabilities[i], 1e-6f);
    }

    [Fact]
    public void PresenceAndFrequencyPenaltiesCountOnlyTheReply()
    {
        // Token 2 was generated twice and token 3 once; the prompt's token 0 is not penalized.
        var sampler = new Sampler(1) { PresencePenalty = 0.25f, FrequencyPenalty = 0.5f };
        var probabilities = new float[4];
        sampler.Probabilities([1f, 1f, 1f, 1f], [0, 0], [2, 3, 2], probabilities);
        float[] expected = Softmax(1f, 1f, 1f - 2 * 0.5f - 0.25f, 1f - 0.5f - 0.25f);
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i], probabilities[i], 1e-6f);
    }

    [Fact]
    public void MinPKeepsTokensAtLeastThatFractionOfTheMostProbable()
    {
        // Probabilities 0.5, 0.3, 0.15, 0.05; min-p 0.35 keeps those ≥ 0.175: tokens 0 and 1, renormalized to 5/8 and 3/8.
        float[] logits = new[] { 0.5f, 0.3f, 0.15f, 0.05f }.Select(p => MathF.Log(p)).ToArray();
        var sampler = new Sampler(1) { MinP = 0.35f };
        var probabilities = new float[4];
        sampler.Probabilities(logits, [], [], probabilities);
        Assert.Equal([0.625f, 0.375f, 0f, 0f], probabilities.Select(p => MathF.Round(p, 5)).ToArray());
        int[] counts = Counts(sampler, logits, 2000);
        Assert.Equal(0, counts[2] + counts[3]);
        Assert.Equal(0.625, counts[0] / 2000.0, 0.04);

        sampler.MinP = 1f; // only the most probable is left
        Assert.All(Enumerable.Range(0, 20), _ => Assert.Equal(0, sampler.Sample(logits)));
    }

    [Fact]
    public void GreedyDecodingAppliesThePenalties()
    {
        // As generate() without sampling: the repetition penalty is a logits processor, so it acts before the argmax.
        var sampler = new Sampler(1) { Temperature = 0f, RepetitionPenalty = 1.2f };
        Assert.Equal(0, sampler.Sample([3f, 2.9f]));
        Assert.Equal(1, sampler.Sample([3f, 2.9f], [], [0]));
        Assert.Equal(1, sampler.Sample([3f, 2.9f], [0], []));
        var probabilities = new float[2];
        sampler.Probabilities([3f, 2.9f], [0], [], probabilities);
        Assert.Equal([0f, 1f], probabilities);

        var presence = new Sampler(1) { Temperature = 0f, PresencePenalty = 0.2f };
        Assert.Equal(0, presence.Sample([3f, 2.9f], [0], []));   // the prompt does not count
        Assert.Equal(1, presence.Sample([3f, 2.9f], [], [0]));
    }

    [Fact]
    public void DrawsFollowTheProbabilities()
    {
        float[] logits = RandomLogits(9, 15);
        var sampler = new Sampler(16) { Temperature = 1.5f, RepetitionPenalty = 1.4f, FrequencyPenalty = 0.3f, TopP = 0.95f };
        int[] prompt = [1, 4], generated = [4, 7, 7];
        var probabilities = new float[9];
        sampler.Probabilities(logits, prompt, generated, probabilities);
        const int draws = 20000;
        var counts = new int[9];
        for (int i = 0; i < draws; i++) counts[sampler.Sample(logits, prompt, generated)]++;
        for (int i = 0; i < 9; i++)
        {
            double p = probabilities[i], tolerance = 4 * Math.Sqrt(p * (1 - p) / draws) + 1e-3;
            Assert.True(Math.Abs(counts[i] / (double)draws - p) <= tolerance, $"token {i}: frequency {counts[i] / (double)draws}, probability {p}");
        }
    }

    [Fact]
    public void PenaltiesLeaveNothingBehindForTheNextCall()
    {
        // The marks and counts of one call must not leak into the next: a fresh sampler gives the same distribution.
        float[] logits = RandomLogits(50, 17);
        Sampler Make() => new(1) { RepetitionPenalty = 1.3f, PresencePenalty = 0.4f, FrequencyPenalty = 0.2f };
        Sampler used = Make();
        var scratch = new float[50];
        used.Probabilities(logits, [3, 3, 9], [9, 12, 12, 40], scratch);
        var second = new float[50];
        var fresh = new float[50];
        used.Probabilities(logits, [9], [12, 3, 3], second); // the same ids again: a mark or count left behind would show
        Make().Probabilities(logits, [9], [12, 3, 3], fresh);
        Assert.Equal(fresh, second);
        // Without penalties the history changes nothing, but its ids are still checked.
        var plain = new Sampler(1);
        Assert.False(plain.UsesHistory);
        Assert.True(used.UsesHistory);
        plain.Probabilities(logits, [3, 3, 9], [9, 12], scratch);
        plain.Probabilities(logits, [], [], fresh);
        Assert.Equal(fresh, scratch);
        Assert.Throws<ArgumentOutOfRangeException>(() => plain.Sample(logits, [50], []));
    }

    [Fact]
    public void PenalizedSamplingAllocatesNothingAfterTheFirstCall()
    {
        float[] logits = RandomLogits(1000, 18);
        int[] prompt = Enumerable.Range(0, 100).Select(i => i * 7 % 1000).ToArray(), generated = [1, 2, 2, 3, 999];
        Sampler[] samplers =
        [
            new(1) { Temperature = 0.7f, TopK = 20, TopP = 0.8f, RepetitionPenalty = 1.1f },
            new(2) { Temperature = 0f, RepetitionPenalty = 1.3f },
            new(3) { MinP = 0.05f, PresencePenalty = 0.5f, FrequencyPenalty = 0.5f },
        ];
        int sink = 0;
        var probabilities = new float[1000];
        foreach (Sampler sampler in samplers)
        {
            Assert.Equal(0, Training.Allocations.Measure(() => sink += sampler.Sample(logits, prompt, generated), iterations: 100));
            Assert.Equal(0, Training.Allocations.Measure(() => sampler.Probabilities(logits, prompt, generated, probabilities), iterations: 20));
        }
        Assert.True(sink >= 0);
    }

    [Fact]
    public void RejectsBadHistoryAndPenalties()
    {
        var sampler = new Sampler(1) { RepetitionPenalty = 1.1f };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => sampler.Sample([1f, 2f, 3f], [0, 3], []));
        Assert.Contains("prompt[1] = 3", e.Message);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => sampler.Sample([1f, 2f, 3f], [], [-1]));
        Assert.Contains("generated[0] = -1", e.Message);
        Assert.Throws<ArgumentException>(() => sampler.Probabilities([1f, 2f], [], [], new float[3]));
        Assert.Throws<ArgumentException>(() => sampler.Sample([1f, float.NaN], [0], []));
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.RepetitionPenalty = 0f);
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.RepetitionPenalty = float.PositiveInfinity);
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.PresencePenalty = float.NaN);
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.FrequencyPenalty = float.NegativeInfinity);
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.MinP = -0.1f);
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.MinP = 1.1f);
    }

    [Fact]
    public void KthLargestAgreesWithSorting()
    {
        var rng = new Rng(14);
        for (int trial = 0; trial < 200; trial++)
        {
            int length = 1 + rng.NextInt(60);
            var values = new float[length];
            for (int i = 0; i < length; i++) values[i] = rng.NextInt(8); // many duplicates
            int k = 1 + rng.NextInt(length);
            float expected = values.OrderByDescending(v => v).ElementAt(k - 1);
            Assert.Equal(expected, Sampler.KthLargest((float[])values.Clone(), k));
        }
    }
}
