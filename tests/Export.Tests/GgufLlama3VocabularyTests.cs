using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Tokenizers;
using TransformerGen.Tokenizers;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using static TransformerGen.Tokenizers.Tests.Support.Llama3FolderFromCl100k;

namespace TransformerGen.Export.Tests;

// A Llama 3 with Llama 3's 128,256 rows, its bos and eos ids and its rotary scaling, tiny otherwise (Configs/README.md).
[TransformerModel(Config = "Export.Tests/Configs/llama3-vocab/config.json", SeqLen = 40)]
public partial class GgufLlama3VocabModel { }

/// <summary>
/// Llama 3's own vocabulary in the GGUF file: the tokenizer tests' Llama-3-shaped folder (tokenizer.json alone, a BPE model
/// with <c>ignore_merges</c>; cl100k_base's ranks as Llama 3's first 100,256 ids, the 256 special tokens from 128,000, ids
/// 100,256–127,999 absent) becomes llama.cpp's <c>gpt2</c> tokenizer with the <c>llama-bpe</c> pre-tokenizer, which must
/// tokenize text as <see cref="PretrainedTokenizer"/> does, with and without &lt;|begin_of_text|&gt; and special tokens,
/// give the text back, and run the model on the ids it makes from text as we do.
/// </summary>
public sealed class GgufLlama3VocabularyTests : IDisposable
{
    private const int Vocab = 128256;

    /// <summary>
    /// Texts of every kind Llama 3's pre-tokenizer splits: words, punctuation, numbers of 1 to 7 digits and longer, runs of
    /// spaces and tabs, newlines (with \r, with spaces around), Unicode spaces and digits, accents composed and decomposed,
    /// CJK, emoji (skin tones, ZWJ sequences, flags, variation selectors), contractions in either case, code, special tokens.
    /// </summary>
    private static readonly string[] Texts =
    [
        "Hello, world!",
        " Hello world",
        "The quick brown fox jumps over the lazy dog.",
        Punctuation,
        "¿Qué? «Ça va» „gut“ ‘curly’ I’m",
        "1 12 123 1234 12345 123456 1234567",
        "3.14159 -42 +7 1,000,000 2024-01-31 0x1F 12345678901234567890 abc123def4567",
        "٣٤٥٦ ๑๒๓ ²³ ½ Ⅻ",
        "  leading, two  spaces, three   spaces,    four    and trailing   ",
        "tabs\tand\t\tmore\ttabs \t mixed",
        "line one\nline two\n\nline four\r\nwindows\r\n",
        "\n\n\n",
        "   \n  \n x",
        "a \n b  \n\n  c\t\n\td",
        "no\u00a0break\u3000ideographic\u2003em\u2028line",
        "naïve café résumé Ångström façade über straße ÉCOLE",
        "e\u0301 (a decomposed é) and n\u0303",
        "日本語のテキスト、中文文本，한국어 텍스트",
        "emoji 🎉😀👍🏽 👨‍👩‍👧 ❤️ 🇫🇷!",
        "It's, I'll, we've, they're, he'd, I'm, WE'LL, She'S don't 'S 'll rock'n'roll",
        "def f(x):\n\treturn x**2  # squared\n",
        " world world  worlds",
        "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>",
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        "a<|eom_id|>b <|python_tag|> <|reserved_special_token_5|><|eot_id",
        "",
    ];

    /// <summary>The one text both clean-ups change: " 'single'" loses its space (" 's" is a contraction to both).</summary>
    private const string Punctuation = "Punctuation: (a), [b], {c}; \"quoted\" 'single' — dash… ellipsis?! #hash @at $5.00 100% a&b <tag/> ~/path_to-file.txt";

    private readonly ITestOutputHelper _output;
    private readonly TempFolder _folder = new();
    private readonly string _files = Directory.CreateTempSubdirectory("tg-gguf-llama3-vocab-").FullName;

    public GgufLlama3VocabularyTests(ITestOutputHelper output)
    {
        _output = output;
        Write(_folder, chatTemplate: ChatTemplate);
    }

    public void Dispose()
    {
        _folder.Dispose();
        Directory.Delete(_files, recursive: true);
    }

    /// <summary>Llama-3.2-Instruct's chat template, shortened (the tokenizer tests' form).</summary>
    private const string ChatTemplate = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

    private string Export(string folder, string preTokenizer, out GgufLlama3VocabModel model, string name = "llama3")
    {
        model = new GgufLlama3VocabModel(1);
        Weights.Randomize(model, seed: 11);
        string path = Path.Combine(_files, name + ".gguf");
        model.SaveGguf(path, GgufLlamaCppTests.Config("llama3-vocab"), GgufTensorType.F32, GgufVocabulary.FromTokenizerFolder(folder, Vocab, preTokenizer));
        return path;
    }

    private static string Show(string text) =>
        text.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal);

    /// <summary>
    /// What the file holds, as llama.cpp's converter writes Llama 3: 128,000 + 256 tokens, the special ones control tokens,
    /// the ids the tokenizer lacks unused [PADn] rows, every merge, &lt;|begin_of_text|&gt; 128000 as the begin token and
    /// added (the post-processor adds it; tokenizer_config.json does not say), tokenizer_config.json's eos_token
    /// &lt;|eot_id|&gt; 128009 as the end token (config.json's list starts with 128001), the chat template. llama.cpp reads
    /// them so and ends a generation at each of config.json's three eos ids.
    /// </summary>
    [Fact]
    public void The_file_holds_Llama3s_vocabulary_special_ids_and_template()
    {
        var vocabulary = GgufVocabulary.FromTokenizerFolder(_folder.Path, Vocab, "llama-bpe");
        Assert.Equal(("gpt2", "llama-bpe", Vocab), (vocabulary.Model, vocabulary.PreTokenizer, vocabulary.Count));
        Assert.Equal(("ĠHello", (int)GgufFormat.TokenType.Normal), (vocabulary.Tokens[22691], vocabulary.TokenTypes[22691]));
        Assert.Equal(("[PAD100256]", (int)GgufFormat.TokenType.Unused), (vocabulary.Tokens[100256], vocabulary.TokenTypes[100256]));
        Assert.Equal(("[PAD127999]", (int)GgufFormat.TokenType.Unused), (vocabulary.Tokens[127999], vocabulary.TokenTypes[127999]));
        foreach ((int id, string content) in SpecialTokens())
            Assert.Equal((content, (int)GgufFormat.TokenType.Control), (vocabulary.Tokens[id], vocabulary.TokenTypes[id]));
        Assert.Equal(100_000, vocabulary.Merges.Count); // one per token past the 256 bytes
        Assert.Equal((BeginOfText, EndOfTurn, true, false), (vocabulary.BosId, vocabulary.EosId, vocabulary.AddBos, vocabulary.AddEos));
        Assert.Equal(-1, vocabulary.UnknownId);
        Assert.Equal(ChatTemplate, vocabulary.ChatTemplate);
        Assert.Equal(EndOfText, GgufHyperparameters.FromConfig(GgufLlamaCppTests.Config("llama3-vocab")).EosToken);

        string path = Export(_folder.Path, "llama-bpe", out _);
        Dictionary<string, object> m = GgufFile.Read(path).Metadata;
        Assert.Equal("llama-bpe", m["tokenizer.ggml.pre"]);
        Assert.Equal(Vocab, ((List<object>)m["tokenizer.ggml.tokens"]).Count);
        Assert.Equal(100_000, ((List<object>)m["tokenizer.ggml.merges"]).Count);
        Assert.Equal((uint)BeginOfText, m["tokenizer.ggml.bos_token_id"]);
        Assert.Equal((uint)EndOfTurn, m["tokenizer.ggml.eos_token_id"]);
        Assert.Equal(true, m["tokenizer.ggml.add_bos_token"]);
        Assert.False(m.ContainsKey("tokenizer.ggml.add_eos_token"));
        Assert.Equal(ChatTemplate, m["tokenizer.chat_template"]);

        using var llama = new LlamaCppVocabulary(path);
        Assert.Equal((BeginOfText, EndOfTurn, EndOfTurn, true), (llama.Bos, llama.Eos, llama.Eot, llama.AddsBos));
        Assert.All(new[] { EndOfText, EndOfMessage, EndOfTurn }, id => Assert.True(llama.EndsGeneration(id), $"{id} does not end a generation"));
        Assert.False(llama.EndsGeneration(StartHeader));
    }

    /// <summary>
    /// llama.cpp tokenizes every text as our tokenizer does: with its special tokens added (&lt;|begin_of_text|&gt; first),
    /// and without; and with special tokens left unparsed it tokenizes their text as cl100k_base does (Microsoft.ML.Tokenizers'
    /// tiktoken, which knows none of Llama 3's special tokens). No text differs in this llama.cpp.
    /// </summary>
    [Fact]
    public void Llama_cpp_tokenizes_every_text_as_our_tokenizer_does()
    {
        string path = Export(_folder.Path, "llama-bpe", out _);
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        TiktokenTokenizer tiktoken = TiktokenTokenizer.CreateForModel("gpt-4");
        using var llama = new LlamaCppVocabulary(path);
        var failures = new List<string>();
        int tokens = 0;
        foreach (string text in Texts)
        {
            int[] ours = [.. tokenizer.Encode(text)], theirs = llama.Tokenize(text, addSpecial: true);
            int[] oursBare = [.. tokenizer.Encode(text, addSpecialTokens: false)], theirsBare = llama.Tokenize(text);
            int[] cl100k = [.. tiktoken.EncodeToIds(text)], unparsed = llama.Tokenize(text, parseSpecial: false);
            tokens += ours.Length;
            _output.WriteLine($"{Show(text)}: {string.Join(" ", ours)}"
                + (ours.SequenceEqual(theirs) ? "" : $" / llama.cpp {string.Join(" ", theirs)}")
                + (oursBare.SequenceEqual(theirsBare) ? "" : $" / without special tokens: ours {string.Join(" ", oursBare)}, llama.cpp {string.Join(" ", theirsBare)}")
                + (cl100k.SequenceEqual(unparsed) ? "" : $" / unparsed: cl100k {string.Join(" ", cl100k)}, llama.cpp {string.Join(" ", unparsed)}"));
            if (!ours.SequenceEqual(theirs) || !oursBare.SequenceEqual(theirsBare) || !cl100k.SequenceEqual(unparsed)) failures.Add(Show(text));
            Assert.Equal(BeginOfText, theirs[0]);
        }
        _output.WriteLine($"{Texts.Length} texts, {tokens} tokens");
        Assert.Empty(failures);
    }

    /// <summary>
    /// Back to text: the tokens' pieces (llama_token_to_piece) give every text back byte for byte. llama_detokenize, as
    /// llama.cpp's own tools call it, then drops spaces as its clean_spaces pass for llama-bpe does, and gives our decoding
    /// (transformers' clean_up_tokenization_spaces, which Llama 3's tokenizer_config.json sets) of every text here; both
    /// then lose the space of " 'single'" and nothing else here. The two clean-ups differ on " n't", which transformers
    /// joins and llama.cpp does not: "do n't" comes back from llama.cpp as it was and from us as "don't".
    /// </summary>
    [Fact]
    public void Llama_cpp_gives_the_text_back()
    {
        string path = Export(_folder.Path, "llama-bpe", out _);
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        using var llama = new LlamaCppVocabulary(path);
        var cleaned = new List<string>();
        foreach (string text in Texts)
        {
            int[] ids = llama.Tokenize(text);
            Assert.Equal(text, llama.Pieces(ids));
            string detokenized = llama.Detokenize(ids), ours = tokenizer.Decode(ids, skipSpecialTokens: false);
            Assert.Equal(ours, detokenized);
            if (detokenized != text)
            {
                cleaned.Add(text);
                _output.WriteLine($"{Show(text)} -> {Show(detokenized)}");
            }
        }
        Assert.Equal([Punctuation], cleaned);

        foreach ((string text, string theirs, string ours) in new[]
        {
            ("I do n't know , do you ?", "I do n't know, do you?", "I don't know, do you?"),
            ("we 're here and it 's ours , is n't it", "we're here and it's ours, is n't it", "we're here and it's ours, isn't it"),
        })
        {
            int[] ids = llama.Tokenize(text);
            Assert.Equal([.. tokenizer.Encode(text, addSpecialTokens: false)], ids);
            _output.WriteLine($"{text}: llama.cpp \"{llama.Detokenize(ids)}\", ours \"{tokenizer.Decode(ids)}\"");
            Assert.Equal(theirs, llama.Detokenize(ids));
            Assert.Equal(ours, tokenizer.Decode(ids));
        }
    }

    /// <summary>
    /// LLamaSharp 0.30.0's StreamingTokenDecoder (what its executors make a generation's text with) leaves out every special
    /// token longer than 16 bytes even when asked for special tokens: its first buffer holds 16 bytes, and its second
    /// call for a longer piece does not pass the special flag on. &lt;|eot_id|&gt; (10 bytes) comes out, &lt;|begin_of_text|&gt;
    /// (17), &lt;|start_header_id|&gt; (19) and &lt;|end_header_id|&gt; (17) do not; llama_token_to_piece gives them all.
    /// </summary>
    [Fact]
    public void LLamaSharps_streaming_decoder_drops_special_tokens_longer_than_16_bytes()
    {
        string path = Export(_folder.Path, "llama-bpe", out _);
        using var llama = new LlamaCppVocabulary(path);
        const string text = "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>";
        int[] ids = llama.Tokenize(text, addSpecial: true);
        Assert.Equal("<|begin_of_text|>" + text, llama.Pieces(ids));
        Assert.Equal("user\n\nHello!<|eot_id|>", llama.Streamed(ids));
    }

    /// <summary>
    /// llama.cpp's llama-bpe looks each pre-tokenized piece up whole before merging, as Llama 3's <c>ignore_merges</c>
    /// does: with the merge that makes " world" left out of the folder (and so of the file), llama.cpp still gives 1917, as
    /// our tokenizer does. The same file with the gpt-2 pre-tokenizer, which splits " world" alike but merges only, gives
    /// two tokens.
    /// </summary>
    [Fact]
    public void Llama_cpp_looks_a_piece_up_whole_as_ignore_merges_asks()
    {
        using var folder = new TempFolder();
        Write(folder, withoutMergeOf: " world");
        Assert.Equal(99_999, GgufVocabulary.FromTokenizerFolder(folder.Path, Vocab, "llama-bpe").Merges.Count);
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path);
        Assert.Equal([1917], tokenizer.Encode(" world", addSpecialTokens: false));
        using (var llama = new LlamaCppVocabulary(Export(folder.Path, "llama-bpe", out _, "ignore-merges")))
        {
            Assert.Equal([1917], llama.Tokenize(" world"));
            Assert.Equal([BeginOfText, 9906, 11, 1917, 0], llama.Tokenize("Hello, world!", addSpecial: true));
            foreach (string text in Texts) Assert.Equal([.. tokenizer.Encode(text)], llama.Tokenize(text, addSpecial: true));
        }
        using (var merging = new LlamaCppVocabulary(Export(folder.Path, "gpt-2", out _, "merges-only")))
        {
            int[] split = merging.Tokenize(" world");
            _output.WriteLine($"\" world\" with the gpt-2 pre-tokenizer: {string.Join(" ", split)}");
            Assert.Equal(2, split.Length);
        }
    }

    /// <summary>
    /// From text to logits: llama.cpp tokenizes a chat prompt (a user turn and the assistant's header, &lt;|begin_of_text|&gt;
    /// added) into our tokenizer's ids and its logits for them are ours (F32, within the rotary tests' 1e-4).
    /// </summary>
    [Fact]
    public void Llama_cpps_logits_for_a_prompt_it_tokenized_are_ours()
    {
        string path = Export(_folder.Path, "llama-bpe", out GgufLlama3VocabModel model);
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        const string prompt = "<|start_header_id|>user<|end_header_id|>\n\nIs 1234567 × 89 = naïve? 日本 🎉<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
        int[] ids = [.. tokenizer.Encode(prompt)];
        int[] theirsIds;
        using (var llama = new LlamaCppVocabulary(path)) theirsIds = llama.Tokenize(prompt, addSpecial: true);
        Assert.Equal(ids, theirsIds);
        Assert.InRange(ids.Length, 20, GgufLlama3VocabModel.SeqLen);
        float[][] ours = GgufLlamaCppTests.Ours(model, ids), theirs = LlamaCpp.Logits(path, theirsIds);
        double relative = GgufLlamaCppTests.Relative(ours, theirs);
        _output.WriteLine($"{ids.Length} tokens ({string.Join(" ", ids)}): logits relative {relative:G3}");
        Assert.True(relative < 1e-4, $"relative {relative}");
    }
}
