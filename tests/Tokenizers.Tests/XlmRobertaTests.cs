using System;
using System.Collections.Generic;
using System.Linq;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;

namespace TransformerGen.Tokenizers.Tests;

/// <summary>
/// XLM-RoBERTa's tokenizer (sentencepiece.bpe.model + XLMRobertaTokenizer) on a model of the test's own making,
/// laid out as XLM-R's: &lt;unk&gt;=0, &lt;s&gt;=1, &lt;/s&gt;=2 in the SentencePiece model, fairseq's
/// &lt;s&gt;=0, &lt;pad&gt;=1, &lt;/s&gt;=2, &lt;unk&gt;=3 and every piece one higher in the ids. The expected ids are
/// worked out by hand from the scores; transformers' published XLM-R ids need the real 5 MB model.
/// </summary>
public sealed class XlmRobertaTests : IDisposable
{
    private const int Bos = 0, Pad = 1, Eos = 2, Unk = 3;
    private const int FirstPieceModelId = 3;

    private static readonly (string Piece, float Score)[] Pieces =
    [
        ("▁", -3), (",", -3.5f), (".", -3.6f), ("!", -4),
        ("▁Hello", -7), ("▁world", -7.5f),
        // "tokenize": ▁token + ize (-17) beats ▁tokeni + ze (-21), the split a greedy longest match takes.
        ("▁token", -8), ("ize", -9), ("▁tokeni", -10), ("ze", -11),
        ("▁café", -9), ("▁cafe", -9.5f), ("▁ABC", -9), ("▁finance", -9), ("(", -12), ("株", -12), (")", -12),
        ("▁привет", -9), ("▁мир", -9), ("▁你好", -9), ("世界", -9),
        .. "abcdefghijklmnopqrstuvwxyzé".Select(letter => (letter.ToString(), -15f)),
    ];

    // A few of nmt_nfkc's mappings: full-width letters, a ligature, a parenthesized ideograph, a combining accent.
    private static readonly byte[] CharsMap = PrecompiledCharsMapWriter.Nfkc("Ａ", "Ｂ", "Ｃ", "ﬁ", "㈱", "e\u0301");

    private static readonly int Mask = FirstPieceModelId + Pieces.Length + 1;

    private readonly TempFolder _folder = new();

    public XlmRobertaTests()
    {
        _folder.Write("sentencepiece.bpe.model", SentencePieceModelWriter.XlmRobertaShaped(Pieces, CharsMap));
        // paraphrase-multilingual-MiniLM-L12-v2 is a BERT model with XLM-R's tokenizer.
        _folder.Write("config.json", """{ "model_type": "bert", "pad_token_id": 1 }""");
        _folder.Write("tokenizer_config.json", $$"""
            {
              "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
              "unk_token": "<unk>", "pad_token": "<pad>",
              "mask_token": { "content": "<mask>", "lstrip": true, "normalized": false, "rstrip": false, "single_word": false, "special": true },
              "model_max_length": 128,
              "tokenizer_class": "XLMRobertaTokenizer",
              "added_tokens_decoder": {
                "0": { "content": "<s>", "lstrip": false, "special": true },
                "1": { "content": "<pad>", "lstrip": false, "special": true },
                "2": { "content": "</s>", "lstrip": false, "special": true },
                "3": { "content": "<unk>", "lstrip": false, "special": true },
                "{{Mask}}": { "content": "<mask>", "lstrip": true, "special": true }
              }
            }
            """);
    }

    public void Dispose() => _folder.Dispose();

    private PretrainedTokenizer Open() => PretrainedTokenizer.FromFolder(_folder.Path);

    // The fairseq id of a piece: its SentencePiece id plus fairseq_offset (1).
    private static int Id(string piece) => FirstPieceModelId + Array.FindIndex(Pieces, p => p.Piece == piece) + 1;

    private static int[] Ids(params string[] pieces) => [.. pieces.Select(Id)];

    [Fact]
    public void Reads_kind_and_fairseq_special_ids()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(PretrainedTokenizer.SentencePieceUnigramKind, tokenizer.Kind);
        Assert.Equal(Bos, tokenizer.BosId);
        Assert.Equal(Pad, tokenizer.PadId);
        Assert.Equal(Eos, tokenizer.EosId);
        Assert.Equal(Unk, tokenizer.UnkId);
        Assert.Equal(Bos, tokenizer.SpecialTokenId("<s>"));
        Assert.Equal(Pad, tokenizer.SpecialTokenId("<pad>"));
        Assert.Equal(Eos, tokenizer.SpecialTokenId("</s>"));
        Assert.Equal(Unk, tokenizer.SpecialTokenId("<unk>"));
        // <mask> is len(sp_model) + fairseq_offset, the last id; vocab_size = len(sp_model) + 2.
        Assert.Equal(Mask, tokenizer.SpecialTokenId("<mask>"));
        Assert.Equal(Mask + 1, tokenizer.VocabSize);
        Assert.Equal(128, tokenizer.ModelMaxLength);
    }

    [Fact]
    public void Pieces_are_their_sentencepiece_id_plus_one()
    {
        PretrainedTokenizer tokenizer = Open();
        // "▁", "," and "▁Hello" are pieces 3, 4 and 7 of the model: fairseq ids 4, 5 and 8.
        Assert.Equal([4, 5], tokenizer.Encode(",", addSpecialTokens: false));
        Assert.Equal([8], tokenizer.Encode("Hello", addSpecialTokens: false));
        Assert.Equal([4, Unk], tokenizer.Encode("😀", addSpecialTokens: false));
    }

    [Fact]
    public void Viterbi_takes_the_best_scoring_split_not_the_longest_first_piece()
    {
        Assert.Equal(Ids("▁token", "ize"), Open().Encode("tokenize", addSpecialTokens: false));

        // Make the other split score better (-4 + -5 against -8 + -9) and it is taken.
        (string, float)[] rescored = [.. Pieces.Select(p => p.Piece switch { "▁tokeni" => (p.Piece, -4f), "ze" => (p.Piece, -5f), _ => (p.Piece, p.Score) })];
        _folder.Write("sentencepiece.bpe.model", SentencePieceModelWriter.XlmRobertaShaped(rescored, CharsMap));
        Assert.Equal(Ids("▁tokeni", "ze"), Open().Encode("tokenize", addSpecialTokens: false));
    }

    [Fact]
    public void A_text_is_framed_as_s_text_end_s()
    {
        Assert.Equal([Bos, .. Ids("▁Hello", "▁world"), Eos], Open().Encode("Hello world"));
    }

    [Fact]
    public void A_pair_is_framed_as_s_a_end_s_end_s_b_end_s()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([Bos, Id("▁Hello"), Eos, Eos, Id("▁world"), Eos], tokenizer.EncodePair("Hello", "world"));
        Assert.Equal([Id("▁Hello"), Id("▁world")], tokenizer.EncodePair("Hello", "world", addSpecialTokens: false));

        Span<int> ids = stackalloc int[16];
        int written = tokenizer.EncodePair("Hello", "tokenize", ids, out int secondStart);
        Assert.Equal([Bos, Id("▁Hello"), Eos, Eos, .. Ids("▁token", "ize"), Eos], ids[..written].ToArray());
        Assert.Equal(4, secondStart);
    }

    [Fact]
    public void Truncation_keeps_the_closing_end_s()
    {
        PretrainedTokenizer tokenizer = Open();
        Span<int> ids = stackalloc int[16];
        int written = tokenizer.Encode("Hello world Hello world", ids, maxTokens: 3);
        Assert.Equal([Bos, Id("▁Hello"), Eos], ids[..written].ToArray());

        // A pair: 4 special tokens, 4 ids left; the second text's 2 fit, the first keeps the other 2.
        written = tokenizer.EncodePair("Hello world Hello world", "tokenize", ids, out int secondStart, maxTokens: 8);
        Assert.Equal([Bos, .. Ids("▁Hello", "▁world"), Eos, Eos, .. Ids("▁token", "ize"), Eos], ids[..written].ToArray());
        Assert.Equal(5, secondStart);
    }

    [Fact]
    public void Unknown_characters_are_unk_and_a_run_of_them_is_one_unk()
    {
        PretrainedTokenizer tokenizer = Open();
        // SentencePiece merges a run of unknown pieces into one, so transformers gets one <unk> for "😀😀ж".
        Assert.Equal([Id("▁Hello"), Id("▁"), Unk, Id("▁world")], tokenizer.Encode("Hello 😀😀ж world", addSpecialTokens: false));
        Assert.Equal([Id("▁"), Unk, Id("▁"), Unk], tokenizer.Encode("😀 😀", addSpecialTokens: false));
    }

    [Fact]
    public void Decoding_joins_the_pieces_and_skips_special_tokens()
    {
        PretrainedTokenizer tokenizer = Open();
        const string text = "Hello world, tokenize!";
        int[] ids = [.. tokenizer.Encode(text)];
        Assert.Equal([Bos, .. Ids("▁Hello", "▁world", ",", "▁token", "ize", "!"), Eos], ids);
        Assert.Equal(text, tokenizer.Decode(ids));
        // convert_tokens_to_string: "<s>▁Hello▁world,▁tokenize!</s>" with ▁ as a space.
        Assert.Equal("<s> Hello world, tokenize!</s>", tokenizer.Decode(ids, skipSpecialTokens: false));
        // <unk> is a special token: skipped, as transformers' skip_special_tokens=True does, which leaves the "▁"
        // before it: "▁Hello▁▁world".
        Assert.Equal("Hello  world", tokenizer.Decode([.. tokenizer.Encode("Hello 😀 world")]));
    }

    [Fact]
    public void The_nmt_nfkc_map_normalizes_and_keeps_accents()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(Ids("▁ABC"), tokenizer.Encode("ＡＢＣ", addSpecialTokens: false));
        Assert.Equal(Ids("▁finance"), tokenizer.Encode("ﬁnance", addSpecialTokens: false));
        Assert.Equal(Ids("▁", "(", "株", ")"), tokenizer.Encode("㈱", addSpecialTokens: false));

        // XLM-R does not strip accents (unlike uncased BERT); a decomposed é is composed first.
        Assert.Equal(Ids("▁café"), tokenizer.Encode("café", addSpecialTokens: false));
        Assert.Equal(Ids("▁café"), tokenizer.Encode("cafe\u0301", addSpecialTokens: false));
        Assert.Equal(Ids("▁cafe"), tokenizer.Encode("cafe", addSpecialTokens: false));

        // Decoding gives the normalized text, as transformers does.
        Assert.Equal("ABC", tokenizer.Decode([.. tokenizer.Encode("ＡＢＣ")]));
    }

    [Fact]
    public void Extra_whitespace_is_removed_and_spaces_become_the_meta_symbol()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(Ids("▁Hello", "▁world"), tokenizer.Encode("  Hello   world  ", addSpecialTokens: false));
        Assert.Empty(tokenizer.Encode("   ", addSpecialTokens: false));
        Assert.Equal([Bos, Eos], tokenizer.Encode(""));
    }

    [Fact]
    public void A_multilingual_text_round_trips()
    {
        PretrainedTokenizer tokenizer = Open();
        int[] ids = [.. tokenizer.Encode("привет мир 你好世界 😀")];
        Assert.Equal([Bos, .. Ids("▁привет", "▁мир", "▁你好", "世界", "▁"), Unk, Eos], ids);
        Assert.Equal("привет мир 你好世界", tokenizer.Decode(ids));
    }

    [Fact]
    public void Special_tokens_in_the_text_are_kept_whole_and_mask_takes_the_space_before_it()
    {
        PretrainedTokenizer tokenizer = Open();
        // <mask> is lstrip: "Hello " is tokenized as "Hello"; "!" alone gets the dummy prefix, as each piece of text does.
        Assert.Equal([Id("▁Hello"), Mask, Id("▁"), Id("!")], tokenizer.Encode("Hello <mask>!", addSpecialTokens: false));
        Assert.Equal([Bos, Id("▁Hello"), Eos, Pad], tokenizer.Encode("<s>Hello</s><pad>", addSpecialTokens: false));
        // transformers' test_tokenization_base_hard_symbols has "… to <unk>, such …" → …, 47, 3, 6, 4, … on
        // xlm-roberta-base: "<unk>" written in the text is 3, and the text after it gets a "▁" (6) of its own.
        Assert.Equal([Id("▁Hello"), Unk, Id("▁"), Id(","), Id("▁world")], tokenizer.Encode("Hello <unk>, world", addSpecialTokens: false));
    }

    [Fact]
    public void Without_a_tokenizer_config_the_xlm_roberta_defaults_apply()
    {
        _folder.Write("tokenizer_config.json", "{}");
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([Bos, Id("▁Hello"), Eos], tokenizer.Encode("Hello"));
        Assert.Equal(Pad, tokenizer.PadId);
        Assert.Equal(Mask, tokenizer.SpecialTokenId("<mask>"));
        Assert.Equal([Id("▁Hello"), Mask], tokenizer.Encode("Hello <mask>", addSpecialTokens: false));
        Assert.Null(tokenizer.ModelMaxLength);
    }

    [Fact]
    public void The_no_limit_placeholder_is_no_model_max_length()
    {
        _folder.Write("tokenizer_config.json", """{ "tokenizer_class": "XLMRobertaTokenizerFast", "model_max_length": 1000000000000000019884624838656 }""");
        Assert.Null(Open().ModelMaxLength);
    }

    [Fact]
    public void Another_fairseq_layout_is_refused()
    {
        _folder.Write("tokenizer_config.json", """{ "tokenizer_class": "CamembertTokenizer" }""");
        NotSupportedException error = Assert.Throws<NotSupportedException>(Open);
        Assert.Contains("XLMRobertaTokenizer", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(3, 3, 10, 3, 3)]   // nothing to cut
    [InlineData(2, 10, 6, 2, 4)]   // only the longer is cut
    [InlineData(10, 2, 6, 4, 2)]
    [InlineData(7, 9, 10, 5, 5)]   // both cut to half
    [InlineData(5, 5, 5, 2, 3)]    // as long: the second gets the odd id
    [InlineData(6, 8, 9, 4, 5)]    // the longer gets the odd id
    [InlineData(8, 6, 9, 5, 4)]
    public void Pair_truncation_is_tokenizers_longest_first(int first, int second, int budget, int firstKept, int secondKept)
    {
        Assert.Equal((firstKept, secondKept), PretrainedTokenizer.LongestFirst(first, second, budget));
    }
}
