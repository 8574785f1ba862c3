using System;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TransformerGen.Kernels;

/// <summary>
/// Position information: absolute positions added to the embeddings (the paper's sinusoids, or a learned table),
/// and rotary position embedding applied to queries and keys, in two pairings: RoFormer's interleaved pairs
/// (2i, 2i+1) (<see cref="RotaryForward(Span{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, int, int, int, int)"/>) and the half-split pairs (j, j + headDim/2) of Hugging Face's Llama-family
/// models (<see cref="RotaryHalfForward(Span{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, int, int, int, int)"/>).
/// </summary>
public static class Positional
{
    /// <summary>
    /// Fills the sinusoidal table of "Attention Is All You Need" (Vaswani et al. 2017, §3.5), <c>[seqLen, c]</c>:
    /// <c>PE(pos, 2i) = sin(pos / 10000^(2i/c))</c>, <c>PE(pos, 2i+1) = cos(pos / 10000^(2i/c))</c>, computed in double.
    /// An odd <paramref name="c"/> ends with a sine column.
    /// </summary>
    /// <param name="table">The table <c>[seqLen, c]</c>, overwritten.</param>
    /// <param name="seqLen">Positions.</param>
    /// <param name="c">Channels.</param>
    public static void SinusoidalTable(Span<float> table, int seqLen, int c)
    {
        SpanChecks.NonNegative(seqLen, nameof(seqLen));
        SpanChecks.NonNegative(c, nameof(c));
        SpanChecks.Length(table.Length, (long)seqLen * c, nameof(table));
        for (int pos = 0; pos < seqLen; pos++)
        {
            Span<float> row = table.Slice(pos * c, c);
            for (int j = 0; j < c; j += 2)
            {
                double angle = pos / Math.Pow(10000.0, (double)j / c);
                row[j] = (float)Math.Sin(angle);
                if (j + 1 < c) row[j + 1] = (float)Math.Cos(angle);
            }
        }
    }

    /// <summary>
    /// Fills the sinusoidal table of Marian (transformers' <c>MarianSinusoidalPositionalEmbedding</c>), <c>[seqLen, c]</c> for
    /// an even <paramref name="c"/>: the paper's frequencies, not interleaved: <c>PE(pos, i) = sin(pos / 10000^(2i/c))</c> and
    /// <c>PE(pos, c/2 + i) = cos(pos / 10000^(2i/c))</c> for <c>i &lt; c/2</c>, computed in double.
    /// </summary>
    /// <param name="table">The table <c>[seqLen, c]</c>, overwritten.</param>
    /// <param name="seqLen">Positions.</param>
    /// <param name="c">Channels, even.</param>
    public static void SinusoidalSplitTable(Span<float> table, int seqLen, int c)
    {
        SpanChecks.NonNegative(seqLen, nameof(seqLen));
        SpanChecks.NonNegative(c, nameof(c));
        if (c % 2 != 0) throw new ArgumentException($"the split sinusoidal table needs an even width, got {c}", nameof(c));
        SpanChecks.Length(table.Length, (long)seqLen * c, nameof(table));
        int half = c / 2;
        for (int pos = 0; pos < seqLen; pos++)
        {
            Span<float> row = table.Slice(pos * c, c);
            for (int i = 0; i < half; i++)
            {
                double angle = pos / Math.Pow(10000.0, 2.0 * i / c);
                row[i] = (float)Math.Sin(angle);
                row[half + i] = (float)Math.Cos(angle);
            }
        }
    }

    /// <summary>
    /// Fills fairseq's sinusoidal table (tensor2tensor's, which transformers' <c>M2M100SinusoidalPositionalEmbedding</c>
    /// keeps for M2M100 and NLLB), <c>[seqLen, c]</c>, position p in row <c>p − firstPosition</c>: with h = c/2 and
    /// <c>ω_i = exp(−i·ln(10000)/(h − 1))</c>, <c>PE(pos, i) = sin(pos·ω_i)</c> and <c>PE(pos, h + i) = cos(pos·ω_i)</c> for
    /// <c>i &lt; h</c>, and a last column of zeros when c is odd. Computed in float32 in PyTorch's steps (the frequencies,
    /// the products and the sines all rounded to float), so that each value is transformers' own up to the rounding of
    /// <see cref="MathF.Exp"/>, <see cref="MathF.Sin"/> and <see cref="MathF.Cos"/> against libtorch's (at NLLB's 1024
    /// channels and 200 positions, 4.8% of the values differ, by at most 3.8e-6: tests/Reference.Tests, HfM2M100ModelTests).
    /// </summary>
    /// <param name="table">The table <c>[seqLen, c]</c>, overwritten.</param>
    /// <param name="seqLen">Positions.</param>
    /// <param name="c">Channels, at least 4 (the spacing divides by c/2 − 1).</param>
    /// <param name="firstPosition">The position of row 0: <c>pad_token_id + 1</c> in M2M100, whose positions count from there.</param>
    public static void SinusoidalFairseqTable(Span<float> table, int seqLen, int c, int firstPosition)
    {
        SpanChecks.NonNegative(seqLen, nameof(seqLen));
        SpanChecks.NonNegative(firstPosition, nameof(firstPosition));
        if (c < 4) throw new ArgumentOutOfRangeException(nameof(c), c, "fairseq's sinusoids need at least 4 channels (they divide by c/2 − 1)");
        SpanChecks.Length(table.Length, (long)seqLen * c, nameof(table));
        int half = c / 2;
        float step = (float)-(Math.Log(10000.0) / (half - 1));
        for (int pos = 0; pos < seqLen; pos++)
        {
            Span<float> row = table.Slice(pos * c, c);
            float position = firstPosition + pos;
            for (int i = 0; i < half; i++)
            {
                float angle = position * MathF.Exp(i * step);
                row[i] = MathF.Sin(angle);
                row[half + i] = MathF.Cos(angle);
            }
            if (c % 2 != 0) row[c - 1] = 0f;
        }
    }

    /// <summary>
    /// <c>x[b, t, :] += table[position0 + t, :]</c> for every sequence b: adds absolute positions, sinusoidal or learned.
    /// </summary>
    /// <param name="x">Embeddings <c>[batch, seqLen, c]</c>, updated in place.</param>
    /// <param name="table">Position table <c>[maxLen, c]</c> with <c>maxLen ≥ position0 + seqLen</c>.</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="seqLen">Tokens per sequence.</param>
    /// <param name="c">Channels.</param>
    /// <param name="position0">Position of the first token (non-zero when generating with a cache).</param>
    public static void Add(Span<float> x, ReadOnlySpan<float> table, int batch, int seqLen, int c, int position0 = 0)
    {
        SpanChecks.NonNegative(batch, nameof(batch));
        SpanChecks.NonNegative(seqLen, nameof(seqLen));
        SpanChecks.Positive(c, nameof(c));
        SpanChecks.NonNegative(position0, nameof(position0));
        SpanChecks.Length(x.Length, (long)batch * seqLen * c, nameof(x));
        CheckTable(table.Length, (long)(position0 + seqLen) * c, c, nameof(table));
        ReadOnlySpan<float> rows = table.Slice(position0 * c, seqLen * c);
        for (int b = 0; b < batch; b++)
        {
            Span<float> sequence = x.Slice(b * seqLen * c, seqLen * c);
            TensorPrimitives.Add(sequence, rows, sequence);
        }
    }

    /// <summary>
    /// <see cref="Add(Span{float}, ReadOnlySpan{float}, int, int, int, int)"/> for sequences of different lengths laid end
    /// to end: the <c>lengths[s]</c> rows of sequence s get positions <c>positions[s]</c>, <c>positions[s] + 1</c>, … (from 0
    /// when <paramref name="positions"/> is empty; later positions when the sequences continue cached ones).
    /// </summary>
    /// <param name="x">Embeddings <c>[Σ lengths, c]</c>, updated in place.</param>
    /// <param name="table">Position table <c>[maxLen, c]</c>, maxLen at least the last position of every sequence plus one.</param>
    /// <param name="lengths">Tokens of each sequence, each at least 1.</param>
    /// <param name="c">Channels.</param>
    /// <param name="positions">The position of each sequence's first row, or empty for 0.</param>
    public static void Add(Span<float> x, ReadOnlySpan<float> table, ReadOnlySpan<int> lengths, int c, ReadOnlySpan<int> positions = default)
    {
        SpanChecks.Positive(c, nameof(c));
        SpanChecks.Length(x.Length, SpanChecks.Sequences(lengths, nameof(lengths), out _) * c, nameof(x));
        SpanChecks.LengthOrEmpty(positions.Length, lengths.Length, nameof(positions));
        int row = 0;
        for (int s = 0; s < lengths.Length; s++)
        {
            Add(x.Slice(row * c, lengths[s] * c), table, 1, lengths[s], c, positions.IsEmpty ? 0 : positions[s]);
            row += lengths[s];
        }
    }

    /// <summary>
    /// Accumulates <c>dTable[t, :] += Σ_b dx[b, t, :]</c>, the gradient of a learned position table used from position 0.
    /// </summary>
    /// <param name="dx">Gradient flowing into the sum <c>[batch, seqLen, c]</c>.</param>
    /// <param name="dTable">Gradient of the table <c>[maxLen, c]</c> with <c>maxLen ≥ seqLen</c> (accumulated).</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="seqLen">Tokens per sequence.</param>
    /// <param name="c">Channels.</param>
    public static void AddBackward(ReadOnlySpan<float> dx, Span<float> dTable, int batch, int seqLen, int c)
    {
        SpanChecks.NonNegative(batch, nameof(batch));
        SpanChecks.NonNegative(seqLen, nameof(seqLen));
        SpanChecks.Positive(c, nameof(c));
        SpanChecks.Length(dx.Length, (long)batch * seqLen * c, nameof(dx));
        CheckTable(dTable.Length, (long)seqLen * c, c, nameof(dTable));
        Span<float> rows = dTable.Slice(0, seqLen * c);
        for (int b = 0; b < batch; b++)
            TensorPrimitives.Add(rows, dx.Slice(b * seqLen * c, seqLen * c), rows);
    }

    /// <summary>
    /// Fills the rotary tables of RoFormer (Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary Position
    /// Embedding", eq. 15): <c>cos[p, i] = cos(p·θ_i)</c>, <c>sin[p, i] = sin(p·θ_i)</c>, θ_i = 10000^(−2i/headDim),
    /// computed in double.
    /// </summary>
    /// <param name="cos">Cosines <c>[maxLen, headDim/2]</c>, overwritten.</param>
    /// <param name="sin">Sines <c>[maxLen, headDim/2]</c>, overwritten.</param>
    /// <param name="maxLen">Positions.</param>
    /// <param name="headDim">Channels per head; must be even.</param>
    public static void RotaryTables(Span<float> cos, Span<float> sin, int maxLen, int headDim)
    {
        SpanChecks.NonNegative(maxLen, nameof(maxLen));
        CheckHeadDim(headDim);
        int half = headDim / 2;
        SpanChecks.Length(cos.Length, (long)maxLen * half, nameof(cos));
        SpanChecks.Length(sin.Length, (long)maxLen * half, nameof(sin));
        for (int i = 0; i < half; i++)
        {
            double theta = Math.Pow(10000.0, -2.0 * i / headDim);
            for (int p = 0; p < maxLen; p++)
            {
                double angle = p * theta;
                cos[p * half + i] = (float)Math.Cos(angle);
                sin[p * half + i] = (float)Math.Sin(angle);
            }
        }
    }

    /// <summary>
    /// Rotates, in place, the interleaved pairs (2i, 2i+1) of every head of Q and K (not V) in
    /// <c>qkv[batch, seqLen, rowStride]</c> by the angle of their position:
    /// <c>(a, b) → (a·cos − b·sin, a·sin + b·cos)</c>. Q is at columns [0, C), K at [C, 2C), C = heads·headDim;
    /// token t of each sequence is at position <c>position0 + t</c>.
    /// </summary>
    /// <param name="qkv">Packed rows <c>[batch, seqLen, rowStride]</c>, updated in place.</param>
    /// <param name="cos">Cosine table <c>[maxLen, headDim/2]</c> from <see cref="RotaryTables(Span{float}, Span{float}, int, int)"/>, maxLen ≥ position0 + seqLen.</param>
    /// <param name="sin">Sine table, same shape.</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="seqLen">Tokens per sequence.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head; even.</param>
    /// <param name="rowStride">Floats per token row, at least 2C (3C for a packed QKV tensor).</param>
    /// <param name="position0">Position of the first token.</param>
    public static void RotaryForward(Span<float> qkv, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int batch, int seqLen, int heads, int headDim, int rowStride, int position0 = 0)
        => Rotate(qkv, cos, sin, batch, seqLen, heads, headDim, rowStride, position0, 1f);

    /// <summary>
    /// <see cref="RotaryForward(Span{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, int, int, int, int)"/> for
    /// sequences of different lengths laid end to end: the rows of sequence s are at positions <c>positions[s]</c>,
    /// <c>positions[s] + 1</c>, … (from 0 when <paramref name="positions"/> is empty).
    /// </summary>
    /// <param name="qkv">Packed rows <c>[Σ lengths, rowStride]</c>, updated in place.</param>
    /// <param name="cos">Cosine table <c>[maxLen, headDim/2]</c>, maxLen at least the last position of every sequence plus one.</param>
    /// <param name="sin">Sine table, same shape.</param>
    /// <param name="lengths">Tokens of each sequence, each at least 1.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head; even.</param>
    /// <param name="rowStride">Floats per token row, at least 2C.</param>
    /// <param name="positions">The position of each sequence's first row, or empty for 0.</param>
    public static void RotaryForward(Span<float> qkv, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, ReadOnlySpan<int> lengths, int heads, int headDim, int rowStride,
        ReadOnlySpan<int> positions = default)
    {
        SpanChecks.Length(qkv.Length, SpanChecks.Sequences(lengths, nameof(lengths), out _) * rowStride, nameof(qkv));
        SpanChecks.LengthOrEmpty(positions.Length, lengths.Length, nameof(positions));
        int row = 0;
        for (int s = 0; s < lengths.Length; s++)
        {
            Rotate(qkv.Slice(row * rowStride, lengths[s] * rowStride), cos, sin, 1, lengths[s], heads, headDim, rowStride, positions.IsEmpty ? 0 : positions[s], 1f);
            row += lengths[s];
        }
    }

    /// <summary>
    /// The backward of <see cref="RotaryForward(Span{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, int, int, int, int)"/> (positions from 0). The rotation is orthogonal, so its gradient is
    /// the rotation by the opposite angle: on entry <paramref name="dQkv"/> holds the gradient with respect to the
    /// rotated Q and K, on exit with respect to the unrotated ones. This is the one kernel that transforms a gradient
    /// IN PLACE instead of accumulating (+=) into a separate buffer; the V columns (and any columns past 2C) are untouched.
    /// </summary>
    /// <param name="dQkv">Gradient rows <c>[batch, seqLen, rowStride]</c>, updated in place.</param>
    /// <param name="cos">Cosine table <c>[maxLen, headDim/2]</c>, maxLen ≥ seqLen.</param>
    /// <param name="sin">Sine table, same shape.</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="seqLen">Tokens per sequence.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Channels per head; even.</param>
    /// <param name="rowStride">Floats per token row, at least 2C.</param>
    public static void RotaryBackward(Span<float> dQkv, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int batch, int seqLen, int heads, int headDim, int rowStride)
        => Rotate(dQkv, cos, sin, batch, seqLen, heads, headDim, rowStride, 0, -1f);

    // direction = +1 rotates by +angle, −1 by −angle (sin negated).
    private static void Rotate(Span<float> qkv, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int batch, int seqLen, int heads, int headDim, int rowStride, int position0, float direction)
    {
        SpanChecks.NonNegative(batch, nameof(batch));
        SpanChecks.NonNegative(seqLen, nameof(seqLen));
        SpanChecks.Positive(heads, nameof(heads));
        CheckHeadDim(headDim);
        SpanChecks.NonNegative(position0, nameof(position0));
        int c = heads * headDim, half = headDim / 2;
        if (rowStride < 2 * c) throw new ArgumentOutOfRangeException(nameof(rowStride), rowStride, $"rowStride must be at least 2·heads·headDim = {2 * c}.");
        SpanChecks.Length(qkv.Length, (long)batch * seqLen * rowStride, direction > 0 ? "qkv" : "dQkv");
        CheckTable(cos.Length, (long)(position0 + seqLen) * half, half, nameof(cos));
        CheckTable(sin.Length, (long)(position0 + seqLen) * half, half, nameof(sin));

        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < seqLen; t++)
            {
                int p = position0 + t;
                ReadOnlySpan<float> cosRow = cos.Slice(p * half, half), sinRow = sin.Slice(p * half, half);
                // Q and K of all heads are 2·heads consecutive blocks of headDim floats.
                Span<float> queriesAndKeys = qkv.Slice((b * seqLen + t) * rowStride, 2 * c);
                for (int block = 0; block < 2 * heads; block++)
                {
                    Span<float> head = queriesAndKeys.Slice(block * headDim, headDim);
                    for (int i = 0; i < half; i++)
                    {
                        float cs = cosRow[i], sn = direction * sinRow[i];
                        float a = head[2 * i], e = head[2 * i + 1];
                        head[2 * i] = a * cs - e * sn;
                        head[2 * i + 1] = a * sn + e * cs;
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- half-split rotary (Llama, Qwen2, Mistral, …)

    /// <summary>
    /// Fills the rotary tables as Hugging Face transformers computes them for Llama-family models (default RoPE,
    /// <c>LlamaRotaryEmbedding</c>), all in float32 so that they match its tables to the last bit or two:
    /// <c>inv_freq[j] = 1 / theta^((2j as float) / headDim)</c>, <c>angle = (float)p · inv_freq[j]</c> (one float product),
    /// <c>cos[p, j] = cos(angle)</c>, <c>sin[p, j] = sin(angle)</c>. The remaining differences are those between .NET's
    /// <c>MathF.Pow</c>/<c>Cos</c>/<c>Sin</c> and PyTorch's vectorized ones (each within about an ulp). At large
    /// positions the float angle itself is off from the exact p·θ_j by up to about p·θ_j·2⁻²³, exactly as in transformers.
    /// </summary>
    /// <remarks>
    /// transformers: <c>inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))</c>,
    /// <c>freqs = inv_freq[None, :, None].float() @ position_ids[:, None, :].float()</c> with autocast disabled,
    /// <c>emb = cat(freqs, freqs)</c>, <c>cos = emb.cos()</c>; only the first half of <c>emb</c> is kept here, the second
    /// is the same. Rope scaling is <see cref="RotaryTables(Span{float}, Span{float}, int, int, float, RotaryScaling)"/>'s.
    /// </remarks>
    /// <param name="cos">Cosines <c>[maxLen, headDim/2]</c>, overwritten.</param>
    /// <param name="sin">Sines <c>[maxLen, headDim/2]</c>, overwritten.</param>
    /// <param name="maxLen">Positions.</param>
    /// <param name="headDim">Channels per head; must be even.</param>
    /// <param name="theta">The base, config.json's <c>rope_theta</c> (1e4 Llama 2, 1e5 SmolLM2, 5e5 Llama 3, 1e6 Qwen2); positive and finite.</param>
    public static void RotaryTables(Span<float> cos, Span<float> sin, int maxLen, int headDim, float theta) =>
        RotaryTables(cos, sin, maxLen, headDim, theta, RotaryScaling.None);

    /// <summary>
    /// The tables of <see cref="RotaryTables(Span{float}, Span{float}, int, int, float)"/> with a checkpoint's rope scaling
    /// (<see cref="RotaryScaling"/>; linear for Gemma 3's full layers, llama3, yarn or longrope for the Llama family):
    /// <c>angle = (float)p · inv_freq[j]</c> over the scaled inverse frequencies, and
    /// <c>cos[p, j] = cos(angle) · a</c>, <c>sin[p, j] = sin(angle) · a</c> with its attention factor a (1 for most kinds),
    /// as transformers' <c>LlamaRotaryEmbedding</c> multiplies them by <c>attention_scaling</c>. With a ≠ 1 each pair turns
    /// and grows by a; the backward kernel's turn by the opposite angle over the same tables stays the exact transpose.
    /// </summary>
    /// <param name="cos">Cosines <c>[maxLen, headDim/2]</c>, overwritten.</param>
    /// <param name="sin">Sines <c>[maxLen, headDim/2]</c>, overwritten.</param>
    /// <param name="maxLen">Positions.</param>
    /// <param name="headDim">Channels per head; must be even.</param>
    /// <param name="theta">The base; positive and finite.</param>
    /// <param name="scaling">The scaling of the frequencies and of the tables.</param>
    public static void RotaryTables(Span<float> cos, Span<float> sin, int maxLen, int headDim, float theta, RotaryScaling scaling)
    {
        ArgumentNullException.ThrowIfNull(scaling);
        SpanChecks.NonNegative(maxLen, nameof(maxLen));
        CheckHeadDim(headDim);
        int half = headDim / 2;
        SpanChecks.Length(cos.Length, (long)maxLen * half, nameof(cos));
        SpanChecks.Length(sin.Length, (long)maxLen * half, nameof(sin));
        Span<float> inverse = half <= 256 ? stackalloc float[half] : new float[half];
        scaling.InverseFrequencies(inverse, headDim, theta);
        float attention = scaling.AttentionFactor;
        for (int j = 0; j < half; j++)
        {
            for (int p = 0; p < maxLen; p++)
            {
                float angle = (float)p * inverse[j];
                cos[p * half + j] = attention == 1f ? MathF.Cos(angle) : MathF.Cos(angle) * attention;
                sin[p * half + j] = attention == 1f ? MathF.Sin(angle) : MathF.Sin(angle) * attention;
            }
        }
    }

    /// <summary>
    /// Rotates, in place, the half-split pairs (j, j + headDim/2) of the first <paramref name="rotatedHeads"/> blocks of
    /// headDim floats of every row by the angle of the row's position: effectively computes, with D = headDim,
    /// <c>x'[j] = x[j]·cos_j − x[j + D/2]·sin_j</c> and <c>x'[j + D/2] = x[j + D/2]·cos_j + x[j]·sin_j</c>, which is
    /// transformers' <c>x·cos + rotate_half(x)·sin</c> with the same two products and one sum per element (so the same
    /// float results, given the same tables). Token t of each sequence is at position <c>position0 + t</c>.
    /// </summary>
    /// <remarks>
    /// For a packed Q | K | V row with grouped-query attention, <paramref name="rotatedHeads"/> = heads + kvHeads: the
    /// query heads and then the key heads are adjacent at the start of the row, and V after them is not rotated.
    /// </remarks>
    /// <param name="qkv">Rows <c>[batch·seqLen, rowStride]</c>, updated in place.</param>
    /// <param name="cos">Cosine table <c>[maxLen, headDim/2]</c>, maxLen ≥ position0 + seqLen (from <see cref="RotaryTables(Span{float}, Span{float}, int, int, float)"/>).</param>
    /// <param name="sin">Sine table, same shape.</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="seqLen">Tokens per sequence.</param>
    /// <param name="rotatedHeads">Blocks of headDim floats rotated at the start of each row.</param>
    /// <param name="headDim">Channels per head; even.</param>
    /// <param name="rowStride">Floats per token row, at least rotatedHeads·headDim.</param>
    /// <param name="position0">Position of the first token.</param>
    public static void RotaryHalfForward(Span<float> qkv, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int batch, int seqLen, int rotatedHeads, int headDim, int rowStride, int position0 = 0)
        => RotateHalf(qkv, cos, sin, batch, seqLen, rotatedHeads, headDim, rowStride, position0, 1f, nameof(qkv));

    /// <summary>
    /// <see cref="RotaryHalfForward(Span{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, int, int, int, int)"/>
    /// for sequences of different lengths laid end to end: the rows of sequence s are at positions <c>positions[s]</c>,
    /// <c>positions[s] + 1</c>, … (from 0 when <paramref name="positions"/> is empty).
    /// </summary>
    /// <param name="qkv">Rows <c>[Σ lengths, rowStride]</c>, updated in place.</param>
    /// <param name="cos">Cosine table <c>[maxLen, headDim/2]</c>, maxLen at least the last position of every sequence plus one.</param>
    /// <param name="sin">Sine table, same shape.</param>
    /// <param name="lengths">Tokens of each sequence, each at least 1.</param>
    /// <param name="rotatedHeads">Blocks of headDim floats rotated at the start of each row.</param>
    /// <param name="headDim">Channels per head; even.</param>
    /// <param name="rowStride">Floats per token row, at least rotatedHeads·headDim.</param>
    /// <param name="positions">The position of each sequence's first row, or empty for 0.</param>
    public static void RotaryHalfForward(Span<float> qkv, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, ReadOnlySpan<int> lengths, int rotatedHeads, int headDim, int rowStride,
        ReadOnlySpan<int> positions = default)
    {
        SpanChecks.Length(qkv.Length, SpanChecks.Sequences(lengths, nameof(lengths), out _) * rowStride, nameof(qkv));
        SpanChecks.LengthOrEmpty(positions.Length, lengths.Length, nameof(positions));
        int row = 0;
        for (int s = 0; s < lengths.Length; s++)
        {
            RotateHalf(qkv.Slice(row * rowStride, lengths[s] * rowStride), cos, sin, 1, lengths[s], rotatedHeads, headDim, rowStride, positions.IsEmpty ? 0 : positions[s], 1f, nameof(qkv));
            row += lengths[s];
        }
    }

    /// <summary>
    /// The backward of <see cref="RotaryHalfForward(Span{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, int, int, int, int)"/> (positions from 0): the transposed rotation, in place. On entry
    /// <paramref name="dQkv"/> holds the gradient with respect to the rotated values, on exit with respect to the
    /// unrotated ones: <c>dx[j] = dx'[j]·cos_j + dx'[j + D/2]·sin_j</c>, <c>dx[j + D/2] = dx'[j + D/2]·cos_j − dx'[j]·sin_j</c>.
    /// Like <see cref="RotaryBackward"/> it transforms rather than accumulates; columns past the rotated heads are untouched.
    /// </summary>
    /// <param name="dQkv">Gradient rows <c>[batch·seqLen, rowStride]</c>, updated in place.</param>
    /// <param name="cos">Cosine table <c>[maxLen, headDim/2]</c>, maxLen ≥ seqLen.</param>
    /// <param name="sin">Sine table, same shape.</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="seqLen">Tokens per sequence.</param>
    /// <param name="rotatedHeads">Blocks of headDim floats rotated at the start of each row.</param>
    /// <param name="headDim">Channels per head; even.</param>
    /// <param name="rowStride">Floats per token row, at least rotatedHeads·headDim.</param>
    public static void RotaryHalfBackward(Span<float> dQkv, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int batch, int seqLen, int rotatedHeads, int headDim, int rowStride)
        => RotateHalf(dQkv, cos, sin, batch, seqLen, rotatedHeads, headDim, rowStride, 0, -1f, nameof(dQkv));

    // direction = +1 rotates by +angle, −1 by −angle (the transpose): sin times ±1 is exact, so the backward's products
    // are the forward's with their signs flipped.
    private static void RotateHalf(Span<float> rows, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int batch, int seqLen, int rotatedHeads, int headDim,
        int rowStride, int position0, float direction, string rowsName)
    {
        SpanChecks.NonNegative(batch, nameof(batch));
        SpanChecks.NonNegative(seqLen, nameof(seqLen));
        SpanChecks.Positive(rotatedHeads, nameof(rotatedHeads));
        CheckHeadDim(headDim);
        SpanChecks.NonNegative(position0, nameof(position0));
        int rotated = rotatedHeads * headDim, half = headDim / 2;
        if (rowStride < rotated)
            throw new ArgumentOutOfRangeException(nameof(rowStride), rowStride, $"rowStride must be at least rotatedHeads·headDim = {rotated}.");
        SpanChecks.Length(rows.Length, (long)batch * seqLen * rowStride, rowsName);
        CheckTable(cos.Length, (long)(position0 + seqLen) * half, half, nameof(cos));
        CheckTable(sin.Length, (long)(position0 + seqLen) * half, half, nameof(sin));

        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < seqLen; t++)
            {
                int p = position0 + t;
                ref float cosRow = ref MemoryMarshal.GetReference(cos.Slice(p * half, half));
                ref float sinRow = ref MemoryMarshal.GetReference(sin.Slice(p * half, half));
                Span<float> row = rows.Slice((b * seqLen + t) * rowStride, rotated);
                for (int block = 0; block < rotatedHeads; block++)
                {
                    ref float x = ref MemoryMarshal.GetReference(row.Slice(block * headDim, headDim)); // first half of the head
                    RotateHalfHead(ref x, ref Unsafe.Add(ref x, half), ref cosRow, ref sinRow, half, direction);
                }
            }
        }
    }

    /// <summary>
    /// One head: <c>(x[j], y[j]) → (x·c − y·s, y·c + x·s)</c> with s = direction·sin[j], for j &lt; half, where y is the
    /// head's second half. The vector widths and the scalar tail do the same operations in the same order (products,
    /// then one sum; no fused multiply-add), so every element gets the same bits whichever path it takes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RotateHalfHead(ref float x, ref float y, ref float cos, ref float sin, int half, float direction)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> sign = Vector512.Create(direction);
            for (; j + 16 <= half; j += 16)
            {
                Vector512<float> a = Vector512.LoadUnsafe(ref x, (nuint)j), e = Vector512.LoadUnsafe(ref y, (nuint)j);
                Vector512<float> c = Vector512.LoadUnsafe(ref cos, (nuint)j), s = Vector512.LoadUnsafe(ref sin, (nuint)j) * sign;
                (a * c - e * s).StoreUnsafe(ref x, (nuint)j);
                (e * c + a * s).StoreUnsafe(ref y, (nuint)j);
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> sign = Vector256.Create(direction);
            for (; j + 8 <= half; j += 8)
            {
                Vector256<float> a = Vector256.LoadUnsafe(ref x, (nuint)j), e = Vector256.LoadUnsafe(ref y, (nuint)j);
                Vector256<float> c = Vector256.LoadUnsafe(ref cos, (nuint)j), s = Vector256.LoadUnsafe(ref sin, (nuint)j) * sign;
                (a * c - e * s).StoreUnsafe(ref x, (nuint)j);
                (e * c + a * s).StoreUnsafe(ref y, (nuint)j);
            }
        }
        if (Vector128.IsHardwareAccelerated)
        {
            Vector128<float> sign = Vector128.Create(direction);
            for (; j + 4 <= half; j += 4)
            {
                Vector128<float> a = Vector128.LoadUnsafe(ref x, (nuint)j), e = Vector128.LoadUnsafe(ref y, (nuint)j);
                Vector128<float> c = Vector128.LoadUnsafe(ref cos, (nuint)j), s = Vector128.LoadUnsafe(ref sin, (nuint)j) * sign;
                (a * c - e * s).StoreUnsafe(ref x, (nuint)j);
                (e * c + a * s).StoreUnsafe(ref y, (nuint)j);
            }
        }
        for (; j < half; j++)
        {
            float a = Unsafe.Add(ref x, j), e = Unsafe.Add(ref y, j);
            float c = Unsafe.Add(ref cos, j), s = Unsafe.Add(ref sin, j) * direction;
            Unsafe.Add(ref x, j) = a * c - e * s;
            Unsafe.Add(ref y, j) = e * c + a * s;
        }
    }

    private static void CheckHeadDim(int headDim)
    {
        if (headDim <= 0 || headDim % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "Rotary embedding needs a positive, even headDim.");
    }

    /// <summary>A [rows, width] table must be whole rows and have at least <paramref name="minimum"/> floats.</summary>
    private static void CheckTable(int length, long minimum, int width, string name)
    {
        if (width > 0 && length % width != 0)
            throw new ArgumentException($"{name} has length {length}, which is not a whole number of rows of width {width}.", name);
        SpanChecks.AtLeast(length, minimum, name);
    }
}
