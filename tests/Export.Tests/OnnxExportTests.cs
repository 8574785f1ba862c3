using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Export.Tests;

/// <summary>
/// Exports decoders and encoders to ONNX, runs the files in ONNX Runtime 1.32.0 (CPU, optimization level ALL) and compares
/// its outputs with ours on the same weights: logits for decoders, sentence embeddings, last hidden states and class logits
/// for encoders, each within 1e-5 of the largest value (the bound the issue sets).
/// </summary>
public sealed partial class OnnxExportTests(ITestOutputHelper output) : IDisposable
{
    private const double Tolerance = 1e-5;
    private readonly string _folder = Directory.CreateTempSubdirectory("onnx-export-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>Each model, its Hugging Face config (null for this project's own models) and its padding id.</summary>
    private static (TransformerModel Model, string? Config) Build(string name)
    {
        TransformerModel model = name switch
        {
            "gpt2" => new OnnxGpt2(1),
            "bert" => new OnnxBert(1),
            "bert-cls" => new OnnxBertCls(1),
            "roberta" => new OnnxRoberta(1),
            "electra" => new OnnxElectra(1),
            "electra-cls" => new OnnxElectraCls(1),
            "llama-gqa" => new OnnxLlamaGqa(1),
            "llama-mqa" => new OnnxLlamaMqa(1),
            "qwen2" => new OnnxQwen2(1),
            "qwen3" => new OnnxQwen3(1),
            "qwen3-bias" => new OnnxQwen3Bias(1),
            "phi3" => new OnnxPhi3(1),
            "gemma3" => new ExportGemma3(1),
            "llama3-scaled" => new OnnxLlama3Scaled(1),
            "qwen2-yarn-blocks" => new OnnxQwen2Yarn(1),
            "phi3-longrope-blocks" => new OnnxPhi3LongRope(1),
            "native-rotary" => new OnnxNativeRotary(1),
            "native-windowed" => new OnnxNativeWindowed(1),
            "native-learned" => new OnnxNativeLearned(1),
            "native-classifier" => new OnnxNativeClassifier(1),
            "native-mean-classifier" => new OnnxNativeMeanClassifier(1),
            "native-tagger" => new OnnxNativeTagger(1),
            "native-embedder" => new OnnxNativeEmbedder(1),
            _ => throw new ArgumentException(name),
        };
        string? config = name.StartsWith("native-", StringComparison.Ordinal) ? null : name == "bert-cls" ? "bert" : name == "electra-cls" ? "electra" : name;
        Weights.Randomize(model, seed: 11);
        model.Training = false;
        return (model, config is null ? null : GgufLlamaCppTests.Config(config));
    }

    private string Export(TransformerModel model, string? config, OnnxWeightFormat weights = OnnxWeightFormat.Float32)
    {
        string path = Path.Combine(_folder, $"{model.Layout.Name}.{weights}.onnx");
        OnnxExportReport report = OnnxExport.Save(model, path, new OnnxExportOptions { Config = config, Weights = weights });
        Assert.Equal(new FileInfo(path).Length, report.Bytes);
        Assert.Equal(17, report.Opset);
        return path;
    }

    /// <summary>Ids in [1, vocab): none is the padding id 0 of the models that have one.</summary>
    private static int[] Tokens(ModelLayout layout, ulong seed)
    {
        var rng = new Rng(seed);
        var tokens = new int[layout.TokensPerStep];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = 1 + rng.NextInt(layout.Vocab - 1);
        return tokens;
    }

    private static long[] Mask(ModelLayout layout, int[] tokens) =>
        tokens.Select(t => layout.PadToken >= 0 && t == layout.PadToken ? 0L : 1L).ToArray();

    private static (string, long[])[] Inputs(OnnxRuntimeRunner runner, ModelLayout layout, int[] tokens, long[]? types = null)
    {
        var inputs = new List<(string, long[])> { ("input_ids", tokens.Select(t => (long)t).ToArray()), ("attention_mask", Mask(layout, tokens)) };
        if (runner.InputNames.Contains("token_type_ids")) inputs.Add(("token_type_ids", types ?? new long[tokens.Length]));
        return inputs.ToArray();
    }

    /// <summary>Our logits of a batched Forward, <c>[Batch·SeqLen, Vocab]</c>.</summary>
    private static float[] OurLogits(TransformerModel model, int[] tokens)
    {
        model.Forward(tokens, new int[model.Layout.TargetLength].Select(_ => -1).ToArray());
        return model.Logits.ToArray();
    }

    /// <summary>Largest |ours − theirs| over the rows kept (rows of <paramref name="width"/>), divided by the largest |ours|.</summary>
    private static double Relative(float[] ours, float[] theirs, int width, Func<int, bool>? keepRow = null)
    {
        Assert.Equal(ours.Length, theirs.Length);
        double worst = 0, largest = 0;
        for (int i = 0; i < ours.Length; i++)
        {
            if (keepRow is not null && !keepRow(i / width)) continue;
            Assert.True(float.IsFinite(theirs[i]), $"ONNX Runtime gave {theirs[i]} at {i}");
            worst = Math.Max(worst, Math.Abs(ours[i] - theirs[i]));
            largest = Math.Max(largest, Math.Abs(ours[i]));
        }
        Assert.True(largest > 0);
        return worst / largest;
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama-gqa")]
    [InlineData("llama-mqa")]
    [InlineData("qwen2")]
    [InlineData("qwen3")]
    [InlineData("qwen3-bias")]
    [InlineData("phi3")]
    [InlineData("gemma3")]
    [InlineData("native-rotary")]
    [InlineData("native-windowed")]
    [InlineData("native-learned")]
    public void DecoderLogitsMatchOurs(string name)
    {
        (TransformerModel model, string? config) = Build(name);
        ModelLayout layout = model.Layout;
        using var runner = new OnnxRuntimeRunner(Export(model, config));
        int[] tokens = Tokens(layout, seed: 3);
        float[] ours = OurLogits(model, tokens);
        float[] theirs = runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens))["logits"];
        double relative = Relative(ours, theirs, layout.Vocab);
        output.WriteLine($"{layout.Name}: {layout.Batch}×{layout.SeqLen} logits relative {relative:G3}");
        Assert.True(relative < Tolerance, $"relative {relative}");
    }

    /// <summary>The sequence axis is dynamic: a shorter batch gives our logits at its positions (causal, so ours from the full batch).</summary>
    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama-gqa")]
    [InlineData("qwen3")]
    [InlineData("phi3")]
    [InlineData("native-rotary")]
    [InlineData("native-windowed")]
    public void ShorterSequencesGiveTheSameLogits(string name)
    {
        (TransformerModel model, string? config) = Build(name);
        ModelLayout layout = model.Layout;
        using var runner = new OnnxRuntimeRunner(Export(model, config));
        int[] tokens = Tokens(layout, seed: 4);
        float[] ours = OurLogits(model, tokens);
        int n = layout.SeqLen - 4, v = layout.Vocab;
        int[] shortTokens = new int[layout.Batch * n];
        float[] oursShort = new float[layout.Batch * n * v];
        for (int b = 0; b < layout.Batch; b++)
        {
            tokens.AsSpan(b * layout.SeqLen, n).CopyTo(shortTokens.AsSpan(b * n));
            ours.AsSpan(b * layout.SeqLen * v, n * v).CopyTo(oursShort.AsSpan(b * n * v));
        }
        float[] theirs = runner.Run(layout.Batch, n, Inputs(runner, layout, shortTokens))["logits"];
        double relative = Relative(oursShort, theirs, v);
        output.WriteLine($"{layout.Name}: {layout.Batch}×{n} logits relative {relative:G3}");
        Assert.True(relative < Tolerance, $"relative {relative}");
    }

    /// <summary>LastPositionOnly: the logits of each row's last position, for a prefill.</summary>
    [Theory]
    [InlineData("qwen2")]
    [InlineData("native-learned")]
    public void LastPositionOnlyGivesTheLastRowOfLogits(string name)
    {
        (TransformerModel model, string? config) = Build(name);
        ModelLayout layout = model.Layout;
        string path = Path.Combine(_folder, "last.onnx");
        OnnxExportReport report = OnnxExport.Save(model, path, new OnnxExportOptions { Config = config, LastPositionOnly = true });
        Assert.Equal(["batch", "1", layout.Vocab.ToString(System.Globalization.CultureInfo.InvariantCulture)], report.Outputs.Single().Shape);
        using var runner = new OnnxRuntimeRunner(path);
        int[] tokens = Tokens(layout, seed: 13);
        float[] ours = OurLogits(model, tokens);
        int s = layout.SeqLen, v = layout.Vocab;
        float[] last = new float[layout.Batch * v];
        for (int b = 0; b < layout.Batch; b++) ours.AsSpan((b * s + s - 1) * v, v).CopyTo(last.AsSpan(b * v));
        float[] theirs = runner.Run(layout.Batch, s, Inputs(runner, layout, tokens))["logits"];
        double relative = Relative(last, theirs, v);
        output.WriteLine($"{layout.Name}: last-position logits relative {relative:G3}");
        Assert.True(relative < Tolerance, $"relative {relative}");
    }

    /// <summary>
    /// A padded batch: left padding, right padding and none, masked by attention_mask as the model masks its padding id.
    /// Rows of padding before the first real token see no key at all and are not compared (the model writes 0 there).
    /// </summary>
    [Fact]
    public void PaddedDecoderBatchMatchesOurs()
    {
        (TransformerModel model, string? config) = Build("native-rotary");
        ModelLayout layout = model.Layout;
        using var runner = new OnnxRuntimeRunner(Export(model, config));
        int[] tokens = Tokens(layout, seed: 5);
        int s = layout.SeqLen;
        for (int t = 0; t < 3; t++) tokens[t] = 0;            // sequence 0: three pads on the left
        for (int t = s - 4; t < s; t++) tokens[s + t] = 0;    // sequence 1: four on the right
        tokens[2 * s + 5] = 0;                                // sequence 2: one inside
        float[] ours = OurLogits(model, tokens);
        float[] theirs = runner.Run(layout.Batch, s, Inputs(runner, layout, tokens))["logits"];
        bool SeesAKey(int row) => Enumerable.Range(row / s * s, row % s + 1).Any(i => tokens[i] != 0);
        double relative = Relative(ours, theirs, layout.Vocab, SeesAKey);
        output.WriteLine($"{layout.Name}: padded batch, relative {relative:G3}");
        Assert.True(relative < Tolerance, $"relative {relative}");
    }

    /// <summary>
    /// A model without a padding id (Llama): a right-padded batch in ONNX Runtime, the padding masked by attention_mask,
    /// gives each sequence's own logits at its real positions (the mask combined with the causal one; that masking changes
    /// what a query sees is shown by <see cref="PaddedDecoderBatchMatchesOurs"/>, with padding on the left and inside).
    /// </summary>
    [Fact]
    public void AttentionMaskHidesRightPaddingInALlama()
    {
        (TransformerModel model, string? config) = Build("llama-gqa");
        ModelLayout layout = model.Layout;
        using var runner = new OnnxRuntimeRunner(Export(model, config));
        int[] tokens = Tokens(layout, seed: 6);
        int s = layout.SeqLen, v = layout.Vocab, length = s - 5;
        float[] ours = OurLogits(model, tokens);
        long[] ids = tokens.Select(t => (long)t).ToArray();
        long[] mask = Enumerable.Repeat(1L, tokens.Length).ToArray();
        for (int t = length; t < s; t++) { ids[s + t] = 7; mask[s + t] = 0; } // sequence 1: other ids after its end, masked
        float[] theirs = runner.Run(layout.Batch, s, ("input_ids", ids), ("attention_mask", mask))["logits"];
        double relative = Relative(ours, theirs, v, row => row < s || row % s < length);
        output.WriteLine($"{layout.Name}: right-padded batch, relative {relative:G3}");
        Assert.True(relative < Tolerance, $"relative {relative}");
    }

    /// <summary>
    /// BERT as sentence-transformers runs it, pooled by the mean or from [CLS], RoBERTa (positions after its padding id) and
    /// ELECTRA (embeddings 20 wide, embeddings_project to the layers' 36), by the mean and from [CLS]: sentence embeddings
    /// and last hidden states of a padded batch.
    /// </summary>
    [Theory]
    [InlineData("bert")]
    [InlineData("bert-cls")]
    [InlineData("roberta")]
    [InlineData("electra")]
    [InlineData("electra-cls")]
    public void BertSentenceEmbeddingsMatchOurs(string name)
    {
        (TransformerModel model, string? config) = Build(name);
        var bert = (EncoderModel)model;
        ModelLayout layout = model.Layout;
        using var runner = new OnnxRuntimeRunner(Export(model, config));
        int s = layout.SeqLen, pad = layout.PadToken;
        int[] tokens = Tokens(layout, seed: 7).Select(t => t == pad ? pad + 1 : t).ToArray();
        for (int t = s - 5; t < s; t++) tokens[s + t] = pad;     // sequence 1: five pads
        for (int t = 2; t < s; t++) tokens[2 * s + t] = pad;      // sequence 2: two tokens only
        float[] ours = bert.Predict(tokens).ToArray();
        float[] oursHidden = model.LastHiddenState.ToArray();
        Dictionary<string, float[]> theirs = runner.Run(layout.Batch, s, Inputs(runner, layout, tokens));
        int width = layout.HiddenStateLength / (layout.Batch * s);
        double embeddings = Relative(ours, theirs["sentence_embedding"], width);
        double hidden = Relative(oursHidden, theirs["last_hidden_state"], width, row => tokens[row] != pad);
        output.WriteLine($"{layout.Name} ({layout.Pooling} pooling): sentence embeddings relative {embeddings:G3}, last hidden state (real tokens) {hidden:G3}");
        Assert.True(embeddings < Tolerance, $"sentence embeddings: relative {embeddings}");
        Assert.True(hidden < Tolerance, $"last hidden state: relative {hidden}");
    }

    /// <summary>
    /// token_type_ids select rows of the type table: ONNX Runtime with type 1 everywhere equals ours (which adds row 0, a
    /// single segment) after row 1 is copied over row 0.
    /// </summary>
    [Fact]
    public void BertTokenTypesSelectTheirRow()
    {
        (TransformerModel model, string? config) = Build("bert");
        ModelLayout layout = model.Layout;
        using var runner = new OnnxRuntimeRunner(Export(model, config));
        int[] tokens = Tokens(layout, seed: 8);
        long[] ones = Enumerable.Repeat(1L, tokens.Length).ToArray();
        float[] theirsTypeOne = runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens, ones))["sentence_embedding"];
        float[] theirsTypeZero = runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens))["sentence_embedding"];
        ParameterTensor types = model.ParameterTensors.Single(t => t.Name == "embeddings.token_type_embeddings.weight");
        Span<float> table = model.Parameters.Slice(types.Offset, types.Length);
        table.Slice(OnnxBert.DModel, OnnxBert.DModel).CopyTo(table);
        float[] ours = ((EncoderModel)model).Predict(tokens).ToArray();
        double relative = Relative(ours, theirsTypeOne, OnnxBert.DModel);
        output.WriteLine($"BERT token type 1: relative {relative:G3}; type 0 differs by {Relative(ours, theirsTypeZero, OnnxBert.DModel):G3}");
        Assert.True(relative < Tolerance, $"relative {relative}");
        Assert.True(Relative(ours, theirsTypeZero, OnnxBert.DModel) > 1e-3);
    }

    /// <summary>A shorter BERT batch equals ours with the same sentences padded to SeqLen.</summary>
    [Fact]
    public void ShorterBertBatchEqualsOursPadded()
    {
        (TransformerModel model, string? config) = Build("bert");
        ModelLayout layout = model.Layout;
        using var runner = new OnnxRuntimeRunner(Export(model, config));
        int s = layout.SeqLen, n = 6;
        int[] tokens = Tokens(layout, seed: 9);
        int[] shortTokens = new int[layout.Batch * n];
        for (int b = 0; b < layout.Batch; b++)
        {
            tokens.AsSpan(b * s, n).CopyTo(shortTokens.AsSpan(b * n));
            tokens.AsSpan(b * s + n, s - n).Clear();
        }
        float[] ours = ((EncoderModel)model).Predict(tokens).ToArray();
        float[] theirs = runner.Run(layout.Batch, n, Inputs(runner, layout, shortTokens))["sentence_embedding"];
        double relative = Relative(ours, theirs, OnnxBert.DModel);
        output.WriteLine($"BERT {layout.Batch}×{n}: relative {relative:G3}");
        Assert.True(relative < Tolerance, $"relative {relative}");
    }

    [Theory]
    [InlineData("native-classifier")]
    [InlineData("native-mean-classifier")]
    [InlineData("native-tagger")]
    [InlineData("native-embedder")]
    public void EncoderHeadsMatchOurs(string name)
    {
        (TransformerModel model, string? config) = Build(name);
        ModelLayout layout = model.Layout;
        using var runner = new OnnxRuntimeRunner(Export(model, config));
        int[] tokens = Tokens(layout, seed: 10);
        if (layout.PadToken >= 0)
            for (int t = layout.SeqLen - 3; t < layout.SeqLen; t++) tokens[layout.SeqLen + t] = layout.PadToken;
        float[] ours = ((EncoderModel)model).Predict(tokens).ToArray();
        Dictionary<string, float[]> theirs = runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens));
        string key = theirs.ContainsKey("sentence_embedding") ? "sentence_embedding" : "logits";
        int width = ours.Length / (key == "logits" && name == "native-tagger" ? layout.TokensPerStep : layout.Batch);
        double relative = Relative(ours, theirs[key], width);
        output.WriteLine($"{layout.Name}: {key} relative {relative:G3}");
        Assert.True(relative < Tolerance, $"relative {relative}");
    }

    /// <summary>8-bit blocks (MatMulNBits): a quarter-size file whose logits stay within the rounding of the weights.</summary>
    [Theory]
    [InlineData("llama-gqa")]
    [InlineData("qwen3")]
    [InlineData("phi3")]
    [InlineData("bert")]
    public void Int8BlocksStayCloseAndShrinkTheFile(string name)
    {
        (TransformerModel model, string? config) = Build(name);
        ModelLayout layout = model.Layout;
        string fp32 = Export(model, config), int8 = Export(model, config, OnnxWeightFormat.Int8Blocks);
        using var runner = new OnnxRuntimeRunner(int8);
        int[] tokens = Tokens(layout, seed: 12);
        string key = model is EncoderModel ? "sentence_embedding" : "logits";
        float[] ours = model is EncoderModel encoder ? encoder.Predict(tokens).ToArray() : OurLogits(model, tokens);
        float[] theirs = runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens))[key];
        double relative = Relative(ours, theirs, ours.Length / layout.Batch);
        long fp32Bytes = new FileInfo(fp32).Length, int8Bytes = new FileInfo(int8).Length;
        output.WriteLine($"{layout.Name} int8 blocks: relative {relative:G3}; {int8Bytes} bytes against {fp32Bytes}");
        Assert.True(relative < 3e-2, $"relative {relative}");
        Assert.True(relative > 1e-6, "the weights were not quantized");
    }

    [Fact]
    public void AFamilyModelNeedsItsConfig()
    {
        (TransformerModel model, _) = Build("llama-gqa");
        var e = Assert.Throws<ArgumentException>(() => OnnxExport.Save(model, Path.Combine(_folder, "x.onnx")));
        Assert.Contains("config.json", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => OnnxExport.Save(model, Path.Combine(_folder, "y.onnx"), new OnnxExportOptions { Config = GgufLlamaCppTests.Config("qwen2") }));
        Assert.False(File.Exists(Path.Combine(_folder, "x.onnx")));
    }

    /// <summary>An inference instance (matrices in panels) writes the same file as a training instance with the same weights.</summary>
    [Fact]
    public void AnInferenceInstanceExportsTheSameFile()
    {
        var training = new OnnxLlamaGqa(5);
        OnnxLlamaGqa inference = OnnxLlamaGqa.ForInference(5);
        string a = Path.Combine(_folder, "training.onnx"), b = Path.Combine(_folder, "inference.onnx");
        training.SaveOnnx(a, new OnnxExportOptions { Config = GgufLlamaCppTests.Config("llama-gqa") });
        inference.SaveOnnx(b, new OnnxExportOptions { Config = GgufLlamaCppTests.Config("llama-gqa") });
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        Assert.True(inference.WeightsPacked || inference.Layout.PackedMatrices.Length == 0);
    }
}
