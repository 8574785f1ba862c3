using System;
using System.IO;
using EmbeddingsSample;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>
/// The tiny ModernBERT as the Embeddings sample takes a model, and a folder laid out as gte-modernbert-base's is on the
/// Hub at toy size: the tiny config.json with modules.json and 1_Pooling/config.json (CLS pooling), seeded random weights (spread by
/// <see cref="TinyModernBertWeights"/>) written by the model's own Save, and the tokenizer files of <see cref="TinyModernBertTokenizer"/> over the sample's texts.
/// </summary>
public sealed class TinyModernBert : IDisposable
{
    public const ulong Seed = 19;

    /// <summary>The folder <see cref="TinyModernBertModel"/> is compiled from, as copied beside the tests.</summary>
    public static string ModelFolder => System.IO.Path.Combine(AppContext.BaseDirectory, "Models", "tiny-modernbert");

    /// <summary>The tiny model as the Embeddings sample takes a model: gte-modernbert-base's files, texts as they are.</summary>
    public static EmbeddingModelSpec Spec { get; } = new(
        "tests/tiny-modernbert",
        EmbeddingModelSpec.GteModernBertBase.Files,
        File.ReadAllText(System.IO.Path.Combine(ModelFolder, "config.json")),
        "tests/Samples.Tests/Models/tiny-modernbert/config.json",
        (folder, weights) => TinyModernBertModel.ForInference(folder, weights),
        $"ModernBERT (local and global rotary layers, CLS pooling), {TinyModernBertModel.Layers} layers, {TinyModernBertModel.DModel} wide",
        TinyModernBertModel.DModel);

    public TinyModernBert()
    {
        foreach (string file in Directory.EnumerateFiles(ModelFolder, "*.json", SearchOption.AllDirectories))
        {
            string target = Folder.File(System.IO.Path.GetRelativePath(ModelFolder, file));
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        Tokenizer = new TinyModernBertTokenizer(MiniLmFolder.SampleTexts());
        Tokenizer.Write(Folder);
        TinyModernBertModel model = TinyModernBertModel.ForInference(Seed);
        TinyModernBertWeights.Spread(model);
        model.Save(Folder.File("model.safetensors"));
    }

    public TempFolder Folder { get; } = new();

    public string Path => Folder.Path;

    /// <summary>The vocabulary the folder's tokenizer files were written from.</summary>
    public TinyModernBertTokenizer Tokenizer { get; }

    public void Dispose() => Folder.Dispose();
}
