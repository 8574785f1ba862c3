using System;
using System.Numerics.Tensors;

namespace TransformerGen.Kernels;

/// <summary>
/// Softmax + cross-entropy loss fused, PyTorch's <c>F.cross_entropy(logits, targets, ignore_index=-100 (any negative
/// target here), label_smoothing=ε, reduction='mean')</c>.
/// </summary>
/// <remarks>
/// Per counted row with log-probabilities ℓ = logits − logsumexp(logits):
/// <c>loss = (1 − ε)·(−ℓ[target]) + ε·mean_j(−ℓ[j])</c>; the result is the mean over counted rows (rows with a
/// negative target are ignored), or 0 when none is counted. The gradient of that mean is
/// <c>(p − q)/count</c> with <c>q = (1 − ε)·onehot(target) + ε/vocab</c>.
/// </remarks>
public static class CrossEntropy
{
    /// <summary>
    /// Writes the softmax of every row into <paramref name="probabilities"/> (ignored rows too) and returns the mean
    /// label-smoothed loss over the counted rows. A target ≥ <paramref name="vocab"/> throws
    /// <see cref="ArgumentOutOfRangeException"/> naming its position (before anything is written).
    /// </summary>
    /// <param name="logits">Logits <c>[n, vocab]</c>.</param>
    /// <param name="targets">Target ids <c>[n]</c>; negative = ignored.</param>
    /// <param name="probabilities">Softmax of the logits <c>[n, vocab]</c>, overwritten; must not overlap <paramref name="logits"/>.</param>
    /// <param name="n">Rows.</param>
    /// <param name="vocab">Classes.</param>
    /// <param name="labelSmoothing">ε in [0, 1].</param>
    public static float Forward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> probabilities, int n, int vocab, float labelSmoothing)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.Positive(vocab, nameof(vocab));
        SpanChecks.Length(logits.Length, (long)n * vocab, nameof(logits));
        SpanChecks.Length(targets.Length, n, nameof(targets));
        SpanChecks.Length(probabilities.Length, (long)n * vocab, nameof(probabilities));
        CheckSmoothing(labelSmoothing);
        CheckTargets(targets, vocab);

        double total = 0;
        int count = 0;
        for (int i = 0; i < n; i++)
        {
            ReadOnlySpan<float> row = logits.Slice(i * vocab, vocab);
            double logSumExp = Softmax.Row(row, probabilities.Slice(i * vocab, vocab));
            int target = targets[i];
            if (target < 0) continue;
            // −log p[j] = logSumExp − logit[j], so nothing here takes the log of a probability that may have underflowed.
            double nll = logSumExp - row[target];
            double smooth = labelSmoothing == 0f ? 0 : logSumExp - (double)TensorPrimitives.Sum(row) / vocab;
            total += (1.0 - labelSmoothing) * nll + labelSmoothing * smooth;
            count++;
        }
        return count == 0 ? 0f : (float)(total / count);
    }

    /// <summary>
    /// Accumulates <c>dLogits[i, :] += dLoss·(p − q)/count</c> for every counted row (q as in the class remarks);
    /// ignored rows get nothing. With <paramref name="overwriteDLogits"/> the gradient is stored instead, and ignored rows
    /// get 0.
    /// </summary>
    /// <param name="probabilities">The softmax saved by forward <c>[n, vocab]</c>.</param>
    /// <param name="targets">Target ids <c>[n]</c>; negative = ignored.</param>
    /// <param name="dLogits">Gradient of the logits <c>[n, vocab]</c> (accumulated unless <paramref name="overwriteDLogits"/>).</param>
    /// <param name="n">Rows.</param>
    /// <param name="vocab">Classes.</param>
    /// <param name="labelSmoothing">ε, as given to forward.</param>
    /// <param name="dLoss">Gradient of the returned loss (1 when it is the objective).</param>
    /// <param name="overwriteDLogits">Store rather than add (the first contribution to the logits' gradient).</param>
    public static void Backward(ReadOnlySpan<float> probabilities, ReadOnlySpan<int> targets, Span<float> dLogits, int n, int vocab, float labelSmoothing, float dLoss = 1f, bool overwriteDLogits = false)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.Positive(vocab, nameof(vocab));
        SpanChecks.Length(probabilities.Length, (long)n * vocab, nameof(probabilities));
        SpanChecks.Length(targets.Length, n, nameof(targets));
        SpanChecks.Length(dLogits.Length, (long)n * vocab, nameof(dLogits));
        CheckSmoothing(labelSmoothing);
        int count = CheckTargets(targets, vocab);
        if (count == 0)
        {
            if (overwriteDLogits) dLogits.Clear();
            return;
        }

        float scale = dLoss / count;
        float uniform = scale * labelSmoothing / vocab;
        float onTarget = scale * (1f - labelSmoothing);
        for (int i = 0; i < n; i++)
        {
            int target = targets[i];
            Span<float> dRow = dLogits.Slice(i * vocab, vocab);
            if (target < 0)
            {
                if (overwriteDLogits) dRow.Clear();
                continue;
            }
            if (overwriteDLogits) TensorPrimitives.Multiply(probabilities.Slice(i * vocab, vocab), scale, dRow);
            else TensorPrimitives.MultiplyAdd(probabilities.Slice(i * vocab, vocab), scale, dRow, dRow);
            if (uniform != 0f) TensorPrimitives.Subtract(dRow, uniform, dRow);
            dRow[target] -= onTarget;
        }
    }

    private static void CheckSmoothing(float labelSmoothing)
    {
        if (!(labelSmoothing >= 0f && labelSmoothing <= 1f))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "Label smoothing must be in [0, 1].");
    }

    /// <summary>Throws for a target ≥ vocab; returns how many rows are counted (target ≥ 0).</summary>
    private static int CheckTargets(ReadOnlySpan<int> targets, int vocab)
    {
        int count = 0;
        for (int i = 0; i < targets.Length; i++)
        {
            int target = targets[i];
            if (target >= vocab)
                throw new ArgumentOutOfRangeException(nameof(targets), target, $"Target at position {i} is {target}, outside the vocabulary [0, {vocab}).");
            if (target >= 0) count++;
        }
        return count;
    }
}
