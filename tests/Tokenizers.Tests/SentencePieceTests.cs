using System;
using System.Collections.Generic;
using System.Linq;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;

namespace TransformerGen.Tokenizers.Tests;

public sealed class SentencePieceTests : IDisposable
{
    private const int Unk = 0, Bos = 1, Eos = 2, FirstByte = 3;
    private const int FirstPiece = FirstByte + 256;

    // SentencePiece BPE merges the adjacent pair whose joined piece has the highest score. "ll" outscores "el",
    // so "hello" goes ▁ h e l l o → ▁ h e ll o → ▁h e ll o → ▁he ll o → ▁he llo → ▁hello.
    private static readonly (string Piece, float Score)[] Pieces =
    [
        ("ll", -1), ("▁h", -2), ("▁he", -3), ("llo", -4), ("▁hello", -5),
        ("or", -6), ("▁w", -7), ("▁wor", -8), ("ld", -9), ("▁world", -10),
        ("el", -20),
        ("▁", -100), ("h", -101), ("e", -102), ("l", -103), ("o", -104), ("w", -105), ("r", -106), ("d", -107),
    ];

    private readonly TempFolder _folder = new();

    public SentencePieceTests()
    {
        _folder.Write("tokenizer.model", SentencePieceModelWriter.LlamaShaped(Pieces));
        _folder.Write("config.json", """{ "model_type": "llama", "vocab_size": 278 }""");
        _folder.Write("tokenizer_config.json", """
            {
              "add_bos_token": true,
              "add_eos_token": false,
              "bos_token": "<s>",
              "eos_token": "</s>",
              "unk_token": "<unk>",
              "pad_token": null,
              "tokenizer_class": "LlamaTokenizer",
              "added_tokens_decoder": {
                "0": { "content": "<unk>", "special": true },
                "1": { "content": "<s>", "special": true },
                "2": { "content": "</s>", "special": true }
              }
            }
            """);
    }

    public void Dispose() => _folder.Dispose();

    private PretrainedTokenizer Open() => PretrainedTokenizer.FromFolder(_folder.Path);

    private static int Id(string piece) => FirstPiece + Array.FindIndex(Pieces, p => p.Piece == piece);

    private static int ByteId(byte b) => FirstByte + b;

    [Fact]
    public void Reads_kind_and_special_ids()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(PretrainedTokenizer.SentencePieceBpeKind, tokenizer.Kind);
        Assert.Equal(Bos, tokenizer.BosId);
        Assert.Equal(Eos, tokenizer.EosId);
        Assert.Equal(Unk, tokenizer.UnkId);
        Assert.Null(tokenizer.PadId);
        Assert.Equal(FirstPiece + Pieces.Length, tokenizer.VocabSize);
    }

    [Fact]
    public void Adds_bos_and_follows_the_scores()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([Bos, Id("▁hello"), Id("▁world")], tokenizer.Encode("hello world"));
        Assert.Equal([Id("▁hello"), Id("▁world")], tokenizer.Encode("hello world", addSpecialTokens: false));
    }

    [Fact]
    public void A_higher_score_for_el_changes_the_merges()
    {
        (string, float)[] elFirst = [.. Pieces.Select(p => p.Piece == "el" ? (p.Piece, 0f) : (p.Piece, p.Score))];
        _folder.Write("tokenizer.model", SentencePieceModelWriter.LlamaShaped(elFirst));

        // ▁ h e l l o: "el" (0) now beats "ll" (-1); then only ▁h is in the vocabulary: ▁h el l o.
        Assert.Equal([Id("▁h"), Id("el"), Id("l"), Id("o")], Open().Encode("hello", addSpecialTokens: false));
    }

    [Fact]
    public void Dummy_prefix_marks_every_space_with_the_meta_symbol()
    {
        PretrainedTokenizer tokenizer = Open();

        // "  hello" → "▁▁▁hello": the dummy prefix and the two spaces (Llama-2 does not remove extra whitespace).
        Assert.Equal([Id("▁"), Id("▁"), Id("▁hello")], tokenizer.Encode("  hello", addSpecialTokens: false));
        Assert.Equal([Id("▁hello"), Id("▁"), Id("▁world")], tokenizer.Encode("hello  world", addSpecialTokens: false));
    }

    [Fact]
    public void Pieces_not_in_the_vocabulary_fall_back_to_utf8_bytes()
    {
        // "é" is C3 A9 in UTF-8; "😀" is F0 9F 98 80.
        Assert.Equal([Id("▁h"), ByteId(0xC3), ByteId(0xA9), Id("llo")], Open().Encode("héllo", addSpecialTokens: false));
        Assert.Equal([Id("▁"), ByteId(0xF0), ByteId(0x9F), ByteId(0x98), ByteId(0x80)], Open().Encode("😀", addSpecialTokens: false));
    }

    [Fact]
    public void Without_byte_fallback_unknown_pieces_are_unk()
    {
        _folder.Write("tokenizer.model", SentencePieceModelWriter.LlamaShaped(Pieces, byteFallback: false));
        IReadOnlyList<int> ids = Open().Encode("héllo", addSpecialTokens: false);
        Assert.Contains(Unk, ids);
        Assert.DoesNotContain(ByteId(0xC3), ids);
    }

    [Fact]
    public void Round_trips_and_skips_special_tokens()
    {
        PretrainedTokenizer tokenizer = Open();
        const string text = "héllo world 😀 hello";
        int[] ids = [.. tokenizer.Encode(text)];
        Assert.Equal(Bos, ids[0]);
        Assert.Equal(text, tokenizer.Decode(ids));
        Assert.StartsWith("<s>", tokenizer.Decode(ids, skipSpecialTokens: false), StringComparison.Ordinal);
    }

    [Fact]
    public void Control_tokens_written_in_the_text_are_kept_whole()
    {
        // Llama-2's chat template writes "<s>" and "</s>" into the prompt; they must come out as ids 1 and 2.
        IReadOnlyList<int> ids = Open().Encode("<s>hello world</s>", addSpecialTokens: false);
        Assert.Equal(Bos, ids[0]);
        Assert.Equal(Eos, ids[^1]);
        Assert.Equal(2, ids.Count(id => id is Bos or Eos));
    }

    [Fact]
    public void Control_tokens_are_kept_whole_without_added_tokens_in_the_config()
    {
        _folder.Write("tokenizer_config.json", """{ "bos_token": "<s>", "eos_token": "</s>" }""");
        IReadOnlyList<int> ids = Open().Encode("hello</s>", addSpecialTokens: false);
        Assert.Equal(Eos, ids[^1]);
    }

    [Fact]
    public void Special_tokens_written_as_added_token_objects_are_read()
    {
        // Llama-2's tokenizer_config.json writes them as serialized AddedTokens.
        _folder.Write("tokenizer_config.json", """
            {
              "bos_token": { "__type": "AddedToken", "content": "<s>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false },
              "eos_token": { "__type": "AddedToken", "content": "</s>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false },
              "pad_token": { "__type": "AddedToken", "content": "<unk>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false }
            }
            """);
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(Unk, tokenizer.PadId);
        Assert.Equal([Bos, Id("▁hello")], tokenizer.Encode("hello"));
    }

    [Fact]
    public void Add_bos_token_false_and_add_eos_token_true_are_respected()
    {
        _folder.Write("tokenizer_config.json", """{ "add_bos_token": false, "add_eos_token": true }""");
        Assert.Equal([Id("▁hello"), Eos], Open().Encode("hello"));
    }

    [Fact]
    public void Truncation_keeps_bos()
    {
        Span<int> ids = stackalloc int[8];
        int written = Open().Encode("hello world hello", ids, maxTokens: 2);
        Assert.Equal([Bos, Id("▁hello")], ids[..written].ToArray());
    }

    [Fact]
    public void A_pair_repeats_bos_as_llama_tokenizer_does()
    {
        Assert.Equal([Bos, Id("▁hello"), Bos, Id("▁world")], Open().EncodePair("hello", "world"));
    }

    [Fact]
    public void A_unigram_model_is_refused_with_the_reason()
    {
        _folder.Write("tokenizer.model", SentencePieceModelWriter.LlamaShaped(Pieces, modelType: SentencePieceModelWriter.Unigram));
        NotSupportedException error = Assert.Throws<NotSupportedException>(Open);
        Assert.Contains("SentencePiece BPE", error.Message, StringComparison.Ordinal);
    }
}
