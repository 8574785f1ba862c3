using System;
using System.IO;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;
using TransformerGen.Tokenizers.Tests.Support;

namespace TransformerGen.EmbeddingServer.Tests.Support;

/// <summary>
/// An EmbeddingGemma of toy size as the server serves one (<see cref="TinyServedEmbeddingGemma"/>, compiled from
/// tests/Samples.Tests' tiny-embeddinggemma folder and its sentence-transformers modules): its config and module files,
/// two of its prompts (config_sentence_transformers.json), seeded random weights (the model's own Save: the Dense layers in
/// model.safetensors), and the tiny Gemma tokenizer with
/// &lt;bos&gt; and &lt;eos&gt; around each text, whose &lt;image_soft_token&gt; lies one past the table.
/// </summary>
public sealed class TinyEmbeddingGemmaFolder : IDisposable
{
    public const ulong Seed = 17;

    private static string Source => System.IO.Path.Combine(AppContext.BaseDirectory, "Models", "tiny-embeddinggemma");

    /// <summary>The tiny model as a served model, checked against its own compiled config.json.</summary>
    public static ServedModel Model { get; } = new(
        "tests/tiny-embeddinggemma", File.ReadAllText(System.IO.Path.Combine(Source, "config.json")), "tests/Samples.Tests/Models/tiny-embeddinggemma/config.json",
        TinyServedEmbeddingGemma.LoadWeights, weights => TinyServedEmbeddingGemma.ForInference(weights))
    {
        Files = ServedModel.EmbeddingGemma300m.Files,
    };

    public TinyEmbeddingGemmaFolder()
    {
        foreach (string file in Directory.EnumerateFiles(Source, "*.json", SearchOption.AllDirectories))
        {
            string target = Folder.File(System.IO.Path.GetRelativePath(Source, file));
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        GemmaFolder.Write(Path, addEosToken: true);
        // embeddinggemma-300m's config_sentence_transformers.json, two of its prompts.
        Folder.Write("config_sentence_transformers.json", """
            {"model_type": "SentenceTransformer", "prompts": {"query": "task: search result | query: ", "document": "title: none | text: "},
             "default_prompt_name": null, "similarity_fn_name": "cosine"}
            """);
        TinyServedEmbeddingGemma.ForInference(Seed).Save(Folder.File("model.safetensors"));
        // The module files sentence-transformers keeps them in; the model's own file holds them too, and wins.
        foreach (string module in new[] { "2_Dense", "3_Dense" }) File.WriteAllBytes(Folder.File(module + "/model.safetensors"), []);
        Tokenizer = PretrainedTokenizer.FromFolder(Path);
        Reference = TinyServedEmbeddingGemma.ForInference(Path);
    }

    public TempFolder Folder { get; } = new();

    public string Path => Folder.Path;

    public PretrainedTokenizer Tokenizer { get; }

    private TinyServedEmbeddingGemma Reference { get; }

    /// <summary>The embedding of <paramref name="text"/> computed alone, at its own length: &lt;bos&gt; text &lt;eos&gt;.</summary>
    public float[] Alone(string text)
    {
        int[] ids = [.. Tokenizer.Encode(text)];
        lock (Reference) return Reference.Predict(ids).ToArray();
    }

    public void Dispose() => Folder.Dispose();
}
