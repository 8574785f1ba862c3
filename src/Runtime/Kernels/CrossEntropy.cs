using System;
using System.Numerics.Tensors;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

/// <summary>
/// Softmax + cross-entropy loss fused, PyTorch's <c>F.cross_entropy(logits, targets, ignore_index=-100 (any negative
/// target here), label_smoothing=ε, reduction='mean')</c>.
/// </summary>
/// <remarks>
/// Per counted row with log-probabilities ℓ = logits − logsumexp(logits):
/// <c>loss = (1 − ε)·(−ℓ[target]) + ε·mean_j(−ℓ[j])</c>; the result is the mean over counted rows (rows with a
/// negative target are ignored), or 0 when none is counted. The gradient of that mean is
/// <c>(p − q)/count</c> with <c>q = (1 − ε)·onehot(target) + ε/vocab</c>. Large inputs are split between threads by
/// blocks of rows (see <see cref="Parallelism"/>); the blocks depend on n alone and the loss adds their sums in order,
/// so results do not depend on the thread count.
/// </remarks>
public static unsafe class CrossEntropy
{
    // Rows per block (at least; more when there would be more than MaxBlocks blocks, whose partial sums sit on the stack).
    private const int BlockRows = 16, MaxBlocks = 1024;

    // Work per logit in Parallelism's units: forward's exp and sums, backward's scaled copy.
    private const int ForwardCost = 40, BackwardCost = 8;

    private static int RowsPerBlock(int n) => Math.Max(BlockRows, (n + MaxBlocks - 1) / MaxBlocks);

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
        int count = CheckTargets(targets, vocab);
        if (n == 0) return 0f;

        int rowsPerBlock = RowsPerBlock(n), blocks = (n + rowsPerBlock - 1) / rowsPerBlock;
        double* sums = stackalloc double[blocks];
        fixed (float* pLogits = logits, pProbs = probabilities)
        fixed (int* pTargets = targets)
        {
            var work = new ForwardWork
            {
                Logits = pLogits, Targets = pTargets, Probabilities = pProbs, Sums = sums,
                N = n, Vocab = vocab, RowsPerBlock = rowsPerBlock, LabelSmoothing = labelSmoothing,
            };
            WorkerPool.For(ref work, blocks, Parallelism.ThreadsFor((long)ForwardCost * n * vocab, blocks));
        }
        double total = 0;
        for (int block = 0; block < blocks; block++) total += sums[block];
        return count == 0 ? 0f : (float)(total / count);
    }

    // Softmax rows and the sum of their losses (counted rows only) for one block of rows.
    private struct ForwardWork : IParallelWork
    {
        public float* Logits, Probabilities;
        public int* Targets;
        public double* Sums;
        public int N, Vocab, RowsPerBlock;
        public float LabelSmoothing;

        public readonly void Execute(int block)
        {
            int vocab = Vocab, end = Math.Min(N, (block + 1) * RowsPerBlock);
            double total = 0;
            for (int i = block * RowsPerBlock; i < end; i++)
            {
                ReadOnlySpan<float> row = new(Logits + (nint)i * vocab, vocab);
                double logSumExp = Softmax.Row(row, new Span<float>(Probabilities + (nint)i * vocab, vocab));
                int target = Targets[i];
                if (target < 0) continue;
                // −log p[j] = logSumExp − logit[j], so nothing here takes the log of a probability that may have underflowed.
                double nll = logSumExp - row[target];
                double smooth = LabelSmoothing == 0f ? 0 : logSumExp - (double)TensorPrimitives.Sum(row) / vocab;
                total += (1.0 - LabelSmoothing) * nll + LabelSmoothing * smooth;
            }
            Sums[block] = total;
        }
    }

    /// <summary>
    /// Accumulates <c>dLogits[i, :] += dLoss·(p − q)/count</c> for every counted row (q as in the class remarks);
    /// ignored rows get nothing. With <paramref name="overwriteDLogits"/> the gradient is stored instead, and ignored rows
    /// get 0.
    /// </summary>
    /// <param name="probabilities">
    /// The softmax saved by forward <c>[n, vocab]</c>. It may be <paramref name="dLogits"/> itself with
    /// <paramref name="overwriteDLogits"/>: the gradient then replaces the softmax in place (each element read before it
    /// is written), so a training step holds one <c>[n, vocab]</c> tensor for both.
    /// </param>
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
        if (probabilities.Overlaps(dLogits, out int shift) && (shift != 0 || !overwriteDLogits))
            throw new ArgumentException("dLogits may be the probabilities themselves (in place, with overwriteDLogits), but must not otherwise overlap them", nameof(dLogits));
        CheckSmoothing(labelSmoothing);
        int count = CheckTargets(targets, vocab);
        if (count == 0)
        {
            if (overwriteDLogits) dLogits.Clear();
            return;
        }

        float scale = dLoss / count;
        int rowsPerBlock = RowsPerBlock(n), blocks = (n + rowsPerBlock - 1) / rowsPerBlock;
        fixed (float* pProbs = probabilities, pD = dLogits)
        fixed (int* pTargets = targets)
        {
            var work = new BackwardWork
            {
                Probabilities = pProbs, Targets = pTargets, DLogits = pD, N = n, Vocab = vocab, RowsPerBlock = rowsPerBlock,
                Scale = scale, Uniform = scale * labelSmoothing / vocab, OnTarget = scale * (1f - labelSmoothing), Overwrite = overwriteDLogits,
            };
            WorkerPool.For(ref work, blocks, Parallelism.ThreadsFor((long)BackwardCost * n * vocab, blocks));
        }
    }

    private struct BackwardWork : IParallelWork
    {
        public float* Probabilities, DLogits;
        public int* Targets;
        public int N, Vocab, RowsPerBlock;
        public float Scale, Uniform, OnTarget;
        public bool Overwrite;

        public readonly void Execute(int block)
        {
            int vocab = Vocab, end = Math.Min(N, (block + 1) * RowsPerBlock);
            for (int i = block * RowsPerBlock; i < end; i++)
            {
                int target = Targets[i];
                Span<float> dRow = new(DLogits + (nint)i * vocab, vocab);
                if (target < 0)
                {
                    if (Overwrite) dRow.Clear();
                    continue;
                }
                ReadOnlySpan<float> pRow = new(Probabilities + (nint)i * vocab, vocab);
                if (Overwrite) TensorPrimitives.Multiply(pRow, Scale, dRow);
                else TensorPrimitives.MultiplyAdd(pRow, Scale, dRow, dRow);
                if (Uniform != 0f) TensorPrimitives.Subtract(dRow, Uniform, dRow);
                dRow[target] -= OnTarget;
            }
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
