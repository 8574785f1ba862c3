using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;

namespace TransformerGen.Tokenizers.Tests;

/// <summary>
/// T5's tokenizer (spiece.model + T5Tokenizer/T5TokenizerFast) on a Unigram model of the test's own making, laid out
/// as t5-small's: &lt;pad&gt;=0, &lt;/s&gt;=1, &lt;unk&gt;=2, the pieces from 3, then the 100 sentinels in reverse
/// (&lt;extra_id_0&gt; the last id). The expected ids are worked out by hand from the scores below, and written as
/// numbers so that a wrong id table fails the tests.
/// </summary>
public sealed class T5Tests : IDisposable
{
    private const int Pad = 0, Eos = 1, Unk = 2;

    // 3 control pieces + the 62 below: the pieces are ids 0–64, <extra_id_99> is 65 … <extra_id_0> is 164.
    private const int PieceCount = 65;
    private const int Sentinel0 = 164, Sentinel1 = 163, Sentinel99 = 65;
    private const int Size = 165;

    private static readonly (string Piece, float Score)[] Pieces =
    [
        ("▁", -2), (".", -3), (",", -3.5f), ("!", -4), (":", -4),               // 3 4 5 6 7
        ("▁Hello", -6), ("▁world", -6.5f),                                       // 8 9
        // "tokenize": ▁token + ize (-17) beats ▁tokeni + ze (-21).
        ("▁token", -8), ("ize", -9), ("▁tokeni", -10), ("ze", -11),              // 10 11 12 13
        ("▁café", -9), ("▁cafe", -9.5f), ("▁ABC", -9),                           // 14 15 16
        ("▁The", -7), ("▁walks", -8), ("▁in", -7), ("▁park", -8),                // 17 18 19 20
        ("▁translate", -8), ("▁English", -8), ("▁to", -7), ("▁German", -8),      // 21 22 23 24
        // "1234": ▁12 + 34 (-20) beats ▁ + 1 + 2 + 3 + 4 (-62); "2024" is one piece, "2025" five.
        ("▁2024", -9), ("▁12", -10), ("34", -10),                                // 25 26 27
        .. "abcdefghijklmnopqrstuvwxyzé".Select(letter => (letter.ToString(), -15f)), // 28–54
        .. "0123456789".Select(digit => (digit.ToString(), -15f)),                // 55–64
    ];

    // A few of nmt_nfkc's mappings: full-width letters, a combining accent, and a tab made a space (nmt_nfkc's own rule).
    private static readonly byte[] CharsMap = PrecompiledCharsMapWriter.Write(new Dictionary<string, string>
    {
        ["Ａ"] = "A", ["Ｂ"] = "B", ["Ｃ"] = "C", ["e\u0301"] = "é", ["\t"] = " ",
    });

    private static readonly string FlanT5TokenizerConfig = $$"""
        {
          "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>",
          "extra_ids": 100,
          "additional_special_tokens": [{{string.Join(", ", Enumerable.Range(0, 100).Select(n => $"\"<extra_id_{n}>\""))}}],
          "model_max_length": 512,
          "sp_model_kwargs": {},
          "tokenizer_class": "T5Tokenizer"
        }
        """;

    private readonly TempFolder _folder = new();

    public T5Tests()
    {
        _folder.Write("spiece.model", SentencePieceModelWriter.T5Shaped(Pieces, CharsMap));
        // As t5-small's 32128 rows for 32100 ids, the model's table is larger than the tokenizer.
        _folder.Write("config.json", """{ "model_type": "t5", "vocab_size": 192, "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0 }""");
        _folder.Write("tokenizer_config.json", FlanT5TokenizerConfig);
    }

    public void Dispose() => _folder.Dispose();

    private PretrainedTokenizer Open() => PretrainedTokenizer.FromFolder(_folder.Path);

    [Fact]
    public void A_truncated_model_file_is_refused_as_malformed()
    {
        byte[] model = SentencePieceModelWriter.T5Shaped(Pieces, CharsMap);
        _folder.Write("spiece.model", model.AsSpan(0, model.Length - 7).ToArray());
        var e = Assert.Throws<InvalidDataException>(Open);
        Assert.Contains("not a well-formed SentencePiece model", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reads_kind_special_ids_and_size()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(PretrainedTokenizer.T5Kind, tokenizer.Kind);
        Assert.Equal(Pad, tokenizer.PadId);
        Assert.Equal(Eos, tokenizer.EosId);
        Assert.Equal(Unk, tokenizer.UnkId);
        Assert.Null(tokenizer.BosId);
        Assert.Equal(Pad, tokenizer.SpecialTokenId("<pad>"));
        Assert.Equal(Eos, tokenizer.SpecialTokenId("</s>"));
        Assert.Equal(Unk, tokenizer.SpecialTokenId("<unk>"));
        Assert.Null(tokenizer.SpecialTokenId("<s>"));
        // vocab_size = len(sp_model) + extra_ids.
        Assert.Equal(Size, tokenizer.VocabSize);
        Assert.Equal(512, tokenizer.ModelMaxLength);
    }

    [Fact]
    public void Sentinels_count_down_from_the_last_id()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(Sentinel0, tokenizer.SentinelId(0));
        Assert.Equal(Sentinel1, tokenizer.SentinelId(1));
        Assert.Equal(Sentinel99, tokenizer.SentinelId(99));
        Assert.Equal(PieceCount, Sentinel99);
        Assert.Equal(100, tokenizer.SentinelIds.Count);
        Assert.Equal(Enumerable.Range(0, 100).Select(n => Size - 1 - n), tokenizer.SentinelIds);
        Assert.Equal(Sentinel0, tokenizer.SpecialTokenId("<extra_id_0>"));
        Assert.Equal(Sentinel99, tokenizer.SpecialTokenId("<extra_id_99>"));
        Assert.Null(tokenizer.SpecialTokenId("<extra_id_100>"));

        ArgumentOutOfRangeException error = Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.SentinelId(100));
        Assert.Contains("<extra_id_100>", error.Message, StringComparison.Ordinal);
        Assert.Contains("<extra_id_99>", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.SentinelId(-1));
    }

    [Fact]
    public void A_text_is_closed_by_end_s_and_has_no_bos()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([8, 9, Eos], tokenizer.Encode("Hello world"));
        Assert.Equal([8, 9], tokenizer.Encode("Hello world", addSpecialTokens: false));
        Assert.Equal([Eos], tokenizer.Encode(""));
        // T5TokenizerFast's post-processor appends </s> even after one written in the text.
        Assert.Equal([8, Eos, Eos], tokenizer.Encode("Hello</s>"));
        Assert.Equal([21, 22, 23, 24, 7, 8, 9, Eos], tokenizer.Encode("translate English to German: Hello world"));
    }

    [Fact]
    public void Viterbi_takes_the_best_scoring_split()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([10, 11], tokenizer.Encode("tokenize", addSpecialTokens: false));

        // Make the other split score better (-4 + -5 against -8 + -9) and it is taken.
        (string, float)[] rescored = [.. Pieces.Select(p => p.Piece switch { "▁tokeni" => (p.Piece, -4f), "ze" => (p.Piece, -5f), _ => (p.Piece, p.Score) })];
        _folder.Write("spiece.model", SentencePieceModelWriter.T5Shaped(rescored, CharsMap));
        Assert.Equal([12, 13], Open().Encode("tokenize", addSpecialTokens: false));
    }

    [Fact]
    public void A_pair_is_a_end_s_b_end_s()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([8, Eos, 9, Eos], tokenizer.EncodePair("Hello", "world"));
        Assert.Equal([8, 9], tokenizer.EncodePair("Hello", "world", addSpecialTokens: false));

        Span<int> ids = stackalloc int[16];
        int written = tokenizer.EncodePair("Hello world", "tokenize", ids, out int secondStart);
        Assert.Equal([8, 9, Eos, 10, 11, Eos], ids[..written].ToArray());
        Assert.Equal(3, secondStart);
    }

    [Fact]
    public void Truncation_keeps_the_closing_end_s()
    {
        PretrainedTokenizer tokenizer = Open();
        Span<int> ids = stackalloc int[16];
        int written = tokenizer.Encode("Hello world Hello world", ids, maxTokens: 3);
        Assert.Equal([8, 9, Eos], ids[..written].ToArray());

        // A pair: 2 special tokens, 4 ids left; the second text's 2 fit, the first keeps the other 2.
        written = tokenizer.EncodePair("Hello world Hello world", "tokenize", ids, out int secondStart, maxTokens: 6);
        Assert.Equal([8, 9, Eos, 10, 11, Eos], ids[..written].ToArray());
        Assert.Equal(3, secondStart);
    }

    [Fact]
    public void Sentinels_in_the_text_are_kept_whole()
    {
        PretrainedTokenizer tokenizer = Open();
        // The span-corruption input of transformers' T5 docs, on this model.
        Assert.Equal([17, Sentinel0, 18, 19, Sentinel1, 20, Eos], tokenizer.Encode("The <extra_id_0> walks in <extra_id_1> park"));
        Assert.Equal([Sentinel1, 20, Sentinel99], tokenizer.Encode("<extra_id_1> park<extra_id_99>", addSpecialTokens: false));
        // Not a sentinel of this tokenizer: segmented as text ("<" is unknown, "extra" in letters, …).
        Assert.DoesNotContain(Sentinel0, tokenizer.Encode("<extra_id_100>"));
    }

    [Fact]
    public void Legacy_segmentation_gives_the_text_after_an_added_token_its_own_dummy_prefix()
    {
        PretrainedTokenizer tokenizer = Open();
        // legacy (transformers' default, and the tokenizer.json of the Hub's flan-t5): "." after the sentinel is "▁", ".";
        // without legacy it would be "." alone. "world" glued to the sentinel still starts a word.
        Assert.Equal([8, Sentinel0, 3, 4, Eos], tokenizer.Encode("Hello<extra_id_0>."));
        Assert.Equal([8, Sentinel0, 9, Eos], tokenizer.Encode("Hello<extra_id_0>world"));

        _folder.Write("tokenizer_config.json", FlanT5TokenizerConfig.Replace("\"extra_ids\"", "\"legacy\": true, \"extra_ids\"", StringComparison.Ordinal));
        Assert.Equal([8, Sentinel0, 3, 4, Eos], Open().Encode("Hello<extra_id_0>."));
    }

    [Fact]
    public void Special_tokens_written_in_the_text_are_kept_whole()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([8, Eos, 9, Pad, Eos], tokenizer.Encode("Hello</s> world<pad>"));
        // The text after <unk> gets a "▁" (3) of its own.
        Assert.Equal([8, Unk, 3, 5, 9], tokenizer.Encode("Hello <unk>, world", addSpecialTokens: false));
        Assert.Equal([Pad, Eos, Unk], tokenizer.Encode("<pad></s><unk>", addSpecialTokens: false));
    }

    [Fact]
    public void Unknown_characters_are_unk_and_a_run_of_them_is_one_unk()
    {
        PretrainedTokenizer tokenizer = Open();
        int[] ids = [.. tokenizer.Encode("Hello 😀😀 world")];
        Assert.Equal([8, 3, Unk, 9, Eos], ids);
        // <unk> is special: skipped, which leaves the "▁" before it.
        Assert.Equal("Hello  world", tokenizer.Decode(ids));
        Assert.Equal("Hello <unk> world</s>", tokenizer.Decode(ids, skipSpecialTokens: false));
    }

    [Fact]
    public void Digits_accents_and_full_width_letters()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([25], tokenizer.Encode("2024", addSpecialTokens: false));
        Assert.Equal([26, 27], tokenizer.Encode("1234", addSpecialTokens: false));
        // No "▁2" or "▁20": the dummy prefix alone, then one digit at a time ('0' is 55, '2' 57, '5' 60).
        Assert.Equal([3, 57, 55, 57, 60], tokenizer.Encode("2025", addSpecialTokens: false));

        // T5 keeps accents; a decomposed é is composed by nmt_nfkc first.
        Assert.Equal([14], tokenizer.Encode("café", addSpecialTokens: false));
        Assert.Equal([14], tokenizer.Encode("cafe\u0301", addSpecialTokens: false));
        Assert.Equal([15], tokenizer.Encode("cafe", addSpecialTokens: false));
        Assert.Equal([16], tokenizer.Encode("ＡＢＣ", addSpecialTokens: false));
        Assert.Equal("ABC", tokenizer.Decode([.. tokenizer.Encode("ＡＢＣ")]));
    }

    [Theory]
    [InlineData("Hello world, café 2024!")]
    [InlineData("translate English to German: The café 1234")]
    [InlineData("tokenize 2025 cafe")]
    [InlineData("é")]
    public void Texts_round_trip(string text)
    {
        PretrainedTokenizer tokenizer = Open();
        int[] ids = [.. tokenizer.Encode(text)];
        Assert.Equal(Eos, ids[^1]);
        Assert.DoesNotContain(Unk, ids);
        Assert.Equal(text, tokenizer.Decode(ids));
        Assert.Equal(text + "</s>", tokenizer.Decode(ids, skipSpecialTokens: false));
    }

    [Fact]
    public void Spaces_are_collapsed_and_the_ends_stripped()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([8, 9, Eos], tokenizer.Encode("  Hello   world  "));
        Assert.Equal([Eos], tokenizer.Encode("   "));
        Assert.Equal("Hello world", tokenizer.Decode([.. tokenizer.Encode(" Hello \t world ")]));
    }

    [Fact]
    public void Decoding_writes_sentinels_and_special_tokens_unless_skipped()
    {
        PretrainedTokenizer tokenizer = Open();
        // What a T5 model generates for span corruption: <pad> (the decoder start), then sentinel, span, sentinel, …
        int[] generated = [Pad, Sentinel0, 20, Sentinel1, 17, 18, Eos];
        Assert.Equal("<pad><extra_id_0> park<extra_id_1> The walks</s>", tokenizer.Decode(generated, skipSpecialTokens: false));
        Assert.Equal("park The walks", tokenizer.Decode(generated));
        Assert.Equal("<extra_id_99>", tokenizer.Decode([Sentinel99], skipSpecialTokens: false));
    }

    [Fact]
    public void Ids_past_the_tokenizer_are_refused_by_id()
    {
        PretrainedTokenizer tokenizer = Open();
        // 165 is a row of the model's 192-row table (as 32100–32127 are of t5-small's) but no token.
        ArgumentOutOfRangeException error = Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([8, Size, 9]));
        Assert.Equal(Size, error.ActualValue);
        Assert.Contains("Id 165 ", error.Message, StringComparison.Ordinal);
        Assert.Contains("0–164", error.Message, StringComparison.Ordinal);

        // Skipping special tokens does not hide it, nor a negative id.
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([191]));
        error = Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([-1], skipSpecialTokens: false));
        Assert.Contains("Id -1 ", error.Message, StringComparison.Ordinal);

        // The last id is still a token.
        Assert.Equal("<extra_id_0>", tokenizer.Decode([Size - 1], skipSpecialTokens: false));
    }

    [Fact]
    public void Extra_ids_sets_the_number_of_sentinels()
    {
        _folder.Write("tokenizer_config.json", """{ "tokenizer_class": "T5TokenizerFast", "extra_ids": 3 }""");
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(PieceCount + 3, tokenizer.VocabSize);
        Assert.Equal([PieceCount + 2, PieceCount + 1, PieceCount], tokenizer.SentinelIds);
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.SentinelId(3));
        Assert.Equal([8, PieceCount + 2, Eos], tokenizer.Encode("Hello <extra_id_0>"));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([PieceCount + 3]));
    }

    [Fact]
    public void Sentinels_named_in_additional_special_tokens_must_match_extra_ids()
    {
        _folder.Write("tokenizer_config.json", """{ "extra_ids": 100, "additional_special_tokens": ["<extra_id_0>", "<extra_id_1>"] }""");
        InvalidDataException error = Assert.Throws<InvalidDataException>(Open);
        Assert.Contains("extra_ids 100", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Added_tokens_of_the_config_are_kept_whole()
    {
        _folder.Write("tokenizer_config.json", $$"""
            {
              "tokenizer_class": "T5Tokenizer",
              "added_tokens_decoder": {
                "0": { "content": "<pad>", "special": true },
                "{{Sentinel0}}": { "content": "<extra_id_0>", "special": true },
                "{{Size}}": { "content": "<sep>", "special": false }
              }
            }
            """);
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(Size + 1, tokenizer.VocabSize);
        Assert.Equal([8, Size, 9, Eos], tokenizer.Encode("Hello<sep>world"));
        // Not special: decoding keeps it.
        Assert.Equal("Hello<sep> world", tokenizer.Decode([8, Size, 9, Eos]));
    }

    [Fact]
    public void Clean_up_tokenization_spaces_is_honoured()
    {
        int[] ids = [.. Open().Encode("Hello , world")];
        Assert.Equal([8, 3, 5, 9, Eos], ids);
        Assert.Equal("Hello , world", Open().Decode(ids));

        _folder.Write("tokenizer_config.json", """{ "tokenizer_class": "T5Tokenizer", "clean_up_tokenization_spaces": true }""");
        Assert.Equal("Hello, world", Open().Decode(ids));
    }

    [Fact]
    public void An_mt5_model_holds_its_sentinels_as_pieces()
    {
        // mT5: extra_ids 0, the sentinels are the model's last (user-defined) pieces, <extra_id_0> the very last.
        _folder.Write("spiece.model", SentencePieceModelWriter.T5Shaped(Pieces, CharsMap, userDefined: ["<extra_id_1>", "<extra_id_0>"]));
        _folder.Write("config.json", """{ "model_type": "mt5", "vocab_size": 80 }""");
        _folder.Write("tokenizer_config.json", """{ "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>", "extra_ids": 0, "additional_special_tokens": null }""");
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(PretrainedTokenizer.T5Kind, tokenizer.Kind);
        Assert.Equal(PieceCount + 2, tokenizer.VocabSize);
        Assert.Equal([PieceCount + 1, PieceCount], tokenizer.SentinelIds);
        int[] ids = [.. tokenizer.Encode("The <extra_id_0> walks<extra_id_1>.")];
        Assert.Equal([17, PieceCount + 1, 18, PieceCount, 3, 4, Eos], ids);
        // Not special tokens of mT5's tokenizer: skip_special_tokens keeps them.
        Assert.Equal("The<extra_id_0> walks<extra_id_1> .", tokenizer.Decode(ids));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([PieceCount + 2]));
    }

    [Fact]
    public void Other_kinds_have_no_sentinels()
    {
        PretrainedTokenizer gpt2 = PretrainedTokenizer.Gpt2();
        Assert.Empty(gpt2.SentinelIds);
        ArgumentOutOfRangeException error = Assert.Throws<ArgumentOutOfRangeException>(() => gpt2.SentinelId(0));
        Assert.Contains("no sentinels", error.Message, StringComparison.Ordinal);
    }

    // The folder logic.

    [Theory]
    [InlineData("T5Tokenizer")]
    [InlineData("T5TokenizerFast")]
    [InlineData("MT5Tokenizer")]
    public void The_class_picks_t5_even_beside_other_tokenizer_files(string tokenizerClass)
    {
        // flan-t5's folder has tokenizer.json beside spiece.model; a stray tokenizer.model would be Llama's.
        _folder.Write("tokenizer.json", "{}");
        _folder.Write("tokenizer.model", [0]);
        _folder.Write("config.json", "{}");
        _folder.Write("tokenizer_config.json", $$"""{ "tokenizer_class": "{{tokenizerClass}}" }""");
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(PretrainedTokenizer.T5Kind, tokenizer.Kind);
        Assert.Equal([8, Sentinel0, Eos], tokenizer.Encode("Hello <extra_id_0>"));
    }

    [Theory]
    [InlineData("t5")]
    [InlineData("mt5")]
    public void Without_a_tokenizer_config_the_model_type_picks_t5_with_its_defaults(string modelType)
    {
        File.Delete(Path.Combine(_folder.Path, "tokenizer_config.json"));
        _folder.Write("tokenizer.model", [0]);
        _folder.Write("config.json", $$"""{ "model_type": "{{modelType}}" }""");
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(PretrainedTokenizer.T5Kind, tokenizer.Kind);
        Assert.Equal(Size, tokenizer.VocabSize);
        Assert.Equal(Sentinel0, tokenizer.SentinelId(0));
        Assert.Equal([8, 9, Eos], tokenizer.Encode("Hello world"));
        Assert.Null(tokenizer.ModelMaxLength);
    }

    [Fact]
    public void Spiece_model_alone_is_read_as_t5()
    {
        File.Delete(Path.Combine(_folder.Path, "tokenizer_config.json"));
        File.Delete(Path.Combine(_folder.Path, "config.json"));
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(PretrainedTokenizer.T5Kind, tokenizer.Kind);
        Assert.Equal([8, Eos], tokenizer.Encode("Hello"));
    }

    [Fact]
    public void Spiece_model_of_another_family_is_refused()
    {
        _folder.Write("tokenizer_config.json", """{ "tokenizer_class": "AlbertTokenizer" }""");
        NotSupportedException error = Assert.Throws<NotSupportedException>(Open);
        Assert.Contains("AlbertTokenizer", error.Message, StringComparison.Ordinal);
        Assert.Contains("T5Tokenizer", error.Message, StringComparison.Ordinal);

        File.Delete(Path.Combine(_folder.Path, "tokenizer_config.json"));
        _folder.Write("config.json", """{ "model_type": "albert" }""");
        error = Assert.Throws<NotSupportedException>(Open);
        Assert.Contains("'albert'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Legacy_false_is_refused()
    {
        _folder.Write("tokenizer_config.json", """{ "tokenizer_class": "T5Tokenizer", "legacy": false }""");
        NotSupportedException error = Assert.Throws<NotSupportedException>(Open);
        Assert.Contains("legacy: false", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_t5_class_without_spiece_model_names_the_missing_file()
    {
        File.Delete(Path.Combine(_folder.Path, "spiece.model"));
        _folder.Write("tokenizer.json", "{}");
        // Nothing claims the folder: the error lists spiece.model among the files looked for.
        FileNotFoundException error = Assert.Throws<FileNotFoundException>(Open);
        Assert.Contains("spiece.model (SentencePiece Unigram: T5", error.Message, StringComparison.Ordinal);
        Assert.Contains("tokenizer.json alone is read only when its model is BPE (byte-level: ModernBERT); this one names no model type.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_folder_without_tokenizer_files_lists_spiece_model()
    {
        using var empty = new TempFolder();
        FileNotFoundException error = Assert.Throws<FileNotFoundException>(() => PretrainedTokenizer.FromFolder(empty.Path));
        Assert.Contains("spiece.model (SentencePiece Unigram: T5, flan-t5, mT5)", error.Message, StringComparison.Ordinal);
    }
}
