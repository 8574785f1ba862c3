using System;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace TransformerGen.Kernels;

/// <summary>
/// Multi-head scaled dot-product self-attention on a packed QKV tensor (the output of one linear layer of width 3C),
/// as PyTorch's <c>nn.MultiheadAttention</c> computes it between its in- and out-projections:
/// <c>out_h = softmax(Q_h·K_hᵀ/√headDim [+ causal mask])·V_h</c>, heads concatenated.
/// </summary>
/// <remarks>
/// <para>
/// Layout: <c>qkv[batch, seqLen, 3C]</c> holds Q | K | V, C = heads·headDim, and head h uses columns
/// <c>h·headDim … (h+1)·headDim − 1</c> within each of Q, K and V. The output is <c>[batch, seqLen, C]</c>.
/// The probabilities <c>[batch, heads, seqLen, seqLen]</c> are kept for backward.
/// </para>
/// <para>
/// Each (sequence, head) is a few small matrix products on strided views of the packed tensors, run by
/// <see cref="MatMul"/>'s register-blocked kernels (a head row is too short, 32–64 floats, for per-row library calls
/// to be anything but call overhead). Causal attention skips the key blocks that no query of a row block sees.
/// </para>
/// </remarks>
public static unsafe class Attention
{
    // Query rows per block in forward: causal attention computes scores only up to the block's last row.
    private const int QueryBlock = 16;

    // Backward keeps the dP/dS rows of a chunk of queries, [rows, seqLen], on the stack: 16 KiB.
    private const int BackwardScratchFloats = 4096;

    /// <summary>
    /// Computes the attention output and saves the attention probabilities. Causal: query t sees keys 0…t, and the
    /// probabilities above the diagonal are written as 0. Overwrites <paramref name="output"/> and <paramref name="probabilities"/>.
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

        float scale = 1f / MathF.Sqrt(headDim);
        int rowStride = 3 * c;
        SimdPath path = Simd.Best;
        fixed (float* pQkv = qkv, pOut = output, pProbs = probabilities)
        {
            for (int b = 0; b < batch; b++)
            {
                for (int h = 0; h < heads; h++)
                {
                    float* query = pQkv + (nint)b * seqLen * rowStride + h * headDim;    // [seqLen, headDim], rows rowStride apart
                    float* key = query + c;
                    float* value = query + 2 * c;
                    float* probs = pProbs + ((nint)b * heads + h) * seqLen * seqLen;   // [seqLen, seqLen]
                    float* outHead = pOut + (nint)b * seqLen * c + h * headDim;       // [seqLen, headDim], rows c apart

                    for (int t0 = 0; t0 < seqLen; t0 += QueryBlock)
                    {
                        int rows = Math.Min(QueryBlock, seqLen - t0);
                        int keys = causal ? t0 + rows : seqLen;
                        // QueryKeyScores[t, s] = q_t · k_s (scaled inside the softmax below).
                        MatMul.ForwardStrided(query + (nint)t0 * rowStride, rowStride, key, rowStride, null, probs + (nint)t0 * seqLen, seqLen, rows, headDim, keys, path);
                        for (int t = t0; t < t0 + rows; t++)
                        {
                            Span<float> row = new(probs + (nint)t * seqLen, seqLen);
                            int visible = causal ? t + 1 : seqLen;
                            Softmax.Row(row.Slice(0, visible), row.Slice(0, visible), scale);
                            row.Slice(visible).Clear();
                            new Span<float>(outHead + (nint)t * c, headDim).Clear();
                        }
                        // out[t, :] = Σ_s P[t, s] · v_s
                        MatMul.AccumulateProduct(probs + (nint)t0 * seqLen, seqLen, 1, value, rowStride, outHead + (nint)t0 * c, c, rows, keys, headDim, path);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Accumulates into <paramref name="dQkv"/> the gradients of <see cref="Forward"/> with respect to Q, K and V.
    /// With P the probabilities, dO the output gradient and dP = dO·Vᵀ:
    /// <c>dV += Pᵀ·dO</c>, <c>dS[t,s] = P[t,s]·(dP[t,s] − Σ_s' P[t,s']·dP[t,s'])/√headDim</c>, <c>dQ += dS·K</c>, <c>dK += dSᵀ·Q</c>.
    /// </summary>
    /// <param name="dOutput">Gradient of the output <c>[batch, seqLen, heads·headDim]</c>.</param>
    /// <param name="qkv">The forward input <c>[batch, seqLen, 3·heads·headDim]</c>.</param>
    /// <param name="probabilities">Probabilities saved by forward <c>[batch, heads, seqLen, seqLen]</c>.</param>
    /// <param name="dQkv">Gradient of the input <c>[batch, seqLen, 3·heads·headDim]</c> (accumulated).</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="seqLen">Tokens per sequence.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="causal">As given to forward.</param>
    [SkipLocalsInit] // the scratch is written before it is read; zeroing 16 KiB per call would be wasted
    public static void Backward(ReadOnlySpan<float> dOutput, ReadOnlySpan<float> qkv, ReadOnlySpan<float> probabilities, Span<float> dQkv, int batch, int seqLen, int heads, int headDim, bool causal)
    {
        Span<float> scratch = stackalloc float[BackwardScratchFloats];
        Backward(dOutput, qkv, probabilities, dQkv, batch, seqLen, heads, headDim, causal, scratch);
    }

    /// <summary>Backward with the dP/dS scratch given: whole query rows of it are used, and with less than one row
    /// (seqLen &gt; scratch length) the row-at-a-time form runs instead. Tests pass small scratches to cover both.</summary>
    internal static void Backward(ReadOnlySpan<float> dOutput, ReadOnlySpan<float> qkv, ReadOnlySpan<float> probabilities, Span<float> dQkv, int batch, int seqLen, int heads, int headDim, bool causal, Span<float> scratch)
    {
        CheckSizes(batch, seqLen, heads, headDim);
        int c = heads * headDim;
        SpanChecks.Length(dOutput.Length, (long)batch * seqLen * c, nameof(dOutput));
        SpanChecks.Length(qkv.Length, (long)batch * seqLen * 3 * c, nameof(qkv));
        SpanChecks.Length(probabilities.Length, (long)batch * heads * seqLen * seqLen, nameof(probabilities));
        SpanChecks.Length(dQkv.Length, (long)batch * seqLen * 3 * c, nameof(dQkv));
        if (seqLen == 0) return;

        int chunk = Math.Min(seqLen, scratch.Length / seqLen);
        if (chunk >= 4) chunk &= ~3; // whole 4-row blocks for the kernels
        if (chunk == 0)
        {
            BackwardRowwise(dOutput, qkv, probabilities, dQkv, batch, seqLen, heads, headDim, causal);
            return;
        }

        float scale = 1f / MathF.Sqrt(headDim);
        int rowStride = 3 * c;
        SimdPath path = Simd.Best;
        fixed (float* pDOut = dOutput, pQkv = qkv, pProbs = probabilities, pDQkv = dQkv, pScratch = scratch)
        {
            for (int b = 0; b < batch; b++)
            {
                for (int h = 0; h < heads; h++)
                {
                    nint headOffset = (nint)b * seqLen * rowStride + h * headDim;
                    float* query = pQkv + headOffset, key = query + c, value = query + 2 * c;
                    float* dQuery = pDQkv + headOffset, dKey = dQuery + c, dValue = dQuery + 2 * c;
                    float* probs = pProbs + ((nint)b * heads + h) * seqLen * seqLen;
                    float* dOut = pDOut + (nint)b * seqLen * c + h * headDim;

                    // dV[s, :] += Σ_t P[t, s]·dO[t, :]; causal P[t, s] is zero for t < s, so those t are skipped.
                    for (int s0 = 0; s0 < seqLen; s0 += QueryBlock)
                    {
                        int rows = Math.Min(QueryBlock, seqLen - s0);
                        int t0 = causal ? s0 : 0;
                        MatMul.AccumulateProduct(probs + (nint)t0 * seqLen + s0, 1, seqLen, dOut + (nint)t0 * c, c, dValue + (nint)s0 * rowStride, rowStride, rows, seqLen - t0, headDim, path);
                    }

                    for (int t0 = 0; t0 < seqLen; t0 += chunk)
                    {
                        int rows = Math.Min(chunk, seqLen - t0);
                        int keys = causal ? t0 + rows : seqLen;
                        float* dScores = pScratch; // [rows, keys]
                        // dP[t, s] = dO_t · v_s
                        MatMul.ForwardStrided(dOut + (nint)t0 * c, c, value, rowStride, null, dScores, keys, rows, headDim, keys, path);
                        for (int r = 0; r < rows; r++)
                        {
                            // dS = P ⊙ (dP − Σ P·dP) / √headDim, in place; masked entries have P = 0 and stay 0.
                            ReadOnlySpan<float> p = new(probs + (nint)(t0 + r) * seqLen, keys);
                            Span<float> d = new(dScores + (nint)r * keys, keys);
                            float weighted = TensorPrimitives.Dot(p, d);
                            TensorPrimitives.Subtract(d, weighted, d);
                            TensorPrimitives.Multiply(d, p, d);
                            TensorPrimitives.Multiply(d, scale, d);
                        }
                        // dQ[t, :] += Σ_s dS[t, s]·k_s
                        MatMul.AccumulateProduct(dScores, keys, 1, key, rowStride, dQuery + (nint)t0 * rowStride, rowStride, rows, keys, headDim, path);
                        // dK[s, :] += Σ_t dS[t, s]·q_t
                        MatMul.AccumulateProduct(dScores, 1, keys, query + (nint)t0 * rowStride, rowStride, dKey, rowStride, keys, rows, headDim, path);
                    }
                }
            }
        }
    }

    // One query row at a time with library calls, needing no scratch; for sequences longer than the stack scratch.
    private static void BackwardRowwise(ReadOnlySpan<float> dOutput, ReadOnlySpan<float> qkv, ReadOnlySpan<float> probabilities, Span<float> dQkv, int batch, int seqLen, int heads, int headDim, bool causal)
    {
        int c = heads * headDim;
        float scale = 1f / MathF.Sqrt(headDim);
        int rowStride = 3 * c;
        for (int b = 0; b < batch; b++)
        {
            int tokens0 = b * seqLen;
            for (int h = 0; h < heads; h++)
            {
                int qOff = h * headDim, kOff = c + h * headDim, vOff = 2 * c + h * headDim;
                for (int t = 0; t < seqLen; t++)
                {
                    ReadOnlySpan<float> probs = probabilities.Slice(((b * heads + h) * seqLen + t) * seqLen, seqLen);
                    ReadOnlySpan<float> dOut = dOutput.Slice((tokens0 + t) * c + qOff, headDim);
                    ReadOnlySpan<float> query = qkv.Slice((tokens0 + t) * rowStride + qOff, headDim);
                    Span<float> dQuery = dQkv.Slice((tokens0 + t) * rowStride + qOff, headDim);
                    int visible = causal ? t + 1 : seqLen;

                    // Σ_s P·dP; each dP = dO·v_s is recomputed in the second loop rather than kept in scratch.
                    float weighted = 0f;
                    for (int s = 0; s < visible; s++)
                        weighted += probs[s] * TensorPrimitives.Dot(dOut, qkv.Slice((tokens0 + s) * rowStride + vOff, headDim));

                    for (int s = 0; s < visible; s++)
                    {
                        int keyRow = (tokens0 + s) * rowStride;
                        ReadOnlySpan<float> value = qkv.Slice(keyRow + vOff, headDim);
                        float p = probs[s];
                        float dScore = p * (TensorPrimitives.Dot(dOut, value) - weighted) * scale;

                        Span<float> dValue = dQkv.Slice(keyRow + vOff, headDim);
                        TensorPrimitives.MultiplyAdd(dOut, p, dValue, dValue);
                        TensorPrimitives.MultiplyAdd(qkv.Slice(keyRow + kOff, headDim), dScore, dQuery, dQuery);
                        Span<float> dKey = dQkv.Slice(keyRow + kOff, headDim);
                        TensorPrimitives.MultiplyAdd(query, dScore, dKey, dKey);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Causal attention of <paramref name="n"/> new tokens of ONE sequence against a key/value cache (inference).
    /// Query i, at position <c>position0 + i</c>, sees keys <c>0 … position0 + i</c>. Overwrites <paramref name="output"/>.
    /// </summary>
    /// <param name="q">Queries <c>[n, qStride]</c>; the first C = heads·headDim columns of each row are used (so a packed QKV row works).</param>
    /// <param name="qStride">Distance between query rows, at least C.</param>
    /// <param name="keyCache">Keys <c>[maxLen, C]</c>, filled for positions <c>0 … position0 + n − 1</c>.</param>
    /// <param name="valueCache">Values <c>[maxLen, C]</c>, filled like <paramref name="keyCache"/>.</param>
    /// <param name="output">Heads concatenated <c>[n, C]</c>.</param>
    /// <param name="scores">Scratch of length at least <c>position0 + n</c>.</param>
    /// <param name="position0">Position of the first new token.</param>
    /// <param name="n">New tokens.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head.</param>
    public static void ForwardCached(ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> keyCache, ReadOnlySpan<float> valueCache, Span<float> output, Span<float> scores, int position0, int n, int heads, int headDim)
    {
        SpanChecks.NonNegative(position0, nameof(position0));
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.Positive(heads, nameof(heads));
        SpanChecks.Positive(headDim, nameof(headDim));
        int c = heads * headDim;
        if (qStride < c) throw new ArgumentOutOfRangeException(nameof(qStride), qStride, $"qStride must be at least heads·headDim = {c}.");
        SpanChecks.Length(output.Length, (long)n * c, nameof(output));
        if (n == 0) return;
        SpanChecks.AtLeast(q.Length, (long)(n - 1) * qStride + c, nameof(q));
        int keys = position0 + n;
        SpanChecks.AtLeast(keyCache.Length, (long)keys * c, nameof(keyCache));
        SpanChecks.AtLeast(valueCache.Length, (long)keys * c, nameof(valueCache));
        SpanChecks.AtLeast(scores.Length, keys, nameof(scores));

        float scale = 1f / MathF.Sqrt(headDim);
        SimdPath path = Simd.Best;
        fixed (float* pQ = q, pKeys = keyCache, pValues = valueCache, pOut = output, pScores = scores)
        {
            for (int i = 0; i < n; i++)
            {
                int visible = position0 + i + 1;
                Span<float> rowScores = new(pScores, visible);
                for (int h = 0; h < heads; h++)
                {
                    int off = h * headDim;
                    float* outRow = pOut + (nint)i * c + off;
                    MatMul.ForwardStrided(pQ + (nint)i * qStride + off, qStride, pKeys + off, c, null, pScores, visible, 1, headDim, visible, path);
                    Softmax.Row(rowScores, rowScores, scale);
                    new Span<float>(outRow, headDim).Clear();
                    MatMul.AccumulateProduct(pScores, visible, 1, pValues + off, c, outRow, c, 1, visible, headDim, path);
                }
            }
        }
    }

    private static void CheckSizes(int batch, int seqLen, int heads, int headDim)
    {
        SpanChecks.NonNegative(batch, nameof(batch));
        SpanChecks.NonNegative(seqLen, nameof(seqLen));
        SpanChecks.Positive(heads, nameof(heads));
        SpanChecks.Positive(headDim, nameof(headDim));
    }
}
