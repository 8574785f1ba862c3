using System;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using BenchmarkDotNet.Attributes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;
using TransformerGen;
using TransformerGen.Generator;

/// <summary>
/// How long the generator takes for a model compiled from a Hugging Face config.json: SmolLM2-135M's (Llama, 30 layers,
/// hidden 576, grouped-query attention 9/3, SwiGLU, tied embeddings; the same file as bench/Model.Bench's), given to
/// the driver as an AdditionalText as MSBuild's AdditionalFiles would, everything in memory. A cold run (a new driver:
/// read the config, validate, lower, plan, emit) and a warm run after an unrelated edit. The target for the cold run
/// is 100 ms.
/// </summary>
[MemoryDiagnoser]
public class HuggingFaceConfigBenchmarks
{
    private const string ConfigPath = "models/SmolLM2-135M/config.json";

    private const string Model = """
        using TransformerGen;
        namespace Bench;
        [TransformerModel(Config = "models/SmolLM2-135M/config.json", SeqLen = 128, Batch = 1)]
        public partial class SmolLm2 { }
        """;

    private CSharpCompilation _compilation = null!;
    private CSharpCompilation _edited = null!;
    private AdditionalText _config = null!;
    private GeneratorDriver _warm = null!;

    [GlobalSetup]
    public void Setup()
    {
        // The config file is linked into the output folder by the project (from bench/Model.Bench/models).
        _config = new InMemoryText("/bench/" + ConfigPath, File.ReadAllText(Path.Combine(AppContext.BaseDirectory, ConfigPath)));
        var references = Basic.Reference.Assemblies.Net100.References.All.Cast<MetadataReference>()
            .Append(MetadataReference.CreateFromFile(typeof(TransformerModelAttribute).Assembly.Location))
            .Append(MetadataReference.CreateFromFile(typeof(TransformerModel).Assembly.Location));
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        _compilation = CSharpCompilation.Create("Bench",
            [CSharpSyntaxTree.ParseText(Model, parse, path: "/bench/SmolLm2.cs"), CSharpSyntaxTree.ParseText("class Other { int F() => 1; }", parse, path: "/bench/Other.cs")],
            references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        SyntaxTree other = _compilation.SyntaxTrees[1];
        _edited = _compilation.ReplaceSyntaxTree(other, other.WithChangedText(SourceText.From("class Other { int F() => 2; }")));

        // The benchmark must time a successful generation: the model's source, and no error anywhere.
        _warm = CreateDriver().RunGeneratorsAndUpdateCompilation(_compilation, out Compilation output, out ImmutableArray<Diagnostic> diagnostics);
        GeneratorDriverRunResult result = _warm.GetRunResult();
        var errors = diagnostics.Concat(output.GetDiagnostics()).Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        if (errors.Count > 0 || !result.GeneratedTrees.Any(t => t.FilePath.Contains("SmolLm2", StringComparison.Ordinal)))
            throw new InvalidOperationException("the SmolLM2 declaration did not generate cleanly:\n" + string.Join("\n", errors));
        Console.WriteLine($"// generated: {result.GeneratedTrees.Length} files, {result.GeneratedTrees.Sum(t => t.GetText().Lines.Count)} lines");
    }

    private GeneratorDriver CreateDriver() =>
        CSharpGeneratorDriver.Create([new TransformerModelGenerator().AsSourceGenerator()], additionalTexts: [_config],
            parseOptions: new CSharpParseOptions(LanguageVersion.Latest));

    /// <summary>Everything from scratch, as on the first build.</summary>
    [Benchmark(Baseline = true)]
    public GeneratorDriverRunResult ColdSmolLm2FromConfig() => CreateDriver().RunGenerators(_compilation).GetRunResult();

    /// <summary>An edit in another file: the pipeline's cached values are reused.</summary>
    [Benchmark]
    public GeneratorDriverRunResult WarmSmolLm2AfterUnrelatedEdit() => _warm.RunGenerators(_edited).GetRunResult();

    private sealed class InMemoryText(string path, string text) : AdditionalText
    {
        public override string Path { get; } = path;
        public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(text, Encoding.UTF8);
    }
}
