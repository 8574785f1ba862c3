using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;

namespace TransformerGen.Tokenizers.Tests;

/// <summary>
/// NLLB's tokenizer (sentencepiece.bpe.model + NllbTokenizer) on a BPE model of the test's own making, laid out as
/// nllb-200's: &lt;unk&gt;=0, &lt;s&gt;=1, &lt;/s&gt;=2 in the SentencePiece model; fairseq's &lt;s&gt;=0, &lt;pad&gt;=1,
/// &lt;/s&gt;=2, &lt;unk&gt;=3 and every piece one higher in the ids; then the language codes; then &lt;mask&gt;. Every word
/// piece is reached through its prefixes ("▁H", "▁He", …), so the segmentation is the whole word, and the expected ids
/// are worked out here from the piece list. The positions of the codes are those of transformers'
/// FAIRSEQ_LANGUAGE_CODES, cross-checked by the published nllb-200 ids in <see cref="Real_nllb_200_ids_of_the_language_codes_and_mask"/>.
/// </summary>
public sealed class NllbTests : IDisposable
{
    private const int Bos = 0, Pad = 1, Eos = 2, Unk = 3;
    private const int FirstPieceModelId = 3;

    // Places in FAIRSEQ_LANGUAGE_CODES (tokenization_nllb.py), 202 codes.
    private const int CodeCount = 202;
    private const int AceArab = 0, DeuLatn = 41, EngLatn = 46, FraLatn = 56, RonLatn = 144, ZulLatn = 201;

    private static readonly string[] Words = ["▁Hello", "▁world", "▁Bonjour", "▁le", "▁monde", "▁Hallo", "▁Welt", "▁Salut"];

    // Single characters first, then each word's prefixes, scored so that earlier pieces merge first (as -rank in a
    // trained BPE model).
    private static readonly string[] PieceTexts =
    [
        "▁", ".", ",", "!", .. "abcdefghijklmnopqrstuvwxyz".Select(c => c.ToString()), "B", "H", "S", "W",
        .. Words.SelectMany(word => Enumerable.Range(2, word.Length - 1).Select(length => word[..length])).Distinct(),
    ];

    private static readonly (string Piece, float Score)[] Pieces = [.. PieceTexts.Select((piece, i) => (piece, -(float)i))];

    // nmt_nfkc maps the full-width letter to "H".
    private static readonly byte[] CharsMap = PrecompiledCharsMapWriter.Nfkc("Ｈ");

    // len(sp_model): the three control pieces and ours.
    private static readonly int ModelSize = FirstPieceModelId + Pieces.Length;
    private static readonly int FirstCodeId = ModelSize + 1;
    private static readonly int Mask = FirstCodeId + CodeCount;

    private readonly TempFolder _folder = new();

    public NllbTests()
    {
        _folder.Write("sentencepiece.bpe.model", SentencePieceModelWriter.NllbShaped(Pieces, CharsMap));
        _folder.Write("config.json", """{ "model_type": "m2m_100", "decoder_start_token_id": 2, "pad_token_id": 1 }""");
        WriteConfig();
    }

    public void Dispose() => _folder.Dispose();

    // nllb-200's tokenizer_config.json names the class and leaves src_lang/tgt_lang null.
    private void WriteConfig(string extra = "", string srcLang = "null", string tgtLang = "null") =>
        _folder.Write("tokenizer_config.json", $$"""
            {
              "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
              "unk_token": "<unk>", "pad_token": "<pad>",
              "mask_token": { "content": "<mask>", "lstrip": true, "normalized": true, "rstrip": false, "single_word": false },
              "src_lang": {{srcLang}}, "tgt_lang": {{tgtLang}}, "sp_model_kwargs": {},
              {{extra}}
              "tokenizer_class": "NllbTokenizer"
            }
            """);

    private PretrainedTokenizer Open() => PretrainedTokenizer.FromFolder(_folder.Path);

    // The fairseq id of a piece: its SentencePiece id plus fairseq_offset (1).
    private static int Id(string piece)
    {
        int index = Array.IndexOf(PieceTexts, piece);
        Assert.True(index >= 0, $"'{piece}' is not a piece of the test model");
        return FirstPieceModelId + index + 1;
    }

    private static int[] Ids(params string[] pieces) => [.. pieces.Select(Id)];

    private static int Code(int place) => FirstCodeId + place;

    [Fact]
    public void Reads_kind_and_fairseq_special_ids()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(PretrainedTokenizer.NllbKind, tokenizer.Kind);
        Assert.Equal(Bos, tokenizer.BosId);
        Assert.Equal(Pad, tokenizer.PadId);
        Assert.Equal(Eos, tokenizer.EosId);
        Assert.Equal(Unk, tokenizer.UnkId);
        Assert.Equal(Unk, tokenizer.SpecialTokenId("<unk>"));
        Assert.Equal(Mask, tokenizer.SpecialTokenId("<mask>"));
        Assert.Equal(Mask + 1, tokenizer.VocabSize);
        // nllb-200's max_model_input_sizes when tokenizer_config.json gives none.
        Assert.Equal(1024, tokenizer.ModelMaxLength);
        Assert.Null(tokenizer.Chat);
    }

    [Fact]
    public void Pieces_are_their_sentencepiece_id_plus_one()
    {
        PretrainedTokenizer tokenizer = Open();
        // "▁" and "." are pieces 3 and 4 of the model: fairseq ids 4 and 5.
        Assert.Equal([4, 5], tokenizer.Encode(".", addSpecialTokens: false));
        Assert.Equal(Ids("▁Hello", "▁world", "."), tokenizer.Encode("Hello world.", addSpecialTokens: false));
        Assert.Equal(Ids("▁Hello", ",", "▁world"), tokenizer.Encode("  Hello,   world ", addSpecialTokens: false));
        // One character alone, which Microsoft.ML.Tokenizers' BPE normalizer would drop, still encodes.
        Assert.Equal(Ids("▁", "!"), tokenizer.Encode("!", addSpecialTokens: false));
        Assert.Equal([Code(FraLatn), .. Ids("▁", ".")], tokenizer.Encode("fra_Latn .", addSpecialTokens: false));
        // A character the model lacks is <unk>, a run of them one <unk>.
        Assert.Equal([Id("▁Hello"), Id("▁"), Unk, Id("▁world")], tokenizer.Encode("Hello 😀😀 world", addSpecialTokens: false));
    }

    /// <summary>
    /// The model's nmt_nfkc map (here: full-width Ｈ → H) applies before segmentation, which Microsoft.ML.Tokenizers does
    /// only for Unigram models; a language code written in the text is not normalized.
    /// </summary>
    [Fact]
    public void The_nmt_nfkc_map_of_the_model_is_applied()
    {
        Assert.Equal(Ids("▁Hello"), Open().Encode("Ｈello", addSpecialTokens: false));
        Assert.Equal(Open().Encode("Hello", addSpecialTokens: false), Open().Encode("Ｈello", addSpecialTokens: false));
    }

    [Fact]
    public void Language_codes_follow_the_pieces_in_fairseq_order_and_mask_follows_them()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(CodeCount, tokenizer.LanguageCodes.Count);
        Assert.Equal("ace_Arab", tokenizer.LanguageCodes[AceArab]);
        Assert.Equal("eng_Latn", tokenizer.LanguageCodes[EngLatn]);
        Assert.Equal("zul_Latn", tokenizer.LanguageCodes[ZulLatn]);
        Assert.Equal(ModelSize + 1, tokenizer.LanguageCodeId("ace_Arab"));
        Assert.Equal(Code(DeuLatn), tokenizer.LanguageCodeId("deu_Latn"));
        Assert.Equal(Code(EngLatn), tokenizer.LanguageCodeId("eng_Latn"));
        Assert.Equal(Code(FraLatn), tokenizer.LanguageCodeId("fra_Latn"));
        Assert.Equal(Code(ZulLatn), tokenizer.LanguageCodeId("zul_Latn"));
        Assert.Equal(Mask - 1, Code(ZulLatn));
        Assert.Equal(Code(FraLatn), tokenizer.SpecialTokenId("fra_Latn"));
    }

    [Fact]
    public void A_source_text_is_framed_as_source_code_text_end_s()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal("eng_Latn", tokenizer.SourceLanguage);
        Assert.Equal([Code(EngLatn), .. Ids("▁Hello", "▁world", "."), Eos], tokenizer.Encode("Hello world."));
        Assert.Equal([Code(EngLatn), Eos], tokenizer.Encode(""));

        PretrainedTokenizer german = tokenizer.WithSourceLanguage("deu_Latn");
        Assert.Equal("deu_Latn", german.SourceLanguage);
        Assert.Equal([Code(DeuLatn), .. Ids("▁Hallo", "▁Welt"), Eos], german.Encode("Hallo Welt"));
        // The original is unchanged.
        Assert.Equal([Code(EngLatn), Id("▁Hello"), Eos], tokenizer.Encode("Hello"));
    }

    [Fact]
    public void The_source_language_comes_from_tokenizer_config()
    {
        _folder.Write("tokenizer_config.json", """{ "src_lang": "fra_Latn", "tgt_lang": "deu_Latn", "tokenizer_class": "NllbTokenizerFast", "model_max_length": 512 }""");
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal("fra_Latn", tokenizer.SourceLanguage);
        Assert.Equal("deu_Latn", tokenizer.TargetLanguage);
        Assert.Equal(512, tokenizer.ModelMaxLength);
        Assert.Equal([Code(FraLatn), .. Ids("▁Bonjour", "▁le", "▁monde"), Eos], tokenizer.Encode("Bonjour le monde"));
        Assert.Equal([Code(DeuLatn), .. Ids("▁Hallo", "▁Welt"), Eos], tokenizer.EncodeTarget("Hallo Welt"));
    }

    [Fact]
    public void A_target_text_is_framed_as_target_code_text_end_s()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Null(tokenizer.TargetLanguage);
        // transformers cannot frame a target text without tgt_lang either; the text alone needs none.
        InvalidOperationException missing = Assert.Throws<InvalidOperationException>(() => tokenizer.EncodeTarget("Bonjour"));
        Assert.Contains("tgt_lang", missing.Message, StringComparison.Ordinal);
        Assert.Equal(Ids("▁Bonjour"), tokenizer.EncodeTarget("Bonjour", addSpecialTokens: false));

        PretrainedTokenizer french = tokenizer.WithTargetLanguage("fra_Latn");
        Assert.Equal("fra_Latn", french.TargetLanguage);
        Assert.Equal([Code(FraLatn), .. Ids("▁Bonjour", "▁le", "▁monde", "."), Eos], french.EncodeTarget("Bonjour le monde."));
        // The source side keeps its own code.
        Assert.Equal([Code(EngLatn), .. Ids("▁Hello", "▁world"), Eos], french.Encode("Hello world"));

        Span<int> ids = stackalloc int[8];
        int written = french.EncodeTarget("Salut le monde", ids, maxTokens: 4);
        Assert.Equal([Code(FraLatn), .. Ids("▁Salut", "▁le"), Eos], ids[..written].ToArray());
    }

    [Fact]
    public void Legacy_behaviour_puts_the_code_after_end_s()
    {
        WriteConfig("\"legacy_behaviour\": true,", tgtLang: "\"ron_Latn\"");
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([.. Ids("▁Hello", "▁world"), Eos, Code(EngLatn)], tokenizer.Encode("Hello world"));
        Assert.Equal([.. Ids("▁Salut"), Eos, Code(RonLatn)], tokenizer.EncodeTarget("Salut"));
        Assert.Equal([.. Ids("▁Hallo"), Eos, Code(DeuLatn)], tokenizer.WithSourceLanguage("deu_Latn").Encode("Hallo"));

        // Truncation cuts the text and keeps "</s> code" (transformers' test_enro_tokenizer_truncation).
        Span<int> ids = stackalloc int[16];
        int written = tokenizer.Encode("Hello world Hello world", ids, maxTokens: 3);
        Assert.Equal([Id("▁Hello"), Eos, Code(EngLatn)], ids[..written].ToArray());
    }

    [Fact]
    public void Truncation_keeps_the_code_and_end_s()
    {
        Span<int> ids = stackalloc int[16];
        int written = Open().Encode("Hello world Hello world", ids, maxTokens: 3);
        Assert.Equal([Code(EngLatn), Id("▁Hello"), Eos], ids[..written].ToArray());
        Assert.Throws<ArgumentException>(() => Open().Encode("Hello", new int[16], maxTokens: 1));
    }

    [Fact]
    public void Codes_and_special_tokens_written_in_the_text_stay_one_token()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([Code(FraLatn), .. Ids("▁Bonjour")], tokenizer.Encode("fra_Latn Bonjour", addSpecialTokens: false));
        Assert.Equal([Id("▁Hello"), Code(DeuLatn), Id("▁world")], tokenizer.Encode("Hello deu_Latn world", addSpecialTokens: false));
        Assert.Equal([Id("▁Hello"), Eos], tokenizer.Encode("Hello</s>", addSpecialTokens: false));
        // <mask> takes in the space before it.
        Assert.Equal([Id("▁Hello"), Mask, Id("▁world")], tokenizer.Encode("Hello <mask> world", addSpecialTokens: false));
    }

    [Fact]
    public void Decoding_drops_codes_and_special_tokens_when_asked()
    {
        PretrainedTokenizer tokenizer = Open();
        // A generated translation: </s> (decoder start), the forced target code, the text, </s>.
        int[] generated = [Eos, Code(FraLatn), .. Ids("▁Bonjour", "▁le", "▁monde", "."), Eos];
        Assert.Equal("Bonjour le monde.", tokenizer.Decode(generated));
        Assert.Equal("</s>fra_Latn Bonjour le monde.</s>", tokenizer.Decode(generated, skipSpecialTokens: false));
        // transformers' test_enro_tokenizer_decode_ignores_language_codes: a leading code changes nothing.
        Assert.Equal(tokenizer.Decode(generated.AsSpan(2)), tokenizer.Decode(generated));
        Assert.Equal("Hello", tokenizer.Decode([Pad, Mask, Id("▁Hello"), Unk, Code(ZulLatn)]));
    }

    [Theory]
    [InlineData("Hello world.")]
    [InlineData("Bonjour, le monde!")]
    [InlineData("Hallo Welt")]
    public void Text_round_trips(string text)
    {
        PretrainedTokenizer tokenizer = Open().WithTargetLanguage("fra_Latn");
        Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text).ToArray()));
        Assert.Equal(text, tokenizer.Decode(tokenizer.EncodeTarget(text).ToArray()));
    }

    [Fact]
    public void The_folders_own_code_list_and_stated_ids_are_used()
    {
        // A fine-tuned model's special_tokens_map.json with two codes: they follow the pieces, <mask> follows them.
        _folder.Write("special_tokens_map.json", """{ "additional_special_tokens": ["fra_Latn", { "content": "eng_Latn", "special": true }] }""");
        PretrainedTokenizer mapped = Open();
        Assert.Equal(["fra_Latn", "eng_Latn"], mapped.LanguageCodes);
        Assert.Equal(ModelSize + 1, mapped.LanguageCodeId("fra_Latn"));
        Assert.Equal(ModelSize + 2, mapped.LanguageCodeId("eng_Latn"));
        Assert.Equal(ModelSize + 3, mapped.SpecialTokenId("<mask>"));
        Assert.Throws<ArgumentException>(() => mapped.LanguageCodeId("deu_Latn"));

        // tokenizer_config.json's own list wins over special_tokens_map.json, and the ids added_tokens_decoder states win
        // over the layout (here a new code appended after <mask>, as fine-tuning scripts add one).
        int newCode = ModelSize + 3 + 1;
        WriteConfig($$"""
            "additional_special_tokens": ["eng_Latn", "fra_Latn", "tlh_Latn"],
            "added_tokens_decoder": {
              "{{ModelSize + 1}}": { "content": "eng_Latn", "special": true },
              "{{ModelSize + 2}}": { "content": "fra_Latn", "special": true },
              "{{ModelSize + 3}}": { "content": "<mask>", "lstrip": true, "special": true },
              "{{newCode}}": { "content": "tlh_Latn", "special": true }
            },
            """);
        PretrainedTokenizer stated = Open();
        Assert.Equal(["eng_Latn", "fra_Latn", "tlh_Latn"], stated.LanguageCodes);
        Assert.Equal(newCode, stated.LanguageCodeId("tlh_Latn"));
        Assert.Equal(ModelSize + 3, stated.SpecialTokenId("<mask>"));
        Assert.Equal(newCode + 1, stated.VocabSize);
        Assert.Equal([newCode, Id("▁Hello"), Eos], stated.WithSourceLanguage("tlh_Latn").Encode("Hello"));
    }

    [Fact]
    public void A_folder_naming_no_class_is_nllb_by_its_m2m_100_config()
    {
        File.Delete(Path.Combine(_folder.Path, "tokenizer_config.json"));
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(PretrainedTokenizer.NllbKind, tokenizer.Kind);
        Assert.Equal([Code(EngLatn), Id("▁Hello"), Eos], tokenizer.Encode("Hello"));
    }

    [Fact]
    public void A_missing_model_file_is_named()
    {
        File.Delete(Path.Combine(_folder.Path, "sentencepiece.bpe.model"));
        FileNotFoundException error = Assert.Throws<FileNotFoundException>(Open);
        Assert.Contains("sentencepiece.bpe.model", error.Message, StringComparison.Ordinal);
        Assert.Equal(Path.Combine(_folder.Path, "sentencepiece.bpe.model"), error.FileName);
    }

    [Fact]
    public void Unknown_language_codes_are_named()
    {
        PretrainedTokenizer tokenizer = Open();
        ArgumentException unknown = Assert.Throws<ArgumentException>(() => tokenizer.LanguageCodeId("ar_AR"));
        Assert.Contains("'ar_AR'", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("'xx_Yyyy'", Assert.Throws<ArgumentException>(() => tokenizer.WithSourceLanguage("xx_Yyyy")).Message, StringComparison.Ordinal);
        Assert.Contains("'fr'", Assert.Throws<ArgumentException>(() => tokenizer.WithTargetLanguage("fr")).Message, StringComparison.Ordinal);

        WriteConfig(srcLang: "\"english\"");
        InvalidDataException badConfig = Assert.Throws<InvalidDataException>(Open);
        Assert.Contains("src_lang 'english'", badConfig.Message, StringComparison.Ordinal);

        WriteConfig(tgtLang: "\"fra\"");
        Assert.Contains("tgt_lang 'fra'", Assert.Throws<InvalidDataException>(Open).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Tokenizers_without_language_framing_refuse_to_choose_a_language()
    {
        using var other = new TempFolder();
        other.Write("sentencepiece.bpe.model", SentencePieceModelWriter.XlmRobertaShaped(Pieces, CharsMap));
        other.Write("tokenizer_config.json", """{ "tokenizer_class": "XLMRobertaTokenizer" }""");
        PretrainedTokenizer xlmr = PretrainedTokenizer.FromFolder(other.Path);
        Assert.Null(xlmr.SourceLanguage);
        Assert.Empty(xlmr.LanguageCodes);
        Assert.Throws<NotSupportedException>(() => xlmr.WithSourceLanguage("eng_Latn"));
        Assert.Throws<ArgumentException>(() => xlmr.LanguageCodeId("eng_Latn"));
    }

    [Fact]
    public void Real_nllb_200_ids_of_the_language_codes_and_mask()
    {
        // nllb-200's model has 256000 pieces; the ids transformers' test_tokenization_nllb.py quotes for it (ace_Arab
        // 256001, eng_Latn 256047, fra_Latn 256057, ron_Latn 256145, <mask> 256203) depend only on that size and the
        // order of the codes, so a model of the same size with filler pieces gives them too.
        const int RealModelSize = 256_000;
        var filler = new List<(string, float)>(RealModelSize - FirstPieceModelId) { ("▁", 0) };
        for (int i = filler.Count; i < RealModelSize - FirstPieceModelId; i++)
        {
            filler.Add(($"\uE000{i}", -i));
        }

        using var real = new TempFolder();
        real.Write("sentencepiece.bpe.model", SentencePieceModelWriter.NllbShaped(filler, CharsMap));
        real.Write("tokenizer_config.json", """{ "src_lang": null, "tgt_lang": null, "model_max_length": 1024, "tokenizer_class": "NllbTokenizer" }""");
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(real.Path);
        Assert.Equal(256001, tokenizer.LanguageCodeId("ace_Arab"));
        Assert.Equal(256002, tokenizer.LanguageCodeId("ace_Latn"));
        Assert.Equal(256047, tokenizer.LanguageCodeId("eng_Latn"));
        Assert.Equal(256057, tokenizer.LanguageCodeId("fra_Latn"));
        Assert.Equal(256145, tokenizer.LanguageCodeId("ron_Latn"));
        Assert.Equal(256203, tokenizer.SpecialTokenId("<mask>"));
        Assert.Equal(256204, tokenizer.VocabSize);
        Assert.Equal([256047, 2], tokenizer.Encode(""));
        Assert.Equal([256145, 2], tokenizer.WithTargetLanguage("ron_Latn").EncodeTarget(""));
    }
}
