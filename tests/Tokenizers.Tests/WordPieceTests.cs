using System;
using System.IO;
using Microsoft.ML.Tokenizers;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;

namespace TransformerGen.Tokenizers.Tests;

public sealed class WordPieceTests : IDisposable
{
    // bert-base-uncased's ids for these (its vocab.txt; "Hello, World!" → [101, 7592, 1010, 2088, 999, 102]).
    private const int Pad = 0, Unk = 100, Cls = 101, Sep = 102, Mask = 103;
    private const int Bang = 999, Comma = 1010, Period = 1012, Hello = 7592, World = 2088;

    // Words at free positions of the test's own choosing (ids that are [unusedN] in the real file).
    private const int Un = 20001, Aff = 20002, Able = 20003, Cafe = 20004, Naive = 20005;
    private const int Underscore = 1035, Search = 3945, Document = 6254, Colon = 1024, Dollar = 1002, Plus = 1009, EqualsSign = 1027, Bar = 1064;

    private const int VocabLines = 30522;

    private readonly TempFolder _folder = new();

    public WordPieceTests()
    {
        var lines = new string[VocabLines];
        for (int i = 0; i < lines.Length; i++)
        {
            lines[i] = $"[unused{i}]";
        }

        foreach ((int id, string token) in new (int, string)[]
        {
            (Pad, "[PAD]"), (Unk, "[UNK]"), (Cls, "[CLS]"), (Sep, "[SEP]"), (Mask, "[MASK]"),
            (Bang, "!"), (Comma, ","), (Period, "."), (Hello, "hello"), (World, "world"),
            (Un, "un"), (Aff, "##aff"), (Able, "##able"), (Cafe, "cafe"), (Naive, "naive"),
            (Underscore, "_"), (Search, "search"), (Document, "document"), (Colon, ":"),
            (Dollar, "$"), (Plus, "+"), (EqualsSign, "="), (Bar, "|"),
        })
        {
            lines[id] = token;
        }

        _folder.Write("vocab.txt", string.Join("\n", lines) + "\n");
        _folder.Write("config.json", """{ "model_type": "bert", "vocab_size": 30522 }""");
        _folder.Write("tokenizer_config.json", """{ "do_lower_case": true, "tokenizer_class": "BertTokenizer" }""");
    }

    public void Dispose() => _folder.Dispose();

    private PretrainedTokenizer Open() => PretrainedTokenizer.FromFolder(_folder.Path);

    /// <summary>
    /// transformers' BasicTokenizer splits "_" off as punctuation (nomic-embed-text's "search_document:" prefix is
    /// search, _, document, :), and any other connector punctuation too (U+FF3F, the full-width low line, is unknown here).
    /// </summary>
    [Fact]
    public void Underscores_are_words_of_their_own_as_basic_tokenization_makes_them()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([Cls, Search, Underscore, Document, Colon, Hello, Sep], tokenizer.Encode("search_document: hello"));
        Assert.Equal([Cls, Hello, Underscore, Underscore, World, Sep], tokenizer.Encode("hello__world"));
        Assert.Equal([Cls, Hello, Unk, World, Sep], tokenizer.Encode("hello\uFF3Fworld"));
    }

    /// <summary>
    /// BasicTokenizer's punctuation includes the ASCII symbols ($, +, =, |): each is a word of its own, not dropped (as
    /// Microsoft.ML.Tokenizers' own BERT pre-tokenizer drops them); other symbols (€) stay inside their word, which then
    /// has no pieces here ([UNK]); a special token written in the text stays whole.
    /// </summary>
    [Fact]
    public void Ascii_symbols_are_words_of_their_own_and_other_symbols_stay_in_their_word()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([Cls, Dollar, Hello, Plus, World, EqualsSign, Bar, Sep], tokenizer.Encode("$hello+world=|"));
        Assert.Equal([Cls, Hello, Unk, Sep], tokenizer.Encode("hello world€"));
        Assert.Equal([Cls, Hello, Mask, Dollar, Sep], tokenizer.Encode("hello [MASK]$"));
    }

    [Fact]
    public void Reads_kind_and_special_ids()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(PretrainedTokenizer.WordPieceKind, tokenizer.Kind);
        Assert.Equal(VocabLines, tokenizer.VocabSize);
        Assert.Equal(Pad, tokenizer.PadId);
        Assert.Equal(Unk, tokenizer.UnkId);
        Assert.Null(tokenizer.BosId);
        Assert.Equal(Mask, tokenizer.SpecialTokenId("[MASK]"));
    }

    [Theory]
    [InlineData("Hello, World!", new[] { Cls, Hello, Comma, World, Bang, Sep })]     // lower-casing, punctuation split
    [InlineData("HELLO world.", new[] { Cls, Hello, World, Period, Sep })]
    [InlineData("Héllo", new[] { Cls, Hello, Sep })]                                 // accents stripped when lower-casing
    [InlineData("CAFÉ naïve", new[] { Cls, Cafe, Naive, Sep })]
    [InlineData("unaffable", new[] { Cls, Un, Aff, Able, Sep })]                     // ## continuation
    [InlineData("hello xyzzy!", new[] { Cls, Hello, Unk, Bang, Sep })]               // unknown word → [UNK]
    [InlineData("hello [MASK] world", new[] { Cls, Hello, Mask, World, Sep })]       // special token kept whole
    [InlineData("", new[] { Cls, Sep })]
    public void Encodes_as_bert_base_uncased(string text, int[] expected)
    {
        Assert.Equal(expected, Open().Encode(text));
    }

    [Fact]
    public void Same_ids_as_BertTokenizer_called_on_its_own_type()
    {
        var options = new BertOptions { RemoveNonSpacingMarks = true };
        BertTokenizer bert = BertTokenizer.Create(Path.Combine(_folder.Path, "vocab.txt"), options);
        PretrainedTokenizer tokenizer = Open();
        foreach (string text in new[] { "Hello, World!", "unaffable CAFÉ", "xyzzy hello.", "" })
        {
            Assert.Equal(bert.EncodeToIds(text), tokenizer.Encode(text));
            Assert.Equal(bert.EncodeToIds(text, addSpecialTokens: false), tokenizer.Encode(text, addSpecialTokens: false));
        }
    }

    [Fact]
    public void Truncation_keeps_sep_last_and_cuts_inside_a_word_as_hugging_face_does()
    {
        PretrainedTokenizer tokenizer = Open();
        Span<int> ids = stackalloc int[32];

        int written = tokenizer.Encode("hello world hello world", ids, maxTokens: 4);
        Assert.Equal([Cls, Hello, World, Sep], ids[..written].ToArray());

        written = tokenizer.Encode("unaffable unaffable", ids, maxTokens: 5);
        Assert.Equal([Cls, Un, Aff, Able, Sep], ids[..written].ToArray());

        // truncation=True cuts word pieces, not whole words: "unaffable" loses "##able". (BertTokenizer's own
        // maxTokenCount stops before a word that does not fit, which would give [CLS] [SEP] here.)
        written = tokenizer.Encode("unaffable", ids, maxTokens: 4);
        Assert.Equal([Cls, Un, Aff, Sep], ids[..written].ToArray());

        written = tokenizer.Encode("hello", ids[..2]);
        Assert.Equal([Cls, Sep], ids[..written].ToArray());

        written = tokenizer.Encode("hello world", ids, addSpecialTokens: false, maxTokens: 1);
        Assert.Equal([Hello], ids[..written].ToArray());

        int[] noRoom = new int[1];
        Assert.Throws<ArgumentException>(() => tokenizer.Encode("hello", noRoom));
    }

    [Fact]
    public void A_pair_is_cls_a_sep_b_sep()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([Cls, Hello, Sep, World, Sep], tokenizer.EncodePair("Hello", "World"));

        Span<int> ids = stackalloc int[8];
        int written = tokenizer.EncodePair("hello hello hello", "world", ids, out int secondStart, maxTokens: 6);
        Assert.Equal([Cls, Hello, Hello, Sep, World, Sep], ids[..written].ToArray());
        Assert.Equal(4, secondStart);
    }

    [Fact]
    public void Decodes_with_and_without_special_tokens()
    {
        PretrainedTokenizer tokenizer = Open();
        int[] ids = [.. tokenizer.Encode("Hello, World! unaffable xyzzy")];
        Assert.Equal("hello, world! unaffable", tokenizer.Decode(ids));
        Assert.Equal("[CLS] hello, world! unaffable [UNK] [SEP]", tokenizer.Decode(ids, skipSpecialTokens: false));
    }

    [Fact]
    public void Cased_config_neither_lower_cases_nor_strips_accents()
    {
        _folder.Write("tokenizer_config.json", """{ "do_lower_case": false }""");
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([Cls, Hello, Unk, Unk, Sep], tokenizer.Encode("hello Hello héllo"));
    }

    [Fact]
    public void Strip_accents_false_keeps_accents_while_lower_casing()
    {
        _folder.Write("tokenizer_config.json", """{ "do_lower_case": true, "strip_accents": false }""");
        Assert.Equal([Cls, Hello, Unk, Sep], Open().Encode("HELLO Héllo"));
    }

    [Fact]
    public void Missing_tokenizer_config_takes_bert_defaults()
    {
        File.Delete(Path.Combine(_folder.Path, "tokenizer_config.json"));
        Assert.Equal([Cls, Hello, Sep], Open().Encode("HÉLLO"));
    }
}
