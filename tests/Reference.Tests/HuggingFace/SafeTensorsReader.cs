using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>What the reference tests read back from the safetensors files the references write: shapes, and BF16 values.</summary>
internal static class SafeTensorsReader
{
    /// <summary>Each tensor's shape, by name.</summary>
    public static Dictionary<string, long[]> Shapes(string file)
    {
        byte[] bytes = File.ReadAllBytes(file);
        long length = BitConverter.ToInt64(bytes, 0);
        JsonObject header = JsonNode.Parse(System.Text.Encoding.UTF8.GetString(bytes, 8, (int)length))!.AsObject();
        return header.Where(e => e.Key != "__metadata__").ToDictionary(e => e.Key, e => e.Value!["shape"]!.AsArray().Select(v => v!.GetValue<long>()).ToArray());
    }

    /// <summary>The BF16 tensors of a file, widened to float.</summary>
    public static Dictionary<string, float[]> Bf16(string file)
    {
        byte[] bytes = File.ReadAllBytes(file);
        long length = BitConverter.ToInt64(bytes, 0);
        JsonObject header = JsonNode.Parse(System.Text.Encoding.UTF8.GetString(bytes, 8, (int)length))!.AsObject();
        var result = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach ((string name, JsonNode? entry) in header)
        {
            if (name == "__metadata__" || entry!["dtype"]!.GetValue<string>() != "BF16") continue;
            JsonArray offsets = entry["data_offsets"]!.AsArray();
            long from = 8 + length + offsets[0]!.GetValue<long>(), to = 8 + length + offsets[1]!.GetValue<long>();
            var floats = new float[(to - from) / 2];
            for (int i = 0; i < floats.Length; i++) floats[i] = BitConverter.Int32BitsToSingle(BitConverter.ToUInt16(bytes, (int)(from + 2 * i)) << 16);
            result.Add(name, floats);
        }
        return result;
    }
}
