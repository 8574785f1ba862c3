using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace TransformerGen.Export.Tests;

/// <summary>
/// A GGUF v3 reader of the test's own, written from the specification (ggml <c>docs/gguf.md</c>), to check what the
/// exporter wrote: every metadata value and each tensor's type, dimensions and raw bytes.
/// </summary>
internal sealed class GgufFile
{
    public required uint Version { get; init; }
    public required Dictionary<string, object> Metadata { get; init; }
    public required List<TensorEntry> Tensors { get; init; }
    public required long DataStart { get; init; }

    /// <summary>Where the metadata ends and the tensor infos begin, and where they end (before the padding to <see cref="DataStart"/>).</summary>
    public required (long MetadataEnd, long TensorInfoEnd) Layout { get; init; }
    public required byte[] Bytes { get; init; }

    public sealed record TensorEntry(string Name, long[] Dimensions, uint Type, long Offset);

    public TensorEntry Tensor(string name) => Tensors.Find(t => t.Name == name) ?? throw new KeyNotFoundException(name);

    /// <summary>The raw bytes of <paramref name="name"/>: F32 4, BF16 2, Q8_0 34 per 32 values.</summary>
    public ReadOnlySpan<byte> Data(string name)
    {
        TensorEntry t = Tensor(name);
        long n = 1;
        foreach (long d in t.Dimensions) n *= d;
        long length = t.Type switch { 0 => 4 * n, 30 => 2 * n, 8 => n / 32 * 34, _ => throw new InvalidDataException($"type {t.Type}") };
        return Bytes.AsSpan((int)(DataStart + t.Offset), (int)length);
    }

    /// <summary>
    /// Asserts that every tensor <paramref name="report"/> lists holds, as F32 and bit for bit, the parameter of
    /// <paramref name="model"/> it was written from (an encoder's export, which writes its tensors as they are).
    /// </summary>
    public void AssertHoldsParametersUnchanged(GgufExportReport report, TransformerModel model)
    {
        foreach (GgufTensorInfo info in report.Tensors)
        {
            ReadOnlySpan<float> stored = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Data(info.Name));
            ParameterTensor t = model.ParameterTensors.Single(p => p.Name == info.ModelName);
            Xunit.Assert.True(stored.SequenceEqual(model.Parameters.Slice(t.Offset, t.Length)), info.Name);
        }
    }

    /// <summary>
    /// Writes to <paramref name="path"/> a copy of this file with float32 keys added after its metadata (the key count
    /// raised, the tensor infos and the data unchanged, the data realigned): what another writer would have put in it.
    /// </summary>
    public void WriteWithFloatKeys(string path, params (string Key, float Value)[] keys)
    {
        using var stream = new MemoryStream();
        stream.Write(Bytes, 0, (int)Layout.MetadataEnd);
        foreach ((string key, float value) in keys)
        {
            byte[] name = Encoding.UTF8.GetBytes(key);
            stream.Write(BitConverter.GetBytes((ulong)name.Length));
            stream.Write(name);
            stream.Write(BitConverter.GetBytes(6u));
            stream.Write(BitConverter.GetBytes(value));
        }
        stream.Write(Bytes, (int)Layout.MetadataEnd, (int)(Layout.TensorInfoEnd - Layout.MetadataEnd));
        long alignment = Metadata.TryGetValue("general.alignment", out object? a) ? (uint)a : 32;
        while (stream.Length % alignment != 0) stream.WriteByte(0);
        stream.Write(Bytes, (int)DataStart, (int)(Bytes.Length - DataStart));
        byte[] copy = stream.ToArray();
        BinaryPrimitives.WriteUInt64LittleEndian(copy.AsSpan(16), (ulong)(Metadata.Count + keys.Length));
        File.WriteAllBytes(path, copy);
    }

    public static GgufFile Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        int at = 0;
        uint U32() { uint v = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at)); at += 4; return v; }
        ulong U64() { ulong v = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at)); at += 8; return v; }
        string Str() { int n = checked((int)U64()); string s = Encoding.UTF8.GetString(bytes, at, n); at += n; return s; }
        object Value(uint type)
        {
            switch (type)
            {
                case 0: return bytes[at++];
                case 1: return (sbyte)bytes[at++];
                case 2: { ushort v = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(at)); at += 2; return v; }
                case 3: { short v = BinaryPrimitives.ReadInt16LittleEndian(bytes.AsSpan(at)); at += 2; return v; }
                case 4: return U32();
                case 5: return (int)U32();
                case 6: return BitConverter.UInt32BitsToSingle(U32());
                case 7: return bytes[at++] switch { 0 => false, 1 => true, var b => throw new InvalidDataException($"bool {b}") };
                case 8: return Str();
                case 9:
                {
                    uint element = U32();
                    int count = checked((int)U64());
                    var list = new List<object>(count);
                    for (int i = 0; i < count; i++) list.Add(Value(element));
                    return list;
                }
                case 10: return U64();
                case 11: return (long)U64();
                case 12: return BitConverter.UInt64BitsToDouble(U64());
                default: throw new InvalidDataException($"value type {type} at byte {at}");
            }
        }

        if (U32() != 0x46554747) throw new InvalidDataException("not GGUF");
        uint version = U32();
        int tensorCount = checked((int)U64()), keyCount = checked((int)U64());
        var metadata = new Dictionary<string, object>(StringComparer.Ordinal);
        for (int i = 0; i < keyCount; i++)
        {
            string key = Str();
            if (!metadata.TryAdd(key, Value(U32()))) throw new InvalidDataException($"key '{key}' twice");
        }
        long metadataEnd = at;
        var tensors = new List<TensorEntry>();
        for (int i = 0; i < tensorCount; i++)
        {
            string name = Str();
            var dims = new long[U32()];
            for (int d = 0; d < dims.Length; d++) dims[d] = (long)U64();
            uint type = U32();
            tensors.Add(new TensorEntry(name, dims, type, (long)U64()));
        }
        long alignment = metadata.TryGetValue("general.alignment", out object? a) ? (uint)a : 32;
        long dataStart = (at + alignment - 1) / alignment * alignment;
        return new GgufFile { Version = version, Metadata = metadata, Tensors = tensors, DataStart = dataStart, Bytes = bytes, Layout = (metadataEnd, at) };
    }
}
