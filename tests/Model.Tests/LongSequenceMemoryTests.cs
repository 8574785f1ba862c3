using System;
using TransformerGen.Threading;
using Xunit;

namespace TransformerGen.Model.Tests;

// Issue 15's long-sequence configuration: DModel 256, 4 layers, 8 heads, Batch 2, at three lengths. AttentionKernel is
// left at its default (Auto), which tiles attention at these lengths.
[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 1024, Batch = 2)]
public partial class LongSequence1024 { }

[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 2048, Batch = 2)]
public partial class LongSequence2048 { }

[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 4096, Batch = 2)]
public partial class LongSequence4096 { }

// The same configuration with the probabilities stored, for contrast.
[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 1024, Batch = 2, AttentionKernel = AttentionKernel.StoredProbabilities)]
public partial class StoredProbabilities1024 { }

[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 2048, Batch = 2, AttentionKernel = AttentionKernel.StoredProbabilities)]
public partial class StoredProbabilities2048 { }

/// <summary>
/// What a model built for training allocates (<c>TrainingBytes</c>, which <c>BufferBytes</c> of an instance equals) as
/// the sequence doubles: with tiled attention it grows at most 2.2× per doubling (activations are linear in the length,
/// parameters fixed); with stored probabilities the [Batch, Heads, L, L] probabilities of every layer dominate and it
/// grows more than 2.9× (2.99× from 1024 to 2048, tending to 4× as the square takes over).
/// </summary>
public class LongSequenceMemoryTests
{
    [Fact]
    public void Training_bytes_grow_at_most_2_2_times_per_doubling_of_the_length()
    {
        double first = (double)LongSequence2048.TrainingBytes / LongSequence1024.TrainingBytes;
        double second = (double)LongSequence4096.TrainingBytes / LongSequence2048.TrainingBytes;
        Assert.True(first <= 2.2, $"1024 → 2048: {LongSequence1024.TrainingBytes} → {LongSequence2048.TrainingBytes} bytes, {first:F3}×");
        Assert.True(second <= 2.2, $"2048 → 4096: {LongSequence2048.TrainingBytes} → {LongSequence4096.TrainingBytes} bytes, {second:F3}×");
        // Nor does it fall short of linear: the activations are most of it.
        Assert.True(first >= 1.8 && second >= 1.8, $"{first:F3}×, {second:F3}×");
    }

    [Fact]
    public void Stored_probabilities_grow_nearly_three_times_per_doubling()
    {
        double growth = (double)StoredProbabilities2048.TrainingBytes / StoredProbabilities1024.TrainingBytes;
        Assert.True(growth > 2.9, $"{growth:F3}×");
        // The probabilities of 4 layers are the difference at 1024 (no backward operation touches their gradients, so
        // neither model holds any).
        long probabilities = 4L * 4 * 2 * 8 * 1024 * 1024;
        Assert.True(StoredProbabilities1024.TrainingBytes - LongSequence1024.TrainingBytes >= probabilities * 99 / 100,
            $"{StoredProbabilities1024.TrainingBytes} vs {LongSequence1024.TrainingBytes}");
    }

    [Fact]
    public void An_instance_allocates_its_training_bytes()
    {
        var model = new LongSequence1024(1);
        Assert.Equal(LongSequence1024.TrainingBytes, model.BufferBytes);
    }
}

/// <summary>Tiled attention, small enough to train here and big enough that its tiles and groups split between threads.</summary>
[TransformerModel(Vocab = 256, DModel = 64, Heads = 4, Layers = 2, DFF = 256, SeqLen = 100, Batch = 4, Dropout = 0.1f, AttentionKernel = AttentionKernel.Tiled)]
public partial class TiledSplittable { }

/// <summary>A whole model with tiled attention trains to the same bits on any number of threads.</summary>
[Collection(ThreadCountCollection.Name)]
public sealed class TiledThreadingTests
{
    [Fact]
    public void Training_with_tiled_attention_is_bit_identical_with_one_two_and_three_threads()
    {
        int[] tokens = TestData.Tokens(TiledSplittable.TokensPerStep, TiledSplittable.Vocab, 1);
        int[] targets = TestData.Tokens(TiledSplittable.TokensPerStep, TiledSplittable.Vocab, 2);
        (float[] Losses, float[] Parameters) Run(int threads)
        {
            int saved = Parallelism.ThreadCount;
            Parallelism.ThreadCount = threads;
            Contention.Enabled = false; // what splits is the subject here, not what the neighbours leave
            try
            {
                var model = new TiledSplittable(seed: 3);
                var optimizer = new AdamW(model, learningRate: 1e-3f);
                var losses = new float[3];
                for (int step = 0; step < losses.Length; step++) losses[step] = model.TrainStep(tokens, targets, optimizer);
                return (losses, model.Parameters.ToArray());
            }
            finally
            {
                Parallelism.ThreadCount = saved;
                Contention.Enabled = true;
            }
        }

        var single = Run(1);
        Assert.True(single.Losses[2] < single.Losses[0], $"losses {string.Join(", ", single.Losses)}");
        foreach (int threads in new[] { 2, 3 })
        {
            var multi = Run(threads);
            for (int i = 0; i < single.Losses.Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(single.Losses[i]) == BitConverter.SingleToInt32Bits(multi.Losses[i]), $"{threads} threads: loss of step {i}");
            for (int i = 0; i < single.Parameters.Length; i++)
                if (BitConverter.SingleToInt32Bits(single.Parameters[i]) != BitConverter.SingleToInt32Bits(multi.Parameters[i]))
                    Assert.Fail($"{threads} threads: parameter {i} is {multi.Parameters[i]:R}, {single.Parameters[i]:R} on one thread");
        }
    }
}
