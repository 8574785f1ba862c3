using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace TransformerGen;

/// <summary>One tensor as a safetensors header describes it; offsets are relative to the start of the data.</summary>
internal sealed record SafeTensorsEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// The JSON header of a safetensors file (https://github.com/huggingface/safetensors, "Format"): reading it
/// with every structural check, and writing it. Only <c>System.Text.Json</c>'s reader, document and writer are
/// used, never the reflection-based serializer, so this works under NativeAOT and trimming.
/// </summary>
internal sealed class SafeTensorsHeader
{
    /// <summary>The reserved key of the string-to-string metadata map.</summary>
    public const string MetadataKey = "__metadata__";

    private SafeTensorsHeader(IReadOnlyList<SafeTensorsEntry> entries, IReadOnlyDictionary<string, string> metadata, long dataStart, long dataLength)
    {
        Entries = entries;
        Metadata = metadata;
        DataStart = dataStart;
        DataLength = dataLength;
    }

    /// <summary>The same header with <paramref name="prefix"/> before every tensor's name (a module file read into a model that prefixes its tensors).</summary>
    public SafeTensorsHeader WithNamePrefix(string prefix)
    {
        var entries = new SafeTensorsEntry[Entries.Count];
        for (int i = 0; i < entries.Length; i++) entries[i] = Entries[i] with { Name = prefix + Entries[i].Name };
        return new SafeTensorsHeader(entries, Metadata, DataStart, DataLength);
    }

    /// <summary>The tensors, in header order.</summary>
    public IReadOnlyList<SafeTensorsEntry> Entries { get; }

    /// <summary>The <c>__metadata__</c> map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Position in the file of the first data byte: 8 + the header length.</summary>
    public long DataStart { get; }

    /// <summary>Bytes from <see cref="DataStart"/> to the end of the file.</summary>
    public long DataLength { get; }

    /// <summary>
    /// Reads and checks the length prefix and the JSON header: the length must fit in the file and
    /// <see cref="SafeTensors.MaxHeaderBytes"/> (checked before anything is allocated), the JSON must be an
    /// object of well-formed entries, and no name may appear twice.
    /// </summary>
    public static SafeTensorsHeader Read(SafeTensorsSource source)
    {
        string path = source.Name;
        long fileLength = source.Length;
        if (fileLength < sizeof(ulong))
            throw SafeTensors.Invalid(path, $"the file has {fileLength} bytes, fewer than the 8-byte header length; it is truncated or not a safetensors file");
        Span<byte> prefix = stackalloc byte[sizeof(ulong)];
        SafeTensors.ReadExactly(source, prefix, 0, "the header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > SafeTensors.MaxHeaderBytes)
            throw SafeTensors.Invalid(path, $"the header length field says {headerLength} bytes, more than the {SafeTensors.MaxHeaderBytes} allowed; the file is corrupt or not a safetensors file");
        if ((long)headerLength > fileLength - sizeof(ulong))
            throw SafeTensors.Invalid(path, $"the header length field says {headerLength} bytes, but only {fileLength - sizeof(ulong)} bytes follow it; the file is truncated");

        var json = new byte[headerLength];
        SafeTensors.ReadExactly(source, json, sizeof(ulong), "the header");
        long dataStart = sizeof(ulong) + (long)headerLength;
        (List<SafeTensorsEntry> entries, Dictionary<string, string> metadata) = Parse(json, path);
        return new SafeTensorsHeader(entries, metadata, dataStart, fileLength - dataStart);
    }

    private static (List<SafeTensorsEntry>, Dictionary<string, string>) Parse(byte[] json, string path)
    {
        var entries = new List<SafeTensorsEntry>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            using JsonDocument document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 8 });
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw SafeTensors.Invalid(path, $"the header is a JSON {root.ValueKind}, not an object");
            foreach (JsonProperty property in root.EnumerateObject())
            {
                string name = property.Name;
                if (!seen.Add(name))
                    throw SafeTensors.Invalid(path, $"'{name}' appears more than once in the header");
                if (name == MetadataKey) ReadMetadata(property.Value, metadata, path);
                else entries.Add(ReadEntry(name, property.Value, path));
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            // JsonException: malformed JSON; InvalidOperationException/FormatException: invalid UTF-8 in a string.
            throw SafeTensors.Invalid(path, $"the header is not valid JSON: {e.Message}", e);
        }
        return (entries, metadata);
    }

    private static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw SafeTensors.Invalid(path, $"'{MetadataKey}' is a JSON {value.ValueKind}, not an object of strings");
        foreach (JsonProperty item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw SafeTensors.Invalid(path, $"metadata entry '{item.Name}' is a JSON {item.Value.ValueKind}, not a string");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw SafeTensors.Invalid(path, $"metadata entry '{item.Name}' appears more than once");
        }
    }

    private static SafeTensorsEntry ReadEntry(string name, JsonElement value, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw SafeTensors.Invalid(path, name, $"its header entry is a JSON {value.ValueKind}, not an object");

        // A field given twice makes the entry ambiguous: readers disagree on which one counts (System.Text.Json's
        // TryGetProperty and Python's json keep the last, serde refuses the file), so a file could load one tensor here
        // and another elsewhere.
        var fields = new HashSet<string>(StringComparer.Ordinal);
        foreach (JsonProperty field in value.EnumerateObject())
            if (!fields.Add(field.Name))
                throw SafeTensors.Invalid(path, name, $"its header entry has \"{field.Name}\" more than once");

        if (!value.TryGetProperty("dtype", out JsonElement dtype) || dtype.ValueKind != JsonValueKind.String)
            throw SafeTensors.Invalid(path, name, "its header entry has no string \"dtype\"");

        if (!value.TryGetProperty("shape", out JsonElement shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw SafeTensors.Invalid(path, name, "its header entry has no \"shape\" array");
        var shape = new long[shapeElement.GetArrayLength()];
        int d = 0;
        foreach (JsonElement dimension in shapeElement.EnumerateArray())
        {
            if (dimension.ValueKind != JsonValueKind.Number || !dimension.TryGetInt64(out long size) || size < 0)
                throw SafeTensors.Invalid(path, name, $"shape entry {d} is {dimension.GetRawText()}, not a non-negative integer");
            shape[d++] = size;
        }

        if (!value.TryGetProperty("data_offsets", out JsonElement offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw SafeTensors.Invalid(path, name, "its header entry has no \"data_offsets\" array of two integers");
        long begin = ReadOffset(offsets[0], name, path), end = ReadOffset(offsets[1], name, path);
        if (end < begin)
            throw SafeTensors.Invalid(path, name, $"data_offsets [{begin}, {end}] end before they begin");

        return new SafeTensorsEntry(name, dtype.GetString()!, shape, begin, end);
    }

    private static long ReadOffset(JsonElement element, string name, string path)
    {
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out long offset) || offset < 0)
            throw SafeTensors.Invalid(path, name, $"data offset {element.GetRawText()} is not a non-negative integer");
        return offset;
    }

    /// <summary>
    /// The header for <paramref name="tensors"/> stored as F32 (or as <paramref name="storage"/> says: BF16, or an I8
    /// tensor followed by its F16 scales), packed in table order, with the metadata keys sorted ordinally (so equal
    /// inputs give equal files), padded with spaces to a multiple of 8 bytes so the data starts aligned. With
    /// <paramref name="storedLayout"/>, a <see cref="ParameterTensor.StoredTransposed"/> tensor is described with its
    /// shape reversed, as checkpoint files hold it.
    /// </summary>
    public static byte[] Write(IReadOnlyList<ParameterTensor> tensors, IReadOnlyDictionary<string, string>? metadata, bool storedLayout = false,
        TensorStorage[]? storage = null)
    {
        var output = new ArrayBufferWriter<byte>();
        // Relaxed escaping keeps non-ASCII metadata readable; the output is still valid JSON.
        using (var writer = new Utf8JsonWriter(output, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            if (metadata is not null)
            {
                var keys = new List<string>(metadata.Keys);
                keys.Sort(StringComparer.Ordinal);
                writer.WriteStartObject(MetadataKey);
                foreach (string key in keys)
                    writer.WriteString(key, metadata[key] ?? throw new ArgumentException($"metadata entry '{key}' is null", nameof(metadata)));
                writer.WriteEndObject();
            }
            long begin = 0;
            for (int i = 0; i < tensors.Count; i++)
            {
                ParameterTensor tensor = tensors[i];
                TensorStorage form = storage?[i] ?? TensorStorage.F32;
                ReadOnlySpan<int> shape = tensor.Shape;
                bool reversed = storedLayout && tensor.StoredTransposed;
                string dtype = form switch { TensorStorage.BF16 => "BF16", TensorStorage.Int8 => "I8", _ => "F32" };
                int elementSize = form switch { TensorStorage.BF16 => sizeof(ushort), TensorStorage.Int8 => sizeof(sbyte), _ => sizeof(float) };
                begin = Entry(writer, tensor.Name, dtype, reversed ? [shape[1], shape[0]] : shape.ToArray(), begin, (long)tensor.Length * elementSize);
                if (form == TensorStorage.Int8)
                {
                    int blocks = Kernels.QuantizedMatMul.BlocksPerRow(shape[1]);
                    begin = Entry(writer, tensor.Name + SafeTensors.Int8ScaleSuffix, "F16", [shape[0], blocks], begin, (long)shape[0] * blocks * sizeof(ushort));
                }
            }
            writer.WriteEndObject();
        }
        int length = output.WrittenCount;
        var header = new byte[(length + 7) & ~7];
        output.WrittenSpan.CopyTo(header);
        header.AsSpan(length).Fill((byte)' ');
        return header;
    }

    // One tensor's entry, its data from `begin` for `bytes` bytes; returns where the next tensor's data begins.
    private static long Entry(Utf8JsonWriter writer, string name, string dtype, int[] shape, long begin, long bytes)
    {
        writer.WriteStartObject(name);
        writer.WriteString("dtype", dtype);
        writer.WriteStartArray("shape");
        foreach (int size in shape) writer.WriteNumberValue(size);
        writer.WriteEndArray();
        writer.WriteStartArray("data_offsets");
        writer.WriteNumberValue(begin);
        writer.WriteNumberValue(begin + bytes);
        writer.WriteEndArray();
        writer.WriteEndObject();
        return begin + bytes;
    }
}
