using System;
using System.IO;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;

namespace TransformerGen.EmbeddingServer.Tests.Support;

/// <summary>
/// A ModernBERT of toy size as the server serves gte-modernbert-base (<see cref="TinyServedModernBert"/>, compiled from
/// tests/Samples.Tests' tiny-modernbert folder and its modules): its config and module files, seeded random weights spread
/// as the Embeddings tests spread them (<see cref="TinyModernBertWeights"/>) and written by the model's own Save, and the
/// tokenizer files of <see cref="TinyModernBertTokenizer"/> (tokenizer.json alone, [CLS] … [SEP]) over <see cref="Texts"/>.
/// </summary>
public sealed class TinyModernBertFolder : IDisposable
{
    public const ulong Seed = 23;

    /// <summary>The texts whose words are single tokens; others are spelled out in bytes.</summary>
    public static readonly string[] Texts =
    [
        "which dog runs in the park?", "The dog runs after a red ball", "A man is eating food.", "Cats sleep most of the day.",
        "the quick brown fox jumps over the lazy dog",
    ];

    private static string Source => System.IO.Path.Combine(AppContext.BaseDirectory, "Models", "tiny-modernbert");

    /// <summary>The tiny model as a served model with gte-modernbert-base's files, checked against its own compiled config.json.</summary>
    public static ServedModel Model { get; } = new(
        "tests/tiny-modernbert", File.ReadAllText(System.IO.Path.Combine(Source, "config.json")), "tests/Samples.Tests/Models/tiny-modernbert/config.json",
        TinyServedModernBert.LoadWeights, weights => TinyServedModernBert.ForInference(weights))
    {
        Files = ServedModel.GteModernBertBase.Files,
    };

    public TinyModernBertFolder()
    {
        foreach (string file in Directory.EnumerateFiles(Source, "*.json", SearchOption.AllDirectories))
        {
            string target = Folder.File(System.IO.Path.GetRelativePath(Source, file));
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        new TinyModernBertTokenizer(Texts).Write(Folder);
        TinyServedModernBert model = TinyServedModernBert.ForInference(Seed);
        TinyModernBertWeights.Spread(model);
        model.Save(Folder.File("model.safetensors"));
        Tokenizer = PretrainedTokenizer.FromFolder(Path);
        Reference = TinyServedModernBert.ForInference(Path);
    }

    public TempFolder Folder { get; } = new();

    public string Path => Folder.Path;

    public PretrainedTokenizer Tokenizer { get; }

    private TinyServedModernBert Reference { get; }

    /// <summary>The embedding of <paramref name="text"/> computed alone, at its own length: [CLS] text [SEP].</summary>
    public float[] Alone(string text)
    {
        int[] ids = [.. Tokenizer.Encode(text)];
        lock (Reference) return Reference.Predict(ids).ToArray();
    }

    public void Dispose() => Folder.Dispose();
}
