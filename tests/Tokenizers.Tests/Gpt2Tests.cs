using System;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;

namespace TransformerGen.Tokenizers.Tests;

/// <summary>A GPT-2 model folder rebuilt from the offline GPT-2 data, shared by the tests that read one.</summary>
public sealed class Gpt2FolderFixture : IDisposable
{
    private readonly TempFolder _folder = new();

    public Gpt2FolderFixture()
    {
        Gpt2FilesFromTiktokenData.Write(_folder);
        Tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
    }

    public PretrainedTokenizer Tokenizer { get; }

    public void Dispose() => _folder.Dispose();
}

public sealed class Gpt2Tests(Gpt2FolderFixture folder) : IClassFixture<Gpt2FolderFixture>
{
    private static readonly PretrainedTokenizer Offline = PretrainedTokenizer.Gpt2();

    // Unicode of several scripts, an emoji with a skin tone and a ZWJ family, a supplementary-plane letter,
    // runs of spaces, tabs, CRLF and blank lines, contractions and digits: every branch of GPT-2's regex.
    private const string Mixed =
        "Hello, world! It's 2024 — naïve café, Ünïcödé, 日本語のテキスト, Ελληνικά, русский.\n\n"
        + "Emoji: 👍🏽 👨‍👩‍👧 🎉🎉; math 𝒜𝒷𝒸 ∑x² ≤ 10³.\r\n\tTabbed    spaced   text  \n"
        + "they'll've we'd I'M ... !!! ??? <html>&nbsp;</html> 3.14159 1,000,000\n";

    [Theory]
    // "Hello world" → [15496, 995] and " Hello world" → [18435, 995] are GPT-2's published ids. The third line's
    // ids were read off the packaged ranks, not a published source: it guards the folder path (below) and the
    // punctuation split, not the data.
    [InlineData("Hello world", new[] { 15496, 995 })]
    [InlineData(" Hello world", new[] { 18435, 995 })]
    [InlineData("Hello, my dog is cute", new[] { 15496, 11, 616, 3290, 318, 13779 })]
    public void Offline_gives_published_ids(string text, int[] expected)
    {
        Assert.Equal(expected, Offline.Encode(text));
        Assert.Equal(expected, folder.Tokenizer.Encode(text));
    }

    [Fact]
    public void Offline_names_endoftext_and_adds_nothing()
    {
        Assert.Equal(PretrainedTokenizer.Gpt2BpeKind, Offline.Kind);
        Assert.Equal(50257, Offline.VocabSize);
        Assert.Equal(50256, Offline.EosId);
        Assert.Equal(50256, Offline.BosId);
        Assert.Null(Offline.PadId);
        Assert.Equal(Offline.Encode("Hello world", addSpecialTokens: false), Offline.Encode("Hello world", addSpecialTokens: true));
        Assert.Null(Offline.Chat);
        Assert.NotNull(Offline.ChatUnavailableReason);
    }

    [Fact]
    public void Endoftext_is_one_token_and_is_skipped_when_decoding()
    {
        foreach (PretrainedTokenizer tokenizer in new[] { Offline, folder.Tokenizer })
        {
            Assert.Equal([50256], tokenizer.Encode("<|endoftext|>"));
            Assert.Equal([64, 50256, 65], tokenizer.Encode("a<|endoftext|>b"));
            Assert.Equal("Hello world", tokenizer.Decode([15496, 50256, 995]));
            Assert.Equal("Hello<|endoftext|> world", tokenizer.Decode([15496, 50256, 995], skipSpecialTokens: false));
            Assert.Equal(50256, tokenizer.SpecialTokenId("<|endoftext|>"));
        }
    }

    [Fact]
    public void Long_mixed_text_round_trips()
    {
        string text = string.Concat(Mixed, Mixed.ToUpperInvariant(), Mixed);
        Assert.Equal(text, Offline.Decode(ToArray(Offline.Encode(text))));
        Assert.Equal(text, folder.Tokenizer.Decode(ToArray(folder.Tokenizer.Encode(text))));
    }

    [Fact]
    public void Folder_of_vocab_json_and_merges_txt_gives_the_offline_ids()
    {
        // BpeTokenizer (ByteLevel, GPT-2 regex through RegexPreTokenizer) over the rebuilt files against
        // TiktokenTokenizer over the packaged ranks: two implementations, one vocabulary.
        Assert.Equal(PretrainedTokenizer.Gpt2BpeKind, folder.Tokenizer.Kind);
        Assert.Equal(50257, folder.Tokenizer.VocabSize);
        Assert.Equal(50256, folder.Tokenizer.EosId);
        foreach (string line in (Mixed + Mixed.ToLowerInvariant()).Split('\n'))
        {
            Assert.Equal(Offline.Encode(line), folder.Tokenizer.Encode(line));
        }

        Assert.Equal(Offline.Encode(Mixed), folder.Tokenizer.Encode(Mixed));
    }

    [Fact]
    public void Span_form_truncates_at_max_tokens()
    {
        Span<int> ids = stackalloc int[16];
        int written = Offline.Encode("Hello, my dog is cute", ids, maxTokens: 3);
        Assert.Equal(3, written);
        Assert.Equal([15496, 11, 616], ids[..written].ToArray());

        written = Offline.Encode("Hello, my dog is cute", ids[..4]);
        Assert.Equal([15496, 11, 616, 3290], ids[..written].ToArray());
    }

    private static int[] ToArray(System.Collections.Generic.IReadOnlyList<int> ids) => [.. ids];
}
