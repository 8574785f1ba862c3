using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Threading.Tasks;
using TransformerGen.EmbeddingServer.Tests.Support;
using Xunit;

namespace TransformerGen.EmbeddingServer.Tests.Server;

/// <summary>
/// POST /v1/embeddings, GET /health and GET /metrics on the server started in process over a <see cref="TinyBertFolder"/>:
/// the OpenAI response shape, usage, truncation, and every refusal with its status and message.
/// </summary>
public sealed class EmbeddingsApiTests : IClassFixture<TinyBertFolder>, IDisposable
{
    private readonly TinyBertFolder _folder;
    private readonly ServerFactory _server;
    private readonly HttpClient _client;

    public EmbeddingsApiTests(TinyBertFolder folder)
    {
        _folder = folder;
        _server = new ServerFactory(folder.Path, new Dictionary<string, string> { ["max-inputs"] = "4" });
        _client = _server.CreateClient();
    }

    public void Dispose()
    {
        _client.Dispose();
        _server.Dispose();
    }

    /// <summary>A text of <paramref name="letters"/> letters in unknown words, so about that many tokens plus [CLS] and [SEP].</summary>
    private static string Letters(int letters) => string.Join(" ", Enumerable.Range(0, (letters + 4) / 5).Select(w => new string((char)('b' + w % 20), Math.Min(5, letters - 5 * w))));

    [Fact]
    public async Task An_array_of_strings_gets_the_OpenAI_list_in_input_order_with_the_tokens_counted()
    {
        string[] input = ["A man is eating food.", "The dog runs in the park", "xyz"];
        EmbeddingsClient.Answer answer = await EmbeddingsClient.PostAsync(_client, new { input, model = "anything" });
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        JsonElement body = answer.Body;
        Assert.Equal("list", body.GetProperty("object").GetString());
        Assert.Equal("tests/tiny-bert", body.GetProperty("model").GetString());
        JsonElement data = body.GetProperty("data");
        Assert.Equal(3, data.GetArrayLength());
        for (int i = 0; i < input.Length; i++)
        {
            Assert.Equal("embedding", data[i].GetProperty("object").GetString());
            Assert.Equal(i, data[i].GetProperty("index").GetInt32());
            float[] embedding = answer.Embedding(i);
            Assert.Equal(TinyBert.DModel, embedding.Length);
            Close.Equal(_folder.Alone(input[i]), embedding, input[i]);
        }

        long tokens = input.Sum(text => _folder.Ids(text).Length);
        Assert.Equal(8 + 8 + 5, tokens); // [CLS] … [SEP] around: 5 words and the full stop; 6 words; x ##y ##z
        Assert.Equal(tokens, answer.PromptTokens);
        Assert.Equal(tokens, body.GetProperty("usage").GetProperty("total_tokens").GetInt64());
        Assert.Empty(answer.Truncated);
    }

    [Fact]
    public async Task A_single_string_gets_a_list_of_one_and_base64_holds_the_same_floats()
    {
        EmbeddingsClient.Answer floats = await EmbeddingsClient.PostAsync(_client, new { input = "two men push carts" });
        Assert.Equal(HttpStatusCode.OK, floats.Status);
        Assert.Equal(1, floats.Body.GetProperty("data").GetArrayLength());
        Close.Equal(_folder.Alone("two men push carts"), floats.Embedding(0), "the sentence");

        EmbeddingsClient.Answer base64 = await EmbeddingsClient.PostAsync(_client, new { input = "two men push carts", encoding_format = "base64" });
        Assert.Equal(HttpStatusCode.OK, base64.Status);
        byte[] bytes = Convert.FromBase64String(base64.Body.GetProperty("data")[0].GetProperty("embedding").GetString()!);
        Assert.Equal(floats.Embedding(0), MemoryMarshal.Cast<byte, float>(bytes).ToArray());
    }

    [Fact]
    public async Task A_sentence_longer_than_SeqLen_is_cut_as_sentence_transformers_cuts_and_reported_in_usage()
    {
        string longText = Letters(40); // 42 tokens with [CLS] and [SEP]; SeqLen is 24
        Assert.True(_folder.Tokenizer.Encode(longText).Count > TinyBert.SeqLen);
        EmbeddingsClient.Answer answer = await EmbeddingsClient.PostAsync(_client, new { input = new[] { "a cat sleeps", longText } });
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal([1], answer.Truncated);
        Assert.Equal(5 + TinyBert.SeqLen, answer.PromptTokens);
        int[] cut = _folder.Ids(longText);
        Assert.Equal(TinyBert.SeqLen, cut.Length);
        Assert.Equal(102, cut[^1]); // [SEP] kept last
        Close.Equal(_folder.Alone(longText), answer.Embedding(1), "the cut sentence");
    }

    [Fact]
    public async Task Health_answers_with_the_model()
    {
        using HttpResponseMessage response = await _client.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using JsonDocument body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("ok", body.RootElement.GetProperty("status").GetString());
        Assert.Equal("tests/tiny-bert", body.RootElement.GetProperty("model").GetString());
        Assert.Equal(2, body.RootElement.GetProperty("workers").GetInt32());
    }

    [Fact]
    public async Task The_models_listing_names_the_served_model_as_OpenAIs_does()
    {
        using JsonDocument list = JsonDocument.Parse(await _client.GetStringAsync("/v1/models"));
        Assert.Equal("list", list.RootElement.GetProperty("object").GetString());
        JsonElement model = Assert.Single(list.RootElement.GetProperty("data").EnumerateArray());
        Assert.Equal("tests/tiny-bert", model.GetProperty("id").GetString());
        Assert.Equal("model", model.GetProperty("object").GetString());
        Assert.Equal("transformer-gen", model.GetProperty("owned_by").GetString());
        Assert.Equal(TinyBert.SeqLen, model.GetProperty("max_model_len").GetInt32());
        Assert.InRange(model.GetProperty("created").GetInt64(), DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 600, DateTimeOffset.UtcNow.ToUnixTimeSeconds());

        // One model by its id, which holds a slash: as two segments, or escaped.
        foreach (string path in new[] { "/v1/models/tests/tiny-bert", "/v1/models/tests%2Ftiny-bert" })
        {
            using JsonDocument one = JsonDocument.Parse(await _client.GetStringAsync(path));
            Assert.Equal("tests/tiny-bert", one.RootElement.GetProperty("id").GetString());
        }

        using HttpResponseMessage missing = await _client.GetAsync("/v1/models/text-embedding-3-small");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using JsonDocument error = JsonDocument.Parse(await missing.Content.ReadAsStringAsync());
        Assert.Equal("The model 'text-embedding-3-small' does not exist; this server serves 'tests/tiny-bert'.", error.RootElement.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("model_not_found", error.RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Metrics_count_requests_tokens_and_batch_sizes_in_the_Prometheus_text_format()
    {
        string[] input = ["a man", "the cat sleeps on the mat"];
        long tokens = input.Sum(text => _folder.Ids(text).Length);
        Assert.Equal(HttpStatusCode.OK, (await EmbeddingsClient.PostAsync(_client, new { input })).Status);
        Assert.Equal(HttpStatusCode.OK, (await EmbeddingsClient.PostAsync(_client, new { input = "woods" })).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await EmbeddingsClient.PostRawAsync(_client, "{")).Status);

        using HttpResponseMessage response = await _client.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType!.MediaType);
        string text = await response.Content.ReadAsStringAsync();
        Assert.Contains("# TYPE embeddings_requests_total counter", text);
        Assert.Contains("embeddings_requests_total{code=\"200\"} 2", text);
        Assert.Contains("embeddings_requests_total{code=\"400\"} 1", text);
        Assert.Contains("embeddings_inputs_total 3", text);
        Assert.Contains($"embeddings_tokens_total {tokens + 3}", text);
        Assert.Contains("# TYPE embeddings_batch_sequences histogram", text);
        Assert.Contains("embeddings_batch_sequences_sum 3", text);
        Assert.Contains($"embeddings_batch_tokens_sum {tokens + 3}", text);
        Assert.Contains("embeddings_batch_sequences_bucket{le=\"+Inf\"}", text);
        Assert.Contains("http_requests_received_total", text);
        Assert.Contains("embeddings_queued_sentences 0", text);
    }

    public static TheoryData<string, string> BadRequests => new()
    {
        { "{\"input\": [\"a\", ", "The body is not valid JSON" },
        { "not json", "The body is not valid JSON" },
        { "[\"a man\"]", "The body must be a JSON object with an 'input'." },
        { "{\"model\": \"x\"}", "'input' is required: a string or an array of strings." },
        { "{\"input\": []}", "'input' is an empty array: give at least one sentence." },
        { "{\"input\": \"\"}", "'input' is an empty string." },
        { "{\"input\": [\"a man\", \"\"]}", "input[1] is an empty string." },
        { "{\"input\": [101, 102]}", "input[0] is a number; this server takes strings (not token ids)." },
        { "{\"input\": {\"text\": \"a\"}}", "'input' is an object; it must be a string or an array of strings." },
        { "{\"input\": \"a\", \"encoding_format\": \"int8\"}", "'encoding_format' is \"int8\"; it must be \"float\" or \"base64\"." },
        { "{\"input\": \"a\", \"prompt_name\": \"query\"}", "'prompt_name' is \"query\", but this model's folder names no prompts (config_sentence_transformers.json)." },
        { "{\"input\": \"a\", \"dimensions\": 0}", $"'dimensions' is 0; it must be an integer from 1 to the embedding's {TinyBert.DModel}." },
        { "{\"input\": \"a\", \"dimensions\": 1000}", $"'dimensions' is 1000; it must be an integer from 1 to the embedding's {TinyBert.DModel}." },
        { "{\"input\": \"a\", \"dimensions\": \"8\"}", $"'dimensions' is \"8\"; it must be an integer from 1 to the embedding's {TinyBert.DModel}." },
        { "{\"input\": \"a\", \"dimensions\": 2.5}", $"'dimensions' is 2.5; it must be an integer from 1 to the embedding's {TinyBert.DModel}." },
    };

    [Fact]
    public async Task Dimensions_give_the_first_components_normalized_again()
    {
        const string text = "two men push carts";
        float[] full = _folder.Alone(text);
        EmbeddingsClient.Answer answer = await EmbeddingsClient.PostAsync(_client, new { input = text, dimensions = 8 });
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        float[] shortened = answer.Embedding(0);
        Assert.Equal(8, shortened.Length);
        double norm = Math.Sqrt(full.Take(8).Sum(v => (double)v * v));
        Close.Equal(full.Take(8).Select(v => (float)(v / norm)).ToArray(), shortened, text);
        Assert.Equal(1.0, Math.Sqrt(shortened.Sum(v => (double)v * v)), 5);
        // The whole width is the embedding itself.
        EmbeddingsClient.Answer whole = await EmbeddingsClient.PostAsync(_client, new { input = text, dimensions = TinyBert.DModel });
        Close.Equal(full, whole.Embedding(0), text);
    }

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task A_body_without_usable_input_gets_400_with_a_message(string body, string message)
    {
        EmbeddingsClient.Answer answer = await EmbeddingsClient.PostRawAsync(_client, body);
        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.StartsWith(message, answer.ErrorMessage);
        Assert.Equal("invalid_request_error", answer.Body.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task More_sentences_than_max_inputs_get_413()
    {
        EmbeddingsClient.Answer answer = await EmbeddingsClient.PostAsync(_client, new { input = new[] { "a", "b", "c", "d", "e" } });
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, answer.Status);
        Assert.Equal("'input' holds 5 sentences; this server takes at most 4 per request (--max-inputs).", answer.ErrorMessage);
        Assert.Equal(HttpStatusCode.OK, (await EmbeddingsClient.PostAsync(_client, new { input = new[] { "a", "b", "c", "d" } })).Status);
    }

    [Fact]
    public async Task With_truncation_off_a_sentence_longer_than_SeqLen_gets_413_naming_it()
    {
        using var strict = new ServerFactory(_folder.Path, new Dictionary<string, string> { ["truncate"] = "false" });
        using HttpClient client = strict.CreateClient();
        string fits = Letters(TinyBert.SeqLen - 2), tooLong = Letters(TinyBert.SeqLen - 1);
        Assert.Equal(TinyBert.SeqLen, _folder.Tokenizer.Encode(fits).Count);
        EmbeddingsClient.Answer answer = await EmbeddingsClient.PostAsync(client, new { input = new[] { fits, tooLong } });
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, answer.Status);
        Assert.Equal($"input[1] has {TinyBert.SeqLen + 1} tokens, more than the model's {TinyBert.SeqLen} ([CLS] and [SEP] included), and truncation is off (--truncate false).", answer.ErrorMessage);
        EmbeddingsClient.Answer ok = await EmbeddingsClient.PostAsync(client, new { input = fits });
        Assert.Equal(HttpStatusCode.OK, ok.Status);
        Assert.Equal(TinyBert.SeqLen, ok.PromptTokens);
    }
}
