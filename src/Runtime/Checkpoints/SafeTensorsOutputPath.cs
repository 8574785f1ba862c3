using System;
using System.IO;

namespace TransformerGen;

public static partial class SafeTensors
{
    /// <summary>
    /// Checks where a checkpoint will be written, before any training is spent on it, and returns the file's full path:
    /// an existing directory (or a path ending in a separator) means the file <paramref name="fileName"/> inside it; the
    /// folder is created if it is missing; and a file is created in it and deleted again, so that a folder that cannot be
    /// written fails now, with a message that says why, rather than when the model is saved.
    /// </summary>
    /// <param name="path">What the user gave: a file, or a folder to put <paramref name="fileName"/> in.</param>
    /// <param name="fileName">The file's name inside a folder, e.g. <c>tinylm.safetensors</c>.</param>
    /// <returns>The full path of the file to save.</returns>
    /// <exception cref="IOException">The path cannot be written; the message names it and the reason.</exception>
    public static string PrepareOutputPath(string path, string fileName)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentException.ThrowIfNullOrEmpty(fileName);
        if (path.Length == 0) throw new IOException("the output path is empty");
        if (fileName.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || fileName.Contains(Path.DirectorySeparatorChar))
            throw new ArgumentException($"'{fileName}' is not a file name", nameof(fileName));

        string fullPath;
        try
        {
            fullPath = Path.GetFullPath(path);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new IOException($"the output path '{path}' is not a valid path ({e.Message})", e);
        }
        bool folder = Directory.Exists(fullPath) || Path.EndsInDirectorySeparator(path);
        string file = folder ? Path.Combine(fullPath, fileName) : fullPath;
        if (Directory.Exists(file))
            throw new IOException($"the output path '{path}' names '{file}', which is a directory; give a file name");
        string directory = Path.GetDirectoryName(file) ?? throw new IOException($"the output path '{path}' names no file in a folder");

        try
        {
            Directory.CreateDirectory(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"the output path '{path}' cannot be used: its folder '{directory}' cannot be created ({e.Message})", e);
        }

        // The same kind of file Save creates (a new one beside the target, deleted at once), so that what fails here is what would fail there.
        string probe = Path.Combine(directory, $".{Path.GetFileName(file)}.{Guid.NewGuid():N}.probe");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"the output path '{path}' cannot be written: no file can be created in the folder '{directory}' ({e.Message})", e);
        }
        return file;
    }
}
