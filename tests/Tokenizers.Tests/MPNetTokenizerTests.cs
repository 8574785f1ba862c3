using System;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;

namespace TransformerGen.Tokenizers.Tests;

/// <summary>
/// MPNetTokenizer (sentence-transformers/all-mpnet-base-v2's folder): BERT's uncased WordPiece with four ids put before
/// BERT's (<c>&lt;s&gt;</c>, <c>&lt;pad&gt;</c>, <c>&lt;/s&gt;</c>, <c>&lt;unk&gt;</c>), so that BERT's id n is n + 4; RoBERTa's
/// special tokens (<c>&lt;s&gt; A &lt;/s&gt;</c>, pairs <c>&lt;s&gt; A &lt;/s&gt;&lt;/s&gt; B &lt;/s&gt;</c>), BERT's
/// <c>[UNK]</c> for unknown words, and <c>&lt;mask&gt;</c> added after vocab.txt's last line.
/// </summary>
public sealed class MPNetTokenizerTests : IDisposable
{
    private const int Bos = 0, Pad = 1, Eos = 2, Unk = 104, Mask = 30526;
    // bert-base-uncased's ids + 4: "Hello, World!" is [0, 7596, 1014, 2092, 1003, 2] in all-mpnet-base-v2.
    private const int Bang = 1003, Comma = 1014, Hello = 7596, World = 2092, Un = 20005, Aff = 20006, Able = 20007;
    private const int VocabLines = 30526;

    private readonly TempFolder _folder = new();

    public MPNetTokenizerTests()
    {
        var lines = new string[VocabLines];
        for (int i = 0; i < lines.Length; i++) lines[i] = $"[unused{i}]";
        foreach ((int id, string token) in new (int, string)[]
        {
            (Bos, "<s>"), (Pad, "<pad>"), (Eos, "</s>"), (3, "<unk>"), (4, "[PAD]"), (Unk, "[UNK]"), (105, "[CLS]"), (106, "[SEP]"), (107, "[MASK]"),
            (Bang, "!"), (Comma, ","), (Hello, "hello"), (World, "world"), (Un, "un"), (Aff, "##aff"), (Able, "##able"),
        })
            lines[id] = token;
        _folder.Write("vocab.txt", string.Join("\n", lines) + "\n");
        _folder.Write("config.json", """{ "model_type": "mpnet", "vocab_size": 30527, "pad_token_id": 1 }""");
        _folder.Write("tokenizer_config.json", """
            {
              "added_tokens_decoder": {
                "0": { "content": "<s>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true },
                "1": { "content": "<pad>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true },
                "2": { "content": "</s>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true },
                "3": { "content": "<unk>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true },
                "104": { "content": "[UNK]", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true },
                "30526": { "content": "<mask>", "lstrip": true, "normalized": false, "rstrip": false, "single_word": false, "special": true }
              },
              "bos_token": "<s>",
              "clean_up_tokenization_spaces": true,
              "cls_token": "<s>",
              "do_lower_case": true,
              "eos_token": "</s>",
              "mask_token": "<mask>",
              "model_max_length": 384,
              "pad_token": "<pad>",
              "sep_token": "</s>",
              "strip_accents": null,
              "tokenize_chinese_chars": true,
              "tokenizer_class": "MPNetTokenizer",
              "unk_token": "[UNK]"
            }
            """);
    }

    public void Dispose() => _folder.Dispose();

    private PretrainedTokenizer Open() => PretrainedTokenizer.FromFolder(_folder.Path);

    [Fact]
    public void Reads_kind_and_special_ids()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(PretrainedTokenizer.WordPieceKind, tokenizer.Kind);
        Assert.Equal(VocabLines + 1, tokenizer.VocabSize);
        Assert.Equal(Pad, tokenizer.PadId);
        Assert.Equal(Unk, tokenizer.UnkId);
        Assert.Equal(Mask, tokenizer.SpecialTokenId("<mask>"));
    }

    [Theory]
    [InlineData("Hello, World!", new[] { Bos, Hello, Comma, World, Bang, Eos })]
    [InlineData("HÉLLO world", new[] { Bos, Hello, World, Eos })]
    [InlineData("unaffable xyzzy", new[] { Bos, Un, Aff, Able, Unk, Eos })]
    [InlineData("hello <mask> world", new[] { Bos, Hello, Mask, World, Eos })]
    [InlineData("", new[] { Bos, Eos })]
    public void Encodes_as_all_mpnet_base_v2(string text, int[] expected) => Assert.Equal(expected, Open().Encode(text));

    [Fact]
    public void A_pair_is_bos_a_eos_eos_b_eos()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([Bos, Hello, Eos, Eos, World, Eos], tokenizer.EncodePair("Hello", "World"));
        Span<int> ids = stackalloc int[8];
        int written = tokenizer.EncodePair("hello hello hello", "world", ids, out int secondStart, maxTokens: 7);
        Assert.Equal([Bos, Hello, Hello, Eos, Eos, World, Eos], ids[..written].ToArray());
        Assert.Equal(5, secondStart);
    }

    /// <summary>
    /// A tokenizer_config.json without added_tokens_decoder (the files transformers wrote before 4.34): the mask token it
    /// names is missing from vocab.txt, so it is added after the last line, as transformers adds it; the special tokens
    /// the config names stay whole in the text.
    /// </summary>
    [Fact]
    public void Without_added_tokens_decoder_the_named_mask_is_added_after_the_last_line()
    {
        _folder.Write("tokenizer_config.json", """
            { "bos_token": "<s>", "cls_token": "<s>", "do_lower_case": true, "eos_token": "</s>", "mask_token": "<mask>", "pad_token": "<pad>",
              "sep_token": "</s>", "tokenizer_class": "MPNetTokenizer", "unk_token": "[UNK]" }
            """);
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(VocabLines + 1, tokenizer.VocabSize);
        Assert.Equal(Mask, tokenizer.SpecialTokenId("<mask>"));
        Assert.Equal([Bos, Hello, Mask, Eos, World, Eos], tokenizer.Encode("hello <mask></s> world"));
    }

    [Fact]
    public void Decodes_with_and_without_special_tokens()
    {
        PretrainedTokenizer tokenizer = Open();
        int[] ids = [.. tokenizer.Encode("Hello, World! xyzzy")];
        Assert.Equal("hello, world!", tokenizer.Decode(ids));
        Assert.Equal("<s> hello, world! [UNK] </s>", tokenizer.Decode(ids, skipSpecialTokens: false));
    }
}
