using System;
using System.IO;

namespace TransformerGen;

/// <summary>
/// The exporters' file writes: a temporary file beside the target, flushed to disk, then renamed over it, so that a reader
/// never sees a partial file and a failure leaves none behind.
/// </summary>
/// <remarks>
/// <see cref="Write"/> does the whole of it for one file. An export of two files that refer to each other (an ONNX graph
/// and its external data) opens both with <see cref="Begin"/>, writes and finishes both, and only then commits them, so
/// that a failure in either leaves neither.
/// </remarks>
internal sealed class AtomicFile : IDisposable
{
    private readonly string _path;
    private readonly string _temporaryPath;
    private readonly FileStream _stream;
    private long _bytes = -1;
    private bool _committed;

    private AtomicFile(string path, string temporaryPath, FileStream stream)
    {
        _path = path;
        _temporaryPath = temporaryPath;
        _stream = stream;
    }

    /// <summary>
    /// Writes <paramref name="path"/> through <paramref name="write"/> under a temporary name in the same folder, flushes
    /// it and renames it over the target; the temporary file is removed when anything fails. Returns the bytes written.
    /// </summary>
    public static long Write(string path, Action<Stream> write)
    {
        using AtomicFile file = Begin(path);
        write(file.Stream);
        long bytes = file.Finish();
        file.Commit();
        return bytes;
    }

    /// <summary>
    /// Opens a temporary file beside <paramref name="path"/>: write to <see cref="Stream"/>, then <see cref="Finish"/> and
    /// <see cref="Commit"/>. Disposing it without a commit deletes the temporary file.
    /// </summary>
    public static AtomicFile Begin(string path)
    {
        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath) ?? throw new ArgumentException($"'{path}' names no file in a directory", nameof(path));
        if (Directory.Exists(fullPath)) throw new IOException($"cannot save '{path}': it is a directory");
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"cannot save '{path}': the folder '{directory}' does not exist");
        string temporaryPath = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        var stream = new FileStream(temporaryPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 1 << 16);
        return new AtomicFile(fullPath, temporaryPath, stream);
    }

    /// <summary>The temporary file, open for writing (and reading back what was written).</summary>
    public Stream Stream => _stream;

    /// <summary>Flushes the temporary file to disk and closes it; returns its size. The target is untouched until <see cref="Commit"/>.</summary>
    public long Finish()
    {
        if (_bytes < 0)
        {
            _stream.Flush(flushToDisk: true);
            _bytes = _stream.Length;
            _stream.Dispose();
        }
        return _bytes;
    }

    /// <summary>Renames the finished temporary file over the target.</summary>
    public void Commit()
    {
        if (_bytes < 0) throw new InvalidOperationException($"'{_path}' is committed before it was finished");
        File.Move(_temporaryPath, _path, overwrite: true);
        _committed = true;
    }

    /// <summary>Closes the temporary file and, unless it was committed, deletes it.</summary>
    public void Dispose()
    {
        _stream.Dispose();
        if (_committed) return;
        try { File.Delete(_temporaryPath); }
        catch (IOException) { } // the original error matters more than a leftover temporary file
        catch (UnauthorizedAccessException) { }
    }
}
