using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using Xunit;

namespace TransformerGen.Export.Tests;

/// <summary>
/// Encoder–decoder models (issue 14): the whole model, its encoder and its decoder exported to ONNX and run by ONNX Runtime
/// 1.32.0 on the same weights as ours: teacher-forced logits within 1e-5 of the largest (padded and shorter batches
/// included), greedy translation driven through ONNX Runtime token for token equal to <see cref="Seq2SeqModel.Translate"/>,
/// 8-bit blocks within the bound of the other int8 tests.
/// </summary>
public sealed partial class OnnxExportTests
{
    private static Seq2SeqModel BuildSeq2Seq(string name, ulong seed = 1)
    {
        Seq2SeqModel model = name switch
        {
            "paper" => new OnnxPaperSeq2Seq(seed),
            "rotary" => new OnnxRotarySeq2Seq(seed),
            "learned" => new OnnxLearnedSeq2Seq(seed),
            _ => throw new ArgumentException(name),
        };
        Weights.Randomize(model, seed: 17);
        model.Training = false;
        return model;
    }

    private (string Path, OnnxExportReport Report) ExportSeq2Seq(Seq2SeqModel model, OnnxSeq2SeqGraph graph = OnnxSeq2SeqGraph.Full,
        OnnxWeightFormat weights = OnnxWeightFormat.Float32, bool lastPositionOnly = false)
    {
        string path = Path.Combine(_folder, $"{model.Layout.Name}.{graph}.{weights}{(lastPositionOnly ? ".last" : "")}.onnx");
        OnnxExportReport report = model.SaveOnnx(path, new OnnxExportOptions { Seq2SeqGraph = graph, Weights = weights, LastPositionOnly = lastPositionOnly });
        Assert.Equal(new FileInfo(path).Length, report.Bytes);
        Assert.Equal(17, report.Opset);
        return (path, report);
    }

    /// <summary>
    /// Sources and targets with ids from 3 up (none is padding, begin or end); with a padding id, sequence 1 has four pads at
    /// the end of its source and three at the end of its target.
    /// </summary>
    private static (int[] Sources, int[] Targets) SourcesAndTargets(ModelLayout layout, ulong seed)
    {
        var rng = new Rng(seed);
        int s = layout.SeqLen, t = layout.DecoderSeqLen;
        var sources = new int[layout.Batch * s];
        var targets = new int[layout.Batch * t];
        for (int i = 0; i < sources.Length; i++) sources[i] = 3 + rng.NextInt(layout.Vocab - 3);
        for (int i = 0; i < targets.Length; i++) targets[i] = 3 + rng.NextInt(layout.TargetVocab - 3);
        if (layout.PadToken >= 0)
        {
            sources.AsSpan(2 * s - 4, 4).Fill(layout.PadToken);
            targets.AsSpan(2 * t - 3, 3).Fill(layout.PadToken);
        }
        return (sources, targets);
    }

    /// <summary>What teacher forcing feeds the decoder: each target shifted right behind the begin id (a padded target stays padding).</summary>
    private static int[] DecoderInputs(ModelLayout layout, int[] targets)
    {
        int t = layout.DecoderSeqLen;
        var inputs = new int[targets.Length];
        for (int b = 0; b < targets.Length / t; b++)
        {
            inputs[b * t] = layout.BosToken;
            targets.AsSpan(b * t, t - 1).CopyTo(inputs.AsSpan(b * t + 1));
        }
        return inputs;
    }

    private static string[] InitializerNames(string path) =>
        Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph.Initializer.Select(i => i.Name).ToArray();

    private static long[] Longs(int[] ids) => ids.Select(i => (long)i).ToArray();

    /// <summary>The whole graph's inputs for <paramref name="batch"/> rows of sources and decoder inputs; masks from the padding id.</summary>
    private static OnnxInput[] Seq2SeqInputs(ModelLayout layout, int batch, int[] sources, int[] decoderInputs)
    {
        int s = sources.Length / batch, t = decoderInputs.Length / batch;
        var inputs = new List<OnnxInput>
        {
            new("input_ids", Longs(sources), [batch, s]),
            new("attention_mask", Mask(layout, sources), [batch, s]),
            new("decoder_input_ids", Longs(decoderInputs), [batch, t]),
        };
        if (layout.PadToken >= 0) inputs.Add(new("decoder_attention_mask", Mask(layout, decoderInputs), [batch, t]));
        return inputs.ToArray();
    }

    private static float[] OurSeq2SeqLogits(Seq2SeqModel model, int[] sources, int[] targets)
    {
        model.Forward(sources, targets);
        return model.Logits.ToArray();
    }

    [Theory]
    [InlineData("paper")]
    [InlineData("rotary")]
    [InlineData("learned")]
    public void EncoderDecoderLogitsMatchOurs(string name)
    {
        Seq2SeqModel model = BuildSeq2Seq(name);
        ModelLayout layout = model.Layout;
        (string path, OnnxExportReport report) = ExportSeq2Seq(model);
        string[] inputs = layout.PadToken >= 0
            ? ["input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask"]
            : ["input_ids", "attention_mask", "decoder_input_ids"];
        Assert.Equal(inputs, report.Inputs.Select(i => i.Name));
        Assert.Equal(["logits", "encoder_last_hidden_state"], report.Outputs.Select(o => o.Name));
        Assert.Equal(["batch", "decoder_sequence", layout.TargetVocab.ToString(CultureInfo.InvariantCulture)], report.Outputs[0].Shape);
        using var runner = new OnnxRuntimeRunner(path);
        Assert.Equal(inputs, runner.InputNames);
        (int[] sources, int[] targets) = SourcesAndTargets(layout, seed: 21);
        float[] ours = OurSeq2SeqLogits(model, sources, targets);
        float[] theirs = runner.Run(Seq2SeqInputs(layout, layout.Batch, sources, DecoderInputs(layout, targets)))["logits"];
        double relative = Relative(ours, theirs, layout.TargetVocab);
        output.WriteLine($"{layout.Name}: {layout.Batch}×{layout.SeqLen} sources, {layout.Batch}×{layout.DecoderSeqLen} targets, logits relative {relative:G3}");
        Assert.True(relative < Tolerance, $"relative {relative}");
    }

    /// <summary>
    /// Both sequence axes are dynamic: a batch of shorter sources and shorter decoder inputs gives our logits of the same
    /// sources padded to SeqLen (the padding masked by attention_mask as the model masks its padding id) at the decoder's
    /// first positions (causal). With a mask of ones over the padded sources the logits differ: the mask is what hides them.
    /// </summary>
    [Theory]
    [InlineData("paper")]
    [InlineData("rotary")]
    public void ShorterSourcesAndTargetsGiveOurLogits(string name)
    {
        Seq2SeqModel model = BuildSeq2Seq(name);
        ModelLayout layout = model.Layout;
        using var runner = new OnnxRuntimeRunner(ExportSeq2Seq(model).Path);
        (int[] sources, int[] targets) = SourcesAndTargets(layout, seed: 22);
        int batch = layout.Batch, s = layout.SeqLen, n = s - 4, t = layout.DecoderSeqLen, m = t - 3, v = layout.TargetVocab;
        for (int b = 0; b < batch; b++) sources.AsSpan(b * s + n, s - n).Fill(layout.PadToken);
        float[] ours = OurSeq2SeqLogits(model, sources, targets);
        int[] decoderInputs = DecoderInputs(layout, targets);
        var shortSources = new int[batch * n];
        var shortDecoderInputs = new int[batch * m];
        var oursShort = new float[batch * m * v];
        for (int b = 0; b < batch; b++)
        {
            sources.AsSpan(b * s, n).CopyTo(shortSources.AsSpan(b * n));
            decoderInputs.AsSpan(b * t, m).CopyTo(shortDecoderInputs.AsSpan(b * m));
            ours.AsSpan(b * t * v, m * v).CopyTo(oursShort.AsSpan(b * m * v));
        }
        Assert.DoesNotContain(layout.PadToken, shortSources);
        float[] theirs = runner.Run(Seq2SeqInputs(layout, batch, shortSources, shortDecoderInputs))["logits"];
        double relative = Relative(oursShort, theirs, v);

        OnnxInput[] unmasked = Seq2SeqInputs(layout, batch, sources, decoderInputs);
        unmasked[1] = unmasked[1] with { Values = Enumerable.Repeat(1L, sources.Length).ToArray() };
        double withoutMask = Relative(ours, runner.Run(unmasked)["logits"], v);
        output.WriteLine($"{layout.Name}: {batch}×{n} sources, {batch}×{m} decoder inputs, relative {relative:G3}; padding unmasked {withoutMask:G3}");
        Assert.True(relative < Tolerance, $"relative {relative}");
        Assert.True(withoutMask > 1e-3, $"unmasked padding changed the logits by {withoutMask} only");
    }

    /// <summary>
    /// The encoder and decoder graphs (optimum's encoder_model.onnx and decoder_model.onnx) compose to the model: the
    /// encoder's last_hidden_state equals the whole graph's encoder_last_hidden_state, and the decoder over it gives our logits.
    /// </summary>
    [Theory]
    [InlineData("paper")]
    [InlineData("learned")]
    public void EncoderAndDecoderGraphsComposeToOurLogits(string name)
    {
        Seq2SeqModel model = BuildSeq2Seq(name);
        ModelLayout layout = model.Layout;
        (string encoderPath, OnnxExportReport encoderReport) = ExportSeq2Seq(model, OnnxSeq2SeqGraph.Encoder);
        (string decoderPath, OnnxExportReport decoderReport) = ExportSeq2Seq(model, OnnxSeq2SeqGraph.Decoder);
        Assert.Equal(["input_ids", "attention_mask"], encoderReport.Inputs.Select(i => i.Name));
        Assert.Equal(["last_hidden_state"], encoderReport.Outputs.Select(o => o.Name));
        string[] decoderInputs = layout.PadToken >= 0
            ? ["encoder_hidden_states", "encoder_attention_mask", "input_ids", "decoder_attention_mask"]
            : ["encoder_hidden_states", "encoder_attention_mask", "input_ids"];
        Assert.Equal(decoderInputs, decoderReport.Inputs.Select(i => i.Name));
        Assert.Equal(["logits"], decoderReport.Outputs.Select(o => o.Name));
        // Each graph holds its own stack's weights only.
        Assert.DoesNotContain(InitializerNames(encoderPath), n => n.StartsWith("decoder.", StringComparison.Ordinal) || n.StartsWith("target_", StringComparison.Ordinal));
        Assert.DoesNotContain(InitializerNames(decoderPath), n => n.StartsWith("encoder.", StringComparison.Ordinal) || n.StartsWith("source_", StringComparison.Ordinal));

        (int[] sources, int[] targets) = SourcesAndTargets(layout, seed: 24);
        int batch = layout.Batch, s = layout.SeqLen, t = layout.DecoderSeqLen;
        float[] ours = OurSeq2SeqLogits(model, sources, targets);
        using var whole = new OnnxRuntimeRunner(ExportSeq2Seq(model).Path);
        using var encoder = new OnnxRuntimeRunner(encoderPath);
        using var decoder = new OnnxRuntimeRunner(decoderPath);
        int[] decoderIds = DecoderInputs(layout, targets);
        Dictionary<string, float[]> wholeOutputs = whole.Run(Seq2SeqInputs(layout, batch, sources, decoderIds));
        float[] hidden = encoder.Run(new OnnxInput("input_ids", Longs(sources), [batch, s]), new OnnxInput("attention_mask", Mask(layout, sources), [batch, s]))["last_hidden_state"];
        int dModel = hidden.Length / (batch * s);
        double encoderRelative = Relative(wholeOutputs["encoder_last_hidden_state"], hidden, dModel);
        var inputs = new List<OnnxInput>
        {
            new("encoder_hidden_states", hidden, [batch, s, dModel]),
            new("encoder_attention_mask", Mask(layout, sources), [batch, s]),
            new("input_ids", Longs(decoderIds), [batch, t]),
        };
        if (layout.PadToken >= 0) inputs.Add(new("decoder_attention_mask", Mask(layout, decoderIds), [batch, t]));
        float[] theirs = decoder.Run(inputs.ToArray())["logits"];
        double relative = Relative(ours, theirs, layout.TargetVocab);
        output.WriteLine($"{layout.Name}: encoder graph against the whole graph {encoderRelative:G3}; decoder graph's logits relative {relative:G3}; " +
            $"{encoderReport.Bytes} + {decoderReport.Bytes} bytes");
        Assert.True(encoderRelative < Tolerance, $"encoder: relative {encoderRelative}");
        Assert.True(relative < Tolerance, $"decoder: relative {relative}");
    }

    /// <summary>
    /// Trains <paramref name="model"/> for a few hundred steps to copy its source (each id folded into the target
    /// vocabulary) and end with the end id, so that its greedy translations depend on the source and stop at different
    /// lengths (random weights repeat one token to the end). Sources of 2 to SeqLen − 1 ids with a padding id, else full.
    /// </summary>
    private static void TrainToCopy(Seq2SeqModel model, int steps)
    {
        ModelLayout layout = model.Layout;
        var rng = new Rng(31);
        var optimizer = new AdamW(model, learningRate: 3e-3f, weightDecay: 0f);
        int s = layout.SeqLen, t = layout.DecoderSeqLen;
        var sources = new int[layout.Batch * s];
        var targets = new int[layout.Batch * t];
        model.Training = true;
        for (int step = 0; step < steps; step++)
        {
            for (int b = 0; b < layout.Batch; b++)
            {
                Span<int> source = sources.AsSpan(b * s, s), target = targets.AsSpan(b * t, t);
                int length = Math.Min(layout.PadToken >= 0 ? 2 + rng.NextInt(s - 2) : s, t - 1);
                source.Fill(layout.PadToken >= 0 ? layout.PadToken : 3);
                target.Fill(layout.PadToken >= 0 ? layout.PadToken : -1);
                for (int i = 0; i < length; i++)
                {
                    source[i] = 3 + rng.NextInt(layout.Vocab - 3);
                    target[i] = 3 + (source[i] - 3) % (layout.TargetVocab - 3);
                }
                target[length] = layout.EosToken;
            }
            model.TrainStep(sources, targets, optimizer, maxGradientNorm: 1f);
        }
        model.Training = false;
    }

    /// <summary>
    /// Greedy decoding driven through ONNX Runtime, a batch of sources at once, the begin and padding ids never chosen, each
    /// row ending at the end id or at TargetSeqLen tokens, gives what <see cref="Seq2SeqModel.Translate"/> gives source by
    /// source: with the whole graph (last position only, the source encoded again at each step), and with the encoder graph
    /// run once and the decoder graph at each step. The model is trained briefly first (<see cref="TrainToCopy"/>).
    /// </summary>
    [Theory]
    [InlineData("paper")]
    [InlineData("rotary")]
    [InlineData("learned")]
    public void GreedyTranslationThroughOnnxRuntimeEqualsTranslate(string name)
    {
        Seq2SeqModel model = BuildSeq2Seq(name);
        TrainToCopy(model, steps: 300);
        ModelLayout layout = model.Layout;
        int batch = layout.Batch, s = layout.SeqLen;
        (int[] sources, _) = SourcesAndTargets(layout, seed: 23);
        var ours = new List<int[]>();
        var buffer = new int[layout.DecoderSeqLen];
        for (int b = 0; b < batch; b++) ours.Add(buffer.AsSpan(0, model.Translate(sources.AsSpan(b * s, s), buffer)).ToArray());

        long[] sourceMask = Mask(layout, sources);
        using var whole = new OnnxRuntimeRunner(ExportSeq2Seq(model, lastPositionOnly: true).Path);
        List<int[]> throughWhole = Greedy(layout, batch, (ids, length) =>
        {
            var inputs = new List<OnnxInput>
            {
                new("input_ids", Longs(sources), [batch, s]),
                new("attention_mask", sourceMask, [batch, s]),
                new("decoder_input_ids", ids, [batch, length]),
            };
            if (layout.PadToken >= 0) inputs.Add(new("decoder_attention_mask", Enumerable.Repeat(1L, ids.Length).ToArray(), [batch, length]));
            return whole.Run(inputs.ToArray())["logits"];
        });

        using var encoder = new OnnxRuntimeRunner(ExportSeq2Seq(model, OnnxSeq2SeqGraph.Encoder).Path);
        using var decoder = new OnnxRuntimeRunner(ExportSeq2Seq(model, OnnxSeq2SeqGraph.Decoder, lastPositionOnly: true).Path);
        float[] hidden = encoder.Run(new OnnxInput("input_ids", Longs(sources), [batch, s]), new OnnxInput("attention_mask", sourceMask, [batch, s]))["last_hidden_state"];
        List<int[]> throughParts = Greedy(layout, batch, (ids, length) =>
        {
            var inputs = new List<OnnxInput>
            {
                new("encoder_hidden_states", hidden, [batch, s, hidden.Length / (batch * s)]),
                new("encoder_attention_mask", sourceMask, [batch, s]),
                new("input_ids", ids, [batch, length]),
            };
            if (layout.PadToken >= 0) inputs.Add(new("decoder_attention_mask", Enumerable.Repeat(1L, ids.Length).ToArray(), [batch, length]));
            return decoder.Run(inputs.ToArray())["logits"];
        });

        for (int b = 0; b < batch; b++)
            output.WriteLine($"{layout.Name} source {b}: ours [{string.Join(" ", ours[b])}], ONNX Runtime [{string.Join(" ", throughWhole[b])}], " +
                $"encoder + decoder graphs [{string.Join(" ", throughParts[b])}]");
        Assert.True(ours.Any(o => o.Length < layout.DecoderSeqLen), "no translation ended at the end id");
        Assert.True(ours.Select(o => string.Join(" ", o)).Distinct().Count() > 1, "every source gave the same translation");
        for (int b = 0; b < batch; b++)
        {
            Assert.Equal(ours[b], throughWhole[b]);
            Assert.Equal(ours[b], throughParts[b]);
        }
    }

    /// <summary>
    /// Greedy decoding of <paramref name="batch"/> rows: <paramref name="step"/> takes the decoder inputs so far
    /// <c>[batch, length]</c> and returns the last position's logits <c>[batch, 1, TargetVocab]</c>. A row that has ended
    /// keeps receiving its choices (the rows are independent) but its output is closed.
    /// </summary>
    private static List<int[]> Greedy(ModelLayout layout, int batch, Func<long[], int, float[]> step)
    {
        int v = layout.TargetVocab, limit = layout.DecoderSeqLen;
        var rows = new List<long>[batch];
        var outputs = new List<int>[batch];
        var done = new bool[batch];
        for (int b = 0; b < batch; b++)
        {
            rows[b] = [layout.BosToken];
            outputs[b] = [];
        }
        for (int length = 1; length <= limit && done.Contains(false); length++)
        {
            float[] logits = step(rows.SelectMany(r => r).ToArray(), length);
            Assert.Equal(batch * v, logits.Length);
            for (int b = 0; b < batch; b++)
            {
                int best = -1;
                for (int i = 0; i < v; i++)
                {
                    if (i == layout.PadToken || i == layout.BosToken) continue;
                    if (best < 0 || logits[b * v + i] > logits[b * v + best]) best = i;
                }
                rows[b].Add(best);
                if (done[b]) continue;
                if (best == layout.EosToken) done[b] = true;
                else outputs[b].Add(best);
                if (outputs[b].Count == limit) done[b] = true;
            }
        }
        return outputs.Select(o => o.ToArray()).ToList();
    }

    /// <summary>8-bit blocks (MatMulNBits) for every linear layer, cross-attention and an untied head included.</summary>
    [Theory]
    [InlineData("paper")]
    [InlineData("rotary")]
    public void EncoderDecoderInt8BlocksStayClose(string name)
    {
        Seq2SeqModel model = BuildSeq2Seq(name);
        ModelLayout layout = model.Layout;
        string fp32 = ExportSeq2Seq(model).Path, int8 = ExportSeq2Seq(model, weights: OnnxWeightFormat.Int8Blocks).Path;
        using var runner = new OnnxRuntimeRunner(int8);
        (int[] sources, int[] targets) = SourcesAndTargets(layout, seed: 25);
        float[] ours = OurSeq2SeqLogits(model, sources, targets);
        float[] theirs = runner.Run(Seq2SeqInputs(layout, layout.Batch, sources, DecoderInputs(layout, targets)))["logits"];
        double relative = Relative(ours, theirs, layout.TargetVocab);
        long fp32Bytes = new FileInfo(fp32).Length, int8Bytes = new FileInfo(int8).Length;
        output.WriteLine($"{layout.Name} int8 blocks: relative {relative:G3}; {int8Bytes} bytes against {fp32Bytes}");
        Assert.True(relative < 3e-2, $"relative {relative}");
        Assert.True(relative > 1e-6, "the weights were not quantized");
        Assert.True(int8Bytes < fp32Bytes, $"{int8Bytes} bytes against {fp32Bytes}");
    }

    /// <summary>With its weights in a data file beside the graph (external data, <c>Always</c>), ONNX Runtime gives the same logits.</summary>
    [Fact]
    public void AnEncoderDecoderWithExternalDataGivesOurLogits()
    {
        Seq2SeqModel model = BuildSeq2Seq("paper");
        ModelLayout layout = model.Layout;
        (OnnxExportReport report, string path) = SaveIn("seq2seq-external", model, null, OnnxExternalData.Always);
        Assert.NotNull(report.DataFile);
        Assert.True(report.DataBytes > report.Bytes, $"data {report.DataBytes} bytes, graph {report.Bytes}");
        using var runner = new OnnxRuntimeRunner(path);
        (int[] sources, int[] targets) = SourcesAndTargets(layout, seed: 26);
        float[] ours = OurSeq2SeqLogits(model, sources, targets);
        float[] theirs = runner.Run(Seq2SeqInputs(layout, layout.Batch, sources, DecoderInputs(layout, targets)))["logits"];
        double relative = Relative(ours, theirs, layout.TargetVocab);
        output.WriteLine($"{layout.Name}: graph {report.Bytes} bytes + data {report.DataBytes}; logits relative {relative:G3}");
        Assert.True(relative < Tolerance, $"relative {relative}");
    }

    /// <summary>An inference instance (matrices in panels) writes the same file as a training instance with the same weights.</summary>
    [Fact]
    public void AnEncoderDecoderInferenceInstanceExportsTheSameFile()
    {
        var training = new OnnxPaperSeq2Seq(5);
        OnnxPaperSeq2Seq inference = OnnxPaperSeq2Seq.ForInference(5);
        string a = Path.Combine(_folder, "seq2seq-training.onnx"), b = Path.Combine(_folder, "seq2seq-inference.onnx");
        training.SaveOnnx(a);
        inference.SaveOnnx(b);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
    }

    [Fact]
    public void Seq2SeqOptionsAreRefusedWhereTheyDoNotApply()
    {
        (TransformerModel decoderOnly, _) = Build("native-learned");
        string a = Path.Combine(_folder, "a.onnx"), b = Path.Combine(_folder, "b.onnx");
        var e = Assert.Throws<ArgumentException>(() => OnnxExport.Save(decoderOnly, a, new OnnxExportOptions { Seq2SeqGraph = OnnxSeq2SeqGraph.Encoder }));
        Assert.Contains("not an encoder-decoder model", e.Message, StringComparison.Ordinal);
        Seq2SeqModel model = BuildSeq2Seq("learned");
        e = Assert.Throws<ArgumentException>(() => OnnxExport.Save(model, b, new OnnxExportOptions { Seq2SeqGraph = OnnxSeq2SeqGraph.Encoder, LastPositionOnly = true }));
        Assert.Contains("LastPositionOnly", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(a));
        Assert.False(File.Exists(b));
    }
}
