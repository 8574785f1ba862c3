using System;
using System.IO;

namespace TransformerGen;

/// <summary>The exporters' file writes: a temporary file beside the target, flushed to disk, then renamed over it.</summary>
internal static class AtomicFile
{
    /// <summary>
    /// Writes <paramref name="path"/> through <paramref name="write"/> under a temporary name in the same folder, flushes
    /// it and renames it over the target, so that a reader never sees a partial file; the temporary file is removed when
    /// anything fails. Returns the bytes written.
    /// </summary>
    public static long Write(string path, Action<Stream> write)
    {
        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath) ?? throw new ArgumentException($"'{path}' names no file in a directory", nameof(path));
        if (Directory.Exists(fullPath)) throw new IOException($"cannot save '{path}': it is a directory");
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"cannot save '{path}': the folder '{directory}' does not exist");
        string temporaryPath = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        long bytes;
        try
        {
            using (var file = new FileStream(temporaryPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                write(file);
                file.Flush(flushToDisk: true);
                bytes = file.Length;
            }
            File.Move(temporaryPath, fullPath, overwrite: true);
        }
        catch
        {
            try { File.Delete(temporaryPath); }
            catch (IOException) { } // the original error matters more than a leftover temporary file
            catch (UnauthorizedAccessException) { }
            throw;
        }
        return bytes;
    }
}
