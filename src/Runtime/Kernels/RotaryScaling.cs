using System;

namespace TransformerGen.Kernels;

/// <summary>
/// How a checkpoint's <c>rope_scaling</c> changes the rotary angles of <see cref="Positional.RotaryTables(Span{float}, Span{float}, int, int, float, RotaryScaling)"/>:
/// a new inverse frequency for each pair (j, j + headDim/2), and a factor on the cos and sin tables (transformers'
/// <c>attention_scaling</c>, which scales queries and keys and so the scores by its square). Each kind computes its
/// frequencies in float32, in the order transformers' <c>modeling_rope_utils</c> does, from the default ones
/// <c>1 / theta^((2j)/headDim)</c>.
/// </summary>
/// <remarks>
/// Only the kinds whose angles do not depend on the length of the text are here. transformers' <c>dynamic</c> (NTK)
/// scaling changes nothing until a sequence passes <c>max_position_embeddings</c>, and LongRoPE switches from its short
/// to its long factors only past <c>original_max_position_embeddings</c>; the compiler accepts them where SeqLen stays
/// within that length, as <see cref="None"/> and <see cref="LongRope"/> with the short factors.
/// </remarks>
public sealed class RotaryScaling
{
    /// <summary>The kinds, for the exports, which say each in their own terms.</summary>
    internal enum Kind { None, Linear, Llama3, Yarn, LongRope }

    private readonly Kind _kind;
    private readonly float _factor, _low, _high, _betaFast, _betaSlow;
    private readonly int _originalPositions;
    private readonly bool _truncate;
    private readonly float[] _divisors;

    private RotaryScaling(Kind kind, float factor = 1f, float attentionFactor = 1f, float low = 0f, float high = 0f, int originalPositions = 0,
        float betaFast = 0f, float betaSlow = 0f, bool truncate = true, float[]? divisors = null)
    {
        _kind = kind;
        _factor = factor;
        AttentionFactor = attentionFactor;
        (_low, _high, _originalPositions) = (low, high, originalPositions);
        (_betaFast, _betaSlow, _truncate) = (betaFast, betaSlow, truncate);
        _divisors = divisors ?? [];
    }

    /// <summary>The factor on every cos and sin (1 except for YaRN and LongRoPE).</summary>
    public float AttentionFactor { get; }

    /// <summary>Which kind this is.</summary>
    internal Kind ScalingKind => _kind;

    /// <summary>linear, llama3 and yarn: <c>factor</c> (1 for the others).</summary>
    internal float Factor => _factor;

    /// <summary>llama3 and yarn: <c>original_max_position_embeddings</c> (0 for the others).</summary>
    internal int OriginalPositions => _originalPositions;

    /// <summary>yarn: <c>beta_fast</c>, <c>beta_slow</c> and <c>truncate</c>.</summary>
    internal (float Fast, float Slow, bool Truncate) YarnRange => (_betaFast, _betaSlow, _truncate);

    /// <summary>longrope: the divisor of each pair (empty for the others).</summary>
    internal ReadOnlySpan<float> Divisors => _divisors;

    /// <summary>The default rotation: <c>inv_freq[j] = 1 / theta^((2j)/headDim)</c>.</summary>
    public static RotaryScaling None { get; } = new(Kind.None);

    /// <summary>
    /// <c>{"rope_type": "linear", "factor": f}</c>: every inverse frequency divided by f, so positions turn the angles f
    /// times slower.
    /// </summary>
    /// <param name="factor">f; positive and finite.</param>
    public static RotaryScaling Linear(float factor) => new(Kind.Linear, Positive(factor, nameof(factor)));

    /// <summary>
    /// <c>{"rope_type": "llama3", …}</c> (Llama 3.1, 3.2, 3.3): with L the original context and the wavelength
    /// <c>λ_j = 2π / inv_freq[j]</c>, frequencies whose wavelength is shorter than <c>L / highFrequencyFactor</c> stay,
    /// those longer than <c>L / lowFrequencyFactor</c> are divided by the factor f, and those between blend the two with
    /// <c>s = (L / λ_j − low) / (high − low)</c>: <c>(1 − s)·inv/f + s·inv</c>.
    /// </summary>
    /// <param name="factor">f, <c>factor</c> (8 in Llama 3.1, 32 in Llama 3.2); positive and finite.</param>
    /// <param name="lowFrequencyFactor"><c>low_freq_factor</c> (1).</param>
    /// <param name="highFrequencyFactor"><c>high_freq_factor</c> (4); greater than the low one.</param>
    /// <param name="originalPositions">L, <c>original_max_position_embeddings</c> (8192); positive.</param>
    public static RotaryScaling Llama3(float factor, float lowFrequencyFactor, float highFrequencyFactor, int originalPositions)
    {
        if (!(highFrequencyFactor > lowFrequencyFactor) || !(lowFrequencyFactor > 0f) || float.IsPositiveInfinity(highFrequencyFactor))
            throw new ArgumentOutOfRangeException(nameof(highFrequencyFactor), highFrequencyFactor, $"Llama 3's high_freq_factor must be finite and greater than low_freq_factor ({lowFrequencyFactor}), which must be positive.");
        SpanChecks.Positive(originalPositions, nameof(originalPositions));
        return new RotaryScaling(Kind.Llama3, Positive(factor, nameof(factor)), low: lowFrequencyFactor, high: highFrequencyFactor, originalPositions: originalPositions);
    }

    /// <summary>
    /// <c>{"rope_type": "yarn", …}</c> (YaRN, Peng et al. 2023; Qwen2.5's long-context setting): the pairs below the
    /// correction range keep their frequency, those above it are divided by the factor, and a linear ramp over the range
    /// blends the two. The range runs from the pair that turns <paramref name="betaFast"/> times over the original
    /// context to the one that turns <paramref name="betaSlow"/> times: <c>d(r) = headDim·ln(L / (2πr)) / (2 ln theta)</c>,
    /// floored and ceiled when <paramref name="truncate"/>, clamped to [0, headDim − 1].
    /// </summary>
    /// <param name="factor"><c>factor</c>; positive and finite.</param>
    /// <param name="originalPositions">L: <c>original_max_position_embeddings</c> in <c>rope_scaling</c>, else the config's <c>max_position_embeddings</c>.</param>
    /// <param name="betaFast"><c>beta_fast</c> (32).</param>
    /// <param name="betaSlow"><c>beta_slow</c> (1).</param>
    /// <param name="truncate"><c>truncate</c> (true).</param>
    /// <param name="attentionFactor">The factor on cos and sin: <c>attention_factor</c>, else YaRN's <c>0.1·ln(factor) + 1</c> (the compiler computes it).</param>
    public static RotaryScaling Yarn(float factor, int originalPositions, float betaFast, float betaSlow, bool truncate, float attentionFactor)
    {
        SpanChecks.Positive(originalPositions, nameof(originalPositions));
        if (!float.IsFinite(betaFast) || !float.IsFinite(betaSlow) || !(betaSlow > 0f) || !(betaFast > 0f))
            throw new ArgumentOutOfRangeException(nameof(betaFast), betaFast, "YaRN's beta_fast and beta_slow must be positive and finite.");
        return new RotaryScaling(Kind.Yarn, Positive(factor, nameof(factor)), Positive(attentionFactor, nameof(attentionFactor)),
            originalPositions: originalPositions, betaFast: betaFast, betaSlow: betaSlow, truncate: truncate);
    }

    /// <summary>
    /// <c>{"rope_type": "longrope", …}</c> (Phi-3 128k, Phi-3.5): each default frequency divided by its own factor,
    /// <c>inv_freq[j] = 1 / (factors[j] · theta^((2j)/headDim))</c>, and cos and sin times the attention factor.
    /// </summary>
    /// <param name="attentionFactor"><c>attention_factor</c>, else <c>√(1 + ln(max / original) / ln(original))</c> (the compiler computes it).</param>
    /// <param name="factors">One divisor per pair: <c>short_factor</c> within the original context.</param>
    public static RotaryScaling LongRope(float attentionFactor, params float[] factors)
    {
        ArgumentNullException.ThrowIfNull(factors);
        foreach (float f in factors) Positive(f, nameof(factors));
        return new RotaryScaling(Kind.LongRope, 1f, Positive(attentionFactor, nameof(attentionFactor)), divisors: (float[])factors.Clone());
    }

    /// <summary>
    /// Fills <c>inverse[j]</c>, j &lt; headDim/2, with the inverse frequency of pair j, in float32 as transformers
    /// computes it.
    /// </summary>
    /// <param name="inverse">The frequencies <c>[headDim/2]</c>, overwritten.</param>
    /// <param name="headDim">Channels per head; even and positive.</param>
    /// <param name="theta">The base, <c>rope_theta</c>; positive and finite.</param>
    public void InverseFrequencies(Span<float> inverse, int headDim, float theta)
    {
        if (headDim <= 0 || headDim % 2 != 0) throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "Rotary positions need a positive, even head size.");
        if (!(theta > 0f) || float.IsPositiveInfinity(theta))
            throw new ArgumentOutOfRangeException(nameof(theta), theta, "The rotary base theta must be positive and finite.");
        int half = headDim / 2;
        SpanChecks.Length(inverse.Length, half, nameof(inverse));
        if (_kind == Kind.LongRope && _divisors.Length != half)
            throw new ArgumentException($"LongRoPE has {_divisors.Length} factors for a head of {headDim} channels, which has {half} pairs.", nameof(headDim));

        // The default frequencies: the exponent (2j as float) / headDim, then 1 / theta^exponent, each rounded to float.
        for (int j = 0; j < half; j++)
        {
            float power = MathF.Pow(theta, (float)(2 * j) / (float)headDim);
            inverse[j] = _kind switch
            {
                Kind.LongRope => 1f / (_divisors[j] * power),
                Kind.Yarn => YarnFrequency(j, headDim, theta, power),
                _ => 1f / power,
            };
        }
        if (_kind == Kind.Linear)
            for (int j = 0; j < half; j++) inverse[j] /= _factor;
        else if (_kind == Kind.Llama3)
            for (int j = 0; j < half; j++) inverse[j] = Llama3Frequency(inverse[j]);
    }

    // λ = 2π / inv (torch's scalar / tensor is the reciprocal times the scalar, so L / λ too); above L / low: inv / f;
    // below L / high: inv; between: (1 − s)·inv / f + s·inv with s = (L / λ − low) / (high − low).
    private float Llama3Frequency(float inv)
    {
        const float twoPi = (float)(2 * Math.PI);
        float wavelength = 1f / inv * twoPi;
        float lowWavelength = (float)((double)_originalPositions / _low), highWavelength = (float)((double)_originalPositions / _high);
        if (wavelength > lowWavelength) return inv / _factor;
        if (wavelength < highWavelength) return inv;
        float smooth = (1f / wavelength * _originalPositions - _low) / (_high - _low);
        return (1f - smooth) * inv / _factor + smooth * inv;
    }

    // YaRN's blend for pair j: extrapolation 1 / power, interpolation 1 / (f·power), extrapolation's weight
    // 1 − clamp((j − low) / (high − low), 0, 1) over the correction range [low, high] (high + 0.001 where they meet).
    private float YarnFrequency(int j, int headDim, float theta, float power)
    {
        double CorrectionDimension(double rotations) =>
            headDim * Math.Log(_originalPositions / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
        double low = CorrectionDimension(_betaFast), high = CorrectionDimension(_betaSlow);
        if (_truncate)
        {
            low = Math.Floor(low);
            high = Math.Ceiling(high);
        }
        low = Math.Max(low, 0);
        high = Math.Min(high, headDim - 1);
        if (low == high) high += 0.001;
        float ramp = Math.Clamp(((float)j - (float)low) / (float)(high - low), 0f, 1f);
        float extrapolationWeight = 1f - ramp;
        float extrapolation = 1f / power, interpolation = 1f / (_factor * power);
        return interpolation * (1f - extrapolationWeight) + extrapolation * extrapolationWeight;
    }

    /// <summary>What the generated code and the exports print: the kind and its numbers.</summary>
    public override string ToString() => _kind switch
    {
        Kind.None => "none",
        Kind.Linear => $"linear ×{_factor}",
        Kind.Llama3 => $"llama3 (factor {_factor}, low_freq_factor {_low}, high_freq_factor {_high}, original_max_position_embeddings {_originalPositions})",
        Kind.Yarn => $"yarn (factor {_factor}, original_max_position_embeddings {_originalPositions}, beta_fast {_betaFast}, beta_slow {_betaSlow}, attention factor {AttentionFactor})",
        _ => $"longrope ({_divisors.Length} factors, attention factor {AttentionFactor})",
    };

    private static float Positive(float value, string name) =>
        value > 0f && !float.IsPositiveInfinity(value) ? value : throw new ArgumentOutOfRangeException(name, value, "Rope scaling factors must be positive and finite.");
}
