using System;
using System.Collections.Generic;
using System.Linq;

namespace TransformerGen.Samples.Hub;

/// <summary>The forms a sample's <c>--weights</c> option takes (fp32, bf16, int8) and the <see cref="WeightType"/> each names.</summary>
internal static class WeightTypeNames
{
    /// <summary>Each name and its type, in the order the option's help lists them.</summary>
    public static IReadOnlyDictionary<string, WeightType> All { get; } = new Dictionary<string, WeightType>(StringComparer.Ordinal)
    {
        ["fp32"] = WeightType.Float32,
        ["bf16"] = WeightType.BFloat16,
        ["int8"] = WeightType.Int8,
    };

    /// <summary>The name of <paramref name="type"/>, as the load line prints it.</summary>
    public static string Name(WeightType type) => All.First(pair => pair.Value == type).Key;
}
