using System;
using System.IO;
using System.Text;

namespace TransformerGen.Tokenizers.Tests.Support;

/// <summary>A model folder of the test's own making, deleted afterwards.</summary>
internal sealed class TempFolder : IDisposable
{
    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    public string Path { get; } = Directory.CreateTempSubdirectory("transformergen-tokenizers-").FullName;

    public TempFolder Write(string name, string text)
    {
        File.WriteAllText(System.IO.Path.Combine(Path, name), text, Utf8NoBom);
        return this;
    }

    public TempFolder Write(string name, byte[] bytes)
    {
        File.WriteAllBytes(System.IO.Path.Combine(Path, name), bytes);
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
