using System;
using System.IO;
using System.Reflection;

namespace TransformerGen.Samples.Hub;

/// <summary>The compiled config.json a sample embeds in its program, to compare a downloaded folder's with.</summary>
public static class EmbeddedConfig
{
    /// <summary>The text of the resource <paramref name="name"/> of <paramref name="assembly"/>.</summary>
    /// <exception cref="InvalidOperationException">The program does not embed it.</exception>
    public static string Read(Assembly assembly, string name)
    {
        using Stream stream = assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"{name} is not embedded in the program");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
