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
/// POST /rerank on the server started in process with <c>--reranker</c> over a <see cref="TinyElectraCrossEncoderFolder"/>
/// (an <c>ElectraForSequenceClassification</c> with one label, as ms-marco-electra-base): every score against the ELECTRA
/// cross-encoder's own <c>Predict</c> of the pair alone with its token types, through the sigmoid and raw, the order, and
/// cut pairs; and the choice, by the folder's config.json, between it and the BERT cross-encoder compiled beside it.
/// </summary>
public sealed class ElectraRerankApiTests : IClassFixture<TinyBertFolder>, IClassFixture<TinyCrossEncoderFolder>, IClassFixture<TinyElectraCrossEncoderFolder>, IDisposable
{
    private readonly TinyBertFolder _folder;
    private readonly TinyCrossEncoderFolder _bert;
    private readonly TinyElectraCrossEncoderFolder _electra;
    private readonly ServerFactory _server;
    private readonly HttpClient _client;
    private readonly ITestOutputHelper _log;

    public ElectraRerankApiTests(TinyBertFolder folder, TinyCrossEncoderFolder bert, TinyElectraCrossEncoderFolder electra, ITestOutputHelper log)
    {
        _log = log;
        _folder = folder;
        _bert = bert;
        _electra = electra;
        _server = new ServerFactory(folder.Path, new Dictionary<string, string> { ["reranker"] = electra.Path, ["max-inputs"] = "6" });
        _client = _server.CreateClient();
    }

    public void Dispose()
    {
        _client.Dispose();
        _server.Dispose();
    }

    private const string Query = RerankApiTests.Query;

    private static readonly string[] Passages = RerankApiTests.Passages;

    [Fact]
    public async Task Each_score_is_the_sigmoid_of_the_electra_pair_alone_with_its_token_types_highest_first()
    {
        RerankClient.Answer answer = await RerankClient.PostAsync(_client, new { query = Query, texts = Passages });
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        RerankClient.Rank[] ranks = answer.Ranks;
        Assert.Equal(Enumerable.Range(0, Passages.Length), ranks.Select(r => r.Index).Order());
        foreach (RerankClient.Rank rank in ranks)
        {
            Close.Score(RerankEndpoint.Sigmoid(_electra.Alone(Query, Passages[rank.Index])), rank.Score, $"texts[{rank.Index}]");
            Assert.Null(rank.Text);
        }
        // Highest first, in the order the model's own scores give.
        int[] expected = Enumerable.Range(0, Passages.Length).OrderByDescending(i => _electra.Alone(Query, Passages[i])).ThenBy(i => i).ToArray();
        Assert.Equal(expected, ranks.Select(r => r.Index));
        for (int i = 1; i < ranks.Length; i++) Assert.True(ranks[i - 1].Score >= ranks[i].Score, $"rank {i} is above rank {i - 1}");

        double moved = Passages.Max(p => Math.Abs(_electra.Alone(Query, p) - _electra.AloneWithoutTypes(Query, p)));
        double worst = ranks.Max(r => Math.Abs(r.Score - RerankEndpoint.Sigmoid(_electra.Alone(Query, Passages[r.Index]))));
        _log.WriteLine($"scores {string.Join(", ", ranks.Select(r => $"{r.Index}: {r.Score}"))}; types move the logits by up to {moved:F3}; served within {worst:E2} of alone");
        Assert.True(moved > 1e-3, $"token types move the scores by {moved:E2} only");
        Assert.True(ranks[0].Score - ranks[^1].Score > 0.05, $"scores {ranks[0].Score} to {ranks[^1].Score}");
    }

    [Fact]
    public async Task Raw_scores_are_the_electra_logits_and_long_pairs_are_cut_as_the_tokenizer_cuts()
    {
        string longText = string.Join(" ", Enumerable.Range(0, 12).Select(i => "the dog runs in the park"));
        string[] texts = ["the dog runs in the park", "Rain, TOMORROW!", longText, "a cat"];
        Assert.True(_electra.Tokenizer.EncodePair("where does the dog run", longText).Count > CrossEncoderFolder.SeqLen);
        RerankClient.Answer answer = await RerankClient.PostAsync(_client, new { query = "where does the dog run", texts, raw_scores = true, return_text = true });
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        RerankClient.Rank[] ranks = answer.Ranks;
        Assert.Equal(texts.Length, ranks.Length);
        foreach (RerankClient.Rank rank in ranks)
        {
            Close.Score(_electra.Alone("where does the dog run", texts[rank.Index]), rank.Score, $"texts[{rank.Index}]");
            Assert.Equal(texts[rank.Index], rank.Text);
        }
        for (int i = 1; i < ranks.Length; i++) Assert.True(ranks[i - 1].Score >= ranks[i].Score);

        // Without raw_scores, the same logits through the sigmoid.
        RerankClient.Rank[] sigmoid = (await RerankClient.PostAsync(_client, new { query = "where does the dog run", texts })).Ranks;
        Assert.Equal(ranks.Select(r => r.Index), sigmoid.Select(r => r.Index));
        for (int i = 0; i < ranks.Length; i++) Close.Score(RerankEndpoint.Sigmoid(ranks[i].Score), sigmoid[i].Score, $"texts[{ranks[i].Index}] through the sigmoid");
    }

    [Fact]
    public async Task The_reranker_folder_chooses_between_the_bert_and_the_electra_cross_encoder()
    {
        using JsonDocument health = JsonDocument.Parse(await _client.GetStringAsync("/health"));
        Assert.Equal("tests/tiny-electra-cross-encoder", health.RootElement.GetProperty("reranker").GetString());
        using JsonDocument models = JsonDocument.Parse(await _client.GetStringAsync("/v1/models"));
        Assert.Equal(["tests/tiny-bert", "tests/tiny-electra-cross-encoder"], models.RootElement.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));

        using var bertServer = new ServerFactory(_folder.Path, new Dictionary<string, string> { ["reranker"] = _bert.Path });
        using HttpClient bertClient = bertServer.CreateClient();
        using JsonDocument bertHealth = JsonDocument.Parse(await bertClient.GetStringAsync("/health"));
        Assert.Equal("tests/tiny-cross-encoder", bertHealth.RootElement.GetProperty("reranker").GetString());

        // Each server's scores are its own cross-encoder's, and the two models score the pairs apart.
        RerankClient.Rank[] electra = (await RerankClient.PostAsync(_client, new { query = Query, texts = Passages, raw_scores = true })).Ranks;
        RerankClient.Rank[] bert = (await RerankClient.PostAsync(bertClient, new { query = Query, texts = Passages, raw_scores = true })).Ranks;
        foreach (RerankClient.Rank rank in electra) Close.Score(_electra.Alone(Query, Passages[rank.Index]), rank.Score, $"electra texts[{rank.Index}]");
        foreach (RerankClient.Rank rank in bert) Close.Score(_bert.Alone(Query, Passages[rank.Index]), rank.Score, $"bert texts[{rank.Index}]");
        Assert.True(Passages.Max(p => Math.Abs(_electra.Alone(Query, p) - _bert.Alone(Query, p))) > 0.1, "the two cross-encoders score alike");

        // Embeddings are served beside either.
        EmbeddingsClient.Answer embedded = await EmbeddingsClient.PostAsync(_client, new { input = "a man is eating food" });
        Assert.Equal(HttpStatusCode.OK, embedded.Status);
        Close.Equal(_folder.Alone("a man is eating food"), embedded.Embedding(0), "the sentence");
    }
}
