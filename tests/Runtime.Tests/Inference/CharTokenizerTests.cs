using System;
using Xunit;

namespace TransformerGen.Tests.Inference;

public sealed class CharTokenizerTests
{
    [Fact]
    public void FromTextUsesTheSortedDistinctCharacters()
    {
        CharTokenizer tokenizer = CharTokenizer.FromText("hello world\n");
        Assert.Equal("\n dehlorw", tokenizer.Alphabet);
        Assert.Equal(9, tokenizer.VocabSize);
        Assert.Equal(0, tokenizer.Encode('\n'));
        Assert.Equal(4, tokenizer.Encode('h'));
        Assert.Equal('w', tokenizer.Decode(8));

        Assert.Equal("Aab€", CharTokenizer.FromText("b€aAab").Alphabet); // ordinal, not culture, order
    }

    [Fact]
    public void FromAlphabetKeepsTheGivenOrder()
    {
        CharTokenizer tokenizer = CharTokenizer.FromAlphabet("zyx");
        Assert.Equal(0, tokenizer.Encode('z'));
        Assert.Equal(2, tokenizer.Encode('x'));
        Assert.True(tokenizer.Contains('y'));
        Assert.False(tokenizer.Contains('a'));
    }

    [Fact]
    public void EncodeThenDecodeRoundTrips()
    {
        const string text = "First Citizen:\nBefore we proceed any further, hear me speak.";
        CharTokenizer tokenizer = CharTokenizer.FromText(text);
        var tokens = new int[text.Length];
        tokenizer.Encode(text, tokens);
        Assert.All(tokens, t => Assert.InRange(t, 0, tokenizer.VocabSize - 1));
        Assert.Equal(text, tokenizer.Decode(tokens));

        var longText = new string('e', 2000); // past the stack-allocated decode size
        var longTokens = new int[longText.Length];
        tokenizer.Encode(longText, longTokens);
        Assert.Equal(longText, tokenizer.Decode(longTokens));
    }

    [Fact]
    public void UnknownCharactersAreReportedWithTheirPosition()
    {
        CharTokenizer tokenizer = CharTokenizer.FromText("abc");
        var error = Assert.Throws<ArgumentException>(() => tokenizer.Encode("abxc", new int[4]));
        Assert.Contains("position 2", error.Message);
        Assert.Contains("'x'", error.Message);
        Assert.Throws<ArgumentException>(() => tokenizer.Encode('\uffff'));
        Assert.Throws<ArgumentException>(() => tokenizer.Encode("abc", new int[2]));
    }

    [Fact]
    public void BadTokensAreRejected()
    {
        CharTokenizer tokenizer = CharTokenizer.FromText("abc");
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode(3));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode(-1));
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([0, 1, 7]));
        Assert.Contains("position 2", error.Message);
    }

    [Fact]
    public void BadAlphabetsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => CharTokenizer.FromText(""));
        Assert.Throws<ArgumentException>(() => CharTokenizer.FromAlphabet(""));
        var error = Assert.Throws<ArgumentException>(() => CharTokenizer.FromAlphabet("abca"));
        Assert.Contains("'a'", error.Message);
    }

    [Fact]
    public void SpanEncodingAllocatesNothing()
    {
        CharTokenizer tokenizer = CharTokenizer.FromText("the quick brown fox");
        const string text = "the fox";
        var tokens = new int[text.Length];
        Assert.Equal(0, Training.Allocations.Measure(() => tokenizer.Encode(text, tokens)));
    }
}
