using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using TransformerGen.Samples.Serving;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// The prompts a sentence-transformers folder names in <c>config_sentence_transformers.json</c> (<c>"prompts"</c>:
/// EmbeddingGemma's <c>query</c> → <c>task: search result | query: </c>, <c>document</c> → <c>title: none | text: </c>,
/// …), and its <c>default_prompt_name</c>: what sentence-transformers' <c>encode(…, prompt_name=…)</c> puts before a text.
/// A folder without the file has none.
/// </summary>
public sealed class SentencePrompts
{
    /// <summary>The file's name in a model folder.</summary>
    public const string FileName = "config_sentence_transformers.json";

    private SentencePrompts(IReadOnlyDictionary<string, string> prompts, string? defaultName) => (Prompts, DefaultName) = (prompts, defaultName);

    /// <summary>Each prompt by its name.</summary>
    public IReadOnlyDictionary<string, string> Prompts { get; }

    /// <summary>The prompt a text takes when the request names none, or null.</summary>
    public string? DefaultName { get; }

    /// <summary>The prompts of <paramref name="folder"/>.</summary>
    /// <exception cref="StartupException">The file is not JSON, a prompt is not a string, or the default names no prompt.</exception>
    public static SentencePrompts Read(string folder)
    {
        string path = Path.Combine(folder, FileName);
        var prompts = new Dictionary<string, string>(System.StringComparer.Ordinal);
        if (!File.Exists(path)) return new SentencePrompts(prompts, null);
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(path));
            JsonElement root = document.RootElement;
            if (root.TryGetProperty("prompts", out JsonElement list) && list.ValueKind == JsonValueKind.Object)
                foreach (JsonProperty prompt in list.EnumerateObject())
                    prompts[prompt.Name] = prompt.Value.ValueKind == JsonValueKind.String
                        ? prompt.Value.GetString()!
                        : throw new StartupException($"{path}: prompt '{prompt.Name}' is not a string.");
            string? defaultName = root.TryGetProperty("default_prompt_name", out JsonElement name) && name.ValueKind == JsonValueKind.String ? name.GetString() : null;
            if (defaultName is not null && !prompts.ContainsKey(defaultName))
                throw new StartupException($"{path}: default_prompt_name '{defaultName}' names no prompt of the file.");
            return new SentencePrompts(prompts, defaultName);
        }
        catch (JsonException e)
        {
            throw new StartupException($"{path} is not valid JSON: {e.Message}", e);
        }
    }
}
