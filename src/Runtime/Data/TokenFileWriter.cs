using System;
using System.Buffers.Binary;
using System.IO;

namespace TransformerGen;

/// <summary>
/// Writes a <see cref="TokenFile"/> a piece at a time, so a corpus never has to be held whole: ids are appended to a
/// temporary file beside the target, and <see cref="Complete"/> writes the count into the header and renames the file
/// over the target. A writer disposed before <see cref="Complete"/> (an exception, a cancelled run) deletes its temporary
/// file and leaves the target as it was.
/// </summary>
public sealed class TokenFileWriter : IDisposable
{
    private readonly string _path, _temporary;
    private readonly FileStream _stream;
    private readonly byte[] _buffer = new byte[1 << 16];
    private int _buffered;
    private bool _completed, _disposed;

    /// <summary>Starts a token file at <paramref name="path"/> for ids below <paramref name="vocabSize"/>: 2 bytes each when the vocabulary has at most 65,536 ids, 4 otherwise.</summary>
    /// <exception cref="IOException">The folder cannot be written.</exception>
    public TokenFileWriter(string path, int vocabSize)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 1);
        _path = System.IO.Path.GetFullPath(path);
        VocabSize = vocabSize;
        BytesPerToken = vocabSize <= 65536 ? 2 : 4;
        _temporary = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(_path)!, $".{System.IO.Path.GetFileName(_path)}.{Guid.NewGuid():N}.tmp");
        _stream = new FileStream(_temporary, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 1);
        _stream.Write(Header(0));
    }

    /// <summary>The vocabulary size the header records.</summary>
    public int VocabSize { get; }

    /// <summary>2 or 4.</summary>
    public int BytesPerToken { get; }

    /// <summary>Ids appended so far.</summary>
    public long Count { get; private set; }

    /// <summary>Appends <paramref name="ids"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is negative or not below <see cref="VocabSize"/>; the message names its position in the file.</exception>
    public void Append(ReadOnlySpan<int> ids)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_completed) throw new InvalidOperationException("the token file is complete; nothing can be appended");
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"id {id} at position {Count + i:N0} is outside the vocabulary [0, {VocabSize})");
            if (_buffered + BytesPerToken > _buffer.Length) Flush();
            if (BytesPerToken == 2) BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(_buffered), (ushort)id);
            else BinaryPrimitives.WriteUInt32LittleEndian(_buffer.AsSpan(_buffered), (uint)id);
            _buffered += BytesPerToken;
        }
        Count += ids.Length;
    }

    /// <summary>Writes the header's count, flushes to disk and renames the file over the target; returns the target's full path.</summary>
    public string Complete()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_completed) return _path;
        Flush();
        _stream.Position = 0;
        _stream.Write(Header(Count));
        _stream.Flush(flushToDisk: true);
        _stream.Dispose();
        try
        {
            File.Move(_temporary, _path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            File.Delete(_temporary);
            throw new IOException($"the token file {_path} could not be put in place ({e.Message})", e);
        }
        _completed = true;
        return _path;
    }

    /// <summary>Writes <paramref name="ids"/> to <paramref name="path"/> as one token file.</summary>
    public static void Write(string path, ReadOnlySpan<int> ids, int vocabSize)
    {
        using var writer = new TokenFileWriter(path, vocabSize);
        writer.Append(ids);
        writer.Complete();
    }

    private void Flush()
    {
        _stream.Write(_buffer, 0, _buffered);
        _buffered = 0;
    }

    private byte[] Header(long count)
    {
        var header = new byte[TokenFile.HeaderSize];
        TokenFile.Magic.CopyTo(header);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), TokenFile.Version);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(12), BytesPerToken);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(16), VocabSize);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(24), count);
        return header;
    }

    /// <summary>Closes the writer; before <see cref="Complete"/>, deletes the temporary file and leaves the target untouched.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_completed) return;
        _stream.Dispose();
        File.Delete(_temporary);
    }
}
