using System;
using TransformerGen.Samples.Tests.Support;
using Xunit;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// A training checkpoint of a model compiled from a Hugging Face config (a Llama): its parameters are written in the
/// family's layout, its Load and ForInference skip the optimizer state, and resuming from it is exact.
/// </summary>
public sealed class FamilyTrainingCheckpointTests
{
    private static void Train(TinyChatModel model, AdamW optimizer, Rng data, int steps)
    {
        var tokens = new int[TinyChatModel.TokensPerStep];
        var targets = new int[TinyChatModel.TokensPerStep];
        for (int step = 0; step < steps; step++)
        {
            for (int i = 0; i < tokens.Length; i++) tokens[i] = data.NextInt(TinyChatModel.Vocab);
            for (int i = 0; i < targets.Length; i++) targets[i] = data.NextInt(TinyChatModel.Vocab);
            model.TrainStep(tokens, targets, optimizer, maxGradientNorm: 1f);
        }
    }

    [Fact]
    public void A_Llama_training_checkpoint_loads_for_inference_and_resumes_bit_for_bit()
    {
        using var folder = new TempFolder();
        string path = folder.File("model.safetensors");
        var straight = new TinyChatModel(1);
        var straightOptimizer = new AdamW(straight, learningRate: 1e-2f);
        var straightData = new Rng(2);
        Train(straight, straightOptimizer, straightData, 2);
        TrainingCheckpoint.Save(path, straight, straightOptimizer, 2, straightData);
        Train(straight, straightOptimizer, straightData, 2);

        TinyChatModel inference = TinyChatModel.ForInference(path);
        Assert.Equal("2", SafeTensors.ReadMetadata(path)["training.step"]);
        var atTwo = new TinyChatModel(3);
        SafeTensorsLoadReport report = HuggingFaceCheckpoint.Load(path, atTwo.ParameterTensors, atTwo.Parameters, atTwo.Layout.Family);
        Assert.Equal(2 * atTwo.ParameterTensors.Count, report.Skipped.Count);
        Assert.All(report.Skipped, s => Assert.Equal(SafeTensorsSkipReason.TrainingState, s.Reason));
        Assert.True(inference.Parameters.SequenceEqual(atTwo.Parameters));

        var resumed = new TinyChatModel(4);
        var resumedOptimizer = new AdamW(resumed, learningRate: 1e-2f);
        var resumedData = new Rng(5);
        Assert.Equal(2, TrainingCheckpoint.Load(path, resumed, resumedOptimizer, resumedData).Step);
        Train(resumed, resumedOptimizer, resumedData, 2);
        Assert.Equal(BitsOf(straight.Parameters), BitsOf(resumed.Parameters));
        Assert.Equal(BitsOf(straightOptimizer.SecondMoment), BitsOf(resumedOptimizer.SecondMoment));
    }

    private static int[] BitsOf(ReadOnlySpan<float> values)
    {
        var bits = new int[values.Length];
        for (int i = 0; i < values.Length; i++) bits[i] = BitConverter.SingleToInt32Bits(values[i]);
        return bits;
    }
}
