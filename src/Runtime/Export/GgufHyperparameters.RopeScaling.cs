using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using TransformerGen.Kernels;

namespace TransformerGen;

public sealed partial record GgufHyperparameters
{
    /// <summary>
    /// The Llama family's scaled rotary positions (<c>rope_scaling</c>, or transformers 5's <c>rope_parameters</c> with a
    /// <c>rope_type</c> other than default), as the compiler builds them: linear, llama3, yarn, or longrope with its
    /// <c>short_factor</c>; Gemma 3's linear scaling of its full-attention layers. Null for the default rotation, and for
    /// dynamic (NTK) scaling, which changes nothing within <c>max_position_embeddings</c>.
    /// </summary>
    public RotaryScaling? RopeScaling { get; init; }

    /// <summary>
    /// LongRoPE (<see cref="RopeScaling"/> of kind longrope): <c>original_max_position_embeddings</c>, the context within which
    /// transformers turns by <c>short_factor</c> (and past which by <c>long_factor</c>); 0 for the other kinds, whose
    /// original context <see cref="RopeScaling"/> holds.
    /// </summary>
    public int RopeOriginalContext { get; init; }

    /// <summary>LongRoPE: <c>long_factor</c>, one divisor per pair, which the compiled model never uses (its SeqLen is within <see cref="RopeOriginalContext"/>); null for the other kinds.</summary>
    public IReadOnlyList<float>? RopeLongFactors { get; init; }

    /// <summary>What a Llama-family config's rope scaling reads as (<see cref="ReadLlamaRopeScaling"/>).</summary>
    private readonly record struct LlamaRope(RotaryScaling? Scaling, int OriginalContext, float[]? LongFactors);

    /// <summary>
    /// A Llama-family config's rotary scaling with the model compiler's rules and defaults (ConfigReader.LlamaRopeScaling;
    /// the two must agree): <c>rope_scaling</c>, else transformers 5's <c>rope_parameters</c> when its <c>rope_type</c> is not
    /// default, with <c>rope_type</c> (or the older <c>type</c>):
    /// <list type="bullet">
    /// <item>default or absent: none; linear: a positive <c>factor</c>; dynamic: none (NTK scaling starts past
    /// <c>max_position_embeddings</c>), with a positive <c>factor</c>.</item>
    /// <item>llama3: <c>factor</c>, <c>low_freq_factor</c> and <c>high_freq_factor</c> with 0 &lt; low &lt; high, and a positive
    /// integer <c>original_max_position_embeddings</c>.</item>
    /// <item>yarn: <c>factor</c>; <c>original_max_position_embeddings</c>, else the config's <c>max_position_embeddings</c>;
    /// <c>beta_fast</c> 32 and <c>beta_slow</c> 1 where absent or 0; <c>truncate</c> true; the attention factor
    /// <c>attention_factor</c>, else <c>mscale(factor, mscale) / mscale(factor, mscale_all_dim)</c> where both are given and
    /// non-zero, else <c>mscale(factor, 1)</c>, with <c>mscale(s, m) = 0.1·m·ln s + 1</c> (1 for s ≤ 1).</item>
    /// <item>longrope: the original context is the top-level <c>original_max_position_embeddings</c>, else 4096 for phi3
    /// (Phi3Config's default), else <c>max_position_embeddings</c>; the factor is <c>max_position_embeddings</c> over it
    /// where the top level gives it or the model is a phi3, else <c>factor</c> (1 if absent); <c>short_factor</c> and
    /// <c>long_factor</c> of head_dim / 2 positive numbers each; the attention factor <c>attention_factor</c>, else
    /// <c>√(1 + ln factor / ln original)</c> (1 for a factor ≤ 1).</item>
    /// </list>
    /// The compiler's one rule that needs SeqLen (longrope only within the original context) is the exports' to check.
    /// </summary>
    /// <exception cref="InvalidDataException">A value the compiler refuses too; the message names the key.</exception>
    private static LlamaRope ReadLlamaRopeScaling(JsonElement root, string modelType, int headDim, string configPath)
    {
        string key = "rope_scaling";
        JsonElement rope = default;
        if (root.TryGetProperty("rope_scaling", out JsonElement scaling) && scaling.ValueKind != JsonValueKind.Null)
        {
            if (scaling.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"'{configPath}': rope_scaling {scaling.GetRawText()}: an object with rope_type and its numbers is expected");
            rope = scaling;
        }
        else if (root.TryGetProperty("rope_parameters", out JsonElement parameters) && parameters.ValueKind == JsonValueKind.Object
            && String(parameters, "rope_type") is { } parametersType && parametersType != "default")
        {
            (key, rope) = ("rope_parameters", parameters);
        }
        if (rope.ValueKind != JsonValueKind.Object) return default;

        string? type = String(rope, "rope_type") ?? String(rope, "type");
        InvalidDataException Refused(string why) => new($"'{configPath}': {key} {rope.GetRawText()}: {why}");
        double? Value(string name) => rope.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
        float Factor() => Value("factor") is double f && f > 0 && !double.IsInfinity(f) ? (float)f : throw Refused($"{type} scaling needs a positive factor");
        int PositiveInteger(double? value, string name) => value is double d && d >= 1 && d == Math.Floor(d) && d <= int.MaxValue
            ? (int)d
            : throw Refused($"{name} must be a positive integer");
        int Positions() => Integer(root, "max_position_embeddings") ?? throw new InvalidDataException($"'{configPath}' has no max_position_embeddings");

        switch (type)
        {
            case null or "default":
                return default;
            case "linear":
                return new LlamaRope(RotaryScaling.Linear(Factor()), 0, null);
            case "dynamic":
                // NTK scaling recomputes the frequencies only for a sequence longer than max_position_embeddings: the
                // compiler accepts it as the default rotation (and refuses an original_max_position_embeddings below SeqLen).
                _ = Factor();
                return default;
            case "llama3":
            {
                float factor = Factor();
                double? low = Value("low_freq_factor"), high = Value("high_freq_factor"), original = Value("original_max_position_embeddings");
                if (low is null || high is null || original is null)
                    throw Refused("llama3 scaling needs low_freq_factor, high_freq_factor and original_max_position_embeddings");
                if (!(low > 0) || !(high > low) || double.IsInfinity(high.Value))
                    throw Refused("llama3 scaling needs 0 < low_freq_factor < high_freq_factor");
                return new LlamaRope(RotaryScaling.Llama3(factor, (float)low, (float)high, PositiveInteger(original, "original_max_position_embeddings")), 0, null);
            }
            case "yarn":
            {
                float factor = Factor();
                int original = PositiveInteger(Value("original_max_position_embeddings") ?? Positions(), "original_max_position_embeddings");
                double betaFast = Value("beta_fast") is double bf && bf != 0 ? bf : 32, betaSlow = Value("beta_slow") is double bs && bs != 0 ? bs : 1;
                if (!(betaFast > 0) || !(betaSlow > 0) || double.IsInfinity(betaFast) || double.IsInfinity(betaSlow))
                    throw Refused("beta_fast and beta_slow must be positive");
                static double Mscale(double scale, double m) => scale <= 1 ? 1.0 : 0.1 * m * Math.Log(scale) + 1.0;
                double attention = Value("attention_factor")
                    ?? (Value("mscale") is double m && m != 0 && Value("mscale_all_dim") is double all && all != 0 ? Mscale(factor, m) / Mscale(factor, all) : Mscale(factor, 1));
                if (!(attention > 0) || double.IsInfinity(attention)) throw Refused("attention_factor must be positive");
                bool truncate = rope.TryGetProperty("truncate", out JsonElement t) && t.ValueKind == JsonValueKind.False ? false : true;
                return new LlamaRope(RotaryScaling.Yarn(factor, original, (float)betaFast, (float)betaSlow, truncate, (float)attention), 0, null);
            }
            case "longrope":
            {
                // Phi3Config keeps the pretrained context at the top level (4096 by default), and the factor is
                // max_position_embeddings over it; without it, rope_scaling's factor.
                bool phi3 = modelType == "phi3";
                int? topLevel = Integer(root, "original_max_position_embeddings");
                int original = topLevel ?? (phi3 ? 4096 : Positions());
                if (original <= 0)
                    throw new InvalidDataException($"'{configPath}': original_max_position_embeddings {original}: a positive integer is expected");
                double factor = topLevel is not null || phi3 ? (double)Positions() / original : Value("factor") ?? 1.0;
                double attention = Value("attention_factor") ?? (factor <= 1 ? 1.0 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(original)));
                float[] shortFactors = FactorList("short_factor"), longFactors = FactorList("long_factor");
                if (!(attention > 0) || double.IsInfinity(attention)) throw Refused("attention_factor must be positive");
                return new LlamaRope(RotaryScaling.LongRope((float)attention, shortFactors), original, longFactors);
            }
            default:
                throw Refused("of the scaled rotary positions linear, llama3, yarn, longrope and dynamic (within max_position_embeddings) are exported, as the compiler builds them");
        }

        float[] FactorList(string name)
        {
            int pairs = headDim / 2;
            if (rope.TryGetProperty(name, out JsonElement list) && list.ValueKind == JsonValueKind.Array && list.GetArrayLength() == pairs)
            {
                var values = new float[pairs];
                int i = 0;
                foreach (JsonElement v in list.EnumerateArray())
                {
                    if (v.ValueKind != JsonValueKind.Number || !(v.GetDouble() > 0) || double.IsInfinity(v.GetDouble())) break;
                    values[i++] = (float)v.GetDouble();
                }
                if (i == pairs) return values;
            }
            throw Refused($"longrope needs {name}: {pairs} positive numbers, one per pair of head_dim");
        }
    }

    /// <summary>
    /// Refuses a model whose SeqLen passes LongRoPE's original context, where transformers would turn by <c>long_factor</c>
    /// (the compiler refuses to build one; this catches a config other than the model's).
    /// </summary>
    internal void CheckRopeScalingFits(ModelLayout layout)
    {
        if (RopeScaling?.ScalingKind == RotaryScaling.Kind.LongRope && RopeOriginalContext > 0 && layout.SeqLen > RopeOriginalContext)
            throw new ArgumentException($"{layout.Name}: SeqLen {layout.SeqLen} passes LongRoPE's original_max_position_embeddings {RopeOriginalContext}, past which transformers turns by long_factor; " +
                "the compiler builds short_factor only, so the config is not the model's");
    }
}
