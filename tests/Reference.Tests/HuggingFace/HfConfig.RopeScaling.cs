using System;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>The <c>rope_type</c>s of a Llama-family <c>rope_scaling</c> that the reference computes.</summary>
internal enum HfRopeKind { Linear, Dynamic, Llama3, Yarn, LongRope }

/// <summary>
/// A Llama-family <c>rope_scaling</c> (or transformers 5's <c>rope_parameters</c> with a <c>rope_type</c> other than
/// default) as the config gives it, after transformers' defaults: the numbers the kind reads, the others left at zero or
/// null. What it does to the rotation is <see cref="HfRope"/>'s.
/// </summary>
/// <param name="Factor">
/// linear, dynamic, llama3, yarn: <c>factor</c>. longrope: <c>max_position_embeddings / original_max_position_embeddings</c>
/// where the config has a top-level original context (Phi3Config always has), else <c>factor</c>.
/// </param>
/// <param name="LowFrequencyFactor">llama3 <c>low_freq_factor</c>.</param>
/// <param name="HighFrequencyFactor">llama3 <c>high_freq_factor</c>.</param>
/// <param name="OriginalPositions">
/// llama3: <c>original_max_position_embeddings</c> (required); yarn: rope_scaling's, else <c>max_position_embeddings</c>;
/// longrope: the top-level one, else <c>max_position_embeddings</c>; dynamic: the length past which it would rescale θ
/// (rope_scaling's <c>original_max_position_embeddings</c>, else <c>max_position_embeddings</c>).
/// </param>
/// <param name="AttentionFactor">yarn and longrope: <c>attention_factor</c> when the config gives one; null: derived.</param>
/// <param name="Mscale">yarn <c>mscale</c> (null, or 0, when absent: Python's truthiness decides).</param>
/// <param name="MscaleAllDim">yarn <c>mscale_all_dim</c>.</param>
/// <param name="BetaFast">yarn <c>beta_fast</c>, 32 when absent, null or 0 (<c>get("beta_fast") or 32</c>).</param>
/// <param name="BetaSlow">yarn <c>beta_slow</c>, 1 likewise.</param>
/// <param name="Truncate">yarn <c>truncate</c> (default true): the correction range rounded outwards to whole pairs.</param>
/// <param name="ShortFactor">longrope <c>short_factor</c>: one divisor per pair, for sequences within the original context.</param>
/// <param name="LongFactor">longrope <c>long_factor</c>: one divisor per pair, for longer sequences.</param>
internal sealed record HfRopeScaling(
    HfRopeKind Kind,
    double Factor,
    double LowFrequencyFactor = 0,
    double HighFrequencyFactor = 0,
    int OriginalPositions = 0,
    double? AttentionFactor = null,
    double? Mscale = null,
    double? MscaleAllDim = null,
    double BetaFast = 32,
    double BetaSlow = 1,
    bool Truncate = true,
    double[]? ShortFactor = null,
    double[]? LongFactor = null);

internal sealed partial record HfConfig
{
    /// <summary>Llama, Qwen2, Qwen3, Phi-3: the rotation's scaling, null for the default rotation.</summary>
    public HfRopeScaling? RopeScaling { get; init; }

    // modeling_rope_utils.py, as the Llama family reads it: rope_scaling's "rope_type" (or the older "type") picks the
    // init function; transformers 5 keeps the same keys under rope_parameters beside rope_theta. Keys another kind
    // would read are ignored, as there; keys that change this kind's numbers in a way not implemented are refused.
    private static HfRopeScaling? LlamaRopeScaling(JsonObject json, bool phi3, int maxPositions, int headDim)
    {
        JsonObject? rope = null;
        if (json.ContainsKey("rope_scaling") && json["rope_scaling"] is JsonNode node)
            rope = node as JsonObject ?? throw new InvalidDataException($"rope_scaling {node.ToJsonString()} is not an object");
        else if (json["rope_parameters"] is JsonObject parameters) rope = parameters;
        if (rope is null) return null;
        string type = String(rope, "rope_type") ?? String(rope, "type") ?? "default";
        double Factor() => Double(rope, "factor") is double f && f > 0 ? f
            : throw new InvalidDataException($"{type} rope scaling needs a positive factor");
        int Original(string what) => Int(rope, "original_max_position_embeddings")
            ?? throw new InvalidDataException($"{what} rope scaling needs original_max_position_embeddings");
        switch (type)
        {
            case "default":
                return null;
            case "linear":
                return new HfRopeScaling(HfRopeKind.Linear, Factor());
            case "dynamic":
                // NTK rescaling of θ happens only for a sequence past this length; below it the rotation is the default one.
                return new HfRopeScaling(HfRopeKind.Dynamic, Factor(), OriginalPositions: Int(rope, "original_max_position_embeddings") ?? maxPositions);
            case "llama3":
            {
                double low = Double(rope, "low_freq_factor") ?? throw new InvalidDataException("llama3 rope scaling needs low_freq_factor");
                double high = Double(rope, "high_freq_factor") ?? throw new InvalidDataException("llama3 rope scaling needs high_freq_factor");
                return new HfRopeScaling(HfRopeKind.Llama3, Factor(), low, high, Original("llama3"));
            }
            case "yarn":
            {
                // Some transformers versions replace factor by max_position_embeddings / original_max_position_embeddings
                // when rope_scaling names the original context; current ones keep the explicit factor (and warn when the
                // two differ). The fixtures make them agree; the explicit factor is used here.
                double? Truthy(string key) => Double(rope, key) is double v && v != 0 ? v : null;
                return new HfRopeScaling(HfRopeKind.Yarn, Factor(),
                    OriginalPositions: Int(rope, "original_max_position_embeddings") ?? maxPositions,
                    AttentionFactor: Double(rope, "attention_factor"),
                    Mscale: Truthy("mscale"),
                    MscaleAllDim: Truthy("mscale_all_dim"),
                    BetaFast: Truthy("beta_fast") ?? 32,
                    BetaSlow: Truthy("beta_slow") ?? 1,
                    Truncate: Bool(rope, "truncate") ?? true);
            }
            case "longrope":
            {
                // Phi3Config always has original_max_position_embeddings (4096 by default) at the top level; another
                // config has it when its file does. With it, the factor is max_position_embeddings over it.
                if (rope.ContainsKey("original_max_position_embeddings"))
                    throw new NotSupportedException("longrope with original_max_position_embeddings inside rope_scaling is not implemented (the top-level key is)");
                int? original = Int(json, "original_max_position_embeddings") ?? (phi3 ? 4096 : null);
                double factor = original is int o ? (double)maxPositions / o : Factor();
                return new HfRopeScaling(HfRopeKind.LongRope, factor,
                    OriginalPositions: original ?? maxPositions,
                    AttentionFactor: Double(rope, "attention_factor"),
                    ShortFactor: Factors(rope, "short_factor", headDim / 2),
                    LongFactor: Factors(rope, "long_factor", headDim / 2));
            }
            default:
                throw new NotSupportedException($"rope_type '{type}' is not implemented (default, linear, dynamic, llama3, yarn and longrope are)");
        }
    }

    private static double[] Factors(JsonObject rope, string key, int pairs)
    {
        double[] values = rope[key] is JsonArray list ? list.Select(v => v?.GetValue<double>() ?? double.NaN).ToArray()
            : throw new InvalidDataException($"longrope rope scaling needs {key}");
        if (values.Length != pairs) throw new InvalidDataException($"{key} has {values.Length} numbers, head_dim / 2 = {pairs}");
        return values;
    }
}
