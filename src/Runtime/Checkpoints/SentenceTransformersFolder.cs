using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;

namespace TransformerGen;

/// <summary>
/// The sentence-transformers modules of a model folder, as the loader needs them: the Dense layers after the pooling
/// keep their weights in files of their own (<c>2_Dense/model.safetensors</c> holding <c>linear.weight</c> and
/// <c>linear.bias</c>), which a compiled sentence embedder names <c>2_Dense.linear.weight</c> and <c>2_Dense.linear.bias</c>.
/// </summary>
internal static class SentenceTransformersFolder
{
    /// <summary>The name of the file listing a sentence-transformers folder's modules.</summary>
    public const string ModulesFileName = "modules.json";

    private const string DenseType = "sentence_transformers.models.Dense";
    private const string NormalizeType = "sentence_transformers.models.Normalize";

    /// <summary>
    /// The module folder a parameter belongs to (<c>2_Dense</c> for <c>2_Dense.linear.weight</c>), or null for a parameter
    /// of the transformer itself.
    /// </summary>
    public static string? ModuleOf(string parameter)
    {
        int dot = parameter.IndexOf('.');
        if (dot <= 0) return null;
        string module = parameter[..dot];
        int underscore = module.IndexOf('_');
        if (underscore <= 0 || !module.EndsWith("_Dense", StringComparison.Ordinal)) return null;
        for (int i = 0; i < underscore; i++)
            if (!char.IsAsciiDigit(module[i])) return null;
        return module;
    }

    /// <summary>
    /// Whether the Dense module at <paramref name="folder"/>/<paramref name="module"/> applies tanh after its product
    /// (<c>activation_function</c> <c>torch.nn.modules.activation.Tanh</c>, the module's default) or nothing (<c>Identity</c>).
    /// </summary>
    /// <exception cref="InvalidDataException">Its config.json is missing, or names another activation.</exception>
    public static bool DenseTanh(string folder, string module)
    {
        string path = Path.Combine(folder, module, "config.json");
        if (!File.Exists(path)) throw new InvalidDataException($"'{path}' does not exist: the Dense layer '{module}' says its activation there");
        using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(path));
        string activation = document.RootElement.TryGetProperty("activation_function", out JsonElement value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()! : "torch.nn.modules.activation.Tanh";
        return activation switch
        {
            "torch.nn.modules.activation.Tanh" => true,
            "torch.nn.modules.linear.Identity" => false,
            _ => throw new InvalidDataException($"'{path}': activation_function {activation} is neither Tanh nor Identity"),
        };
    }

    /// <summary>
    /// The Dense modules <c>modules.json</c> in <paramref name="folder"/> lists, by path (empty when the folder has no such
    /// file): a folder whose embeddings go through Dense layers that a model was compiled without would give other
    /// embeddings than sentence-transformers does, so the loader refuses it.
    /// </summary>
    /// <exception cref="InvalidDataException">modules.json is not a list of modules.</exception>
    public static List<string> DenseModules(string folder)
    {
        var dense = new List<string>();
        foreach ((string type, string? path) in Modules(folder) ?? [])
            if (type == DenseType && path is not null) dense.Add(path);
        return dense;
    }

    /// <summary>
    /// Whether <c>modules.json</c> in <paramref name="folder"/> lists a <c>Normalize</c> module (sentence-transformers then
    /// gives unit vectors; without one, the pooled vectors as they are); null when the folder has no such file.
    /// </summary>
    /// <exception cref="InvalidDataException">modules.json is not a list of modules.</exception>
    public static bool? Normalizes(string folder) => Modules(folder)?.Exists(m => m.Type == NormalizeType);

    /// <summary>The modules <c>modules.json</c> in <paramref name="folder"/> lists (type and path), or null without the file.</summary>
    private static List<(string Type, string? Path)>? Modules(string folder)
    {
        string path = Path.Combine(folder, ModulesFileName);
        if (!File.Exists(path)) return null;
        var modules = new List<(string, string?)>();
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(path));
            if (document.RootElement.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"'{path}' is not a list of modules");
            foreach (JsonElement module in document.RootElement.EnumerateArray())
                if (module.ValueKind == JsonValueKind.Object && module.TryGetProperty("type", out JsonElement type) && type.ValueKind == JsonValueKind.String)
                    modules.Add((type.GetString()!, module.TryGetProperty("path", out JsonElement at) && at.ValueKind == JsonValueKind.String ? at.GetString() : null));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {e.Message}", e);
        }
        return modules;
    }
}
