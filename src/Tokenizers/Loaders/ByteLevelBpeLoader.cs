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
/// Byte-level BPE (<c>vocab.json</c> + <c>merges.txt</c>: GPT-2, Qwen2, SmolLM2) through <see cref="BpeTokenizer"/>
/// with <see cref="BpeOptions.ByteLevel"/>.
/// </summary>
/// <remarks>
/// The pre-tokenizer and normalizer come from tokenizer.json when the folder has one, since that file is what
/// transformers' fast tokenizer runs. Without it they are the slow tokenizer class's: Qwen2Tokenizer's regex
/// with NFC for model_type qwen2, GPT-2's regex otherwise (GPT2Tokenizer, which SmolLM2's config names).
/// </remarks>
internal static class ByteLevelBpeLoader
{
    public static TokenizerParts Load(string folder, TokenizerConfig config)
    {
        Dictionary<string, int> vocabulary = ReadVocabulary(Path.Combine(folder, TokenizerFolder.VocabJson));
        List<string> merges = ReadMerges(Path.Combine(folder, TokenizerFolder.MergesTxt));
        string tokenizerJsonPath = Path.Combine(folder, TokenizerFolder.TokenizerJson);
        TokenizerJsonPipeline? pipeline = File.Exists(tokenizerJsonPath) ? TokenizerJsonPipeline.Read(tokenizerJsonPath) : null;
        bool isQwen2 = config.ModelType == "qwen2";

        IReadOnlyList<SplitStep> steps = pipeline?.Steps
            ?? [new RegexSplitStep(isQwen2 ? PreTokenizerPatterns.Qwen2Regex() : PreTokenizerPatterns.Gpt2Regex())];
        Normalizer? normalizer = pipeline is not null
            ? pipeline.Normalizer
            : isQwen2 ? new UnicodeFormNormalizer([NormalizationForm.FormC]) : null;

        // Added tokens of both files, longest first (see SplitPipelinePreTokenizer: Hugging Face matches the longest,
        // and RegexPreTokenizer joins them in the dictionary's order).
        IEnumerable<AddedToken> addedTokens = config.AddedTokens.Concat(pipeline?.AddedTokens ?? []);
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

        var skipped = new HashSet<int>();
        foreach (AddedToken added in addedTokens.Where(token => token.Special))
        {
            skipped.Add(added.Id);
        }

        foreach (int? named in new[] { bosId, eosId, padId, unkId })
        {
            if (named is int id)
            {
                skipped.Add(id);
            }
        }

        int highestId = Math.Max(vocabulary.Values.Max(), specialTokens.Count > 0 ? specialTokens.Values.Max() : -1);
        return new TokenizerParts
        {
            Kind = config.ModelType == "gpt2" ? PretrainedTokenizer.Gpt2BpeKind : PretrainedTokenizer.ByteLevelBpeKind,
            EncodeText = text => bpe.EncodeToIds(text),
            DecodeIds = ids => bpe.Decode(ids, considerSpecialTokens: true),
            Prefix = prefix,
            Suffix = suffix,
            // GPT2Tokenizer.build_inputs_with_special_tokens repeats BOS before the second text; a post-processor's
            // "pair" template is not read, so a pair is refused when tokenizer.json names the special tokens.
            PairSeparator = pipeline?.Prefix is null && pipeline?.Suffix is null ? prefix : null,
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
