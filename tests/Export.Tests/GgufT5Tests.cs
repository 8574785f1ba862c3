using System;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using TransformerGen.Model.Tests;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Export.Tests;

// T5 shaped for llama.cpp's t5 (Configs/README.md): distance 128 for the buckets, as llama.cpp fixes it; sources long
// enough that the encoder reaches its last bucket (distance 16 and up with 8 buckets), sizes no multiple of 16.
[TransformerModel(Config = "Export.Tests/Configs/t5-gguf/config.json", SeqLen = 21, TargetSeqLen = 19)]
public partial class GgufT5Model { }

[TransformerModel(Config = "Export.Tests/Configs/flan-t5-gguf/config.json", SeqLen = 23, TargetSeqLen = 18)]
public partial class GgufFlanT5Model { }

/// <summary>
/// Exports T5 (tied, ReLU) and Flan-T5 (untied, gated GELU) to GGUF, runs the files in llama.cpp (LLamaSharp 0.30.0:
/// <c>llama_encode</c>, then <c>llama_decode</c> from the file's decoder start id) and compares its logits and its greedy
/// decoding with ours (<see cref="Seq2SeqModel.Encode"/> and <see cref="Seq2SeqModel.Append"/>, <see cref="Seq2SeqModel.Translate"/>).
/// </summary>
public sealed class GgufT5Tests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("gguf-t5-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static Seq2SeqModel Build(string config)
    {
        Seq2SeqModel model = config switch
        {
            "t5-gguf" => new GgufT5Model(1),
            "flan-t5-gguf" => new GgufFlanT5Model(1),
            _ => throw new ArgumentException(config, nameof(config)),
        };
        Weights.Randomize(model, seed: 23);
        model.Training = false;
        return model;
    }

    private (string Path, GgufExportReport Report) Export(Seq2SeqModel model, string config, GgufTensorType type = GgufTensorType.F32)
    {
        string path = Path.Combine(_folder, $"{model.Layout.Name}.{type}.gguf");
        GgufExportReport report = model.SaveGguf(path, new GgufExportOptions
        {
            Hyperparameters = GgufHyperparameters.FromConfig(GgufLlamaCppTests.Config(config)), TensorType = type, Name = "test model",
        });
        Assert.Equal(new FileInfo(path).Length, report.Bytes);
        Assert.Equal("t5", report.Architecture);
        return (path, report);
    }

    /// <summary>A full-length source and teacher-forced decoder inputs from the start id, ids from 2 up (neither padding nor end).</summary>
    private static (int[] Source, int[] DecoderInputs) Inputs(ModelLayout layout, ulong seed)
    {
        var rng = new Rng(seed);
        int[] source = Enumerable.Range(0, layout.SeqLen).Select(_ => 2 + rng.NextInt(layout.Vocab - 2)).ToArray();
        int[] inputs = Enumerable.Range(0, layout.DecoderSeqLen).Select(_ => 2 + rng.NextInt(layout.TargetVocab - 2)).ToArray();
        inputs[0] = layout.BosToken;
        return (source, inputs);
    }

    private static float[][] Ours(Seq2SeqModel model, int[] source, int[] decoderInputs)
    {
        model.Encode(source);
        var logits = new float[decoderInputs.Length][];
        for (int i = 0; i < decoderInputs.Length; i++) logits[i] = model.Append(decoderInputs.AsSpan(i, 1)).ToArray();
        return logits;
    }

    /// <summary>
    /// llama.cpp's logits at every teacher-forced step equal ours. T5 (ReLU, tied: the file's own output.weight is shared ×
    /// d_model^−½) to 1e-4 of their range; Flan-T5 within ggml's fp16 GELU table's error (see the GPT-2 test in
    /// GgufLlamaCppTests), bounded by 1e-3. The file says t5's hyperparameters and the decoder start id.
    /// </summary>
    [Theory]
    [InlineData("t5-gguf", 1e-4)]
    [InlineData("flan-t5-gguf", 1e-3)]
    public void LlamaCppLogitsEqualOursAtEveryDecoderStep(string config, double bound)
    {
        Seq2SeqModel model = Build(config);
        ModelLayout layout = model.Layout;
        (string path, GgufExportReport report) = Export(model, config);
        bool tied = config == "t5-gguf";
        Assert.Contains(report.Tensors, t => t.Name == "output.weight" && t.ModelName == (tied ? "shared.weight" : "lm_head.weight"));
        Assert.Contains(report.Tensors, t => t.Name == "enc.blk.0.attn_rel_b.weight" && t.Dimensions.SequenceEqual(new long[] { tied ? 3 : 4, tied ? 8 : 10 }));
        Assert.Equal(tied, !report.Tensors.Any(t => t.Name.EndsWith("ffn_gate.weight", StringComparison.Ordinal)));

        (int[] source, int[] inputs) = Inputs(layout, 41);
        float[][] ours = Ours(model, source, inputs);
        (float[][] theirs, int start) = LlamaCpp.Seq2SeqLogits(path, source, inputs);
        Assert.Equal(layout.BosToken, start);
        double relative = GgufLlamaCppTests.Relative(ours, theirs);
        output.WriteLine($"{layout.Name}: source {source.Length}, {inputs.Length} decoder steps, relative {relative:G3}");
        Assert.True(relative < bound, $"relative {relative}");
    }

    /// <summary>
    /// BF16 files: every matrix but the relative-position tables (looked up, not multiplied) is BF16; llama.cpp's logits are
    /// within the decoder exports' bf16 bound (8·2⁻⁹) of our fp32 ones, and closer to ours with the file's rounded weights.
    /// </summary>
    [Theory]
    [InlineData("t5-gguf")]
    [InlineData("flan-t5-gguf")]
    public void Bf16ExportHoldsTheRoundedWeights(string config)
    {
        Seq2SeqModel model = Build(config);
        (string path, GgufExportReport report) = Export(model, config, GgufTensorType.BF16);
        Assert.All(report.Tensors, t => Assert.Equal(t.Dimensions.Count == 1 || t.Name.Contains("attn_rel_b", StringComparison.Ordinal) ? GgufTensorType.F32 : GgufTensorType.BF16, t.Type));
        (int[] source, int[] inputs) = Inputs(model.Layout, 43);
        (float[][] theirs, _) = LlamaCpp.Seq2SeqLogits(path, source, inputs);
        double fromFp32 = GgufLlamaCppTests.Relative(Ours(model, source, inputs), theirs);
        ReducedPrecision.Apply(model, report);
        double fromRounded = GgufLlamaCppTests.Relative(Ours(model, source, inputs), theirs);
        output.WriteLine($"{model.Layout.Name} BF16: relative {fromFp32:G3} from our fp32 logits, {fromRounded:G3} from ours with the file's weights");
        Assert.True(fromFp32 < 8 * Math.Pow(2, -9), $"{fromFp32} from our fp32 logits");
        Assert.True(fromRounded < fromFp32, $"{fromRounded} vs {fromFp32}");
    }

    /// <summary>Greedy decoding in llama.cpp (padding and start ids ruled out, as Translate rules them out) gives Translate's ids.</summary>
    [Theory]
    [InlineData("t5-gguf")]
    [InlineData("flan-t5-gguf")]
    public void GreedyDecodingThroughLlamaCppEqualsTranslate(string config)
    {
        Seq2SeqModel model = Build(config);
        ModelLayout layout = model.Layout;
        (string path, _) = Export(model, config);
        for (int r = 0; r < 3; r++)
        {
            (int[] source, _) = Inputs(layout, 60 + (ulong)r);
            source = source[..(layout.SeqLen - 4 * r)];
            var buffer = new int[layout.DecoderSeqLen];
            int[] ours = buffer.AsSpan(0, model.Translate(source, buffer)).ToArray();
            int[] theirs = LlamaCpp.Translate(path, source, layout.EosToken, layout.DecoderSeqLen, layout.PadToken, layout.BosToken);
            output.WriteLine($"{layout.Name} source of {source.Length}: ours [{string.Join(" ", ours)}], llama.cpp's [{string.Join(" ", theirs)}]");
            Assert.Equal(ours, theirs);
        }
    }

    /// <summary>
    /// What llama.cpp's t5 would compute otherwise, or not load, is refused, leaving no file: a max distance other than 128, an
    /// activation other than ReLU or gated gelu_new, more decoder than encoder blocks; and a config that contradicts the model
    /// (tied for the untied one, another T5's sizes).
    /// </summary>
    [Fact]
    public void ExportRefusesWhatLlamaCppWouldComputeOtherwise()
    {
        Seq2SeqModel flan = Build("flan-t5-gguf");
        string refused = Path.Combine(_folder, "refused.gguf");
        GgufHyperparameters Variant(Action<JsonObject> change)
        {
            JsonObject json = JsonNode.Parse(File.ReadAllText(GgufLlamaCppTests.Config("flan-t5-gguf")))!.AsObject();
            change(json);
            string variant = Path.Combine(_folder, $"variant-{Guid.NewGuid():N}.json");
            File.WriteAllText(variant, json.ToJsonString());
            return GgufHyperparameters.FromConfig(variant);
        }
        var e = Assert.Throws<NotSupportedException>(() => flan.SaveGguf(refused, new GgufExportOptions { Hyperparameters = Variant(j => j["relative_attention_max_distance"] = 24) }));
        Assert.Contains("128", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<NotSupportedException>(() => flan.SaveGguf(refused, new GgufExportOptions { Hyperparameters = Variant(j => j["dense_act_fn"] = "silu") }));
        Assert.Contains("silu", e.Message, StringComparison.Ordinal);
        var a = Assert.Throws<ArgumentException>(() => flan.SaveGguf(refused, new GgufExportOptions { Hyperparameters = Variant(j => j["tie_word_embeddings"] = true) }));
        Assert.Contains("tie_word_embeddings = True", a.Message, StringComparison.Ordinal);
        a = Assert.Throws<ArgumentException>(() => flan.SaveGguf(refused, GgufLlamaCppTests.Config("t5-gguf")));
        output.WriteLine(a.Message);

        // The reference fixture's T5 has 2 encoder and 3 decoder blocks (and distance 20, here made 128).
        var t5 = new OnnxT5(1);
        JsonObject fixture = JsonNode.Parse(File.ReadAllText(GgufLlamaCppTests.Config("t5")))!.AsObject();
        fixture["relative_attention_max_distance"] = 128;
        string fixturePath = Path.Combine(_folder, "t5-128.json");
        File.WriteAllText(fixturePath, fixture.ToJsonString());
        e = Assert.Throws<NotSupportedException>(() => t5.SaveGguf(refused, fixturePath));
        Assert.Contains("3 decoder blocks and 2 encoder blocks", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(refused));
    }
}
