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
        var model = Gpt2VocabModel.ForInference(1);
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
        var model = Gpt2VocabModel.ForInference(1);
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
}
