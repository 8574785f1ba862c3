using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using TransformerGen.Tokenizers.Folder;

namespace TransformerGen.Tokenizers.Loaders;

/// <summary>
/// The tokenizer of a Marian translation model (Helsinki-NLP/opus-mt-*), as transformers' <c>MarianTokenizer</c>:
/// <c>source.spm</c> segments source texts, <c>target.spm</c> target texts, and <c>vocab.json</c> numbers the pieces of
/// both (or <c>target_vocab.json</c> the target's, when tokenizer_config.json says <c>separate_vocabs</c>). A text
/// is closed by &lt;/s&gt;; there is no BOS (the decoder starts from config.json's <c>decoder_start_token_id</c>).
/// </summary>
internal static class MarianLoader
{
    public const string SourceSpm = "source.spm";
    public const string TargetSpm = "target.spm";
    public const string TargetVocabJson = "target_vocab.json";

    // MarianTokenizer.__init__'s defaults.
    private const string DefaultUnkToken = "<unk>", DefaultEosToken = "</s>", DefaultPadToken = "<pad>";
    private const int DefaultModelMaxLength = 512;

    public static TokenizerParts Load(string folder, TokenizerConfig config)
    {
        if (config.TokenizerClass is not (null or "MarianTokenizer"))
        {
            throw new NotSupportedException(
                $"{SourceSpm} with tokenizer_class '{config.TokenizerClass}': only MarianTokenizer's layout (source.spm, target.spm, vocab.json) is read.");
        }

        string sourceSpm = Require(folder, SourceSpm, "the source side's SentencePiece model");
        string targetSpm = Require(folder, TargetSpm, "the target side's SentencePiece model");
        string vocabPath = Require(folder, TokenizerFolder.VocabJson, "the piece → id vocabulary");
        bool separateVocabs = config.SeparateVocabs ?? false;
        string? targetVocabPath = separateVocabs
            ? Require(folder, TargetVocabJson, "the target side's vocabulary, which tokenizer_config.json's separate_vocabs: true asks for")
            : null;

        string unk = config.UnkToken ?? DefaultUnkToken, eos = config.EosToken ?? DefaultEosToken, pad = config.PadToken ?? DefaultPadToken;
        Dictionary<string, int> vocabulary = ReadVocabulary(vocabPath);
        Dictionary<string, int> targetVocabulary = targetVocabPath is null ? vocabulary : ReadVocabulary(targetVocabPath);
        SpecialIds source = SpecialIds.Find(vocabulary, vocabPath, unk, eos, pad);
        SpecialIds target = targetVocabPath is null ? source : SpecialIds.Find(targetVocabulary, targetVocabPath, unk, eos, pad);

        List<AddedToken> sourceAdded = AddedTokens(config, vocabulary, unk, eos, pad);
        List<AddedToken> targetAdded = targetVocabPath is null ? sourceAdded : AddedTokens(config, targetVocabulary, unk, eos, pad);
        var sourceSide = new MarianSentencePiece(SentencePieceFile.Open(sourceSpm), vocabulary, sourceAdded, source.Unk);
        var targetSide = new MarianSentencePiece(SentencePieceFile.Open(targetSpm), targetVocabulary, targetAdded, target.Unk);

        bool cleanUp = config.CleanUpTokenizationSpaces ?? false;
        var specialTokens = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (AddedToken added in sourceAdded)
        {
            specialTokens[added.Content] = added.Id;
        }

        // transformers' supported_language_codes: empty when the vocabularies are separate.
        string[] languageCodes = separateVocabs ? [] : [.. vocabulary.Keys.Where(IsLanguageCode)];
        return new TokenizerParts
        {
            Kind = PretrainedTokenizer.MarianKind,
            EncodeText = sourceSide.Encode,
            EncodeTargetText = targetSide.Encode,
            // transformers' decode gives target text: the model generates the target side.
            DecodeIds = cleanUp ? ids => TokenizationSpaces.CleanUp(targetSide.Decode(ids)) : targetSide.Decode,
            Suffix = [source.Eos],
            TargetSuffix = [target.Eos],
            // build_inputs_with_special_tokens joins a pair as "A B </s>", which the Prefix/Suffix/PairSeparator
            // form cannot say; Marian translates single texts.
            PairSeparator = null,
            EosId = source.Eos,
            PadId = source.Pad,
            UnkId = source.Unk,
            EosToken = eos,
            VocabSize = Math.Max(vocabulary.Values.Max(), targetVocabulary.Values.Max()) + 1,
            SpecialTokens = specialTokens,
            SkippedWhenDecoding = targetAdded.Where(added => added.Special).Select(added => added.Id).ToHashSet(),
            LanguageCodes = languageCodes,
            LanguageCodeIds = languageCodes.ToDictionary(code => code, code => vocabulary[code], StringComparer.Ordinal),
            DefaultModelMaxLength = DefaultModelMaxLength,
        };
    }

    private static bool IsLanguageCode(string piece) =>
        piece.Length >= 4 && piece.StartsWith(">>", StringComparison.Ordinal) && piece.EndsWith("<<", StringComparison.Ordinal);

    private static string Require(string folder, string name, string what)
    {
        string path = Path.Combine(folder, name);
        return File.Exists(path)
            ? path
            : throw new FileNotFoundException($"The Marian tokenizer in '{folder}' has {SourceSpm} but no {name} ({what}).", path);
    }

    // The special tokens are kept whole in a text, as transformers registers them as added tokens; on each side they
    // take that side's ids. added_tokens_decoder may name more, with the ids it gives when the vocabulary lacks them.
    private static List<AddedToken> AddedTokens(TokenizerConfig config, Dictionary<string, int> vocabulary, string unk, string eos, string pad)
    {
        var tokens = new List<AddedToken>
        {
            new(eos, vocabulary[eos], Special: true),
            new(unk, vocabulary[unk], Special: true),
            new(pad, vocabulary[pad], Special: true),
        };
        foreach (AddedToken added in config.AddedTokens)
        {
            tokens.Add(vocabulary.TryGetValue(added.Content, out int id) ? added with { Id = id } : added);
        }

        return tokens;
    }

    // vocab.json: { "</s>": 0, "<unk>": 1, "▁,": 2, … }, in file order.
    private static Dictionary<string, int> ReadVocabulary(string path)
    {
        using JsonDocument document = TokenizerConfig.ParseFile(path);
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{path} is not a JSON object of piece → id.");
        }

        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (JsonProperty entry in document.RootElement.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
            {
                throw new InvalidDataException($"{path}: the id of '{entry.Name}' is {entry.Value.GetRawText()}, not a non-negative integer.");
            }

            vocabulary[entry.Name] = id;
        }

        return vocabulary;
    }

    private readonly record struct SpecialIds(int Unk, int Eos, int Pad)
    {
        // transformers asks only for <unk> ("<unk> token must be in the vocab"); a translation loop needs </s> to stop
        // and <pad> to start the decoder, so a vocabulary without them is refused here rather than later.
        public static SpecialIds Find(Dictionary<string, int> vocabulary, string path, string unk, string eos, string pad) =>
            new(IdOf(vocabulary, path, "unk_token", unk), IdOf(vocabulary, path, "eos_token", eos), IdOf(vocabulary, path, "pad_token", pad));

        private static int IdOf(Dictionary<string, int> vocabulary, string path, string key, string token) =>
            vocabulary.TryGetValue(token, out int id)
                ? id
                : throw new InvalidDataException($"{Path.GetFileName(path)} has no entry for the {key} '{token}' (in {path}).");
    }
}
