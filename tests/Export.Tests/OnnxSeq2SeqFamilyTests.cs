using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Xunit;

namespace TransformerGen.Export.Tests;

/// <summary>What a family encoder–decoder's last <see cref="TransformerModel.Forward"/> fed its decoder (mBART starts from the row's last label).</summary>
internal interface IDecoderInputs
{
    int[] LastDecoderInputs { get; }
}

public partial class OnnxMarian : IDecoderInputs { int[] IDecoderInputs.LastDecoderInputs => DecoderTokens.ToArray(); }

public partial class OnnxBart : IDecoderInputs { int[] IDecoderInputs.LastDecoderInputs => DecoderTokens.ToArray(); }

public partial class OnnxMBart : IDecoderInputs { int[] IDecoderInputs.LastDecoderInputs => DecoderTokens.ToArray(); }

public partial class OnnxM2M100 : IDecoderInputs { int[] IDecoderInputs.LastDecoderInputs => DecoderTokens.ToArray(); }

public partial class OnnxT5 : IDecoderInputs { int[] IDecoderInputs.LastDecoderInputs => DecoderTokens.ToArray(); }

public partial class OnnxFlanT5 : IDecoderInputs { int[] IDecoderInputs.LastDecoderInputs => DecoderTokens.ToArray(); }

/// <summary>
/// The Hugging Face encoder–decoders (Marian, BART, mBART, M2M100, T5, Flan-T5) compiled from the reference tests' fixture configs,
/// exported to ONNX with their config.json and run by ONNX Runtime: the one graph's logits of a padded batch, and the encoder
/// and decoder graphs composed, within 1e-5 of the largest of ours (<see cref="TransformerModel.Forward"/>); greedy decoding
/// through the encoder graph and the cached decoder graph equal to <see cref="Seq2SeqModel.Translate"/> token for token
/// (M2M100 and mBART also with a forced prefix, NLLB's target language).
/// </summary>
public sealed partial class OnnxExportTests
{
    private static (Seq2SeqModel Model, string Config) BuildFamilySeq2Seq(string name)
    {
        Seq2SeqModel model = name switch
        {
            "marian" => new OnnxMarian(1),
            "bart" => new OnnxBart(1),
            "mbart" => new OnnxMBart(1),
            "m2m100" => new OnnxM2M100(1),
            "t5" => new OnnxT5(1),
            "flan-t5" => new OnnxFlanT5(1),
            _ => throw new ArgumentException(name),
        };
        Weights.Randomize(model, seed: 19);
        model.Training = false;
        return (model, GgufLlamaCppTests.Config(name));
    }

    private (string Path, OnnxExportReport Report) ExportFamilySeq2Seq(Seq2SeqModel model, string config, OnnxSeq2SeqGraph graph = OnnxSeq2SeqGraph.Full, bool cache = false)
    {
        string path = Path.Combine(_folder, $"{model.Layout.Name}.{graph}{(cache ? ".with-past" : "")}.onnx");
        OnnxExportReport report = model.SaveOnnx(path, new OnnxExportOptions { Config = config, Seq2SeqGraph = graph, KeyValueCache = cache });
        Assert.Equal(new FileInfo(path).Length, report.Bytes);
        return (path, report);
    }

    /// <summary>An id from 3 up that is none of the padding, begin (decoder start) and end ids.</summary>
    private static int OrdinaryId(ModelLayout layout, Rng rng, int vocab)
    {
        int id;
        do id = 3 + rng.NextInt(vocab - 3);
        while (id == layout.PadToken || id == layout.BosToken || id == layout.EosToken);
        return id;
    }

    /// <summary>
    /// The one graph (Marian: post-LN, split sinusoids, swish; BART: learned positions, layernorm_embedding; mBART: pre-LN with
    /// final norms, decoder from the last label; M2M100: fairseq's sinusoids, ReLU, no logits bias; T5: RMSNorm, relative-position
    /// bias on unscaled scores, ReLU, tied head × d_model^−½; Flan-T5: the same with GEGLU and lm_head) on a batch whose row 1 has
    /// four padded source positions and three padded targets, and the encoder and decoder graphs composed: our logits within
    /// 1e-5 of the largest. No graph takes decoder_attention_mask: these decoders mask no padding.
    /// </summary>
    [Theory]
    [InlineData("marian")]
    [InlineData("bart")]
    [InlineData("mbart")]
    [InlineData("m2m100")]
    [InlineData("t5")]
    [InlineData("flan-t5")]
    public void FamilyEncoderDecoderLogitsMatchOurs(string name)
    {
        (Seq2SeqModel model, string config) = BuildFamilySeq2Seq(name);
        ModelLayout layout = model.Layout;
        int batch = layout.Batch, s = layout.SeqLen, t = layout.DecoderSeqLen, v = layout.TargetVocab;
        var rng = new Rng(51);
        int[] sources = Enumerable.Range(0, batch * s).Select(_ => OrdinaryId(layout, rng, layout.Vocab)).ToArray();
        int[] targets = Enumerable.Range(0, batch * t).Select(_ => OrdinaryId(layout, rng, v)).ToArray();
        sources.AsSpan(2 * s - 4, 4).Fill(layout.PadToken);
        targets.AsSpan(2 * t - 3, 3).Fill(layout.PadToken);
        model.Forward(sources, targets);
        float[] ours = model.Logits.ToArray();
        int[] decoderInputs = ((IDecoderInputs)model).LastDecoderInputs;

        (string path, OnnxExportReport report) = ExportFamilySeq2Seq(model, config);
        Assert.Equal(["input_ids", "attention_mask", "decoder_input_ids"], report.Inputs.Select(i => i.Name));
        Assert.Equal(["logits", "encoder_last_hidden_state"], report.Outputs.Select(o => o.Name));
        long[] sourceMask = Mask(layout, sources);
        using var whole = new OnnxRuntimeRunner(path);
        Dictionary<string, float[]> outputs = whole.Run(
            new OnnxInput("input_ids", Longs(sources), [batch, s]),
            new OnnxInput("attention_mask", sourceMask, [batch, s]),
            new OnnxInput("decoder_input_ids", Longs(decoderInputs), [batch, t]));
        double relative = Relative(ours, outputs["logits"], v);

        (string encoderPath, _) = ExportFamilySeq2Seq(model, config, OnnxSeq2SeqGraph.Encoder);
        (string decoderPath, OnnxExportReport decoderReport) = ExportFamilySeq2Seq(model, config, OnnxSeq2SeqGraph.Decoder);
        Assert.Equal(["encoder_hidden_states", "encoder_attention_mask", "input_ids"], decoderReport.Inputs.Select(i => i.Name));
        float[] hidden = EncoderHiddenStates(encoderPath, batch, sources, sourceMask);
        int dModel = hidden.Length / (batch * s);
        double encoderRelative = Relative(outputs["encoder_last_hidden_state"], hidden, dModel);
        using var decoder = new OnnxRuntimeRunner(decoderPath);
        float[] composed = decoder.Run(
            new OnnxInput("encoder_hidden_states", hidden, [batch, s, dModel]),
            new OnnxInput("encoder_attention_mask", sourceMask, [batch, s]),
            new OnnxInput("input_ids", Longs(decoderInputs), [batch, t]))["logits"];
        double composedRelative = Relative(ours, composed, v);
        output.WriteLine($"{layout.Name}: {batch}×{s} sources, {batch}×{t} targets (row 1 padded), logits relative {relative:G3}; " +
            $"encoder graph against the whole {encoderRelative:G3}, encoder + decoder graphs {composedRelative:G3}; {report.Bytes} bytes");
        Assert.True(relative < Tolerance, $"relative {relative}");
        Assert.True(encoderRelative < Tolerance, $"encoder: relative {encoderRelative}");
        Assert.True(composedRelative < Tolerance, $"encoder + decoder: relative {composedRelative}");
    }

    /// <summary>
    /// The cached decoder graph run as a translation loop runs it, from empty pasts, in steps of 2, 1, 2, 1, 1, … tokens
    /// (greedy choices and a few random ids): every new position's logits within 1e-5 of the largest of ours
    /// (<see cref="Seq2SeqModel.Encode"/> and <see cref="Seq2SeqModel.Append"/> of each source alone); two sources of
    /// different lengths, the shorter masked by the encoder's attention mask.
    /// </summary>
    [Theory]
    [InlineData("marian")]
    [InlineData("bart")]
    [InlineData("mbart")]
    [InlineData("m2m100")]
    [InlineData("t5")]
    [InlineData("flan-t5")]
    public void FamilyCachedDecoderStepsGiveOurAppendLogits(string name)
    {
        (Seq2SeqModel model, string config) = BuildFamilySeq2Seq(name);
        ModelLayout layout = model.Layout;
        int s = layout.SeqLen, t = layout.DecoderSeqLen, v = layout.TargetVocab;
        var rng = new Rng(55);
        int[] lengths = [s, s - 3];
        int[] sources = Enumerable.Range(0, 2 * s).Select(i => i % s < lengths[i / s] ? OrdinaryId(layout, rng, layout.Vocab) : layout.PadToken).ToArray();
        int[] sizes = [2, 1, 2, .. Enumerable.Repeat(1, t - 5)];
        var random = new HashSet<int>();
        for (int at = 0, step = 0; step < sizes.Length; at += sizes[step++])
            for (int i = 1; i < sizes[step]; i++) random.Add(at + i);
        (int[][] tokens, float[][] ours) = OurCachedDecoding(model, sources, lengths, random, seed: 56);

        long[] sourceMask = LengthMask(lengths, s);
        float[] hidden = EncoderHiddenStates(ExportFamilySeq2Seq(model, config, OnnxSeq2SeqGraph.Encoder).Path, 2, sources, sourceMask);
        (string path, OnnxExportReport report) = ExportFamilySeq2Seq(model, config, OnnxSeq2SeqGraph.Decoder, cache: true);
        using var decoder = new CachedDecoder(path, report, hidden, sourceMask, batch: 2);
        double worst = 0;
        var steps = new List<string>();
        for (int at = 0, step = 0; step < sizes.Length; at += sizes[step++])
        {
            int n = sizes[step];
            float[] theirs = decoder.Step(tokens.SelectMany(row => row.Skip(at).Take(n).Select(id => (long)id)).ToArray(), n);
            double relative = Relative(ours.SelectMany(row => row.Skip(at * v).Take(n * v)).ToArray(), theirs, v);
            steps.Add($"{at}+{n}: {relative:G3}");
            worst = Math.Max(worst, relative);
        }
        output.WriteLine($"{layout.Name}: sources of {lengths[0]} and {lengths[1]} tokens, {t} decoder positions in {sizes.Length} steps " +
            $"(past + new: relative to ours) {string.Join(", ", steps)}; largest {worst:G3}");
        Assert.True(worst < Tolerance, $"relative {worst}");
    }

    /// <summary>
    /// Greedy decoding of two sources of different lengths (the shorter masked) through the encoder graph and the cached
    /// decoder graph, the begin token and the prefix in the first step and one token a step after it, choosing as
    /// <see cref="Seq2SeqModel.Translate"/> chooses (never the padding id, nor the begin id unless it is also the end id, as
    /// BART's and mBART's decoder start &lt;/s&gt; is): token for token what Translate gives each source alone. The model is
    /// trained briefly to copy first (<see cref="TrainToCopy"/>), so that translations depend on the source and end.
    /// </summary>
    [Theory]
    [InlineData("marian", false)]
    [InlineData("bart", false)]
    [InlineData("mbart", false)]
    [InlineData("mbart", true)]
    [InlineData("m2m100", false)]
    [InlineData("m2m100", true)]
    [InlineData("t5", false)]
    [InlineData("flan-t5", false)]
    public void FamilyGreedyTranslationThroughTheCachedDecoderEqualsTranslate(string name, bool forcedPrefix)
    {
        (Seq2SeqModel model, string config) = BuildFamilySeq2Seq(name);
        TrainToCopy(model, steps: 300);
        ModelLayout layout = model.Layout;
        int s = layout.SeqLen, v = layout.TargetVocab;
        var rng = new Rng(53);
        int[] lengths = [s, s - 3];
        int[] sources = Enumerable.Range(0, 2 * s).Select(i => i % s < lengths[i / s] ? OrdinaryId(layout, rng, layout.Vocab) : layout.PadToken).ToArray();
        // NLLB's target language: an id the decoder reads after its start token.
        int[] prefix = forcedPrefix ? [OrdinaryId(layout, rng, v)] : [];
        var ours = new List<int[]>();
        var buffer = new int[layout.DecoderSeqLen];
        for (int r = 0; r < 2; r++) ours.Add(buffer.AsSpan(0, model.Translate(sources.AsSpan(r * s, lengths[r]), buffer, prefix: prefix)).ToArray());

        long[] sourceMask = LengthMask(lengths, s);
        float[] hidden = EncoderHiddenStates(ExportFamilySeq2Seq(model, config, OnnxSeq2SeqGraph.Encoder).Path, 2, sources, sourceMask);
        (string path, OnnxExportReport report) = ExportFamilySeq2Seq(model, config, OnnxSeq2SeqGraph.Decoder, cache: true);
        Assert.DoesNotContain(report.Inputs, i => i.Name == "decoder_attention_mask");
        using var decoder = new CachedDecoder(path, report, hidden, sourceMask, batch: 2);
        int limit = layout.DecoderSeqLen - prefix.Length;
        var theirs = new List<int>[] { [], [] };
        var done = new bool[2];
        long[] first = [layout.BosToken, .. prefix.Select(id => (long)id)];
        float[] logits = decoder.Step([.. first, .. first], first.Length);
        while (true)
        {
            var next = new long[2];
            int n = logits.Length / (2 * v); // positions per row in this step: the choice follows the last
            for (int r = 0; r < 2; r++)
            {
                int best = -1;
                ReadOnlySpan<float> row = logits.AsSpan(((r + 1) * n - 1) * v, v);
                for (int i = 0; i < v; i++)
                {
                    if (i == layout.PadToken || (i == layout.BosToken && layout.BosToken != layout.EosToken)) continue;
                    if (best < 0 || row[i] > row[best]) best = i;
                }
                next[r] = best;
                if (done[r]) continue;
                if (best == layout.EosToken) done[r] = true;
                else theirs[r].Add(best);
                if (theirs[r].Count == limit) done[r] = true;
            }
            if (done.All(d => d)) break;
            logits = decoder.Step(next, 1);
        }

        for (int r = 0; r < 2; r++)
            output.WriteLine($"{layout.Name} source {r} ({lengths[r]} tokens{(forcedPrefix ? $", prefix {prefix[0]}" : "")}): ours [{string.Join(" ", ours[r])}], " +
                $"cached decoder [{string.Join(" ", theirs[r])}]");
        Assert.NotEqual(ours[0], ours[1]);
        for (int r = 0; r < 2; r++) Assert.Equal(ours[r], theirs[r]);
    }
}
