using System;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TransformerGen.Kernels;

/// <summary>
/// Multi-head scaled dot-product attention, as PyTorch's <c>nn.MultiheadAttention</c> computes it between its in- and
/// out-projections: <c>out_h = softmax(Q_h·K_hᵀ/√headDim + mask)·V_h</c>, heads concatenated. Self-attention on a
/// packed Q | K | V tensor, the general form (queries and keys/values from different tensors, key padding, causal and
/// windowed masks) for encoders and cross-attention, and single-sequence inference against cached keys and values.
/// </summary>
/// <remarks>
/// <para>
/// Layout: activations are row-major <c>[rows, channels]</c>; C = heads·headDim, and head h uses columns
/// <c>h·headDim … (h+1)·headDim − 1</c> of every Q, K and V row. Q, K and V rows may be wider than C (a row stride), so
/// they can be column slices of one packed buffer. The output is <c>[batch, queryLen, C]</c>; the probabilities
/// <c>[batch, heads, queryLen, keyLen]</c> are kept for backward. The general and cached forms also take fewer key/value
/// heads than query heads (grouped-query and multi-query attention, <c>kvHeads</c>): K and V rows then hold kvHeads·headDim
/// columns, and query head h uses key/value head <c>h / (heads / kvHeads)</c>.
/// </para>
/// <para>
/// Masks: key j is visible to query i iff it is not padding, <c>!causal || j ≤ i</c>, and
/// <c>window == 0 || |i − j| ≤ window</c>. Apart from padding the visible keys are one range <c>[lo(i), hi(i))</c> whose
/// ends never decrease with i; padding at either end of a sequence is trimmed off that range once per sequence, and
/// padding inside it is masked with −∞ before the softmax (exp(−∞) is exactly 0). A query that sees no key at all gets
/// output 0 and probabilities 0. <c>nn.MultiheadAttention</c>'s explicit softmax gives NaN there, the softmax of an all
/// −∞ row (pytorch/pytorch#40932, #41508); 0 keeps training finite, and since every probability of such a row is 0
/// its backward contributes nothing.
/// </para>
/// <para>
/// Each (sequence, head) is a few small matrix products on strided views, run by <see cref="MatMul"/>'s
/// register-blocked kernels (a head row is too short, 8–64 floats, for per-row library calls to be anything but call
/// overhead). Forward takes blocks of query rows and multiplies only over the keys some row of the block sees, so causal
/// attention skips the keys in the future of a block and windowed attention costs O(window·n·d) (restricted
/// self-attention, Vaswani et al. 2017, "Attention Is All You Need", §4 and Table 1).
/// Backward reads the masks back from the probabilities: an entry that is 0 adds nothing to any gradient
/// (dS = P ⊙ …, dV += Pᵀ·dO), so it needs neither the padding nor the mask flags, and skips each query's leading and
/// trailing zeros the same way.
/// </para>
/// </remarks>
public static unsafe partial class Attention
{
    // Query rows per block in forward: causal attention computes scores only up to the block's last row.
    private const int QueryBlock = 16;

    // Most query rows per backward chunk, and the stack scratch that holds their dP/dS rows [rows, keys]: 16 KiB.
    private const int BackwardChunkRows = 32;
    private const int BackwardScratchFloats = 4096;

    // ---------------------------------------------------------------- packed self-attention (training)

    /// <summary>
    /// Self-attention on packed queries, keys and values: computes the output and saves the attention probabilities.
    /// Causal: query t sees keys 0…t, and the probabilities above the diagonal are written as 0. Overwrites
    /// <paramref name="output"/> and <paramref name="probabilities"/>.
    /// </summary>
    /// <param name="qkv">Packed queries, keys and values <c>[batch, seqLen, 3·heads·headDim]</c>.</param>
    /// <param name="output">Heads concatenated <c>[batch, seqLen, heads·headDim]</c>.</param>
    /// <param name="probabilities">Saved attention probabilities <c>[batch, heads, seqLen, seqLen]</c>.</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="seqLen">Tokens per sequence.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="causal">Whether query t may only see keys at positions ≤ t.</param>
    public static void Forward(ReadOnlySpan<float> qkv, Span<float> output, Span<float> probabilities, int batch, int seqLen, int heads, int headDim, bool causal)
    {
        CheckSizes(batch, seqLen, heads, headDim);
        int c = heads * headDim;
        SpanChecks.Length(qkv.Length, (long)batch * seqLen * 3 * c, nameof(qkv));
        SpanChecks.Length(output.Length, (long)batch * seqLen * c, nameof(output));
        SpanChecks.Length(probabilities.Length, (long)batch * heads * seqLen * seqLen, nameof(probabilities));

        fixed (float* pQkv = qkv, pOut = output, pProbs = probabilities)
            ForwardCore(pQkv, 3 * c, pQkv + c, pQkv + 2 * c, 3 * c, null, pOut, pProbs, saveProbabilities: true, batch, seqLen, seqLen, heads, headDim, heads, 0, causal, window: 0,
                ScoreTerms.Standard(headDim));
    }

    /// <summary>
    /// Accumulates into <paramref name="dQkv"/> the gradients of the packed <see cref="Forward(ReadOnlySpan{float}, Span{float}, Span{float}, int, int, int, int, bool)"/>
    /// with respect to Q, K and V. With P the probabilities, dO the output gradient and dP = dO·Vᵀ:
    /// <c>dV += Pᵀ·dO</c>, <c>dS[t,s] = P[t,s]·(dP[t,s] − Σ_s' P[t,s']·dP[t,s'])/√headDim</c>, <c>dQ += dS·K</c>, <c>dK += dSᵀ·Q</c>.
    /// With <paramref name="overwriteDQkv"/> the gradients are stored instead (each (sequence, head) clears its own
    /// columns before adding, on whichever thread runs it).
    /// </summary>
    /// <param name="dOutput">Gradient of the output <c>[batch, seqLen, heads·headDim]</c>.</param>
    /// <param name="qkv">The forward input <c>[batch, seqLen, 3·heads·headDim]</c>.</param>
    /// <param name="probabilities">Probabilities saved by forward <c>[batch, heads, seqLen, seqLen]</c>.</param>
    /// <param name="dQkv">Gradient of the input <c>[batch, seqLen, 3·heads·headDim]</c> (accumulated unless <paramref name="overwriteDQkv"/>).</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="seqLen">Tokens per sequence.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="causal">As given to forward; not needed, since the probabilities are 0 wherever the mask was.</param>
    /// <param name="overwriteDQkv">Store the gradients rather than add them (the first contribution to the input's gradient).</param>
    [SkipLocalsInit] // the scratch is written before it is read; zeroing 16 KiB per call would be wasted
    public static void Backward(ReadOnlySpan<float> dOutput, ReadOnlySpan<float> qkv, ReadOnlySpan<float> probabilities, Span<float> dQkv, int batch, int seqLen, int heads, int headDim, bool causal, bool overwriteDQkv = false)
    {
        Span<float> scratch = stackalloc float[BackwardScratchFloats];
        Backward(dOutput, qkv, probabilities, dQkv, batch, seqLen, heads, headDim, causal, scratch, overwriteDQkv);
    }

    /// <summary>Packed backward with the dP/dS scratch given: whole query rows of it are used, and with less than one
    /// row (seqLen &gt; scratch length) the row-at-a-time form runs instead. Tests pass small scratches to cover both.</summary>
    internal static void Backward(ReadOnlySpan<float> dOutput, ReadOnlySpan<float> qkv, ReadOnlySpan<float> probabilities, Span<float> dQkv, int batch, int seqLen, int heads, int headDim, bool causal, Span<float> scratch, bool overwriteDQkv = false)
    {
        CheckSizes(batch, seqLen, heads, headDim);
        int c = heads * headDim;
        SpanChecks.Length(dOutput.Length, (long)batch * seqLen * c, nameof(dOutput));
        SpanChecks.Length(qkv.Length, (long)batch * seqLen * 3 * c, nameof(qkv));
        SpanChecks.Length(probabilities.Length, (long)batch * heads * seqLen * seqLen, nameof(probabilities));
        SpanChecks.Length(dQkv.Length, (long)batch * seqLen * 3 * c, nameof(dQkv));

        fixed (float* pDOut = dOutput, pQkv = qkv, pProbs = probabilities, pDQkv = dQkv, pScratch = scratch)
            BackwardSequences(pDOut, pQkv, 3 * c, pQkv + c, pQkv + 2 * c, 3 * c, pProbs, pDQkv, pDQkv + c, pDQkv + 2 * c,
                batch, seqLen, seqLen, heads, headDim, heads, pScratch, scratch.Length, overwriteDQkv, overwriteDQkv, ScoreTerms.Standard(headDim));
    }

    // ---------------------------------------------------------------- general attention (training)

    /// <summary>
    /// Multi-head attention of queries from one tensor over keys and values from possibly another (self-attention with
    /// padding, windowed self-attention, encoder–decoder cross-attention), with as many key/value heads as query heads
    /// or fewer, shared by groups of query heads (grouped-query attention). Key j is visible to query i iff
    /// <paramref name="keyPadding"/> is empty or <c>keyPadding[b·keyLen + j] == 0</c>, and <c>!causal || j ≤ i</c>, and
    /// <c>window == 0 || |i − j| ≤ window</c>. Scores are scaled by 1/√headDim. A query that sees no key gets output 0
    /// and probabilities 0 (PyTorch would give NaN). Overwrites <paramref name="output"/> and
    /// <paramref name="probabilities"/>; with a window only the visible keys are multiplied, O(window·queryLen·headDim)
    /// per head. <paramref name="output"/> must not overlap the inputs.
    /// </summary>
    /// <remarks>
    /// Grouped-query attention (Ainslie et al. 2023, "GQA", §2; multi-query attention with one key/value head, Shazeer
    /// 2019): query head h reads key/value head <c>g = h / (heads / kvHeads)</c>, columns <c>g·headDim … (g+1)·headDim − 1</c>
    /// of each K and V row, as Hugging Face's <c>repeat_kv</c> expands them (contiguous groups of query heads). The K and
    /// V rows then need only Ckv = kvHeads·headDim columns; nothing is copied.
    /// </remarks>
    /// <param name="q">Queries <c>[batch, queryLen, qStride]</c>; the first C = heads·headDim columns of each row are used.</param>
    /// <param name="qStride">Distance between query rows, at least C (3C for a packed Q | K | V tensor).</param>
    /// <param name="k">Keys <c>[batch, keyLen, kvStride]</c>, first Ckv = kvHeads·headDim columns of each row.</param>
    /// <param name="v">Values <c>[batch, keyLen, kvStride]</c>, first Ckv columns of each row (may be a slice of the buffer <paramref name="k"/> is in).</param>
    /// <param name="kvStride">Distance between key rows and between value rows, at least Ckv.</param>
    /// <param name="keyPadding">Key padding <c>[batch, keyLen]</c>, nonzero = padding, or empty for none.</param>
    /// <param name="output">Heads concatenated <c>[batch, queryLen, C]</c>.</param>
    /// <param name="probabilities">Saved attention probabilities <c>[batch, heads, queryLen, keyLen]</c>, 0 where masked.</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="queryLen">Queries per sequence.</param>
    /// <param name="keyLen">Keys (and values) per sequence.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="causal">Whether query i may only see keys j ≤ i (query and key indices aligned at 0, as in self-attention).</param>
    /// <param name="window">0 for no window; otherwise query i sees only keys with |i − j| ≤ window.</param>
    /// <param name="kvHeads">Key/value heads: 0 (the default) for one per query head; otherwise a divisor of <paramref name="heads"/>.</param>
    /// <param name="scale">The factor on the scores: 0 (the default) for 1/√headDim; T5 takes 1.</param>
    /// <param name="positionBias">T5's relative-position bias, or empty for none: <c>[batch, heads, 2·biasSpan − 1]</c>, entry
    /// <c>biasSpan − 1 + (j − i)</c> of a row added to the scaled score of query i and key j (see <see cref="RelativePosition"/>).</param>
    /// <param name="biasSpan">Positions the bias rows cover, at least queryLen and keyLen.</param>
    /// <exception cref="ArgumentException"><paramref name="heads"/> is not a multiple of <paramref name="kvHeads"/>.</exception>
    public static void Forward(ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        ReadOnlySpan<byte> keyPadding, Span<float> output, Span<float> probabilities,
        int batch, int queryLen, int keyLen, int heads, int headDim, bool causal, int window = 0, int kvHeads = 0,
        float scale = 0f, ReadOnlySpan<float> positionBias = default, int biasSpan = 0)
    {
        kvHeads = CheckGeneral(batch, queryLen, keyLen, heads, headDim, qStride, kvStride, kvHeads);
        SpanChecks.NonNegative(window, nameof(window));
        int c = heads * headDim, kvC = kvHeads * headDim;
        SpanChecks.AtLeast(q.Length, StridedLength((long)batch * queryLen, qStride, c), nameof(q));
        SpanChecks.AtLeast(k.Length, StridedLength((long)batch * keyLen, kvStride, kvC), nameof(k));
        SpanChecks.AtLeast(v.Length, StridedLength((long)batch * keyLen, kvStride, kvC), nameof(v));
        SpanChecks.LengthOrEmpty(keyPadding.Length, (long)batch * keyLen, nameof(keyPadding));
        SpanChecks.Length(output.Length, (long)batch * queryLen * c, nameof(output));
        SpanChecks.Length(probabilities.Length, (long)batch * heads * queryLen * keyLen, nameof(probabilities));

        fixed (float* pQ = q, pK = k, pV = v, pOut = output, pProbs = probabilities, pBias = positionBias)
        fixed (byte* pPad = keyPadding)
        {
            ScoreTerms terms = Terms(scale, headDim, pBias, positionBias.Length, biasSpan, batch, heads, queryLen - 1, keyLen, nameof(scale), nameof(positionBias), nameof(biasSpan));
            ForwardCore(pQ, qStride, pK, pV, kvStride, keyPadding.IsEmpty ? null : pPad, pOut, pProbs, saveProbabilities: true, batch, queryLen, keyLen, heads, headDim, kvHeads, 0, causal, window, terms);
        }
    }

    /// <summary>
    /// Accumulates the gradients of the general <see cref="Forward(ReadOnlySpan{float}, int, ReadOnlySpan{float}, ReadOnlySpan{float}, int, ReadOnlySpan{byte}, Span{float}, Span{float}, int, int, int, int, int, bool, int, int, float, ReadOnlySpan{float}, int)"/>
    /// into <paramref name="dq"/>, <paramref name="dk"/> and <paramref name="dv"/> (same formulas as the packed backward),
    /// or stores them there with <paramref name="overwriteDq"/> and <paramref name="overwriteDkv"/>. The masks are read
    /// from <paramref name="probabilities"/> (0 where masked), so none is passed again; a query that saw no key
    /// contributes nothing. With fewer key/value heads than query heads, the gradient of a key/value head is the sum
    /// over the query heads of its group (the backward of <c>repeat_kv</c>), added head by head in order.
    /// </summary>
    /// <param name="dOutput">Gradient of the output <c>[batch, queryLen, C]</c>.</param>
    /// <param name="q">The forward queries <c>[batch, queryLen, qStride]</c>.</param>
    /// <param name="qStride">Distance between query rows (and between <paramref name="dq"/> rows).</param>
    /// <param name="k">The forward keys <c>[batch, keyLen, kvStride]</c>.</param>
    /// <param name="v">The forward values <c>[batch, keyLen, kvStride]</c>.</param>
    /// <param name="kvStride">Distance between key/value rows (and between <paramref name="dk"/>/<paramref name="dv"/> rows).</param>
    /// <param name="probabilities">Probabilities saved by forward <c>[batch, heads, queryLen, keyLen]</c>.</param>
    /// <param name="dq">Gradient of the queries, laid out like <paramref name="q"/> (only the first C columns of each row are touched).</param>
    /// <param name="dk">Gradient of the keys, laid out like <paramref name="k"/>.</param>
    /// <param name="dv">Gradient of the values, laid out like <paramref name="v"/>. The three may be slices of one buffer with disjoint columns.</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="queryLen">Queries per sequence.</param>
    /// <param name="keyLen">Keys per sequence.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="overwriteDq">Store the queries' gradient rather than add it (its first contribution).</param>
    /// <param name="overwriteDkv">Store the keys' and values' gradients rather than add them.</param>
    /// <param name="kvHeads">Key/value heads, as given to forward (0 for one per query head).</param>
    /// <param name="scale">The factor on the scores, as given to forward (0 for 1/√headDim).</param>
    /// <param name="dPositionBias">The gradient of forward's <c>positionBias</c>, <c>[batch, heads, 2·biasSpan − 1]</c>, added
    /// into (never stored: several layers share one bias), or empty when forward had none. Each entry gathers the score
    /// gradients (before scaling) of one (sequence, head) at one key-minus-query distance.</param>
    /// <param name="biasSpan">As given to forward.</param>
    [SkipLocalsInit] // the scratch is written before it is read; zeroing 16 KiB per call would be wasted
    public static void Backward(ReadOnlySpan<float> dOutput, ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        ReadOnlySpan<float> probabilities, Span<float> dq, Span<float> dk, Span<float> dv,
        int batch, int queryLen, int keyLen, int heads, int headDim, bool overwriteDq = false, bool overwriteDkv = false, int kvHeads = 0,
        float scale = 0f, Span<float> dPositionBias = default, int biasSpan = 0)
    {
        Span<float> scratch = stackalloc float[BackwardScratchFloats];
        Backward(dOutput, q, qStride, k, v, kvStride, probabilities, dq, dk, dv, batch, queryLen, keyLen, heads, headDim, scratch, overwriteDq, overwriteDkv, kvHeads,
            scale, dPositionBias, biasSpan);
    }

    /// <summary>General backward with the dP/dS scratch given (less than one row of it: the row-at-a-time form).</summary>
    internal static void Backward(ReadOnlySpan<float> dOutput, ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        ReadOnlySpan<float> probabilities, Span<float> dq, Span<float> dk, Span<float> dv,
        int batch, int queryLen, int keyLen, int heads, int headDim, Span<float> scratch, bool overwriteDq = false, bool overwriteDkv = false, int kvHeads = 0,
        float scale = 0f, Span<float> dPositionBias = default, int biasSpan = 0)
    {
        kvHeads = CheckGeneral(batch, queryLen, keyLen, heads, headDim, qStride, kvStride, kvHeads);
        int c = heads * headDim;
        long queryRows = StridedLength((long)batch * queryLen, qStride, c), keyRows = StridedLength((long)batch * keyLen, kvStride, kvHeads * headDim);
        SpanChecks.Length(dOutput.Length, (long)batch * queryLen * c, nameof(dOutput));
        SpanChecks.AtLeast(q.Length, queryRows, nameof(q));
        SpanChecks.AtLeast(k.Length, keyRows, nameof(k));
        SpanChecks.AtLeast(v.Length, keyRows, nameof(v));
        SpanChecks.Length(probabilities.Length, (long)batch * heads * queryLen * keyLen, nameof(probabilities));
        SpanChecks.AtLeast(dq.Length, queryRows, nameof(dq));
        SpanChecks.AtLeast(dk.Length, keyRows, nameof(dk));
        SpanChecks.AtLeast(dv.Length, keyRows, nameof(dv));

        fixed (float* pDOut = dOutput, pQ = q, pK = k, pV = v, pProbs = probabilities, pDQ = dq, pDK = dk, pDV = dv, pScratch = scratch, pDBias = dPositionBias)
        {
            ScoreTerms terms = Terms(scale, headDim, pDBias, dPositionBias.Length, biasSpan, batch, heads, queryLen - 1, keyLen, nameof(scale), nameof(dPositionBias), nameof(biasSpan));
            BackwardSequences(pDOut, pQ, qStride, pK, pV, kvStride, pProbs, pDQ, pDK, pDV, batch, queryLen, keyLen, heads, headDim, kvHeads, pScratch, scratch.Length, overwriteDq, overwriteDkv, terms);
        }
    }

    // ---------------------------------------------------------------- inference, one sequence

    /// <summary>
    /// Causal attention of <paramref name="n"/> new tokens of ONE sequence against a key/value cache (inference).
    /// Query i, at position <c>position0 + i</c>, sees keys <c>0 … position0 + i</c>, or with a window only the last
    /// <c>window + 1</c> of them. Overwrites <paramref name="output"/>. With grouped-query attention the caches hold only
    /// the key/value heads, and query head h reads cache head <c>h / (heads / kvHeads)</c>.
    /// </summary>
    /// <param name="q">Queries <c>[n, qStride]</c>; the first C = heads·headDim columns of each row are used (so a packed QKV row works).</param>
    /// <param name="qStride">Distance between query rows, at least C.</param>
    /// <param name="keyCache">Keys <c>[maxLen, Ckv]</c>, Ckv = kvHeads·headDim, by absolute position, filled for positions <c>0 … position0 + n − 1</c> (with a window, the positions before the window are not read).</param>
    /// <param name="valueCache">Values <c>[maxLen, Ckv]</c>, filled like <paramref name="keyCache"/>.</param>
    /// <param name="output">Heads concatenated <c>[n, C]</c>.</param>
    /// <param name="scores">Scratch of length at least <c>position0 + n</c>.</param>
    /// <param name="position0">Position of the first new token.</param>
    /// <param name="n">New tokens.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="window">0 for no window; otherwise the query at position p sees only keys at positions ≥ p − window (as the windowed causal <see cref="Forward(ReadOnlySpan{float}, int, ReadOnlySpan{float}, ReadOnlySpan{float}, int, ReadOnlySpan{byte}, Span{float}, Span{float}, int, int, int, int, int, bool, int, int, float, ReadOnlySpan{float}, int)"/>).</param>
    /// <param name="kvHeads">Key/value heads in the caches: 0 (the default) for one per query head; otherwise a divisor of <paramref name="heads"/>.</param>
    /// <param name="scale">The factor on the scores: 0 (the default) for 1/√headDim.</param>
    /// <param name="positionBias">T5's relative-position bias rows <c>[heads, 2·biasSpan − 1]</c> (as the general forward's, for one sequence), or empty.</param>
    /// <param name="biasSpan">Positions the bias rows cover, at least <c>position0 + n</c>.</param>
    /// <exception cref="ArgumentException"><paramref name="heads"/> is not a multiple of <paramref name="kvHeads"/>.</exception>
    public static void ForwardCached(ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> keyCache, ReadOnlySpan<float> valueCache, Span<float> output, Span<float> scores, int position0, int n, int heads, int headDim, int window = 0, int kvHeads = 0,
        float scale = 0f, ReadOnlySpan<float> positionBias = default, int biasSpan = 0)
    {
        SpanChecks.NonNegative(position0, nameof(position0));
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.Positive(heads, nameof(heads));
        SpanChecks.Positive(headDim, nameof(headDim));
        SpanChecks.NonNegative(window, nameof(window));
        kvHeads = KvHeads(kvHeads, heads);
        int c = heads * headDim, kvC = kvHeads * headDim;
        CheckStride(qStride, c, nameof(qStride));
        SpanChecks.Length(output.Length, (long)n * c, nameof(output));
        if (n == 0) return;
        SpanChecks.AtLeast(q.Length, StridedLength(n, qStride, c), nameof(q));
        int keys = position0 + n;
        SpanChecks.AtLeast(keyCache.Length, (long)keys * kvC, nameof(keyCache));
        SpanChecks.AtLeast(valueCache.Length, (long)keys * kvC, nameof(valueCache));
        SpanChecks.AtLeast(scores.Length, keys, nameof(scores));

        // One query row at a time through the one scores row, nothing kept.
        fixed (float* pQ = q, pKeys = keyCache, pValues = valueCache, pOut = output, pScores = scores, pBias = positionBias)
        {
            ScoreTerms terms = Terms(scale, headDim, pBias, positionBias.Length, biasSpan, 1, heads, keys - 1, keys, nameof(scale), nameof(positionBias), nameof(biasSpan));
            ForwardCore(pQ, qStride, pKeys, pValues, kvC, null, pOut, pScores, saveProbabilities: false, 1, n, keys, heads, headDim, kvHeads, position0, causal: true, window, terms);
        }
    }

    /// <summary>
    /// Cross-attention of <paramref name="n"/> queries of ONE sequence over keys and values computed once per source
    /// (inference; e.g. the encoder output through the decoder layer's key and value projections). No causal mask; padded
    /// keys are not seen, and a query that sees no key gets output 0. Overwrites <paramref name="output"/>.
    /// </summary>
    /// <param name="q">Queries <c>[n, qStride]</c>; the first C = heads·headDim columns of each row are used.</param>
    /// <param name="qStride">Distance between query rows, at least C.</param>
    /// <param name="keys">Keys <c>[keyLen, kvStride]</c>, first C columns of each row.</param>
    /// <param name="values">Values <c>[keyLen, kvStride]</c>, first C columns of each row (may be a slice of the buffer <paramref name="keys"/> is in, e.g. packed K | V).</param>
    /// <param name="kvStride">Distance between key rows and between value rows, at least C.</param>
    /// <param name="keyPadding">Key padding <c>[keyLen]</c>, nonzero = padding, or empty for none.</param>
    /// <param name="output">Heads concatenated <c>[n, C]</c>.</param>
    /// <param name="scores">Scratch of length at least <paramref name="keyLen"/>.</param>
    /// <param name="n">Queries.</param>
    /// <param name="keyLen">Keys.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="scale">The factor on the scores: 0 (the default) for 1/√headDim; T5 takes 1.</param>
    public static void ForwardCross(ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int kvStride,
        ReadOnlySpan<byte> keyPadding, Span<float> output, Span<float> scores, int n, int keyLen, int heads, int headDim, float scale = 0f)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.NonNegative(keyLen, nameof(keyLen));
        SpanChecks.Positive(heads, nameof(heads));
        SpanChecks.Positive(headDim, nameof(headDim));
        int c = heads * headDim;
        CheckStride(qStride, c, nameof(qStride));
        CheckStride(kvStride, c, nameof(kvStride));
        SpanChecks.AtLeast(q.Length, StridedLength(n, qStride, c), nameof(q));
        SpanChecks.AtLeast(keys.Length, StridedLength(keyLen, kvStride, c), nameof(keys));
        SpanChecks.AtLeast(values.Length, StridedLength(keyLen, kvStride, c), nameof(values));
        SpanChecks.LengthOrEmpty(keyPadding.Length, keyLen, nameof(keyPadding));
        SpanChecks.Length(output.Length, (long)n * c, nameof(output));
        SpanChecks.AtLeast(scores.Length, keyLen, nameof(scores));

        fixed (float* pQ = q, pKeys = keys, pValues = values, pOut = output, pScores = scores)
        fixed (byte* pPad = keyPadding)
            ForwardCore(pQ, qStride, pKeys, pValues, kvStride, keyPadding.IsEmpty ? null : pPad, pOut, pScores, saveProbabilities: false, 1, n, keyLen, heads, headDim, heads, 0, causal: false, window: 0,
                Terms(scale, headDim, null, 0, 0, 1, heads, n - 1, keyLen, nameof(scale), "", ""));
    }

    // ---------------------------------------------------------------- forward core

    /// <summary>
    /// Attention of every (sequence, head). Query i of a sequence is at position <c>position0 + i</c>. With
    /// <paramref name="saveProbabilities"/>, <paramref name="probabilities"/> is <c>[batch, heads, queryLen, keyLen]</c>,
    /// every entry written (0 where masked), and queries go in blocks; without, it is one scratch row that each query
    /// reuses in turn (inference). Query head h reads key/value head <c>h / (heads / kvHeads)</c>.
    /// </summary>
    /// <remarks>
    /// One loop nest rather than a call per head: with the per-head body in a method of its own, dynamic PGO left the
    /// packed forward 15–25% slower than this form, which measures within a few percent of the earlier packed-only kernel.
    /// </remarks>
    private static void ForwardCore(float* q, int qStride, float* k, float* v, int kvStride, byte* keyPadding, float* output, float* probabilities,
        bool saveProbabilities, int batch, int queryLen, int keyLen, int heads, int headDim, int kvHeads, int position0, bool causal, int window, ScoreTerms terms)
    {
        // Training saves each pair's probabilities in its own block, so pairs can run on different threads; inference
        // shares one scratch row between the heads. Pairs of one key/value group only read the same K and V, so
        // forward splits by query head whatever the grouping.
        if (saveProbabilities && ForwardSplit(q, qStride, k, v, kvStride, keyPadding, output, probabilities, batch, queryLen, keyLen, heads, headDim, kvHeads, causal, window, terms))
            return;
        ForwardPairs(q, qStride, k, v, kvStride, keyPadding, output, probabilities, saveProbabilities, batch, queryLen, keyLen, heads, headDim, kvHeads, position0, causal, window, terms, 0, batch * heads);
    }

    /// <summary><see cref="ForwardCore"/> for the (sequence, head) pairs <c>b·heads + h</c> in [<paramref name="firstPair"/>, <paramref name="endPair"/>).</summary>
    private static void ForwardPairs(float* q, int qStride, float* k, float* v, int kvStride, byte* keyPadding, float* output, float* probabilities,
        bool saveProbabilities, int batch, int queryLen, int keyLen, int heads, int headDim, int kvHeads, int position0, bool causal, int window, ScoreTerms terms,
        int firstPair, int endPair)
    {
        int c = heads * headDim, groupSize = heads / kvHeads;
        // A window narrower than a block would multiply mostly masked scores: blocks of about `window` rows keep the
        // work within (block + 2·window) keys per row, O(window) (at least 4 rows, so the 4-row kernels still apply).
        int blockRows = !saveProbabilities ? 1 : window > 0 ? Math.Clamp(window & ~3, 4, QueryBlock) : QueryBlock;
        int probsStride = saveProbabilities ? keyLen : 0;
        SimdPath path = Simd.Best;
        bool tiled = saveProbabilities && TiledPairApplies(headDim, path);
        byte* interiorPadding = null;
        int keyStart = 0, keyEnd = keyLen;
        for (int pair = firstPair; pair < endPair; pair++)
        {
            int b = pair / heads, h = pair - b * heads;
            // Keys outside [keyStart, keyEnd) are padding; interiorPadding, when not null, marks padded keys inside it.
            if (h == 0 || pair == firstPair)
                interiorPadding = PaddingBounds(keyPadding == null ? null : keyPadding + (nint)b * keyLen, keyLen, out keyStart, out keyEnd);
            int g = h / groupSize;                                             // the key/value head this query head reads
            float* query = q + (nint)b * queryLen * qStride + h * headDim;     // [queryLen, headDim], rows qStride apart
            float* key = k + (nint)b * keyLen * kvStride + g * headDim;        // [keyLen, headDim], rows kvStride apart
            float* value = v + (nint)b * keyLen * kvStride + g * headDim;
            float* outHead = output + (nint)b * queryLen * c + h * headDim;    // [queryLen, headDim], rows C apart
            float* probs = saveProbabilities ? probabilities + ((nint)b * heads + h) * queryLen * keyLen : probabilities; // [queryLen, keyLen]
            if (tiled)
            {
                TiledPair(query, qStride, key, value, kvStride, outHead, c, probs, queryLen, keyLen, headDim, position0, keyStart, keyEnd, interiorPadding, causal, window, terms, pair);
                continue;
            }

            for (int i0 = 0; i0 < queryLen; i0 += blockRows)
            {
                int rows = Math.Min(blockRows, queryLen - i0);
                // Both ends of the visible range never decrease with the query, so the block's keys run from its
                // first row's first key to its last row's last.
                int blockLo = VisibleKeys(position0 + i0, keyStart, keyEnd, causal, window).Lo;
                int blockHi = VisibleKeys(position0 + i0 + rows - 1, keyStart, keyEnd, causal, window).Hi;
                int width = blockHi - blockLo;
                float* blockProbs = probs + (nint)i0 * probsStride;
                // QueryKeyScores[i, j] = q_i · k_j for the block's keys (scaled inside the softmax below).
                if (width > 0)
                    MatMul.ForwardStrided(query + (nint)i0 * qStride, qStride, key + (nint)blockLo * kvStride, kvStride, null, blockProbs + blockLo, probsStride, rows, headDim, width, path);

                for (int r = 0; r < rows; r++)
                {
                    float* row = blockProbs + (nint)r * probsStride;
                    (int lo, int hi) = VisibleKeys(position0 + i0 + r, keyStart, keyEnd, causal, window);
                    MaskedSoftmaxRow(row, lo, hi, interiorPadding, terms.Logits(row, lo, hi, pair, position0 + i0 + r), blockLo, blockHi);
                    if (saveProbabilities)
                    {
                        Clear(row, 0, blockLo);
                        Clear(row, blockHi, keyLen);
                    }
                }
                // out[i, :] = Σ_j P[i, j] · v_j, stored; the probabilities of keys a row does not see are 0, and a
                // block that sees no key at all gets 0.
                if (width > 0)
                    MatMul.AccumulateProduct(blockProbs + blockLo, probsStride, 1, value + (nint)blockLo * kvStride, kvStride, outHead + (nint)i0 * c, c, rows, width, headDim, path, overwrite: true);
                else
                    Simd.ClearBlock(outHead + (nint)i0 * c, c, rows, headDim);
            }
        }
    }

    /// <summary>
    /// One row of probabilities: the softmax of the scaled scores <c>row[lo..hi)</c> with the padded keys inside
    /// (<paramref name="interiorPadding"/>) at 0, and the rest of <c>[from, to)</c> cleared; all of it 0 when no key is
    /// seen (output 0, not softmax(all −∞) = NaN).
    /// </summary>
    private static void MaskedSoftmaxRow(float* row, int lo, int hi, byte* interiorPadding, float scale, int from, int to)
    {
        bool anyVisible = hi > lo;
        if (anyVisible && interiorPadding != null)
        {
            anyVisible = false;
            for (int j = lo; j < hi; j++)
            {
                if (interiorPadding[j] != 0) row[j] = float.NegativeInfinity; // exp(−∞) = 0 exactly
                else anyVisible = true;
            }
        }
        if (anyVisible)
        {
            Span<float> visible = new(row + lo, hi - lo);
            Softmax.Row(visible, visible, scale);
            Clear(row, from, lo);
            Clear(row, hi, to);
        }
        else
        {
            Clear(row, from, to);
        }
    }

    /// <summary>
    /// The keys <c>[Lo, Hi)</c> the query at <paramref name="position"/> sees by the causal and window masks within the
    /// unpadded span <c>[keyStart, keyEnd)</c>; empty as Lo == Hi. Both ends never decrease as the position grows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (int Lo, int Hi) VisibleKeys(int position, int keyStart, int keyEnd, bool causal, int window)
    {
        long lo = keyStart, hi = keyEnd; // long: position + window may pass int.MaxValue
        if (causal) hi = Math.Min(hi, (long)position + 1);
        if (window > 0)
        {
            lo = Math.Max(lo, (long)position - window);
            hi = Math.Min(hi, (long)position + window + 1);
        }
        lo = Math.Min(lo, keyEnd);
        return ((int)lo, (int)Math.Max(lo, hi));
    }

    /// <summary>
    /// The span <c>[keyStart, keyEnd)</c> from the first to the last unpadded key of one sequence (empty when all are
    /// padding); returns <paramref name="padding"/> when padded keys remain inside that span, else null.
    /// </summary>
    private static byte* PaddingBounds(byte* padding, int keyLen, out int keyStart, out int keyEnd)
    {
        keyStart = 0;
        keyEnd = keyLen;
        if (padding == null) return null;
        ReadOnlySpan<byte> pad = new(padding, keyLen);
        keyStart = pad.IndexOf((byte)0);
        if (keyStart < 0)
        {
            keyStart = keyEnd = 0;
            return null;
        }
        keyEnd = pad.LastIndexOf((byte)0) + 1;
        return pad[keyStart..keyEnd].IndexOfAnyExcept((byte)0) >= 0 ? padding : null;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Clear(float* row, int from, int to)
    {
        if (to > from) new Span<float>(row + from, to - from).Clear();
    }

    // ---------------------------------------------------------------- backward core

    // The unit of backward work is a (sequence, key/value head) group: the query heads of a group all add into the same
    // dK and dV columns, so one thread runs the whole group, its heads in order, and every sum has the same order for
    // any thread count. With clearDq (clearDkv), a group first clears its own columns of dq (dk and dv), once, before
    // anything is added: the gradients are then stored rather than added, without a separate pass over the whole
    // tensor on one thread. Without grouping (kvHeads == heads) a group is one (sequence, head) pair.
    private static void BackwardSequences(float* dOutput, float* q, int qStride, float* k, float* v, int kvStride, float* probabilities,
        float* dq, float* dk, float* dv, int batch, int queryLen, int keyLen, int heads, int headDim, int kvHeads, float* scratch, int scratchLength, bool clearDq, bool clearDkv,
        ScoreTerms terms)
    {
        if (queryLen == 0 || keyLen == 0)
        {
            // No products: the gradients asked for are zero.
            for (int group = 0; group < batch * kvHeads; group++)
                ClearGroup(group, dq, qStride, dk, dv, kvStride, queryLen, keyLen, heads, headDim, kvHeads, clearDq, clearDkv);
            return;
        }
        if (BackwardSplit(dOutput, q, qStride, k, v, kvStride, probabilities, dq, dk, dv, batch, queryLen, keyLen, heads, headDim, kvHeads, scratchLength, clearDq, clearDkv, terms))
            return;
        BackwardGroups(dOutput, q, qStride, k, v, kvStride, probabilities, dq, dk, dv, queryLen, keyLen, heads, headDim, kvHeads, scratch, scratchLength, 0, batch * kvHeads, clearDq, clearDkv, terms);
    }

    /// <summary>
    /// Clears the columns of one (sequence, key/value head) group: those of all its query heads in dq
    /// (<paramref name="clearDq"/>), and those of its key/value head in dk and dv (<paramref name="clearDkv"/>).
    /// </summary>
    private static void ClearGroup(int group, float* dq, int qStride, float* dk, float* dv, int kvStride, int queryLen, int keyLen, int heads, int headDim, int kvHeads,
        bool clearDq, bool clearDkv)
    {
        int b = group / kvHeads, g = group - b * kvHeads, groupSize = heads / kvHeads;
        // The group's query heads g·groupSize … are adjacent, so their dq columns are one block.
        if (clearDq) Simd.ClearBlock(dq + (nint)b * queryLen * qStride + g * groupSize * headDim, qStride, queryLen, groupSize * headDim);
        if (clearDkv)
        {
            nint kvOffset = (nint)b * keyLen * kvStride + g * headDim;
            Simd.ClearBlock(dk + kvOffset, kvStride, keyLen, headDim);
            Simd.ClearBlock(dv + kvOffset, kvStride, keyLen, headDim);
        }
    }

    /// <summary>
    /// <see cref="BackwardSequences"/> for the (sequence, key/value head) groups <c>b·kvHeads + g</c> in
    /// [<paramref name="firstGroup"/>, <paramref name="endGroup"/>): each group's query heads in order.
    /// </summary>
    private static void BackwardGroups(float* dOutput, float* q, int qStride, float* k, float* v, int kvStride, float* probabilities,
        float* dq, float* dk, float* dv, int queryLen, int keyLen, int heads, int headDim, int kvHeads, float* scratch, int scratchLength, int firstGroup, int endGroup,
        bool clearDq, bool clearDkv, ScoreTerms terms)
    {
        int c = heads * headDim, groupSize = heads / kvHeads;
        int chunkRows = Math.Min(BackwardChunkRows, scratchLength / keyLen);
        if (chunkRows >= 4) chunkRows &= ~3; // whole 4-row blocks for the kernels
        SimdPath path = Simd.Best;
        for (int group = firstGroup; group < endGroup; group++)
        {
            ClearGroup(group, dq, qStride, dk, dv, kvStride, queryLen, keyLen, heads, headDim, kvHeads, clearDq, clearDkv);
            int b = group / kvHeads, g = group - b * kvHeads;
            nint kvOffset = (nint)b * keyLen * kvStride + g * headDim;
            for (int h = g * groupSize; h < (g + 1) * groupSize; h++)
            {
                nint qOffset = (nint)b * queryLen * qStride + h * headDim;
                float* dOut = dOutput + (nint)b * queryLen * c + h * headDim;
                float* probs = probabilities + ((nint)b * heads + h) * queryLen * keyLen;
                int pair = b * heads + h;
                if (chunkRows == 0)
                    HeadBackwardRowwise(dOut, c, q + qOffset, qStride, k + kvOffset, v + kvOffset, kvStride, probs, dq + qOffset, dk + kvOffset, dv + kvOffset, queryLen, keyLen, headDim, terms, pair);
                else
                    HeadBackward(dOut, c, q + qOffset, qStride, k + kvOffset, v + kvOffset, kvStride, probs, dq + qOffset, dk + kvOffset, dv + kvOffset, queryLen, keyLen, headDim, scratch, chunkRows, path, terms, pair);
            }
        }
    }

    /// <summary>
    /// Backward of one head of one sequence in chunks of query rows, each over the keys with a nonzero probability in
    /// some row of the chunk; the dP/dS rows of a chunk, <c>[rows, keys]</c>, sit in <paramref name="scratch"/>.
    /// </summary>
    private static void HeadBackward(float* dOut, int dOutStride, float* query, int qStride, float* key, float* value, int kvStride, float* probs,
        float* dQuery, float* dKey, float* dValue, int queryLen, int keyLen, int headDim, float* scratch, int chunkRows, SimdPath path, ScoreTerms terms, int pair)
    {
        float scale = terms.Scale;
        // With a bias, dS before scaling is its gradient: computed unscaled, added there, then scaled (the same operations
        // as the scaled form when the scale is 1, T5's).
        bool biasGradient = terms.Bias != null;
        int i0 = 0;
        while (i0 < queryLen)
        {
            // Take rows while at least half of the chunk's [rows, keys] rectangle holds nonzero ranges: a causal chunk
            // always qualifies, a narrow window stops after about 2·window rows.
            int lo = keyLen, hi = 0, i1 = i0;
            long used = 0;
            while (i1 < queryLen && i1 - i0 < chunkRows)
            {
                (int rowLo, int rowHi) = NonzeroRange(probs + (nint)i1 * keyLen, keyLen);
                if (rowHi > rowLo)
                {
                    int newLo = Math.Min(lo, rowLo), newHi = Math.Max(hi, rowHi);
                    if (i1 - i0 >= 4 && (long)(i1 - i0 + 1) * (newHi - newLo) > 2 * (used + rowHi - rowLo)) break;
                    lo = newLo;
                    hi = newHi;
                    used += rowHi - rowLo;
                }
                i1++;
            }
            int rows = i1 - i0, width = hi - lo;
            if (width > 0)
            {
                float* p = probs + (nint)i0 * keyLen + lo;                  // [rows, width], rows keyLen apart
                float* dO = dOut + (nint)i0 * dOutStride;                    // [rows, headDim]
                float* keys = key + (nint)lo * kvStride, values = value + (nint)lo * kvStride;
                float* dScores = scratch;                                   // [rows, width]
                // dV[j, :] += Σ_i P[i, j]·dO[i, :]
                MatMul.AccumulateProduct(p, 1, keyLen, dO, dOutStride, dValue + (nint)lo * kvStride, kvStride, width, rows, headDim, path, overwrite: false);
                // dP[i, j] = dO_i · v_j
                MatMul.ForwardStrided(dO, dOutStride, values, kvStride, null, dScores, width, rows, headDim, width, path);
                for (int r = 0; r < rows; r++)
                {
                    // dS = P ⊙ (dP − Σ P·dP) / √headDim, in place; masked entries have P = 0 and become 0.
                    float* pRow = p + (nint)r * keyLen, d = dScores + (nint)r * width;
                    float weighted = TensorPrimitives.Dot(new ReadOnlySpan<float>(pRow, width), new ReadOnlySpan<float>(d, width));
                    if (!biasGradient)
                    {
                        ScoreGradientRow(pRow, d, width, weighted, scale);
                        continue;
                    }
                    ScoreGradientRow(pRow, d, width, weighted, 1f);
                    terms.AddGradient(d, lo, width, pair, i0 + r);
                    if (scale != 1f) TensorPrimitives.Multiply(new ReadOnlySpan<float>(d, width), scale, new Span<float>(d, width));
                }
                // dQ[i, :] += Σ_j dS[i, j]·k_j
                MatMul.AccumulateProduct(dScores, width, 1, keys, kvStride, dQuery + (nint)i0 * qStride, qStride, rows, width, headDim, path, overwrite: false);
                // dK[j, :] += Σ_i dS[i, j]·q_i
                MatMul.AccumulateProduct(dScores, 1, width, query + (nint)i0 * qStride, qStride, dKey + (nint)lo * kvStride, kvStride, width, rows, headDim, path, overwrite: false);
            }
            i0 = i1;
        }
    }

    // d[j] = (d[j] − weighted)·p[j]·scale in one pass (three library calls over a row of a few dozen keys cost more
    // in calls than in arithmetic); the same operations in the same order for every element, vector or not.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScoreGradientRow(float* p, float* d, int width, float weighted, float scale)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> w = Vector512.Create(weighted), s = Vector512.Create(scale);
            for (; j + 16 <= width; j += 16)
                ((Vector512.Load(d + j) - w) * Vector512.Load(p + j) * s).Store(d + j);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> w = Vector256.Create(weighted), s = Vector256.Create(scale);
            for (; j + 8 <= width; j += 8)
                ((Vector256.Load(d + j) - w) * Vector256.Load(p + j) * s).Store(d + j);
        }
        for (; j < width; j++) d[j] = (d[j] - weighted) * p[j] * scale;
    }

    // One query row at a time with library calls, needing no scratch; for key sequences longer than the stack scratch.
    private static void HeadBackwardRowwise(float* dOutput, int dOutStride, float* q, int qStride, float* k, float* v, int kvStride, float* probabilities,
        float* dq, float* dk, float* dv, int queryLen, int keyLen, int headDim, ScoreTerms terms, int pair)
    {
        float scale = terms.Scale;
        for (int i = 0; i < queryLen; i++)
        {
            float* dBias = terms.Bias == null ? null : terms.RowFor(pair, i);
            float* probs = probabilities + (nint)i * keyLen;
            (int lo, int hi) = NonzeroRange(probs, keyLen);
            ReadOnlySpan<float> dOut = new(dOutput + (nint)i * dOutStride, headDim);
            ReadOnlySpan<float> query = new(q + (nint)i * qStride, headDim);
            Span<float> dQuery = new(dq + (nint)i * qStride, headDim);

            // Σ_j P·dP; each dP = dO·v_j is recomputed in the second loop rather than kept in scratch.
            float weighted = 0f;
            for (int j = lo; j < hi; j++)
                weighted += probs[j] * TensorPrimitives.Dot(dOut, new ReadOnlySpan<float>(v + (nint)j * kvStride, headDim));

            for (int j = lo; j < hi; j++)
            {
                float p = probs[j];
                ReadOnlySpan<float> value = new(v + (nint)j * kvStride, headDim);
                float unscaled = p * (TensorPrimitives.Dot(dOut, value) - weighted);
                if (dBias != null) dBias[j] += unscaled;
                float dScore = unscaled * scale;

                Span<float> dValue = new(dv + (nint)j * kvStride, headDim);
                TensorPrimitives.MultiplyAdd(dOut, p, dValue, dValue);
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(k + (nint)j * kvStride, headDim), dScore, dQuery, dQuery);
                Span<float> dKey = new(dk + (nint)j * kvStride, headDim);
                TensorPrimitives.MultiplyAdd(query, dScore, dKey, dKey);
            }
        }
    }

    /// <summary>From the first to the last nonzero probability of a row, <c>[Lo, Hi)</c>; (0, 0) when all are 0.</summary>
    private static (int Lo, int Hi) NonzeroRange(float* row, int length)
    {
        // 16 at a time while whole vectors are zero (a causal row ends in up to seqLen − 1 of them), then one by one.
        int lo = 0;
        if (Vector512.IsHardwareAccelerated)
            while (lo + 16 <= length && Vector512.EqualsAll(Vector512.Load(row + lo), Vector512<float>.Zero)) lo += 16;
        while (lo < length && row[lo] == 0f) lo++;
        if (lo == length) return (0, 0);
        int hi = length;
        if (Vector512.IsHardwareAccelerated)
            while (hi - 16 >= lo && Vector512.EqualsAll(Vector512.Load(row + hi - 16), Vector512<float>.Zero)) hi -= 16;
        while (row[hi - 1] == 0f) hi--;
        return (lo, hi);
    }

    // ---------------------------------------------------------------- checks

    private static void CheckSizes(int batch, int seqLen, int heads, int headDim)
    {
        SpanChecks.NonNegative(batch, nameof(batch));
        SpanChecks.NonNegative(seqLen, nameof(seqLen));
        SpanChecks.Positive(heads, nameof(heads));
        SpanChecks.Positive(headDim, nameof(headDim));
    }

    /// <summary>Checks the sizes of the general kernels and returns the key/value heads (<paramref name="kvHeads"/>, or heads for 0).</summary>
    private static int CheckGeneral(int batch, int queryLen, int keyLen, int heads, int headDim, int qStride, int kvStride, int kvHeads)
    {
        SpanChecks.NonNegative(batch, nameof(batch));
        SpanChecks.NonNegative(queryLen, nameof(queryLen));
        SpanChecks.NonNegative(keyLen, nameof(keyLen));
        SpanChecks.Positive(heads, nameof(heads));
        SpanChecks.Positive(headDim, nameof(headDim));
        kvHeads = KvHeads(kvHeads, heads);
        CheckStride(qStride, heads * headDim, nameof(qStride));
        CheckStride(kvStride, kvHeads * headDim, nameof(kvStride), "kvHeads·headDim");
        return kvHeads;
    }

    /// <summary>The key/value heads: <paramref name="heads"/> for 0, else <paramref name="kvHeads"/>, which must divide it.</summary>
    private static int KvHeads(int kvHeads, int heads)
    {
        if (kvHeads == 0) return heads;
        SpanChecks.Positive(kvHeads, nameof(kvHeads));
        if (heads % kvHeads != 0)
            throw new ArgumentException($"heads = {heads} is not a multiple of kvHeads = {kvHeads}: each key/value head must serve the same number of query heads.", nameof(kvHeads));
        return kvHeads;
    }

    private static void CheckStride(int stride, int c, string name, string what = "heads·headDim")
    {
        if (stride < c) throw new ArgumentOutOfRangeException(name, stride, $"{name} must be at least {what} = {c}.");
    }

    // Elements a [rows, stride] view needs when only the first c columns of each row are read: the last row may end early.
    private static long StridedLength(long rows, int stride, int c) => rows == 0 ? 0 : (rows - 1) * stride + c;
}
