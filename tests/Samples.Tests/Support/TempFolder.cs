using System;
using System.IO;
using System.Text;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>A model folder a test makes, deleted afterwards.</summary>
public sealed class TempFolder : IDisposable
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    public string Path { get; } = Directory.CreateTempSubdirectory("transformergen-samples-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public TempFolder Write(string name, string text)
    {
        System.IO.File.WriteAllText(File(name), text, Utf8);
        return this;
    }

    /// <summary>Copies <paramref name="names"/> of another folder into this one.</summary>
    public TempFolder CopyFrom(TempFolder other, params string[] names)
    {
        foreach (string name in names)
        {
            System.IO.File.Copy(other.File(name), File(name), overwrite: true);
        }

        return this;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A temp folder left behind is harmless.
        }
    }
}
