using System;
using System.IO;
using System.Linq;
using EmbeddingsSample;
using TransformerGen.Tokenizers.Tests.Support;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>
/// The tiny EmbeddingGemma as the Embeddings sample takes a model, and a folder laid out as embeddinggemma-300m's is on the
/// Hub at toy size: config.json, modules.json and the module configs, random weights with the transformer's in
/// model.safetensors under Gemma3TextModel's bare names (<c>embed_tokens.weight</c>, <c>layers.0.…</c>, <c>norm.weight</c>)
/// and each Dense layer's <c>linear.weight</c> in its own <c>N_Dense/model.safetensors</c>, as sentence-transformers saves
/// them; and the tiny Gemma tokenizer with &lt;bos&gt; and &lt;eos&gt; around each text, as EmbeddingGemma's has it.
/// </summary>
public sealed class TinyEmbeddingGemma : IDisposable
{
    public const ulong Seed = 13;

    /// <summary>The folder <see cref="TinyEmbeddingGemmaModel"/> is compiled from, as copied beside the tests.</summary>
    public static string ModelFolder => System.IO.Path.Combine(AppContext.BaseDirectory, "Models", "tiny-embeddinggemma");

    /// <summary>The tiny model as the Embeddings sample takes a model, with EmbeddingGemma's prompts.</summary>
    public static EmbeddingModelSpec Spec { get; } = new(
        "tests/tiny-embeddinggemma",
        EmbeddingModelSpec.EmbeddingGemma300m.Files,
        File.ReadAllText(System.IO.Path.Combine(ModelFolder, "config.json")),
        "tests/Samples.Tests/Models/tiny-embeddinggemma/config.json",
        (folder, weights) => TinyEmbeddingGemmaModel.ForInference(folder, weights),
        $"Gemma 3 (bidirectional, Dense {TinyEmbeddingGemmaModel.DModel} → {TinyEmbeddingGemmaModel.EmbeddingWidth}), {TinyEmbeddingGemmaModel.Layers} layers, {TinyEmbeddingGemmaModel.DModel} wide",
        TinyEmbeddingGemmaModel.EmbeddingWidth,
        TaskPrefixes.EmbeddingGemma);

    public TinyEmbeddingGemma()
    {
        foreach (string file in Directory.EnumerateFiles(ModelFolder, "*.json", SearchOption.AllDirectories))
        {
            string target = Folder.File(System.IO.Path.GetRelativePath(ModelFolder, file));
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        GemmaFolder.Write(Folder.Path, addEosToken: true);

        var model = new TinyEmbeddingGemmaModel(Seed);
        ParameterTensor[] all = [.. model.ParameterTensors];
        ParameterTensor[] transformer = all.Where(t => !t.Name.Contains("_Dense.", StringComparison.Ordinal))
            .Select(t => new ParameterTensor(t.Name.StartsWith("model.", StringComparison.Ordinal) ? t.Name["model.".Length..] : t.Name, t.Shape.ToArray(), t.Offset))
            .ToArray();
        SafeTensors.Save(Folder.File("model.safetensors"), transformer, model.Parameters);
        foreach (string module in new[] { "2_Dense", "3_Dense" })
        {
            ParameterTensor weight = all.Single(t => t.Name == module + ".linear.weight");
            SafeTensors.Save(Folder.File(module + "/model.safetensors"), [new ParameterTensor("linear.weight", weight.Shape.ToArray(), weight.Offset)], model.Parameters);
        }
    }

    public TempFolder Folder { get; } = new();

    public string Path => Folder.Path;

    public void Dispose() => Folder.Dispose();
}
