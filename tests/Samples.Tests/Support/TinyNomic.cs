using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using EmbeddingsSample;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>
/// The tiny NomicBERT as the Embeddings sample takes a model, and a folder laid out as nomic-embed-text-v1.5's is on the
/// Hub at toy size: the tiny config.json, random weights written by the model's own Save, a vocab.txt of 1,000 lines
/// ([PAD] 0, [unused…], [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103, then the characters and words of the sample's
/// texts and of its task prefixes, then filler) and BertTokenizer's tokenizer_config.json.
/// </summary>
public sealed class TinyNomic : IDisposable
{
    public const ulong Seed = 7;

    private const int VocabLines = 1000;

    /// <summary>The config <see cref="TinyNomicModel"/> is compiled from, as copied beside the tests.</summary>
    public static string ConfigPath => System.IO.Path.Combine(AppContext.BaseDirectory, "Models", "tiny-nomic", "config.json");

    /// <summary>The tiny model as the Embeddings sample takes a model, with nomic-embed-text's task prefixes.</summary>
    public static EmbeddingModelSpec Spec { get; } = new(
        "tests/tiny-nomic",
        EmbeddingModelSpec.BertFiles,
        File.ReadAllText(ConfigPath),
        "tests/Samples.Tests/Models/tiny-nomic/config.json",
        (folder, weights) => TinyNomicModel.ForInference(folder, weights),
        $"NomicBERT (rotary), {TinyNomicModel.Layers} layers, {TinyNomicModel.DModel} wide",
        TinyNomicModel.DModel,
        TaskPrefixes.Nomic);

    public TinyNomic()
    {
        File.Copy(ConfigPath, Folder.File("config.json"));
        TinyNomicModel.ForInference(Seed).Save(Folder.File("model.safetensors"));
        IEnumerable<string> texts = MiniLmFolder.SampleTexts().Append(TaskPrefixes.Nomic.Document).Append(TaskPrefixes.Nomic.Query);
        Folder.Write("vocab.txt", string.Join("\n", TinyWordPieceVocabulary.Lines([], texts, VocabLines)) + "\n");
        Folder.Write("tokenizer_config.json", new JsonObject
        {
            ["cls_token"] = "[CLS]", ["do_lower_case"] = true, ["mask_token"] = "[MASK]", ["model_max_length"] = 8192,
            ["pad_token"] = "[PAD]", ["sep_token"] = "[SEP]", ["strip_accents"] = null, ["tokenize_chinese_chars"] = true,
            ["tokenizer_class"] = "BertTokenizer", ["unk_token"] = "[UNK]",
        }.ToJsonString());
    }

    public TempFolder Folder { get; } = new();

    public string Path => Folder.Path;

    public void Dispose() => Folder.Dispose();
}
