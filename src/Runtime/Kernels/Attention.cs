using System;
using System.Numerics.Tensors;

namespace TransformerGen.Kernels;

/// <summary>
/// Multi-head scaled dot-product self-attention on a packed QKV tensor (the output of one linear layer of width 3C),
/// as PyTorch's <c>nn.MultiheadAttention</c> computes it between its in- and out-projections:
/// <c>out_h = softmax(Q_h·K_hᵀ/√headDim [+ causal mask])·V_h</c>, heads concatenated.
/// </summary>
/// <remarks>
/// Layout: <c>qkv[batch, seqLen, 3C]</c> holds Q | K | V, C = heads·headDim, and head h uses columns
/// <c>h·headDim … (h+1)·headDim − 1</c> within each of Q, K and V. The output is <c>[batch, seqLen, C]</c>.
/// Written plainly (one query row at a time, TensorPrimitives for the dot products and the weighted sums); the
/// probabilities <c>[batch, heads, seqLen, seqLen]</c> are kept for backward.
/// </remarks>
public static class Attention
{
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
        for (int b = 0; b < batch; b++)
        {
            int tokens0 = b * seqLen;
            for (int h = 0; h < heads; h++)
            {
                int qOff = h * headDim, kOff = c + h * headDim, vOff = 2 * c + h * headDim;
                for (int t = 0; t < seqLen; t++)
                {
                    ReadOnlySpan<float> query = qkv.Slice((tokens0 + t) * rowStride + qOff, headDim);
                    Span<float> probs = probabilities.Slice(((b * heads + h) * seqLen + t) * seqLen, seqLen);
                    int visible = causal ? t + 1 : seqLen;

                    // QueryKeyScores for the visible keys, then softmax in place.
                    Span<float> scores = probs.Slice(0, visible);
                    for (int s = 0; s < visible; s++)
                        scores[s] = TensorPrimitives.Dot(query, qkv.Slice((tokens0 + s) * rowStride + kOff, headDim)) * scale;
                    Softmax.Row(scores, scores);
                    probs.Slice(visible).Clear();

                    // output row = Σ_s p_s · v_s
                    Span<float> outRow = output.Slice((tokens0 + t) * c + qOff, headDim);
                    TensorPrimitives.Multiply(qkv.Slice(tokens0 * rowStride + vOff, headDim), scores[0], outRow);
                    for (int s = 1; s < visible; s++)
                        TensorPrimitives.MultiplyAdd(qkv.Slice((tokens0 + s) * rowStride + vOff, headDim), scores[s], outRow, outRow);
                }
            }
        }
    }

    /// <summary>
    /// Accumulates into <paramref name="dQkv"/> the gradients of <see cref="Forward"/> with respect to Q, K and V.
    /// With P the probabilities, dO the output gradient and dP = dO·Vᵀ, per query row t:
    /// <c>dV_s += P[t,s]·dO_t</c>, <c>dS[t,s] = P[t,s]·(dP[t,s] − Σ_s' P[t,s']·dP[t,s'])</c>,
    /// <c>dQ_t += dS[t,s]·K_s/√headDim</c>, <c>dK_s += dS[t,s]·Q_t/√headDim</c>.
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
    public static void Backward(ReadOnlySpan<float> dOutput, ReadOnlySpan<float> qkv, ReadOnlySpan<float> probabilities, Span<float> dQkv, int batch, int seqLen, int heads, int headDim, bool causal)
    {
        CheckSizes(batch, seqLen, heads, headDim);
        int c = heads * headDim;
        SpanChecks.Length(dOutput.Length, (long)batch * seqLen * c, nameof(dOutput));
        SpanChecks.Length(qkv.Length, (long)batch * seqLen * 3 * c, nameof(qkv));
        SpanChecks.Length(probabilities.Length, (long)batch * heads * seqLen * seqLen, nameof(probabilities));
        SpanChecks.Length(dQkv.Length, (long)batch * seqLen * 3 * c, nameof(dQkv));

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

                    // Σ_s P·dP. Each dP = dO·v_s is recomputed in the second loop instead of being kept in a
                    // scratch row, which would need an allocation or an unbounded stackalloc.
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
        for (int i = 0; i < n; i++)
        {
            int visible = position0 + i + 1;
            Span<float> rowScores = scores.Slice(0, visible);
            for (int h = 0; h < heads; h++)
            {
                int off = h * headDim;
                ReadOnlySpan<float> query = q.Slice(i * qStride + off, headDim);
                for (int s = 0; s < visible; s++)
                    rowScores[s] = TensorPrimitives.Dot(query, keyCache.Slice(s * c + off, headDim)) * scale;
                Softmax.Row(rowScores, rowScores);

                Span<float> outRow = output.Slice(i * c + off, headDim);
                TensorPrimitives.Multiply(valueCache.Slice(off, headDim), rowScores[0], outRow);
                for (int s = 1; s < visible; s++)
                    TensorPrimitives.MultiplyAdd(valueCache.Slice(s * c + off, headDim), rowScores[s], outRow, outRow);
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
