using System;

namespace TransformerGen.Kernels;

// Attention over sequences of different lengths laid end to end with no padding between them (the variable-length form
// of text-embeddings-inference and flash-attention's varlen kernels): the exact-length passes of encoder-only models.
public static unsafe partial class Attention
{
    /// <summary>
    /// Self-attention of sequences laid end to end: sequence s owns the <c>lengths[s]</c> rows that follow those of the
    /// sequences before it, and its queries see only its own keys. Within a sequence the masks are those of the general
    /// <see cref="Forward(ReadOnlySpan{float}, int, ReadOnlySpan{float}, ReadOnlySpan{float}, int, ReadOnlySpan{byte}, Span{float}, Span{float}, int, int, int, int, int, bool, int, int, float, ReadOnlySpan{float}, int)"/>
    /// (padding, causal, window), and each sequence computes exactly what that kernel computes for it alone, in the same
    /// order, so a sentence gets the same output here as in a padded batch. Overwrites <paramref name="output"/>.
    /// </summary>
    /// <param name="q">Queries <c>[n, qStride]</c>, n = Σ lengths; the first C = heads·headDim columns of each row are used.</param>
    /// <param name="qStride">Distance between query rows, at least C (3C for a packed Q | K | V tensor).</param>
    /// <param name="k">Keys <c>[n, kvStride]</c>, first kvHeads·headDim columns of each row.</param>
    /// <param name="v">Values <c>[n, kvStride]</c>, first kvHeads·headDim columns of each row.</param>
    /// <param name="kvStride">Distance between key rows and between value rows.</param>
    /// <param name="keyPadding">Padding <c>[n]</c>, nonzero = padding (masked as a key), or empty for none.</param>
    /// <param name="output">Heads concatenated <c>[n, C]</c>.</param>
    /// <param name="scratch">The probabilities of one sequence at a time: at least <c>heads·L²</c> floats, L the longest length.</param>
    /// <param name="lengths">Tokens of each sequence, each at least 1.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="causal">Whether query i of a sequence may only see its keys j ≤ i.</param>
    /// <param name="window">0 for no window; otherwise query i sees only keys with |i − j| ≤ window.</param>
    /// <param name="kvHeads">Key/value heads: 0 (the default) for one per query head; otherwise a divisor of <paramref name="heads"/>.</param>
    /// <param name="scale">Factor of the raw scores; 0 (the default) for 1/√headDim.</param>
    /// <param name="positionBias">
    /// Relative-position bias rows <c>[heads, 2·biasSpan − 1]</c> added to the scaled scores, one copy that serves every
    /// sequence (the bias depends only on the distance j − i within a sequence), or empty for none.
    /// </param>
    /// <param name="biasSpan">The span the bias rows cover, at least the longest length.</param>
    /// <exception cref="ArgumentOutOfRangeException">A length is below 1, or the bias does not cover the longest.</exception>
    public static void ForwardSequences(ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        ReadOnlySpan<byte> keyPadding, Span<float> output, Span<float> scratch, ReadOnlySpan<int> lengths,
        int heads, int headDim, bool causal = false, int window = 0, int kvHeads = 0,
        float scale = 0f, ReadOnlySpan<float> positionBias = default, int biasSpan = 0)
    {
        long n = SpanChecks.Sequences(lengths, nameof(lengths), out int longest);
        kvHeads = CheckGeneral(1, 0, 0, heads, headDim, qStride, kvStride, kvHeads);
        SpanChecks.NonNegative(window, nameof(window));
        int c = heads * headDim, kvC = kvHeads * headDim;
        SpanChecks.AtLeast(q.Length, StridedLength(n, qStride, c), nameof(q));
        SpanChecks.AtLeast(k.Length, StridedLength(n, kvStride, kvC), nameof(k));
        SpanChecks.AtLeast(v.Length, StridedLength(n, kvStride, kvC), nameof(v));
        SpanChecks.LengthOrEmpty(keyPadding.Length, n, nameof(keyPadding));
        SpanChecks.Length(output.Length, n * c, nameof(output));
        SpanChecks.AtLeast(scratch.Length, (long)heads * longest * longest, nameof(scratch));

        fixed (float* pQ = q, pK = k, pV = v, pOut = output, pScratch = scratch, pBias = positionBias)
        fixed (byte* pPad = keyPadding)
        {
            ScoreTerms terms = Terms(scale, headDim, pBias, positionBias.Length, biasSpan, 1, heads, longest - 1, longest,
                nameof(scale), nameof(positionBias), nameof(biasSpan));
            nint row = 0;
            foreach (int length in lengths)
            {
                // One sequence as a batch of one: its probabilities go to the scratch, which the next sequence reuses.
                ForwardCore(pQ + row * qStride, qStride, pK + row * kvStride, pV + row * kvStride, kvStride, keyPadding.IsEmpty ? null : pPad + row,
                    pOut + row * c, pScratch, saveProbabilities: true, 1, length, length, heads, headDim, kvHeads, 0, causal, window, terms);
                row += length;
            }
        }
    }
}
