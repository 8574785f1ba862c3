using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;

namespace TransformerGen;

/// <summary>The values of one tensor, in the model's row-major order (ggml's <c>ne[0]</c> fastest).</summary>
internal delegate ReadOnlySpan<float> GgufTensorValues();

/// <summary>
/// Writes a GGUF v3 file (ggml <c>docs/gguf.md</c>): the header (magic, version, tensor count, metadata count), the
/// metadata key–value pairs, one info record per tensor (name, dimensions with <c>ne[0]</c> first, type, offset), padding
/// to the alignment, then each tensor's data at an offset that is a multiple of the alignment. Little-endian throughout;
/// strings are a 64-bit length and UTF-8 bytes without a terminator.
/// </summary>
internal sealed class GgufWriter
{
    private readonly List<(string Key, Action<Stream> Write)> _metadata = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly List<Tensor> _tensors = [];
    private readonly HashSet<string> _tensorNames = new(StringComparer.Ordinal);

    private sealed record Tensor(string Name, long[] Dimensions, GgufFormat.TensorType Type, GgufTensorValues Values)
    {
        public long Elements { get { long n = 1; foreach (long d in Dimensions) n *= d; return n; } }
        public long ByteLength => GgufFormat.ByteLength(Type, Elements);
    }

    public void Add(string key, uint value) => AddValue(key, GgufFormat.ValueType.UInt32, s => WriteUInt32(s, value));
    public void Add(string key, int value) => AddValue(key, GgufFormat.ValueType.Int32, s => WriteUInt32(s, unchecked((uint)value)));
    public void Add(string key, float value) => AddValue(key, GgufFormat.ValueType.Float32, s => WriteUInt32(s, BitConverter.SingleToUInt32Bits(value)));
    public void Add(string key, bool value) => AddValue(key, GgufFormat.ValueType.Bool, s => s.WriteByte(value ? (byte)1 : (byte)0));
    public void Add(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        AddValue(key, GgufFormat.ValueType.String, s => WriteString(s, value));
    }

    public void Add(string key, IReadOnlyList<string> values) => AddArray(key, GgufFormat.ValueType.String, values.Count, s =>
    {
        foreach (string v in values) WriteString(s, v);
    });

    public void Add(string key, IReadOnlyList<int> values) => AddArray(key, GgufFormat.ValueType.Int32, values.Count, s =>
    {
        foreach (int v in values) WriteUInt32(s, unchecked((uint)v));
    });

    public void Add(string key, IReadOnlyList<float> values) => AddArray(key, GgufFormat.ValueType.Float32, values.Count, s =>
    {
        foreach (float v in values) WriteUInt32(s, BitConverter.SingleToUInt32Bits(v));
    });

    public void Add(string key, byte[] values) => AddArray(key, GgufFormat.ValueType.UInt8, values.Length, s => s.Write(values));

    /// <summary>Adds a tensor of <paramref name="dimensions"/> (<c>ne[0]</c>, the fastest, first), whose values come from <paramref name="values"/> when the file is written.</summary>
    public void AddTensor(string name, long[] dimensions, GgufFormat.TensorType type, GgufTensorValues values)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!_tensorNames.Add(name)) throw new ArgumentException($"the GGUF file already has a tensor '{name}'", nameof(name));
        if (dimensions.Length is 0 or > 4) throw new ArgumentException($"tensor '{name}' has {dimensions.Length} dimensions; GGUF allows 1 to 4", nameof(dimensions));
        foreach (long d in dimensions)
            if (d <= 0) throw new ArgumentException($"tensor '{name}' has a dimension {d}", nameof(dimensions));
        if (type == GgufFormat.TensorType.Q8_0 && dimensions[0] % GgufFormat.Q8BlockLength != 0)
            throw new ArgumentException($"tensor '{name}': Q8_0 rows must be a multiple of {GgufFormat.Q8BlockLength} long, not {dimensions[0]}", nameof(type));
        _tensors.Add(new Tensor(name, (long[])dimensions.Clone(), type, values));
    }

    /// <summary>Writes the whole file to <paramref name="stream"/>, which must start at position 0 of the file.</summary>
    public void WriteTo(Stream stream)
    {
        var counter = new CountingStream(stream);
        WriteUInt32(counter, GgufFormat.Magic);
        WriteUInt32(counter, GgufFormat.Version);
        WriteUInt64(counter, (ulong)_tensors.Count);
        WriteUInt64(counter, (ulong)_metadata.Count);
        foreach ((string key, Action<Stream> write) in _metadata)
        {
            WriteString(counter, key);
            write(counter);
        }
        long offset = 0;
        var offsets = new List<long>(_tensors.Count);
        foreach (Tensor t in _tensors)
        {
            offsets.Add(offset);
            WriteString(counter, t.Name);
            WriteUInt32(counter, (uint)t.Dimensions.Length);
            foreach (long d in t.Dimensions) WriteUInt64(counter, (ulong)d);
            WriteUInt32(counter, (uint)t.Type);
            WriteUInt64(counter, (ulong)offset);
            offset = Align(offset + t.ByteLength);
        }
        Pad(counter);
        long dataStart = counter.Position;
        byte[] chunk = new byte[1 << 16];
        int index = 0;
        foreach (Tensor t in _tensors)
        {
            ReadOnlySpan<float> values = t.Values();
            if (values.Length != t.Elements)
                throw new InvalidOperationException($"tensor '{t.Name}' needs {t.Elements} values, got {values.Length}");
            if (counter.Position - dataStart != offsets[index++]) throw new InvalidOperationException($"tensor '{t.Name}' would not start at its recorded offset");
            WriteData(counter, t.Type, values, chunk);
            Pad(counter);
        }
    }

    private static void WriteData(Stream stream, GgufFormat.TensorType type, ReadOnlySpan<float> values, byte[] chunk)
    {
        switch (type)
        {
            case GgufFormat.TensorType.F32:
                if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("GGUF export needs a little-endian machine");
                stream.Write(MemoryMarshal.AsBytes(values));
                break;
            case GgufFormat.TensorType.BF16:
                for (int start = 0; start < values.Length; start += chunk.Length / 2)
                {
                    ReadOnlySpan<float> part = values.Slice(start, Math.Min(chunk.Length / 2, values.Length - start));
                    GgufEncoding.WriteBFloat16(part, chunk);
                    stream.Write(chunk, 0, 2 * part.Length);
                }
                break;
            case GgufFormat.TensorType.Q8_0:
                int blocksPerChunk = chunk.Length / GgufFormat.Q8BlockBytes;
                for (int start = 0; start < values.Length; start += blocksPerChunk * GgufFormat.Q8BlockLength)
                {
                    ReadOnlySpan<float> part = values.Slice(start, Math.Min(blocksPerChunk * GgufFormat.Q8BlockLength, values.Length - start));
                    GgufEncoding.WriteQ8_0(part, chunk);
                    stream.Write(chunk, 0, part.Length / GgufFormat.Q8BlockLength * GgufFormat.Q8BlockBytes);
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "not a tensor type written here");
        }
    }

    private void AddValue(string key, GgufFormat.ValueType type, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!_keys.Add(key)) throw new ArgumentException($"the GGUF file already has the key '{key}'", nameof(key));
        _metadata.Add((key, s =>
        {
            WriteUInt32(s, (uint)type);
            write(s);
        }));
    }

    private void AddArray(string key, GgufFormat.ValueType elementType, int count, Action<Stream> write) =>
        AddValue(key, GgufFormat.ValueType.Array, s =>
        {
            WriteUInt32(s, (uint)elementType);
            WriteUInt64(s, (ulong)count);
            write(s);
        });

    private static long Align(long offset) => (offset + GgufFormat.Alignment - 1) / GgufFormat.Alignment * GgufFormat.Alignment;

    private static void Pad(CountingStream stream)
    {
        long padding = Align(stream.Position) - stream.Position;
        for (long i = 0; i < padding; i++) stream.WriteByte(0);
    }

    private static void WriteUInt32(Stream s, uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        s.Write(bytes);
    }

    private static void WriteUInt64(Stream s, ulong value)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        s.Write(bytes);
    }

    private static void WriteString(Stream s, string value)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(value);
        WriteUInt64(s, (ulong)bytes.Length);
        s.Write(bytes);
    }

    /// <summary>Counts the bytes written through it, so padding can be computed on a stream that cannot seek.</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        private long _position;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _position;
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            _position += buffer.Length;
        }
        public override void WriteByte(byte value)
        {
            inner.WriteByte(value);
            _position++;
        }
    }
}
