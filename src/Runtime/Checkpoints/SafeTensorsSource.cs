using System;
using System.IO;
using Microsoft.Win32.SafeHandles;

namespace TransformerGen;

/// <summary>
/// The bytes of one safetensors file, read at positions relative to its first byte: a file opened by path, or
/// a seekable stream from its position at the start of the call to its end (an embedded resource, a file
/// inside an archive, a <see cref="MemoryStream"/>). Loading and validation do not care which.
/// </summary>
internal sealed class SafeTensorsSource
{
    private readonly SafeFileHandle? _file;
    private readonly Stream? _stream;
    private readonly long _start;

    /// <summary>Reads the open file <paramref name="file"/>; <paramref name="path"/> names it in messages.</summary>
    public SafeTensorsSource(SafeFileHandle file, string path)
    {
        _file = file;
        Name = path;
        Length = RandomAccess.GetLength(file);
    }

    /// <summary>Reads <paramref name="stream"/> from its current position to its end; <paramref name="name"/> names it in messages.</summary>
    /// <exception cref="ArgumentException">The stream cannot read or cannot seek.</exception>
    public SafeTensorsSource(Stream stream, string name)
    {
        if (!stream.CanRead) throw new ArgumentException($"'{name}': the stream cannot be read", nameof(stream));
        // Seeking lets every check run on the header and the data offsets before any tensor is read, as for a file.
        if (!stream.CanSeek) throw new ArgumentException($"'{name}': the stream cannot seek; copy it into a MemoryStream first", nameof(stream));
        _stream = stream;
        _start = stream.Position;
        Name = name;
        Length = stream.Length - _start;
    }

    /// <summary>What messages call the file: its path, or the name given with the stream.</summary>
    public string Name { get; }

    /// <summary>Bytes in the file (for a stream, from the starting position to the end).</summary>
    public long Length { get; }

    /// <summary>Reads up to <c>destination.Length</c> bytes at <paramref name="position"/>; returns how many (0 at the end).</summary>
    public int Read(Span<byte> destination, long position)
    {
        if (_file is not null) return RandomAccess.Read(_file, destination, position);
        _stream!.Position = _start + position;
        return _stream.Read(destination);
    }
}
