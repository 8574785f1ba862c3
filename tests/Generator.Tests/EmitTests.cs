using System.Linq;
using Xunit;

namespace TransformerGen.Generator.Tests;

public class EmitTests
{
    [Theory]
    [InlineData("Positional = Positional.Sinusoidal, Norm = NormPlacement.Pre, Activation = Activation.Gelu")]
    [InlineData("Positional = Positional.Learned, Norm = NormPlacement.Post, Activation = Activation.Relu, TiedEmbeddings = false")]
    [InlineData("Positional = Positional.Rotary, Norm = NormPlacement.Pre, Dropout = 0.1f, LabelSmoothing = 0.1f")]
    public void Emitted_code_compiles_without_warnings(string options)
    {
        var result = GeneratorHarness.RunClean($$"""
            using TransformerGen;
            namespace Demo;
            [TransformerModel(Vocab = 11, DModel = 12, Heads = 3, Layers = 2, DFF = 20, SeqLen = 5, Batch = 2, {{options}})]
            public partial class Tiny { }
            """);
        Assert.Single(result.Run.GeneratedTrees);
        Assert.Contains(result.GeneratorDiagnostics, d => d.Id == "TG1000");
    }
}
