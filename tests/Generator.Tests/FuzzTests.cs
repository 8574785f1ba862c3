using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// Thousands of random declarations — extreme and missing values, wrong argument types, undefined enums,
/// syntax errors around the attribute, wrong kinds of type — must each either generate code that compiles
/// without a diagnostic or produce only TG diagnostics; the generator never throws, and the compiler never
/// reports a generator failure (CS8785) or an analyzer crash (AD0001).
/// </summary>
public class FuzzTests(ITestOutputHelper output)
{
    private const int Declarations = 10_000;
    private const int PerCompilation = 125;

    private static readonly string[] SizeNames = ["Vocab", "DModel", "Heads", "Layers", "DFF", "SeqLen", "Batch"];

    [Fact]
    public async System.Threading.Tasks.Task Ten_thousand_random_declarations_never_break_the_build()
    {
        var random = new Random(20261123);
        int valid = 0, rejected = 0;
        var seenIds = new SortedSet<string>(StringComparer.Ordinal);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int batch = 0; batch < Declarations / PerCompilation; batch++)
        {
            var source = new StringBuilder("using TransformerGen;\nnamespace Fuzz;\n");
            for (int i = 0; i < PerCompilation; i++) source.Append(Declaration(random, $"M{batch}_{i}")).Append('\n');
            source.Append(CallSites(random, batch));

            var result = GeneratorHarness.Run(source.ToString());
            GeneratorRunResult run = result.Run.Results[0];
            Assert.True(run.Exception is null, $"batch {batch}: the generator threw {run.Exception}");
            foreach (Diagnostic d in result.GeneratorDiagnostics)
            {
                Assert.StartsWith("TG", d.Id);
                seenIds.Add(d.Id);
            }
            Assert.DoesNotContain(result.CompilationDiagnostics, d => d.Id is "CS8785" or "AD0001");
            // Whatever the user wrote, the generated files themselves compile without a single diagnostic.
            var generatedTrees = new HashSet<SyntaxTree>(run.GeneratedSources.Select(s => s.SyntaxTree));
            Diagnostic? inGenerated = result.CompilationDiagnostics.FirstOrDefault(d => d.Location.SourceTree is { } tree && generatedTrees.Contains(tree));
            Assert.True(inGenerated is null, $"batch {batch}: generated code has {inGenerated}\n{GeneratorHarness.Numbered(inGenerated?.Location.SourceTree?.ToString() ?? "")}");
            valid += run.GeneratedSources.Length;
            rejected += result.GeneratorDiagnostics.Count(d => d.Severity == DiagnosticSeverity.Error);

            var analyzerDiagnostics = await result.Output.WithAnalyzers([new CallSiteAnalyzer()]).GetAnalyzerDiagnosticsAsync();
            Assert.DoesNotContain(analyzerDiagnostics, d => d.Id == "AD0001");
        }
        output.WriteLine($"{Declarations} declarations in {clock.Elapsed.TotalSeconds:F1} s: {valid} generated, {rejected} TG errors; ids seen: {string.Join(", ", seenIds)}");
        Assert.True(valid > Declarations / 20, $"only {valid} declarations were valid: the fuzzer is not reaching the emitter");
        Assert.True(seenIds.Count >= 10, "the fuzzer reaches too few diagnostics: " + string.Join(", ", seenIds));
    }

    private static string Declaration(Random random, string name)
    {
        var arguments = new List<string>();
        foreach (string size in SizeNames)
        {
            string? value = SizeValue(random, size);
            if (value is not null) arguments.Add($"{size} = {value}");
        }
        if (random.Next(4) == 0) arguments.Add("Positional = " + Pick(random, "Positional.Sinusoidal", "Positional.Learned", "Positional.Rotary", "(Positional)7", "\"rotary\""));
        if (random.Next(4) == 0) arguments.Add("Norm = " + Pick(random, "NormPlacement.Pre", "NormPlacement.Post", "(NormPlacement)(-1)"));
        if (random.Next(4) == 0) arguments.Add("Activation = " + Pick(random, "Activation.Relu", "Activation.Gelu", "(Activation)2"));
        switch (random.Next(6))
        {
            case 0: arguments.Add("Architecture = " + Pick(random, "Architecture.DecoderOnly", "(Architecture)3")); break;
            case 1:
                arguments.Add("Architecture = Architecture.EncoderDecoder");
                if (random.Next(6) != 0) arguments.Add("BosToken = " + Pick(random, "1", "0", "-3", "99"));
                if (random.Next(2) == 0) arguments.Add("EosToken = " + Pick(random, "2", "-1", "1000"));
                if (random.Next(3) == 0) arguments.Add("TargetVocab = " + Pick(random, "7", "0", "-1", "13"));
                if (random.Next(3) == 0) arguments.Add("TargetSeqLen = " + Pick(random, "4", "0", "9"));
                if (random.Next(3) == 0) arguments.Add("EncoderLayers = " + Pick(random, "1", "2", "-1", "600"));
                if (random.Next(3) == 0) arguments.Add("DecoderLayers = " + Pick(random, "1", "3"));
                if (random.Next(8) == 0) arguments.Add("Classes = 3");
                break;
            case 2:
                arguments.Add("Architecture = Architecture.EncoderOnly");
                if (random.Next(6) != 0) arguments.Add("Classes = " + Pick(random, "2", "5", "0", "-2"));
                if (random.Next(3) == 0) arguments.Add("Head = " + Pick(random, "EncoderHead.Classification", "EncoderHead.Tagging", "(EncoderHead)4"));
                if (random.Next(3) == 0) arguments.Add("Pooling = " + Pick(random, "Pooling.FirstToken", "Pooling.Mean", "(Pooling)9"));
                if (random.Next(8) == 0) arguments.Add("BosToken = 1");
                break;
        }
        if (random.Next(4) == 0) arguments.Add("PadToken = " + Pick(random, "0", "-1", "3", "500"));
        if (random.Next(6) == 0) arguments.Add("AttentionWindow = " + Pick(random, "0", "1", "2", "-1"));
        if (random.Next(6) == 0) arguments.Add("ScaleEmbeddings = true");
        if (random.Next(6) == 0) arguments.Add("Sequences = " + Pick(random, "0", "1", "3", "-2", "70000"));
        if (random.Next(5) == 0) arguments.Add("Dropout = " + Pick(random, "0f", "0.1f", "1f", "-0.5f", "float.NaN", "float.PositiveInfinity", "0.999f", "0.5"));
        if (random.Next(5) == 0) arguments.Add("LabelSmoothing = " + Pick(random, "0f", "0.1f", "1f", "-1f", "float.NaN"));
        if (random.Next(6) == 0) arguments.Add("TiedEmbeddings = " + Pick(random, "true", "false", "1"));
        if (random.Next(40) == 0) arguments.Add("Unknown = 3");
        arguments = arguments.OrderBy(_ => random.Next()).ToList();

        string attribute = $"[TransformerModel({string.Join(", ", arguments)})]";
        string declaration = $"public partial class {name} {{ }}";
        switch (random.Next(30))
        {
            case 0: attribute = attribute.TrimEnd(']', ')'); break;                                  // unterminated
            case 1: declaration = $"public class {name} {{ }}"; break;                                 // not partial
            case 2: declaration = $"public partial struct {name} {{ }}"; break;
            case 3: declaration = $"public partial class {name}<T> {{ }}"; break;
            case 4: attribute += "\n" + attribute; break;                                             // twice
            case 5: declaration = $"public partial class {name} {{ public void Forward() {{ }} }}"; break;
            case 6: declaration = $"public partial class {name} : System.Exception {{ }}"; break;
            case 7: declaration = $"public static partial class {name} {{ }}"; break;
            case 8: attribute = attribute.Replace("(", "(,"); break;                                  // syntax error inside
            case 9: declaration = $"public partial record {name} {{ }}"; break;
        }
        return attribute + "\n" + declaration;
    }

    /// <summary>A size argument: usually small and valid, sometimes extreme, of a wrong type, or missing.</summary>
    private static string? SizeValue(Random random, string size)
    {
        int roll = random.Next(100);
        if (roll < 5) return null;
        if (roll < 15) return Pick(random, "0", "-1", "int.MaxValue", "int.MinValue", "1 << 20", "100000", "-2147483647");
        if (roll < 18) return Pick(random, "\"12\"", "1.5", "true", "null", "SomethingUndefined");
        return size switch
        {
            "Vocab" => random.Next(1, 40).ToString(),
            "DModel" => (random.Next(1, 9) * 4).ToString(),
            "Heads" => Pick(random, "1", "2", "3", "4", "5", "8"),
            "Layers" => random.Next(1, 4).ToString(),
            "DFF" => random.Next(1, 40).ToString(),
            "SeqLen" => random.Next(1, 12).ToString(),
            _ => random.Next(1, 4).ToString(),
        };
    }

    /// <summary>Calls into the first models of the batch, some with constant lengths, so the analyzer runs on every kind of model too.</summary>
    private static string CallSites(Random random, int batch)
    {
        var text = new StringBuilder("public static class Calls" + batch + "\n{\n");
        for (int i = 0; i < 5; i++)
        {
            text.Append($"    public static void C{i}(M{batch}_{i} m) {{ ");
            text.Append(Pick(random, "m.Forward(new int[10], new int[10]);", "m.Forward(stackalloc int[3], new[] { 1 });", "m.Append(new int[4]);", "m.ToString();"));
            text.Append(" }\n");
        }
        return text.Append("}\n").ToString();
    }

    private static string Pick(Random random, params string[] choices) => choices[random.Next(choices.Length)];
}
