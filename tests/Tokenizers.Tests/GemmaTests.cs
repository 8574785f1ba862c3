using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using TransformerGen.Tokenizers.Chat;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;

namespace TransformerGen.Tokenizers.Tests;

/// <summary>
/// Gemma 3's tokenizer from a folder laid out as gemma-3-270m-it's: a SentencePiece BPE tokenizer.model with Gemma's
/// special ids, byte fallback and no dummy prefix (<see cref="SentencePieceModelWriter.GemmaShaped"/>), a
/// tokenizer_config.json with Gemma's class, flags, added_tokens_decoder and chat template, and config.json. The
/// expected ids follow SentencePiece's BPE by hand: the adjacent pair whose joined piece scores highest merges first.
/// </summary>
public sealed class GemmaTests : IDisposable
{
    private const int Pad = GemmaFolder.Pad, Eos = GemmaFolder.Eos, Bos = GemmaFolder.Bos, Unk = GemmaFolder.Unk, Mask = GemmaFolder.Mask;
    private const int StartOfTurn = GemmaFolder.StartOfTurn, EndOfTurn = GemmaFolder.EndOfTurn, Table = GemmaFolder.Table;
    private const int FirstByte = GemmaFolder.FirstByte, FirstPiece = GemmaFolder.FirstPiece;
    private static readonly (string Piece, float Score)[] Pieces = GemmaFolder.Pieces;

    private static readonly int PieceCount = GemmaFolder.PieceCount, ImageSoftToken = GemmaFolder.ImageSoftToken;

    private readonly TempFolder _folder = new();

    public GemmaTests()
    {
        GemmaFolder.Write(_folder.Path);
        _folder.Write("config.json", """{ "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "bos_token_id": 2, "eos_token_id": [1, 106], "pad_token_id": 0 }""");
    }

    public void Dispose() => _folder.Dispose();

    private void WriteConfig(bool addEosToken = false) => GemmaFolder.WriteConfig(_folder.Path, addEosToken);

    private PretrainedTokenizer Open() => PretrainedTokenizer.FromFolder(_folder.Path);

    private static int Id(string piece)
    {
        int index = Array.FindIndex(Pieces, p => p.Piece == piece);
        Assert.True(index >= 0, $"no piece '{piece}'");
        return FirstPiece + index;
    }

    private static int ByteId(byte b) => FirstByte + b;

    private IReadOnlyList<int> Ids(string text) => Open().Encode(text, addSpecialTokens: false);

    [Fact]
    public void Reads_kind_special_ids_and_size()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(PretrainedTokenizer.SentencePieceBpeKind, tokenizer.Kind);
        Assert.Equal(Bos, tokenizer.BosId);
        Assert.Equal(Eos, tokenizer.EosId);
        Assert.Equal(Unk, tokenizer.UnkId);
        Assert.Equal(Pad, tokenizer.PadId);
        Assert.Null(tokenizer.ModelMaxLength);
        Assert.Equal(PieceCount + 1, tokenizer.VocabSize);
        Assert.Equal(StartOfTurn, tokenizer.SpecialTokenId("<start_of_turn>"));
        Assert.Equal(EndOfTurn, tokenizer.SpecialTokenId("<end_of_turn>"));
        Assert.Equal(ImageSoftToken, tokenizer.SpecialTokenId("<image_soft_token>"));
    }

    [Fact]
    public void No_dummy_prefix_a_space_is_a_piece_of_its_own_word()
    {
        // Llama's model would read "world" as "▁world"; Gemma's reads it as it is written.
        Assert.Equal([Id("w"), Id("or"), Id("ld")], Ids("world"));
        Assert.Equal([Id("▁world")], Ids(" world"));
        Assert.Equal([Id("Hello"), Id("▁world")], Ids("Hello world"));
    }

    [Fact]
    public void Spaces_at_the_start_middle_and_end_are_kept()
    {
        Assert.Equal([Id("▁▁"), Id("Hello")], Ids("  Hello"));
        // "▁w" (-5) outscores "▁▁" (-24), so the second space joins the word and the first stands alone.
        Assert.Equal([Id("Hello"), Id("▁"), Id("▁world")], Ids("Hello  world"));
        Assert.Equal([Id("Hello"), Id("▁")], Ids("Hello "));
        Assert.Equal([Id("Hello"), Id("▁▁")], Ids("Hello  "));
    }

    [Fact]
    public void Digits_are_pieces_one_by_one()
    {
        Assert.Equal([Id("Hello"), Id("▁"), Id("2"), Id("0"), Id("2"), Id("5")], Ids("Hello 2025"));
    }

    [Fact]
    public void Characters_no_piece_holds_fall_back_to_utf8_bytes()
    {
        // "😀" is F0 9F 98 80, "é" C3 A9, a tab 09: none is a piece.
        Assert.Equal([Id("Hi"), Id("▁"), ByteId(0xF0), ByteId(0x9F), ByteId(0x98), ByteId(0x80)], Ids("Hi 😀"));
        Assert.Equal([Id("H"), ByteId(0xC3), ByteId(0xA9), Id("llo")], Ids("Héllo"));
        Assert.Equal([Id("Hi"), ByteId(0x09), Id("Hi")], Ids("Hi\tHi"));
        Assert.DoesNotContain(Unk, Ids("😀é\t"));
    }

    [Fact]
    public void Special_tokens_written_in_a_text_are_one_id()
    {
        Assert.Equal([StartOfTurn, Id("user"), Id("\n"), Id("Hi"), EndOfTurn, Id("\n")], Ids("<start_of_turn>user\nHi<end_of_turn>\n"));
        Assert.Equal([Id("Hi"), Id("▁"), Bos, Id("▁world")], Ids("Hi <bos> world"));
        Assert.Equal([Id("Hi"), Table, ImageSoftToken, Mask], Ids("Hi<table><image_soft_token><mask>"));
    }

    [Fact]
    public void Bos_is_added_once_and_eos_only_when_asked()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([Bos, Id("Hello"), Id("▁world")], tokenizer.Encode("Hello world"));
        Assert.Equal([Bos, Id("▁world")], tokenizer.Encode(" world"));
        Assert.Equal([Bos], tokenizer.Encode(""));
        // As transformers: a "<bos>" written in the text is a second one.
        Assert.Equal([Bos, Bos, Id("Hi")], tokenizer.Encode("<bos>Hi"));
        Assert.Equal([Bos, Id("Hi"), Bos, Id("Hello")], tokenizer.EncodePair("Hi", "Hello"));

        WriteConfig(addEosToken: true);
        Assert.Equal([Bos, Id("Hi"), Eos], Open().Encode("Hi"));
    }

    [Fact]
    public void Decode_round_trips_and_skips_special_tokens()
    {
        PretrainedTokenizer tokenizer = Open();
        const string text = "  Hello  world 😀 2025\tHéllo<table>\n\n ";
        int[] ids = [.. tokenizer.Encode(text)];
        Assert.Equal(Bos, ids[0]);
        Assert.Equal(text, tokenizer.Decode(ids));
        Assert.Equal("<bos>" + text, tokenizer.Decode(ids, skipSpecialTokens: false));

        int[] turn = [StartOfTurn, Id("user"), Id("\n"), Id("Hi"), EndOfTurn, Id("\n"), Eos, Pad];
        Assert.Equal("user\nHi\n", tokenizer.Decode(turn));
        Assert.Equal("<start_of_turn>user\nHi<end_of_turn>\n<eos><pad>", tokenizer.Decode(turn, skipSpecialTokens: false));
    }

    [Fact]
    public void Decode_writes_a_malformed_byte_run_as_replacement_characters()
    {
        // F0 9F starts a four-byte character that never ends: one U+FFFD per byte, as tokenizers' ByteFallback.
        Assert.Equal("\uFFFD\uFFFDHi", Open().Decode([ByteId(0xF0), ByteId(0x9F), Id("Hi")]));
    }

    [Fact]
    public void Decode_refuses_an_id_past_the_tokenizer()
    {
        ArgumentOutOfRangeException error = Assert.Throws<ArgumentOutOfRangeException>(() => Open().Decode([Id("Hi"), PieceCount + 1]));
        Assert.Contains($"Id {PieceCount + 1}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_folder_without_added_tokens_decoder_takes_the_special_tokens_from_the_model()
    {
        // transformers 5 writes a tokenizer_config.json without added_tokens_decoder or the flags.
        _folder.Write("tokenizer_config.json", """{ "tokenizer_class": "GemmaTokenizer", "backend": "tokenizers" }""");
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal((Bos, Eos, Unk, Pad), (tokenizer.BosId, tokenizer.EosId, tokenizer.UnkId, tokenizer.PadId));
        IReadOnlyList<int> ids = tokenizer.Encode("<start_of_turn>user\nHi<end_of_turn><table><unused7>");
        Assert.Equal([Bos, StartOfTurn, Id("user"), Id("\n"), Id("Hi"), EndOfTurn, Table, 13], ids);
        // The model's control pieces and transformers' two special user-defined pieces are skipped; <table> is not special.
        Assert.Equal("user\nHi<table>", tokenizer.Decode([.. ids]));
    }

    [Fact]
    public void The_folders_added_token_flags_win_over_the_models_piece_types()
    {
        // <unused7> is a control piece, which transformers' converter makes special; the folder says it is not.
        _folder.Write("tokenizer_config.json", """{ "tokenizer_class": "GemmaTokenizer", "added_tokens_decoder": { "13": { "content": "<unused7>", "special": false } } }""");
        Assert.Equal("<unused7>Hi", Open().Decode([Bos, 13, Id("Hi")]));
    }

    [Theory]
    [InlineData("""{ "tokenizer_class": "GemmaTokenizerFast" }""", """{ "model_type": "llama" }""")]
    [InlineData("""{ }""", """{ "model_type": "gemma3_text" }""")]
    [InlineData("""{ }""", """{ }""")]
    public void Gemma_is_told_by_class_model_type_or_the_models_normalizer(string tokenizerConfig, string config)
    {
        _folder.Write("tokenizer_config.json", tokenizerConfig);
        _folder.Write("config.json", config);
        PretrainedTokenizer tokenizer = Open();
        // Llama-2's loader would keep <start_of_turn> whole only when the config lists it.
        Assert.Equal([Bos, StartOfTurn, Id("w"), Id("or"), Id("ld")], tokenizer.Encode("<start_of_turn>world"));
    }

    [Fact]
    public void A_gemma_class_with_a_dummy_prefix_model_is_refused()
    {
        _folder.Write("tokenizer.model", SentencePieceModelWriter.GemmaShaped(Pieces, addDummyPrefix: true));
        NotSupportedException error = Assert.Throws<NotSupportedException>(Open);
        Assert.Contains("add_dummy_prefix: true", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Chat_prompt_of_gemma_3_with_a_system_message_and_its_ids()
    {
        PretrainedTokenizer tokenizer = Open();
        ChatTemplate chat = Assert.IsType<ChatTemplate>(tokenizer.Chat);
        Assert.Equal(ChatTemplateStyle.Gemma, chat.Style);

        string prompt = chat.Format([("system", "Be brief."), ("user", "Hi!")], addGenerationPrompt: true);
        Assert.Equal("<bos><start_of_turn>user\nBe brief.\n\nHi!<end_of_turn>\n<start_of_turn>model\n", prompt);

        int[] expected =
        [
            Bos, StartOfTurn, Id("user"), Id("\n"), Id("Be"), Id("▁brief"), Id("."), Id("\n\n"), Id("Hi"), Id("!"), EndOfTurn, Id("\n"),
            StartOfTurn, Id("model"), Id("\n"),
        ];
        Assert.Equal(expected, tokenizer.Encode(prompt, addSpecialTokens: false));

        // Generation stops at <end_of_turn> (and at <eos>, the tokenizer's EosId).
        Assert.Equal("<end_of_turn>", chat.EndOfTurn);
        Assert.Equal(EndOfTurn, tokenizer.SpecialTokenId(chat.EndOfTurn));
    }
}
