using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;

namespace TransformerGen.Samples.Hub;

/// <summary>
/// How a sample compiled for several models picks the one a downloaded folder holds: by the <c>model_type</c> of the
/// folder's config.json against each compiled config.json's. samples/Embeddings and samples/Translate use it (Chat links
/// the Hub folder too).
/// </summary>
public static class ModelTypeChoice
{
    /// <summary>The <c>model_type</c> of a compiled config.json's text.</summary>
    /// <exception cref="ArgumentException">The config has none.</exception>
    public static string Of(string compiledConfig)
    {
        using JsonDocument document = JsonDocument.Parse(compiledConfig);
        return document.RootElement.TryGetProperty("model_type", out JsonElement type) && type.GetString() is string text
            ? text
            : throw new ArgumentException("the compiled config.json has no model_type", nameof(compiledConfig));
    }

    /// <summary>
    /// The model whose <paramref name="modelType"/> the config.json at <paramref name="configPath"/> has; null, with the
    /// reason and what to do written to <paramref name="error"/>, when none has it or the file is not JSON. When several
    /// have it (SmolLM2-135M-Instruct and Llama-3.2-1B-Instruct are both <c>llama</c>) and <paramref name="compiledConfig"/>
    /// is given, the one whose compiled config.json the folder's agrees with (<see cref="ArchitectureCheck.Differences"/>
    /// finds nothing), else the one it differs from on the fewest keys, the first of them on a tie: its check then names
    /// those keys. Without <paramref name="compiledConfig"/>, the first of them.
    /// </summary>
    /// <param name="sample">The sample's folder (<c>samples/Translate</c>), for the advice to compile it for another model.</param>
    /// <param name="compiledConfig">The text of the config.json each model was compiled from, to tell models of one model_type apart.</param>
    public static T? Choose<T>(IReadOnlyList<T> specs, Func<T, string> modelType, Func<T, string> repository, string configPath, string sample, TextWriter error,
        Func<T, string>? compiledConfig = null)
        where T : class
    {
        string? found;
        try
        {
            using JsonDocument config = JsonDocument.Parse(File.ReadAllBytes(configPath));
            found = config.RootElement.ValueKind == JsonValueKind.Object
                    && config.RootElement.TryGetProperty("model_type", out JsonElement type) && type.ValueKind == JsonValueKind.String
                ? type.GetString()
                : null;
        }
        catch (JsonException e)
        {
            error.WriteLine($"{configPath} is not valid JSON: {e.Message}");
            return null;
        }

        T[] candidates = specs.Where(spec => modelType(spec) == found).ToArray();
        if (candidates.Length > 0)
        {
            return candidates.Length == 1 || compiledConfig is null ? candidates[0] : Closest(candidates, compiledConfig, configPath);
        }

        string what = found is null ? "gives no model_type" : $"has model_type {found}";
        error.WriteLine($"{configPath} {what}; this program runs {string.Join(", ", specs.Select(spec => $"{modelType(spec)} ({repository(spec)})"))}.");
        error.WriteLine($"Download one of those, or compile the sample for this model: add its config.json under {sample}/models and a model class for it.");
        return null;
    }

    /// <summary>The candidate the folder's config.json differs from on the fewest architecture keys (none: the folder's model), the first on a tie.</summary>
    private static T Closest<T>(T[] candidates, Func<T, string> compiledConfig, string configPath)
    {
        try
        {
            return candidates.MinBy(candidate => ArchitectureCheck.Differences(compiledConfig(candidate), configPath).Count)!;
        }
        catch (InvalidDataException)
        {
            return candidates[0]; // not a JSON object: the first one's check says so
        }
    }
}
