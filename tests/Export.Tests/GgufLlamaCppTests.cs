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

    internal static string Config(string name) => Path.Combine(AppContext.BaseDirectory, "Configs", name, "config.json");

    [Theory]
    [InlineData("llama-gqa")]
    [InlineData("llama-mqa")]
    [InlineData("qwen2")]
    [InlineData("llama-blocks")]
    [InlineData("qwen2-blocks")]
    [InlineData("qwen3")]
    [InlineData("qwen3-blocks")]
    [InlineData("phi3")]
    [InlineData("phi3-blocks")]
    public void F32ExportGivesOurLogits(string config)
    {
        LanguageModel model = Build(config);
        int[] tokens = TestData.Tokens(model.Layout.SeqLen, model.Layout.Vocab, seed: 7);
        (string path, GgufExportReport report) = Export(model, config, GgufTensorType.F32);
        Assert.Equal(config.StartsWith("qwen3", StringComparison.Ordinal) ? "qwen3" : config.StartsWith("phi3", StringComparison.Ordinal) ? "phi3" : "llama", report.Architecture);
        Assert.All(report.Tensors, t => Assert.Equal(GgufTensorType.F32, t.Type));
        double relative = Relative(Ours(model, tokens), LlamaCpp.Logits(path, tokens));
        output.WriteLine($"{model.Layout.Name} F32: relative {relative:G3}");
        Assert.True(relative < 1e-4, $"relative {relative}");
    }

    /// <summary>
    /// GPT-2 in llama.cpp differs from ours by more than rounding, and only through its GELU: ggml's CPU GELU looks the input
    /// up in a table of fp16 values indexed by the input rounded to fp16 (GGML_GELU_FP16 in ggml-cpu/vec.h), a relative
    /// error up to about 2⁻¹¹ per activation. A double-precision GPT-2 written out here (Gpt2Reference) shows it: with the
    /// tanh GELU it gives our logits, with ggml's table llama.cpp's, each within 1e-5 of the largest; our logits and
    /// llama.cpp's then differ by the table alone (measured 1.8e-4 and 1.35e-4), bounded here by 1e-3.
    /// </summary>
    [Theory]
    [InlineData("gpt2")]
    [InlineData("gpt2-blocks")]
    public void F32Gpt2ExportDiffersOnlyByGgmlsFp16Gelu(string config)
    {
        LanguageModel model = Build(config);
        int[] tokens = TestData.Tokens(model.Layout.SeqLen, model.Layout.Vocab, seed: 7);
        (string path, GgufExportReport report) = Export(model, config, GgufTensorType.F32);
        Assert.Equal("gpt2", report.Architecture);
        float[][] ours = Ours(model, tokens), theirs = LlamaCpp.Logits(path, tokens);
        GgufHyperparameters h = GgufHyperparameters.FromConfig(Config(config));
        float[][] tanhReference = Gpt2Reference.Logits(model, h.Heads, h.NormEpsilon, tokens, Gpt2Reference.TanhGelu);
        float[][] ggmlReference = Gpt2Reference.Logits(model, h.Heads, h.NormEpsilon, tokens, Gpt2Reference.GgmlGelu);
        double relative = Relative(ours, theirs), oursToTanh = Relative(ours, tanhReference), theirsToTable = Relative(ggmlReference, theirs);
        output.WriteLine($"{model.Layout.Name} F32: relative {relative:G3}; ours vs the tanh reference {oursToTanh:G3}; llama.cpp vs the fp16-table reference {theirsToTable:G3}");
        Assert.True(oursToTanh < 1e-5, $"ours vs the tanh reference: {oursToTanh}");
        Assert.True(theirsToTable < 1e-5, $"llama.cpp vs the fp16-table reference: {theirsToTable}");
        Assert.True(relative < 1e-3, $"relative {relative}");
    }

    /// <summary>
    /// BF16 and Q8_0 files: llama.cpp's logits against ours in fp32 (the gap a user sees), and against ours with the
    /// weights rounded as the file holds them (what is left is llama.cpp's arithmetic: it rounds activations to bf16, or
    /// to Q8_0 blocks, before each product with such weights).
    /// </summary>
    [Theory]
    [InlineData("llama-blocks", GgufTensorType.BF16)]
    [InlineData("qwen2-blocks", GgufTensorType.BF16)]
    [InlineData("gpt2-blocks", GgufTensorType.BF16)]
    [InlineData("llama-gqa", GgufTensorType.BF16)]
    [InlineData("qwen3-blocks", GgufTensorType.BF16)]
    [InlineData("qwen3", GgufTensorType.BF16)]
    [InlineData("phi3-blocks", GgufTensorType.BF16)]
    [InlineData("phi3", GgufTensorType.BF16)]
    [InlineData("llama-blocks", GgufTensorType.Q8_0)]
    [InlineData("qwen2-blocks", GgufTensorType.Q8_0)]
    [InlineData("gpt2-blocks", GgufTensorType.Q8_0)]
    [InlineData("qwen3-blocks", GgufTensorType.Q8_0)]
    [InlineData("phi3-blocks", GgufTensorType.Q8_0)]
    [InlineData("gemma3-llamacpp", GgufTensorType.BF16)]
    [InlineData("gemma3-blocks", GgufTensorType.BF16)]
    [InlineData("gemma3-blocks", GgufTensorType.Q8_0)]
    public void ReducedPrecisionExportHoldsTheRoundedWeights(string config, GgufTensorType type)
    {
        LanguageModel model = Build(config);
        int[] tokens = TestData.Tokens(model.Layout.SeqLen, model.Layout.Vocab, seed: 7);
        (string path, GgufExportReport report) = Export(model, config, type);
        float[][] theirs = LlamaCpp.Logits(path, tokens);
        double fromFp32 = Relative(Ours(model, tokens), theirs);
        int matrices = 0;
        foreach (ParameterTensor t in model.ParameterTensors) if (!t.IsVector) matrices++;
        Assert.Equal(matrices, ReducedPrecision.Apply(model, report));
        double fromRounded = Relative(Ours(model, tokens), theirs);
        output.WriteLine($"{model.Layout.Name} {type}: relative {fromFp32:G3} from our fp32 logits, {fromRounded:G3} from ours with the file's weights");
        // A bf16 weight or activation is within 2⁻⁹ of itself; a Q8_0 one within 1/254 of its block's largest (about 1/100 of
        // a typical value). Products, norms and softmax pass such errors on without growing them much at unit scale: the
        // gap must stay within 8 units (bf16: 1.6e-2) or 16 (Q8_0: 6.3e-2). Measured: bf16 2.3e-3..6.8e-3, Q8_0 6.3e-3..2.0e-2.
        double bound = type == GgufTensorType.BF16 ? 8 * Math.Pow(2, -9) : 16 / 254.0;
        Assert.True(fromFp32 < bound, $"{fromFp32} from our fp32 logits, bound {bound}");
        Assert.True(fromRounded < fromFp32, $"{fromRounded} vs {fromFp32}");
    }

    /// <summary>
    /// The source of truth for the row pairing: llama.cpp's llama architecture rotates adjacent pairs (its NORM rope). With the
    /// query and key rows left in Hugging Face's rotate_half order, llama.cpp agrees with us at position 0, where rotation is
    /// the identity, and nowhere after.
    /// </summary>
    [Fact]
    public void WithoutTheRotaryPairingLlamaCppDisagrees()
    {
        LanguageModel model = Build("llama-blocks");
        int[] tokens = TestData.Tokens(model.Layout.SeqLen, model.Layout.Vocab, seed: 7);
        float[][] ours = Ours(model, tokens);
        const int headDim = 32;
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            if (!t.Name.Contains("q_proj", StringComparison.Ordinal) && !t.Name.Contains("k_proj", StringComparison.Ordinal)) continue;
            // Move row 2i + j of each head to j·D/2 + i: the export's pairing then writes the rows back in their own order.
            Span<float> w = model.Parameters.Slice(t.Offset, t.Length);
            int row = t.Shape[1];
            float[] copy = w.ToArray();
            for (int head = 0; head < t.Shape[0] / headDim; head++)
                for (int i = 0; i < headDim / 2; i++)
                    for (int j = 0; j < 2; j++)
                        copy.AsSpan((head * headDim + 2 * i + j) * row, row).CopyTo(w.Slice((head * headDim + j * headDim / 2 + i) * row, row));
        }
        (string path, _) = Export(model, "llama-blocks", GgufTensorType.F32);
        float[][] theirs = LlamaCpp.Logits(path, tokens);
        double first = Relative(ours[..1], theirs[..1]), all = Relative(ours, theirs);
        output.WriteLine($"rotate_half rows in the file: relative {first:G3} at position 0, {all:G3} over all positions");
        Assert.True(first < 1e-5, $"position 0: {first}");
        Assert.True(all > 1e-2, $"all positions: {all}");
    }

    /// <summary>
    /// The other side of the pairing: llama.cpp's qwen3 rotates (i, i + D/2), as Hugging Face does (LLAMA_ROPE_TYPE_NEOX), so
    /// the export writes Qwen3's rows unpermuted. A Qwen3 whose query and key rows (and q_norm, k_norm with them) are put
    /// in adjacent pairs, as the llama export would write them, agrees with us at position 0 only.
    /// </summary>
    [Fact]
    public void Qwen3RowsPairedAsForLlamaDisagreeAfterPositionZero()
    {
        LanguageModel model = Build("qwen3-blocks");
        int[] tokens = TestData.Tokens(model.Layout.SeqLen, model.Layout.Vocab, seed: 7);
        float[][] ours = Ours(model, tokens);
        const int headDim = 32;
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            if (!t.Name.Contains("self_attn.q_", StringComparison.Ordinal) && !t.Name.Contains("self_attn.k_", StringComparison.Ordinal)) continue;
            // q_proj, k_proj [heads·D, in] and q_norm, k_norm [D]: the llama pairing, head by head.
            Span<float> w = model.Parameters.Slice(t.Offset, t.Length);
            int rowLength = t.IsVector ? 1 : t.Shape[1];
            GgufExport.RotaryPairRows(w, t.Length / (headDim * rowLength), headDim, rowLength).CopyTo(w);
        }
        (string path, _) = Export(model, "qwen3-blocks", GgufTensorType.F32);
        float[][] theirs = LlamaCpp.Logits(path, tokens);
        double first = Relative(ours[..1], theirs[..1]), all = Relative(ours, theirs);
        output.WriteLine($"qwen3 rows in adjacent pairs: relative {first:G3} at position 0, {all:G3} over all positions");
        Assert.True(first < 1e-5, $"position 0: {first}");
        Assert.True(all > 1e-2, $"all positions: {all}");
    }

    private (string Path, GgufExportReport Report) Export(LanguageModel model, string config, GgufTensorType type)
    {
        string path = Path.Combine(_folder, $"{model.Layout.Name}.{type}.gguf");
        GgufExportReport report = Save(model, path, config, type);
        Assert.Equal(new FileInfo(path).Length, report.Bytes);
        return (path, report);
    }

    /// <summary>
    /// Saves <paramref name="model"/> with <paramref name="config"/>'s hyperparameters and the synthetic vocabulary, named
    /// "test model": llama.cpp reads a name containing "phi3" (as the Phi-3 test models' class names do) as a Phi-3's and
    /// then looks up Phi-3's tokens, which the synthetic vocabulary has not (the export refuses that pair; Phi3ExportTests).
    /// </summary>
    internal static GgufExportReport Save(LanguageModel model, string path, string config, GgufTensorType type = GgufTensorType.F32) =>
        model.SaveGguf(path, new GgufExportOptions { Hyperparameters = GgufHyperparameters.FromConfig(Config(config)), TensorType = type, Name = "test model" });

    /// <summary>Our next-token logits after each of <paramref name="tokens"/>, through the key/value cache.</summary>
    internal static float[][] Ours(LanguageModel model, int[] tokens)
    {
        model.ResetCache();
        var logits = new float[tokens.Length][];
        for (int t = 0; t < tokens.Length; t++) logits[t] = model.Append(tokens.AsSpan(t, 1)).ToArray();
        return logits;
    }

    /// <summary>Largest |ours − theirs| over every position and id, divided by the largest |ours|.</summary>
    internal static double Relative(float[][] ours, float[][] theirs)
    {
        Assert.Equal(ours.Length, theirs.Length);
        double worst = 0, largest = 0;
        for (int t = 0; t < ours.Length; t++)
        {
            Assert.Equal(ours[t].Length, theirs[t].Length);
            for (int v = 0; v < ours[t].Length; v++)
            {
                Assert.True(float.IsFinite(theirs[t][v]), $"llama.cpp gave {theirs[t][v]} at position {t}, id {v}");
                worst = Math.Max(worst, Math.Abs(ours[t][v] - theirs[t][v]));
                largest = Math.Max(largest, Math.Abs(ours[t][v]));
            }
        }
        return worst / largest;
    }

    /// <summary>
    /// A model of <paramref name="config"/> with random weights. A training instance: its parameters are always in PyTorch's
    /// layout, so the tests can write and read them directly (an inference instance may hold its matrices in the kernels'
    /// own layout; <see cref="GgufFileTests.InferenceInstancesExportTheSameFile"/> covers those).
    /// </summary>
    internal static LanguageModel Build(string config)
    {
        LanguageModel model = config switch
        {
            "llama-gqa" => new LlamaGqaModel(1),
            "llama-mqa" => new LlamaMqaModel(1),
            "qwen2" => new Qwen2Model(1),
            "gpt2" => new Gpt2Model(1),
            "llama-blocks" => new LlamaBlocksModel(1),
            "qwen2-blocks" => new Qwen2BlocksModel(1),
            "gpt2-blocks" => new Gpt2BlocksModel(1),
            "qwen3" => new Qwen3Model(1),
            "qwen3-blocks" => new Qwen3BlocksModel(1),
            "qwen3-bias" => new Qwen3BiasModel(1),
            "phi3" => new Phi3Model(1),
            "phi3-blocks" => new Phi3BlocksModel(1),
            "phi3-head-dim" => new Phi3HeadDimModel(1),
            "gemma3-llamacpp" => new Gemma3LlamaCppModel(1),
            "gemma3-blocks" => new Gemma3BlocksModel(1),
            "gemma3-bias" => new Gemma3BiasModel(1),
            "llama3-scaled" => new Llama3ScaledModel(1),
            "llama-linear" => new LlamaLinearModel(1),
            "qwen2-yarn-blocks" => new Qwen2YarnModel(1),
            "qwen3-yarn" => new Qwen3YarnModel(1),
            "phi3-longrope-blocks" => new Phi3LongRopeModel(1),
            _ => throw new ArgumentException(config, nameof(config)),
        };
        Weights.Randomize(model, seed: 3);
        return model;
    }
}
