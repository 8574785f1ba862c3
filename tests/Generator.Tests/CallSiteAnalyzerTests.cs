using System.Linq;
using Microsoft.CodeAnalysis;
using Xunit;

namespace TransformerGen.Generator.Tests;

public class CallSiteAnalyzerTests
{
    private static string Program(string body) => $$"""
        using System;
        using TransformerGen;
        namespace Demo;
        [TransformerModel(Vocab = 11, DModel = 12, Heads = 3, Layers = 1, DFF = 20, SeqLen = 5, Batch = 2)]
        public partial class M { }
        public static class Use
        {
            public static void Run(M model, int[] anything)
            {
                {{body}}
            }
        }
        """;

    private static Diagnostic Single(string body, string id, string underlined)
    {
        string source = Program(body);
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
}
