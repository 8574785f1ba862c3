using System;
using System.Linq;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Xunit;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// The <c>AttentionKernel</c> option: which training attention the generator emits (stored probabilities or tiles,
/// chosen by length under Auto), what the memory plan then holds, TG0012 for an undefined value, and that a tiled model
/// trains to the same loss and gradients as the same model with stored probabilities.
/// </summary>
public class TiledAttentionTests
{
    private static string Model(string arguments, string name = "M") => $$"""
        using TransformerGen;
        namespace Demo;
        [TransformerModel({{arguments}})]
        public partial class {{name}} { }
        """;

    private const string Small = "Vocab = 11, DModel = 12, Heads = 3, Layers = 2, DFF = 20, Batch = 2";

    private static long Constant(string source, string name)
    {
        Match m = Regex.Match(source, $@"public const long {name} = (\d+)L?;");
        Assert.True(m.Success, $"no constant {name}");
        return long.Parse(m.Groups[1].Value);
    }

    [Fact]
    public void TG0012_undefined_attention_kernel()
    {
        string source = Model(Small + ", SeqLen = 5, AttentionKernel = (AttentionKernel)3");
        var problems = GeneratorHarness.Run(source).Problems.ToList();
        Diagnostic d = Assert.Single(problems);
        Assert.Equal("TG0012", d.Id);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal("AttentionKernel = (AttentionKernel)3", source.Substring(d.Location.SourceSpan.Start, d.Location.SourceSpan.Length));
        Assert.Equal("AttentionKernel = 3 is not a defined value; use one of AttentionKernel.Auto, AttentionKernel.StoredProbabilities, AttentionKernel.Tiled", d.GetMessage());
    }

    [Theory]
    [InlineData(511, "", false)]
    [InlineData(512, "", true)]
    [InlineData(5, ", AttentionKernel = AttentionKernel.Tiled", true)]
    [InlineData(1024, ", AttentionKernel = AttentionKernel.StoredProbabilities", false)]
    public void Auto_tiles_from_512_positions_and_a_declaration_overrides_it(int seqLen, string option, bool tiled)
    {
        string source = GeneratorHarness.RunClean(Model(Small + $", SeqLen = {seqLen}" + option)).GeneratedSource;
        Assert.Equal(tiled, source.Contains("Attention.FlashForward("));
        Assert.Equal(tiled, source.Contains("Attention.FlashBackward("));
        Assert.Equal(!tiled, source.Contains("Attention.Forward("));
        Assert.Equal(!tiled, source.Contains("new(\"layers.0.attention_probabilities\", new[]"));
        Assert.Equal(tiled, source.Contains("TiledAttentionMaps = new"));
        Assert.Equal(tiled, source.Contains($"layers.0.attention_statistics[2, 3, {seqLen}, 2]"));
    }

    [Fact]
    public void The_tiled_plan_holds_no_square_of_the_length()
    {
        // The training workspace with stored probabilities holds Batch·Heads·L² floats per layer more than the tiled one,
        // which holds Batch·Heads·L·2 of statistics instead (offsets aligned to 16). Neither has a gradient slot for them:
        // no backward operation touches their gradients, so the activation gradients are laid out alike.
        const int seqLen = 64, layers = 2, batch = 2, heads = 3;
        long stored = Constant(GeneratorHarness.RunClean(Model(Small + $", SeqLen = {seqLen}, AttentionKernel = AttentionKernel.StoredProbabilities")).GeneratedSource, "TrainingBytes");
        long tiled = Constant(GeneratorHarness.RunClean(Model(Small + $", SeqLen = {seqLen}, AttentionKernel = AttentionKernel.Tiled")).GeneratedSource, "TrainingBytes");
        Assert.Equal(4L * layers * batch * heads * (seqLen * seqLen - seqLen * 2), stored - tiled);
    }

    [Theory]
    [InlineData("Architecture = Architecture.EncoderOnly, Classes = 3, PadToken = 0, AttentionWindow = 2", "Attention.FlashForwardSequences(")]
    [InlineData("Architecture = Architecture.EncoderDecoder, TargetSeqLen = 5, PadToken = 0, BosToken = 1, EosToken = 2", "Attention.FlashForward(")]
    public void A_tiled_encoder_attends_tile_by_tile_at_inference_too(string options, string inferenceCall)
    {
        // The stored kernel's exact-length and source passes attend through a [Heads, L, L] scratch in the inference
        // workspace (which a training instance allocates too); the tiled ones need none.
        const int seqLen = 40, heads = 3;
        string declaration = Small + $", SeqLen = {seqLen}, " + options;
        var stored = GeneratorHarness.RunClean(Model(declaration + ", AttentionKernel = AttentionKernel.StoredProbabilities")).GeneratedSource;
        var tiled = GeneratorHarness.RunClean(Model(declaration + ", AttentionKernel = AttentionKernel.Tiled")).GeneratedSource;
        // Inference slices the inference workspace, w.
        Assert.Contains(tiled.Split('\n'), line => line.Contains(inferenceCall) && line.Contains("w.Slice("));
        Assert.DoesNotContain("attention_probabilities[", tiled); // no such tensor, in training or at inference
        Assert.True(Constant(stored, "InferenceBytes") - Constant(tiled, "InferenceBytes") >= 4L * heads * seqLen * seqLen,
            $"InferenceBytes {Constant(tiled, "InferenceBytes")} tiled, {Constant(stored, "InferenceBytes")} stored");
        Assert.True(Constant(tiled, "TrainingBytes") < Constant(stored, "TrainingBytes"));
    }

    /// <summary>
    /// One model in both forms, same seed and inputs: losses and every parameter's gradient agree within 1e-5 relative
    /// (what the kernels guarantee, carried through the whole network). Covers packed decoder self-attention, an
    /// encoder–decoder (padding, cross-attention of other lengths), and grouped-query heads through a config.
    /// </summary>
    [Theory]
    [InlineData("Vocab = 13, DModel = 24, Heads = 3, Layers = 2, DFF = 30, SeqLen = 45, Batch = 2, Positional = Positional.Rotary")]
    [InlineData("Vocab = 13, DModel = 24, Heads = 3, Layers = 2, DFF = 30, SeqLen = 40, Batch = 2, AttentionWindow = 6, Norm = NormPlacement.Post")]
    [InlineData("Architecture = Architecture.EncoderDecoder, Vocab = 13, TargetVocab = 9, DModel = 24, Heads = 3, Layers = 1, DFF = 30, SeqLen = 37, TargetSeqLen = 21, Batch = 2, PadToken = 0, BosToken = 1, EosToken = 2")]
    [InlineData("Architecture = Architecture.EncoderOnly, Vocab = 13, DModel = 24, Heads = 3, Layers = 2, DFF = 30, SeqLen = 40, Batch = 2, Classes = 3, PadToken = 0, Pooling = Pooling.Mean")]
    public void A_tiled_model_trains_like_the_stored_probabilities_model(string options)
    {
        TransformerModel Build(string kernel, string name)
        {
            var result = GeneratorHarness.RunClean(Model(options + ", AttentionKernel = AttentionKernel." + kernel, name));
            Type type = GeneratorHarness.Load(result).GetType("Demo." + name)!;
            return (TransformerModel)Activator.CreateInstance(type, 7UL)!;
        }
        TransformerModel stored = Build("StoredProbabilities", "Stored"), tiled = Build("Tiled", "Tiled");
        Assert.Equal(stored.Parameters.Length, tiled.Parameters.Length);
        stored.Parameters.CopyTo(tiled.Parameters);

        var rng = new Random(3);
        bool seq2seq = options.Contains("EncoderDecoder"), encoder = options.Contains("EncoderOnly");
        int tokens = (int)stored.GetType().GetField("TokensPerStep")!.GetRawConstantValue()!;
        int vocab = (int)stored.GetType().GetField("Vocab")!.GetRawConstantValue()!;
        int[] input = Enumerable.Range(0, tokens).Select(_ => rng.Next(1, vocab)).ToArray();
        if (seq2seq || encoder) for (int i = tokens - 5; i < tokens; i++) input[i] = 0; // padding at the end of the last sequence
        int targetsLength = seq2seq ? (int)stored.GetType().GetField("TargetTokensPerStep")!.GetRawConstantValue()!
            : encoder ? (int)stored.GetType().GetField("Batch")!.GetRawConstantValue()! : tokens;
        int targetVocab = seq2seq ? 9 : encoder ? 3 : vocab;
        int[] targets = Enumerable.Range(0, targetsLength).Select(_ => rng.Next(encoder ? 0 : 3, targetVocab)).ToArray();

        stored.Training = tiled.Training = false;
        float storedLoss = stored.Forward(input, targets), tiledLoss = tiled.Forward(input, targets);
        Assert.True(Math.Abs(storedLoss - tiledLoss) <= 1e-5 * Math.Abs(storedLoss), $"loss {tiledLoss} vs {storedLoss}");
        stored.ZeroGrad();
        tiled.ZeroGrad();
        stored.Backward();
        tiled.Backward();
        foreach (var t in stored.ParameterTensors)
        {
            ReadOnlySpan<float> a = stored.Gradients.Slice(t.Offset, t.Length), b = tiled.Gradients.Slice(t.Offset, t.Length);
            double diff = 0, norm = 0;
            for (int i = 0; i < a.Length; i++)
            {
                diff += (double)(a[i] - b[i]) * (a[i] - b[i]);
                norm += (double)a[i] * a[i];
            }
            Assert.True(Math.Sqrt(diff) <= 1e-5 * Math.Sqrt(norm) + 1e-12, $"{t.Name}: ‖tiled − stored‖ / ‖stored‖ = {Math.Sqrt(diff / Math.Max(norm, 1e-30)):E2}");
        }
        // The tiled model keeps no probabilities; AttentionMap recomputes them from its queries, keys and statistics.
        Assert.NotEmpty(stored.Layout.AttentionMaps);
        Assert.Empty(tiled.Layout.AttentionMaps);
        Assert.Equal(stored.Layout.AttentionMaps.Select(m => m.Name), tiled.Layout.TiledAttentionMaps.Select(m => m.Name));
        foreach (var map in stored.Layout.AttentionMaps)
        {
            float[] a = stored.AttentionMap(map.Name).ToArray(), b = tiled.AttentionMap(map.Name).ToArray();
            Assert.Equal(a.Length, b.Length);
            for (int i = 0; i < a.Length; i++)
            {
                Assert.True(Math.Abs(a[i] - b[i]) <= 1e-5 * Math.Max(a[i], 1e-2f), $"{map.Name}[{i}]: tiled {b[i]}, stored {a[i]}");
                Assert.True((a[i] == 0f) == (b[i] == 0f), $"{map.Name}[{i}]: masked in one and not the other ({a[i]}, {b[i]})");
            }
        }

        if (encoder)
        {
            // The exact-length inference pass of the training instances: tiled FlashForwardSequences against ForwardSequences.
            int seqLen = (int)stored.GetType().GetField("SeqLen")!.GetRawConstantValue()!;
            int[] lengths = [seqLen, seqLen - 7];
            int[] sentences = input.AsSpan(0, lengths[0] + lengths[1]).ToArray();
            float[] a = ((EncoderModel)stored).Predict(sentences, lengths).ToArray(), b = ((EncoderModel)tiled).Predict(sentences, lengths).ToArray();
            double scale = a.Max(x => Math.Abs((double)x));
            for (int i = 0; i < a.Length; i++)
                Assert.True(Math.Abs(a[i] - b[i]) <= 1e-5 * scale, $"Predict[{i}]: tiled {b[i]}, stored {a[i]}");
        }
    }
}
