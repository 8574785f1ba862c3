using System;
using System.Numerics.Tensors;

namespace TransformerGen.Kernels;

/// <summary>
/// Pooling of a sequence of hidden states <c>x[batch, seqLen, c]</c> into one vector per sequence <c>y[batch, c]</c>,
/// for encoder-only classifiers: the mean over the real (unpadded) tokens, as Sentence-BERT's mean pooling, or the
/// first token, as BERT's <c>[CLS]</c> pooling.
/// </summary>
public static class Pooling
{
    /// <summary>
    /// Effectively computes <c>y[b, :] = (1/n_b)·Σ_t x[b, t, :]</c> over the positions t with
    /// <c>padding[b·seqLen + t] == 0</c> (all of them when <paramref name="padding"/> is empty), n_b their number;
    /// <c>y[b, :] = 0</c> when every position of the sequence is padding. Overwrites <paramref name="y"/>.
    /// </summary>
    /// <param name="x">Hidden states <c>[batch, seqLen, c]</c>.</param>
    /// <param name="padding">Padding <c>[batch, seqLen]</c>, nonzero = padding, or empty for none.</param>
    /// <param name="y">Pooled <c>[batch, c]</c>.</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="seqLen">Tokens per sequence.</param>
    /// <param name="c">Channels.</param>
    public static void MeanForward(ReadOnlySpan<float> x, ReadOnlySpan<byte> padding, Span<float> y, int batch, int seqLen, int c)
    {
        CheckSizes(batch, seqLen, c);
        SpanChecks.Length(x.Length, (long)batch * seqLen * c, nameof(x));
        SpanChecks.LengthOrEmpty(padding.Length, (long)batch * seqLen, nameof(padding));
        SpanChecks.Length(y.Length, (long)batch * c, nameof(y));
        for (int b = 0; b < batch; b++)
        {
            Span<float> pooled = y.Slice(b * c, c);
            pooled.Clear();
            int tokens = 0;
            for (int t = 0; t < seqLen; t++)
            {
                if (!padding.IsEmpty && padding[b * seqLen + t] != 0) continue;
                TensorPrimitives.Add(pooled, x.Slice((b * seqLen + t) * c, c), pooled);
                tokens++;
            }
            if (tokens > 0) TensorPrimitives.Multiply(pooled, 1f / tokens, pooled);
        }
    }

    /// <summary>
    /// <see cref="MeanForward(ReadOnlySpan{float}, ReadOnlySpan{byte}, Span{float}, int, int, int)"/> for sequences of
    /// different lengths laid end to end: <c>y[s, :]</c> is the mean of the unpadded rows of sequence s, which owns the
    /// <c>lengths[s]</c> rows after those of the sequences before it (0 when they are all padding). Overwrites <paramref name="y"/>.
    /// </summary>
    /// <param name="x">Hidden states <c>[Σ lengths, c]</c>.</param>
    /// <param name="padding">Padding <c>[Σ lengths]</c>, nonzero = padding, or empty for none.</param>
    /// <param name="y">Pooled <c>[sequences, c]</c>.</param>
    /// <param name="lengths">Tokens of each sequence, each at least 1.</param>
    /// <param name="c">Channels.</param>
    public static void MeanForward(ReadOnlySpan<float> x, ReadOnlySpan<byte> padding, Span<float> y, ReadOnlySpan<int> lengths, int c)
    {
        SpanChecks.NonNegative(c, nameof(c));
        long n = SpanChecks.Sequences(lengths, nameof(lengths), out _);
        SpanChecks.Length(x.Length, n * c, nameof(x));
        SpanChecks.LengthOrEmpty(padding.Length, n, nameof(padding));
        SpanChecks.Length(y.Length, (long)lengths.Length * c, nameof(y));
        int row = 0;
        for (int s = 0; s < lengths.Length; s++)
        {
            int length = lengths[s];
            MeanForward(x.Slice(row * c, length * c), padding.IsEmpty ? default : padding.Slice(row, length), y.Slice(s * c, c), 1, length, c);
            row += length;
        }
    }

    /// <summary>
    /// Effectively computes <c>dx[b, t, :] += dy[b, :]/n_b</c> for the unpadded positions t (nothing for a sequence that
    /// is all padding).
    /// </summary>
    /// <param name="dy">Gradient of the pooled output <c>[batch, c]</c>.</param>
    /// <param name="padding">The padding given to forward, or empty.</param>
    /// <param name="dx">Gradient of the hidden states <c>[batch, seqLen, c]</c> (accumulated).</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="seqLen">Tokens per sequence.</param>
    /// <param name="c">Channels.</param>
    public static void MeanBackward(ReadOnlySpan<float> dy, ReadOnlySpan<byte> padding, Span<float> dx, int batch, int seqLen, int c)
    {
        CheckSizes(batch, seqLen, c);
        SpanChecks.Length(dy.Length, (long)batch * c, nameof(dy));
        SpanChecks.LengthOrEmpty(padding.Length, (long)batch * seqLen, nameof(padding));
        SpanChecks.Length(dx.Length, (long)batch * seqLen * c, nameof(dx));
        for (int b = 0; b < batch; b++)
        {
            int tokens = padding.IsEmpty ? seqLen : padding.Slice(b * seqLen, seqLen).Count((byte)0);
            if (tokens == 0) continue;
            float weight = 1f / tokens;
            ReadOnlySpan<float> dPooled = dy.Slice(b * c, c);
            for (int t = 0; t < seqLen; t++)
            {
                if (!padding.IsEmpty && padding[b * seqLen + t] != 0) continue;
                Span<float> dRow = dx.Slice((b * seqLen + t) * c, c);
                TensorPrimitives.MultiplyAdd(dPooled, weight, dRow, dRow);
            }
        }
    }

    /// <summary>Effectively computes <c>y[b, :] = x[b, 0, :]</c>. Overwrites <paramref name="y"/>.</summary>
    /// <param name="x">Hidden states <c>[batch, seqLen, c]</c>, seqLen ≥ 1.</param>
    /// <param name="y">Pooled <c>[batch, c]</c>.</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="seqLen">Tokens per sequence.</param>
    /// <param name="c">Channels.</param>
    public static void FirstForward(ReadOnlySpan<float> x, Span<float> y, int batch, int seqLen, int c)
    {
        CheckSizes(batch, seqLen, c);
        SpanChecks.Positive(seqLen, nameof(seqLen));
        SpanChecks.Length(x.Length, (long)batch * seqLen * c, nameof(x));
        SpanChecks.Length(y.Length, (long)batch * c, nameof(y));
        for (int b = 0; b < batch; b++)
            x.Slice(b * seqLen * c, c).CopyTo(y.Slice(b * c, c));
    }

    /// <summary>
    /// Effectively computes <c>y[s, :]</c> = the first row of sequence s, for sequences of different lengths laid end to
    /// end (sequence s owns the <c>lengths[s]</c> rows after those of the sequences before it). Overwrites <paramref name="y"/>.
    /// </summary>
    /// <param name="x">Hidden states <c>[Σ lengths, c]</c>.</param>
    /// <param name="y">Pooled <c>[sequences, c]</c>.</param>
    /// <param name="lengths">Tokens of each sequence, each at least 1.</param>
    /// <param name="c">Channels.</param>
    public static void FirstForward(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<int> lengths, int c)
    {
        SpanChecks.NonNegative(c, nameof(c));
        SpanChecks.Length(x.Length, SpanChecks.Sequences(lengths, nameof(lengths), out _) * c, nameof(x));
        SpanChecks.Length(y.Length, (long)lengths.Length * c, nameof(y));
        int row = 0;
        for (int s = 0; s < lengths.Length; s++)
        {
            x.Slice(row * c, c).CopyTo(y.Slice(s * c, c));
            row += lengths[s];
        }
    }

    /// <summary>Effectively computes <c>dx[b, 0, :] += dy[b, :]</c>.</summary>
    /// <param name="dy">Gradient of the pooled output <c>[batch, c]</c>.</param>
    /// <param name="dx">Gradient of the hidden states <c>[batch, seqLen, c]</c> (accumulated).</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="seqLen">Tokens per sequence.</param>
    /// <param name="c">Channels.</param>
    public static void FirstBackward(ReadOnlySpan<float> dy, Span<float> dx, int batch, int seqLen, int c)
    {
        CheckSizes(batch, seqLen, c);
        SpanChecks.Positive(seqLen, nameof(seqLen));
        SpanChecks.Length(dy.Length, (long)batch * c, nameof(dy));
        SpanChecks.Length(dx.Length, (long)batch * seqLen * c, nameof(dx));
        for (int b = 0; b < batch; b++)
        {
            Span<float> dFirst = dx.Slice(b * seqLen * c, c);
            TensorPrimitives.Add(dFirst, dy.Slice(b * c, c), dFirst);
        }
    }

    private static void CheckSizes(int batch, int seqLen, int c)
    {
        SpanChecks.NonNegative(batch, nameof(batch));
        SpanChecks.NonNegative(seqLen, nameof(seqLen));
        SpanChecks.NonNegative(c, nameof(c));
    }
}
