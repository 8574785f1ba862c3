using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using TransformerGen.Tokenizers.Tests.Support;
using TranslateSample;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>
/// The tiny Marian model and folders for the Translate sample's tests: an opus-mt-shaped folder (config.json,
/// model.safetensors, source.spm, target.spm, vocab.json, tokenizer_config.json) at toy size, the SentencePiece
/// models written with the tokenizer tests' writer.
/// </summary>
internal static class TinyMarian
{
    /// <summary>The config <see cref="TinyMarianModel"/> is compiled from, as copied beside the tests.</summary>
    public static string ConfigPath => Path.Combine(AppContext.BaseDirectory, "Models", "tiny-marian", "config.json");

    /// <summary>The tiny model as the Translate sample takes a model.</summary>
    public static TranslationModelSpec Spec { get; } = new(
        "tests/tiny-marian",
        TranslationModelSpec.MarianFiles,
        File.ReadAllText(ConfigPath),
        "tests/Samples.Tests/Models/tiny-marian/config.json",
        (folder, weights) => TinyMarianModel.ForInference(folder, weights),
        "MarianMTModel");

    private static readonly string[] Letters = [.. "abcdefghijklmnopqrstuvwxyz".Select(letter => letter.ToString())];

    // Whole words score above their letters, so "the house is small" segments into four word pieces.
    private static readonly (string Piece, float Score)[] SourcePieces =
    [
        ("▁", -3), (",", -3.5f), (".", -3.6f), ("?", -3.7f),
        ("▁the", -5), ("▁house", -6), ("▁is", -5), ("▁small", -6), ("▁where", -6), ("▁train", -7), ("▁station", -7),
        .. Letters.Select(letter => (letter, -15f)),
    ];

    private static readonly (string Piece, float Score)[] TargetPieces =
    [
        ("▁", -3), (",", -3.5f), (".", -3.6f), ("?", -3.7f),
        ("▁das", -5), ("▁Haus", -6), ("▁ist", -5), ("▁klein", -6), ("▁wo", -6), ("▁der", -5), ("▁Bahnhof", -7),
        .. Letters.Select(letter => (letter, -15f)),
    ];

    /// <summary>vocab.json as opus-mt orders it: &lt;/s&gt;, &lt;unk&gt;, the pieces of both sides sorted, &lt;pad&gt; last.</summary>
    public static IReadOnlyList<string> Vocabulary { get; } =
    [
        "</s>", "<unk>", .. SourcePieces.Concat(TargetPieces).Select(p => p.Piece).Distinct().Order(StringComparer.Ordinal), "<pad>",
    ];

    public const int Eos = 0;

    /// <summary>
    /// A random model, with <c>final_logits_bias</c> of &lt;/s&gt; set to <paramref name="endBias"/> when given: +50 makes
    /// every translation end at once, −50 keeps it from ending before a limit.
    /// </summary>
    public static TinyMarianModel Model(ulong seed, float? endBias = null)
    {
        TinyMarianModel model = TinyMarianModel.ForInference(seed);
        if (endBias is float bias)
        {
            ParameterTensor logitsBias = model.ParameterTensors.Single(t => t.Name == "final_logits_bias");
            model.Parameters.Slice(logitsBias.Offset, logitsBias.Length)[Eos] = bias;
            model.PackWeights(); // reading Parameters unpacked the weights; decode over panels again
        }

        return model;
    }

    /// <summary>A folder as the hub has opus-mt-en-de's, at toy size; without a model it has no model.safetensors.</summary>
    public static TempFolder Folder(TinyMarianModel? model = null)
    {
        if (Vocabulary.Count != TinyMarianModel.Vocab)
        {
            throw new InvalidOperationException($"the fixture's vocabulary has {Vocabulary.Count} ids, the tiny model {TinyMarianModel.Vocab}");
        }

        var folder = new TempFolder();
        File.Copy(ConfigPath, folder.File("config.json"));
        byte[] charsMap = PrecompiledCharsMapWriter.Nfkc("ﬁ"); // opus-mt's models normalize with nmt_nfkc
        File.WriteAllBytes(folder.File("source.spm"), SentencePieceModelWriter.MarianShaped(SourcePieces, charsMap));
        File.WriteAllBytes(folder.File("target.spm"), SentencePieceModelWriter.MarianShaped(TargetPieces, charsMap));
        folder.Write("vocab.json", "{\n" + string.Join(",\n", Vocabulary.Select((piece, id) => $"  {JsonSerializer.Serialize(piece)}: {id}")) + "\n}");
        folder.Write("tokenizer_config.json", """
            {
              "source_lang": "en", "target_lang": "de",
              "unk_token": "<unk>", "eos_token": "</s>", "pad_token": "<pad>",
              "model_max_length": 512, "separate_vocabs": false, "tokenizer_class": "MarianTokenizer"
            }
            """);
        model?.Save(folder.File("model.safetensors"));
        return folder;
    }
}
