using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// Runs the generator on source text in memory, the way the compiler would, and compiles the result against
/// the real runtime, so that tests see exactly the diagnostics and code a user would.
/// </summary>
internal static class GeneratorHarness
{
    private static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    private static readonly ImmutableArray<MetadataReference> References =
    [
        .. Basic.Reference.Assemblies.Net100.References.All,
        MetadataReference.CreateFromFile(typeof(TransformerModelAttribute).Assembly.Location),
        MetadataReference.CreateFromFile(typeof(TransformerModel).Assembly.Location),
        MetadataReference.CreateFromFile(typeof(System.Numerics.Tensors.TensorPrimitives).Assembly.Location),
    ];

    public sealed record Result(
        GeneratorDriverRunResult Run,
        ImmutableArray<Diagnostic> GeneratorDiagnostics,
        ImmutableArray<Diagnostic> CompilationDiagnostics,
        Compilation Output,
        GeneratorDriver Driver)
    {
        public string GeneratedSource => string.Join("\n", Run.GeneratedTrees.Select(t => t.ToString()));

        /// <summary>Generator diagnostics except the TG1000 summary, which every valid model reports.</summary>
        public IEnumerable<Diagnostic> Problems => GeneratorDiagnostics.Where(d => d.Id != "TG1000");
    }

    public static CSharpCompilation CreateCompilation(params string[] sources) =>
        CSharpCompilation.Create("TestModels",
            sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, path: $"Model{i}.cs")),
            References,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

    public static GeneratorDriver CreateDriver(bool trackSteps = true, params AdditionalText[] additionalTexts) =>
        CreateDriver(trackSteps, additionalTexts, ImmutableDictionary<string, string>.Empty);

    /// <summary>A driver whose global options are <paramref name="globalOptions"/> (MSBuild's <c>build_property.*</c> keys).</summary>
    public static GeneratorDriver CreateDriver(bool trackSteps, AdditionalText[] additionalTexts, ImmutableDictionary<string, string> globalOptions) =>
        CSharpGeneratorDriver.Create(
            [new TransformerModelGenerator().AsSourceGenerator()],
            additionalTexts: additionalTexts,
            parseOptions: ParseOptions,
            optionsProvider: new OptionsProvider(globalOptions),
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: trackSteps));

    public static Result Run(params string[] sources) => RunWith([], sources);

    /// <summary>Runs with additional files (path, text), as MSBuild's AdditionalFiles items would give them.</summary>
    public static Result RunWith((string Path, string Text)[] additionalFiles, params string[] sources) =>
        RunWith(additionalFiles, ImmutableDictionary<string, string>.Empty, sources);

    /// <summary>Runs with additional files and the project's properties as the compiler sees them (<c>build_property.Name</c>).</summary>
    public static Result RunWith((string Path, string Text)[] additionalFiles, ImmutableDictionary<string, string> globalOptions, params string[] sources)
    {
        CSharpCompilation compilation = CreateCompilation(sources);
        AdditionalText[] texts = additionalFiles.Select(f => (AdditionalText)new InMemoryAdditionalText(f.Path, f.Text)).ToArray();
        GeneratorDriver driver = CreateDriver(true, texts, globalOptions).RunGeneratorsAndUpdateCompilation(compilation, out Compilation output, out ImmutableArray<Diagnostic> diagnostics);
        return new Result(driver.GetRunResult(), diagnostics, output.GetDiagnostics(), output, driver);
    }

    private sealed class OptionsProvider(ImmutableDictionary<string, string> global) : AnalyzerConfigOptionsProvider
    {
        private static readonly Options None = new(ImmutableDictionary<string, string>.Empty);

        public override AnalyzerConfigOptions GlobalOptions { get; } = new Options(global);
        public override AnalyzerConfigOptions GetOptions(SyntaxTree tree) => None;
        public override AnalyzerConfigOptions GetOptions(AdditionalText textFile) => None;
    }

    private sealed class Options(ImmutableDictionary<string, string> values) : AnalyzerConfigOptions
    {
        public override bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value) => values.TryGetValue(key, out value);
    }

    private sealed class InMemoryAdditionalText(string path, string text) : AdditionalText
    {
        public override string Path { get; } = path;
        public override Microsoft.CodeAnalysis.Text.SourceText GetText(System.Threading.CancellationToken cancellationToken = default) =>
            Microsoft.CodeAnalysis.Text.SourceText.From(text, Encoding.UTF8);
    }

    /// <summary>Runs the generator and requires clean output: no error or warning anywhere, else the numbered generated source is shown.</summary>
    public static Result RunClean(params string[] sources)
    {
        Result result = Run(sources);
        var bad = result.Problems.Concat(result.CompilationDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning)).ToList();
        if (bad.Count > 0)
            throw new Xunit.Sdk.XunitException("expected clean output, got:\n" + string.Join("\n", bad) + "\n\n" + Numbered(result.GeneratedSource));
        return result;
    }

    /// <summary>Runs the generator, then the call-site analyzer over the result, and returns the analyzer's diagnostics.</summary>
    public static ImmutableArray<Diagnostic> RunAnalyzer(string source)
    {
        Result result = Run(source);
        var analyzers = ImmutableArray.Create<DiagnosticAnalyzer>(new CallSiteAnalyzer());
        return result.Output.WithAnalyzers(analyzers).GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
    }

    /// <summary>Emits the output compilation to memory and loads it, to call the generated model.</summary>
    public static System.Reflection.Assembly Load(Result result)
    {
        using var stream = new MemoryStream();
        var emit = result.Output.Emit(stream);
        if (!emit.Success) throw new Xunit.Sdk.XunitException(string.Join("\n", emit.Diagnostics));
        var context = new System.Runtime.Loader.AssemblyLoadContext("generated", isCollectible: true);
        stream.Position = 0;
        return context.LoadFromStream(stream);
    }

    public static string Numbered(string source)
    {
        var text = new StringBuilder();
        string[] lines = source.Split('\n');
        for (int i = 0; i < lines.Length; i++) text.Append((i + 1).ToString().PadLeft(5)).Append("  ").Append(lines[i]).Append('\n');
        return text.ToString();
    }
}
