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
/// Many clients at once, bounded: 16 clients × 50 requests of mixed lengths (1 to 3 sentences of 1 to 40 letters, some cut
/// at SeqLen); every embedding must equal the sentence computed alone, and no request may fail. Also: refused requests and
/// clients that go away in the middle of the traffic change nothing for the others.
/// </summary>
public sealed class LoadTests(TinyBertFolder folder, ITestOutputHelper log) : IClassFixture<TinyBertFolder>
{
    private static string Sentence(Random rng)
    {
        int words = 1 + rng.Next(10);
        return string.Join(" ", Enumerable.Range(0, words).Select(_ => rng.Next(3) == 0
            ? TinyBertFolder.Words[rng.Next(TinyBertFolder.Words.Count)]
            : new string(Enumerable.Range(0, 1 + rng.Next(6)).Select(_ => (char)('a' + rng.Next(26))).ToArray())));
    }

    [Fact]
    public async Task Sixteen_clients_times_fifty_requests_all_answered_with_the_embedding_of_each_sentence_alone()
    {
        using var server = new ServerFactory(folder.Path, new Dictionary<string, string> { ["max-batch-tokens"] = "96" });
        using HttpClient client = server.CreateClient();
        var expected = new ConcurrentDictionary<string, float[]>();
        int sentences = 0, truncated = 0;
        var clock = Stopwatch.StartNew();
        Task[] clients = Enumerable.Range(0, 16).Select(c => Task.Run(async () =>
        {
            var rng = new Random(1000 + c);
            for (int r = 0; r < 50; r++)
            {
                string[] input = Enumerable.Range(0, 1 + rng.Next(3)).Select(_ => Sentence(rng)).ToArray();
                EmbeddingsClient.Answer answer = await EmbeddingsClient.PostAsync(client, new { input });
                Assert.True(answer.Status == HttpStatusCode.OK, $"client {c} request {r}: {answer.Status} {answer.Text}");
                long tokens = 0;
                for (int i = 0; i < input.Length; i++)
                {
                    float[] alone = expected.GetOrAdd(input[i], folder.Alone);
                    Close.Equal(alone, answer.Embedding(i), $"client {c} request {r} input {i} '{input[i]}'");
                    tokens += folder.Ids(input[i]).Length;
                }
                Assert.Equal(tokens, answer.PromptTokens);
                Assert.Equal(input.Select((text, i) => (text, i)).Where(x => folder.Tokenizer.Encode(x.text).Count > TinyBert.SeqLen).Select(x => x.i), answer.Truncated);
                Interlocked.Add(ref sentences, input.Length);
                Interlocked.Add(ref truncated, answer.Truncated.Length);
            }
        })).ToArray();
        await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(120));

        string metrics = await client.GetStringAsync("/metrics");
        Match batches = Regex.Match(metrics, @"embeddings_batch_sequences_count (\d+)");
        Assert.True(batches.Success);
        int batchCount = int.Parse(batches.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains($"embeddings_requests_total{{code=\"200\"}} {16 * 50}", metrics);
        Assert.Contains($"embeddings_batch_sequences_sum {sentences}", metrics);
        Assert.True(truncated > 0, "no sentence reached the cut");
        Assert.True(batchCount < sentences, "no two sentences shared a batch");
        log.WriteLine($"{16 * 50} requests, {sentences} sentences ({truncated} cut) in {batchCount} batches, {clock.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task Refused_requests_and_clients_that_go_away_do_not_disturb_the_others()
    {
        using var server = new ServerFactory(folder.Path, new Dictionary<string, string> { ["max-wait-ms"] = "5" });
        using HttpClient client = server.CreateClient();
        Task[] good = Enumerable.Range(0, 6).Select(c => Task.Run(async () =>
        {
            var rng = new Random(c);
            for (int r = 0; r < 20; r++)
            {
                string[] input = [Sentence(rng), Sentence(rng)];
                EmbeddingsClient.Answer answer = await EmbeddingsClient.PostAsync(client, new { input });
                Assert.True(answer.Status == HttpStatusCode.OK, answer.Text);
                for (int i = 0; i < input.Length; i++) Close.Equal(folder.Alone(input[i]), answer.Embedding(i), input[i]);
            }
        })).ToArray();
        Task bad = Task.Run(async () =>
        {
            for (int r = 0; r < 40; r++)
            {
                string body = (r % 4) switch { 0 => "{\"input\": [", 1 => "{\"input\": []}", 2 => "{\"input\": [\"a\", 7]}", _ => "{\"input\": \"\"}" };
                Assert.Equal(HttpStatusCode.BadRequest, (await EmbeddingsClient.PostRawAsync(client, body)).Status);
            }
        });
        Task leaving = Task.Run(async () =>
        {
            for (int r = 0; r < 20; r++)
            {
                using var gone = new CancellationTokenSource(TimeSpan.FromMilliseconds(r % 5));
                try
                {
                    await EmbeddingsClient.PostAsync(client, new { input = Enumerable.Repeat("the man plays the violin in the park", 8).ToArray() }, gone.Token);
                }
                catch (OperationCanceledException)
                {
                    // the client went away, as intended
                }
            }
        });
        await Task.WhenAll([.. good, bad, leaving]).WaitAsync(TimeSpan.FromSeconds(120));
        using HttpResponseMessage health = await client.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }
}
