using System.Globalization;
using System.Text.RegularExpressions;
using Xunit;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// What the generator emits for an encoder-only model's exact-length pass: stages whose row counts are n (or one row per
/// sequence after pooling) at run time while every offset and width stays a literal, attention and pooling per sequence,
/// and an inference workspace sized for Batch·SeqLen tokens that does not grow with depth.
/// </summary>
public class ExactLengthEmitTests
{
    private static string Generate(string options) => GeneratorHarness.RunClean($$"""
        using TransformerGen;
        namespace Exact;
        [TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 13, DModel = 30, Heads = 3, DFF = 41, SeqLen = 11, {{options}})]
        public partial class Encoder { }
        """).GeneratedSource;

    private static long InferenceCount(string source) =>
        long.Parse(Regex.Match(source, @"inferenceCount: (\d+)").Groups[1].Value, CultureInfo.InvariantCulture);

    [Fact]
    public void Stages_take_the_row_count_and_lengths_at_run_time_with_literal_offsets_and_widths()
    {
        string source = Generate("Layers = 2, Batch = 3, Classes = 4, PadToken = 0, Pooling = Pooling.Mean");
        Assert.Contains("protected override global::System.ReadOnlySpan<float> PredictCore(global::System.ReadOnlySpan<int> tokens, global::System.ReadOnlySpan<int> lengths)", source);
        Assert.Contains("private void EncoderLayer1Infer(int n, global::System.ReadOnlySpan<int> lengths)", source);
        Assert.Matches(@"LayerNorm\.Forward\(w\.Slice\(\d+, n \* 30\), p\.Slice\(\d+, 30\), p\.Slice\(\d+, 30\), w\.Slice\(\d+, n \* 30\), w\.Slice\(\d+, n\), w\.Slice\(\d+, n\), n, 30\);", source);
        Assert.Matches(@"w\.Slice\(\d+, n \* 30\), p\.Slice\(\d+, 2700\), p\.Slice\(\d+, 90\), w\.Slice\(\d+, n \* 90\), n, 30, 90", source); // the Q, K, V product
        Assert.Matches(@"Attention\.ForwardSequences\(w\.Slice\(\d+, n \* 90\), 90, .*, PredictPadding, w\.Slice\(\d+, n \* 30\), w\.Slice\(\d+, 363\), lengths, 3, 10\);", source);
        Assert.Matches(@"Pooling\.MeanForward\(w\.Slice\(\d+, n \* 30\), PredictPadding, w\.Slice\(\d+, lengths\.Length \* 30\), lengths, 30\);", source);
        Assert.Matches(@"return InferenceBuffer\.Slice\(\d+, lengths\.Length \* 4\); // head\.logits\[sequences, 4\]", source);
    }

    [Fact]
    public void The_workspace_holds_Batch_times_SeqLen_tokens_and_does_not_grow_with_depth()
    {
        long two = InferenceCount(Generate("Layers = 2, Batch = 3, Classes = 4"));
        Assert.Equal(two, InferenceCount(Generate("Layers = 6, Batch = 3, Classes = 4")));
        Assert.True(InferenceCount(Generate("Layers = 2, Batch = 6, Classes = 4")) > two);
    }

    [Fact]
    public void A_tagger_returns_one_row_per_token_and_a_model_without_padding_masks_nothing()
    {
        string source = Generate("Layers = 1, Batch = 2, Classes = 5, Head = EncoderHead.Tagging, Positional = Positional.Rotary");
        Assert.Matches(@"return InferenceBuffer\.Slice\(\d+, n \* 5\); // head\.logits\[n, 5\]", source);
        Assert.Contains("Positional.RotaryForward(", source);
        Assert.Matches(@"Attention\.ForwardSequences\([^;]*, default, [^;]*lengths, 3, 10\);", source);
        Assert.DoesNotContain("PredictPadding", source);
    }
}
