using System;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using BenchmarkDotNet.Attributes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Emit;
using TransformerGen;
using TransformerGen.Generator;

/// <summary>
/// What depth costs at compile time (issue 15, "Deep stacks"): a decoder of DModel 256 (8 heads, FFN 1024, SeqLen 128)
/// at 2, 12, 24 and 48 layers, every layer unrolled with its sizes and offsets as literals. <c>Generate</c> times the
/// generator from scratch; <c>Compile</c> times the C# compiler emitting the assembly that holds the generated source
/// (Release, in memory), the part of a build that grows with the generated code. The targets: generator under 100 ms at
/// 48 layers. (The NativeAOT bytes per layer and the first training step under the JIT: bench/AotSize/measure.sh.)
/// </summary>
[MemoryDiagnoser]
public class DeepStackBenchmarks
{
    private CSharpCompilation _compilation = null!;
    private CSharpCompilation _generated = null!;

    [Params(2, 12, 24, 48)]
    public int Layers { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        string model = $$"""
            using TransformerGen;
            namespace Bench;
            [TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = {{Layers}}, DFF = 1024, SeqLen = 128)]
            public partial class Deep { }
            """;
        var references = Basic.Reference.Assemblies.Net100.References.All.Cast<MetadataReference>()
            .Append(MetadataReference.CreateFromFile(typeof(TransformerModelAttribute).Assembly.Location))
            .Append(MetadataReference.CreateFromFile(typeof(TransformerModel).Assembly.Location));
        _compilation = CSharpCompilation.Create("Deep",
            [CSharpSyntaxTree.ParseText(model, new CSharpParseOptions(LanguageVersion.Latest), path: "/bench/Deep.cs")],
            references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, optimizationLevel: OptimizationLevel.Release, allowUnsafe: true));
        CreateDriver().RunGeneratorsAndUpdateCompilation(_compilation, out Compilation output, out ImmutableArray<Diagnostic> diagnostics);
        _generated = (CSharpCompilation)output;
        // The benchmark must time a successful build: the model's source, and no error anywhere.
        var errors = diagnostics.Concat(_generated.GetDiagnostics()).Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        if (errors.Count > 0 || _generated.SyntaxTrees.Count() < 2)
            throw new InvalidOperationException($"the {Layers}-layer declaration did not generate cleanly:\n" + string.Join("\n", errors));
        int lines = _generated.SyntaxTrees.Skip(1).Sum(t => t.GetText().Lines.Count);
        Console.WriteLine($"// {Layers} layers: {lines} generated lines");
    }

    private static GeneratorDriver CreateDriver() =>
        CSharpGeneratorDriver.Create([new TransformerModelGenerator().AsSourceGenerator()], parseOptions: new CSharpParseOptions(LanguageVersion.Latest));

    /// <summary>The generator from scratch, as on the first build.</summary>
    [Benchmark]
    public GeneratorDriverRunResult Generate() => CreateDriver().RunGenerators(_compilation).GetRunResult();

    /// <summary>The C# compiler binding and emitting the declaration with its generated source (a fresh compilation each time, so nothing is cached).</summary>
    [Benchmark]
    public EmitResult Compile()
    {
        CSharpCompilation fresh = CSharpCompilation.Create("Deep", _generated.SyntaxTrees, _generated.References, _generated.Options);
        using var stream = new MemoryStream();
        EmitResult result = fresh.Emit(stream);
        if (!result.Success) throw new InvalidOperationException("the generated code did not compile");
        return result;
    }
}
