using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;

namespace TransformerGen.Tokenizers.Tests;

/// <summary>
/// Marian's tokenizer (opus-mt: source.spm, target.spm, vocab.json, MarianTokenizer) on models of the test's own
/// making: an English-shaped source.spm, a German-shaped target.spm, and one vocab.json that numbers the pieces of
/// both in an order of its own (&lt;/s&gt;=0, &lt;unk&gt;=1, the language codes, the pieces sorted, &lt;pad&gt; last, as
/// opus-mt's vocabularies put it). The expected ids are the test's vocabulary applied to pieces worked out by hand
/// from the scores; transformers' published opus-mt-en-de ids need the real models.
/// </summary>
public sealed class MarianTests : IDisposable
{
    private static readonly (string Piece, float Score)[] Letters = [.. "abcdefghijklmnopqrstuvwxyz".Select(letter => (letter.ToString(), -15f))];

    private static readonly (string Piece, float Score)[] SourcePieces =
    [
        ("▁", -3), (",", -3.5f), (".", -3.6f),
        ("▁Hello", -7), ("▁world", -7.5f), ("▁I", -6), ("▁am", -6), ("▁a", -6), ("▁small", -8), ("▁frog", -9),
        // "tokenize": ▁token + ize (-17) beats ▁tokeni + ze (-21).
        ("▁token", -8), ("ize", -9), ("▁tokeni", -10), ("ze", -11),
        ("▁orphan", -8),
        .. Letters,
    ];

    private static readonly (string Piece, float Score)[] TargetPieces =
    [
        ("▁", -3), (",", -3.5f), (".", -3.6f),
        ("▁Ich", -6), ("▁bin", -6), ("▁ein", -6), ("▁kleiner", -8), ("▁Frosch", -9), ("▁Hallo", -7), ("▁Welt", -7.5f),
        ("你", -10), ("好", -10), ("▁,", -12), ("▁.", -12),
        .. Letters,
    ];

    // A piece of source.spm that vocab.json leaves out: it encodes as <unk>.
    private const string Orphan = "▁orphan";

    private static readonly string[] Codes = [">>deu<<", ">>fra<<"];

    private static readonly Dictionary<string, int> Vocab = Numbered(
        ["</s>", "<unk>", .. Codes, .. SourcePieces.Concat(TargetPieces).Select(p => p.Piece).Where(p => p != Orphan).Distinct().Order(StringComparer.Ordinal), "<pad>"]);

    private static readonly int Eos = Vocab["</s>"], Unk = Vocab["<unk>"], Pad = Vocab["<pad>"];

    // opus-mt's source.spm and target.spm normalize with nmt_nfkc.
    private static readonly byte[] CharsMap = PrecompiledCharsMapWriter.Nfkc("ﬁ", "Ａ");

    private readonly TempFolder _folder = new();

    public MarianTests()
    {
        _folder.Write("source.spm", SentencePieceModelWriter.MarianShaped(SourcePieces, CharsMap));
        _folder.Write("target.spm", SentencePieceModelWriter.MarianShaped(TargetPieces, CharsMap));
        _folder.Write("vocab.json", VocabJson(Vocab));
        _folder.Write("config.json", $$"""{ "model_type": "marian", "vocab_size": {{Vocab.Count}}, "pad_token_id": {{Pad}}, "decoder_start_token_id": {{Pad}} }""");
        _folder.Write("tokenizer_config.json", """
            {
              "source_lang": "en", "target_lang": "de",
              "unk_token": "<unk>", "eos_token": "</s>", "pad_token": "<pad>",
              "model_max_length": 512, "separate_vocabs": false, "tokenizer_class": "MarianTokenizer"
            }
            """);
    }

    public void Dispose() => _folder.Dispose();

    private PretrainedTokenizer Open() => PretrainedTokenizer.FromFolder(_folder.Path);

    private static int[] Ids(params string[] pieces) => [.. pieces.Select(piece => Vocab[piece])];

    private static Dictionary<string, int> Numbered(IEnumerable<string> pieces) =>
        pieces.Select((piece, id) => (piece, id)).ToDictionary(entry => entry.piece, entry => entry.id, StringComparer.Ordinal);

    // Written entry by entry so that the file keeps the dictionary's order.
    private static string VocabJson(IEnumerable<KeyValuePair<string, int>> vocabulary) =>
        "{\n" + string.Join(",\n", vocabulary.Select(entry => $"  {JsonSerializer.Serialize(entry.Key)}: {entry.Value}")) + "\n}";

    [Fact]
    public void A_folder_with_source_spm_is_marian_with_vocab_json_ids()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(PretrainedTokenizer.MarianKind, tokenizer.Kind);
        Assert.Equal(0, tokenizer.EosId);
        Assert.Equal(1, tokenizer.UnkId);
        Assert.Equal(Vocab.Count - 1, tokenizer.PadId);
        Assert.Null(tokenizer.BosId);
        Assert.Equal(Vocab.Count, tokenizer.VocabSize);
        Assert.Equal(512, tokenizer.ModelMaxLength);
        Assert.Equal(Pad, tokenizer.SpecialTokenId("<pad>"));
        Assert.Null(tokenizer.Chat);
    }

    [Fact]
    public void Source_text_is_closed_by_end_s()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([.. Ids("▁I", "▁am", "▁a", "▁small", "▁frog", "."), Eos], tokenizer.Encode("I am a small frog."));
        Assert.Equal(Ids("▁Hello", ",", "▁world"), tokenizer.Encode("Hello, world", addSpecialTokens: false));
        Assert.Equal([.. Ids("▁token", "ize"), Eos], tokenizer.Encode("tokenize"));
        Assert.Equal([Eos], tokenizer.Encode(""));
    }

    [Fact]
    public void Ids_are_vocab_json_ids_not_sentencepiece_ids()
    {
        // "▁Hello" is piece 3 + 3 of source.spm (after <unk>, <s>, </s>, "▁", ",", "."); vocab.json numbers it otherwise.
        int sentencePieceId = 3 + Array.FindIndex(SourcePieces, p => p.Piece == "▁Hello");
        Assert.Equal(6, sentencePieceId);
        Assert.NotEqual(sentencePieceId, Vocab["▁Hello"]);
        Assert.Equal([Vocab["▁Hello"], Eos], Open().Encode("Hello"));
    }

    [Fact]
    public void Target_text_uses_target_spm()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([.. Ids("▁Ich", "▁bin", "▁ein", "▁kleiner", "▁Frosch", "."), Eos], tokenizer.EncodeTarget("Ich bin ein kleiner Frosch."));
        Assert.Equal([.. Ids("▁Hallo", "▁Welt"), Eos], tokenizer.EncodeTarget("Hallo Welt"));
        Assert.Equal(Ids("▁Hallo", "▁Welt"), tokenizer.EncodeTarget("Hallo Welt", addSpecialTokens: false));

        // source.spm has no "▁Hallo" nor "H": "▁" + an unknown "H" + the letters.
        Assert.Equal([.. Ids("▁"), Unk, .. Ids("a", "l", "l", "o"), Eos], tokenizer.Encode("Hallo"));
        // target.spm has no "▁Hello".
        Assert.NotEqual(tokenizer.Encode("Hello"), tokenizer.EncodeTarget("Hello"));
    }

    [Fact]
    public void Pieces_missing_from_vocab_json_are_unk()
    {
        PretrainedTokenizer tokenizer = Open();
        // A piece of source.spm that vocab.json does not list.
        Assert.Equal([Vocab["▁Hello"], Unk, Eos], tokenizer.Encode("Hello orphan"));
        // Characters source.spm does not know: SentencePiece makes a run of them one piece, "😀😀", not in vocab.json.
        Assert.Equal([.. Ids("▁Hello", "▁"), Unk, Vocab["▁world"], Eos], tokenizer.Encode("Hello 😀😀 world"));
    }

    [Fact]
    public void An_unknown_character_whose_text_is_a_target_piece_gets_that_id()
    {
        PretrainedTokenizer tokenizer = Open();
        // source.spm does not know "你", but transformers looks the piece up by its text, and the shared vocab.json
        // has it (from target.spm).
        Assert.Equal([.. Ids("▁", "你"), Eos], tokenizer.Encode("你"));
        // "你好" is one unknown piece, which vocab.json does not have.
        Assert.Equal([Vocab["▁"], Unk, Eos], tokenizer.Encode("你好"));
        Assert.Equal([.. Ids("▁", "你", "好"), Eos], tokenizer.EncodeTarget("你好"));
    }

    [Fact]
    public void A_language_code_at_the_start_is_one_token()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(Codes, tokenizer.LanguageCodes);
        Assert.Equal([.. Ids(">>fra<<", "▁Hello"), Eos], tokenizer.Encode(">>fra<< Hello"));
        Assert.Equal([.. Ids(">>deu<<", "▁Hello"), Eos], tokenizer.Encode(">>deu<<Hello"));
        // A code the vocabulary lacks is still cut off whole, and is <unk>.
        Assert.Equal([Unk, Vocab["▁Hello"], Eos], tokenizer.Encode(">>xyz<< Hello"));
        // Elsewhere it is text: ">" and "<" are unknown to source.spm, and each run of them one piece.
        Assert.Equal([.. Ids("▁Hello", "▁"), Unk, .. Ids("f", "r", "a"), Unk, Eos], tokenizer.Encode("Hello >>fra<<"));
    }

    [Fact]
    public void Special_tokens_written_in_the_text_are_kept_whole()
    {
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal([Vocab["▁Hello"], Eos, Eos], tokenizer.Encode("Hello</s>"));
        Assert.Equal([Vocab["▁Hello"], Unk, .. Ids("▁world"), Eos], tokenizer.Encode("Hello<unk> world"));
        // The text after a special token is a text of its own: a language code at its start is one token too.
        Assert.Equal([Pad, .. Ids(">>fra<<", "▁Hello"), Eos], tokenizer.Encode("<pad>>>fra<< Hello"));
    }

    [Fact]
    public void Decoding_gives_target_text_and_skips_special_tokens()
    {
        PretrainedTokenizer tokenizer = Open();
        const string text = "Ich bin ein kleiner Frosch.";
        int[] ids = [Pad, .. tokenizer.EncodeTarget(text)];
        Assert.Equal(text, tokenizer.Decode(ids));
        // convert_tokens_to_string: each special token is written with a space after it, the ends are stripped.
        Assert.Equal("<pad> Ich bin ein kleiner Frosch.</s>", tokenizer.Decode(ids, skipSpecialTokens: false));
        Assert.Equal("Hallo Welt", tokenizer.Decode([.. Ids("▁Hallo"), Unk, .. Ids("▁Welt")]));
        Assert.Equal("Hallo<unk> Welt", tokenizer.Decode([.. Ids("▁Hallo"), Unk, .. Ids("▁Welt")], skipSpecialTokens: false));
        // The space after a special token is there even before a piece without "▁".
        Assert.Equal("Hallo<unk> ,", tokenizer.Decode([.. Ids("▁Hallo"), Unk, .. Ids(",")], skipSpecialTokens: false));
    }

    [Fact]
    public void Clean_up_tokenization_spaces_is_applied_only_when_the_folder_asks()
    {
        // "▁," and "▁." decode with a space before the mark, which only the clean-up removes.
        int[] ids = [.. Ids("▁Hallo", "▁,", "▁Welt", "▁.")];
        Assert.Equal("Hallo , Welt .", Open().Decode(ids));
        _folder.Write("tokenizer_config.json", """{ "clean_up_tokenization_spaces": true }""");
        Assert.Equal("Hallo, Welt.", Open().Decode(ids));
    }

    [Fact]
    public void Decoding_follows_sentencepiece_for_pieces_target_spm_does_not_know()
    {
        PretrainedTokenizer tokenizer = Open();
        // A language code and a source piece are not target.spm's: written as they are, "▁" still a space.
        Assert.Equal(">>fra<< Hallo", tokenizer.Decode(Ids(">>fra<<", "▁Hallo")));
        Assert.Equal("Hallo token", tokenizer.Decode(Ids("▁Hallo", "▁token")));
        // After a special token SentencePiece decodes afresh: it drops the leading "▁" of a piece it knows (the dummy
        // prefix), not of one it does not know.
        Assert.Equal("<pad> Welt", tokenizer.Decode([Pad, .. Ids("▁Welt")], skipSpecialTokens: false));
        Assert.Equal("<pad>  token", tokenizer.Decode([Pad, .. Ids("▁token")], skipSpecialTokens: false));
    }

    [Fact]
    public void An_id_outside_the_vocabulary_cannot_be_decoded()
    {
        ArgumentOutOfRangeException error = Assert.Throws<ArgumentOutOfRangeException>(() => Open().Decode([Vocab.Count]));
        Assert.Contains("vocab.json", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncation_keeps_the_closing_end_s()
    {
        PretrainedTokenizer tokenizer = Open();
        Span<int> ids = stackalloc int[16];
        int written = tokenizer.Encode("Hello, world. tokenize", ids, maxTokens: 3);
        Assert.Equal([.. Ids("▁Hello", ","), Eos], ids[..written].ToArray());
        written = tokenizer.EncodeTarget("Ich bin ein kleiner Frosch.", ids, maxTokens: 4);
        Assert.Equal([.. Ids("▁Ich", "▁bin", "▁ein"), Eos], ids[..written].ToArray());
        Assert.Throws<ArgumentException>(() => tokenizer.Encode("Hello", new int[4], maxTokens: 0));
    }

    [Fact]
    public void An_old_upload_without_the_token_keys_gets_marians_defaults()
    {
        // The first opus-mt uploads' tokenizer_config.json names only the languages.
        _folder.Write("tokenizer_config.json", """{ "source_lang": "en", "target_lang": "de" }""");
        PretrainedTokenizer tokenizer = Open();
        Assert.Equal(PretrainedTokenizer.MarianKind, tokenizer.Kind);
        Assert.Equal([Vocab["▁Hello"], Eos], tokenizer.Encode("Hello"));
        Assert.Equal(Pad, tokenizer.PadId);
        Assert.Equal(512, tokenizer.ModelMaxLength);
    }

    [Fact]
    public void Separate_vocabularies_number_the_target_side_with_target_vocab_json()
    {
        // The target side's own numbering: its specials elsewhere, its pieces in reverse order, no language codes.
        Dictionary<string, int> targetVocab = Numbered(
            ["<pad>", .. TargetPieces.Select(p => p.Piece).Reverse(), "<unk>", "</s>"]);
        _folder.Write("target_vocab.json", VocabJson(targetVocab));
        _folder.Write("tokenizer_config.json", """{ "separate_vocabs": true, "tokenizer_class": "MarianTokenizer" }""");
        PretrainedTokenizer tokenizer = Open();

        int[] target = [.. tokenizer.EncodeTarget("Hallo Welt")];
        Assert.Equal([targetVocab["▁Hallo"], targetVocab["▁Welt"], targetVocab["</s>"]], target);
        Assert.Equal([Vocab["▁Hello"], Eos], tokenizer.Encode("Hello"));
        Assert.Equal("Hallo Welt", tokenizer.Decode(target));
        Assert.Equal("Hallo Welt</s>", tokenizer.Decode(target, skipSpecialTokens: false));
        // The source side's special ids stay vocab.json's, and language codes are read only from a shared vocabulary.
        Assert.Equal(Pad, tokenizer.PadId);
        Assert.Empty(tokenizer.LanguageCodes);
        Assert.Equal(Math.Max(Vocab.Count, targetVocab.Count), tokenizer.VocabSize);
    }

    [Fact]
    public void A_missing_target_spm_is_named()
    {
        File.Delete(Path.Combine(_folder.Path, "target.spm"));
        FileNotFoundException error = Assert.Throws<FileNotFoundException>(Open);
        Assert.Contains("target.spm", error.Message, StringComparison.Ordinal);
        Assert.Equal(Path.Combine(_folder.Path, "target.spm"), error.FileName);
    }

    [Fact]
    public void A_missing_vocab_json_is_named()
    {
        File.Delete(Path.Combine(_folder.Path, "vocab.json"));
        FileNotFoundException error = Assert.Throws<FileNotFoundException>(Open);
        Assert.Contains("vocab.json", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Separate_vocabs_without_target_vocab_json_is_named()
    {
        _folder.Write("tokenizer_config.json", """{ "separate_vocabs": true }""");
        FileNotFoundException error = Assert.Throws<FileNotFoundException>(Open);
        Assert.Contains("target_vocab.json", error.Message, StringComparison.Ordinal);
        Assert.Contains("separate_vocabs", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("</s>", "eos_token")]
    [InlineData("<unk>", "unk_token")]
    [InlineData("<pad>", "pad_token")]
    public void A_vocab_json_without_a_special_token_is_named(string token, string key)
    {
        _folder.Write("vocab.json", VocabJson(Vocab.Where(entry => entry.Key != token)));
        InvalidDataException error = Assert.Throws<InvalidDataException>(Open);
        Assert.Contains("vocab.json", error.Message, StringComparison.Ordinal);
        Assert.Contains($"{key} '{token}'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_target_vocab_json_without_a_special_token_is_named()
    {
        _folder.Write("target_vocab.json", VocabJson(Numbered(["</s>", "<unk>", .. TargetPieces.Select(p => p.Piece)])));
        _folder.Write("tokenizer_config.json", """{ "separate_vocabs": true }""");
        InvalidDataException error = Assert.Throws<InvalidDataException>(Open);
        Assert.Contains("target_vocab.json has no entry for the pad_token '<pad>'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_vocab_json_that_is_not_piece_to_id_is_refused()
    {
        _folder.Write("vocab.json", """{ "</s>": 0, "<unk>": "one" }""");
        InvalidDataException error = Assert.Throws<InvalidDataException>(Open);
        Assert.Contains("vocab.json", error.Message, StringComparison.Ordinal);
        Assert.Contains("<unk>", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_source_spm_with_another_tokenizer_class_is_refused()
    {
        _folder.Write("tokenizer_config.json", """{ "tokenizer_class": "T5Tokenizer" }""");
        NotSupportedException error = Assert.Throws<NotSupportedException>(Open);
        Assert.Contains("MarianTokenizer", error.Message, StringComparison.Ordinal);
    }
}
