using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using TransformerGen.Tokenizers.Chat;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;
using static TransformerGen.Tokenizers.Tests.Support.ByteLevelFiles;

namespace TransformerGen.Tokenizers.Tests;

/// <summary>Qwen2- and SmolLM2-shaped folders: tiny vocab.json/merges.txt, the real files' config layout.</summary>
public sealed class ByteLevelBpeTests : IDisposable
{
    private static readonly string E = Symbols("é");   // "Ã©": C3 A9

    private static readonly (Dictionary<string, int> Vocabulary, List<string> Merges) Files = Build(
        ("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"),
        (Symbols(" "), "w"), ("o", "r"), (Symbols(" w"), "or"), ("l", "d"), (Symbols(" wor"), "ld"),
        ("c", "a"), ("ca", "f"), (E[..1], E[1..]), ("caf", E),
        ("2", "0"), ("1", "2"), (Symbols(" "), "1"));

    private static readonly int EndOfText = Files.Vocabulary.Count;
    private static readonly int ImStart = EndOfText + 1;
    private static readonly int ImEnd = EndOfText + 2;

    // Written from Qwen2-7B-Instruct's tokenizer_config.json (its template, its special tokens' layout; ids moved
    // to follow this vocabulary, as 151643–151645 follow Qwen2's).
    private static readonly string Qwen2Config = $$$"""
        {
          "tokenizer_class": "Qwen2Tokenizer",
          "bos_token": null,
          "eos_token": "<|im_end|>",
          "pad_token": "<|endoftext|>",
          "unk_token": null,
          "errors": "replace",
          "added_tokens_decoder": {
            "{{{EndOfText}}}": { "content": "<|endoftext|>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true },
            "{{{ImStart}}}": { "content": "<|im_start|>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true },
            "{{{ImEnd}}}": { "content": "<|im_end|>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true }
          },
          "chat_template": "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
        }
        """;

    // Qwen2's tokenizer.json around its vocabulary: NFC, the Qwen2 regex as an Isolated Split, ByteLevel without regex.
    private static readonly string Qwen2TokenizerJson = $$"""
        {
          "version": "1.0",
          "added_tokens": [
            { "id": {{EndOfText}}, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true },
            { "id": {{ImStart}}, "content": "<|im_start|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true },
            { "id": {{ImEnd}}, "content": "<|im_end|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true }
          ],
          "normalizer": { "type": "NFC" },
          "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
              { "type": "Split", "pattern": { "Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" }, "behavior": "Isolated", "invert": false },
              { "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false }
            ]
          },
          "post_processor": { "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false },
          "decoder": { "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false },
          "model": { "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false }
        }
        """;

    private const string ByteLevelPostProcessor = """{ "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true }""";

    // SmolLM2's tokenizer.json pre-tokenizer as MODEL_FAMILIES.md describes it (digits one by one, then ByteLevel
    // with GPT-2's regex); not checked against a downloaded file.
    private static string SmolLm2TokenizerJson(string postProcessor = ByteLevelPostProcessor, bool ignoreMerges = false) => $$"""
        {
          "added_tokens": [
            { "id": {{EndOfText}}, "content": "<|endoftext|>", "special": true },
            { "id": {{ImStart}}, "content": "<|im_start|>", "special": true },
            { "id": {{ImEnd}}, "content": "<|im_end|>", "special": true }
          ],
          "normalizer": null,
          "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
              { "type": "Digits", "individual_digits": true },
              { "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true }
            ]
          },
          "post_processor": {{postProcessor}},
          "decoder": { "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true },
          "model": { "type": "BPE", "dropout": null, "continuing_subword_prefix": null, "end_of_word_suffix": null, "ignore_merges": {{(ignoreMerges ? "true" : "false")}} }
        }
        """;

    private const string Mixed = "hello world, café and cafe\u0301! 2024 ×12 日本語 🎉\n\n  <|im_start|>user\nhello<|im_end|>\r\n\tend";

    private readonly TempFolder _folder = new();

    public ByteLevelBpeTests() => Write(Files.Vocabulary, Files.Merges);

    public void Dispose() => _folder.Dispose();

    private void Write(Dictionary<string, int> vocabulary, List<string> merges) => ByteLevelFiles.Write(_folder, vocabulary, merges);

    private PretrainedTokenizer OpenQwen2(bool withTokenizerJson = false)
    {
        _folder.Write("config.json", """{ "model_type": "qwen2", "vocab_size": 300 }""");
        _folder.Write("tokenizer_config.json", Qwen2Config);
        if (withTokenizerJson)
        {
            _folder.Write("tokenizer.json", Qwen2TokenizerJson);
        }

        return PretrainedTokenizer.FromFolder(_folder.Path);
    }

    private PretrainedTokenizer OpenSmolLm2(bool withTokenizerJson = true)
    {
        _folder.Write("config.json", """{ "model_type": "llama", "vocab_size": 300 }""");
        _folder.Write("tokenizer_config.json", $$"""
            {
              "tokenizer_class": "GPT2Tokenizer",
              "bos_token": "<|im_start|>",
              "eos_token": "<|im_end|>",
              "pad_token": "<|im_end|>",
              "unk_token": "<|endoftext|>",
              "added_tokens_decoder": {
                "{{EndOfText}}": { "content": "<|endoftext|>", "special": true },
                "{{ImStart}}": { "content": "<|im_start|>", "special": true },
                "{{ImEnd}}": { "content": "<|im_end|>", "special": true }
              }
            }
            """);
        if (withTokenizerJson)
        {
            _folder.Write("tokenizer.json", SmolLm2TokenizerJson());
        }

        return PretrainedTokenizer.FromFolder(_folder.Path);
    }

    private static int Id(string symbols) => Files.Vocabulary[symbols];

    private static int[] Bytes(string text) => [.. Symbols(text).Select(c => Id(c.ToString()))];

    [Fact]
    public void Qwen2_reads_kind_and_special_ids()
    {
        PretrainedTokenizer tokenizer = OpenQwen2();
        Assert.Equal(PretrainedTokenizer.ByteLevelBpeKind, tokenizer.Kind);
        Assert.Equal(ImEnd + 1, tokenizer.VocabSize);
        Assert.Null(tokenizer.BosId);
        Assert.Equal(ImEnd, tokenizer.EosId);
        Assert.Equal(EndOfText, tokenizer.PadId);
        Assert.Equal(ImStart, tokenizer.SpecialTokenId("<|im_start|>"));
    }

    [Fact]
    public void Qwen2_merges_and_adds_no_bos()
    {
        PretrainedTokenizer tokenizer = OpenQwen2();
        int[] expected = [Id("hello"), Id(Symbols(" world"))];
        Assert.Equal(expected, tokenizer.Encode("hello world"));
        Assert.Equal(expected, tokenizer.Encode("hello world", addSpecialTokens: false));
    }

    [Fact]
    public void Qwen2_normalizes_to_nfc()
    {
        PretrainedTokenizer qwen2 = OpenQwen2();
        Assert.Equal([Id("caf" + E)], qwen2.Encode("café"));
        Assert.Equal([Id("caf" + E)], qwen2.Encode("cafe\u0301"));

        // The same files read as GPT-2 (no normalizer) keep the combining accent apart.
        _folder.Write("config.json", """{ "model_type": "gpt2" }""");
        _folder.Write("tokenizer_config.json", "{}");
        PretrainedTokenizer gpt2 = PretrainedTokenizer.FromFolder(_folder.Path);
        Assert.Equal([Id("caf" + E)], gpt2.Encode("café"));
        Assert.Equal([Id("caf"), Id("e"), .. Bytes("\u0301")], gpt2.Encode("cafe\u0301"));
    }

    [Fact]
    public void Qwen2_keeps_special_tokens_whole()
    {
        Assert.Equal(
            [ImStart, .. Bytes("user"), Id(Symbols("\n")), Id("hello"), ImEnd, Id(Symbols("\n"))],
            OpenQwen2().Encode("<|im_start|>user\nhello<|im_end|>\n"));
    }

    [Fact]
    public void Qwen2_splits_digits_one_by_one()
    {
        // Qwen2's regex takes one \p{N} at a time, so the merge "2 0" never applies; GPT-2's takes " ?\p{N}+".
        Assert.Equal(Bytes("2024"), OpenQwen2().Encode("2024"));
        _folder.Write("config.json", """{ "model_type": "gpt2" }""");
        Assert.Equal([Id("20"), .. Bytes("24")], PretrainedTokenizer.FromFolder(_folder.Path).Encode("2024"));
    }

    [Fact]
    public void Qwen2_round_trips_to_the_nfc_text()
    {
        PretrainedTokenizer tokenizer = OpenQwen2();
        int[] ids = [.. tokenizer.Encode(Mixed)];
        Assert.Equal(Mixed.Normalize(NormalizationForm.FormC), tokenizer.Decode(ids, skipSpecialTokens: false));
        Assert.Equal(
            Mixed.Normalize(NormalizationForm.FormC).Replace("<|im_start|>", "").Replace("<|im_end|>", ""),
            tokenizer.Decode(ids));
    }

    [Fact]
    public void A_lone_surrogate_does_not_stop_the_encoder()
    {
        // .NET refuses to NFC-normalize it; the normalizer lets the text through unnormalized.
        IReadOnlyList<int> ids = OpenQwen2().Encode("hello\uD800world");
        Assert.Equal(Id("hello"), ids[0]);
        Assert.Equal(Id("ld"), ids[^1]);
    }

    [Fact]
    public void Qwen2_tokenizer_json_gives_the_same_ids_as_the_slow_tokenizer_rules()
    {
        PretrainedTokenizer slow = OpenQwen2(withTokenizerJson: false);
        PretrainedTokenizer fast = OpenQwen2(withTokenizerJson: true);
        foreach (string text in Mixed.Split('\n').Append(Mixed).Append("they'RE 12 cafe\u0301s"))
        {
            Assert.Equal(slow.Encode(text), fast.Encode(text));
        }
    }

    [Fact]
    public void Qwen2_chat_template_is_chatml_with_its_default_system_prompt()
    {
        PretrainedTokenizer tokenizer = OpenQwen2();
        ChatTemplate chat = Assert.IsType<ChatTemplate>(tokenizer.Chat);
        Assert.Equal(ChatTemplateStyle.ChatMl, chat.Style);
        Assert.Equal("You are a helpful assistant.", chat.DefaultSystemPrompt);
        Assert.Equal(ImEnd, tokenizer.SpecialTokenId(chat.EndOfTurn));

        string prompt = chat.Format([("user", "hello")]);
        IReadOnlyList<int> ids = tokenizer.Encode(prompt, addSpecialTokens: false);
        Assert.Equal(ImStart, ids[0]);
        Assert.Equal(3, ids.Count(id => id == ImStart));
        Assert.Equal(prompt, tokenizer.Decode([.. ids], skipSpecialTokens: false));
    }

    [Fact]
    public void SmolLm2_tokenizer_json_splits_digits_before_the_gpt2_regex()
    {
        PretrainedTokenizer tokenizer = OpenSmolLm2();
        Assert.Equal(PretrainedTokenizer.ByteLevelBpeKind, tokenizer.Kind);

        // Digits: "a " "1" "2" "b"; then GPT-2's regex on "a ": "a" " ". Neither "Ġ 1" nor "1 2" can merge.
        Assert.Equal([Id("a"), Id(Symbols(" ")), Id("1"), Id("2"), Id("b")], tokenizer.Encode("a 12b"));
        Assert.Equal([ImStart, .. Bytes("assistant"), Id(Symbols("\n")), Id("1"), Id("2"), ImEnd],
            tokenizer.Encode("<|im_start|>assistant\n12<|im_end|>"));

        // Without tokenizer.json the slow GPT2Tokenizer's rule applies: " 12" is one piece, and "1 2" merges
        // before "Ġ 1" (merges.txt order).
        File.Delete(Path.Combine(_folder.Path, "tokenizer.json"));
        Assert.Equal([Id("a"), Id(Symbols(" ")), Id("12"), Id("b")], PretrainedTokenizer.FromFolder(_folder.Path).Encode("a 12b"));
    }

    [Fact]
    public void SmolLm2_round_trips_and_names_its_tokens()
    {
        PretrainedTokenizer tokenizer = OpenSmolLm2();
        Assert.Equal(ImStart, tokenizer.BosId);
        Assert.Equal(ImEnd, tokenizer.EosId);
        Assert.Equal(EndOfText, tokenizer.UnkId);
        Assert.Equal(Mixed, tokenizer.Decode([.. tokenizer.Encode(Mixed)], skipSpecialTokens: false));
        Assert.DoesNotContain(tokenizer.BosId!.Value, tokenizer.Encode("hello"));
    }

    [Fact]
    public void Template_post_processor_adds_its_special_tokens()
    {
        // Llama-3's form: TemplateProcessing puts <|begin_of_text|> before the text.
        OpenSmolLm2();
        _folder.Write("tokenizer.json", SmolLm2TokenizerJson(postProcessor: $$"""
            {
              "type": "Sequence",
              "processors": [
                {{ByteLevelPostProcessor}},
                {
                  "type": "TemplateProcessing",
                  "single": [ { "SpecialToken": { "id": "<|im_start|>", "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } } ],
                  "pair": [],
                  "special_tokens": { "<|im_start|>": { "id": "<|im_start|>", "ids": [ {{ImStart}} ], "tokens": [ "<|im_start|>" ] } }
                }
              ]
            }
            """));
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        Assert.Equal([ImStart, Id("hello")], tokenizer.Encode("hello"));
        Assert.Equal([Id("hello")], tokenizer.Encode("hello", addSpecialTokens: false));
    }

    [Fact]
    public void Template_post_processor_pair_template_joins_a_pair()
    {
        // Llama-3's pair form, <|begin_of_text|> $A <|begin_of_text|> $B: no suffix, the prefix again before the second text.
        // With "pair": [] (above) a pair is refused instead.
        OpenSmolLm2();
        const string bos = """{ "SpecialToken": { "id": "<|im_start|>", "type_id": 0 } }""";
        _folder.Write("tokenizer.json", SmolLm2TokenizerJson(postProcessor: $$"""
            {
              "type": "TemplateProcessing",
              "single": [ {{bos}}, { "Sequence": { "id": "A", "type_id": 0 } } ],
              "pair": [ {{bos}}, { "Sequence": { "id": "A", "type_id": 0 } }, {{bos}}, { "Sequence": { "id": "B", "type_id": 1 } } ],
              "special_tokens": { "<|im_start|>": { "id": "<|im_start|>", "ids": [ {{ImStart}} ], "tokens": [ "<|im_start|>" ] } }
            }
            """));
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        Assert.Equal([ImStart, Id("hello"), ImStart, Id(Symbols(" world"))], tokenizer.EncodePair("hello", " world"));

        _folder.Write("tokenizer.json", SmolLm2TokenizerJson(postProcessor: $$"""
            {
              "type": "TemplateProcessing",
              "single": [ {{bos}}, { "Sequence": { "id": "A", "type_id": 0 } } ],
              "pair": [],
              "special_tokens": { "<|im_start|>": { "id": "<|im_start|>", "ids": [ {{ImStart}} ], "tokens": [ "<|im_start|>" ] } }
            }
            """));
        Assert.Throws<NotSupportedException>(() => PretrainedTokenizer.FromFolder(_folder.Path).EncodePair("hello", " world"));
    }

    [Theory]
    [InlineData("""{ "type": "Metaspace", "replacement": "▁" }""", "Metaspace")]
    [InlineData("""{ "type": "ByteLevel", "add_prefix_space": true, "use_regex": true }""", "add_prefix_space")]
    [InlineData("""{ "type": "Split", "pattern": { "Regex": "\\s+" }, "behavior": "Removed", "invert": false }""", "Removed")]
    public void Unsupported_tokenizer_json_parts_are_refused_by_name(string preTokenizer, string named)
    {
        OpenSmolLm2();
        _folder.Write("tokenizer.json", $$"""{ "pre_tokenizer": {{preTokenizer}}, "decoder": { "type": "ByteLevel" }, "model": { "type": "BPE" } }""");
        NotSupportedException error = Assert.Throws<NotSupportedException>(() => PretrainedTokenizer.FromFolder(_folder.Path));
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }
}
