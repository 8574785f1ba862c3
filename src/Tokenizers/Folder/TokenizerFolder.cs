using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using TransformerGen.Tokenizers.Loaders;
using TransformerGen.Tokenizers.PreTokenization;

namespace TransformerGen.Tokenizers.Folder;

/// <summary>Which tokenizer a model folder holds, decided by the vocabulary files present.</summary>
internal static class TokenizerFolder
{
    public const string VocabJson = "vocab.json";
    public const string MergesTxt = "merges.txt";
    public const string SentencePieceModel = "tokenizer.model";
    public const string XlmRobertaSentencePieceModel = "sentencepiece.bpe.model";
    public const string WordPieceVocab = "vocab.txt";
    public const string TokenizerJson = "tokenizer.json";

    public static string RequireFolder(string folder) =>
        Directory.Exists(folder) ? folder : throw new DirectoryNotFoundException($"The tokenizer folder '{folder}' does not exist.");

    /// <summary>
    /// The order matters only for folders with files of two kinds, which the Hub's GPT-2, BERT, Llama-2,
    /// TinyLlama, SmolLM2, Qwen2, XLM-R and opus-mt uploads are not: Marian first (its vocab.json comes without
    /// merges.txt, and source.spm is its alone), then byte-level BPE, then SentencePiece BPE (Llama's, or Gemma's, which
    /// <see cref="SentencePieceLoader"/> tells apart by the tokenizer class and the model's normalizer), then XLM-R's
    /// SentencePiece Unigram, then WordPiece. NLLB, whose sentencepiece.bpe.model XLM-R's also has, is told apart
    /// by tokenizer_config.json's class (or config.json's m2m_100) before the files are looked at; so is T5 (spiece.model
    /// with class T5Tokenizer/T5TokenizerFast, or config.json's t5/mt5), whose folders also hold a tokenizer.json. Then a folder
    /// with only T5's <c>spiece.model</c> is read as T5 (the loader refuses ALBERT's and the like by their class). Last, a
    /// tokenizer.json that is the folder's only vocabulary file is read when its model is a byte-level BPE (ModernBERT:
    /// answerdotai/ModernBERT-base, gte-modernbert-base, modernbert-embed-base); a WordPiece or Unigram model there is
    /// refused, its vocabulary file being missing.
    /// </summary>
    public static TokenizerParts Load(string folder, TokenizerConfig config)
    {
        bool Has(string name) => File.Exists(Path.Combine(folder, name));

        if (NllbLoader.Claims(folder, config))
        {
            return NllbLoader.Load(folder, config);
        }

        if (T5Loader.Claims(folder, config))
        {
            return T5Loader.Load(folder, config);
        }

        if (Has(MarianLoader.SourceSpm))
        {
            return MarianLoader.Load(folder, config);
        }

        if (Has(VocabJson) && Has(MergesTxt))
        {
            return ByteLevelBpeLoader.Load(folder, config);
        }

        if (Has(SentencePieceModel))
        {
            return SentencePieceLoader.Load(Path.Combine(folder, SentencePieceModel), config);
        }

        if (Has(XlmRobertaSentencePieceModel))
        {
            return XlmRobertaLoader.Load(Path.Combine(folder, XlmRobertaSentencePieceModel), config);
        }

        if (Has(WordPieceVocab))
        {
            return WordPieceLoader.Load(Path.Combine(folder, WordPieceVocab), config);
        }

        if (Has(T5Loader.ModelFile))
        {
            return T5Loader.Load(folder, config);
        }

        if (Has(TokenizerJson))
        {
            using JsonDocument tokenizerJson = TokenizerConfig.ParseFile(Path.Combine(folder, TokenizerJson));
            string? modelType = TokenizerJsonPipeline.ModelType(tokenizerJson.RootElement);
            if (modelType == "BPE")
            {
                return ByteLevelBpeLoader.LoadTokenizerJson(tokenizerJson.RootElement, config);
            }

            throw NoTokenizerFiles(folder, TokenizerJsonHint(modelType));
        }

        throw NoTokenizerFiles(folder, "");
    }

    // Why a tokenizer.json found alone did not do: only a BPE model is read from it, the others from their own files.
    private static string TokenizerJsonHint(string? modelType)
    {
        string model = modelType is null ? "this one names no model type" : $"this one's model is '{modelType}'";
        string reason = modelType switch
        {
            "WordPiece" => $", read only from {WordPieceVocab}",
            "Unigram" => $", read only from a SentencePiece model ({XlmRobertaSentencePieceModel}, {T5Loader.ModelFile})",
            _ => "",
        };
        return $" tokenizer.json alone is read only when its model is BPE (byte-level: ModernBERT); {model}{reason}.";
    }

    private static FileNotFoundException NoTokenizerFiles(string folder, string hint)
    {
        string[] found = Directory.EnumerateFileSystemEntries(folder)
            .Select(path => Path.GetFileName(path) + (Directory.Exists(path) ? "/" : ""))
            .Order(StringComparer.Ordinal)
            .ToArray();
        string foundText = found.Length == 0 ? "nothing (the folder is empty)" : string.Join(", ", found);
        return new FileNotFoundException(
            $"No tokenizer found in '{folder}'. Looked for: {VocabJson} + {MergesTxt} (byte-level BPE: GPT-2, Qwen2, SmolLM2), "
            + $"{SentencePieceModel} (SentencePiece BPE: Llama-2, TinyLlama, Gemma 3), {XlmRobertaSentencePieceModel} (SentencePiece Unigram: "
            + $"XLM-R, multilingual-e5, bge-m3), {WordPieceVocab} (WordPiece: BERT), {MarianLoader.SourceSpm} + {MarianLoader.TargetSpm} + {VocabJson} "
            + $"(Marian: opus-mt), {T5Loader.ModelFile} (SentencePiece Unigram: T5, flan-t5, mT5), {TokenizerJson} with a BPE model "
            + "(byte-level BPE: ModernBERT). "
            + $"Found: {foundText}.{hint}");
    }
}
