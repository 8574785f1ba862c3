using System.Collections.Immutable;
using System.Linq;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using TransformerGen;
using TransformerGen.Generator;

BenchmarkSwitcher.FromAssembly(typeof(GeneratorBenchmarks).Assembly).Run(args);

/// <summary>
/// How long the generator takes for a 12-layer model: a cold run (a new driver: parse, validate, lower, plan,
/// emit) and a warm run after an unrelated edit (everything cached). The target for the cold run is 100 ms.
/// </summary>
[MemoryDiagnoser]
public class GeneratorBenchmarks
{
    private const string Model = """
        using TransformerGen;
        namespace Bench;
        [TransformerModel(Vocab = 4096, DModel = 768, Heads = 12, Layers = 12, DFF = 3072, SeqLen = 256, Batch = 4,
            Positional = Positional.Rotary, Norm = NormPlacement.Pre, Dropout = 0.1f)]
        public partial class Gpt12 { }
        """;

    private CSharpCompilation _compilation = null!;
    private CSharpCompilation _edited = null!;
    private GeneratorDriver _warm = null!;

    [GlobalSetup]
    public void Setup()
    {
        var references = Basic.Reference.Assemblies.Net100.References.All.Cast<MetadataReference>()
            .Append(MetadataReference.CreateFromFile(typeof(TransformerModelAttribute).Assembly.Location))
            .Append(MetadataReference.CreateFromFile(typeof(TransformerModel).Assembly.Location));
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        _compilation = CSharpCompilation.Create("Bench",
            [CSharpSyntaxTree.ParseText(Model, parse), CSharpSyntaxTree.ParseText("class Other { int F() => 1; }", parse)],
            references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        SyntaxTree other = _compilation.SyntaxTrees[1];
        _edited = _compilation.ReplaceSyntaxTree(other, other.WithChangedText(Microsoft.CodeAnalysis.Text.SourceText.From("class Other { int F() => 2; }")));
        _warm = CreateDriver().RunGenerators(_compilation);
    }

    private static GeneratorDriver CreateDriver() =>
        CSharpGeneratorDriver.Create([new TransformerModelGenerator().AsSourceGenerator()], parseOptions: new CSharpParseOptions(LanguageVersion.Latest));

    /// <summary>Everything from scratch, as on the first build.</summary>
    [Benchmark(Baseline = true)]
    public GeneratorDriverRunResult Cold12Layers() => CreateDriver().RunGenerators(_compilation).GetRunResult();

    /// <summary>An edit in another file: the pipeline's cached values are reused.</summary>
    [Benchmark]
    public GeneratorDriverRunResult WarmAfterUnrelatedEdit() => _warm.RunGenerators(_edited).GetRunResult();
}
