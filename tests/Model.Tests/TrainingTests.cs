using System;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Model.Tests;

public class TrainingTests(ITestOutputHelper output)
{
    [Fact]
    public void Training_memorizes_one_fixed_batch()
    {
        var model = new Medium(1) { Training = false };
        int[] tokens = TestData.Tokens(Medium.TokensPerStep, Medium.Vocab, 21);
        int[] targets = TestData.Tokens(Medium.TokensPerStep, Medium.Vocab, 22);
        var optimizer = new AdamW(model, learningRate: 1e-2f, weightDecay: 0f);
        float first = 0, loss = 0;
        for (int step = 0; step < 300; step++)
        {
            loss = model.TrainStep(tokens, targets, optimizer);
            if (step == 0) first = loss;
            if (loss < 0.02f) break;
        }
        output.WriteLine($"loss {first} → {loss}");
        Assert.InRange(first, MathF.Log(Medium.Vocab) - 0.2f, MathF.Log(Medium.Vocab) + 0.2f); // uniform at start
        Assert.True(loss < 0.05f, $"loss after training: {loss}");
    }

    [Fact]
    public void The_same_seed_gives_bit_identical_training_runs()
    {
        float[] Run()
        {
            var model = new Medium(7); // dropout on, so the dropout masks are part of what must repeat
            var optimizer = new AdamW(model, learningRate: 3e-3f);
            var losses = new float[8];
            for (int step = 0; step < losses.Length; step++)
            {
                int[] tokens = TestData.Tokens(Medium.TokensPerStep, Medium.Vocab, (ulong)step);
                int[] targets = TestData.Tokens(Medium.TokensPerStep, Medium.Vocab, (ulong)step + 100);
                losses[step] = model.TrainStep(tokens, targets, optimizer, maxGradientNorm: 1f);
            }
            return losses;
        }
        float[] a = Run(), b = Run();
        for (int i = 0; i < a.Length; i++)
            Assert.Equal(BitConverter.SingleToInt32Bits(a[i]), BitConverter.SingleToInt32Bits(b[i]));
        Assert.NotEqual(a[0], a[^1]); // and training did change something
    }

    [Fact]
    public void Different_seeds_give_different_parameters()
    {
        Assert.False(new Medium(1).Parameters.SequenceEqual(new Medium(2).Parameters));
        Assert.True(new Medium(5).Parameters.SequenceEqual(new Medium(5).Parameters));
    }

    [Fact]
    public void Steady_state_training_and_forward_allocate_nothing()
    {
        var model = new Medium(3);
        var optimizer = new AdamW(model, learningRate: 1e-3f);
        int[] tokens = TestData.Tokens(Medium.TokensPerStep, Medium.Vocab, 1);
        int[] targets = TestData.Tokens(Medium.TokensPerStep, Medium.Vocab, 2);
        model.TrainStep(tokens, targets, optimizer, maxGradientNorm: 1f); // first call: JIT and lazy statics

        // With the whole solution's tests running at once, the first window once read 7,696 bytes and every later
        // one 0: the runtime allocating once on this thread (most likely the tiered JIT as it starts counting calls),
        // not the model. So up to three windows of 20: one that allocates nothing shows that a step allocates
        // nothing, while anything allocated per step shows in every window.
        long training = Windows(() => model.TrainStep(tokens, targets, optimizer, maxGradientNorm: 1f), "training steps");
        long forward = Windows(() => model.Forward(tokens, targets), "forward passes");
        Assert.Equal(0, training);
        Assert.Equal(0, forward);

        long Windows(Action step, string what)
        {
            long bytes = 0;
            for (int window = 0; window < 3; window++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0; i < 20; i++) step();
                bytes = GC.GetAllocatedBytesForCurrentThread() - before;
                output.WriteLine($"20 {what}: {bytes} bytes");
                if (bytes == 0) break;
            }
            return bytes;
        }
    }

    [Fact]
    public void Backward_needs_a_forward_first()
    {
        var model = new Medium(3);
        var error = Assert.Throws<InvalidOperationException>(() => model.Backward());
        Assert.Contains("Forward", error.Message);
    }

    [Fact]
    public void Gradients_accumulate_until_zeroed()
    {
        var model = new SinusoidalPre(1);
        int[] tokens = TestData.Tokens(SinusoidalPre.TokensPerStep, SinusoidalPre.Vocab, 1);
        model.Forward(tokens, tokens);
        model.ZeroGrad();
        model.Backward();
        float[] once = model.Gradients.ToArray();
        model.Forward(tokens, tokens);
        model.Backward();
        for (int i = 0; i < once.Length; i++) Assert.Equal(2 * once[i], model.Gradients[i], 1e-6f);
    }
}
