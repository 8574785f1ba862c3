using System;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace TransformerGen.Kernels;

// Memory-efficient attention for training, in the style of FlashAttention (Dao et al. 2022, "FlashAttention: Fast and
// Memory-Efficient Exact Attention with IO-Awareness", Algorithm 1; Dao 2023, "FlashAttention-2", Algorithms 1 and 2):
// forward keeps only each query row's softmax statistics, and backward recomputes the probabilities tile by tile.
public static unsafe partial class Attention
{
    /// <summary>Floats of softmax statistics the tiled kernels keep per query row: the row's maximum score and its sum.</summary>
    public const int FlashStatisticsPerRow = 2;

    // Query rows and keys per tile. A tile's scores [rows, keys] sit in stack scratch, 16 KiB for forward and twice that
    // (P and dP/dS) for backward; a query tile's rows are the unit a forward thread claims.
    private const int FlashQueryRows = 32;
    private const int FlashKeyColumns = 128;
    private const int FlashTileFloats = FlashQueryRows * FlashKeyColumns;

    /// <summary>Floats of the statistics buffer of the tiled kernels: <c>[batch, heads, queryLen, 2]</c>.</summary>
    public static long FlashStatisticsLength(int batch, int heads, int queryLen) => (long)batch * heads * queryLen * FlashStatisticsPerRow;

    /// <summary>
    /// The general attention of <see cref="Forward(ReadOnlySpan{float}, int, ReadOnlySpan{float}, ReadOnlySpan{float}, int, ReadOnlySpan{byte}, Span{float}, Span{float}, int, int, int, int, int, bool, int, int, float, ReadOnlySpan{float}, int)"/>
    /// (padding, causal and windowed masks, grouped-query heads) computed over tiles of queries and keys with an online
    /// softmax, so that no <c>[queryLen, keyLen]</c> matrix is ever stored: for every query row it keeps only the largest
    /// visible score m and the sum l = Σ exp((s − m)/√headDim) in <paramref name="statistics"/>, from which
    /// <c>FlashBackward</c> recomputes the probabilities. Same masks and the same 0 output for a query that sees no
    /// key; equal to the stored-probabilities kernel up to rounding. Overwrites <paramref name="output"/> and
    /// <paramref name="statistics"/>; <paramref name="output"/> must not overlap the inputs.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Per query tile (up to 32 rows) and key tile (up to 128 keys): S = Q·Kᵀ; per row m' = max(m, max S), the running
    /// output and sum scaled by exp((m − m')/√d), P = exp((S − m')/√d), l += Σ P, O += P·V; at the end O /= l. Key tiles
    /// start at the first key some row of the query tile sees and end after the last one, so causal attention skips the
    /// tiles above the diagonal and windowed attention every tile outside the band; within a tile, keys a row does not
    /// see get P = 0.
    /// </para>
    /// <para>
    /// Work is split by (sequence, query head, query tile); each output row is computed by one thread in the same order
    /// for any thread count, so the results are bit-identical for any <see cref="Parallelism.ThreadCount"/>.
    /// </para>
    /// </remarks>
    /// <param name="q">Queries <c>[batch, queryLen, qStride]</c>; the first C = heads·headDim columns of each row are used.</param>
    /// <param name="qStride">Distance between query rows, at least C (3C for a packed Q | K | V tensor).</param>
    /// <param name="k">Keys <c>[batch, keyLen, kvStride]</c>, first kvHeads·headDim columns of each row.</param>
    /// <param name="v">Values <c>[batch, keyLen, kvStride]</c>, first kvHeads·headDim columns of each row.</param>
    /// <param name="kvStride">Distance between key rows and between value rows.</param>
    /// <param name="keyPadding">Key padding <c>[batch, keyLen]</c>, nonzero = padding, or empty for none.</param>
    /// <param name="output">Heads concatenated <c>[batch, queryLen, C]</c>.</param>
    /// <param name="statistics">Per query row <c>[batch, heads, queryLen, 2]</c>: the largest visible raw score q·k (−∞ when none) and the sum of exp((s − max)/√headDim) (0 when none); or empty when no backward pass follows (inference).</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="queryLen">Queries per sequence.</param>
    /// <param name="keyLen">Keys per sequence.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="causal">Whether query i may only see keys j ≤ i.</param>
    /// <param name="window">0 for no window; otherwise query i sees only keys with |i − j| ≤ window.</param>
    /// <param name="kvHeads">Key/value heads: 0 (the default) for one per query head; otherwise a divisor of <paramref name="heads"/>.</param>
    /// <param name="scale">Factor of the raw scores; 0 (the default) for 1/√headDim.</param>
    public static void FlashForward(ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        ReadOnlySpan<byte> keyPadding, Span<float> output, Span<float> statistics,
        int batch, int queryLen, int keyLen, int heads, int headDim, bool causal, int window = 0, int kvHeads = 0, float scale = 0f)
        => FlashForward(q, qStride, k, v, kvStride, keyPadding, output, statistics, batch, queryLen, keyLen, heads, headDim, causal, window, kvHeads, Simd.Best, scale);

    /// <summary>The general tiled forward on a chosen instruction-set path (tests run each path the machine has).</summary>
    internal static void FlashForward(ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        ReadOnlySpan<byte> keyPadding, Span<float> output, Span<float> statistics,
        int batch, int queryLen, int keyLen, int heads, int headDim, bool causal, int window, int kvHeads, SimdPath path, float scale = 0f)
    {
        kvHeads = CheckGeneral(batch, queryLen, keyLen, heads, headDim, qStride, kvStride, kvHeads);
        SpanChecks.NonNegative(window, nameof(window));
        CheckScale(scale);
        int c = heads * headDim, kvC = kvHeads * headDim;
        SpanChecks.AtLeast(q.Length, StridedLength((long)batch * queryLen, qStride, c), nameof(q));
        SpanChecks.AtLeast(k.Length, StridedLength((long)batch * keyLen, kvStride, kvC), nameof(k));
        SpanChecks.AtLeast(v.Length, StridedLength((long)batch * keyLen, kvStride, kvC), nameof(v));
        SpanChecks.LengthOrEmpty(keyPadding.Length, (long)batch * keyLen, nameof(keyPadding));
        SpanChecks.Length(output.Length, (long)batch * queryLen * c, nameof(output));
        SpanChecks.LengthOrEmpty(statistics.Length, FlashStatisticsLength(batch, heads, queryLen), nameof(statistics));

        fixed (float* pQ = q, pK = k, pV = v, pOut = output, pStats = statistics)
        fixed (byte* pPad = keyPadding)
        {
            var shape = new FlashShape(pQ, qStride, pK, pV, kvStride, keyPadding.IsEmpty ? null : pPad, batch, queryLen, keyLen, heads, headDim, kvHeads, causal, window, path, scale);
            FlashForwardCore(in shape, pOut, statistics.IsEmpty ? null : pStats);
        }
    }

    private static void FlashForwardCore(in FlashShape shape, float* output, float* statistics)
    {
        if (!FlashForwardSplit(in shape, output, statistics))
            FlashForwardTiles(in shape, output, statistics, 0, shape.ForwardTiles);
    }

    /// <summary>
    /// Self-attention of sequences laid end to end (the exact-length passes of encoder-only models), tiled: what
    /// <see cref="ForwardSequences"/> computes, without its <c>heads·L²</c> scratch. Sequence s owns the
    /// <c>lengths[s]</c> rows after those of the sequences before it, and each is computed exactly as
    /// <see cref="FlashForward(ReadOnlySpan{float}, int, ReadOnlySpan{float}, ReadOnlySpan{float}, int, ReadOnlySpan{byte}, Span{float}, Span{float}, int, int, int, int, int, bool, int, int, float)"/>
    /// computes it alone (the same bits), keeping no statistics. Overwrites <paramref name="output"/>.
    /// </summary>
    /// <param name="q">Queries <c>[n, qStride]</c>, n = Σ lengths; the first C = heads·headDim columns of each row are used.</param>
    /// <param name="qStride">Distance between query rows, at least C.</param>
    /// <param name="k">Keys <c>[n, kvStride]</c>, first kvHeads·headDim columns of each row.</param>
    /// <param name="v">Values <c>[n, kvStride]</c>, first kvHeads·headDim columns of each row.</param>
    /// <param name="kvStride">Distance between key rows and between value rows.</param>
    /// <param name="keyPadding">Padding <c>[n]</c>, nonzero = padding (masked as a key), or empty for none.</param>
    /// <param name="output">Heads concatenated <c>[n, C]</c>.</param>
    /// <param name="lengths">Tokens of each sequence, each at least 1.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="causal">Whether query i of a sequence may only see its keys j ≤ i.</param>
    /// <param name="window">0 for no window; otherwise query i sees only keys with |i − j| ≤ window.</param>
    /// <param name="kvHeads">Key/value heads: 0 (the default) for one per query head; otherwise a divisor of <paramref name="heads"/>.</param>
    /// <param name="scale">Factor of the raw scores; 0 (the default) for 1/√headDim.</param>
    /// <exception cref="ArgumentOutOfRangeException">A length is below 1.</exception>
    public static void FlashForwardSequences(ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        ReadOnlySpan<byte> keyPadding, Span<float> output, ReadOnlySpan<int> lengths, int heads, int headDim, bool causal = false, int window = 0, int kvHeads = 0,
        float scale = 0f)
    {
        long n = SpanChecks.Sequences(lengths, nameof(lengths), out _);
        kvHeads = CheckGeneral(1, 0, 0, heads, headDim, qStride, kvStride, kvHeads);
        SpanChecks.NonNegative(window, nameof(window));
        CheckScale(scale);
        int c = heads * headDim, kvC = kvHeads * headDim;
        SpanChecks.AtLeast(q.Length, StridedLength(n, qStride, c), nameof(q));
        SpanChecks.AtLeast(k.Length, StridedLength(n, kvStride, kvC), nameof(k));
        SpanChecks.AtLeast(v.Length, StridedLength(n, kvStride, kvC), nameof(v));
        SpanChecks.LengthOrEmpty(keyPadding.Length, n, nameof(keyPadding));
        SpanChecks.Length(output.Length, n * c, nameof(output));

        fixed (float* pQ = q, pK = k, pV = v, pOut = output)
        fixed (byte* pPad = keyPadding)
        {
            nint row = 0;
            foreach (int length in lengths)
            {
                var shape = new FlashShape(pQ + row * qStride, qStride, pK + row * kvStride, pV + row * kvStride, kvStride, keyPadding.IsEmpty ? null : pPad + row,
                    1, length, length, heads, headDim, kvHeads, causal, window, Simd.Best, scale);
                FlashForwardCore(in shape, pOut + row * c, null);
                row += length;
            }
        }
    }

    /// <summary>Packed self-attention (<c>[batch, seqLen, 3C]</c> Q | K | V rows) through <see cref="FlashForward(ReadOnlySpan{float}, int, ReadOnlySpan{float}, ReadOnlySpan{float}, int, ReadOnlySpan{byte}, Span{float}, Span{float}, int, int, int, int, int, bool, int, int, float)"/>.</summary>
    /// <param name="qkv">Packed queries, keys and values <c>[batch, seqLen, 3·heads·headDim]</c>.</param>
    /// <param name="output">Heads concatenated <c>[batch, seqLen, heads·headDim]</c>.</param>
    /// <param name="statistics">Per query row <c>[batch, heads, seqLen, 2]</c>.</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="seqLen">Tokens per sequence.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="causal">Whether query t may only see keys at positions ≤ t.</param>
    public static void FlashForward(ReadOnlySpan<float> qkv, Span<float> output, Span<float> statistics, int batch, int seqLen, int heads, int headDim, bool causal)
    {
        CheckSizes(batch, seqLen, heads, headDim);
        int c = heads * headDim;
        SpanChecks.Length(qkv.Length, (long)batch * seqLen * 3 * c, nameof(qkv));
        FlashForward(qkv, 3 * c, qkv.Slice(c), qkv.Slice(2 * c), 3 * c, default, output, statistics, batch, seqLen, seqLen, heads, headDim, causal);
    }

    /// <summary>
    /// Accumulates into <paramref name="dq"/>, <paramref name="dk"/> and <paramref name="dv"/> the gradients of
    /// <see cref="FlashForward(ReadOnlySpan{float}, int, ReadOnlySpan{float}, ReadOnlySpan{float}, int, ReadOnlySpan{byte}, Span{float}, Span{float}, int, int, int, int, int, bool, int, int, float)"/>,
    /// recomputing the probabilities tile by tile from the saved statistics (FlashAttention-2's backward): with
    /// <c>D_i = Σ_c dO[i,c]·O[i,c]</c>, per tile <c>P = exp((Q·Kᵀ − m)/√d)/l</c>, <c>dV += Pᵀ·dO</c>,
    /// <c>dS = P ⊙ (dO·Vᵀ − D)/√d</c>, <c>dQ += dS·K</c>, <c>dK += dSᵀ·Q</c>. The masks are those given to forward and
    /// must be given again. With <paramref name="overwriteDq"/> and <paramref name="overwriteDkv"/> the gradients are
    /// stored instead. Work is split by (sequence, key/value head) group, each group's query heads in order on one thread,
    /// so the results are bit-identical for any thread count.
    /// </summary>
    /// <param name="dOutput">Gradient of the output <c>[batch, queryLen, C]</c>.</param>
    /// <param name="q">The forward queries <c>[batch, queryLen, qStride]</c>.</param>
    /// <param name="qStride">Distance between query rows (and between <paramref name="dq"/> rows).</param>
    /// <param name="k">The forward keys <c>[batch, keyLen, kvStride]</c>.</param>
    /// <param name="v">The forward values <c>[batch, keyLen, kvStride]</c>.</param>
    /// <param name="kvStride">Distance between key/value rows (and between <paramref name="dk"/>/<paramref name="dv"/> rows).</param>
    /// <param name="keyPadding">The key padding given to forward, or empty.</param>
    /// <param name="output">The forward output <c>[batch, queryLen, C]</c>.</param>
    /// <param name="statistics">The statistics forward saved <c>[batch, heads, queryLen, 2]</c>.</param>
    /// <param name="dq">Gradient of the queries, laid out like <paramref name="q"/> (only the first C columns of each row are touched).</param>
    /// <param name="dk">Gradient of the keys, laid out like <paramref name="k"/>.</param>
    /// <param name="dv">Gradient of the values, laid out like <paramref name="v"/>. The three may be slices of one buffer with disjoint columns.</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="queryLen">Queries per sequence.</param>
    /// <param name="keyLen">Keys per sequence.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="causal">As given to forward.</param>
    /// <param name="window">As given to forward.</param>
    /// <param name="overwriteDq">Store the queries' gradient rather than add it (its first contribution).</param>
    /// <param name="overwriteDkv">Store the keys' and values' gradients rather than add them.</param>
    /// <param name="kvHeads">Key/value heads, as given to forward (0 for one per query head).</param>
    /// <param name="scale">As given to forward.</param>
    public static void FlashBackward(ReadOnlySpan<float> dOutput, ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        ReadOnlySpan<byte> keyPadding, ReadOnlySpan<float> output, ReadOnlySpan<float> statistics, Span<float> dq, Span<float> dk, Span<float> dv,
        int batch, int queryLen, int keyLen, int heads, int headDim, bool causal, int window = 0, bool overwriteDq = false, bool overwriteDkv = false, int kvHeads = 0,
        float scale = 0f)
        => FlashBackward(dOutput, q, qStride, k, v, kvStride, keyPadding, output, statistics, dq, dk, dv, batch, queryLen, keyLen, heads, headDim, causal, window,
            overwriteDq, overwriteDkv, kvHeads, Simd.Best, scale);

    /// <summary>The general tiled backward on a chosen instruction-set path.</summary>
    internal static void FlashBackward(ReadOnlySpan<float> dOutput, ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        ReadOnlySpan<byte> keyPadding, ReadOnlySpan<float> output, ReadOnlySpan<float> statistics, Span<float> dq, Span<float> dk, Span<float> dv,
        int batch, int queryLen, int keyLen, int heads, int headDim, bool causal, int window, bool overwriteDq, bool overwriteDkv, int kvHeads, SimdPath path,
        float scale = 0f)
    {
        kvHeads = CheckGeneral(batch, queryLen, keyLen, heads, headDim, qStride, kvStride, kvHeads);
        SpanChecks.NonNegative(window, nameof(window));
        CheckScale(scale);
        int c = heads * headDim;
        long queryRows = StridedLength((long)batch * queryLen, qStride, c), keyRows = StridedLength((long)batch * keyLen, kvStride, kvHeads * headDim);
        SpanChecks.Length(dOutput.Length, (long)batch * queryLen * c, nameof(dOutput));
        SpanChecks.AtLeast(q.Length, queryRows, nameof(q));
        SpanChecks.AtLeast(k.Length, keyRows, nameof(k));
        SpanChecks.AtLeast(v.Length, keyRows, nameof(v));
        SpanChecks.LengthOrEmpty(keyPadding.Length, (long)batch * keyLen, nameof(keyPadding));
        SpanChecks.Length(output.Length, (long)batch * queryLen * c, nameof(output));
        SpanChecks.Length(statistics.Length, FlashStatisticsLength(batch, heads, queryLen), nameof(statistics));
        SpanChecks.AtLeast(dq.Length, queryRows, nameof(dq));
        SpanChecks.AtLeast(dk.Length, keyRows, nameof(dk));
        SpanChecks.AtLeast(dv.Length, keyRows, nameof(dv));

        fixed (float* pDOut = dOutput, pQ = q, pK = k, pV = v, pOut = output, pStats = statistics, pDQ = dq, pDK = dk, pDV = dv)
        fixed (byte* pPad = keyPadding)
        {
            var shape = new FlashShape(pQ, qStride, pK, pV, kvStride, keyPadding.IsEmpty ? null : pPad, batch, queryLen, keyLen, heads, headDim, kvHeads, causal, window, path, scale);
            var grads = new FlashGradients(pDOut, pOut, pStats, pDQ, pDK, pDV, overwriteDq, overwriteDkv);
            if (!FlashBackwardSplit(in shape, in grads))
                FlashBackwardGroups(in shape, in grads, 0, batch * kvHeads);
        }
    }

    /// <summary>Backward of the packed <see cref="FlashForward(ReadOnlySpan{float}, Span{float}, Span{float}, int, int, int, int, bool)"/>: the gradient of the packed Q | K | V input.</summary>
    /// <param name="dOutput">Gradient of the output <c>[batch, seqLen, heads·headDim]</c>.</param>
    /// <param name="qkv">The forward input <c>[batch, seqLen, 3·heads·headDim]</c>.</param>
    /// <param name="output">The forward output <c>[batch, seqLen, heads·headDim]</c>.</param>
    /// <param name="statistics">The statistics forward saved <c>[batch, heads, seqLen, 2]</c>.</param>
    /// <param name="dQkv">Gradient of the input <c>[batch, seqLen, 3·heads·headDim]</c> (accumulated unless <paramref name="overwriteDQkv"/>).</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="seqLen">Tokens per sequence.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="causal">As given to forward.</param>
    /// <param name="overwriteDQkv">Store the gradients rather than add them.</param>
    public static void FlashBackward(ReadOnlySpan<float> dOutput, ReadOnlySpan<float> qkv, ReadOnlySpan<float> output, ReadOnlySpan<float> statistics, Span<float> dQkv,
        int batch, int seqLen, int heads, int headDim, bool causal, bool overwriteDQkv = false)
    {
        CheckSizes(batch, seqLen, heads, headDim);
        int c = heads * headDim;
        SpanChecks.Length(qkv.Length, (long)batch * seqLen * 3 * c, nameof(qkv));
        SpanChecks.Length(dQkv.Length, (long)batch * seqLen * 3 * c, nameof(dQkv));
        FlashBackward(dOutput, qkv, 3 * c, qkv.Slice(c), qkv.Slice(2 * c), 3 * c, default, output, statistics, dQkv, dQkv.Slice(c), dQkv.Slice(2 * c),
            batch, seqLen, seqLen, heads, headDim, causal, 0, overwriteDQkv, overwriteDQkv);
    }

    /// <summary>
    /// The attention probabilities <c>[batch, heads, queryLen, keyLen]</c> that the stored-probabilities kernel keeps,
    /// recomputed from the inputs and the statistics of <see cref="FlashForward(ReadOnlySpan{float}, int, ReadOnlySpan{float}, ReadOnlySpan{float}, int, ReadOnlySpan{byte}, Span{float}, Span{float}, int, int, int, int, int, bool, int, int, float)"/>
    /// (0 where masked): for attention maps asked for after a tiled forward pass. Overwrites <paramref name="probabilities"/>.
    /// </summary>
    /// <param name="q">The forward queries.</param>
    /// <param name="qStride">Distance between query rows.</param>
    /// <param name="k">The forward keys.</param>
    /// <param name="kvStride">Distance between key rows.</param>
    /// <param name="keyPadding">The key padding given to forward, or empty.</param>
    /// <param name="statistics">The statistics forward saved <c>[batch, heads, queryLen, 2]</c>.</param>
    /// <param name="probabilities">The probabilities <c>[batch, heads, queryLen, keyLen]</c>.</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="queryLen">Queries per sequence.</param>
    /// <param name="keyLen">Keys per sequence.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="causal">As given to forward.</param>
    /// <param name="window">As given to forward.</param>
    /// <param name="kvHeads">As given to forward.</param>
    /// <param name="scale">As given to forward.</param>
    public static void FlashProbabilities(ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> k, int kvStride, ReadOnlySpan<byte> keyPadding,
        ReadOnlySpan<float> statistics, Span<float> probabilities, int batch, int queryLen, int keyLen, int heads, int headDim, bool causal, int window = 0, int kvHeads = 0,
        float scale = 0f)
    {
        kvHeads = CheckGeneral(batch, queryLen, keyLen, heads, headDim, qStride, kvStride, kvHeads);
        SpanChecks.NonNegative(window, nameof(window));
        CheckScale(scale);
        SpanChecks.AtLeast(q.Length, StridedLength((long)batch * queryLen, qStride, heads * headDim), nameof(q));
        SpanChecks.AtLeast(k.Length, StridedLength((long)batch * keyLen, kvStride, kvHeads * headDim), nameof(k));
        SpanChecks.LengthOrEmpty(keyPadding.Length, (long)batch * keyLen, nameof(keyPadding));
        SpanChecks.Length(statistics.Length, FlashStatisticsLength(batch, heads, queryLen), nameof(statistics));
        SpanChecks.Length(probabilities.Length, (long)batch * heads * queryLen * keyLen, nameof(probabilities));

        fixed (float* pQ = q, pK = k, pStats = statistics, pProbs = probabilities)
        fixed (byte* pPad = keyPadding)
        {
            SimdPath path = Simd.Best;
            var shape = new FlashShape(pQ, qStride, pK, null, kvStride, keyPadding.IsEmpty ? null : pPad, batch, queryLen, keyLen, heads, headDim, kvHeads, causal, window, path, scale);
            for (int pair = 0; pair < batch * heads; pair++)
            {
                int b = pair / heads, h = pair - b * heads;
                byte* interior = PaddingBounds(shape.Padding(b), keyLen, out int keyStart, out int keyEnd);
                float* probs = pProbs + (nint)pair * queryLen * keyLen;
                float* stats = pStats + (nint)pair * queryLen * FlashStatisticsPerRow;
                new Span<float>(probs, queryLen * keyLen).Clear();
                for (int i0 = 0; i0 < queryLen; i0 += shape.QueryRows)
                {
                    int rows = Math.Min(shape.QueryRows, queryLen - i0);
                    (int blockLo, int blockHi) = shape.TileKeys(i0, rows, keyStart, keyEnd);
                    for (int j0 = blockLo; j0 < blockHi; j0 += FlashKeyColumns)
                    {
                        int cols = Math.Min(FlashKeyColumns, blockHi - j0);
                        float* tile = probs + (nint)i0 * keyLen + j0;
                        // The scores of forward's tiles (the same bits on the portable path, the same to rounding on the AVX-512 one).
                        MatMul.ForwardStrided(shape.Query(b, h) + (nint)i0 * qStride, qStride, shape.Key(b, h) + (nint)j0 * kvStride, kvStride, null, tile, keyLen, rows, headDim, cols, path);
                        for (int r = 0; r < rows; r++)
                            RecomputeRow(in shape, tile + (nint)r * keyLen, i0 + r, j0, cols, keyStart, keyEnd, interior, stats + (nint)(i0 + r) * FlashStatisticsPerRow);
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- shared shape

    /// <summary>The inputs and sizes of one tiled attention call, and where each (sequence, head) finds its rows.</summary>
    private readonly struct FlashShape
    {
        public readonly float* Q, K, V;
        public readonly byte* KeyPadding;
        public readonly int QStride, KvStride, Batch, QueryLen, KeyLen, Heads, HeadDim, KvHeads, Window;
        public readonly bool Causal;
        /// <summary>Query rows per tile: 32, or about the window when it is narrower (at least 4 rows for the kernels).</summary>
        public readonly int QueryRows;
        /// <summary>Query tiles per (sequence, head).</summary>
        public readonly int TilesPerPair;
        public readonly float Scale;
        /// <summary>Vector512: the transposed-tile kernels (Attention.Flash.Avx512.cs); otherwise the general product kernels.</summary>
        public readonly SimdPath Path;

        public FlashShape(float* q, int qStride, float* k, float* v, int kvStride, byte* keyPadding, int batch, int queryLen, int keyLen, int heads, int headDim, int kvHeads, bool causal, int window,
            SimdPath path, float scale)
        {
            Path = path;
            Q = q; QStride = qStride; K = k; V = v; KvStride = kvStride; KeyPadding = keyPadding;
            Batch = batch; QueryLen = queryLen; KeyLen = keyLen; Heads = heads; HeadDim = headDim; KvHeads = kvHeads; Causal = causal; Window = window;
            QueryRows = window > 0 ? Math.Clamp(window & ~3, 4, FlashQueryRows) : FlashQueryRows;
            TilesPerPair = (queryLen + QueryRows - 1) / QueryRows;
            Scale = scale == 0f ? 1f / MathF.Sqrt(headDim) : scale;
        }

        public int ForwardTiles => Batch * Heads * TilesPerPair;
        public int C => Heads * HeadDim;
        public byte* Padding(int b) => KeyPadding == null ? null : KeyPadding + (nint)b * KeyLen;
        public float* Query(int b, int h) => Q + (nint)b * QueryLen * QStride + h * HeadDim;
        public float* Key(int b, int h) => K + (nint)b * KeyLen * KvStride + h / (Heads / KvHeads) * HeadDim;
        public float* Value(int b, int h) => V + (nint)b * KeyLen * KvStride + h / (Heads / KvHeads) * HeadDim;

        /// <summary>Keys some row of the tile of <paramref name="rows"/> queries from <paramref name="i0"/> sees, apart from interior padding.</summary>
        public (int Lo, int Hi) TileKeys(int i0, int rows, int keyStart, int keyEnd)
        {
            int lo = VisibleKeys(i0, keyStart, keyEnd, Causal, Window).Lo;
            int hi = VisibleKeys(i0 + rows - 1, keyStart, keyEnd, Causal, Window).Hi;
            return (lo, Math.Max(lo, hi));
        }
    }

    /// <summary>The gradients side of a tiled backward call.</summary>
    private readonly struct FlashGradients(float* dOutput, float* output, float* statistics, float* dq, float* dk, float* dv, bool clearDq, bool clearDkv)
    {
        public readonly float* DOutput = dOutput, Output = output, Statistics = statistics, DQ = dq, DK = dk, DV = dv;
        public readonly bool ClearDq = clearDq, ClearDkv = clearDkv;
    }

    /// <summary>
    /// Within one tile row of scores (keys <paramref name="j0"/> … + <paramref name="cols"/>), the keys query
    /// <paramref name="i"/> sees: sets the others to 0 and the padded ones inside to −∞, and returns the visible range
    /// relative to the tile (empty when none).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (int Lo, int Hi) MaskTileRow(in FlashShape shape, float* row, int i, int j0, int cols, int keyStart, int keyEnd, byte* interiorPadding)
    {
        (int lo, int hi) = VisibleKeys(i, keyStart, keyEnd, shape.Causal, shape.Window);
        lo = Math.Clamp(lo - j0, 0, cols);
        hi = Math.Clamp(hi - j0, lo, cols);
        Clear(row, 0, lo);
        Clear(row, hi, cols);
        if (interiorPadding != null && hi > lo)
        {
            bool any = false;
            for (int j = lo; j < hi; j++)
            {
                if (interiorPadding[j0 + j] != 0) row[j] = float.NegativeInfinity; // exp(−∞) = 0 exactly
                else any = true;
            }
            if (!any)
            {
                Clear(row, lo, hi);
                return (lo, lo);
            }
        }
        return (lo, hi);
    }

    /// <summary>P = exp((s − m)/√d)/l over one tile row of scores, 0 where masked or when the row saw no key at all.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RecomputeRow(in FlashShape shape, float* row, int i, int j0, int cols, int keyStart, int keyEnd, byte* interiorPadding, float* stats)
    {
        float max = stats[0], sum = stats[1];
        if (sum == 0f)
        {
            Clear(row, 0, cols);
            return;
        }
        (int lo, int hi) = MaskTileRow(in shape, row, i, j0, cols, keyStart, keyEnd, interiorPadding);
        if (hi > lo)
        {
            Span<float> visible = new(row + lo, hi - lo);
            Softmax.ExpShifted(visible, visible, max, shape.Scale);
            TensorPrimitives.Multiply(visible, 1f / sum, visible);
        }
    }

    // ---------------------------------------------------------------- forward core

    /// <summary>Forward of the query tiles <c>[firstTile, endTile)</c>, numbered (sequence, head, tile) in that order.</summary>
    [SkipLocalsInit] // the scratch is written before it is read
    private static void FlashForwardTiles(in FlashShape shape, float* output, float* statistics, int firstTile, int endTile)
    {
        if (shape.Path == SimdPath.Vector512)
        {
            FlashForwardTiles512(in shape, output, statistics, firstTile, endTile);
            return;
        }
        float* scores = stackalloc float[FlashTileFloats];
        float* max = stackalloc float[FlashQueryRows];
        float* sum = stackalloc float[FlashQueryRows];
        SimdPath path = shape.Path;
        int c = shape.C, headDim = shape.HeadDim;
        float scale = shape.Scale;
        int cachedSequence = -1, keyStart = 0, keyEnd = 0;
        byte* interior = null;
        for (int tile = firstTile; tile < endTile; tile++)
        {
            int pair = tile / shape.TilesPerPair, b = pair / shape.Heads, h = pair - b * shape.Heads;
            int i0 = (tile - pair * shape.TilesPerPair) * shape.QueryRows, rows = Math.Min(shape.QueryRows, shape.QueryLen - i0);
            if (b != cachedSequence)
            {
                interior = PaddingBounds(shape.Padding(b), shape.KeyLen, out keyStart, out keyEnd);
                cachedSequence = b;
            }
            float* query = shape.Query(b, h) + (nint)i0 * shape.QStride;
            float* key = shape.Key(b, h), value = shape.Value(b, h);
            float* outRows = output + ((nint)b * shape.QueryLen + i0) * c + h * headDim;    // [rows, headDim], rows C apart
            float* stats = statistics == null ? null : statistics + ((nint)pair * shape.QueryLen + i0) * FlashStatisticsPerRow;
            for (int r = 0; r < rows; r++)
            {
                max[r] = float.NegativeInfinity;
                sum[r] = 0f;
            }

            (int blockLo, int blockHi) = shape.TileKeys(i0, rows, keyStart, keyEnd);
            if (blockHi == blockLo) Simd.ClearBlock(outRows, c, rows, headDim);
            for (int j0 = blockLo; j0 < blockHi; j0 += FlashKeyColumns)
            {
                int cols = Math.Min(FlashKeyColumns, blockHi - j0);
                // QueryKeyScores[r, j] = q_r · k_j for the tile's keys (scaled inside the exponential below).
                MatMul.ForwardStrided(query, shape.QStride, key + (nint)j0 * shape.KvStride, shape.KvStride, null, scores, cols, rows, headDim, cols, path);
                bool first = j0 == blockLo;
                for (int r = 0; r < rows; r++)
                {
                    float* row = scores + (nint)r * cols;
                    (int lo, int hi) = MaskTileRow(in shape, row, i0 + r, j0, cols, keyStart, keyEnd, interior);
                    if (hi == lo) continue; // row of zeros: adds nothing, and the running values stand
                    Span<float> visible = new(row + lo, hi - lo);
                    float newMax = Math.Max(max[r], TensorPrimitives.Max(visible));
                    if (newMax > max[r] && sum[r] > 0f)
                    {
                        // The running sum and output were relative to the old maximum: rescale them to the new one.
                        float correction = Exponential.Exp((max[r] - newMax) * scale);
                        sum[r] *= correction;
                        if (!first)
                        {
                            Span<float> outRow = new(outRows + (nint)r * c, headDim);
                            TensorPrimitives.Multiply(outRow, correction, outRow);
                        }
                    }
                    max[r] = newMax;
                    sum[r] += Softmax.ExpShifted(visible, visible, newMax, scale);
                }
                // out[r, :] (+)= Σ_j P[r, j]·v_j: the tile's first key tile stores, the others add.
                MatMul.AccumulateProduct(scores, cols, 1, value + (nint)j0 * shape.KvStride, shape.KvStride, outRows, c, rows, cols, headDim, path, overwrite: first);
            }
            for (int r = 0; r < rows; r++)
            {
                if (sum[r] > 0f)
                {
                    Span<float> outRow = new(outRows + (nint)r * c, headDim);
                    TensorPrimitives.Multiply(outRow, 1f / sum[r], outRow);
                }
                if (stats == null) continue;
                stats[r * FlashStatisticsPerRow] = max[r];
                stats[r * FlashStatisticsPerRow + 1] = sum[r];
            }
        }
    }

    // ---------------------------------------------------------------- backward core

    /// <summary>
    /// Backward of the (sequence, key/value head) groups <c>b·kvHeads + g</c> in [<paramref name="firstGroup"/>,
    /// <paramref name="endGroup"/>): each group's query heads in order, each head's query tiles in order, each tile's key
    /// tiles in order. A group first clears the columns it is asked to store into.
    /// </summary>
    [SkipLocalsInit] // the scratch is written before it is read
    private static void FlashBackwardGroups(in FlashShape shape, in FlashGradients grads, int firstGroup, int endGroup)
    {
        if (shape.Path == SimdPath.Vector512)
        {
            FlashBackwardGroups512(in shape, in grads, firstGroup, endGroup);
            return;
        }
        float* probs = stackalloc float[FlashTileFloats];
        float* dScores = stackalloc float[FlashTileFloats];
        float* delta = stackalloc float[FlashQueryRows];
        SimdPath path = shape.Path;
        int c = shape.C, headDim = shape.HeadDim, groupSize = shape.Heads / shape.KvHeads;
        int qStride = shape.QStride, kvStride = shape.KvStride;
        float scale = shape.Scale;
        for (int group = firstGroup; group < endGroup; group++)
        {
            ClearGroup(group, grads.DQ, qStride, grads.DK, grads.DV, kvStride, shape.QueryLen, shape.KeyLen, shape.Heads, headDim, shape.KvHeads, grads.ClearDq, grads.ClearDkv);
            int b = group / shape.KvHeads, g = group - b * shape.KvHeads;
            byte* interior = PaddingBounds(shape.Padding(b), shape.KeyLen, out int keyStart, out int keyEnd);
            nint kvOffset = (nint)b * shape.KeyLen * kvStride + g * headDim;
            float* key = shape.K + kvOffset, value = shape.V + kvOffset, dKey = grads.DK + kvOffset, dValue = grads.DV + kvOffset;
            for (int h = g * groupSize; h < (g + 1) * groupSize; h++)
            {
                int pair = b * shape.Heads + h;
                nint qOffset = (nint)b * shape.QueryLen * qStride + h * headDim;
                nint oOffset = (nint)b * shape.QueryLen * c + h * headDim;
                for (int i0 = 0; i0 < shape.QueryLen; i0 += shape.QueryRows)
                {
                    int rows = Math.Min(shape.QueryRows, shape.QueryLen - i0);
                    (int blockLo, int blockHi) = shape.TileKeys(i0, rows, keyStart, keyEnd);
                    if (blockHi == blockLo) continue;
                    float* query = shape.Q + qOffset + (nint)i0 * qStride, dQuery = grads.DQ + qOffset + (nint)i0 * qStride;
                    float* dOut = grads.DOutput + oOffset + (nint)i0 * c, outRows = grads.Output + oOffset + (nint)i0 * c;
                    float* stats = grads.Statistics + ((nint)pair * shape.QueryLen + i0) * FlashStatisticsPerRow;
                    // D_r = dO_r · O_r = Σ_j P[r, j]·dP[r, j], the softmax backward's row term.
                    for (int r = 0; r < rows; r++)
                        delta[r] = TensorPrimitives.Dot(new ReadOnlySpan<float>(dOut + (nint)r * c, headDim), new ReadOnlySpan<float>(outRows + (nint)r * c, headDim));
                    for (int j0 = blockLo; j0 < blockHi; j0 += FlashKeyColumns)
                    {
                        int cols = Math.Min(FlashKeyColumns, blockHi - j0);
                        float* keys = key + (nint)j0 * kvStride, values = value + (nint)j0 * kvStride;
                        // P recomputed: the forward's scores, bit for bit (same tiles), through the saved max and sum.
                        MatMul.ForwardStrided(query, qStride, keys, kvStride, null, probs, cols, rows, headDim, cols, path);
                        for (int r = 0; r < rows; r++)
                            RecomputeRow(in shape, probs + (nint)r * cols, i0 + r, j0, cols, keyStart, keyEnd, interior, stats + (nint)r * FlashStatisticsPerRow);
                        // dV[j, :] += Σ_r P[r, j]·dO[r, :]
                        MatMul.AccumulateProduct(probs, 1, cols, dOut, c, dValue + (nint)j0 * kvStride, kvStride, cols, rows, headDim, path, overwrite: false);
                        // dP[r, j] = dO_r · v_j, then dS = P ⊙ (dP − D)/√d in place; masked entries have P = 0 and become 0.
                        MatMul.ForwardStrided(dOut, c, values, kvStride, null, dScores, cols, rows, headDim, cols, path);
                        for (int r = 0; r < rows; r++)
                            ScoreGradientRow(probs + (nint)r * cols, dScores + (nint)r * cols, cols, delta[r], scale);
                        // dQ[r, :] += Σ_j dS[r, j]·k_j
                        MatMul.AccumulateProduct(dScores, cols, 1, keys, kvStride, dQuery, qStride, rows, cols, headDim, path, overwrite: false);
                        // dK[j, :] += Σ_r dS[r, j]·q_r
                        MatMul.AccumulateProduct(dScores, 1, cols, query, qStride, dKey + (nint)j0 * kvStride, kvStride, cols, rows, headDim, path, overwrite: false);
                    }
                }
            }
        }
    }
}
