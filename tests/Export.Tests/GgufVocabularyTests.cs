using System;
using System.Collections.Generic;
using System.IO;
using TransformerGen.Tokenizers;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Export.Tests;

/// <summary>A vocabulary from a tokenizer folder: llama.cpp must tokenize text as our tokenizer does, and run on those ids.</summary>
public sealed class GgufVocabularyTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("Hello world! The quick brown fox's 12345 numbers,\n  and   spaces.\t")]
    [InlineData("naïve café — 東京 😀 <|endoftext|> it's I'll we've")]
    public void LlamaCppTokenizesLikeOurGpt2Tokenizer(string text)
    {
        using var folder = new TempFolder();
        Gpt2FilesFromTiktokenData.Write(folder);
        const string template = "{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}";
        string config = Path.Combine(folder.Path, "tokenizer_config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"tokenizer_class\"", $"\"chat_template\": \"{template}\", \"tokenizer_class\"", StringComparison.Ordinal));
        var model = new Gpt2VocabModel(1);
        Weights.Randomize(model, seed: 5);
        var vocabulary = GgufVocabulary.FromTokenizerFolder(folder.Path, Gpt2VocabModel.Vocab, preTokenizer: "gpt-2");
        Assert.Equal(50257, vocabulary.Count);
        Assert.Equal(50000, vocabulary.Merges.Count);
        Assert.Equal(3, vocabulary.TokenTypes[50256]); // <|endoftext|>: special, a control token
        Assert.Equal("Ġthe", vocabulary.Tokens[262]);

        string path = Path.Combine(folder.Path, "gpt2.gguf");
        model.SaveGguf(path, GgufLlamaCppTests.Config("gpt2-vocab"), GgufTensorType.F32, vocabulary);
        GgufFile file = GgufFile.Read(path);
        Assert.Equal("gpt-2", file.Metadata["tokenizer.ggml.pre"]);
        Assert.Equal(50000, ((List<object>)file.Metadata["tokenizer.ggml.merges"]).Count);
        Assert.Equal(template, vocabulary.ChatTemplate);
        Assert.Equal(template, file.Metadata["tokenizer.chat_template"]);

        int[] ours = [.. PretrainedTokenizer.FromFolder(folder.Path).Encode(text, addSpecialTokens: false)];
        int[] theirs = LlamaCpp.Tokenize(path, text);
        output.WriteLine($"{ours.Length} tokens: {string.Join(' ', ours)}");
        Assert.Equal(ours, theirs);
        if (text.Contains("<|endoftext|>", StringComparison.Ordinal)) Assert.Contains(50256, theirs); // one id, not its characters

        // The model on those ids: llama.cpp's logits and ours differ by ggml's fp16 GELU table only (as for the other GPT-2s).
        double relative = GgufLlamaCppTests.Relative(GgufLlamaCppTests.Ours(model, ours), LlamaCpp.Logits(path, ours));
        output.WriteLine($"logits: relative {relative:G3}");
        Assert.True(relative < 1e-3, $"{relative}");
    }

    /// <summary>The pre-tokenizer names the README lists are ones this llama.cpp knows; it refuses a name it does not know.</summary>
    [Fact]
    public void PreTokenizerNamesAreLlamaCpps()
    {
        using var folder = new TempFolder();
        Gpt2FilesFromTiktokenData.Write(folder);
        var model = new Gpt2VocabModel(1);
        foreach (string name in new[] { "gpt-2", "qwen2", "smollm", "llama-bpe", "no-such-pre-tokenizer" })
        {
            string path = Path.Combine(folder.Path, $"{name}.gguf");
            model.SaveGguf(path, GgufLlamaCppTests.Config("gpt2-vocab"), GgufTensorType.BF16, GgufVocabulary.FromTokenizerFolder(folder.Path, Gpt2VocabModel.Vocab, name));
            if (name.StartsWith("no-such", StringComparison.Ordinal))
                Assert.ThrowsAny<Exception>(() => LlamaCpp.Tokenize(path, "Hello"));
            else
                Assert.Equal([15496], LlamaCpp.Tokenize(path, "Hello"));
        }
    }

    /// <summary>
    /// A SentencePiece BPE tokenizer.model (Llama-2-shaped, written by the tokenizer tests' helper) becomes llama.cpp's
    /// llama tokenizer: scores, byte pieces, the dummy prefix; llama.cpp then tokenizes as PretrainedTokenizer does,
    /// falling back to bytes for what no piece covers, and runs the model on those ids.
    /// </summary>
    [Theory]
    [InlineData("hello world")]
    [InlineData("hello  world\nhello é wor ld")]
    public void LlamaCppTokenizesLikeOurSentencePieceTokenizer(string text)
    {
        (string Piece, float Score)[] pieces =
        [
            ("ll", -1), ("▁h", -2), ("▁he", -3), ("llo", -4), ("▁hello", -5),
            ("or", -6), ("▁w", -7), ("▁wor", -8), ("ld", -9), ("▁world", -10),
            ("el", -20),
            ("▁", -100), ("h", -101), ("e", -102), ("l", -103), ("o", -104), ("w", -105), ("r", -106), ("d", -107),
        ];
        using var folder = new TempFolder();
        folder.Write("tokenizer.model", SentencePieceModelWriter.LlamaShaped(pieces));
        folder.Write("tokenizer_config.json", """
            {
              "add_bos_token": true, "add_eos_token": false, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
              "tokenizer_class": "LlamaTokenizer",
              "added_tokens_decoder": {
                "0": { "content": "<unk>", "special": true }, "1": { "content": "<s>", "special": true }, "2": { "content": "</s>", "special": true }
              }
            }
            """);
        var vocabulary = GgufVocabulary.FromTokenizerFolder(folder.Path, LlamaSpmModel.Vocab);
        Assert.Equal("llama", vocabulary.Model);
        Assert.Equal(278, vocabulary.Count);
        Assert.Equal("<0x0A>", vocabulary.Tokens[3 + 10]);
        Assert.Equal(6, vocabulary.TokenTypes[3 + 10]);  // a byte piece
        Assert.Equal(3, vocabulary.TokenTypes[1]);       // <s>: control
        Assert.Equal(-5f, vocabulary.Scores[259 + 4]);   // ▁hello
        Assert.True(vocabulary.AddBos);

        var model = new LlamaSpmModel(1);
        Weights.Randomize(model, seed: 9);
        string path = Path.Combine(folder.Path, "spm.gguf");
        model.SaveGguf(path, GgufLlamaCppTests.Config("llama-spm"), GgufTensorType.F32, vocabulary);
        GgufFile file = GgufFile.Read(path);
        Assert.Equal("llama", file.Metadata["tokenizer.ggml.model"]);
        Assert.Equal(278, ((List<object>)file.Metadata["tokenizer.ggml.scores"]).Count);
        Assert.Equal(true, file.Metadata["tokenizer.ggml.add_bos_token"]);
        Assert.Equal(true, file.Metadata["tokenizer.ggml.add_space_prefix"]);
        Assert.Equal(0u, file.Metadata["tokenizer.ggml.unknown_token_id"]);
        Assert.False(file.Metadata.ContainsKey("tokenizer.ggml.merges"));

        int[] ours = [.. PretrainedTokenizer.FromFolder(folder.Path).Encode(text, addSpecialTokens: false)];
        int[] theirs = LlamaCpp.Tokenize(path, text);
        output.WriteLine($"{ours.Length} tokens: {string.Join(' ', ours)}");
        Assert.Equal(ours, theirs);
        int[] withBos = [1, .. ours];
        double relative = GgufLlamaCppTests.Relative(GgufLlamaCppTests.Ours(model, withBos), LlamaCpp.Logits(path, withBos));
        output.WriteLine($"logits: relative {relative:G3}");
        Assert.True(relative < 1e-4, $"{relative}");
    }
}
