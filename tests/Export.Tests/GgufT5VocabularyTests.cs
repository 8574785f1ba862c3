using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TransformerGen.Tokenizers;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Export.Tests;

// Flan-T5-shaped, with the 192 rows of Configs/t5-vocab for the folder below's 165 ids.
[TransformerModel(Config = "Export.Tests/Configs/t5-vocab/config.json", SeqLen = 24, TargetSeqLen = 12)]
public partial class GgufT5VocabModel { }

/// <summary>
/// T5's own vocabulary in the GGUF file: a T5 tokenizer folder (a unigram <c>spiece.model</c> written by the tokenizer tests'
/// helper, laid out as t5-small's, and Flan-T5's <c>tokenizer_config.json</c>) becomes llama.cpp's <c>t5</c> tokenizer, which
/// must then tokenize text as <see cref="PretrainedTokenizer"/> does — sentinels, the normalizer's table, digits, spaces and
/// the appended &lt;/s&gt; — and translate from text as <see cref="Seq2SeqModel.Translate"/> does.
/// </summary>
public sealed class GgufT5VocabularyTests : IDisposable
{
    private readonly ITestOutputHelper _output;

    private const int Pad = 0, Eos = 1, Unk = 2, Pieces = 65, Ids = 165, Sentinel0 = 164, Sentinel1 = 163;

    // The tokenizer tests' T5 pieces (T5Tests): ids 3–64 after <pad>, </s>, <unk>; 100 sentinels then fill 65–164.
    private static readonly (string Piece, float Score)[] PieceScores =
    [
        ("▁", -2), (".", -3), (",", -3.5f), ("!", -4), (":", -4),
        ("▁Hello", -6), ("▁world", -6.5f),
        ("▁token", -8), ("ize", -9), ("▁tokeni", -10), ("ze", -11),
        ("▁café", -9), ("▁cafe", -9.5f), ("▁ABC", -9),
        ("▁The", -7), ("▁walks", -8), ("▁in", -7), ("▁park", -8),
        ("▁translate", -8), ("▁English", -8), ("▁to", -7), ("▁German", -8),
        ("▁2024", -9), ("▁12", -10), ("34", -10),
        .. "abcdefghijklmnopqrstuvwxyzé".Select(letter => (letter.ToString(), -15f)),
        .. "0123456789".Select(digit => (digit.ToString(), -15f)),
    ];

    // A few of nmt_nfkc's mappings: full-width letters, a combining accent, a tab made a space.
    private static readonly byte[] CharsMap = PrecompiledCharsMapWriter.Write(new Dictionary<string, string>
    {
        ["Ａ"] = "A", ["Ｂ"] = "B", ["Ｃ"] = "C", ["e\u0301"] = "é", ["\t"] = " ",
    });

    private static readonly string TokenizerConfig = $$"""
        {
          "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>",
          "extra_ids": 100,
          "additional_special_tokens": [{{string.Join(", ", Enumerable.Range(0, 100).Select(n => $"\"<extra_id_{n}>\""))}}],
          "model_max_length": 512,
          "tokenizer_class": "T5Tokenizer"
        }
        """;

    private readonly TempFolder _folder = new();

    public GgufT5VocabularyTests(ITestOutputHelper output)
    {
        _output = output;
        _folder.Write("spiece.model", SentencePieceModelWriter.T5Shaped(PieceScores, CharsMap));
        _folder.Write("tokenizer_config.json", TokenizerConfig);
    }

    public void Dispose() => _folder.Dispose();

    private string Export(out GgufT5VocabModel model)
    {
        model = new GgufT5VocabModel(1);
        Weights.Randomize(model, seed: 29);
        model.Training = false;
        var vocabulary = GgufVocabulary.FromTokenizerFolder(_folder.Path, GgufT5VocabModel.Vocab);
        string path = Path.Combine(_folder.Path, "t5.gguf");
        model.SaveGguf(path, GgufLlamaCppTests.Config("t5-vocab"), GgufTensorType.F32, vocabulary);
        return path;
    }

    /// <summary>The vocabulary and the file's <c>tokenizer.ggml.*</c> keys are T5's, as llama.cpp's converter writes them (and the sentinels besides).</summary>
    [Fact]
    public void TheFileHoldsT5sVocabulary()
    {
        var vocabulary = GgufVocabulary.FromTokenizerFolder(_folder.Path, GgufT5VocabModel.Vocab);
        Assert.Equal("t5", vocabulary.Model);
        Assert.Equal(192, vocabulary.Count);
        Assert.Equal(["<pad>", "</s>", "<unk>", "▁"], vocabulary.Tokens.Take(4));
        Assert.Equal([3, 3, 2, 1], vocabulary.TokenTypes.Take(4));  // control, control, unknown, normal
        Assert.Equal(-6f, vocabulary.Scores[8]);                      // ▁Hello
        Assert.Equal("<extra_id_0>", vocabulary.Tokens[Sentinel0]);
        Assert.Equal("<extra_id_99>", vocabulary.Tokens[Pieces]);
        Assert.All(Enumerable.Range(Pieces, 100), id => Assert.Equal((4, -1000f), (vocabulary.TokenTypes[id], vocabulary.Scores[id])));
        Assert.All(Enumerable.Range(Ids, 192 - Ids), id => Assert.Equal(($"[PAD{id}]", 5, -10000f), (vocabulary.Tokens[id], vocabulary.TokenTypes[id], vocabulary.Scores[id])));
        Assert.False(vocabulary.AddBos);
        Assert.True(vocabulary.AddEos);

        string path = Export(out _);
        GgufFile file = GgufFile.Read(path);
        Assert.Equal("t5", file.Metadata["tokenizer.ggml.model"]);
        Assert.Equal("default", file.Metadata["tokenizer.ggml.pre"]);
        Assert.Equal(192, ((List<object>)file.Metadata["tokenizer.ggml.tokens"]).Count);
        Assert.Equal(192, ((List<object>)file.Metadata["tokenizer.ggml.scores"]).Count);
        Assert.Equal(4, ((List<object>)file.Metadata["tokenizer.ggml.token_type"])[Sentinel1]);
        Assert.Equal(CharsMap, ((List<object>)file.Metadata["tokenizer.ggml.precompiled_charsmap"]).Select(b => (byte)b));
        Assert.Equal(true, file.Metadata["tokenizer.ggml.add_space_prefix"]);
        Assert.Equal(true, file.Metadata["tokenizer.ggml.remove_extra_whitespaces"]);
        Assert.Equal(false, file.Metadata["tokenizer.ggml.add_bos_token"]);
        Assert.Equal(true, file.Metadata["tokenizer.ggml.add_eos_token"]);
        Assert.Equal((uint)Unk, file.Metadata["tokenizer.ggml.unknown_token_id"]);
        Assert.Equal((uint)Eos, file.Metadata["tokenizer.ggml.eos_token_id"]);
        Assert.Equal((uint)Pad, file.Metadata["tokenizer.ggml.padding_token_id"]);
        Assert.False(file.Metadata.ContainsKey("tokenizer.ggml.bos_token_id"));
        Assert.False(file.Metadata.ContainsKey("tokenizer.ggml.merges"));
        Assert.Equal(192u, file.Metadata["t5.vocab_size"]);
    }

    /// <summary>
    /// llama.cpp tokenizes text as our T5 tokenizer does, &lt;/s&gt; appended and no begin token: sentinels mid-text and
    /// against words, the normalizer's table (a combining accent, full-width letters, a tab), digits, runs of spaces, a
    /// character no piece covers, special tokens written in the text. The first texts' ids are also checked by number.
    /// </summary>
    [Theory]
    [InlineData("translate English to German: Hello world", new[] { 21, 22, 23, 24, 7, 8, 9, Eos })]
    [InlineData("The <extra_id_0> walks in <extra_id_1> park", new[] { 17, Sentinel0, 18, 19, Sentinel1, 20, Eos })]
    [InlineData("Hello<extra_id_0>.", new[] { 8, Sentinel0, 3, 4, Eos })]
    [InlineData("cafe\u0301 café cafe ＡＢＣ", new[] { 14, 14, 15, 16, Eos })]
    [InlineData("2024 1234 2025", new[] { 25, 26, 27, 3, 57, 55, 57, 60, Eos })]
    [InlineData("  Hello \t  world  tokenize  ", new[] { 8, 9, 10, 11, Eos })]
    [InlineData("Hello 😀😀 world<extra_id_99>", null)]
    [InlineData("Hello</s> world<pad>, <unk>!", null)]
    [InlineData("", new[] { Eos })]
    public void LlamaCppTokenizesLikeOurT5Tokenizer(string text, int[]? expected)
    {
        string path = Export(out _);
        int[] ours = [.. PretrainedTokenizer.FromFolder(_folder.Path).Encode(text)];
        int[] theirs = LlamaCpp.Tokenize(path, text, addSpecial: true);
        _output.WriteLine($"ours [{string.Join(' ', ours)}], llama.cpp's [{string.Join(' ', theirs)}]");
        if (expected is not null) Assert.Equal(expected, ours);
        Assert.Equal(ours, theirs);
    }

    /// <summary>
    /// From text to text through llama.cpp: its ids for a prompt with a sentinel, encoded and greedily decoded in llama.cpp,
    /// give <see cref="Seq2SeqModel.Translate"/>'s ids for our tokenizer's ids of the same text.
    /// </summary>
    [Fact]
    public void TranslationFromTextThroughLlamaCppEqualsTranslate()
    {
        string path = Export(out GgufT5VocabModel model);
        ModelLayout layout = model.Layout;
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        foreach (string text in new[] { "translate English to German: The <extra_id_0> walks in the park.", "Hello world, café 2024!" })
        {
            int[] source = LlamaCpp.Tokenize(path, text, addSpecial: true);
            Assert.Equal([.. tokenizer.Encode(text)], source);
            var buffer = new int[layout.DecoderSeqLen];
            int[] ours = buffer.AsSpan(0, model.Translate(source, buffer)).ToArray();
            int[] theirs = LlamaCpp.Translate(path, source, layout.EosToken, layout.DecoderSeqLen, layout.PadToken, layout.BosToken);
            _output.WriteLine($"'{text}': {source.Length} ids; ours [{string.Join(" ", ours)}], llama.cpp's [{string.Join(" ", theirs)}]");
            Assert.Equal(ours, theirs);
        }
    }

    /// <summary>
    /// mT5's layout: <c>extra_ids</c> 0, the sentinels are the model's last pieces (user-defined, or normal pieces by their
    /// name); the file makes them user-defined, so that llama.cpp keeps them whole in a text as transformers does.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Mt5sSentinelPiecesAreKeptWhole(bool userDefined)
    {
        (string, float)[] sentinels = [("<extra_id_1>", -20f), ("<extra_id_0>", -20f)];
        _folder.Write("spiece.model", userDefined
            ? SentencePieceModelWriter.T5Shaped(PieceScores, CharsMap, userDefined: ["<extra_id_1>", "<extra_id_0>"])
            : SentencePieceModelWriter.T5Shaped([.. PieceScores, .. sentinels], CharsMap));
        _folder.Write("tokenizer_config.json", """{ "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>", "extra_ids": 0, "additional_special_tokens": null, "tokenizer_class": "T5Tokenizer" }""");
        var vocabulary = GgufVocabulary.FromTokenizerFolder(_folder.Path, GgufT5VocabModel.Vocab);
        Assert.Equal(("<extra_id_0>", 4), (vocabulary.Tokens[Pieces + 1], vocabulary.TokenTypes[Pieces + 1]));
        Assert.Equal(("[PAD67]", 5), (vocabulary.Tokens[Pieces + 2], vocabulary.TokenTypes[Pieces + 2]));
        string path = Export(out _);
        const string text = "The <extra_id_0> walks<extra_id_1>.";
        int[] ours = [.. PretrainedTokenizer.FromFolder(_folder.Path).Encode(text)];
        Assert.Equal([17, Pieces + 1, 18, Pieces, 3, 4, Eos], ours);
        Assert.Equal(ours, LlamaCpp.Tokenize(path, text, addSpecial: true));
    }

    /// <summary>A table smaller than the tokenizer's ids, and a unigram model of another layout, are refused.</summary>
    [Fact]
    public void A_table_smaller_than_the_tokenizer_is_refused()
    {
        var e = Assert.Throws<InvalidDataException>(() => GgufVocabulary.FromTokenizerFolder(_folder.Path, Ids - 1));
        Assert.Contains("100 extra ids", e.Message, StringComparison.Ordinal);
        Assert.Equal(Ids, GgufVocabulary.FromTokenizerFolder(_folder.Path, Ids).Count);
        var model = new GgufT5VocabModel(1);
        var a = Assert.Throws<ArgumentException>(() => model.SaveGguf(Path.Combine(_folder.Path, "refused.gguf"), GgufLlamaCppTests.Config("t5-vocab"),
            GgufTensorType.F32, GgufVocabulary.FromTokenizerFolder(_folder.Path, Ids)));
        Assert.Contains("[PADn]", a.Message, StringComparison.Ordinal);
    }
}
