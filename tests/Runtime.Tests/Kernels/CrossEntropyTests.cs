using System;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Tests.Kernels;

public class CrossEntropyTests
{
    /// <summary>PyTorch's label-smoothed, ignore-aware mean cross-entropy, in double.</summary>
    private static double Reference(float[] logits, int[] targets, int n, int vocab, double epsilon)
    {
        double total = 0;
        int count = 0;
        for (int i = 0; i < n; i++)
        {
            if (targets[i] < 0) continue;
            double max = double.NegativeInfinity, sum = 0;
            for (int j = 0; j < vocab; j++) max = Math.Max(max, logits[i * vocab + j]);
            for (int j = 0; j < vocab; j++) sum += Math.Exp(logits[i * vocab + j] - max);
            double logSumExp = max + Math.Log(sum);
            double nll = logSumExp - logits[i * vocab + targets[i]];
            double smooth = 0;
            for (int j = 0; j < vocab; j++) smooth += (logSumExp - logits[i * vocab + j]) / vocab;
            total += (1 - epsilon) * nll + epsilon * smooth;
            count++;
        }
        return count == 0 ? 0 : total / count;
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(0.1f)]
    public void Forward_matches_double_reference_with_ignored_targets(float epsilon)
    {
        int n = 7, vocab = 13;
        float[] logits = TestTensors.Normal(new Rng(80), n * vocab, 3f);
        logits[5] = 120f; // a row whose other probabilities underflow: log-sum-exp keeps the loss finite
        int[] targets = { 2, -100, 0, 12, -1, 5, 7 };
        var probs = new float[n * vocab];
        float loss = CrossEntropy.Forward(logits, targets, probs, n, vocab, epsilon);
        double expected = Reference(logits, targets, n, vocab, epsilon);
        Assert.True(float.IsFinite(loss));
        Assert.Equal(expected, loss, 1e-5 * Math.Max(1, expected));
        for (int i = 0; i < n; i++)
        {
            double rowSum = 0;
            for (int j = 0; j < vocab; j++) rowSum += probs[i * vocab + j];
            Assert.Equal(1.0, rowSum, 1e-5);
        }
    }

    [Fact]
    public void All_rows_ignored_gives_zero_and_no_gradient()
    {
        float[] logits = TestTensors.Normal(new Rng(81), 2 * 5);
        int[] targets = { -100, -1 };
        var probs = new float[10];
        Assert.Equal(0f, CrossEntropy.Forward(logits, targets, probs, 2, 5, 0.1f));
        var dLogits = new float[10];
        CrossEntropy.Backward(probs, targets, dLogits, 2, 5, 0.1f);
        Assert.All(dLogits, d => Assert.Equal(0f, d));
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(0.1f)]
    public void Backward_matches_finite_differences_and_accumulates(float epsilon)
    {
        int n = 7, vocab = 13;
        var rng = new Rng(82);
        float[] logits = TestTensors.Normal(rng, n * vocab, 2f);
        int[] targets = { 2, -100, 0, 12, 4, 5, 7 };
        var probs = new float[n * vocab];
        const float dLoss = 1.7f;
        double Loss() => dLoss * CrossEntropy.Forward(logits, targets, probs, n, vocab, epsilon);
        Loss();
        float[] saved = (float[])probs.Clone();
        var dLogits = new float[logits.Length];
        CrossEntropy.Backward(saved, targets, dLogits, n, vocab, epsilon, dLoss);
        GradientCheck.Check("dLogits", logits, dLogits, Loss);
        for (int j = 0; j < vocab; j++) Assert.Equal(0f, dLogits[1 * vocab + j]); // the ignored row

        var twice = (float[])dLogits.Clone();
        CrossEntropy.Backward(saved, targets, twice, n, vocab, epsilon, dLoss);
        GradientCheck.AssertDoubled("dLogits", dLogits, twice);
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(0.1f)]
    public void Backward_in_place_over_the_softmax_equals_the_separate_gradient(float epsilon)
    {
        // What a training step does: forward leaves the softmax in the logits' gradient, backward replaces it there.
        int n = 37, vocab = 19; // 19: not a multiple of any vector width
        float[] logits = TestTensors.Normal(new Rng(83), n * vocab, 2f);
        int[] targets = new int[n];
        for (int i = 0; i < n; i++) targets[i] = i % 5 == 3 ? -100 : (i * 7) % vocab;
        var probs = new float[n * vocab];
        CrossEntropy.Forward(logits, targets, probs, n, vocab, epsilon);
        var separate = new float[n * vocab];
        separate.AsSpan().Fill(float.NaN); // overwritten, never read
        CrossEntropy.Backward(probs, targets, separate, n, vocab, epsilon, 1.3f, overwriteDLogits: true);
        CrossEntropy.Backward(probs, targets, probs, n, vocab, epsilon, 1.3f, overwriteDLogits: true);
        Assert.Equal(separate, probs);
    }

    [Fact]
    public void Backward_refuses_other_overlaps_of_the_softmax_and_the_gradient()
    {
        var buffer = new float[3 * 4 + 1];
        int[] targets = { 0, 1, 2 };
        // Adding into the softmax itself, or a shifted overlap, would read values already replaced.
        Assert.Equal("dLogits", Assert.Throws<ArgumentException>(() => CrossEntropy.Backward(buffer.AsSpan(0, 12), targets, buffer.AsSpan(0, 12), 3, 4, 0f)).ParamName);
        Assert.Equal("dLogits", Assert.Throws<ArgumentException>(() => CrossEntropy.Backward(buffer.AsSpan(0, 12), targets, buffer.AsSpan(1, 12), 3, 4, 0f, overwriteDLogits: true)).ParamName);
    }

    [Fact]
    public void Target_beyond_vocabulary_throws_naming_the_position()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => CrossEntropy.Forward(new float[3 * 4], new[] { 0, 3, 4 }, new float[3 * 4], 3, 4, 0f));
        Assert.Equal("targets", ex.ParamName);
        Assert.Contains("position 2", ex.Message);
        var backward = Assert.Throws<ArgumentOutOfRangeException>(() => CrossEntropy.Backward(new float[3 * 4], new[] { 9, 3, 1 }, new float[3 * 4], 3, 4, 0f));
        Assert.Contains("position 0", backward.Message);
        Assert.Equal("probabilities", Assert.Throws<ArgumentException>(() => CrossEntropy.Forward(new float[12], new[] { 0, 1, 2 }, new float[11], 3, 4, 0f)).ParamName);
    }
}
