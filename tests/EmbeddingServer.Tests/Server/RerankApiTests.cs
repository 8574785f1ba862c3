using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Text.Json;
using System.Threading.Tasks;
using TransformerGen.EmbeddingServer.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.EmbeddingServer.Tests.Server;

/// <summary>
/// POST /rerank on the server started in process with <c>--reranker</c> over a <see cref="TinyCrossEncoderFolder"/>:
/// text-embeddings-inference's response shape, every score against the pair computed alone with its token types, the
/// order, raw scores, returned texts, truncation, every refusal with its status and message, and the metrics.
/// </summary>
public sealed class RerankApiTests : IClassFixture<TinyBertFolder>, IClassFixture<TinyCrossEncoderFolder>, IDisposable
{
    private readonly TinyBertFolder _folder;
    private readonly TinyCrossEncoderFolder _reranker;
    private readonly ServerFactory _server;
    private readonly HttpClient _client;
    private readonly ITestOutputHelper _log;

    public RerankApiTests(TinyBertFolder folder, TinyCrossEncoderFolder reranker, ITestOutputHelper log)
    {
        _log = log;
        _folder = folder;
        _reranker = reranker;
        _server = new ServerFactory(folder.Path, new Dictionary<string, string> { ["reranker"] = reranker.Path, ["max-inputs"] = "6" });
        _client = _server.CreateClient();
    }

    public void Dispose()
    {
        _client.Dispose();
        _server.Dispose();
    }

    /// <summary>The query and passages the rerank tests send (ElectraRerankApiTests sends them too).</summary>
    internal const string Query = "the man plays the violin";

    internal static readonly string[] Passages =
    [
        "a man plays the violin in the park",
        "the cat sleeps on the mat",
        "two men push carts through the woods",
        "rain tomorrow",
        "a woman is eating food",
        "the dog runs",
    ];

    /// <summary>A text of <paramref name="letters"/> letters in unknown words, so about that many tokens.</summary>
    private static string Letters(int letters) => string.Join(" ", Enumerable.Range(0, (letters + 4) / 5).Select(w => new string((char)('b' + w % 20), Math.Min(5, letters - 5 * w))));

    [Fact]
    public async Task Each_score_is_the_sigmoid_of_the_pair_alone_with_its_token_types_highest_first()
    {
        RerankClient.Answer answer = await RerankClient.PostAsync(_client, new { query = Query, texts = Passages });
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal(JsonValueKind.Array, answer.Body.ValueKind);
        RerankClient.Rank[] ranks = answer.Ranks;
        Assert.Equal(Enumerable.Range(0, Passages.Length), ranks.Select(r => r.Index).Order());
        foreach (RerankClient.Rank rank in ranks)
        {
            float raw = _reranker.Alone(Query, Passages[rank.Index]);
            Close.Score(RerankEndpoint.Sigmoid(raw), rank.Score, $"texts[{rank.Index}]");
            Assert.InRange(rank.Score, 0f, 1f);
            Assert.Null(rank.Text);
            Assert.False(answer.Body[0].TryGetProperty("text", out _)); // left out, not null, as text-embeddings-inference
        }
        for (int i = 1; i < ranks.Length; i++) Assert.True(ranks[i - 1].Score >= ranks[i].Score, $"rank {i} is above rank {i - 1}");

        // The types matter here: without them the server would answer other scores.
        double moved = Passages.Max(p => Math.Abs(_reranker.Alone(Query, p) - _reranker.AloneWithoutTypes(Query, p)));
        double worst = ranks.Max(r => Math.Abs(r.Score - RerankEndpoint.Sigmoid(_reranker.Alone(Query, Passages[r.Index]))));
        _log.WriteLine($"scores {string.Join(", ", ranks.Select(r => $"{r.Index}: {r.Score}"))}; types move the logits by up to {moved:F3}; served within {worst:E2} of alone");
        Assert.True(moved > 1e-3, $"token types move the scores by {moved:E2} only");
        // And the scores spread, so the order is the model's, not the ties'.
        Assert.True(ranks[0].Score - ranks[^1].Score > 0.05, $"scores {ranks[0].Score} to {ranks[^1].Score}");
    }

    [Fact]
    public async Task Raw_scores_are_the_logits_and_return_text_gives_each_passage_as_sent()
    {
        string[] texts = ["the dog runs in the park", "Rain, TOMORROW!", "a cat"];
        RerankClient.Answer answer = await RerankClient.PostAsync(_client, new { query = "where does the dog run", texts, raw_scores = true, return_text = true });
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        RerankClient.Rank[] ranks = answer.Ranks;
        Assert.Equal(3, ranks.Length);
        foreach (RerankClient.Rank rank in ranks)
        {
            Close.Score(_reranker.Alone("where does the dog run", texts[rank.Index]), rank.Score, $"texts[{rank.Index}]");
            Assert.Equal(texts[rank.Index], rank.Text);
        }
        for (int i = 1; i < ranks.Length; i++) Assert.True(ranks[i - 1].Score >= ranks[i].Score);
        Assert.Contains(ranks, r => r.Score is < 0 or > 1); // logits, not probabilities

        RerankClient.Answer sigmoid = await RerankClient.PostAsync(_client, new { query = "where does the dog run", texts, raw_scores = false, return_text = false });
        Assert.Equal(ranks.Select(r => r.Index), sigmoid.Ranks.Select(r => r.Index)); // the sigmoid keeps the order
        Assert.All(sigmoid.Ranks, r => Assert.Null(r.Text));
    }

    [Fact]
    public async Task Equal_scores_keep_the_texts_order()
    {
        // One pair a batch, so that the three equal pairs get the same bits.
        using var single = new ServerFactory(_folder.Path, new Dictionary<string, string> { ["reranker"] = _reranker.Path, ["max-batch"] = "1" });
        using HttpClient client = single.CreateClient();
        RerankClient.Answer answer = await RerankClient.PostAsync(client, new { query = "a man", texts = new[] { "the cat", "the dog", "the cat", "the cat" } });
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        RerankClient.Rank[] cats = answer.Ranks.Where(r => r.Index != 1).ToArray();
        Assert.Single(cats.Select(r => r.Score).Distinct());
        Assert.Equal([0, 2, 3], cats.Select(r => r.Index));
    }

    [Fact]
    public async Task A_pair_longer_than_SeqLen_is_cut_passage_first_unless_truncate_is_false()
    {
        string longText = Letters(40); // with the query: [CLS] 3 [SEP] 40 [SEP] = 46 tokens; SeqLen is 32
        Assert.Equal(46, _reranker.Tokenizer.EncodePair("the cat sleeps", longText).Count);
        (int[] ids, int[] types) = _reranker.Pair("the cat sleeps", longText);
        Assert.Equal(TinyCrossEncoder.SeqLen, ids.Length);
        Assert.Equal(_reranker.Tokenizer.Encode("the cat sleeps").ToArray(), ids[..5]); // the query whole, the passage cut
        Assert.Equal(102, ids[^1]);
        Assert.Equal(5, Array.IndexOf(types, 1));

        RerankClient.Answer answer = await RerankClient.PostAsync(_client, new { query = "the cat sleeps", texts = new[] { "a cat", longText }, raw_scores = true });
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Close.Score(_reranker.Alone("the cat sleeps", longText), answer.Ranks.Single(r => r.Index == 1).Score, "the cut pair");

        RerankClient.Answer refused = await RerankClient.PostAsync(_client, new { query = "the cat sleeps", texts = new[] { "a cat", longText }, truncate = false });
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, refused.Status);
        Assert.Equal($"The query with texts[1] has 46 tokens, more than the reranker's {TinyCrossEncoder.SeqLen} (special tokens included), and 'truncate' is false.", refused.ErrorMessage);
        Assert.Equal("texts", refused.Body.GetProperty("error").GetProperty("param").GetString());

        // A pair of exactly SeqLen tokens is not cut.
        string fits = Letters(TinyCrossEncoder.SeqLen - 6);
        Assert.Equal(TinyCrossEncoder.SeqLen, _reranker.Tokenizer.EncodePair("the cat sleeps", fits).Count);
        Assert.Equal(HttpStatusCode.OK, (await RerankClient.PostAsync(_client, new { query = "the cat sleeps", texts = new[] { fits }, truncate = false })).Status);
    }

    [Fact]
    public async Task Truncate_defaults_to_the_servers_truncate_option()
    {
        using var strict = new ServerFactory(_folder.Path, new Dictionary<string, string> { ["reranker"] = _reranker.Path, ["truncate"] = "false" });
        using HttpClient client = strict.CreateClient();
        string longText = Letters(40);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await RerankClient.PostAsync(client, new { query = "a man", texts = new[] { longText } })).Status);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await RerankClient.PostRawAsync(client, $"{{\"query\": \"a man\", \"texts\": [\"{longText}\"], \"truncate\": null}}")).Status);
        RerankClient.Answer cut = await RerankClient.PostAsync(client, new { query = "a man", texts = new[] { longText }, truncate = true, raw_scores = true });
        Assert.Equal(HttpStatusCode.OK, cut.Status);
        Close.Score(_reranker.Alone("a man", longText), cut.Ranks[0].Score, "the cut pair");
    }

    public static TheoryData<string, string> BadRequests => new()
    {
        { "{\"query\": \"a\", ", "The body is not valid JSON" },
        { "not json", "The body is not valid JSON" },
        { "[\"a man\"]", "The body must be a JSON object with a 'query' and 'texts'." },
        { "{\"texts\": [\"a\"]}", "'query' is required: a string." },
        { "{\"query\": 7, \"texts\": [\"a\"]}", "'query' is a number; it must be a string." },
        { "{\"query\": \"\", \"texts\": [\"a\"]}", "'query' is an empty string." },
        { "{\"query\": \"a\"}", "'texts' is required: an array of strings." },
        { "{\"query\": \"a\", \"texts\": \"the cat\"}", "'texts' is a string; it must be an array of strings." },
        { "{\"query\": \"a\", \"texts\": []}", "'texts' is an empty array: give at least one passage." },
        { "{\"query\": \"a\", \"texts\": [\"the cat\", \"\"]}", "texts[1] is an empty string." },
        { "{\"query\": \"a\", \"texts\": [101, 102]}", "texts[0] is a number; it must be a string." },
        { "{\"query\": \"a\", \"texts\": [\"b\"], \"raw_scores\": \"yes\"}", "'raw_scores' is a string; it must be true or false." },
        { "{\"query\": \"a\", \"texts\": [\"b\"], \"return_text\": 1}", "'return_text' is a number; it must be true or false." },
        { "{\"query\": \"a\", \"texts\": [\"b\"], \"truncate\": \"false\"}", "'truncate' is a string; it must be true or false." },
        { "{\"query\": \"a\", \"texts\": [\"b\"], \"truncation_direction\": \"Left\"}", "'truncation_direction' is \"Left\"; this server cuts pairs at the right only (\"Right\")." },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task A_body_without_a_usable_query_and_texts_gets_400_with_a_message(string body, string message)
    {
        RerankClient.Answer answer = await RerankClient.PostRawAsync(_client, body);
        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.StartsWith(message, answer.ErrorMessage);
        Assert.Equal("invalid_request_error", answer.Body.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task More_passages_than_max_inputs_get_413()
    {
        RerankClient.Answer answer = await RerankClient.PostAsync(_client, new { query = "a", texts = Passages.Append("the woods").ToArray() });
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, answer.Status);
        Assert.Equal("'texts' holds 7 passages; this server takes at most 6 per request (--max-inputs).", answer.ErrorMessage);
        Assert.Equal(HttpStatusCode.OK, (await RerankClient.PostAsync(_client, new { query = "a", texts = Passages })).Status);
    }

    [Fact]
    public async Task Right_truncation_and_unknown_fields_are_accepted()
    {
        RerankClient.Answer answer = await RerankClient.PostAsync(_client, new { query = "a man", texts = new[] { "the cat" }, truncation_direction = "Right", model = "anything" });
        Assert.Equal(HttpStatusCode.OK, answer.Status);
    }

    [Fact]
    public async Task Without_a_reranker_rerank_answers_501_saying_how_to_start_one()
    {
        using var plain = new ServerFactory(_folder.Path);
        using HttpClient client = plain.CreateClient();
        RerankClient.Answer answer = await RerankClient.PostAsync(client, new { query = "a", texts = new[] { "b" } });
        Assert.Equal(HttpStatusCode.NotImplemented, answer.Status);
        Assert.Equal("This server has no reranker: start it with --reranker <folder> (the files of a cross-encoder such as cross-encoder/ms-marco-MiniLM-L-6-v2) to serve /rerank.", answer.ErrorMessage);
        Assert.Contains("rerank_requests_total{code=\"501\"} 1", await client.GetStringAsync("/metrics"));
        using JsonDocument health = JsonDocument.Parse(await client.GetStringAsync("/health"));
        Assert.Equal(JsonValueKind.Null, health.RootElement.GetProperty("reranker").ValueKind);
        Assert.Equal(HttpStatusCode.OK, (await EmbeddingsClient.PostAsync(client, new { input = "a man" })).Status); // embeddings as before
    }

    [Fact]
    public async Task Health_names_the_reranker_and_embeddings_are_served_beside_it()
    {
        using JsonDocument health = JsonDocument.Parse(await _client.GetStringAsync("/health"));
        Assert.Equal("tests/tiny-cross-encoder", health.RootElement.GetProperty("reranker").GetString());
        EmbeddingsClient.Answer embedded = await EmbeddingsClient.PostAsync(_client, new { input = "a man is eating food" });
        Assert.Equal(HttpStatusCode.OK, embedded.Status);
        Close.Equal(_folder.Alone("a man is eating food"), embedded.Embedding(0), "the sentence");
    }

    [Fact]
    public async Task Metrics_count_rerank_requests_pairs_tokens_cuts_and_batches()
    {
        using var server = new ServerFactory(_folder.Path, new Dictionary<string, string> { ["reranker"] = _reranker.Path });
        using HttpClient client = server.CreateClient();
        string longText = Letters(40);
        string[] texts = ["the cat", "a dog runs", longText];
        long tokens = texts.Sum(t => _reranker.Pair("a man", t).Ids.Length);
        Assert.Equal(HttpStatusCode.OK, (await RerankClient.PostAsync(client, new { query = "a man", texts })).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await RerankClient.PostRawAsync(client, "{")).Status);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await RerankClient.PostAsync(client, new { query = "a man", texts = new[] { longText }, truncate = false })).Status);

        string text = await client.GetStringAsync("/metrics");
        Assert.Contains("# TYPE rerank_requests_total counter", text);
        Assert.Contains("rerank_requests_total{code=\"200\"} 1", text);
        Assert.Contains("rerank_requests_total{code=\"400\"} 1", text);
        Assert.Contains("rerank_requests_total{code=\"413\"} 1", text);
        Assert.Contains("rerank_pairs_total 3", text);
        Assert.Contains($"rerank_tokens_total {tokens}", text);
        Assert.Contains("rerank_truncated_pairs_total 1", text);
        Assert.Contains("rerank_batch_sequences_sum 3", text);
        Assert.Contains($"rerank_batch_tokens_sum {tokens}", text);
        Assert.Contains("rerank_queued_pairs 0", text);
        Assert.DoesNotContain("embeddings_requests_total{", text); // the embeddings counted apart
        Assert.Contains("embeddings_inputs_total 0", text);
    }
}
