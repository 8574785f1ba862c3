using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using System.Text.Json;

namespace TransformerGen;

/// <summary>
/// How a Hugging Face model folder says its replies should be drawn: the <c>generation_config.json</c> beside its
/// config.json, read as transformers' <c>GenerationConfig</c> reads it. Instruct models ship their authors' choice
/// there (Llama-3.2-1B-Instruct: sampling at temperature 0.6 and top-p 0.9; Qwen2.5-0.5B-Instruct: temperature 0.7,
/// top-p 0.8, top-k 20 and repetition penalty 1.1); <see cref="ApplyTo"/> gives a <see cref="Sampler"/> those settings.
/// </summary>
/// <remarks>
/// <para>A key the file leaves out takes transformers' default: <c>do_sample</c> false, <c>temperature</c> 1,
/// <c>top_k</c> 50, <c>top_p</c> 1, <c>min_p</c> off, <c>repetition_penalty</c> 1. A key given as <c>null</c> turns its
/// filter off, as it does in transformers (so <c>"top_k": null</c> keeps every token). Without <c>do_sample</c> the
/// reply is greedy and only the repetition penalty applies, as <c>generate()</c> does. Keys that concern other
/// strategies (beams, lengths, watermarks) are not read; <see cref="MaxNewTokens"/> and <see cref="EosTokenIds"/> are
/// given for the caller to use.</para>
/// <para>One difference: transformers refuses <c>do_sample</c> with <c>temperature</c> 0; here it is greedy decoding,
/// as the sampler's temperature 0 is.</para>
/// </remarks>
public sealed record GenerationConfig
{
    /// <summary>The file's name in a model folder.</summary>
    public const string FileName = "generation_config.json";

    /// <summary>transformers' defaults: greedy decoding, no penalty.</summary>
    public static GenerationConfig Default { get; } = new();

    /// <summary><c>do_sample</c>: draw from the distribution (true) or take the most likely token (false, the default).</summary>
    public bool DoSample { get; init; }

    /// <summary><c>temperature</c>, at least 0 (1 when absent or null).</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary><c>top_k</c>, at least 0; 0 keeps every token (50 when absent, 0 when null).</summary>
    public int TopK { get; init; } = 50;

    /// <summary><c>top_p</c>, in [0, 1] (1, off, when absent or null).</summary>
    public float TopP { get; init; } = 1f;

    /// <summary><c>min_p</c>, in [0, 1] (0, off, when absent or null).</summary>
    public float MinP { get; init; }

    /// <summary><c>repetition_penalty</c>, positive (1, off, when absent or null).</summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary><c>eos_token_id</c>: the ids that end a reply (one or a list; none when absent).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary><c>max_new_tokens</c>, or null when absent.</summary>
    public int? MaxNewTokens { get; init; }

    /// <summary>
    /// The keys read that the file gives a value (not null): what a server that takes only the file's own settings as
    /// defaults (vLLM's OpenAI server does so, ignoring <c>do_sample</c>) reads, where transformers fills in the rest.
    /// </summary>
    public IReadOnlySet<string> Given { get; init; } = new HashSet<string>();

    /// <summary>
    /// Reads <paramref name="path"/>: a <c>generation_config.json</c> file, or a folder holding one.
    /// </summary>
    /// <exception cref="FileNotFoundException">There is no such file (in the folder).</exception>
    /// <exception cref="InvalidDataException">The file is not a JSON object, or a key it reads has a value of the wrong kind or out of range (the message names the file and the key).</exception>
    public static GenerationConfig Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string file = Directory.Exists(path) ? Path.Combine(path, FileName) : path;
        if (!File.Exists(file)) throw new FileNotFoundException($"'{file}' does not exist", file);
        return Parse(File.ReadAllBytes(file), file);
    }

    /// <summary>The folder's <c>generation_config.json</c>, or <see cref="Default"/> when it has none.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">As for <see cref="Load"/>.</exception>
    public static GenerationConfig FromFolder(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"the model folder '{folder}' does not exist");
        string file = Path.Combine(folder, FileName);
        return File.Exists(file) ? Parse(File.ReadAllBytes(file), file) : Default;
    }

    /// <summary>Reads the JSON text of a <c>generation_config.json</c>; <paramref name="source"/> names it in messages.</summary>
    /// <exception cref="InvalidDataException">As for <see cref="Load"/>.</exception>
    public static GenerationConfig Parse(ReadOnlySpan<byte> json, string source = FileName)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray());
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source} is not JSON: {e.Message}", e);
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{source} holds {root.ValueKind}, not a JSON object");
            var given = new HashSet<string>(StringComparer.Ordinal);
            var reader = new KeyReader(root, source, given);
            return new GenerationConfig
            {
                DoSample = reader.Boolean("do_sample") ?? false,
                Temperature = reader.Number("temperature", 1f, 0f, float.MaxValue, "at least 0") ?? 1f,
                TopK = reader.Integer("top_k", 50, 0, "at least 0") ?? 0,
                TopP = reader.Number("top_p", 1f, 0f, 1f, "in [0, 1]") ?? 1f,
                MinP = reader.Number("min_p", 0f, 0f, 1f, "in [0, 1]") ?? 0f,
                RepetitionPenalty = reader.Number("repetition_penalty", 1f, float.Epsilon, float.MaxValue, "above 0") ?? 1f,
                EosTokenIds = reader.Ids("eos_token_id"),
                MaxNewTokens = reader.Integer("max_new_tokens", null, 1, "at least 1"),
                Given = given, // filled by the reads above
            };
        }
    }

    /// <summary>
    /// Sets <paramref name="sampler"/>'s temperature, top-k, top-p, min-p and repetition penalty to this configuration's,
    /// and its presence and frequency penalties to 0; without <see cref="DoSample"/>, temperature 0 (greedy).
    /// </summary>
    public void ApplyTo(Sampler sampler)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        sampler.Temperature = DoSample ? Temperature : 0f;
        sampler.TopK = DoSample ? TopK : 0;
        sampler.TopP = DoSample ? TopP : 1f;
        sampler.MinP = DoSample ? MinP : 0f;
        sampler.RepetitionPenalty = RepetitionPenalty;
        sampler.PresencePenalty = 0f;
        sampler.FrequencyPenalty = 0f;
    }

    /// <summary>The sampling it asks for, in words: "greedy" or "temperature 0.6, top-k 50, top-p 0.9", with the penalty and min-p where set.</summary>
    public string Describe()
    {
        var text = new StringBuilder();
        if (!DoSample || Temperature == 0f || TopK == 1) text.Append("greedy");
        else
        {
            text.Append(CultureInfo.InvariantCulture, $"temperature {Temperature}, top-k {(TopK == 0 ? "off" : TopK)}, top-p {TopP}");
            if (MinP > 0f) text.Append(CultureInfo.InvariantCulture, $", min-p {MinP}");
        }
        if (RepetitionPenalty != 1f) text.Append(CultureInfo.InvariantCulture, $", repetition penalty {RepetitionPenalty}");
        return text.ToString();
    }

    // Typed reads of the keys, each naming the file and the key when its value does not fit; a key read with a value (not
    // null) goes into given.
    private readonly struct KeyReader(JsonElement root, string source, HashSet<string> given)
    {
        private bool TryGet(string key, out JsonElement value)
        {
            if (!root.TryGetProperty(key, out value)) return false;
            if (value.ValueKind != JsonValueKind.Null) given.Add(key);
            return true;
        }

        private InvalidDataException Bad(string key, JsonElement value, string expected) =>
            new($"{source}: \"{key}\" is {value.GetRawText()}; it must be {expected}");

        public bool? Boolean(string key)
        {
            if (!TryGet(key, out JsonElement value) || value.ValueKind == JsonValueKind.Null) return null;
            return value.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Bad(key, value, "true or false"),
            };
        }

        // absent → whenAbsent; null → null (the filter off); else a number in [min, max].
        public float? Number(string key, float whenAbsent, float min, float max, string expected)
        {
            if (!TryGet(key, out JsonElement value)) return whenAbsent;
            if (value.ValueKind == JsonValueKind.Null) return null;
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double number) || !(number >= min && number <= max))
                throw Bad(key, value, $"a number {expected}");
            return (float)number;
        }

        public int? Integer(string key, int? whenAbsent, int min, string expected)
        {
            if (!TryGet(key, out JsonElement value)) return whenAbsent;
            if (value.ValueKind == JsonValueKind.Null) return null;
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int number) || number < min)
                throw Bad(key, value, $"a whole number {expected}");
            return number;
        }

        public int[] Ids(string key)
        {
            if (!TryGet(key, out JsonElement value) || value.ValueKind == JsonValueKind.Null) return [];
            if (value.ValueKind == JsonValueKind.Number) return [Id(key, value)];
            if (value.ValueKind != JsonValueKind.Array) throw Bad(key, value, "a token id or a list of them");
            var ids = new int[value.GetArrayLength()];
            int i = 0;
            foreach (JsonElement element in value.EnumerateArray()) ids[i++] = Id(key, element);
            return ids;
        }

        private int Id(string key, JsonElement value) =>
            value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int id) && id >= 0 ? id : throw Bad(key, value, "a token id or a list of them (whole numbers, at least 0)");
    }
}
