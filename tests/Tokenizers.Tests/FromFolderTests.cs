using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using TransformerGen.Tokenizers.Chat;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;

namespace TransformerGen.Tokenizers.Tests;

public sealed class FromFolderTests : IDisposable
{
    private readonly TempFolder _folder = new();

    // "▁hi" (id 259) is reached through "▁h": SentencePiece BPE joins two pieces only into a piece of the vocabulary.
    private static readonly (string, float)[] HiPieces = [("▁hi", -1), ("▁h", -2), ("▁", -3), ("h", -4), ("i", -5)];

    public void Dispose() => _folder.Dispose();

    private void WriteByteLevel(string modelType)
    {
        (var vocabulary, var merges) = ByteLevelFiles.Build(("h", "i"));
        ByteLevelFiles.Write(_folder, vocabulary, merges);
        _folder.Write("config.json", $$"""{ "model_type": "{{modelType}}" }""");
    }

    [Fact]
    public void Vocab_txt_is_wordpiece()
    {
        _folder.Write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhi\n");
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        Assert.Equal(PretrainedTokenizer.WordPieceKind, tokenizer.Kind);
        Assert.Equal([2, 5, 3], tokenizer.Encode("Hi"));
    }

    [Fact]
    public void Tokenizer_model_is_sentencepiece_bpe()
    {
        _folder.Write("tokenizer.model", SentencePieceModelWriter.LlamaShaped(HiPieces));
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        Assert.Equal(PretrainedTokenizer.SentencePieceBpeKind, tokenizer.Kind);
        Assert.Equal([1, 259], tokenizer.Encode("hi"));
    }

    [Fact]
    public void Sentencepiece_bpe_model_is_xlm_roberta_sentencepiece_unigram()
    {
        _folder.Write("sentencepiece.bpe.model", SentencePieceModelWriter.XlmRobertaShaped(HiPieces, PrecompiledCharsMapWriter.Nfkc("ｈ")));
        _folder.Write("tokenizer_config.json", """{ "tokenizer_class": "XLMRobertaTokenizer" }""");
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        Assert.Equal(PretrainedTokenizer.SentencePieceUnigramKind, tokenizer.Kind);
        // "▁hi" is piece 3 of the model: fairseq id 4, between <s> = 0 and </s> = 2.
        Assert.Equal([0, 4, 2], tokenizer.Encode("hi"));
        Assert.Equal([0, 4, 2], tokenizer.Encode("ｈi"));
    }

    [Theory]
    [InlineData("gpt2", PretrainedTokenizer.Gpt2BpeKind)]
    [InlineData("qwen2", PretrainedTokenizer.ByteLevelBpeKind)]
    [InlineData("llama", PretrainedTokenizer.ByteLevelBpeKind)]
    public void Vocab_json_with_merges_txt_is_byte_level_bpe(string modelType, string kind)
    {
        WriteByteLevel(modelType);
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        Assert.Equal(kind, tokenizer.Kind);
        Assert.Equal([256], tokenizer.Encode("hi"));
        Assert.Equal(257, tokenizer.VocabSize);
    }

    [Fact]
    public void Byte_level_bpe_comes_first_when_a_folder_has_two_kinds()
    {
        WriteByteLevel("qwen2");
        _folder.Write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
        Assert.Equal(PretrainedTokenizer.ByteLevelBpeKind, PretrainedTokenizer.FromFolder(_folder.Path).Kind);
    }

    [Fact]
    public void An_empty_folder_gives_an_error_listing_the_files_looked_for()
    {
        FileNotFoundException error = Assert.Throws<FileNotFoundException>(() => PretrainedTokenizer.FromFolder(_folder.Path));
        Assert.Contains("vocab.json + merges.txt", error.Message, StringComparison.Ordinal);
        Assert.Contains("tokenizer.model", error.Message, StringComparison.Ordinal);
        Assert.Contains("sentencepiece.bpe.model", error.Message, StringComparison.Ordinal);
        Assert.Contains("vocab.txt", error.Message, StringComparison.Ordinal);
        Assert.Contains("Found: nothing (the folder is empty)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_error_lists_the_files_found()
    {
        _folder.Write("config.json", "{}").Write("vocab.json", "{}").Write("tokenizer.json", "{}");
        Directory.CreateDirectory(Path.Combine(_folder.Path, "original"));
        FileNotFoundException error = Assert.Throws<FileNotFoundException>(() => PretrainedTokenizer.FromFolder(_folder.Path));
        Assert.Contains("Found: config.json, original/, tokenizer.json, vocab.json.", error.Message, StringComparison.Ordinal);
        Assert.Contains("tokenizer.json alone is read only when its model is BPE (byte-level: ModernBERT); this one names no model type.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_folder_is_a_directory_not_found()
    {
        Assert.Throws<DirectoryNotFoundException>(() => PretrainedTokenizer.FromFolder(Path.Combine(_folder.Path, "absent")));
    }

    [Fact]
    public void Chat_template_file_beside_the_config_is_read()
    {
        WriteByteLevel("qwen2");
        _folder.Write("chat_template.jinja", @"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}");
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        Assert.Equal(ChatTemplateStyle.ChatMl, tokenizer.Chat?.Style);
        Assert.Null(tokenizer.ChatUnavailableReason);
    }

    [Fact]
    public void A_list_of_named_chat_templates_gives_the_default_one()
    {
        WriteByteLevel("qwen2");
        _folder.Write("tokenizer_config.json", JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["chat_template"] = new[]
            {
                new Dictionary<string, string> { ["name"] = "tool_use", ["template"] = "{{ tools }}" },
                new Dictionary<string, string> { ["name"] = "default", ["template"] = ChatTemplateTests.Llama2 },
            },
            ["bos_token"] = "<s>",
            ["eos_token"] = "</s>",
        }));
        Assert.Equal(ChatTemplateStyle.Llama2, PretrainedTokenizer.FromFolder(_folder.Path).Chat?.Style);
    }

    [Fact]
    public void An_unrecognised_chat_template_leaves_chat_null_with_a_reason()
    {
        WriteByteLevel("qwen2");
        _folder.Write("tokenizer_config.json", """{ "chat_template": "{{ messages | tojson }}" }""");
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        Assert.Null(tokenizer.Chat);
        Assert.Contains("{{ messages | tojson }}", tokenizer.ChatUnavailableReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Llama2_chat_prompt_encodes_its_bos_and_eos_text_as_the_special_ids()
    {
        _folder.Write("tokenizer.model", SentencePieceModelWriter.LlamaShaped(HiPieces));
        _folder.Write("tokenizer_config.json", JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["bos_token"] = "<s>",
            ["eos_token"] = "</s>",
            ["chat_template"] = ChatTemplateTests.Llama2,
        }));
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        ChatTemplate chat = Assert.IsType<ChatTemplate>(tokenizer.Chat);
        string prompt = chat.Format([("user", "hi"), ("assistant", "hi"), ("user", "hi")]);
        Assert.Equal("<s>[INST] hi [/INST] hi </s><s>[INST] hi [/INST]", prompt);
        var ids = tokenizer.Encode(prompt, addSpecialTokens: false);
        Assert.Equal(1, ids[0]);
        Assert.Contains(2, ids);
        Assert.Equal(tokenizer.EosId, tokenizer.SpecialTokenId(chat.EndOfTurn));
    }
}
