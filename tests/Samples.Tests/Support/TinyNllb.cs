using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TransformerGen.Tokenizers.Tests.Support;
using TranslateSample;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>
/// The tiny M2M100 and folders for the Translate sample's NLLB tests: an nllb-200-shaped folder (config.json,
/// model.safetensors, sentencepiece.bpe.model, tokenizer_config.json, special_tokens_map.json) at toy size, the BPE model
/// written with the tokenizer tests' writer. Its pieces are single characters and every prefix of a few English and French
/// words, so each word is one piece.
/// </summary>
internal static class TinyNllb
{
    /// <summary>The config <see cref="TinyNllbModel"/> is compiled from, as copied beside the tests.</summary>
    public static string ConfigPath => Path.Combine(AppContext.BaseDirectory, "Models", "tiny-nllb", "config.json");

    /// <summary>The tiny model as the Translate sample takes a model: eng_Latn to fra_Latn unless told.</summary>
    public static TranslationModelSpec Spec { get; } = new(
        "tests/tiny-nllb",
        TranslationModelSpec.NllbFiles,
        File.ReadAllText(ConfigPath),
        "tests/Samples.Tests/Models/tiny-nllb/config.json",
        (folder, weights) => TinyNllbModel.ForInference(folder, weights),
        "AutoModelForSeq2SeqLM",
        new TranslationLanguages("eng_Latn", "fra_Latn"));

    /// <summary>fairseq's ids, as NllbTokenizer numbers them.</summary>
    public const int Bos = 0, Pad = 1, Eos = 2, Unk = 3;

    private static readonly string[] Words = ["▁the", "▁house", "▁is", "▁small", "▁where", "▁la", "▁maison", "▁est", "▁petite"];

    // Characters first, then each word's prefixes; earlier pieces score higher, so BPE merges them first (as -rank).
    private static readonly string[] PieceTexts =
    [
        "▁", ".", ",", "?", .. "abcdefghijklmnopqrstuvwxyz".Select(c => c.ToString()),
        .. Words.SelectMany(word => Enumerable.Range(2, word.Length - 1).Select(length => word[..length])).Distinct(),
    ];

    /// <summary>The fairseq id of a piece: its SentencePiece id (3 control pieces before ours) plus fairseq's offset of 1.</summary>
    public static int Id(string piece)
    {
        int index = Array.IndexOf(PieceTexts, piece);
        return index >= 0 ? 3 + index + 1 : throw new ArgumentException($"'{piece}' is not a piece of the tiny NLLB model", nameof(piece));
    }

    /// <summary>A random model, its weights drawn from <paramref name="seed"/>.</summary>
    public static TinyNllbModel Model(ulong seed) => TinyNllbModel.ForInference(seed);

    /// <summary>
    /// A model that never ends a translation: the decoder's final LayerNorm is made constant (weight 0, bias the token
    /// table's row of <paramref name="piece"/>, that row made 10 times longer), so that every step's logits are the table
    /// times that row and the piece wins every step.
    /// </summary>
    public static TinyNllbModel Repeating(ulong seed, string piece)
    {
        TinyNllbModel model = TinyNllbModel.ForInference(seed);
        Span<float> parameters = model.Parameters;
        ParameterTensor table = model.ParameterTensors.Single(t => t.Name == "model.shared.weight");
        Span<float> row = parameters.Slice(table.Offset + Id(piece) * TinyNllbModel.DModel, TinyNllbModel.DModel);
        foreach (ref float value in row) value *= 10;
        parameters.Slice(Tensor(model, "model.decoder.layer_norm.weight").Offset, TinyNllbModel.DModel).Clear();
        row.CopyTo(parameters.Slice(Tensor(model, "model.decoder.layer_norm.bias").Offset, TinyNllbModel.DModel));
        model.PackWeights(); // reading Parameters unpacked the weights; decode over panels again
        return model;
    }

    private static ParameterTensor Tensor(TinyNllbModel model, string name) => model.ParameterTensors.Single(t => t.Name == name);

    /// <summary>
    /// A folder as the hub has nllb-200-distilled-600M's, at toy size; without a model it has no model.safetensors.
    /// tokenizer_config.json's src_lang and tgt_lang are null, as nllb-200's are, unless given.
    /// </summary>
    public static TempFolder Folder(TinyNllbModel? model = null, string? srcLang = null, string? tgtLang = null)
    {
        var folder = new TempFolder();
        File.Copy(ConfigPath, folder.File("config.json"));
        (string, float)[] pieces = [.. PieceTexts.Select((piece, i) => (piece, -(float)i))];
        File.WriteAllBytes(folder.File("sentencepiece.bpe.model"), SentencePieceModelWriter.NllbShaped(pieces, PrecompiledCharsMapWriter.Nfkc("ﬁ")));
        static string Json(string? code) => code is null ? "null" : $"\"{code}\"";
        folder.Write("tokenizer_config.json", $$"""
            {
              "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
              "unk_token": "<unk>", "pad_token": "<pad>",
              "mask_token": { "content": "<mask>", "lstrip": true, "normalized": true, "rstrip": false, "single_word": false },
              "src_lang": {{Json(srcLang)}}, "tgt_lang": {{Json(tgtLang)}}, "sp_model_kwargs": {}, "model_max_length": 1024,
              "tokenizer_class": "NllbTokenizer"
            }
            """);
        folder.Write("special_tokens_map.json", """
            {
              "bos_token": "<s>", "cls_token": "<s>", "eos_token": "</s>", "mask_token": "<mask>",
              "pad_token": "<pad>", "sep_token": "</s>", "unk_token": "<unk>"
            }
            """);
        model?.Save(folder.File("model.safetensors"));
        return folder;
    }
}
