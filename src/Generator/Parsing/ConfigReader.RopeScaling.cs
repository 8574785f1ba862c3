using System;
using System.Collections.Generic;
using System.Linq;

namespace TransformerGen.Generator
{
    /// <summary>
    /// A <c>rope_scaling</c> the compiler builds (the Llama family's; Gemma 3's linear one on its full layers), one of the
    /// runtime's <c>RotaryScaling</c> kinds: <c>Kind</c>
    /// is linear, llama3, yarn or longrope, with the numbers that kind reads (the others 0). <c>AttentionFactor</c>, the
    /// factor on the cos and sin tables, is computed here from the config as transformers does, so that the generated code
    /// shows it. <c>Factors</c>: LongRoPE's divisor per pair.
    /// </summary>
    internal sealed record RopeScalingSpec(
        string Kind,
        float Factor,
        float LowFrequencyFactor = 0f,
        float HighFrequencyFactor = 0f,
        int OriginalPositions = 0,
        float BetaFast = 0f,
        float BetaSlow = 0f,
        bool Truncate = true,
        float AttentionFactor = 1f,
        EquatableArray<float> Factors = default);

    internal sealed partial class ConfigReader
    {
        /// <summary>
        /// The rotation's scaling of a Llama-family config (<c>rope_scaling</c>, or transformers 5's <c>rope_parameters</c>
        /// with a <c>rope_type</c> other than default), null for none. Built: linear, llama3 (Llama 3.1–3.3), yarn
        /// (Qwen2.5's long-context setting) and longrope (Phi-3 128k, Phi-3.5) while SeqLen stays within
        /// <c>original_max_position_embeddings</c>, where it uses <c>short_factor</c>. dynamic is accepted where it changes
        /// nothing: it scales only sequences longer than <c>max_position_embeddings</c>, and SeqLen is at most that.
        /// Anything else is a TG0042 naming the key.
        /// </summary>
        private RopeScalingSpec? LlamaRopeScaling(int headDim, int positions)
        {
            string key = "rope_scaling";
            List<KeyValuePair<string, object?>>? rope = Object("rope_scaling");
            if (rope is null && _keys.TryGetValue("rope_scaling", out object? other) && other is not null)
            {
                Unsupported(key, other, "an object with rope_type and its numbers is expected");
                return null;
            }
            if (rope is null && Object("rope_parameters") is { } parameters && RopeScalingOf(parameters) is not null)
            {
                key = "rope_parameters";
                rope = parameters;
            }
            if (rope is null) return null;
            string? type = Lookup(rope, "rope_type") as string ?? Lookup(rope, "type") as string;
            int seqLen = _spec.SeqLen.Value;
            double? Number(string name) => Lookup(rope, name) is double d ? d : null;
            float? Factor()
            {
                if (Number("factor") is double f && f > 0 && !double.IsInfinity(f)) return (float)f;
                Unsupported(key, Text(rope), $"{type} scaling needs a positive factor");
                return null;
            }

            switch (type)
            {
                case null or "default":
                    return null;
                case "linear":
                    return Factor() is float linear ? new RopeScalingSpec("linear", linear) : null;
                case "dynamic":
                    // NTK scaling recomputes the frequencies only for a sequence longer than max_position_embeddings
                    // (or rope_scaling's original_max_position_embeddings where a version reads it): none here.
                    if (Number("original_max_position_embeddings") is double dynamicOriginal && dynamicOriginal < seqLen)
                        Unsupported(key, Text(rope), $"dynamic scaling changes the rotation past original_max_position_embeddings = {dynamicOriginal}, below SeqLen = {seqLen}; it is not implemented");
                    _ = Factor();
                    return null;
                case "llama3":
                {
                    float? factor = Factor();
                    double? low = Number("low_freq_factor"), high = Number("high_freq_factor"), original = Number("original_max_position_embeddings");
                    if (low is null || high is null || original is null)
                    {
                        Unsupported(key, Text(rope), "llama3 scaling needs low_freq_factor, high_freq_factor and original_max_position_embeddings");
                        return null;
                    }
                    if (!(low > 0) || !(high > low) || double.IsInfinity(high.Value))
                    {
                        Unsupported(key, Text(rope), "llama3 scaling needs 0 < low_freq_factor < high_freq_factor");
                        return null;
                    }
                    if (!(original >= 1) || original != Math.Floor(original.Value) || original > int.MaxValue)
                    {
                        Unsupported(key, Text(rope), "original_max_position_embeddings must be a positive integer");
                        return null;
                    }
                    return factor is float f ? new RopeScalingSpec("llama3", f, (float)low, (float)high, (int)original) : null;
                }
                case "yarn":
                {
                    if (Factor() is not float factor) return null;
                    double original = Number("original_max_position_embeddings") ?? positions;
                    if (!(original >= 1) || original != Math.Floor(original) || original > int.MaxValue)
                    {
                        Unsupported(key, Text(rope), "original_max_position_embeddings must be a positive integer");
                        return null;
                    }
                    // transformers: beta_fast or 32, beta_slow or 1 (a 0 takes the default too); attention_factor, else
                    // the ratio of YaRN's mscale at mscale and at mscale_all_dim where both are given, else 0.1·ln(factor) + 1.
                    double betaFast = Number("beta_fast") is double bf && bf != 0 ? bf : 32, betaSlow = Number("beta_slow") is double bs && bs != 0 ? bs : 1;
                    if (!(betaFast > 0) || !(betaSlow > 0))
                    {
                        Unsupported(key, Text(rope), "beta_fast and beta_slow must be positive");
                        return null;
                    }
                    double Mscale(double scale, double m) => scale <= 1 ? 1.0 : 0.1 * m * Math.Log(scale) + 1.0;
                    double attention = Number("attention_factor")
                        ?? (Number("mscale") is double m && m != 0 && Number("mscale_all_dim") is double all && all != 0 ? Mscale(factor, m) / Mscale(factor, all) : Mscale(factor, 1));
                    if (!(attention > 0))
                    {
                        Unsupported(key, Text(rope), "attention_factor must be positive");
                        return null;
                    }
                    bool truncate = Lookup(rope, "truncate") is bool t ? t : true;
                    return new RopeScalingSpec("yarn", factor, OriginalPositions: (int)original, BetaFast: (float)betaFast, BetaSlow: (float)betaSlow,
                        Truncate: truncate, AttentionFactor: (float)attention);
                }
                case "longrope":
                {
                    // Phi3Config keeps the pretrained context at the top level (original_max_position_embeddings, 4096 by
                    // default) and the factor is max_position_embeddings over it; without it, rope_scaling's factor.
                    bool phi3 = String("model_type") == "phi3";
                    int original = Int("original_max_position_embeddings") ?? (phi3 ? 4096 : positions);
                    double factor = Int("original_max_position_embeddings") is not null || phi3 ? (double)positions / original : Number("factor") ?? 1.0;
                    if (original <= 0)
                    {
                        Unsupported("original_max_position_embeddings", original, "a positive integer is expected");
                        return null;
                    }
                    if (seqLen > original)
                    {
                        Unsupported(key, "longrope", $"past original_max_position_embeddings = {original} (SeqLen = {seqLen}) transformers turns every position by long_factor instead of short_factor; that switch is not implemented, declare SeqLen ≤ {original}");
                        return null;
                    }
                    double attention = Number("attention_factor") ?? (factor <= 1 ? 1.0 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(original)));
                    float[]? divisors = FactorList(rope, "short_factor", headDim / 2, key);
                    if (FactorList(rope, "long_factor", headDim / 2, key) is null || divisors is null) return null;
                    if (!(attention > 0))
                    {
                        Unsupported(key, Text(rope), "attention_factor must be positive");
                        return null;
                    }
                    return new RopeScalingSpec("longrope", (float)factor, OriginalPositions: original, AttentionFactor: (float)attention,
                        Factors: new EquatableArray<float>(divisors));
                }
                default:
                    Unsupported(key, Text(rope), "of the scaled rotary positions linear, llama3, yarn, longrope and dynamic (within max_position_embeddings) are implemented");
                    return null;
            }
        }

        /// <summary>LongRoPE's <paramref name="name"/>: one positive number per rotated pair, or null and a TG0042.</summary>
        private float[]? FactorList(List<KeyValuePair<string, object?>> rope, string name, int pairs, string key)
        {
            if (Lookup(rope, name) is List<object?> list && list.Count == pairs && list.All(v => v is double d && d > 0 && !double.IsInfinity(d)))
                return list.Select(v => (float)(double)v!).ToArray();
            Unsupported(key, Text(rope), $"longrope needs {name}: {pairs} positive numbers, one per pair of head_dim");
            return null;
        }
    }
}
