using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using TransformerGen.EmbeddingServer.Tests.Support;
using TransformerGen.Serving;
using Xunit;

namespace TransformerGen.EmbeddingServer.Tests.Batching;

/// <summary>
/// <see cref="EncoderBatcher"/> on <see cref="ProbeEncoder"/>, whose rows say which ids they were computed from and which
/// records every batch: each caller's row, the limits, arrival order, cancellation, exceptions, disposal.
/// </summary>
public sealed class EncoderBatcherTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private static int[] Ids(int length, int seed) => Enumerable.Range(0, length).Select(i => 1 + (seed * 7 + i * 3) % 48).Where(id => id != ProbeEncoder.Poison).DefaultIfEmpty(1).ToArray();

    private static (EncoderBatcher Batcher, ProbeEncoder[] Probes, List<EncoderBatch> Batches) Start(int workers, EncoderBatcherOptions? options = null, int batch = 4, int seqLen = 16)
    {
        ModelLayout layout = ProbeEncoder.NewLayout(batch, seqLen);
        ProbeEncoder[] probes = Enumerable.Range(0, workers).Select(_ => new ProbeEncoder(layout)).ToArray();
        var batches = new List<EncoderBatch>();
        options ??= new EncoderBatcherOptions();
        var batcher = new EncoderBatcher(probes, new EncoderBatcherOptions
        {
            MaxSequences = options.MaxSequences,
            MaxTokens = options.MaxTokens,
            MaxWait = options.MaxWait,
            QueueCapacity = options.QueueCapacity,
            BatchCompleted = b => { lock (batches) batches.Add(b); },
        });
        return (batcher, probes, batches);
    }

    /// <summary>The exception a call throws synchronously (before any task exists), or null.</summary>
    private static Exception? Refusal(Func<Task<float[]>> call) => Record.Exception(() => { _ = call(); });

    [Fact]
    public async Task Every_caller_gets_the_row_of_its_own_sequence_from_many_threads()
    {
        (EncoderBatcher batcher, ProbeEncoder[] probes, List<EncoderBatch> batches) = Start(workers: 3);
        await using (batcher)
        {
            var callers = Enumerable.Range(0, 16).Select(c => Task.Run(async () =>
            {
                for (int r = 0; r < 40; r++)
                {
                    int[] ids = Ids(1 + (c * 5 + r) % 16, c * 100 + r);
                    float[] row = await batcher.PredictAsync(ids);
                    Assert.Equal(ProbeEncoder.Expected(ids), row);
                }
            })).ToArray();
            await Task.WhenAll(callers).WaitAsync(Patience);
        }

        Assert.All(probes, p => Assert.Equal(0, p.Overlaps));
        Assert.Equal(16 * 40, batches.Sum(b => b.Sequences));
        Assert.Equal(16 * 40, probes.Sum(p => p.Calls.Sum(c => c.Length)));
        Assert.Contains(batches, b => b.Sequences > 1); // 16 callers on 3 instances do share batches
    }

    [Fact]
    public async Task Batches_hold_at_most_MaxSequences_and_MaxTokens()
    {
        (EncoderBatcher batcher, ProbeEncoder[] probes, List<EncoderBatch> batches) =
            Start(workers: 1, new EncoderBatcherOptions { MaxSequences = 3, MaxTokens = 20, MaxWait = TimeSpan.FromMilliseconds(50) }, batch: 4, seqLen: 16);
        await using (batcher)
        {
            ProbeEncoder probe = probes[0];
            probe.Hold();
            Task<float[]> first = batcher.PredictAsync(Ids(2, 0));
            Assert.True(await probe.Started.WaitAsync(Patience));
            // While the instance is busy, 30 sequences of 1 to 16 tokens queue up; then every batch is as full as the limits let it be.
            int[][] sequences = Enumerable.Range(1, 30).Select(i => Ids(1 + i * 7 % 16, i)).ToArray();
            Task<float[]>[] rows = sequences.Select(ids => batcher.PredictAsync(ids)).ToArray();
            probe.Release();
            await Task.WhenAll(rows.Append(first)).WaitAsync(Patience);
            for (int i = 0; i < sequences.Length; i++) Assert.Equal(ProbeEncoder.Expected(sequences[i]), await rows[i]);

            int[][] calls = probe.Calls.Skip(1).ToArray();
            Assert.All(calls, lengths => Assert.InRange(lengths.Length, 1, 3));
            Assert.All(calls, lengths => Assert.InRange(lengths.Sum(), 1, 20));
            // Greedy in arrival order: a batch closes only when three are in it or the next one would pass 20 tokens.
            int next = 0;
            foreach (int[] lengths in calls)
            {
                Assert.Equal(sequences.Skip(next).Take(lengths.Length).Select(s => s.Length), lengths);
                next += lengths.Length;
                if (next < sequences.Length) Assert.True(lengths.Length == 3 || lengths.Sum() + sequences[next].Length > 20, $"a batch of {string.Join(",", lengths)} closed early");
            }
            Assert.Equal(sequences.Length, next);
        }
        Assert.Equal(31, batches.Sum(b => b.Sequences));
        Assert.All(batches, b => Assert.True(b.Sequences <= 3 && b.Tokens <= 20));
    }

    [Fact]
    public async Task A_lone_caller_is_not_held_back_and_the_wait_returns_once_sequences_queue_up_together()
    {
        TimeSpan wait = TimeSpan.FromSeconds(1);
        (EncoderBatcher batcher, ProbeEncoder[] probes, _) = Start(workers: 1, new EncoderBatcherOptions { MaxWait = wait });
        await using (batcher)
        {
            ProbeEncoder probe = probes[0];
            // The first batch waits (nothing is known yet) and holds one sequence; after it, one caller asking again and
            // again is answered at once each time instead of after the wait.
            await batcher.PredictAsync(Ids(3, 0)).WaitAsync(Patience);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            for (int i = 1; i <= 5; i++) Assert.Equal(ProbeEncoder.Expected(Ids(3, i)), await batcher.PredictAsync(Ids(3, i)).WaitAsync(Patience));
            Assert.True(clock.Elapsed < 2.5 * wait, $"five lone sequences took {clock.Elapsed.TotalMilliseconds:F0} ms, as if each had waited {wait.TotalMilliseconds:F0} ms");

            // Two sequences queue up behind a busy instance and run together: the next batch waits again, so a sequence
            // arriving 50 ms after the first joins it.
            while (probe.Started.Wait(0)) { } // the six batches' starts, counted already
            probe.Hold();
            Task<float[]> busy = batcher.PredictAsync(Ids(1, 9));
            Assert.True(await probe.Started.WaitAsync(Patience));
            Task<float[]> a = batcher.PredictAsync(Ids(4, 1)), b = batcher.PredictAsync(Ids(5, 2));
            probe.Release();
            await Task.WhenAll(busy, a, b).WaitAsync(Patience);
            Task<float[]> c = batcher.PredictAsync(Ids(6, 3));
            await Task.Delay(50);
            Task<float[]> d = batcher.PredictAsync(Ids(7, 4));
            await Task.WhenAll(c, d).WaitAsync(Patience);
            Assert.Equal([[3], [3], [3], [3], [3], [3], [1], [4, 5], [6, 7]], probe.Calls.ToArray());
        }
    }

    [Fact]
    public async Task A_sequence_that_does_not_fit_is_not_overtaken_by_a_shorter_one()
    {
        (EncoderBatcher batcher, ProbeEncoder[] probes, _) =
            Start(workers: 1, new EncoderBatcherOptions { MaxTokens = 20, MaxWait = TimeSpan.FromMilliseconds(100) }, batch: 4, seqLen: 16);
        await using (batcher)
        {
            ProbeEncoder probe = probes[0];
            probe.Hold();
            Task<float[]> busy = batcher.PredictAsync(Ids(1, 9));
            Assert.True(await probe.Started.WaitAsync(Patience));
            Task<float[]> a = batcher.PredictAsync(Ids(12, 1));
            Task<float[]> b = batcher.PredictAsync(Ids(12, 2));
            Task<float[]> c = batcher.PredictAsync(Ids(3, 3));
            probe.Release();
            await Task.WhenAll(busy, a, b, c).WaitAsync(Patience);
            // b does not fit beside a; c, which would, waits behind b rather than overtake it.
            Assert.Equal([[1], [12], [12, 3]], probe.Calls.ToArray());
        }
    }

    [Fact]
    public async Task A_cancelled_caller_gets_a_cancelled_task_and_its_sequence_is_dropped_without_touching_others()
    {
        (EncoderBatcher batcher, ProbeEncoder[] probes, _) = Start(workers: 1, new EncoderBatcherOptions { MaxWait = TimeSpan.Zero });
        await using (batcher)
        {
            ProbeEncoder probe = probes[0];
            probe.Hold();
            Task<float[]> busy = batcher.PredictAsync(Ids(2, 0));
            Assert.True(await probe.Started.WaitAsync(Patience));
            using var cancel = new CancellationTokenSource();
            int[] before = Ids(5, 1), cancelled = Ids(7, 2), after = Ids(9, 3);
            Task<float[]> first = batcher.PredictAsync(before);
            Task<float[]> gone = batcher.PredictAsync(cancelled, cancel.Token);
            Task<float[]> last = batcher.PredictAsync(after);
            cancel.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => gone.WaitAsync(Patience));
            Assert.True(gone.IsCanceled);
            probe.Release();
            Assert.Equal(ProbeEncoder.Expected(before), await first.WaitAsync(Patience));
            Assert.Equal(ProbeEncoder.Expected(after), await last.WaitAsync(Patience));
            await busy;
            Assert.DoesNotContain(probe.Calls, lengths => lengths.Contains(7));

            Task<float[]> already = batcher.PredictAsync(before, new CancellationToken(canceled: true));
            Assert.True(already.IsCanceled);
        }
    }

    [Fact]
    public async Task A_caller_cancelled_after_its_batch_formed_is_cancelled_and_the_rest_of_the_batch_answered()
    {
        (EncoderBatcher batcher, ProbeEncoder[] probes, _) = Start(workers: 1, new EncoderBatcherOptions { MaxWait = TimeSpan.FromMilliseconds(200) });
        await using (batcher)
        {
            ProbeEncoder probe = probes[0];
            probe.Hold();
            using var cancel = new CancellationTokenSource();
            int[] kept = Ids(4, 1);
            Task<float[]> gone = batcher.PredictAsync(Ids(6, 2), cancel.Token);
            Task<float[]> answered = batcher.PredictAsync(kept);
            Assert.True(await probe.Started.WaitAsync(Patience)); // both are inside the running batch
            cancel.Cancel();
            probe.Release();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => gone.WaitAsync(Patience));
            Assert.Equal(ProbeEncoder.Expected(kept), await answered.WaitAsync(Patience));
        }
    }

    [Fact]
    public async Task An_exception_reaches_only_the_caller_whose_sequence_caused_it()
    {
        (EncoderBatcher batcher, ProbeEncoder[] probes, _) = Start(workers: 1, new EncoderBatcherOptions { MaxWait = TimeSpan.FromMilliseconds(200) });
        await using (batcher)
        {
            ProbeEncoder probe = probes[0];
            probe.Hold();
            Task<float[]> busy = batcher.PredictAsync(Ids(2, 0));
            Assert.True(await probe.Started.WaitAsync(Patience));
            int[] good1 = Ids(3, 1), bad = [1, ProbeEncoder.Poison, 2], good2 = Ids(5, 2);
            Task<float[]>[] batch = [batcher.PredictAsync(good1), batcher.PredictAsync(bad), batcher.PredictAsync(good2)];
            probe.Release();
            await busy.WaitAsync(Patience);
            Assert.Equal(ProbeEncoder.Expected(good1), await batch[0].WaitAsync(Patience));
            InvalidOperationException e = await Assert.ThrowsAsync<InvalidOperationException>(() => batch[1].WaitAsync(Patience));
            Assert.Equal("the probe refuses id 13", e.Message);
            Assert.Equal(ProbeEncoder.Expected(good2), await batch[2].WaitAsync(Patience));
            // The three ran together, failed, and ran again one by one.
            Assert.Equal([[2], [3, 3, 5], [3], [3], [5]], probe.Calls.ToArray());

            // The instance goes on serving.
            Assert.Equal(ProbeEncoder.Expected(good1), await batcher.PredictAsync(good1).WaitAsync(Patience));
        }
    }

    [Fact]
    public async Task Sequences_the_model_would_refuse_are_refused_before_they_are_queued()
    {
        (EncoderBatcher batcher, ProbeEncoder[] probes, _) = Start(workers: 1, seqLen: 16);
        await using (batcher)
        {
            Assert.IsType<ArgumentException>(Refusal(() => batcher.PredictAsync(ReadOnlySpan<int>.Empty)));
            Assert.Contains("1 to SeqLen = 16 tokens of ProbeEncoder, got 17", Assert.IsType<ArgumentException>(Refusal(() => batcher.PredictAsync(new int[17]))).Message);
            Assert.Contains("token 2 is 50, outside the vocabulary of ProbeEncoder (0 to 49)",
                Assert.IsType<ArgumentOutOfRangeException>(Refusal(() => batcher.PredictAsync([1, 2, 50]))).Message);
            Assert.IsType<ArgumentOutOfRangeException>(Refusal(() => batcher.PredictAsync([-1])));
            Assert.Equal(new[] { 1f, 1f, 1f }, await batcher.PredictAsync([1]).WaitAsync(Patience));
        }
        Assert.Single(probes[0].Calls);
    }

    [Fact]
    public async Task Disposal_runs_what_is_queued_then_refuses_new_sequences()
    {
        (EncoderBatcher batcher, ProbeEncoder[] probes, _) = Start(workers: 2, new EncoderBatcherOptions { MaxSequences = 1 });
        probes[0].Hold();
        probes[1].Hold();
        Task<float[]>[] queued = Enumerable.Range(0, 10).Select(i => batcher.PredictAsync(Ids(3, i))).ToArray();
        ValueTask disposing = batcher.DisposeAsync();
        Assert.IsType<ObjectDisposedException>(Refusal(() => batcher.PredictAsync([1])));
        Assert.False(disposing.IsCompleted);
        probes[0].Release();
        probes[1].Release();
        await disposing.AsTask().WaitAsync(Patience);
        for (int i = 0; i < queued.Length; i++) Assert.Equal(ProbeEncoder.Expected(Ids(3, i)), await queued[i]);
        Assert.Equal(10, probes.Sum(p => p.Calls.Count));
        await batcher.DisposeAsync(); // twice is fine
    }

    [Fact]
    public async Task A_caller_waiting_for_room_in_a_full_queue_can_cancel_and_disposal_still_drains()
    {
        (EncoderBatcher batcher, ProbeEncoder[] probes, _) = Start(workers: 1, new EncoderBatcherOptions { MaxSequences = 1, QueueCapacity = 2, MaxWait = TimeSpan.Zero });
        ProbeEncoder probe = probes[0];
        probe.Hold();
        Task<float[]> running = batcher.PredictAsync(Ids(1, 0));
        Assert.True(await probe.Started.WaitAsync(Patience));
        Task<float[]>[] queued = [batcher.PredictAsync(Ids(2, 1)), batcher.PredictAsync(Ids(3, 2))];
        using var cancel = new CancellationTokenSource();
        Task<float[]> waiting = batcher.PredictAsync(Ids(4, 3), cancel.Token);
        Assert.False(waiting.IsCompleted);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(Patience));
        probe.Release();
        await batcher.DisposeAsync().AsTask().WaitAsync(Patience);
        Assert.Equal(ProbeEncoder.Expected(Ids(1, 0)), await running);
        Assert.All(queued, t => Assert.True(t.IsCompletedSuccessfully));
        Assert.Equal([[1], [2], [3]], probe.Calls.ToArray());
    }

    [Fact]
    public void Refuses_limits_the_model_cannot_hold_and_instances_given_twice()
    {
        ModelLayout layout = ProbeEncoder.NewLayout(batch: 4, seqLen: 16);
        var one = new ProbeEncoder(layout);
        Assert.Contains("MaxSequences = 5 is outside 1 to the model's Batch = 4",
            Assert.Throws<ArgumentException>(() => new EncoderBatcher([one], new EncoderBatcherOptions { MaxSequences = 5 })).Message);
        Assert.Contains("MaxTokens = 15 is outside SeqLen = 16",
            Assert.Throws<ArgumentException>(() => new EncoderBatcher([one], new EncoderBatcherOptions { MaxTokens = 15 })).Message);
        Assert.Contains("MaxTokens = 65 is outside",
            Assert.Throws<ArgumentException>(() => new EncoderBatcher([one], new EncoderBatcherOptions { MaxTokens = 65 })).Message);
        Assert.Contains("instances[1] is given twice", Assert.Throws<ArgumentException>(() => new EncoderBatcher([one, one])).Message);
        Assert.Contains("one batcher serves one model",
            Assert.Throws<ArgumentException>(() => new EncoderBatcher([one, new ProbeEncoder(ProbeEncoder.NewLayout())])).Message);
        Assert.Throws<ArgumentException>(() => new EncoderBatcher([]));
    }
}
