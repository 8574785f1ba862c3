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
    /// reason and what to do written to <paramref name="error"/>, when none has it or the file is not JSON.
    /// </summary>
    /// <param name="sample">The sample's folder (<c>samples/Translate</c>), for the advice to compile it for another model.</param>
    public static T? Choose<T>(IReadOnlyList<T> specs, Func<T, string> modelType, Func<T, string> repository, string configPath, string sample, TextWriter error)
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

        if (specs.FirstOrDefault(spec => modelType(spec) == found) is T chosen)
        {
            return chosen;
        }

        string what = found is null ? "gives no model_type" : $"has model_type {found}";
        error.WriteLine($"{configPath} {what}; this program runs {string.Join(", ", specs.Select(spec => $"{modelType(spec)} ({repository(spec)})"))}.");
        error.WriteLine($"Download one of those, or compile the sample for this model: add its config.json under {sample}/models and a model class for it.");
        return null;
    }
}
