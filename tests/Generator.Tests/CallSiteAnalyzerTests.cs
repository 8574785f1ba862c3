using System.Linq;
using Microsoft.CodeAnalysis;
using Xunit;

namespace TransformerGen.Generator.Tests;

public class CallSiteAnalyzerTests
{
    private const string DecoderOnly = "Vocab = 11, DModel = 12, Heads = 3, Layers = 1, DFF = 20, SeqLen = 5, Batch = 2";

    private static string Program(string body, string declaration = DecoderOnly) => $$"""
        using System;
        using TransformerGen;
        namespace Demo;
        [TransformerModel({{declaration}})]
        public partial class M { }
        public static class Use
        {
            public static void Run(M model, int[] anything)
            {
                {{body}}
            }
        }
        """;

    private static Diagnostic Single(string body, string id, string underlined, string declaration = DecoderOnly)
    {
        string source = Program(body, declaration);
        var diagnostics = GeneratorHarness.RunAnalyzer(source);
        Diagnostic d = Assert.Single(diagnostics);
        Assert.Equal(id, d.Id);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal(underlined, source.Substring(d.Location.SourceSpan.Start, d.Location.SourceSpan.Length));
        return d;
    }

    [Fact]
    public void TG0020_forward_with_an_array_of_the_wrong_length()
    {
        Diagnostic d = Single("model.Forward(new int[9], new int[10]);", "TG0020", "new int[9]");
        Assert.Equal("M.Forward needs Batch·SeqLen = 2·5 = 10 ids in 'tokens', but this argument has 9", d.GetMessage());
    }

    [Fact]
    public void TG0020_forward_with_an_initialized_array_or_stackalloc()
    {
        Single("model.Forward(new[] { 1, 2, 3 }, anything);", "TG0020", "new[] { 1, 2, 3 }");
        Diagnostic d = Single("model.Forward(anything, stackalloc int[12]);", "TG0020", "stackalloc int[12]");
        Assert.Contains("in 'targets', but this argument has 12", d.GetMessage());
        Single("Span<int> t = stackalloc int[10]; model.Forward(t, stackalloc int[] { 1, 2 });", "TG0020", "stackalloc int[] { 1, 2 }");
    }

    [Fact]
    public void TG0021_append_longer_than_the_window()
    {
        Diagnostic d = Single("model.Append(new int[6]);", "TG0021", "new int[6]");
        Assert.Equal("M.Append takes 1 to SeqLen = 5 tokens at a time, but this argument has 6", d.GetMessage());
    }

    [Fact]
    public void Correct_or_unknown_lengths_are_not_reported()
    {
        const int n = 10;
        Assert.Empty(GeneratorHarness.RunAnalyzer(Program($"model.Forward(new int[{n}], stackalloc int[2 * 5]); model.Forward(anything, anything); model.Append(new int[5]); model.Append(anything);")));
    }

    private const string EncoderDecoder = "Architecture = Architecture.EncoderDecoder, Vocab = 11, DModel = 12, Heads = 3, Layers = 1, DFF = 20, SeqLen = 5, TargetSeqLen = 4, Batch = 2, BosToken = 1";
    private const string Classifier = "Architecture = Architecture.EncoderOnly, Classes = 3, Vocab = 11, DModel = 12, Heads = 3, Layers = 1, DFF = 20, SeqLen = 5, Batch = 2";

    [Fact]
    public void TG0020_counts_targets_by_architecture()
    {
        Diagnostic d = Single("model.Forward(new int[10], new int[9]);", "TG0020", "new int[9]", EncoderDecoder);
        Assert.Equal("M.Forward needs Batch·TargetSeqLen = 2·4 = 8 ids in 'targets', but this argument has 9", d.GetMessage());

        d = Single("model.Forward(new int[10], new int[9]);", "TG0020", "new int[9]", Classifier);
        Assert.Equal("M.Forward needs Batch (one class per sequence) = 2 ids in 'targets', but this argument has 9", d.GetMessage());

        Assert.Empty(GeneratorHarness.RunAnalyzer(Program("model.Forward(new int[10], new int[8]);", EncoderDecoder)));
        Assert.Empty(GeneratorHarness.RunAnalyzer(Program("model.Forward(new int[10], new int[2]);", Classifier)));
        Assert.Empty(GeneratorHarness.RunAnalyzer(Program("model.Forward(new int[10], new int[10]);", Classifier + ", Head = EncoderHead.Tagging")));
    }

    [Fact]
    public void TG0021_an_encoder_decoder_appends_at_most_TargetSeqLen()
    {
        Diagnostic d = Single("model.Append(new int[5]);", "TG0021", "new int[5]", EncoderDecoder);
        Assert.Equal("M.Append takes 1 to TargetSeqLen = 4 tokens at a time, but this argument has 5", d.GetMessage());
        Assert.Empty(GeneratorHarness.RunAnalyzer(Program("model.Append(new int[4]);", EncoderDecoder)));
    }
}
