using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;
using static TransformerGen.Tokenizers.Tests.Support.ModernBertFolder;

namespace TransformerGen.Tokenizers.Tests;

/// <summary>
/// ModernBERT-shaped folders (answerdotai/ModernBERT-base, gte-modernbert-base, modernbert-embed-base): tokenizer.json is the
/// only vocabulary file, its model a byte-level BPE, its post-processor BERT's template with [CLS] = 50281 and [SEP] = 50282.
/// </summary>
public sealed class ModernBertTests : IDisposable
{
    // Two published encodings, reproduced by a vocabulary that gives their tokens their ids. The first was printed with its
    // tokens ([CLS] The Ġapple Ġand Ġbanana Ġare Ġfruits [SEP]), in a write-up comparing gte-modernbert-base's tokenizer with
    // ModernBERT-base's. The second is the expected_ids of a test script of a Julia port of ModernBERT's tokenizer; only ids
    // were given, and the tokens behind the longer ones are read off the text (the one-byte ones follow from "!" = 2: a
    // printable ASCII byte b is b − 31). It pins the runs of five spaces as one added token (50273) after which a word has
    // no Ġ, the contraction 's, and the punctuation.
    private const string Fruits = "The apple and banana are fruits";
    private static readonly int[] FruitsIds = [50281, 510, 19126, 285, 36767, 403, 18098, 50282];

    private const string Names = "Mr. O'Neill-McPherson's co-workers @ ABC.com [and] {Dr. J.R.R. Martin-Smith} use     multiple     spaces!";
    private static readonly int[] NamesIds =
    [
        50281, 7710, 15, 473, 8, 41437, 14, 11773, 49, 379,
        1665, 434, 820, 14, 26719, 1214, 15599, 15, 681, 544,
        395, 62, 551, 9034, 15, 500, 15, 51, 15, 51,
        15, 8698, 14, 21484, 94, 897, 50273, 34263, 50273, 31748,
        2, 50282,
    ];

    private static readonly (string, int)[] Words =
    [
        // The published ones.
        ("The", 510), (" apple", 19126), (" and", 285), (" banana", 36767), (" are", 403), (" fruits", 18098),
        ("Mr", 7710), (" O", 473), ("Neill", 41437), ("Mc", 11773), ("her", 379), ("son", 1665), ("'s", 434), (" co", 820),
        ("workers", 26719), (" @", 1214), (" ABC", 15599), ("com", 681), (" [", 544), ("and", 395), (" {", 551), ("Dr", 9034),
        (" J", 500), (" Martin", 8698), ("Smith", 21484), (" use", 897), ("multiple", 34263), ("spaces", 31748),
        // This test's own, at ids of its choosing. "he" and "wor" are on the way to "her" and "workers".
        ("Hello", 45000), (" world", 45001), (" is", 45002), (" caf", 45003), ("é", 45004), (" 20", 45005), ("24", 45006),
        ("he", 45007), ("wor", 45008),
    ];

    // Byte ids, worked out from bytes_to_unicode's order (printable ! … ~, ¡ … ¬, ® … ÿ, then the other 68 bytes), from 2.
    private const int Space = 222;   // 0x20, the 33rd of the others: 2 + 188 + 32
    private const int Comma = 13, Period = 15, Bang = 2, LetterT = 85, LetterL = 77, LetterD = 69;
    private const int ByteC3 = 129, ByteBC = 122;                 // "ü" = C3 BC: 2 + 106 + (0xC3 − 0xAE), 2 + 106 + (0xBC − 0xAE)
    private const int ByteE6 = 164, Byte97 = 247, ByteA5 = 100;   // "日" = E6 97 A5

    private static readonly ModernBertFolder Files = new(Words);

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private PretrainedTokenizer Open(bool mergesAsPairs = false)
    {
        Files.Write(_folder, mergesAsPairs);
        return PretrainedTokenizer.FromFolder(_folder.Path);
    }

    [Fact]
    public void The_builder_lays_bytes_out_as_the_published_ids_say()
    {
        Assert.Equal(Bang, ByteId((byte)'!'));
        Assert.Equal(Comma, ByteId((byte)','));
        Assert.Equal(Period, ByteId((byte)'.'));
        Assert.Equal(Space, ByteId((byte)' '));
        Assert.Equal(LetterT, ByteId((byte)'t'));
        Assert.Equal([ByteC3, ByteBC], "ü"u8.ToArray().Select(ByteId));
        Assert.Equal([ByteE6, Byte97, ByteA5], "日"u8.ToArray().Select(ByteId));
        Assert.Equal(50273, SpaceRun(5));
    }

    [Fact]
    public void Reads_a_folder_with_tokenizer_json_alone()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(PretrainedTokenizer.ByteLevelBpeKind, tokenizer.Kind);
        Assert.Equal(50368, tokenizer.VocabSize);
        Assert.Equal(8192, tokenizer.ModelMaxLength);
        Assert.Equal(Pad, tokenizer.PadId);
        Assert.Equal(Unk, tokenizer.UnkId);
        Assert.Null(tokenizer.BosId);
        Assert.Null(tokenizer.EosId);
        Assert.Equal(Mask, tokenizer.SpecialTokenId("[MASK]"));
        Assert.Equal(FirstUnused + 82, tokenizer.SpecialTokenId("[unused82]"));
    }

    [Fact]
    public void Model_max_length_placeholder_is_no_limit()
    {
        Files.Write(_folder, modelMaxLength: "1000000000000000019884624838656");
        Assert.Null(PretrainedTokenizer.FromFolder(_folder.Path).ModelMaxLength);
    }

    [Fact]
    public void Published_ids_are_reproduced()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(FruitsIds, tokenizer.Encode(Fruits));
        Assert.Equal(NamesIds, tokenizer.Encode(Names));
    }

    [Fact]
    public void Ids_worked_out_by_hand()
    {
        PretrainedTokenizer tokenizer = Open();

        // "Hello" "Ġworld" "," then " the": no Ġt merge, "h e" merges (on the way to "her"), nothing joins "t he". " café" is
        // "Ġcaf" and "é" (Ã ©); " 2024" one piece by GPT-2's regex, "2 0" merging after "Ġ 2", then "2 4"; " ü" has no merge.
        Assert.Equal(
            [Cls, 45000, 45001, Comma, Space, LetterT, 45007, 45003, 45004, 45002, 45005, 45006, Space, ByteC3, ByteBC, Bang, Sep],
            tokenizer.Encode("Hello world, the café is 2024 ü!"));

        // Two spaces are the added token 50276, so "world" comes without Ġ: "w o" and "wo r" merge (towards "workers"), "l", "d"
        // stay; " 日" is the space and the character's three bytes.
        Assert.Equal(
            [Cls, 45000, SpaceRun(2), 45008, LetterL, LetterD, Space, ByteE6, Byte97, ByteA5, Sep],
            tokenizer.Encode("Hello  world 日"));

        // A leading space has nothing to merge with "H".
        Assert.Equal([Cls, Space, 45000, Sep], tokenizer.Encode(" Hello"));
        Assert.Equal([Space, 45000], tokenizer.Encode(" Hello", addSpecialTokens: false));
    }

    [Fact]
    public void Mask_takes_in_the_space_before_it()
    {
        // [MASK] is lstrip in ModernBERT's files: " is [MASK]." is "Ġis", the mask, "." — no "Ġ" before the mask.
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([Cls, 510, 19126, 45002, Mask, Period, Sep], tokenizer.Encode("The apple is [MASK]."));
        Assert.Equal([Cls, 19126, Sep], tokenizer.Encode("[CLS] apple[SEP]", addSpecialTokens: false));

        // Without the flag the space stays a token of its own.
        var noStrip = new ModernBertFolder(Words);
        int mask = noStrip.AddedTokens.FindIndex(token => token.Content == "[MASK]");
        noStrip.AddedTokens[mask] = noStrip.AddedTokens[mask] with { LStrip = false };
        noStrip.Write(_folder);
        Assert.Equal(
            [Cls, 510, 19126, 45002, Space, Mask, Period, Sep],
            PretrainedTokenizer.FromFolder(_folder.Path).Encode("The apple is [MASK]."));
    }

    [Fact]
    public void Both_forms_of_merges_give_the_same_ids()
    {
        PretrainedTokenizer strings = Open(mergesAsPairs: false);
        using var other = new TempFolder();
        Files.Write(other, mergesAsPairs: true);
        PretrainedTokenizer pairs = PretrainedTokenizer.FromFolder(other.Path);
        using (JsonDocument written = JsonDocument.Parse(File.ReadAllText(Path.Combine(other.Path, "tokenizer.json"))))
        {
            Assert.Equal(JsonValueKind.Array, written.RootElement.GetProperty("model").GetProperty("merges")[0].ValueKind);
        }

        foreach (string text in new[] { Fruits, Names, "Hello world, the café is 2024 ü!", "Hello  world 日", "The apple is [MASK]." })
        {
            Assert.Equal(strings.Encode(text), pairs.Encode(text));
        }

        Assert.Equal(NamesIds, pairs.Encode(Names));
    }

    [Fact]
    public void Vocab_json_and_merges_txt_beside_it_give_the_same_ids()
    {
        // The older folder form (read from vocab.json + merges.txt, tokenizer.json giving only the pipeline) agrees.
        PretrainedTokenizer alone = Open();
        using var beside = new TempFolder();
        Files.Write(beside);
        ByteLevelFiles.Write(beside, Files.Vocabulary, Files.Merges.Select(merge => merge.Left + " " + merge.Right));
        PretrainedTokenizer withFiles = PretrainedTokenizer.FromFolder(beside.Path);
        foreach (string text in new[] { Fruits, Names, "Hello world, the café is 2024 ü!", "Hello  world 日", "The apple is [MASK]." })
        {
            Assert.Equal(alone.Encode(text), withFiles.Encode(text));
        }
    }

    [Fact]
    public void Special_tokens_need_not_be_in_the_model_vocabulary()
    {
        var files = new ModernBertFolder(Words);
        foreach ((int _, string content, bool special, bool _) in files.AddedTokens.Where(token => token.Special))
        {
            files.Vocabulary.Remove(content);
        }

        files.Write(_folder);
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        Assert.Equal(FruitsIds, tokenizer.Encode(Fruits));
        Assert.Equal([Cls, 510, 19126, 45002, Mask, Period, Sep], tokenizer.Encode("The apple is [MASK]."));
        Assert.Equal(50368, tokenizer.VocabSize);
    }

    [Fact]
    public void Pair_is_cls_a_sep_b_sep()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([Cls, 510, 19126, Sep, 395, 36767, Sep], tokenizer.EncodePair("The apple", "and banana"));
        Assert.Equal([510, 19126, 395, 36767], tokenizer.EncodePair("The apple", "and banana", addSpecialTokens: false));

        Span<int> ids = stackalloc int[16];
        int written = tokenizer.EncodePair("The apple", "and banana", ids, out int secondStart);
        Assert.Equal(7, written);
        Assert.Equal(4, secondStart);
    }

    [Fact]
    public void Truncation_keeps_cls_and_sep()
    {
        PretrainedTokenizer tokenizer = Open();
        Span<int> ids = stackalloc int[16];
        int written = tokenizer.Encode(Fruits, ids, maxTokens: 4);
        Assert.Equal([Cls, 510, 19126, Sep], ids[..written].ToArray());

        // Longest first: four ids and two, a budget of four (seven less three special tokens): two each.
        written = tokenizer.EncodePair("The apple and banana", " are fruits", ids, out int secondStart, maxTokens: 7);
        Assert.Equal([Cls, 510, 19126, Sep, 403, 18098, Sep], ids[..written].ToArray());
        Assert.Equal(4, secondStart);

        Assert.Throws<ArgumentException>(() => tokenizer.Encode(Fruits, new int[8], maxTokens: 1));
    }

    [Fact]
    public void Decode_skips_special_tokens_and_round_trips()
    {
        PretrainedTokenizer tokenizer = Open();
        foreach (string text in new[] { Fruits, Names, "Hello world, the café is 2024 ü!", "Hello  world 日", " Hello" })
        {
            Assert.Equal(text, tokenizer.Decode([.. tokenizer.Encode(text)]));
        }

        Assert.Equal("[CLS]The apple and banana are fruits[SEP]", tokenizer.Decode(FruitsIds, skipSpecialTokens: false));
        Assert.Equal("The apple and banana", tokenizer.Decode([Cls, 510, 19126, Pad, 285, 36767, Sep, Pad, Pad]));

        // The mask took in its space, which decoding cannot give back.
        int[] masked = [.. tokenizer.Encode("The apple is [MASK].")];
        Assert.Equal("The apple is.", tokenizer.Decode(masked));
        Assert.Equal("[CLS]The apple is[MASK].[SEP]", tokenizer.Decode(masked, skipSpecialTokens: false));
    }

    [Fact]
    public void Decode_cleans_up_spaces_as_the_config_asks()
    {
        // clean_up_tokenization_spaces is true in ModernBERT's tokenizer_config.json: " ," and " !" lose their space.
        PretrainedTokenizer tokenizer = Open();
        int[] ids = [.. tokenizer.Encode("The apple , and banana !")];
        Assert.Equal([Cls, 510, 19126, Space, Comma, 285, 36767, Space, Bang, Sep], ids);
        Assert.Equal("The apple, and banana!", tokenizer.Decode(ids));

        _folder.Write("tokenizer_config.json", Files.TokenizerConfig().Replace("\"clean_up_tokenization_spaces\":true", "\"clean_up_tokenization_spaces\":false", StringComparison.Ordinal));
        Assert.Equal("The apple , and banana !", PretrainedTokenizer.FromFolder(_folder.Path).Decode(ids));
    }

    [Fact]
    public void A_pair_template_of_another_form_refuses_pairs_only()
    {
        Files.Write(_folder);
        _folder.Write("tokenizer.json", Files.TokenizerJson(postProcessor: """
            {
              "type": "TemplateProcessing",
              "single": [ { "SpecialToken": { "id": "[CLS]", "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } }, { "SpecialToken": { "id": "[SEP]", "type_id": 0 } } ],
              "pair": [ { "Sequence": { "id": "A", "type_id": 0 } }, { "SpecialToken": { "id": "[SEP]", "type_id": 0 } }, { "Sequence": { "id": "B", "type_id": 1 } } ],
              "special_tokens": {
                "[CLS]": { "id": "[CLS]", "ids": [ 50281 ], "tokens": [ "[CLS]" ] },
                "[SEP]": { "id": "[SEP]", "ids": [ 50282 ], "tokens": [ "[SEP]" ] }
              }
            }
            """));
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        Assert.Equal(FruitsIds, tokenizer.Encode(Fruits));
        NotSupportedException error = Assert.Throws<NotSupportedException>(() => tokenizer.EncodePair("The apple", "and banana"));
        Assert.Contains("pair", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("WordPiece", "this one's model is 'WordPiece', read only from vocab.txt.")]
    [InlineData("Unigram", "this one's model is 'Unigram', read only from a SentencePiece model")]
    [InlineData("WordLevel", "this one's model is 'WordLevel'.")]
    public void Tokenizer_json_alone_with_another_model_is_refused_naming_it(string modelType, string named)
    {
        _folder.Write("config.json", """{ "model_type": "bert" }""")
            .Write("tokenizer_config.json", """{ "tokenizer_class": "BertTokenizer" }""")
            .Write("tokenizer.json", $$"""
                {
                  "normalizer": { "type": "BertNormalizer", "lowercase": true },
                  "pre_tokenizer": { "type": "BertPreTokenizer" },
                  "model": { "type": "{{modelType}}", "unk_token": "[UNK]", "vocab": { "[UNK]": 0, "hi": 1 } }
                }
                """);
        FileNotFoundException error = Assert.Throws<FileNotFoundException>(() => PretrainedTokenizer.FromFolder(_folder.Path));
        Assert.Contains("Found: config.json, tokenizer.json, tokenizer_config.json.", error.Message, StringComparison.Ordinal);
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
        Assert.Contains("tokenizer.json with a BPE model (byte-level BPE: ModernBERT)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bpe_that_is_not_byte_level_is_refused_naming_its_pre_tokenizer()
    {
        Files.Write(_folder);
        var root = System.Text.Json.Nodes.JsonNode.Parse(Files.TokenizerJson())!;
        root["pre_tokenizer"] = System.Text.Json.Nodes.JsonNode.Parse("""{ "type": "Metaspace", "replacement": "▁", "prepend_scheme": "first" }""");
        root["decoder"] = System.Text.Json.Nodes.JsonNode.Parse("""{ "type": "Metaspace", "replacement": "▁" }""");
        _folder.Write("tokenizer.json", root.ToJsonString());
        NotSupportedException error = Assert.Throws<NotSupportedException>(() => PretrainedTokenizer.FromFolder(_folder.Path));
        Assert.Contains("Metaspace", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_merge_pair_with_a_space_is_refused()
    {
        Files.Write(_folder);
        var root = System.Text.Json.Nodes.JsonNode.Parse(Files.TokenizerJson(mergesAsPairs: true))!;
        root["model"]!["merges"]!.AsArray().Add(new System.Text.Json.Nodes.JsonArray("a b", "c"));
        _folder.Write("tokenizer.json", root.ToJsonString());
        NotSupportedException error = Assert.Throws<NotSupportedException>(() => PretrainedTokenizer.FromFolder(_folder.Path));
        Assert.Contains("has a token with a space", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_malformed_merge_string_is_refused()
    {
        Files.Write(_folder);
        var root = System.Text.Json.Nodes.JsonNode.Parse(Files.TokenizerJson())!;
        root["model"]!["merges"]!.AsArray().Add("abc");
        _folder.Write("tokenizer.json", root.ToJsonString());
        InvalidDataException error = Assert.Throws<InvalidDataException>(() => PretrainedTokenizer.FromFolder(_folder.Path));
        Assert.Contains("\"abc\" is not two tokens joined by one space", error.Message, StringComparison.Ordinal);
    }
}
