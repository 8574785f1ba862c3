using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>One tensor for a safetensors file: its dtype name (<c>F32</c>, <c>BF16</c>, …), shape and little-endian bytes.</summary>
internal sealed record SafeTensor(string Name, string Dtype, long[] Shape, byte[] Data);

/// <summary>
/// A minimal safetensors writer, laid out as <c>huggingface/safetensors</c> writes: an 8-byte little-endian header
/// length, a compact JSON header (<c>__metadata__</c> first, then each tensor's <c>dtype</c>, <c>shape</c> and
/// <c>data_offsets</c> relative to the data), padded with spaces to a multiple of 8 bytes, then the tensors' bytes back
/// to back. Tensors are stored in the library's order: widest dtype first, then by name.
/// </summary>
internal static class SafeTensorsWriter
{
    public static void Write(string path, IReadOnlyList<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        SafeTensor[] ordered = tensors.OrderByDescending(t => ElementSize(t.Dtype)).ThenBy(t => t.Name, StringComparer.Ordinal).ToArray();
        if (ordered.Select(t => t.Name).Distinct(StringComparer.Ordinal).Count() != ordered.Length)
            throw new ArgumentException("tensor names repeat", nameof(tensors));

        var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            foreach ((string key, string value) in metadata ?? new Dictionary<string, string> { ["format"] = "pt" })
                json.WriteString(key, value);
            json.WriteEndObject();
            long offset = 0;
            foreach (SafeTensor t in ordered)
            {
                long expected = t.Shape.Aggregate(1L, (a, b) => a * b) * ElementSize(t.Dtype);
                if (t.Data.LongLength != expected) throw new ArgumentException($"{t.Name}: {t.Data.LongLength} bytes for shape [{string.Join(",", t.Shape)}] of {t.Dtype}");
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.Dtype);
                json.WriteStartArray("shape");
                foreach (long d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.Data.LongLength);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.Data.LongLength;
            }
            json.WriteEndObject();
        }
        while (header.Length % 8 != 0) header.WriteByte((byte)' ');

        using FileStream file = File.Create(path);
        Span<byte> length = stackalloc byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        file.Write(length);
        header.Position = 0;
        header.CopyTo(file);
        foreach (SafeTensor t in ordered) file.Write(t.Data);
    }

    public static int ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" => 8,
        "F32" or "I32" => 4,
        "F16" or "BF16" => 2,
        _ => throw new NotSupportedException($"dtype {dtype}"),
    };
}
