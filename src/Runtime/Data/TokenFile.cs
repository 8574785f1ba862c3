using System;
using System.Buffers.Binary;
using System.IO;
using System.IO.MemoryMappedFiles;

namespace TransformerGen;

/// <summary>
/// A tokenized corpus on disk, read through a memory map: a 32-byte header, then the token ids one after another as
/// little-endian <c>uint16</c> (a vocabulary of at most 65,536) or <c>uint32</c>, as nanoGPT's <c>train.bin</c> holds them
/// but with a header that says which, how many and from what vocabulary. Reading copies only the ids asked for; the
/// operating system pages the file in and out, so a corpus larger than memory is read with constant memory.
/// </summary>
/// <remarks>
/// Header (little-endian): bytes 0–7 the magic <c>"TGTOKENS"</c>; 8–11 the format version (1); 12–15 bytes per token
/// (2 or 4); 16–19 the vocabulary size; 20–23 reserved (0); 24–31 the token count. The ids follow at byte 32, so the
/// file is exactly <c>32 + count · bytesPerToken</c> bytes long. Written by <see cref="TokenFileWriter"/>.
/// </remarks>
public sealed unsafe class TokenFile : IDisposable
{
    /// <summary>The header's size in bytes; the first id starts here.</summary>
    public const int HeaderSize = 32;

    /// <summary>The format version this library writes and reads.</summary>
    public const int Version = 1;

    /// <summary>The first 8 bytes of every token file.</summary>
    public static ReadOnlySpan<byte> Magic => "TGTOKENS"u8;

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _tokens;
    private bool _disposed;

    private TokenFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* start, int bytesPerToken, int vocabSize, long count)
    {
        Path = path;
        _map = map;
        _view = view;
        _tokens = start + HeaderSize;
        BytesPerToken = bytesPerToken;
        VocabSize = vocabSize;
        Count = count;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>2 (<c>uint16</c> ids) or 4 (<c>uint32</c>).</summary>
    public int BytesPerToken { get; }

    /// <summary>The size of the vocabulary the ids come from: every id is below it.</summary>
    public int VocabSize { get; }

    /// <summary>How many ids the file holds.</summary>
    public long Count { get; }

    /// <summary>Maps <paramref name="path"/> for reading after checking its header and length.</summary>
    /// <exception cref="InvalidDataException">The file is not a token file, is of another version, or is cut short (the message says which).</exception>
    public static TokenFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        long length = new FileInfo(path).Length;
        if (length < HeaderSize) throw new InvalidDataException($"{path} is {length} bytes long, shorter than a token file's {HeaderSize}-byte header");
        Span<byte> header = stackalloc byte[HeaderSize];
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1))
            stream.ReadExactly(header);
        if (!header[..8].SequenceEqual(Magic)) throw new InvalidDataException($"{path} is not a token file: it does not start with \"TGTOKENS\"");
        int version = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        if (version != Version) throw new InvalidDataException($"{path} is a token file of version {version}; this library reads version {Version}");
        int width = BinaryPrimitives.ReadInt32LittleEndian(header[12..]);
        if (width is not (2 or 4)) throw new InvalidDataException($"{path} says its ids take {width} bytes each; a token file has 2 or 4");
        int vocab = BinaryPrimitives.ReadInt32LittleEndian(header[16..]);
        if (vocab <= 0 || (width == 2 && vocab > 65536)) throw new InvalidDataException($"{path} says its vocabulary has {vocab} ids, which {width}-byte ids cannot hold");
        long count = BinaryPrimitives.ReadInt64LittleEndian(header[24..]);
        if (count < 0 || count > (length - HeaderSize) / width || HeaderSize + count * width != length)
            throw new InvalidDataException($"{path} says it holds {count:N0} ids of {width} bytes, but it is {length:N0} bytes long (a header of {HeaderSize} and {(length - HeaderSize) / (double)width:N1} ids): it was cut short or is damaged");

        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, mapName: null, capacity: 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* start = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
            return new TokenFile(path, map, view, start + view.PointerOffset, width, vocab, count);
        }
        catch
        {
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    /// <summary>The id at <paramref name="index"/>.</summary>
    public int this[long index]
    {
        get
        {
            if ((ulong)index >= (ulong)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"{Path} holds {Count:N0} ids");
            return Read(index);
        }
    }

    /// <summary>Copies the ids from <paramref name="start"/> into <paramref name="destination"/> (as many as it holds). Allocates nothing.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range runs past the end of the file.</exception>
    public void CopyTo(long start, Span<int> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (start < 0 || start > Count - destination.Length)
            throw new ArgumentOutOfRangeException(nameof(start), start, $"{destination.Length} ids from {start:N0} run past the end of {Path} ({Count:N0} ids)");
        if (BytesPerToken == 2)
        {
            var source = new ReadOnlySpan<ushort>(_tokens + start * 2, destination.Length);
            for (int i = 0; i < destination.Length; i++) destination[i] = BitConverter.IsLittleEndian ? source[i] : BinaryPrimitives.ReverseEndianness(source[i]);
        }
        else
        {
            var source = new ReadOnlySpan<uint>(_tokens + start * 4, destination.Length);
            for (int i = 0; i < destination.Length; i++) destination[i] = (int)(BitConverter.IsLittleEndian ? source[i] : BinaryPrimitives.ReverseEndianness(source[i]));
        }
    }

    private int Read(long index)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return BytesPerToken == 2
            ? BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>(_tokens + index * 2, 2))
            : (int)BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(_tokens + index * 4, 4));
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
