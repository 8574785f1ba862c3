using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TransformerGen.Tokenizers;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Export.Tests;

// A ModernBERT with ModernBERT's 50368 rows, small otherwise, for the tokenizer folder below.
[TransformerModel(Config = "Export.Tests/Configs/modernbert-vocab/config.json", SeqLen = 48, Batch = 1, Head = EncoderHead.SentenceEmbedding)]
public partial class GgufModernBertVocabModel { }

/// <summary>
/// ModernBERT's own vocabulary in the GGUF file: a folder whose only vocabulary file is tokenizer.json with a byte-level BPE
/// model (the tokenizer tests' ModernBERT-shaped folder: ModernBERT's ids for its special and added tokens, byte symbols
/// from 2, runs of spaces as added tokens) becomes llama.cpp's <c>gpt2</c> tokenizer with the <c>modern-bert</c>
/// pre-tokenizer, which must tokenize text as <see cref="PretrainedTokenizer"/> does, [CLS] and [SEP] included; and the
/// sentence embedding llama.cpp makes from text is ours from our tokenizer's ids.
/// </summary>
public sealed class GgufModernBertVocabularyTests : IDisposable
{
    private static readonly (string, int)[] Words =
    [
        ("The", 510), (" apple", 19126), (" and", 285), (" banana", 36767), (" are", 403), (" fruits", 18098),
        ("Mr", 7710), (" O", 473), ("Neill", 41437), ("Mc", 11773), ("her", 379), ("son", 1665), ("'s", 434), (" co", 820),
        ("workers", 26719), (" use", 897), ("multiple", 34263), ("spaces", 31748),
        ("Hello", 45000), (" world", 45001), (" is", 45002), (" caf", 45003), ("é", 45004), (" 20", 45005), ("24", 45006),
    ];

    private static readonly string[] Texts =
    [
        "The apple and banana are fruits",
        "Mr. O'Neill-McPherson's co-workers use     multiple     spaces!",
        "Hello world, the café is 2024 ü!",
        "Hello  world 日本",
        " Hello\nworld\t2024",
        "",
    ];

    private readonly ITestOutputHelper _output;
    private readonly TempFolder _folder = new();
    private readonly string _files = Directory.CreateTempSubdirectory("tg-gguf-modernbert-vocab-").FullName;

    public GgufModernBertVocabularyTests(ITestOutputHelper output)
    {
        _output = output;
        new ModernBertFolder(Words).Write(_folder);
    }

    public void Dispose()
    {
        _folder.Dispose();
        Directory.Delete(_files, recursive: true);
    }

    private string Export(out GgufModernBertVocabModel model)
    {
        model = new GgufModernBertVocabModel(1);
        Weights.Randomize(model, seed: 5);
        model.Training = false;
        string path = Path.Combine(_files, "modernbert-vocab.gguf");
        var vocabulary = GgufVocabulary.FromTokenizerFolder(_folder.Path, GgufModernBertVocabModel.Vocab, preTokenizer: "modern-bert");
        model.SaveGguf(path, GgufLlamaCppTests.Config("modernbert-vocab"), vocabulary: vocabulary);
        return path;
    }

    [Fact]
    public void The_file_holds_ModernBerts_vocabulary_and_special_ids()
    {
        var vocabulary = GgufVocabulary.FromTokenizerFolder(_folder.Path, GgufModernBertVocabModel.Vocab, preTokenizer: "modern-bert");
        Assert.Equal("gpt2", vocabulary.Model);
        Assert.Equal("modern-bert", vocabulary.PreTokenizer);
        Assert.Equal(ModernBertFolder.Unk, vocabulary.UnknownId);
        Assert.Equal(ModernBertFolder.Mask, vocabulary.MaskId);
        Assert.Equal("[CLS]", vocabulary.Tokens[ModernBertFolder.Cls]);
        Assert.Equal((int)GgufFormat.TokenType.Control, vocabulary.TokenTypes[ModernBertFolder.Cls]);
        Assert.Equal((int)GgufFormat.TokenType.UserDefined, vocabulary.TokenTypes[ModernBertFolder.SpaceRun(5)]);
        Assert.Equal("Ġ", vocabulary.Tokens[ModernBertFolder.ByteId((byte)' ')]);
        Assert.Equal(new ModernBertFolder(Words).Merges.Count, vocabulary.Merges.Count);
        // tokenizers 0.20 and later write each merge as a pair: read alike.
        using var pairs = new TempFolder();
        new ModernBertFolder(Words).Write(pairs, mergesAsPairs: true);
        Assert.Equal(vocabulary.Merges, GgufVocabulary.FromTokenizerFolder(pairs.Path, GgufModernBertVocabModel.Vocab, "modern-bert").Merges);

        GgufFile file = GgufFile.Read(Export(out _));
        Dictionary<string, object> m = file.Metadata;
        Assert.Equal("modern-bert", m["tokenizer.ggml.pre"]);
        Assert.Equal((uint)ModernBertFolder.Cls, m["tokenizer.ggml.bos_token_id"]);
        Assert.Equal((uint)ModernBertFolder.Cls, m["tokenizer.ggml.cls_token_id"]);
        Assert.Equal((uint)ModernBertFolder.Sep, m["tokenizer.ggml.eos_token_id"]);
        Assert.Equal((uint)ModernBertFolder.Sep, m["tokenizer.ggml.seperator_token_id"]);
        Assert.Equal((uint)ModernBertFolder.Pad, m["tokenizer.ggml.padding_token_id"]);
        Assert.Equal((uint)ModernBertFolder.Unk, m["tokenizer.ggml.unknown_token_id"]);
        Assert.Equal((uint)ModernBertFolder.Mask, m["tokenizer.ggml.mask_token_id"]);
    }

    /// <summary>llama.cpp tokenizes each text, with [CLS] before and [SEP] after, as our tokenizer does.</summary>
    [Fact]
    public void Llama_cpp_tokenizes_text_as_our_tokenizer_does()
    {
        string path = Export(out _);
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        var failures = new List<string>();
        foreach (string text in Texts)
        {
            int[] ours = tokenizer.Encode(text).ToArray(), theirs = LlamaCpp.Tokenize(path, text, addSpecial: true);
            _output.WriteLine($"{text.Replace("\n", "\\n", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal)}: {string.Join(" ", ours)}" +
                (ours.SequenceEqual(theirs) ? "" : $" / llama.cpp {string.Join(" ", theirs)}"));
            if (!ours.SequenceEqual(theirs)) failures.Add(text);
        }
        Assert.Empty(failures);
    }

    /// <summary>From text to sentence embedding: llama.cpp's tokens and embedding against ours from our tokenizer's ids (within ggml's GELU, 1e-3).</summary>
    [Fact]
    public void Llama_cpps_sentence_embedding_of_a_text_is_ours()
    {
        string path = Export(out GgufModernBertVocabModel model);
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        string text = Texts[1];
        int[] ids = tokenizer.Encode(text).ToArray(), theirsIds = LlamaCpp.Tokenize(path, text, addSpecial: true);
        Assert.Equal(ids, theirsIds);
        Assert.True(ids.Length > 3, "the text's tokens do not reach past the window");
        float[][] ours = [model.Predict(ids).ToArray()];
        float[][] theirs = GgufModernBertTests.Normalized(GgufModernBertTests.Embeddings(path, [theirsIds]));
        double relative = GgufLlamaCppTests.Relative(ours, theirs);
        _output.WriteLine($"{ids.Length} tokens: sentence embedding relative {relative:G3}");
        Assert.True(relative < 1e-3, $"relative {relative}");
    }
}
