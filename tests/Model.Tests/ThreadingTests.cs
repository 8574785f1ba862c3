using System;
using System.Linq;
using TransformerGen.Threading;
using Xunit;

namespace TransformerGen.Model.Tests;

/// <summary>
/// The "tiny" sizes: big enough that, with the default work threshold, the matrix products and attention
/// split between two threads.
/// </summary>
[TransformerModel(Vocab = 256, DModel = 64, Heads = 4, Layers = 2, DFF = 256, SeqLen = 32, Batch = 8, Dropout = 0.1f)]
public partial class Splittable { }

/// <summary>Changes the process-wide thread count, so it runs alone, after the other tests.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ThreadCountCollection
{
    public const string Name = "Thread count";
}

[Collection(ThreadCountCollection.Name)]
public sealed class ThreadingTests
{
    private static readonly int[] Tokens = TestData.Tokens(Splittable.TokensPerStep, Splittable.Vocab, 1);
    private static readonly int[] Targets = TestData.Tokens(Splittable.TokensPerStep, Splittable.Vocab, 2);

    [Fact]
    public void Training_and_decoding_are_bit_identical_with_one_two_and_three_threads()
    {
        (float[] Losses, float[] Parameters, float[] Logits) Run(int threads)
        {
            int saved = Parallelism.ThreadCount;
            Parallelism.ThreadCount = threads;
            Contention.Enabled = false; // what splits is the subject here, not what the neighbours leave
            try
            {
                var model = new Splittable(seed: 3);
                var optimizer = new AdamW(model, learningRate: 1e-3f);
                var losses = new float[3];
                for (int step = 0; step < losses.Length; step++) losses[step] = model.TrainStep(Tokens, Targets, optimizer);
                model.Training = false;
                model.Append(Tokens.AsSpan(0, 20));
                float[] logits = model.Append(Tokens.AsSpan(20, 1)).ToArray();
                return (losses, model.Parameters.ToArray(), logits);
            }
            finally
            {
                Parallelism.ThreadCount = saved;
                Contention.Enabled = true;
            }
        }

        var single = Run(1);
        foreach (int threads in new[] { 2, 3 })
        {
            var multi = Run(threads);
            AssertBitIdentical(single.Losses, multi.Losses, $"{threads} threads: loss of step");
            AssertBitIdentical(single.Parameters, multi.Parameters, $"{threads} threads: parameter");
            AssertBitIdentical(single.Logits, multi.Logits, $"{threads} threads: decoded logit");
        }
    }

    [Theory]
    [InlineData(WeightType.Int8)]
    [InlineData(WeightType.BFloat16)]
    public void Reduced_weights_allocate_nothing_in_prompts_decoding_and_encoding_on_one_and_two_threads(WeightType type)
    {
        int saved = Parallelism.ThreadCount;
        Contention.Enabled = false;
        try
        {
            // A prompt of 24 tokens (8-bit products of 16 rows or more run in integers: their activations are rounded into
            // a workspace), single-token steps, and an encoder's sentences laid end to end.
            Splittable decoder = Splittable.ForInference(11, type);
            ExactBert encoder = ExactBert.ForInference(5, type);
            int[] prompt = Enumerable.Range(0, 24).Select(i => (i * 37 + 5) % 256).ToArray();
            int[] lengths = [5, 17, 9];
            int[] sentences = Enumerable.Range(0, lengths.Sum()).Select(i => 1 + i * 7 % 42).ToArray();
            void Run()
            {
                decoder.ResetCache();
                decoder.Append(prompt);
                for (int i = 0; i < 6; i++) decoder.Append(prompt.AsSpan(i, 1));
                encoder.Predict(sentences, lengths);
            }
            foreach (int threads in new[] { 1, 2 })
            {
                Parallelism.ThreadCount = threads;
                Run(); // JIT, lazy statics and the worker thread
                Run();
                long before = GC.GetAllocatedBytesForCurrentThread(), beforeWorkers = WorkerPool.WorkerAllocatedBytes;
                for (int i = 0; i < 5; i++) Run();
                Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
                Assert.Equal(0, WorkerPool.WorkerAllocatedBytes - beforeWorkers);
            }
        }
        finally
        {
            Parallelism.ThreadCount = saved;
            Contention.Enabled = true;
        }
    }

    [Fact]
    public void Training_with_two_threads_allocates_nothing_on_the_caller_or_the_worker()
    {
        int saved = Parallelism.ThreadCount;
        Parallelism.ThreadCount = 2;
        Contention.Enabled = false; // what splits is the subject here, not what the neighbours leave
        try
        {
            var model = new Splittable(seed: 4);
            var optimizer = new AdamW(model, learningRate: 1e-3f);
            model.TrainStep(Tokens, Targets, optimizer); // JIT, lazy statics and the worker thread
            model.TrainStep(Tokens, Targets, optimizer);
            // The workers' own count, not all threads': that would include the test runner's threads too.
            long before = GC.GetAllocatedBytesForCurrentThread(), beforeWorkers = WorkerPool.WorkerAllocatedBytes;
            for (int i = 0; i < 10; i++) model.TrainStep(Tokens, Targets, optimizer);
            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
            Assert.True(WorkerPool.WorkerCount >= 1, "no worker thread was started");
            Assert.Equal(0, WorkerPool.WorkerAllocatedBytes - beforeWorkers);
        }
        finally
        {
            Parallelism.ThreadCount = saved;
            Contention.Enabled = true;
        }
    }

    private static void AssertBitIdentical(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what} {i}: {actual[i]:R}, with one thread {expected[i]:R}");
    }
}
