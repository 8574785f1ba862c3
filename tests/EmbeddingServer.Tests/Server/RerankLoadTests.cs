using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using TransformerGen.EmbeddingServer.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.EmbeddingServer.Tests.Server;

/// <summary>
/// Many rerank clients at once, bounded: 8 clients × 20 requests of a query and 1 to 5 passages of mixed lengths (some
/// pairs cut at SeqLen), raw or through the sigmoid; every score must equal the pair computed alone with its token types,
/// every answer must be sorted, and no request may fail.
/// </summary>
public sealed class RerankLoadTests(TinyBertFolder folder, TinyCrossEncoderFolder reranker, ITestOutputHelper log)
    : IClassFixture<TinyBertFolder>, IClassFixture<TinyCrossEncoderFolder>
{
    private static string Sentence(Random rng, int maxWords)
    {
        int words = 1 + rng.Next(maxWords);
        return string.Join(" ", Enumerable.Range(0, words).Select(_ => rng.Next(3) == 0
            ? TinyBertFolder.Words[rng.Next(TinyBertFolder.Words.Count)]
            : new string(Enumerable.Range(0, 1 + rng.Next(6)).Select(_ => (char)('a' + rng.Next(26))).ToArray())));
    }

    [Fact]
    public async Task Eight_clients_times_twenty_requests_all_answered_with_the_score_of_each_pair_alone()
    {
        using var server = new ServerFactory(folder.Path, new Dictionary<string, string> { ["reranker"] = reranker.Path, ["max-batch-tokens"] = "96" });
        using HttpClient client = server.CreateClient();
        var expected = new ConcurrentDictionary<(string, string), float>();
        int pairs = 0, truncated = 0;
        var clock = Stopwatch.StartNew();
        Task[] clients = Enumerable.Range(0, 8).Select(c => Task.Run(async () =>
        {
            var rng = new Random(2000 + c);
            for (int r = 0; r < 20; r++)
            {
                string query = Sentence(rng, 4);
                string[] texts = Enumerable.Range(0, 1 + rng.Next(5)).Select(_ => Sentence(rng, 10)).ToArray();
                bool raw = rng.Next(2) == 0;
                RerankClient.Answer answer = await RerankClient.PostAsync(client, new { query, texts, raw_scores = raw });
                Assert.True(answer.Status == HttpStatusCode.OK, $"client {c} request {r}: {answer.Status} {answer.Text}");
                RerankClient.Rank[] ranks = answer.Ranks;
                Assert.Equal(Enumerable.Range(0, texts.Length), ranks.Select(k => k.Index).Order());
                for (int k = 0; k < ranks.Length; k++)
                {
                    if (k > 0) Assert.True(ranks[k - 1].Score >= ranks[k].Score, $"client {c} request {r}: not sorted");
                    string text = texts[ranks[k].Index];
                    float alone = expected.GetOrAdd((query, text), key => reranker.Alone(key.Item1, key.Item2));
                    Close.Score(raw ? alone : RerankEndpoint.Sigmoid(alone), ranks[k].Score, $"client {c} request {r} texts[{ranks[k].Index}] '{text}' for '{query}'");
                }
                Interlocked.Add(ref pairs, texts.Length);
                Interlocked.Add(ref truncated, texts.Count(t => reranker.Tokenizer.EncodePair(query, t).Count > TinyCrossEncoder.SeqLen));
            }
        })).ToArray();
        await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(120));

        string metrics = await client.GetStringAsync("/metrics");
        Match batches = Regex.Match(metrics, @"rerank_batch_sequences_count (\d+)");
        Assert.True(batches.Success);
        int batchCount = int.Parse(batches.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains($"rerank_requests_total{{code=\"200\"}} {8 * 20}", metrics);
        Assert.Contains($"rerank_pairs_total {pairs}", metrics);
        Assert.Contains($"rerank_batch_sequences_sum {pairs}", metrics);
        Assert.Contains($"rerank_truncated_pairs_total {truncated}", metrics);
        Assert.True(truncated > 0, "no pair reached the cut");
        Assert.True(batchCount < pairs, "no two pairs shared a batch");
        log.WriteLine($"{8 * 20} requests, {pairs} pairs ({truncated} cut) in {batchCount} batches, {clock.Elapsed.TotalSeconds:F1} s");
    }
}
