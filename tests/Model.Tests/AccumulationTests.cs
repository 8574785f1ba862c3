using System;
using TransformerGen;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Model.Tests;

// Each model twice: as trained with three micro-batches, and declared with three times its batch. Nothing else differs,
// so both initialize the same parameters from a seed. No dropout: its masks are drawn per pass and would differ.

[TransformerModel(Vocab = 11, DModel = 12, Heads = 3, Layers = 2, DFF = 20, SeqLen = 5, Batch = 2,
    Positional = Positional.Rotary, Norm = NormPlacement.Pre, LabelSmoothing = 0.1f)]
public partial class AccumulatedLm { }

[TransformerModel(Vocab = 11, DModel = 12, Heads = 3, Layers = 2, DFF = 20, SeqLen = 5, Batch = 6,
    Positional = Positional.Rotary, Norm = NormPlacement.Pre, LabelSmoothing = 0.1f)]
public partial class AccumulatedLmWhole { }

[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 11, TargetVocab = 9, DModel = 12, Heads = 3,
    EncoderLayers = 2, DecoderLayers = 1, DFF = 20, SeqLen = 6, TargetSeqLen = 5, Batch = 2,
    PadToken = 0, BosToken = 1, EosToken = 2, Positional = Positional.Learned, Norm = NormPlacement.Post)]
public partial class AccumulatedSeq2Seq { }

[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 11, TargetVocab = 9, DModel = 12, Heads = 3,
    EncoderLayers = 2, DecoderLayers = 1, DFF = 20, SeqLen = 6, TargetSeqLen = 5, Batch = 6,
    PadToken = 0, BosToken = 1, EosToken = 2, Positional = Positional.Learned, Norm = NormPlacement.Post)]
public partial class AccumulatedSeq2SeqWhole { }

[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 11, Classes = 3, DModel = 12, Heads = 3, Layers = 2, DFF = 20,
    SeqLen = 6, Batch = 3, PadToken = 0, Pooling = Pooling.Mean, Norm = NormPlacement.Pre, Positional = Positional.Learned)]
public partial class AccumulatedClassifier { }

[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 11, Classes = 3, DModel = 12, Heads = 3, Layers = 2, DFF = 20,
    SeqLen = 6, Batch = 9, PadToken = 0, Pooling = Pooling.Mean, Norm = NormPlacement.Pre, Positional = Positional.Learned)]
public partial class AccumulatedClassifierWhole { }

/// <summary>
/// Gradient accumulation: k micro-batches give the gradient, loss and update of one batch of k·Batch sequences, with
/// ignored targets spread unevenly across the micro-batches (one of them all ignored).
/// </summary>
public class AccumulationTests(ITestOutputHelper output)
{
    private const int MicroBatches = 3;

    /// <summary>
    /// Targets of k micro-batches with <paramref name="ignored"/>[j] of micro-batch j's targets set to -1 (chosen at random
    /// positions), besides any that padding turns into ignored.
    /// </summary>
    private static int[] Targets(int perMicroBatch, int vocab, int[] ignored, ulong seed)
    {
        int[] targets = TestData.Tokens(perMicroBatch * ignored.Length, vocab, seed);
        var rng = new Rng(seed + 100);
        for (int j = 0; j < ignored.Length; j++)
        {
            Span<int> micro = targets.AsSpan(j * perMicroBatch, perMicroBatch);
            for (int done = 0; done < ignored[j];)
            {
                int i = rng.NextInt(perMicroBatch);
                if (micro[i] < 0) continue;
                micro[i] = -1;
                done++;
            }
        }
        return targets;
    }

    private void AssertSameAsWholeBatch(TransformerModel micro, TransformerModel whole, int[] ignored, int targetVocab, float gradientTolerance, float parameterTolerance)
    {
        Assert.Equal(MicroBatches * micro.Layout.Batch, whole.Layout.Batch);
        TestData.Perturb(micro, 7);
        TestData.Perturb(whole, 7);
        Assert.True(micro.Parameters.SequenceEqual(whole.Parameters));

        int[] tokens = TestData.Tokens(whole.Layout.TokensPerStep, whole.Layout.Vocab, 11);
        int[] targets = Targets(micro.Layout.TargetLength, targetVocab, ignored, 12);

        // SGD with momentum and weight decay: its update is linear in the gradient, so float rounding stays rounding.
        // (AdamW's first step is lr·g/(|g| + eps), which turns a rounding difference in a gradient near 0 into one of up
        // to lr·difference/eps: 2e-5 here with eps 1e-6, from gradients that agree to 3e-7 of their largest.)
        var microOptimizer = new Sgd(micro, learningRate: 0.1f, momentum: 0.9f, weightDecay: 0.01f);
        var wholeOptimizer = new Sgd(whole, learningRate: 0.1f, momentum: 0.9f, weightDecay: 0.01f);
        float microLoss = micro.TrainStep(tokens, targets, MicroBatches, microOptimizer, maxGradientNorm: 0.5f);
        float wholeLoss = whole.TrainStep(tokens, targets, wholeOptimizer, maxGradientNorm: 0.5f);

        // After the step the gradient buffers hold the clipped gradients: the accumulated one must have been clipped with
        // the whole batch's norm too. Compared against the whole gradient's largest magnitude (float rounding of sums
        // taken in another order).
        float largest = 0f, gradientError = 0f, parameterError = 0f;
        for (int i = 0; i < whole.Gradients.Length; i++)
        {
            largest = Math.Max(largest, Math.Abs(whole.Gradients[i]));
            gradientError = Math.Max(gradientError, Math.Abs(micro.Gradients[i] - whole.Gradients[i]));
            parameterError = Math.Max(parameterError, Math.Abs(micro.Parameters[i] - whole.Parameters[i]) / Math.Max(1f, Math.Abs(whole.Parameters[i])));
        }
        output.WriteLine($"{micro.Layout.Name}: loss {microLoss} vs {wholeLoss}; largest gradient {largest}, largest difference {gradientError} ({gradientError / largest:E2} of it); " +
            $"parameters after one SGD step differ by at most {parameterError} (relative to max(1, |p|))");
        Assert.True(largest > 0f);
        Assert.Equal(wholeLoss, microLoss, 1e-6f * Math.Abs(wholeLoss));
        Assert.True(gradientError <= gradientTolerance * largest, $"gradients differ by {gradientError} (largest {largest})");
        Assert.True(parameterError <= parameterTolerance, $"parameters differ by {parameterError} (relative to max(1, |p|)) after one step: more than two float ulps at 1");
        Assert.Equal(1, microOptimizer.StepCount);
    }

    [Fact]
    public void A_decoder_only_model_accumulates_the_gradient_of_a_three_times_larger_batch()
    {
        // 10 targets per micro-batch: 3 ignored, all ignored, none.
        AssertSameAsWholeBatch(new AccumulatedLm(1), new AccumulatedLmWhole(1), [3, 10, 0], AccumulatedLm.Vocab, 2e-6f, 2.4e-7f);
    }

    [Fact]
    public void A_seq2seq_model_accumulates_the_gradient_of_a_three_times_larger_batch()
    {
        // 10 targets per micro-batch, and padding targets (id 0) besides.
        AssertSameAsWholeBatch(new AccumulatedSeq2Seq(2), new AccumulatedSeq2SeqWhole(2), [0, 6, 1], AccumulatedSeq2Seq.TargetVocab, 2e-6f, 2.4e-7f);
    }

    [Fact]
    public void An_encoder_only_classifier_accumulates_the_gradient_of_a_three_times_larger_batch()
    {
        // 3 classes per micro-batch: 1 ignored, all ignored, none; padding tokens in the inputs.
        AssertSameAsWholeBatch(new AccumulatedClassifier(3), new AccumulatedClassifierWhole(3), [1, 3, 0], AccumulatedClassifier.Classes, 2e-6f, 2.4e-7f);
    }

    [Fact]
    public void One_micro_batch_is_exactly_forward_and_backward()
    {
        var model = new AccumulatedLm(4);
        TestData.Perturb(model, 5);
        int[] tokens = TestData.Tokens(AccumulatedLm.TokensPerStep, AccumulatedLm.Vocab, 6);
        int[] targets = Targets(AccumulatedLm.TokensPerStep, AccumulatedLm.Vocab, [4], 7);
        float loss = model.Forward(tokens, targets);
        model.ZeroGrad();
        model.Backward();
        float[] expected = model.Gradients.ToArray();
        Assert.Equal(loss, model.AccumulateGradients(tokens, targets, 1));
        Assert.True(model.Gradients.SequenceEqual(expected));
    }

    [Fact]
    public void Micro_batches_with_equal_counts_average_their_gradients()
    {
        // Every count equal: no rescaling between passes, one division by k at the end. Checked against the mean of the
        // three gradients taken one by one.
        var model = new AccumulatedLm(8);
        TestData.Perturb(model, 9);
        int[] tokens = TestData.Tokens(MicroBatches * AccumulatedLm.TokensPerStep, AccumulatedLm.Vocab, 10);
        int[] targets = Targets(AccumulatedLm.TokensPerStep, AccumulatedLm.Vocab, [2, 2, 2], 11);
        var mean = new float[model.Gradients.Length];
        float meanLoss = 0f;
        int n = AccumulatedLm.TokensPerStep;
        for (int j = 0; j < MicroBatches; j++)
        {
            meanLoss += model.Forward(tokens.AsSpan(j * n, n), targets.AsSpan(j * n, n)) / MicroBatches;
            model.ZeroGrad();
            model.Backward();
            for (int i = 0; i < mean.Length; i++) mean[i] += model.Gradients[i] / MicroBatches;
        }
        Assert.Equal(meanLoss, model.AccumulateGradients(tokens, targets, MicroBatches), 1e-6f);
        for (int i = 0; i < mean.Length; i++) Assert.Equal(mean[i], model.Gradients[i], 1e-6f);
    }

    [Fact]
    public void When_every_target_is_ignored_the_loss_and_gradient_are_zero()
    {
        var model = new AccumulatedLm(12);
        int[] tokens = TestData.Tokens(MicroBatches * AccumulatedLm.TokensPerStep, AccumulatedLm.Vocab, 13);
        var targets = new int[MicroBatches * AccumulatedLm.TokensPerStep];
        targets.AsSpan().Fill(-1);
        model.Gradients.Fill(1f);
        Assert.Equal(0f, model.AccumulateGradients(tokens, targets, MicroBatches));
        Assert.True(model.Gradients.IndexOfAnyExcept(0f) < 0);
    }

    [Fact]
    public void Wrong_lengths_and_ids_are_refused_before_any_pass_runs()
    {
        var model = new AccumulatedLm(14);
        var optimizer = new AdamW(model);
        int n = AccumulatedLm.TokensPerStep;
        int[] tokens = TestData.Tokens(MicroBatches * n, AccumulatedLm.Vocab, 15);
        int[] targets = TestData.Tokens(MicroBatches * n, AccumulatedLm.Vocab, 16);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.TrainStep(tokens, targets, 0, optimizer));
        var e = Assert.Throws<ArgumentException>(() => model.TrainStep(tokens.AsSpan(1), targets, MicroBatches, optimizer));
        Assert.Contains("3 micro-batches need 3·Batch·SeqLen = 3·2·5 = 30 tokens, got 29", e.Message);
        Assert.Throws<ArgumentException>(() => model.TrainStep(tokens, targets.AsSpan(0, n), MicroBatches, optimizer));

        // A bad id in the last micro-batch: nothing ran, so the gradients are as they were.
        model.Gradients.Fill(2f);
        tokens[2 * n + 3] = AccumulatedLm.Vocab;
        var range = Assert.Throws<ArgumentOutOfRangeException>(() => model.TrainStep(tokens, targets, MicroBatches, optimizer));
        Assert.Contains($"tokens[{2 * n + 3}]", range.Message);
        Assert.True(model.Gradients.IndexOfAnyExcept(2f) < 0);
        Assert.Equal(0, optimizer.StepCount);
    }

    [Fact]
    public void The_divergence_guard_judges_the_accumulated_step_as_a_whole()
    {
        var model = new AccumulatedSeq2Seq(17);
        var optimizer = new AdamW(model, learningRate: 1e-2f);
        int[] tokens = TestData.Tokens(MicroBatches * AccumulatedSeq2Seq.TokensPerStep, AccumulatedSeq2Seq.Vocab, 18);
        int[] targets = TestData.Tokens(MicroBatches * model.Layout.TargetLength, AccumulatedSeq2Seq.TargetVocab, 19);
        model.TrainStep(tokens, targets, MicroBatches, optimizer);

        // An infinite source token embedding that only the last micro-batch reads: its loss is NaN, the others' finite.
        int n = AccumulatedSeq2Seq.TokensPerStep;
        tokens.AsSpan(0, 2 * n).Replace(10, 9);
        tokens[2 * n] = 10;
        ParameterTensor? embedding = null;
        foreach (ParameterTensor t in model.ParameterTensors) if (t.Name == "source_embedding.weight") embedding = t;
        Assert.NotNull(embedding);
        model.Parameters[embedding.Offset + 10 * AccumulatedSeq2Seq.DModel] = float.PositiveInfinity;
        float[] parameters = model.Parameters.ToArray(), m = optimizer.FirstMoment.ToArray();

        Assert.Throws<NonFiniteStepException>(() => model.TrainStep(tokens, targets, MicroBatches, optimizer));
        Assert.True(model.Parameters.SequenceEqual(parameters));
        Assert.True(optimizer.FirstMoment.SequenceEqual(m));
        Assert.Equal(1, optimizer.StepCount);

        model.NonFiniteSteps = NonFiniteStepPolicy.Skip;
        model.TrainStep(tokens, targets, MicroBatches, optimizer);
        Assert.Equal(1, model.SkippedSteps);
        Assert.Equal(1, optimizer.StepCount);
        Assert.True(model.Parameters.SequenceEqual(parameters));
    }

    [Fact]
    public void Accumulated_training_steps_allocate_nothing()
    {
        var model = new Medium(3);
        var optimizer = new AdamW(model, learningRate: 1e-3f);
        int[] tokens = TestData.Tokens(MicroBatches * Medium.TokensPerStep, Medium.Vocab, 1);
        int[] targets = Targets(Medium.TokensPerStep, Medium.Vocab, [0, 5, Medium.TokensPerStep], 2); // rescaling and a skipped micro-batch
        model.TrainStep(tokens, targets, MicroBatches, optimizer, maxGradientNorm: 1f); // JIT and lazy statics

        // Up to three windows, as the single-batch test: the runtime may allocate once on this thread, a step never.
        long bytes = 0;
        for (int window = 0; window < 3; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 10; i++) model.TrainStep(tokens, targets, MicroBatches, optimizer, maxGradientNorm: 1f);
            bytes = GC.GetAllocatedBytesForCurrentThread() - before;
            output.WriteLine($"10 accumulated steps of {MicroBatches} micro-batches: {bytes} bytes");
            if (bytes == 0) break;
        }
        Assert.Equal(0, bytes);
    }
}
