using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using EmbeddingsSample;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>
/// The tiny MPNet as the Embeddings sample takes a model, and a folder laid out as all-mpnet-base-v2's is on the Hub at
/// toy size: the tiny config.json, random weights written by the model's own Save, a vocab.txt of 1,000 lines as MPNet's
/// is (&lt;s&gt; 0, &lt;pad&gt; 1, &lt;/s&gt; 2, &lt;unk&gt; 3, then BERT's [PAD], [unused…], [UNK] 104, [CLS], [SEP], [MASK],
/// then the characters and words of the sample's texts, then filler) and MPNetTokenizer's tokenizer_config.json, whose
/// &lt;mask&gt; (an AddedToken object, absent from vocab.txt) becomes id 1,000.
/// </summary>
public sealed class TinyMPNet : IDisposable
{
    public const ulong Seed = 11;

    private const int VocabLines = 1000;

    /// <summary>The config <see cref="TinyMPNetModel"/> is compiled from, as copied beside the tests.</summary>
    public static string ConfigPath => System.IO.Path.Combine(AppContext.BaseDirectory, "Models", "tiny-mpnet", "config.json");

    /// <summary>The tiny model as the Embeddings sample takes a model: texts as they are.</summary>
    public static EmbeddingModelSpec Spec { get; } = new(
        "tests/tiny-mpnet",
        EmbeddingModelSpec.BertFiles,
        File.ReadAllText(ConfigPath),
        "tests/Samples.Tests/Models/tiny-mpnet/config.json",
        (folder, weights) => TinyMPNetModel.ForInference(folder, weights),
        $"MPNet (relative-position bias), {TinyMPNetModel.Layers} layers, {TinyMPNetModel.DModel} wide",
        TinyMPNetModel.DModel);

    public TinyMPNet()
    {
        File.Copy(ConfigPath, Folder.File("config.json"));
        TinyMPNetModel.ForInference(Seed).Save(Folder.File("model.safetensors"));
        VocabularyLines = TinyWordPieceVocabulary.Lines(["<s>", "<pad>", "</s>", "<unk>"], MiniLmFolder.SampleTexts(), VocabLines);
        Folder.Write("vocab.txt", string.Join("\n", VocabularyLines) + "\n");
        Folder.Write("tokenizer_config.json", new JsonObject
        {
            ["do_lower_case"] = true, ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["unk_token"] = "[UNK]", ["sep_token"] = "</s>",
            ["pad_token"] = "<pad>", ["cls_token"] = "<s>",
            ["mask_token"] = new JsonObject
            {
                ["content"] = "<mask>", ["single_word"] = false, ["lstrip"] = true, ["rstrip"] = false, ["normalized"] = true, ["__type"] = "AddedToken",
            },
            ["tokenize_chinese_chars"] = true, ["strip_accents"] = null, ["model_max_length"] = 512, ["tokenizer_class"] = "MPNetTokenizer",
        }.ToJsonString());
    }

    public TempFolder Folder { get; } = new();

    public string Path => Folder.Path;

    /// <summary>vocab.txt's lines, line i being id i.</summary>
    public IReadOnlyList<string> VocabularyLines { get; }

    public void Dispose() => Folder.Dispose();
}
