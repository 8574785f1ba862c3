using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Tokenizers;
using TransformerGen.Tokenizers.Folder;
using TransformerGen.Tokenizers.PreTokenization;
using Xunit;

namespace TransformerGen.Tokenizers.Tests;

public sealed class PreTokenizerTests
{
    private static string[] Pieces(PreTokenizer preTokenizer, string text) =>
        [.. preTokenizer.PreTokenize(text).Select(piece => text.Substring(piece.Offset, piece.Length))];

    private static SplitPipelinePreTokenizer Pipeline(params SplitStep[] steps) => new(steps, null);

    // The expected pieces are the ones in huggingface/tokenizers' own tests (pre_tokenizers/byte_level.rs and digits.rs).
    [Theory]
    [InlineData("Hello my friend, how is your day going?", new[] { "Hello", " my", " friend", ",", " how", " is", " your", " day", " going", "?" })]
    [InlineData("Hello there\nHello there", new[] { "Hello", " there", "\n", "Hello", " there" })]
    [InlineData("Hello there       dear", new[] { "Hello", " there", "      ", " dear" })]
    public void Gpt2_regex_splits_as_tokenizers_byte_level(string text, string[] expected)
    {
        Assert.Equal(expected, Pieces(Pipeline(new RegexSplitStep(PreTokenizerPatterns.Gpt2Regex())), text));
    }

    [Fact]
    public void Digits_split_as_tokenizers_digits()
    {
        Assert.Equal(["Hey ", "123", " friend!"], Pieces(Pipeline(new DigitsSplitStep(individualDigits: false)), "Hey 123 friend!"));
        Assert.Equal(["Hey ", "1", "2", "3", " friend!"], Pieces(Pipeline(new DigitsSplitStep(individualDigits: true)), "Hey 123 friend!"));
        // Other numeric characters count too (Rust's char::is_numeric): Arabic-Indic digits, superscripts, Roman numerals.
        Assert.Equal(["x", "٣", "²", "Ⅻ", "y"], Pieces(Pipeline(new DigitsSplitStep(individualDigits: true)), "x٣²Ⅻy"));
    }

    [Fact]
    public void Each_step_sees_only_the_pieces_of_the_one_before()
    {
        // Digits first: "a " and "1"; the regex then sees "a " alone, where \s+(?!\S) takes the final space.
        var pipeline = Pipeline(new DigitsSplitStep(individualDigits: true), new RegexSplitStep(PreTokenizerPatterns.Gpt2Regex()));
        Assert.Equal(["a", " ", "1", "2", "b"], Pieces(pipeline, "a 12b"));
    }

    [Fact]
    public void A_single_regex_pipeline_splits_as_the_library_regex_pre_tokenizer()
    {
        var specials = new Dictionary<string, int> { ["<|im_start|>"] = 1, ["<|im_end|>"] = 2 };
        const string text = "<|im_start|>user\nIt's 2024: naïve café, 日本語 🎉🎉   spaced\ttabs\r\n\r\nnew<|im_end|>\n  <|im_start|> x ";
        foreach (var regex in new[] { PreTokenizerPatterns.Gpt2Regex(), PreTokenizerPatterns.Qwen2Regex() })
        {
            var ours = new SplitPipelinePreTokenizer([new RegexSplitStep(regex)], specials);
            var library = new RegexPreTokenizer(regex, specials);
            Assert.Equal(library.PreTokenize(text), ours.PreTokenize(text));
        }
    }

    [Fact]
    public void Added_tokens_are_matched_longest_first()
    {
        var specials = new Dictionary<string, int> { ["<|a|>"] = 1, ["<|a|>b"] = 2 };
        var pipeline = new SplitPipelinePreTokenizer([new RegexSplitStep(PreTokenizerPatterns.Gpt2Regex())], specials);
        Assert.Equal(["x", "<|a|>b", "c"], Pieces(pipeline, "x<|a|>bc"));
    }

    [Fact]
    public void Added_tokens_are_cut_out_longest_first_and_take_in_whitespace_when_stripping()
    {
        var splitter = new AddedTokenSplitter(
        [
            new AddedToken("<s>", 0, Special: true),
            new AddedToken("<s>x", 9, Special: true),
            new AddedToken("<mask>", 7, Special: true, LStrip: true),
            new AddedToken("<r>", 8, Special: true, RStrip: true),
        ]);
        const string text = "a <s>x b  <mask> c<r>  d<s>";
        string[] segments = [.. splitter.Split(text).Select(s => s.TokenId is int id ? $"#{id}" : text.Substring(s.Start, s.Length))];
        Assert.Equal(["a ", "#9", " b", "#7", " c", "#8", "d", "#0"], segments);
    }
}
