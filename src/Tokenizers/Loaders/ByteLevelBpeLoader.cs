using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;
using TransformerGen.Tokenizers.Folder;
using TransformerGen.Tokenizers.Normalization;
using TransformerGen.Tokenizers.PreTokenization;

namespace TransformerGen.Tokenizers.Loaders;

/// <summary>
/// Byte-level BPE through <see cref="BpeTokenizer"/> with <see cref="BpeOptions.ByteLevel"/>: from <c>vocab.json</c> +
/// <c>merges.txt</c> (GPT-2, Qwen2, SmolLM2), or from the BPE model of a <c>tokenizer.json</c> that is the folder's only
/// vocabulary file (ModernBERT: answerdotai/ModernBERT-base, gte-modernbert-base, modernbert-embed-base).
/// </summary>
/// <remarks>
/// The pre-tokenizer, normalizer and post-processor come from tokenizer.json when the folder has one, since that file
/// is what transformers' fast tokenizer runs. Without it they are the slow tokenizer class's: Qwen2Tokenizer's regex
/// with NFC for model_type qwen2, GPT-2's regex otherwise (GPT2Tokenizer, which SmolLM2's config names).
/// </remarks>
internal static class ByteLevelBpeLoader
{
    /// <summary>A folder with vocab.json and merges.txt (and perhaps tokenizer.json for the pipeline around them).</summary>
    public static TokenizerParts Load(string folder, TokenizerConfig config)
    {
        Dictionary<string, int> vocabulary = ReadVocabulary(Path.Combine(folder, TokenizerFolder.VocabJson));
        List<string> merges = ReadMerges(Path.Combine(folder, TokenizerFolder.MergesTxt));
        string tokenizerJsonPath = Path.Combine(folder, TokenizerFolder.TokenizerJson);
        TokenizerJsonPipeline? pipeline = File.Exists(tokenizerJsonPath) ? TokenizerJsonPipeline.Read(tokenizerJsonPath) : null;
        return Build(vocabulary, merges, pipeline, config);
    }

    /// <summary>
    /// A folder whose tokenizer.json (already parsed, its model a BPE) is its only vocabulary file: the vocabulary and
    /// merges are the model's, the pipeline around them as for <see cref="Load"/>.
    /// </summary>
    public static TokenizerParts LoadTokenizerJson(JsonElement tokenizerJson, TokenizerConfig config)
    {
        TokenizerJsonPipeline pipeline = TokenizerJsonPipeline.Read(tokenizerJson, withModel: true);
        return Build(pipeline.Vocabulary!, pipeline.Merges!, pipeline, config);
    }

    private static TokenizerParts Build(Dictionary<string, int> vocabulary, List<string> merges, TokenizerJsonPipeline? pipeline, TokenizerConfig config)
    {
        bool isQwen2 = config.ModelType == "qwen2";

        IReadOnlyList<SplitStep> steps = pipeline?.Steps
            ?? [new RegexSplitStep(isQwen2 ? PreTokenizerPatterns.Qwen2Regex() : PreTokenizerPatterns.Gpt2Regex())];
        Normalizer? normalizer = pipeline is not null
            ? pipeline.Normalizer
            : isQwen2 ? new UnicodeFormNormalizer([NormalizationForm.FormC]) : null;

        // Added tokens of both files, longest first (see SplitPipelinePreTokenizer: Hugging Face matches the longest,
        // and RegexPreTokenizer joins them in the dictionary's order).
        AddedToken[] addedTokens = [.. config.AddedTokens.Concat(pipeline?.AddedTokens ?? [])];
        var specialTokens = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (AddedToken added in addedTokens.OrderByDescending(token => token.Content.Length))
        {
            specialTokens.TryAdd(added.Content, added.Id);
        }

        PreTokenizer preTokenizer = steps is [RegexSplitStep single]
            ? new RegexPreTokenizer(single.Regex, specialTokens.Count > 0 ? specialTokens : null)
            : new SplitPipelinePreTokenizer(steps, specialTokens);

        BpeTokenizer bpe = BpeTokenizer.Create(new BpeOptions(vocabulary)
        {
            Merges = merges,
            ByteLevel = true,
            PreTokenizer = preTokenizer,
            Normalizer = normalizer,
            SpecialTokens = specialTokens.Count > 0 ? specialTokens : null,
        });

        int? IdOf(string? token) =>
            token is null ? null
            : specialTokens.TryGetValue(token, out int id) ? id
            : vocabulary.TryGetValue(token, out id) ? id
            : null;

        int? bosId = IdOf(config.BosToken);
        int? eosId = IdOf(config.EosToken);
        int? padId = IdOf(config.PadToken);
        int? unkId = IdOf(config.UnkToken);

        // GPT2Tokenizer adds BOS only when add_bos_token is set (and EOS never; add_eos_token is read for
        // symmetry with LlamaTokenizer). tokenizer.json's post-processor, when it names tokens, decides instead.
        int[] prefix = pipeline?.Prefix ?? (config.AddBosToken == true && bosId is int bos ? [bos] : []);
        int[] suffix = pipeline?.Suffix ?? (config.AddEosToken == true && eosId is int eos ? [eos] : []);
        bool templated = pipeline?.Prefix is not null || pipeline?.Suffix is not null;

        var skipped = new HashSet<int>();
        foreach (AddedToken added in addedTokens.Where(token => token.Special))
        {
            skipped.Add(added.Id);
        }

        foreach (string? named in new[] { config.BosToken, config.EosToken, config.PadToken, config.UnkToken, config.ClsToken, config.SepToken, config.MaskToken })
        {
            if (IdOf(named) is int id)
            {
                skipped.Add(id);
            }
        }

        // ModernBERT's [MASK] is lstrip: "is [MASK]" is "is" and the mask, not "is", "Ġ" and the mask. BpeTokenizer keeps its
        // special tokens whole but knows nothing of stripping, so such a folder's added tokens are cut out first.
        Func<string, IReadOnlyList<int>> encodePlain = pipeline?.IgnoreMerges == true
            ? new WholePiecesFirst(bpe, preTokenizer, normalizer, vocabulary, specialTokens).Encode
            : text => bpe.EncodeToIds(text);
        Func<string, IReadOnlyList<int>> encodeText = addedTokens.Any(token => token.LStrip || token.RStrip)
            ? new StrippingAddedTokens(encodePlain, addedTokens).Encode
            : encodePlain;

        // transformers' fast tokenizer cleans the decoded text when tokenizer_config.json says so (ModernBERT does).
        bool cleanUp = config.CleanUpTokenizationSpaces ?? false;

        int highestId = Math.Max(vocabulary.Values.Max(), specialTokens.Count > 0 ? specialTokens.Values.Max() : -1);
        return new TokenizerParts
        {
            Kind = config.ModelType == "gpt2" ? PretrainedTokenizer.Gpt2BpeKind : PretrainedTokenizer.ByteLevelBpeKind,
            EncodeText = encodeText,
            DecodeIds = cleanUp
                ? ids => TokenizationSpaces.CleanUp(bpe.Decode(ids, considerSpecialTokens: true))
                : ids => bpe.Decode(ids, considerSpecialTokens: true),
            Prefix = prefix,
            Suffix = suffix,
            // GPT2Tokenizer.build_inputs_with_special_tokens repeats BOS before the second text. A post-processor that names
            // special tokens gives its pair template instead, read when it is Prefix A Suffix … B Suffix; otherwise a pair
            // is refused.
            PairSeparator = templated ? pipeline!.PairSeparator : prefix,
            BosId = bosId,
            EosId = eosId,
            PadId = padId,
            UnkId = unkId,
            BosToken = config.BosToken,
            EosToken = config.EosToken,
            VocabSize = highestId + 1,
            SpecialTokens = specialTokens,
            SkippedWhenDecoding = skipped,
        };
    }

    /// <summary>
    /// tokenizers' AddedVocabulary for a folder with <c>lstrip</c>/<c>rstrip</c> tokens: the special tokens are cut out
    /// of the raw text first (taking in the whitespace their flags say), then the other added tokens out of what is left
    /// (ModernBERT's runs of spaces), and each remaining stretch is encoded by itself.
    /// </summary>
    private sealed class StrippingAddedTokens(Func<string, IReadOnlyList<int>> encode, IReadOnlyList<AddedToken> tokens)
    {
        private readonly AddedTokenSplitter _special = new(tokens.Where(token => token.Special));
        private readonly AddedTokenSplitter _plain = new(tokens.Where(token => !token.Special));

        public IReadOnlyList<int> Encode(string text)
        {
            var ids = new List<int>();
            foreach (TextSegment segment in _special.Split(text))
            {
                if (segment.TokenId is int id)
                {
                    ids.Add(id);
                    continue;
                }

                string stretch = text.Substring(segment.Start, segment.Length);
                foreach (TextSegment inner in _plain.Split(stretch))
                {
                    if (inner.TokenId is int innerId)
                    {
                        ids.Add(innerId);
                    }
                    else
                    {
                        ids.AddRange(encode(stretch.Substring(inner.Start, inner.Length)));
                    }
                }
            }

            return ids;
        }
    }

    /// <summary>
    /// tokenizers' BPE with <c>ignore_merges</c> (Llama 3): the text is normalized and pre-tokenized as the library would,
    /// then each piece that the vocabulary spells whole (in GPT-2's byte alphabet) is that token, and only the others are
    /// merged, by <see cref="BpeTokenizer"/> with its own normalization and pre-tokenization off. BpeTokenizer has no such
    /// option; merging can reach another split than the whole word (tiktoken, which Llama 3's vocabulary comes from,
    /// looks the piece up first).
    /// </summary>
    private sealed class WholePiecesFirst(BpeTokenizer bpe, PreTokenizer preTokenizer, Normalizer? normalizer,
        IReadOnlyDictionary<string, int> vocabulary, IReadOnlyDictionary<string, int> specialTokens)
    {
        public IReadOnlyList<int> Encode(string text)
        {
            string normalized = normalizer?.Normalize(text) ?? text;
            var ids = new List<int>();
            foreach ((int offset, int length) in preTokenizer.PreTokenize(normalized))
            {
                string piece = normalized.Substring(offset, length);
                if (specialTokens.TryGetValue(piece, out int id) || vocabulary.TryGetValue(ByteLevel.ByteLevelAlphabet.Spell(piece), out id))
                {
                    ids.Add(id);
                }
                else
                {
                    ids.AddRange(bpe.EncodeToIds(piece, considerPreTokenization: false, considerNormalization: false));
                }
            }

            return ids;
        }
    }

    // vocab.json: {"!": 0, "\"": 1, …, "Ġthe": 262, …}. Read here (not by BpeOptions' file constructor) so that the
    // ids are at hand for VocabSize and for looking up the special tokens the config names.
    private static Dictionary<string, int> ReadVocabulary(string path)
    {
        using JsonDocument document = TokenizerConfig.ParseFile(path);
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{path} is not a JSON object of token → id.");
        }

        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (JsonProperty entry in document.RootElement.EnumerateObject())
        {
            vocabulary[entry.Name] = entry.Value.GetInt32();
        }

        if (vocabulary.Count == 0)
        {
            throw new InvalidDataException($"{path} holds no tokens.");
        }

        return vocabulary;
    }

    // merges.txt: an optional "#version: 0.2" line, then one "left right" pair per line, highest priority first.
    private static List<string> ReadMerges(string path)
    {
        var merges = new List<string>();
        foreach (string line in File.ReadLines(path))
        {
            if (line.Length > 0 && !line.StartsWith("#version", StringComparison.Ordinal))
            {
                merges.Add(line);
            }
        }

        return merges;
    }
}
