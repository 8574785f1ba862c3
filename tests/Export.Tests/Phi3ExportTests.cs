using System;
using System.IO;
using Xunit;

namespace TransformerGen.Export.Tests;

/// <summary>Phi-3's fused projections have no place in either export yet: both refuse it with the reason and write nothing.</summary>
public sealed class Phi3ExportTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("tg-phi3-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Both_exports_refuse_Phi3_naming_its_fused_projections()
    {
        var model = new OnnxPhi3(1);
        string gguf = Path.Combine(_folder, "phi3.gguf"), onnx = Path.Combine(_folder, "phi3.onnx");
        var e = Assert.Throws<NotSupportedException>(() => model.SaveGguf(gguf, new GgufExportOptions
        {
            Hyperparameters = new GgufHyperparameters { Heads = 5, KeyValueHeads = 5, HeadDim = 6, NormEpsilon = 1e-5f },
        }));
        Assert.Contains("Phi3", e.Message);
        e = Assert.Throws<NotSupportedException>(() => model.SaveOnnx(onnx, new OnnxExportOptions { Config = GgufLlamaCppTests.Config("phi3") }));
        Assert.Contains("qkv_proj", e.Message);
        Assert.False(File.Exists(gguf));
        Assert.False(File.Exists(onnx));
    }
}
