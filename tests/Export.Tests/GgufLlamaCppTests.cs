using System;
using System.IO;
using TransformerGen.Model.Tests;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Export.Tests;

/// <summary>
/// Exports models compiled from Hugging Face configs to GGUF, runs the files in llama.cpp (LLamaSharp 0.30.0, its CPU
/// backend) and compares llama.cpp's logits at every position with ours from the key/value cache.
/// </summary>
public sealed class GgufLlamaCppTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("gguf-export-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string Config(string name) => Path.Combine(AppContext.BaseDirectory, "Configs", name, "config.json");

    /// <summary>Largest |ours − llama.cpp| over every position and id, divided by the largest |ours|.</summary>
    private (double Relative, double Largest) Compare(LanguageModel model, string config, GgufTensorType type, int[] tokens)
    {
        string path = Path.Combine(_folder, $"{model.Layout.Name}.{type}.gguf");
        GgufExportReport report = model.SaveGguf(path, Config(config), type);
        float[][] theirs = LlamaCpp.Logits(path, tokens);
        model.ResetCache();
        double worst = 0, largest = 0;
        for (int t = 0; t < tokens.Length; t++)
        {
            ReadOnlySpan<float> ours = model.Append(tokens.AsSpan(t, 1));
            Assert.Equal(ours.Length, theirs[t].Length);
            for (int v = 0; v < ours.Length; v++)
            {
                Assert.True(float.IsFinite(theirs[t][v]), $"llama.cpp gave {theirs[t][v]} at position {t}, id {v}");
                worst = Math.Max(worst, Math.Abs(ours[v] - theirs[t][v]));
                largest = Math.Max(largest, Math.Abs(ours[v]));
            }
        }
        output.WriteLine($"{model.Layout.Name} {type} ({report.Architecture}, {report.Bytes} bytes): max |Δ| {worst:G3}, largest |logit| {largest:G3}, relative {worst / largest:G3}");
        return (worst / largest, largest);
    }

    [Theory]
    [InlineData("llama-gqa")]
    [InlineData("llama-mqa")]
    [InlineData("qwen2")]
    [InlineData("llama-blocks")]
    [InlineData("qwen2-blocks")]
    public void F32ExportGivesOurLogits(string config)
    {
        LanguageModel model = Build(config);
        int[] tokens = TestData.Tokens(model.Layout.SeqLen, model.Layout.Vocab, seed: 7);
        (double relative, _) = Compare(model, config, GgufTensorType.F32, tokens);
        Assert.True(relative < 1e-4, $"relative {relative}");
    }

    /// <summary>
    /// GPT-2 in llama.cpp differs by more than rounding: ggml's CPU GELU reads a table indexed by the input rounded to fp16
    /// and returns an fp16 value (GGML_GELU_FP16 in ggml-cpu/vec.h), a relative error up to 2⁻¹¹ per activation.
    /// </summary>
    [Theory]
    [InlineData("gpt2")]
    [InlineData("gpt2-blocks")]
    public void F32Gpt2ExportDiffersOnlyByGgmlsFp16Gelu(string config)
    {
        LanguageModel model = Build(config);
        int[] tokens = TestData.Tokens(model.Layout.SeqLen, model.Layout.Vocab, seed: 7);
        (double relative, _) = Compare(model, config, GgufTensorType.F32, tokens);
        Assert.True(relative < 1e-3, $"relative {relative}");
    }

    internal static LanguageModel Build(string config)
    {
        LanguageModel model = config switch
        {
            "llama-gqa" => LlamaGqaModel.ForInference(1),
            "llama-mqa" => LlamaMqaModel.ForInference(1),
            "qwen2" => Qwen2Model.ForInference(1),
            "gpt2" => Gpt2Model.ForInference(1),
            "llama-blocks" => LlamaBlocksModel.ForInference(1),
            "qwen2-blocks" => Qwen2BlocksModel.ForInference(1),
            "gpt2-blocks" => Gpt2BlocksModel.ForInference(1),
            _ => throw new ArgumentException(config, nameof(config)),
        };
        TestData.Perturb(model, seed: 3);
        return model;
    }
}
