using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;

namespace TransformerGen;

/// <summary>
/// The index of a checkpoint split into shards, <c>model.safetensors.index.json</c>:
/// <c>{"metadata": {…}, "weight_map": {"tensor name": "model-00001-of-00002.safetensors", …}}</c>, the shards being
/// files in the index's directory. Read with <see cref="JsonDocument"/>, no reflection-based serializer (NativeAOT, trimming).
/// </summary>
internal sealed class SafeTensorsShardIndex
{
    private SafeTensorsShardIndex(string path, Dictionary<string, string> weightMap, List<string> shards)
    {
        Path = path;
        WeightMap = weightMap;
        Shards = shards;
    }

    /// <summary>The index file.</summary>
    public string Path { get; }

    /// <summary>Each tensor name (as the files spell it) and the shard file that holds it.</summary>
    public IReadOnlyDictionary<string, string> WeightMap { get; }

    /// <summary>The shard files the weight map names, each once, in ordinal order.</summary>
    public IReadOnlyList<string> Shards { get; }

    /// <summary>Where shard <paramref name="shard"/> lies: beside the index.</summary>
    public string ShardPath(string shard) => System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path)) ?? "", shard);

    /// <summary>Reads and checks the index at <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">The file is not an index: not JSON, no <c>weight_map</c> object of strings, a name twice, a shard that is not a plain file name.</exception>
    public static SafeTensorsShardIndex Read(string path)
    {
        long length = new FileInfo(path).Length;
        if (length > SafeTensors.MaxHeaderBytes)
            throw Invalid(path, $"it has {length} bytes, more than the {SafeTensors.MaxHeaderBytes} an index may have");
        byte[] json = File.ReadAllBytes(path);

        var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
        var shards = new SortedSet<string>(StringComparer.Ordinal);
        try
        {
            using JsonDocument document = JsonDocument.Parse(json);
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Invalid(path, $"it is a JSON {root.ValueKind}, not an object");
            if (root.TryGetProperty("metadata", out JsonElement metadata) && metadata.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
                throw Invalid(path, $"\"metadata\" is a JSON {metadata.ValueKind}, not an object");
            if (!root.TryGetProperty("weight_map", out JsonElement map) || map.ValueKind != JsonValueKind.Object)
                throw Invalid(path, "it has no \"weight_map\" object");
            foreach (JsonProperty entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw Invalid(path, $"weight_map entry '{entry.Name}' is a JSON {entry.Value.ValueKind}, not a file name");
                string shard = entry.Value.GetString()!;
                // A shard is a file beside the index; a path could reach anywhere.
                if (shard.Length == 0 || shard is "." or ".." || shard.IndexOfAny(['/', '\\']) >= 0 || System.IO.Path.IsPathRooted(shard))
                    throw Invalid(path, $"weight_map entry '{entry.Name}' names '{shard}', not a file name in the index's directory");
                if (!weightMap.TryAdd(entry.Name, shard))
                    throw Invalid(path, $"weight_map names '{entry.Name}' more than once");
                shards.Add(shard);
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw Invalid(path, $"it is not valid JSON: {e.Message}", e);
        }
        if (weightMap.Count == 0)
            throw Invalid(path, "its weight_map is empty");
        return new SafeTensorsShardIndex(path, weightMap, [.. shards]);
    }

    internal static InvalidDataException Invalid(string path, string message, Exception? inner = null) =>
        new($"safetensors index '{path}': {message}", inner);
}
