using System;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

// Cached self-attention of a decoder's several sequences in one call: each sequence's new queries over its own cache slot.
public static unsafe partial class Attention
{
    /// <summary>Scores rows a work item takes from its thread's stack; longer caches run on the calling thread with <c>scores</c>.</summary>
    private const int CachedScoreFloatsOnStack = 16 * 1024;

    /// <summary>
    /// Cached self-attention of several sequences whose new rows lie end to end: sequence s has <c>lengths[s]</c> new
    /// queries at positions <c>positions[s]</c>…, and attends causally to the keys and values in its cache slot
    /// <c>slots[s]</c>, which already hold its new rows. Each (sequence, head) pair computes what
    /// <see cref="ForwardCached"/> computes for it, the same bits on any thread count; pairs run on several threads when the
    /// work is worth it. Overwrites <paramref name="output"/>.
    /// </summary>
    /// <param name="q">Queries <c>[Σ lengths, qStride]</c>; the first heads·headDim columns of each row are used.</param>
    /// <param name="qStride">Distance between query rows, at least heads·headDim.</param>
    /// <param name="caches">Every cache slot, one after another, <paramref name="slotLength"/> floats each.</param>
    /// <param name="slotLength">Floats of one slot.</param>
    /// <param name="keyOffset">Where this layer's keys <c>[maxLen, kvHeads·headDim]</c> start in a slot.</param>
    /// <param name="valueOffset">Where this layer's values start in a slot, same shape.</param>
    /// <param name="output">Heads concatenated <c>[Σ lengths, heads·headDim]</c>.</param>
    /// <param name="scores">Scratch of at least the longest <c>positions[s] + lengths[s]</c> floats, for the calling thread.</param>
    /// <param name="lengths">New rows of each sequence, each at least 1.</param>
    /// <param name="positions">The position of each sequence's first new row.</param>
    /// <param name="slots">Each sequence's cache slot.</param>
    /// <param name="heads">Query heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="window">0 for no window; otherwise a query sees only the keys within this distance.</param>
    /// <param name="kvHeads">Key/value heads: 0 for one per query head; otherwise a divisor of <paramref name="heads"/>.</param>
    /// <param name="scale">Factor of the raw scores; 0 (the default) for 1/√headDim.</param>
    public static void ForwardCachedSequences(ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> caches, int slotLength, int keyOffset, int valueOffset,
        Span<float> output, Span<float> scores, ReadOnlySpan<int> lengths, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots,
        int heads, int headDim, int window = 0, int kvHeads = 0, float scale = 0f)
    {
        long n = SpanChecks.Sequences(lengths, nameof(lengths), out _);
        SpanChecks.Length(positions.Length, lengths.Length, nameof(positions));
        SpanChecks.Length(slots.Length, lengths.Length, nameof(slots));
        SpanChecks.Positive(heads, nameof(heads));
        SpanChecks.Positive(headDim, nameof(headDim));
        SpanChecks.NonNegative(window, nameof(window));
        CheckScale(scale);
        SpanChecks.Positive(slotLength, nameof(slotLength));
        kvHeads = KvHeads(kvHeads, heads);
        int c = heads * headDim, kvC = kvHeads * headDim, count = lengths.Length, longest = 0;
        CheckStride(qStride, c, nameof(qStride));
        SpanChecks.AtLeast(q.Length, StridedLength(n, qStride, c), nameof(q));
        SpanChecks.Length(output.Length, n * c, nameof(output));
        long flops = 0;
        for (int s = 0; s < count; s++)
        {
            SpanChecks.NonNegative(positions[s], nameof(positions));
            int keys = positions[s] + lengths[s];
            if ((uint)slots[s] >= (uint)(caches.Length / slotLength))
                throw new ArgumentOutOfRangeException(nameof(slots), slots[s], $"slots[{s}] = {slots[s]} is outside the {caches.Length / slotLength} slots of caches");
            SpanChecks.AtLeast(slotLength, Math.Max(keyOffset, valueOffset) + (long)keys * kvC, nameof(slotLength));
            longest = Math.Max(longest, keys);
            flops += heads * PairFlops(lengths[s], keys, headDim);
        }
        SpanChecks.AtLeast(scores.Length, longest, nameof(scores));

        int* rows = stackalloc int[count];
        for (int s = 0, row = 0; s < count; row += lengths[s++]) rows[s] = row;
        fixed (float* pQ = q, pCaches = caches, pOut = output, pScores = scores)
        fixed (int* pLengths = lengths, pPositions = positions, pSlots = slots)
        {
            var work = new CachedWork
            {
                Q = pQ, QStride = qStride, Caches = pCaches, SlotLength = slotLength, KeyOffset = keyOffset, ValueOffset = valueOffset,
                Output = pOut, Rows = rows, Lengths = pLengths, Positions = pPositions, Slots = pSlots,
                Heads = heads, HeadDim = headDim, KvHeads = kvHeads, Window = window, Scale = scale,
            };
            int pairs = count * heads;
            int threads = longest <= CachedScoreFloatsOnStack ? Parallelism.ThreadsFor(flops, pairs) : 1;
            if (threads > 1)
            {
                WorkerPool.For(ref work, pairs, threads);
                return;
            }
            // One thread: every pair through the caller's scores row.
            for (int s = 0; s < count; s++) work.Sequence(s, 0, heads, pScores);
        }
    }

    private struct CachedWork : IParallelWork
    {
        public float* Q, Caches, Output;
        public int* Rows, Lengths, Positions, Slots;
        public int QStride, SlotLength, KeyOffset, ValueOffset, Heads, HeadDim, KvHeads, Window;
        public float Scale;

        /// <summary>Pair <paramref name="item"/> = s·heads + h, with a scores row from this thread's stack.</summary>
        public readonly void Execute(int item)
        {
            int s = item / Heads, h = item - s * Heads;
            float* scores = stackalloc float[Positions[s] + Lengths[s]];
            Sequence(s, h, h + 1, scores);
        }

        /// <summary>Heads [<paramref name="firstHead"/>, <paramref name="endHead"/>) of sequence <paramref name="s"/>.</summary>
        public readonly void Sequence(int s, int firstHead, int endHead, float* scores)
        {
            int row = Rows[s], length = Lengths[s], position0 = Positions[s], kvC = KvHeads * HeadDim;
            float* slot = Caches + (nint)Slots[s] * SlotLength;
            ForwardPairs(Q + (nint)row * QStride, QStride, slot + KeyOffset, slot + ValueOffset, kvC, null, Output + (nint)row * Heads * HeadDim, scores,
                saveProbabilities: false, 1, length, position0 + length, Heads, HeadDim, KvHeads, position0, causal: true, Window, ScoreTerms.Standard(HeadDim, Scale), firstHead, endHead);
        }
    }
}
