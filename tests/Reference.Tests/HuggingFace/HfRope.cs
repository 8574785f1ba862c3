using System;
using static TorchSharp.torch;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// The Llama family's rotary frequencies as transformers' <c>modeling_rope_utils.py</c> computes them: the init function
/// of the config's <c>rope_type</c> gives <c>inv_freq</c> <c>[D/2]</c> and the attention factor (<c>attention_scaling</c>,
/// by which the rotary embedding multiplies cos and sin). Everything on tensors is float32 libtorch in transformers'
/// order of operations; the scalar parts (the yarn correction range, the attention factors) are Python floats, here
/// doubles.
/// </summary>
/// <remarks>
/// Python's <c>scalar / tensor</c> is <c>Tensor.__rtruediv__</c>, i.e. <c>tensor.reciprocal() * scalar</c>, and a
/// Python float meeting a float32 tensor is rounded to float32 first; both are written out so, since the last bit of
/// <c>inv_freq</c> shows up in the angles of the later positions.
/// </remarks>
internal static class HfRope
{
    /// <summary>
    /// <c>inv_freq</c> for a forward pass over positions 0 … <paramref name="length"/> − 1: longrope switches from
    /// <c>short_factor</c> to <c>long_factor</c> past the original context (transformers' <c>longrope_frequency_update</c>
    /// decides by the largest position + 1); dynamic NTK scaling past its length is not implemented and refused.
    /// </summary>
    public static Tensor InverseFrequencies(HfConfig config, long length)
    {
        HfRopeScaling? scaling = config.RopeScaling;
        double theta = config.RopeTheta;
        long headDim = config.HeadDim;
        switch (scaling?.Kind)
        {
            case null:
                return Default(theta, headDim);
            case HfRopeKind.Linear:
                return Default(theta, headDim) / scaling.Factor;
            case HfRopeKind.Dynamic:
                // _compute_dynamic_ntk_parameters at a length within max_position_embeddings: base · (factor·1 − (factor − 1))^(D/(D−2)) = base.
                if (length > scaling.OriginalPositions)
                    throw new NotSupportedException($"dynamic rope scaling rescales θ past {scaling.OriginalPositions} positions ({length} asked): not implemented");
                return Default(theta, headDim);
            case HfRopeKind.Llama3:
                return Llama3(Default(theta, headDim), scaling);
            case HfRopeKind.Yarn:
                return Yarn(theta, headDim, scaling);
            case HfRopeKind.LongRope:
            {
                double[] divisors = length > scaling.OriginalPositions ? scaling.LongFactor! : scaling.ShortFactor!;
                Tensor ext = tensor(divisors, ScalarType.Float32);                                      // torch.tensor(list, dtype=float32)
                return (ext * Powers(theta, headDim)).reciprocal();                                       // 1.0 / (ext · base^(2j/D))
            }
            default:
                throw new NotSupportedException($"rope kind {scaling.Kind}");
        }
    }

    /// <summary>
    /// <c>attention_scaling</c>: 1 but for yarn (<c>attention_factor</c>, else YaRN's mscale, or the ratio of two mscales
    /// where both <c>mscale</c> and <c>mscale_all_dim</c> are given) and longrope (<c>attention_factor</c>, else
    /// √(1 + ln(factor) / ln(original)) once the factor exceeds 1).
    /// </summary>
    public static double AttentionScaling(HfConfig config)
    {
        HfRopeScaling? s = config.RopeScaling;
        switch (s?.Kind)
        {
            case HfRopeKind.Yarn:
                if (s.AttentionFactor is double yarnFactor) return yarnFactor;
                if (s.Mscale is double m && s.MscaleAllDim is double all) return Mscale(s.Factor, m) / Mscale(s.Factor, all);
                return Mscale(s.Factor, 1.0);
            case HfRopeKind.LongRope:
                if (s.AttentionFactor is double longFactor) return longFactor;
                return s.Factor <= 1.0 ? 1.0 : Math.Sqrt(1 + Math.Log(s.Factor) / Math.Log(s.OriginalPositions));
            default:
                return 1.0;
        }
    }

    /// <summary>YaRN's get_mscale: 1 for a scale of at most 1, else 0.1·m·ln(scale) + 1.</summary>
    public static double Mscale(double scale, double m) => scale <= 1 ? 1.0 : 0.1 * m * Math.Log(scale) + 1.0;

    /// <summary>
    /// YaRN's find_correction_dim: the pair index (as a real number) whose frequency turns <paramref name="rotations"/>
    /// times over <paramref name="positions"/> positions, D·ln(L / (r·2π)) / (2·ln θ).
    /// </summary>
    public static double CorrectionDim(double rotations, long headDim, double theta, int positions) =>
        headDim * Math.Log(positions / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));

    /// <summary>YaRN's find_correction_range: (low, high), floored and ceiled with truncate, then clipped to [0, D − 1].</summary>
    public static (double Low, double High) CorrectionRange(HfRopeScaling s, long headDim, double theta)
    {
        double low = CorrectionDim(s.BetaFast, headDim, theta, s.OriginalPositions);
        double high = CorrectionDim(s.BetaSlow, headDim, theta, s.OriginalPositions);
        if (s.Truncate)
        {
            low = Math.Floor(low);
            high = Math.Ceiling(high);
        }
        return (Math.Max(low, 0), Math.Min(high, headDim - 1));
    }

    /// <summary>The exponents <c>arange(0, D, 2).float() / D</c> and <c>base ** them</c>, float32: <c>[D/2]</c>.</summary>
    private static Tensor Powers(double theta, long headDim)
    {
        Tensor exponents = arange(0, headDim, 2, ScalarType.Int64).to(ScalarType.Float32) / headDim;
        return full_like(exponents, theta).pow(exponents);
    }

    /// <summary>The default <c>inv_freq = 1 / θ^(2j/D)</c>, float32.</summary>
    private static Tensor Default(double theta, long headDim) => Powers(theta, headDim).reciprocal();

    // _compute_llama3_parameters: by wavelength λ = 2π / inv_freq against the original context L, short wavelengths
    // (λ < L / high_freq_factor) keep their frequency, long ones (λ > L / low_freq_factor) are divided by the factor, and
    // the ones between blend the two with s = (L/λ − low) / (high − low): (1 − s)·inv/factor + s·inv.
    private static Tensor Llama3(Tensor inv, HfRopeScaling s)
    {
        double lowWavelength = s.OriginalPositions / s.LowFrequencyFactor, highWavelength = s.OriginalPositions / s.HighFrequencyFactor;
        Tensor wavelength = inv.reciprocal() * (2 * Math.PI);
        Tensor scaled = where(wavelength > lowWavelength, inv / s.Factor, inv);
        Tensor smooth = (wavelength.reciprocal() * (double)s.OriginalPositions - s.LowFrequencyFactor) / (s.HighFrequencyFactor - s.LowFrequencyFactor);
        Tensor blended = (1 - smooth) * scaled / s.Factor + smooth * scaled;
        Tensor medium = (wavelength < highWavelength).logical_not().logical_and((wavelength > lowWavelength).logical_not());
        return where(medium, blended, scaled);
    }

    // _compute_yarn_parameters: a linear ramp over the pairs between the correction range's ends chooses, per pair,
    // between the interpolated frequency 1/(factor·θ^(2j/D)) (ramp 1, slow pairs) and the original one (ramp 0, fast pairs).
    private static Tensor Yarn(double theta, long headDim, HfRopeScaling s)
    {
        Tensor powers = Powers(theta, headDim);
        Tensor extrapolated = powers.reciprocal(), interpolated = (powers * s.Factor).reciprocal();
        (double low, double high) = CorrectionRange(s, headDim, theta);
        if (low == high) high += 0.001;                                                             // linear_ramp_factor's guard
        Tensor ramp = ((arange(headDim / 2, ScalarType.Float32) - low) / (high - low)).clamp(0, 1);
        Tensor extrapolation = 1 - ramp;
        return interpolated * (1 - extrapolation) + extrapolated * extrapolation;
    }
}
