using System;
using TransformerGen.Threading;
using Xunit;

namespace TransformerGen.Model.Tests;

/// <summary>Gradient accumulation with the kernels split between two threads: nothing allocated on either side.</summary>
[Collection(ThreadCountCollection.Name)]
public sealed class AccumulationThreadingTests
{
    [Fact]
    public void Accumulated_training_with_two_threads_allocates_nothing_on_the_caller_or_the_worker()
    {
        const int microBatches = 2;
        int[] tokens = TestData.Tokens(microBatches * Splittable.TokensPerStep, Splittable.Vocab, 1);
        int[] targets = TestData.Tokens(microBatches * Splittable.TokensPerStep, Splittable.Vocab, 2);
        targets.AsSpan(Splittable.TokensPerStep, 40).Fill(-1); // unequal counts: the buffer is rescaled between passes
        int saved = Parallelism.ThreadCount;
        Parallelism.ThreadCount = 2;
        Contention.Enabled = false; // what splits is the subject here, not what the neighbours leave
        try
        {
            var model = new Splittable(seed: 4);
            var optimizer = new AdamW(model, learningRate: 1e-3f);
            model.TrainStep(tokens, targets, microBatches, optimizer, maxGradientNorm: 1f); // JIT, lazy statics and the worker thread
            model.TrainStep(tokens, targets, microBatches, optimizer, maxGradientNorm: 1f);
            long before = GC.GetAllocatedBytesForCurrentThread(), beforeWorkers = WorkerPool.WorkerAllocatedBytes;
            for (int i = 0; i < 5; i++) model.TrainStep(tokens, targets, microBatches, optimizer, maxGradientNorm: 1f);
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
}
