using System;
using System.Linq;
using System.Runtime.InteropServices;
using Xunit;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// <c>RecomputeActivations</c>: the backward pass computes the feed-forward activations' outputs again instead of keeping
/// them. The same model with and without it gives the same loss and the same gradients, bit for bit (the same kernel on
/// the same input makes the same values), and keeps less: a <c>[tokens, DFF]</c> tensor per layer, less the one that the
/// backward pass's buffer holds while it is needed.
/// </summary>
public class RecomputeActivationsTests
{
    private const string LlamaFolder = "llama";

    [Theory]
    [InlineData("Vocab = 13, DModel = 24, Heads = 3, Layers = 3, DFF = 40, SeqLen = 9, Batch = 2, Positional = Positional.Rotary")]
    [InlineData("Vocab = 13, DModel = 24, Heads = 3, Layers = 3, DFF = 40, SeqLen = 9, Batch = 2, Norm = NormPlacement.Post, Activation = Activation.Relu, Dropout = 0.1f")]
    [InlineData("Architecture = Architecture.EncoderDecoder, Vocab = 13, TargetVocab = 9, DModel = 24, Heads = 3, Layers = 2, DFF = 40, SeqLen = 8, TargetSeqLen = 7, Batch = 2, PadToken = 0, BosToken = 1, EosToken = 2")]
    [InlineData("Architecture = Architecture.EncoderOnly, Vocab = 13, DModel = 24, Heads = 3, Layers = 3, DFF = 40, SeqLen = 9, Batch = 2, Classes = 3, PadToken = 0, Pooling = Pooling.Mean")]
    [InlineData("Config = \"models/" + LlamaFolder + "/config.json\", SeqLen = 9, Batch = 2")]
    public void The_same_model_with_its_activations_recomputed_trains_to_the_same_bits_and_keeps_less(string options)
    {
        (string, string)[] files = [($"/repo/models/{LlamaFolder}/config.json", ConfigFixtures.LlamaGqa)];
        (TransformerModel Model, string Source) Build(bool recompute, string name)
        {
            var result = ConfigFixtures.RunClean(files, ConfigFixtures.Model(options + (recompute ? ", RecomputeActivations = true" : ""), name));
            Type type = GeneratorHarness.Load(result).GetType("Demo." + name)!;
            return ((TransformerModel)Activator.CreateInstance(type, 7UL)!, result.GeneratedSource);
        }
        (TransformerModel kept, _) = Build(false, "Kept");
        (TransformerModel again, string source) = Build(true, "Again");

        int layers = source.Split('\n').Count(l => l.Contains("computed again (RecomputeActivations)"));
        Assert.True(layers >= 2, $"{layers} recomputations in the backward pass");
        Assert.True(again.Layout.ActivationCount < kept.Layout.ActivationCount,
            $"workspace {again.Layout.ActivationCount} floats with recomputation, {kept.Layout.ActivationCount} without");
        Assert.True(again.Layout.ActivationCount + again.Layout.ActivationGradientCount < kept.Layout.ActivationCount + kept.Layout.ActivationGradientCount);

        var rng = new Random(3);
        bool seq2seq = options.Contains("EncoderDecoder"), encoder = options.Contains("EncoderOnly");
        int tokens = (int)ConfigFixtures.Constant(kept.GetType(), "TokensPerStep")!;
        int vocab = (int)ConfigFixtures.Constant(kept.GetType(), "Vocab")!;
        int[] input = Enumerable.Range(0, tokens).Select(_ => rng.Next(1, vocab)).ToArray();
        if (seq2seq || encoder) for (int i = tokens - 3; i < tokens; i++) input[i] = 0;
        int targetsLength = seq2seq ? (int)ConfigFixtures.Constant(kept.GetType(), "TargetTokensPerStep")! : encoder ? 2 : tokens;
        int targetVocab = seq2seq ? 9 : encoder ? 3 : vocab;
        int[] targets = Enumerable.Range(0, targetsLength).Select(_ => rng.Next(encoder ? 0 : 3, targetVocab)).ToArray();

        // Training mode, dropout included: both draw the same masks from the same seed.
        for (int step = 0; step < 2; step++)
        {
            float a = kept.Forward(input, targets), b = again.Forward(input, targets);
            Assert.Equal(BitConverter.SingleToInt32Bits(a), BitConverter.SingleToInt32Bits(b));
            kept.ZeroGrad();
            again.ZeroGrad();
            kept.Backward();
            again.Backward();
            Assert.True(MemoryMarshal.AsBytes(kept.Gradients).SequenceEqual(MemoryMarshal.AsBytes(again.Gradients)), "the gradients differ");
            Assert.Contains(kept.Gradients.ToArray(), g => g != 0f);
        }
    }
}
