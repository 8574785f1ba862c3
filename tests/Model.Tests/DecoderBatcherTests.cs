using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using TransformerGen.Serving;
using Xunit;

namespace TransformerGen.Model.Tests;

/// <summary>
/// Continuous batching of generations over one decoder instance: every caller gets the tokens its generation gives alone
/// (greedy and seeded sampling, prompts fed in chunks), stop tokens, limits and a full cache end a generation, a caller
/// that cancels or stops early frees its slot without disturbing the others, and bad prompts are refused at the call.
/// </summary>
public class DecoderBatcherTests
{
    private const ulong Seed = 5;

    private static int[] Prompt(int length, int seed) => Enumerable.Range(0, length).Select(i => (seed * 13 + i * 7 + i * i) % LlamaSequences.Vocab).ToArray();

    /// <summary>
    /// The generation run alone on its own instance, one Append per token, as the batcher promises to match; by default it
    /// stops at the model's end-of-sequence id (2, from the Llama config), as the batcher does.
    /// </summary>
    private static List<int> Alone(int[] prompt, int maxNewTokens, Sampler sampler, ICollection<int>? stop = null)
    {
        LanguageModel model = LlamaSequences.ForInference(Seed);
        Assert.Equal(2, model.Layout.EosToken);
        stop ??= [model.Layout.EosToken];
        var output = new List<int>();
        var one = new int[1];
        ReadOnlySpan<float> logits = model.Append(prompt);
        while (true)
        {
            int next = sampler.Sample(logits, prompt, CollectionsMarshal.AsSpan(output));
            if (stop.Contains(next)) break;
            output.Add(next);
            if (output.Count == maxNewTokens || model.CacheLength == model.Layout.SeqLen) break;
            one[0] = next;
            logits = model.Append(one);
        }
        return output;
    }

    private static async Task<List<int>> Collect(IAsyncEnumerable<int> tokens)
    {
        var list = new List<int>();
        await foreach (int token in tokens) list.Add(token);
        return list;
    }

    private static Sampler Sampling(int seed) => new((ulong)seed) { Temperature = 0.9f, TopK = 40 };

    // Strong penalties, so that they change what these tiny models say.
    private static Sampler Penalized(int seed) => new((ulong)seed) { Temperature = 0.9f, TopK = 40, RepetitionPenalty = 3f, FrequencyPenalty = 2f, PresencePenalty = 1f };

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task Every_caller_gets_what_its_generation_gives_alone(bool sampled, bool penalized)
    {
        Sampler SamplerOf(int i) => penalized ? Penalized(i) : Sampling(i);
        var steps = new ConcurrentQueue<DecoderStep>();
        await using var batcher = new DecoderBatcher(LlamaSequences.ForInference(Seed), new DecoderBatcherOptions { MaxTokensPerStep = 8, StepCompleted = steps.Enqueue });
        // Ten generations for four slots; prompts of 1 to 15 tokens (longer than the step budget: fed in chunks), limits
        // of 2 to 20 tokens (some run into the end of the cache at SeqLen = 19).
        var cases = Enumerable.Range(0, 10).Select(i => (Prompt: Prompt(1 + i * 3 % 15, i), Max: 2 + i * 7 % 19)).ToArray();
        Task<List<int>>[] running = cases.Select((c, i) => Collect(batcher.GenerateAsync(c.Prompt, c.Max, sampled ? SamplerOf(i) : null))).ToArray();
        List<int>[] results = await Task.WhenAll(running);

        for (int i = 0; i < cases.Length; i++)
        {
            List<int> expected = Alone(cases[i].Prompt, cases[i].Max, sampled ? SamplerOf(i) : new Sampler(0) { Temperature = 0f });
            Assert.Equal(expected, results[i]);
            Assert.True(results[i].Count <= Math.Min(cases[i].Max, LlamaSequences.SeqLen - cases[i].Prompt.Length + 1));
        }
        // The penalties read each generation's own prompt and tokens: without them some generation comes out otherwise.
        if (penalized) Assert.Contains(Enumerable.Range(0, cases.Length), i => !Alone(cases[i].Prompt, cases[i].Max, Sampling(i)).SequenceEqual(results[i]));
        Assert.All(steps, s => Assert.InRange(s.Tokens, 1, 8));
        Assert.All(steps, s => Assert.InRange(s.Sequences, 1, 4));
        Assert.Contains(steps, s => s.Sequences > 1);
        // Every token returned was sampled in a step, and so was each stop token (the model's end-of-sequence id) that ended one.
        Assert.InRange(steps.Sum(s => s.Sampled), results.Sum(r => r.Count), results.Sum(r => r.Count) + cases.Length);
        Assert.Equal(0, batcher.Active);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_prompt_that_continues_a_finished_generation_runs_only_what_its_slot_does_not_hold(bool reuse)
    {
        var steps = new ConcurrentQueue<DecoderStep>();
        await using var batcher = new DecoderBatcher(LlamaSequences.ForInference(Seed), new DecoderBatcherOptions { MaxTokensPerStep = 8, StepCompleted = steps.Enqueue, ReusePrefixes = reuse });
        // A turn, then another generation elsewhere, then the next turn: the first turn's prompt, its reply and new tokens.
        int[] first = Prompt(6, 1);
        List<int> reply = await Collect(batcher.GenerateAsync(first, 4));
        Assert.Equal(4, reply.Count); // ended by its limit: the last token was drawn, not cached
        await Collect(batcher.GenerateAsync(Prompt(5, 2), 3));
        int[] next = [.. first, .. reply, 3, 1];
        int told = -1;
        List<int> continued = await Collect(batcher.GenerateAsync(next, 5, sampler: null, admitted: reused => told = reused));

        Assert.Equal(Alone(next, 5, new Sampler(0) { Temperature = 0f }), continued);
        int expected = reuse ? first.Length + reply.Count - 1 : 0;
        Assert.Equal(expected, batcher.ReusedPromptTokens);
        Assert.Equal(expected, told);
        Assert.Equal(expected, steps.Sum(s => s.ReusedPromptTokens));
        // The prompt ran in ⌈(12 − reused) / 8⌉ steps of its own: 1 with the cache's 9 tokens, 2 without.
        Assert.Equal(next.Length - expected, steps.TakeLast(5).First().Tokens + (reuse ? 0 : steps.TakeLast(6).First().Tokens));

        // A prompt that is all in a slot's cache still runs its last token, for the logits.
        List<int> again = await Collect(batcher.GenerateAsync(next[..9], 2));
        Assert.Equal(Alone(next[..9], 2, new Sampler(0) { Temperature = 0f }), again);
        Assert.Equal(expected + (reuse ? 8 : 0), batcher.ReusedPromptTokens);
    }

    [Fact]
    public async Task A_stop_token_ends_the_generation_and_is_not_returned()
    {
        int[] prompt = Prompt(4, 1);
        List<int> free = Alone(prompt, 12, new Sampler(0) { Temperature = 0f }, stop: []);
        int stop = free[3];
        await using var batcher = new DecoderBatcher(LlamaSequences.ForInference(Seed), new DecoderBatcherOptions { StopTokens = [stop] });
        List<int> stopped = await Collect(batcher.GenerateAsync(prompt, 12));
        Assert.Equal(free.TakeWhile(t => t != stop), stopped);
        Assert.DoesNotContain(stop, stopped);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_caller_that_cancels_or_stops_early_leaves_at_the_next_step_and_the_others_go_on(bool cancel)
    {
        // After each step the batcher's thread waits on a gate until the first token has been taken, so what runs after
        // it is known exactly. The generation that leaves is queued first: the first step takes it and samples its first token.
        var steps = new ConcurrentQueue<DecoderStep>();
        using var gate = new SemaphoreSlim(0);
        bool open = false;
        await using var batcher = new DecoderBatcher(LlamaSequences.ForInference(Seed), new DecoderBatcherOptions
        {
            MaxSequences = 2,
            StopTokens = [],
            StepCompleted = s =>
            {
                steps.Enqueue(s);
                if (!Volatile.Read(ref open)) gate.Wait();
            },
        });
        using var source = new CancellationTokenSource();
        IAsyncEnumerator<int> leaving = batcher.GenerateAsync(Prompt(2, 3), 15, cancellationToken: source.Token).GetAsyncEnumerator();
        int[] other = Prompt(3, 9);
        Task<List<int>> undisturbed = Collect(batcher.GenerateAsync(other, 15));
        Assert.True(await leaving.MoveNextAsync());
        if (cancel)
        {
            source.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await leaving.MoveNextAsync());
        }
        await leaving.DisposeAsync();
        Volatile.Write(ref open, true);
        gate.Release();

        // The other generation is what it is alone, and the one that left got no token after its first.
        List<int> result = await undisturbed;
        Assert.Equal(Alone(other, 15, new Sampler(0) { Temperature = 0f }, stop: []), result);
        Assert.Equal(15, result.Count);
        // A slot is free again.
        Assert.Equal(Alone(Prompt(6, 5), 4, new Sampler(0) { Temperature = 0f }, stop: []), await Collect(batcher.GenerateAsync(Prompt(6, 5), 4)));
        await batcher.DisposeAsync();
        Assert.Equal(result.Count + 1 + 4, steps.Sum(s => s.Sampled));
        Assert.Equal(0, batcher.Active);
        // A token cancelled before the call ends the enumeration at once.
        await using var fresh = new DecoderBatcher(LlamaSequences.ForInference(Seed));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Collect(fresh.GenerateAsync(Prompt(2, 6), 3, cancellationToken: new CancellationToken(true))));
    }

    [Fact]
    public async Task Bad_prompts_and_limits_are_refused_at_the_call_and_a_disposed_batcher_takes_nothing()
    {
        var batcher = new DecoderBatcher(LlamaSequences.ForInference(Seed));
        Assert.Contains("1 to SeqLen = 19", Assert.Throws<ArgumentException>(() => batcher.GenerateAsync([], 3)).Message);
        Assert.Throws<ArgumentException>(() => batcher.GenerateAsync(new int[20], 3));
        Assert.Contains("token 1 is 131", Assert.Throws<ArgumentOutOfRangeException>(() => batcher.GenerateAsync([1, 131], 3)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => batcher.GenerateAsync([1], 0));
        // A prompt of SeqLen tokens fits and gets one token: its cache is then full.
        Assert.Single(await Collect(batcher.GenerateAsync(Prompt(19, 2), 5)));
        await batcher.DisposeAsync();
        Assert.Throws<ObjectDisposedException>(() => batcher.GenerateAsync([1], 3));

        LanguageModel model = LlamaSequences.ForInference(Seed);
        Assert.Throws<ArgumentException>(() => new DecoderBatcher(model, new DecoderBatcherOptions { MaxSequences = 5 }));
        Assert.Throws<ArgumentException>(() => new DecoderBatcher(model, new DecoderBatcherOptions { MaxSequences = 4, MaxTokensPerStep = 3 }));
        Assert.Throws<ArgumentException>(() => new DecoderBatcher(model, new DecoderBatcherOptions { MaxTokensPerStep = 20 }));
        Assert.Throws<ArgumentException>(() => new DecoderBatcher(model, new DecoderBatcherOptions { StopTokens = [131] }));
    }

    [Fact]
    public async Task Dispose_runs_every_queued_generation_to_its_end()
    {
        var batcher = new DecoderBatcher(LlamaSequences.ForInference(Seed), new DecoderBatcherOptions { MaxSequences = 1 });
        Task<List<int>>[] running = Enumerable.Range(0, 5).Select(i => Collect(batcher.GenerateAsync(Prompt(2 + i, i), 6))).ToArray();
        await batcher.DisposeAsync();
        for (int i = 0; i < running.Length; i++)
            Assert.Equal(Alone(Prompt(2 + i, i), 6, new Sampler(0) { Temperature = 0f }), await running[i]);
    }
}
