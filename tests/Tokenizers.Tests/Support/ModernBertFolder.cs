using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TransformerGen.Tokenizers.Tests.Support;

/// <summary>
/// Writes a ModernBERT-shaped folder (config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json and no
/// other vocabulary file) around a small byte-level BPE vocabulary laid out as ModernBERT's: <c>|||IP_ADDRESS|||</c> = 0,
/// <c>&lt;|padding|&gt;</c> = 1, the 256 byte symbols from 2 in GPT-2's bytes_to_unicode order (so "!" = 2, "," = 13, "." = 15),
/// the runs of 24 down to 2 spaces at 50254–50276, <c>[UNK]</c> … <c>[MASK]</c> at 50280–50284 and 83 <c>[unusedN]</c> up to
/// 50367. The words given are reached by merging each one's symbols left to right; a word's own id is the one given, the
/// prefixes on the way take free ids. Words with a leading space (Ġ) are merged first, so that no other word's merges
/// cut into them; within each group the longest come first.
/// </summary>
internal sealed class ModernBertFolder
{
    public const int Unk = 50280, Cls = 50281, Sep = 50282, Pad = 50283, Mask = 50284;
    public const int FirstUnused = 50285, UnusedCount = 83;

    /// <summary>The id of the added token of <paramref name="spaces"/> spaces (2 → 50276, 5 → 50273, 24 → 50254).</summary>
    public static int SpaceRun(int spaces) => spaces is >= 2 and <= 24 ? 50278 - spaces : throw new ArgumentOutOfRangeException(nameof(spaces));

    /// <summary>The id of a byte's symbol: 2 + its place in bytes_to_unicode order.</summary>
    public static int ByteId(byte b) => 2 + ByteLevelFiles.BytesInIdOrder().TakeWhile(other => other != b).Count();

    public Dictionary<string, int> Vocabulary { get; } = new(StringComparer.Ordinal);

    /// <summary>The merges in priority order, as symbol strings.</summary>
    public List<(string Left, string Right)> Merges { get; } = [];

    public List<(int Id, string Content, bool Special, bool LStrip)> AddedTokens { get; } = [];

    /// <param name="words">Each word as text (" apple", "Neill") with the id it is to have.</param>
    public ModernBertFolder(params (string Text, int Id)[] words)
    {
        AddedTokens.Add((0, "|||IP_ADDRESS|||", false, false));
        AddedTokens.Add((1, "<|padding|>", true, false));
        foreach (byte b in ByteLevelFiles.BytesInIdOrder())
        {
            Vocabulary.Add(ByteLevelFiles.Symbols([b]), 2 + Vocabulary.Count);
        }

        for (int spaces = 24; spaces >= 2; spaces--)
        {
            AddedTokens.Add((SpaceRun(spaces), new string(' ', spaces), false, false));
        }

        AddedTokens.Add((50277, "|||EMAIL_ADDRESS|||", false, false));
        AddedTokens.Add((50278, "|||PHONE_NUMBER|||", false, false));
        AddedTokens.Add((50279, "<|endoftext|>", true, false));
        AddedTokens.Add((Unk, "[UNK]", true, false));
        AddedTokens.Add((Cls, "[CLS]", true, false));
        AddedTokens.Add((Sep, "[SEP]", true, false));
        AddedTokens.Add((Pad, "[PAD]", true, false));
        AddedTokens.Add((Mask, "[MASK]", true, true));
        for (int n = 0; n < UnusedCount; n++)
        {
            AddedTokens.Add((FirstUnused + n, $"[unused{n}]", true, false));
        }

        // The added tokens are put in the model's vocabulary too, as a file may have them there (a test takes the special
        // ones out again: the loader reads either).
        foreach ((int id, string content, _, _) in AddedTokens)
        {
            Vocabulary[content] = id;
        }

        var wanted = words.ToDictionary(word => ByteLevelFiles.Symbols(word.Text), word => word.Id, StringComparer.Ordinal);
        var taken = new HashSet<int>(Vocabulary.Values.Concat(wanted.Values));
        int nextFree = 258;
        var seenMerges = new HashSet<(string, string)>();
        IEnumerable<string> ordered = wanted.Keys
            .Select((symbols, index) => (symbols, index))
            .OrderBy(word => word.symbols.StartsWith('Ġ') ? 0 : 1)
            .ThenByDescending(word => word.symbols.Length)
            .ThenBy(word => word.index)
            .Select(word => word.symbols);
        foreach (string symbols in ordered)
        {
            for (int length = 2; length <= symbols.Length; length++)
            {
                (string, string) merge = (symbols[..(length - 1)], symbols[(length - 1)..length]);
                if (!seenMerges.Add(merge))
                {
                    continue;
                }

                Merges.Add(merge);
                string joined = symbols[..length];
                if (!Vocabulary.ContainsKey(joined))
                {
                    if (!wanted.TryGetValue(joined, out int id))
                    {
                        while (!taken.Add(nextFree))
                        {
                            nextFree++;
                        }

                        id = nextFree;
                    }

                    Vocabulary.Add(joined, id);
                }
            }
        }
    }

    /// <summary>The id of a token given as the text it stands for (" apple", " " for Ġ, "é" for Ã©).</summary>
    public int Id(string text) => Vocabulary[ByteLevelFiles.Symbols(text)];

    /// <summary>tokenizer.json with the merges as "a b" strings (older tokenizers) or as ["a", "b"] pairs (tokenizers 0.20 on).</summary>
    public string TokenizerJson(bool mergesAsPairs = false, string? postProcessor = null)
    {
        var merges = new JsonArray();
        foreach ((string left, string right) in Merges)
        {
            merges.Add(mergesAsPairs ? new JsonArray(left, right) : JsonValue.Create(left + " " + right));
        }

        var vocab = new JsonObject();
        foreach ((string token, int id) in Vocabulary.OrderBy(entry => entry.Value))
        {
            vocab[token] = id;
        }

        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = new JsonArray([.. AddedTokens.Select(token => (JsonNode)new JsonObject
            {
                ["id"] = token.Id,
                ["content"] = token.Content,
                ["single_word"] = false,
                ["lstrip"] = token.LStrip,
                ["rstrip"] = false,
                ["normalized"] = !token.Special,
                ["special"] = token.Special,
            })]),
            ["normalizer"] = null,
            ["pre_tokenizer"] = JsonNode.Parse("""{ "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true }"""),
            ["post_processor"] = JsonNode.Parse(postProcessor ?? PostProcessor),
            ["decoder"] = JsonNode.Parse("""{ "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true }"""),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = null,
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["ignore_merges"] = false,
                ["vocab"] = vocab,
                ["merges"] = merges,
            },
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>BERT's template with ModernBERT's ids.</summary>
    public const string PostProcessor = """
        {
          "type": "TemplateProcessing",
          "single": [
            { "SpecialToken": { "id": "[CLS]", "type_id": 0 } },
            { "Sequence": { "id": "A", "type_id": 0 } },
            { "SpecialToken": { "id": "[SEP]", "type_id": 0 } }
          ],
          "pair": [
            { "SpecialToken": { "id": "[CLS]", "type_id": 0 } },
            { "Sequence": { "id": "A", "type_id": 0 } },
            { "SpecialToken": { "id": "[SEP]", "type_id": 0 } },
            { "Sequence": { "id": "B", "type_id": 1 } },
            { "SpecialToken": { "id": "[SEP]", "type_id": 1 } }
          ],
          "special_tokens": {
            "[CLS]": { "id": "[CLS]", "ids": [ 50281 ], "tokens": [ "[CLS]" ] },
            "[SEP]": { "id": "[SEP]", "ids": [ 50282 ], "tokens": [ "[SEP]" ] }
          }
        }
        """;

    /// <summary>tokenizer_config.json as ModernBERT's: its added_tokens_decoder, special tokens and flags.</summary>
    public string TokenizerConfig(string modelMaxLength = "8192")
    {
        var decoder = new JsonObject();
        foreach ((int id, string content, bool special, bool lstrip) in AddedTokens)
        {
            decoder[id.ToString(System.Globalization.CultureInfo.InvariantCulture)] = new JsonObject
            {
                ["content"] = content,
                ["lstrip"] = lstrip,
                ["normalized"] = !special,
                ["rstrip"] = false,
                ["single_word"] = false,
                ["special"] = special,
            };
        }

        var root = new JsonObject
        {
            ["added_tokens_decoder"] = decoder,
            ["clean_up_tokenization_spaces"] = true,
            ["cls_token"] = "[CLS]",
            ["mask_token"] = "[MASK]",
            ["model_input_names"] = new JsonArray("input_ids", "attention_mask"),
            ["model_max_length"] = JsonNode.Parse(modelMaxLength),
            ["pad_token"] = "[PAD]",
            ["sep_token"] = "[SEP]",
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
            ["unk_token"] = "[UNK]",
        };
        return root.ToJsonString();
    }

    public const string SpecialTokensMap = """
        {
          "cls_token": { "content": "[CLS]", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false },
          "mask_token": { "content": "[MASK]", "lstrip": true, "normalized": false, "rstrip": false, "single_word": false },
          "pad_token": { "content": "[PAD]", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false },
          "sep_token": { "content": "[SEP]", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false },
          "unk_token": { "content": "[UNK]", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false }
        }
        """;

    public const string Config = """{ "architectures": [ "ModernBertForMaskedLM" ], "model_type": "modernbert", "vocab_size": 50368, "pad_token_id": 50283, "cls_token_id": 50281, "sep_token_id": 50282 }""";

    /// <summary>Writes the four files of a ModernBERT folder.</summary>
    public void Write(TempFolder folder, bool mergesAsPairs = false, string modelMaxLength = "8192")
    {
        folder.Write("config.json", Config)
            .Write("tokenizer.json", TokenizerJson(mergesAsPairs))
            .Write("tokenizer_config.json", TokenizerConfig(modelMaxLength))
            .Write("special_tokens_map.json", SpecialTokensMap);
    }
}
