using System;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace TransformerGen.Kernels;

// How the raw scores q·k become the logits of the softmax. The paper's attention scales them by 1/√headDim. T5
// (Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified Text-to-Text Transformer", §2.1) does
// not scale them (the factor is folded into the initialization of the query projection) and adds a learned bias that
// depends only on the head and on the key's position relative to the query's: logit[i, j] = scale·q_i·k_j + B_h[j − i].
// The bias comes in as rows of 2·span − 1 floats per (sequence, head), entry span − 1 + (j − i) holding B_h[j − i]
// (RelativePosition.BiasForward gathers them from the bucketed table), so the bias of a query row over its visible keys
// is one contiguous run of its row, and backward adds each row of dS into such a run of the bias's gradient.
public static unsafe partial class Attention
{
    /// <summary>
    /// The scale of the scores and, when <see cref="Bias"/> is not null, the relative-position bias rows
    /// <c>[batch, heads, 2·Span − 1]</c> added after scaling (in backward: the rows its gradient is added into).
    /// </summary>
    private readonly struct ScoreTerms(float scale, float* bias, int span, int heads)
    {
        public readonly float Scale = scale;
        public readonly float* Bias = bias;
        public readonly int Span = span;
        public readonly int Heads = heads;

        /// <summary>The paper's scaling by 1/√headDim, or the given <paramref name="scale"/> when it is not 0; no bias.</summary>
        public static ScoreTerms Standard(int headDim, float scale = 0f) => new(scale == 0f ? 1f / MathF.Sqrt(headDim) : scale, null, 0, 0);

        /// <summary>Floats of one (sequence, head) row of the bias.</summary>
        public int RowLength => 2 * Span - 1;

        /// <summary>
        /// The bias row of pair <c>b·heads + h</c> shifted for the query at <paramref name="position"/>: element j is the
        /// bias of key j, <c>B_h[j − position]</c>.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float* RowFor(int pair, int position) => Bias + (nint)pair * RowLength + (Span - 1 - position);

        /// <summary>
        /// Readies the visible scores <c>row[lo..hi)</c> of the query at <paramref name="position"/> for the softmax and
        /// returns the factor the softmax still applies: <see cref="Scale"/> without a bias (the softmax scales as it
        /// exponentiates); with one, the scores become <c>scale·s + B[j − position]</c> here and the softmax takes them as
        /// they are (1).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Logits(float* row, int lo, int hi, int pair, int position)
        {
            if (Bias == null) return Scale;
            if (hi > lo)
            {
                Span<float> visible = new(row + lo, hi - lo);
                ReadOnlySpan<float> bias = new(RowFor(pair, position) + lo, hi - lo);
                if (Scale == 1f) TensorPrimitives.Add(visible, bias, visible);
                else TensorPrimitives.MultiplyAdd(visible, Scale, bias, visible);
            }
            return 1f;
        }

        /// <summary>
        /// Backward: adds the score gradient <c>dS[j]</c> (before scaling) of the query at <paramref name="position"/>
        /// over keys <c>[lo, lo + width)</c> into the bias gradient's row, when there is one.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void AddGradient(float* dScores, int lo, int width, int pair, int position)
        {
            Span<float> target = new(RowFor(pair, position) + lo, width);
            TensorPrimitives.Add(target, new ReadOnlySpan<float>(dScores, width), target);
        }
    }

    /// <summary>Refuses a score factor that is negative, infinite or not a number (0 stands for 1/√headDim).</summary>
    private static void CheckScale(float scale, string name = "scale")
    {
        if (!float.IsFinite(scale) || scale < 0f)
            throw new ArgumentOutOfRangeException(name, scale, $"{name} must be a positive finite factor, or 0 for 1/√headDim.");
    }

    /// <summary>The score terms of a public call: its scale (0 for 1/√headDim) and its bias, checked against the sizes.</summary>
    private static ScoreTerms Terms(float scale, int headDim, float* bias, int biasLength, int biasSpan, int batch, int heads, long lastPosition, int keyLen,
        string scaleName, string biasName, string spanName)
    {
        CheckScale(scale, scaleName);
        float s = scale == 0f ? 1f / MathF.Sqrt(headDim) : scale;
        if (biasLength == 0) return new ScoreTerms(s, null, 0, 0);
        // Every (query position, key) pair must find its offset inside a row: |j − i| ≤ span − 1.
        long needed = Math.Max(lastPosition + 1, keyLen);
        if (biasSpan < needed)
            throw new ArgumentOutOfRangeException(spanName, biasSpan, $"{spanName} = {biasSpan} does not cover the positions of this call: it must be at least {needed}.");
        SpanChecks.Length(biasLength, (long)batch * heads * (2L * biasSpan - 1), biasName);
        return new ScoreTerms(s, bias, biasSpan, heads);
    }
}
