using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>
/// Writes the tokenizer files of a ModernBERT folder (gte-modernbert-base's: tokenizer.json as the only vocabulary file,
/// tokenizer_config.json, special_tokens_map.json) around a small byte-level BPE with ModernBERT's ids:
/// <c>|||IP_ADDRESS|||</c> 0 and <c>&lt;|padding|&gt;</c> 1, the 256 byte symbols from 2 in GPT-2's order, runs of 24 down to
/// 2 spaces at 50254–50276, <c>|||EMAIL_ADDRESS|||</c>, <c>|||PHONE_NUMBER|||</c>, <c>&lt;|endoftext|&gt;</c>, then
/// [UNK] 50280, [CLS] 50281, [SEP] 50282, [PAD] 50283, [MASK] 50284 (lstrip) and [unused0] … [unused82] up to 50367: 50,368
/// ids, ModernBERT's vocab_size. The words of the texts given (as the pre-tokenizer cuts them, a leading space included)
/// become single tokens through merges that grow each one from its first symbol, their prefixes taking ids from 258 on;
/// any other word is spelled out in byte tokens. Each text is encoded as [CLS] … [SEP] (BERT's template).
/// </summary>
/// <remarks>
/// The merges of the words with a leading space (Ġ) rank first: each of theirs joins a piece that starts with Ġ, so a
/// merge made for a word without one (the first word of a text) can never take a pair out of the middle of one of them.
/// </remarks>
public sealed partial class TinyModernBertTokenizer
{
    public const int Unk = 50280, Cls = 50281, Sep = 50282, Pad = 50283, Mask = 50284, VocabSize = 50368;

    private const int FirstUnused = 50285, FirstWordId = 258;

    private static readonly char[] ByteSymbol = BuildByteSymbols();

    /// <summary>The token strings (byte symbols) and their ids, added tokens included.</summary>
    public Dictionary<string, int> Vocabulary { get; } = new(StringComparer.Ordinal);

    /// <summary>The merges, highest priority first.</summary>
    public List<(string Left, string Right)> Merges { get; } = [];

    /// <summary>The added tokens in id order: id, text, whether special, whether it strips the space before it.</summary>
    public List<(int Id, string Content, bool Special, bool LStrip)> AddedTokens { get; } = [];

    /// <summary>The words that became single tokens, as text (" horse", "A").</summary>
    public IReadOnlyList<string> Words { get; }

    /// <param name="texts">The texts whose words are to be single tokens.</param>
    public TinyModernBertTokenizer(IEnumerable<string> texts)
    {
        AddedTokens.Add((0, "|||IP_ADDRESS|||", false, false));
        AddedTokens.Add((1, "<|padding|>", true, false));
        for (int spaces = 24; spaces >= 2; spaces--)
        {
            AddedTokens.Add((50278 - spaces, new string(' ', spaces), false, false));
        }

        AddedTokens.Add((50277, "|||EMAIL_ADDRESS|||", false, false));
        AddedTokens.Add((50278, "|||PHONE_NUMBER|||", false, false));
        AddedTokens.Add((50279, "<|endoftext|>", true, false));
        AddedTokens.Add((Unk, "[UNK]", true, false));
        AddedTokens.Add((Cls, "[CLS]", true, false));
        AddedTokens.Add((Sep, "[SEP]", true, false));
        AddedTokens.Add((Pad, "[PAD]", true, false));
        AddedTokens.Add((Mask, "[MASK]", true, true));
        for (int id = FirstUnused; id < VocabSize; id++)
        {
            AddedTokens.Add((id, $"[unused{id - FirstUnused}]", true, false));
        }

        foreach (byte b in BytesInIdOrder())
        {
            Vocabulary.Add(ByteSymbol[b].ToString(), 2 + Vocabulary.Count);
        }

        foreach ((int id, string content, _, _) in AddedTokens)
        {
            Vocabulary[content] = id;
        }

        Words = [.. texts.SelectMany(text => WordPiece().Matches(text).Select(match => match.Value)).Distinct(StringComparer.Ordinal)
            .OrderBy(word => word.StartsWith(' ') ? 0 : 1)];
        int next = FirstWordId;
        foreach (string word in Words)
        {
            string symbols = Symbols(word), left = symbols[..1];
            for (int i = 1; i < symbols.Length; i++)
            {
                string joined = left + symbols[i];
                if (Vocabulary.TryAdd(joined, next))
                {
                    next++;
                    Merges.Add((left, symbols[i].ToString()));
                }

                left = joined;
            }
        }

        if (next > 50254)
        {
            throw new InvalidOperationException($"the words take ids up to {next - 1}, into the added tokens' range");
        }
    }

    /// <summary>The id of a token given as the text it stands for (" horse", "A", "." for a byte).</summary>
    public int Id(string text) => Vocabulary[Symbols(text)];

    /// <summary>Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into <paramref name="folder"/>.</summary>
    public void Write(TempFolder folder)
    {
        folder.Write("tokenizer.json", TokenizerJson())
            .Write("tokenizer_config.json", TokenizerConfig())
            .Write("special_tokens_map.json", SpecialTokensMap);
    }

    private string TokenizerJson()
    {
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
                ["id"] = token.Id, ["content"] = token.Content, ["single_word"] = false, ["lstrip"] = token.LStrip, ["rstrip"] = false,
                ["normalized"] = !token.Special, ["special"] = token.Special,
            })]),
            ["normalizer"] = null,
            ["pre_tokenizer"] = JsonNode.Parse("""{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"""),
            ["post_processor"] = JsonNode.Parse($$$"""
                {
                  "type": "TemplateProcessing",
                  "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                  "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                           {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
                  "special_tokens": {
                    "[CLS]": {"id": "[CLS]", "ids": [{{{Cls}}}], "tokens": ["[CLS]"]},
                    "[SEP]": {"id": "[SEP]", "ids": [{{{Sep}}}], "tokens": ["[SEP]"]}
                  }
                }
                """),
            ["decoder"] = JsonNode.Parse("""{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}"""),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null, ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray([.. Merges.Select(merge => (JsonNode)JsonValue.Create(merge.Left + " " + merge.Right))]),
            },
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private string TokenizerConfig()
    {
        var added = new JsonObject();
        foreach ((int id, string content, bool special, bool lstrip) in AddedTokens)
        {
            added[id.ToString(CultureInfo.InvariantCulture)] = new JsonObject
            {
                ["content"] = content, ["lstrip"] = lstrip, ["normalized"] = !special, ["rstrip"] = false, ["single_word"] = false, ["special"] = special,
            };
        }

        return new JsonObject
        {
            ["added_tokens_decoder"] = added,
            ["clean_up_tokenization_spaces"] = true,
            ["cls_token"] = "[CLS]",
            ["mask_token"] = "[MASK]",
            ["model_input_names"] = new JsonArray("input_ids", "attention_mask"),
            ["model_max_length"] = 8192,
            ["pad_token"] = "[PAD]",
            ["sep_token"] = "[SEP]",
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
            ["unk_token"] = "[UNK]",
        }.ToJsonString();
    }

    private static string SpecialTokensMap => new JsonObject
    {
        ["cls_token"] = Special("[CLS]"), ["mask_token"] = Special("[MASK]", lstrip: true), ["pad_token"] = Special("[PAD]"),
        ["sep_token"] = Special("[SEP]"), ["unk_token"] = Special("[UNK]"),
    }.ToJsonString();

    private static JsonObject Special(string content, bool lstrip = false) => new()
    {
        ["content"] = content, ["lstrip"] = lstrip, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false,
    };

    // GPT-2's bytes_to_unicode: the printable Latin-1 bytes are their own symbols, the other 68 take U+0100 on, in order.
    private static char[] BuildByteSymbols()
    {
        var symbols = new char[256];
        int other = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            symbols[b] = printable ? (char)b : (char)(0x100 + other++);
        }

        return symbols;
    }

    // The byte symbols in the vocabulary's order: the printable bytes, then the others.
    private static IEnumerable<byte> BytesInIdOrder() =>
        Enumerable.Range(0, 256).Select(b => (byte)b).OrderBy(b => ByteSymbol[b] >= 0x100 ? 1 : 0).ThenBy(b => b);

    private static string Symbols(string text) => new([.. Encoding.UTF8.GetBytes(text).Select(b => ByteSymbol[b])]);

    /// <summary>A run of letters with the space before it, as GPT-2's pre-tokenizer pattern cuts words.</summary>
    [GeneratedRegex(@" ?\p{L}+")]
    private static partial Regex WordPiece();
}
