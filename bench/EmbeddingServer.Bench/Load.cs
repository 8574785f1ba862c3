using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;

namespace TransformerGen.EmbeddingServer.Bench;

/// <summary>The stream of sentences: token ids of 8 to 128 tokens each ([CLS] … [SEP] of random word ids), seeded.</summary>
internal sealed class SentenceStream
{
    public const int Cls = 101, Sep = 102, FirstWord = 1000;

    private readonly int[][] _sentences;
    private int _next = -1;

    public SentenceStream(int count, int vocab, int seed = 20261206)
    {
        var rng = new Random(seed);
        _sentences = Enumerable.Range(0, count).Select(_ =>
        {
            int length = 8 + rng.Next(121);
            var ids = new int[length];
            ids[0] = Cls;
            ids[^1] = Sep;
            for (int i = 1; i < length - 1; i++) ids[i] = FirstWord + rng.Next(vocab - FirstWord);
            return ids;
        }).ToArray();
    }

    public double MeanLength => _sentences.Average(s => s.Length);

    public int[] this[int index] => _sentences[index];

    public int[] Next() => _sentences[(int)((uint)Interlocked.Increment(ref _next) % (uint)_sentences.Length)];
}

/// <summary>What a run of clients measured.</summary>
internal sealed record LoadResult(int Clients, long Requests, long Tokens, double Seconds, double P50Ms, double P99Ms, double CpuSeconds)
{
    public double RequestsPerSecond => Requests / Seconds;

    /// <summary>Requests per second of processor time: less sensitive than wall time to neighbours taking the cores.</summary>
    public double RequestsPerCpuSecond => Requests / CpuSeconds;

    public double TokensPerSecond => Tokens / Seconds;
}

/// <summary>Clients in closed loops: each sends its next sentence when the last is answered.</summary>
internal static class Load
{
    public static async Task<LoadResult> RunAsync(IEngine engine, SentenceStream stream, int clients, TimeSpan duration)
    {
        var latencies = new List<double>[clients];
        long tokens = 0;
        TimeSpan cpu = engine.ProcessorTime();
        long started = Stopwatch.GetTimestamp();
        long end = started + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        Task[] loops = Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            var mine = latencies[c] = new List<double>(4096);
            long local = 0;
            while (Stopwatch.GetTimestamp() < end)
            {
                int[] ids = stream.Next();
                long t0 = Stopwatch.GetTimestamp();
                float[] embedding = await engine.EmbedAsync(ids).ConfigureAwait(false);
                if (embedding.Length == 0) throw new InvalidOperationException("empty embedding");
                mine.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                local += ids.Length;
            }
            Interlocked.Add(ref tokens, local);
        })).ToArray();
        await Task.WhenAll(loops).ConfigureAwait(false);
        double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        double cpuSeconds = (engine.ProcessorTime() - cpu).TotalSeconds;
        double[] all = latencies.SelectMany(l => l).Order().ToArray();
        return new LoadResult(clients, all.Length, tokens, seconds, Percentile(all, 0.50), Percentile(all, 0.99), cpuSeconds);
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
}
