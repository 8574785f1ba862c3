using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace TransformerGen.Samples.Tests.ChatServer;

/// <summary>POST /v1/chat/completions and what came back, whole or as Server-Sent Events.</summary>
public static class ChatClient
{
    /// <summary>A whole answer: its status and JSON body.</summary>
    public sealed record Answer(HttpStatusCode Status, JsonElement Body)
    {
        public JsonElement Choice => Body.GetProperty("choices")[0];

        public string Content => Choice.GetProperty("message").GetProperty("content").GetString()!;

        public string FinishReason => Choice.GetProperty("finish_reason").GetString()!;

        /// <summary>Every choice's text, in the order of the array.</summary>
        public string[] Contents => Body.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("message").GetProperty("content").GetString()!).ToArray();

        public int Usage(string name) => Body.GetProperty("usage").GetProperty(name).GetInt32();

        public JsonElement Error => Body.GetProperty("error");

        public string ErrorMessage => Error.GetProperty("message").GetString()!;
    }

    /// <summary>A streamed answer: each event's JSON in order (the [DONE] marker not among them) and whether it ended with it.</summary>
    public sealed record Stream(HttpStatusCode Status, string ContentType, IReadOnlyList<JsonElement> Events, bool Done)
    {
        public IEnumerable<JsonElement> Chunks => Events.Where(e => e.GetProperty("choices").GetArrayLength() > 0);

        /// <summary>The text of every delta, in order.</summary>
        public string Content => string.Concat(Chunks.Select(c => c.GetProperty("choices")[0].GetProperty("delta"))
                                                     .Select(d => d.TryGetProperty("content", out JsonElement text) ? text.GetString() : ""));

        public string? FinishReason => Chunks.Last().GetProperty("choices")[0].GetProperty("finish_reason").GetString();

        /// <summary>Every chunk's one choice, in order.</summary>
        public IEnumerable<JsonElement> ChoiceChunks => Chunks.Select(c =>
        {
            JsonElement[] choices = [.. c.GetProperty("choices").EnumerateArray()];
            Assert(choices.Length == 1, $"a chunk with {choices.Length} choices");
            return choices[0];
        });

        /// <summary>The chunks of choice <paramref name="index"/>, in order.</summary>
        public JsonElement[] ChunksOf(int index) => [.. ChoiceChunks.Where(c => c.GetProperty("index").GetInt32() == index)];

        /// <summary>The text of choice <paramref name="index"/>'s deltas, in order.</summary>
        public string ContentOf(int index) => string.Concat(ChunksOf(index).Select(c => c.GetProperty("delta"))
                                                                    .Select(d => d.TryGetProperty("content", out JsonElement text) ? text.GetString() : ""));
    }

    /// <summary>A conversation of a system message (when given) and a user's message, as the Chat sample's session sends one.</summary>
    public static object[] Conversation(string user, string? system = null) =>
        system is null ? [new { role = "user", content = user }] : [new { role = "system", content = system }, new { role = "user", content = user }];

    public static Task<Answer> PostAsync(HttpClient client, object body, CancellationToken cancellationToken = default) =>
        PostRawAsync(client, JsonSerializer.Serialize(body), cancellationToken);

    public static async Task<Answer> PostRawAsync(HttpClient client, string json, CancellationToken cancellationToken = default)
    {
        using HttpResponseMessage response = await client.PostAsync("/v1/chat/completions", Body(json), cancellationToken);
        string text = await response.Content.ReadAsStringAsync(cancellationToken);
        using JsonDocument document = JsonDocument.Parse(text);
        return new Answer(response.StatusCode, document.RootElement.Clone());
    }

    /// <summary>Posts a request with <c>"stream": true</c> and reads its events to the end.</summary>
    public static async Task<Stream> StreamAsync(HttpClient client, object body)
    {
        using HttpResponseMessage response = await SendAsync(client, body, CancellationToken.None);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var events = new List<JsonElement>();
        bool done = false;
        while (await ReadEventAsync(reader, CancellationToken.None) is string data)
        {
            Assert(!done, "an event after [DONE]");
            if (data == "[DONE]") done = true;
            else events.Add(Parse(data));
        }
        return new Stream(response.StatusCode, response.Content.Headers.ContentType?.MediaType ?? "", events, done);
    }

    /// <summary>Sends a request and returns as soon as the response's headers are in, leaving its body to be read.</summary>
    public static Task<HttpResponseMessage> SendAsync(HttpClient client, object body, CancellationToken cancellationToken) =>
        client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Body(JsonSerializer.Serialize(body)) },
                         HttpCompletionOption.ResponseHeadersRead, cancellationToken);

    /// <summary>The data of the next Server-Sent Event, or null at the end of the stream.</summary>
    public static async Task<string?> ReadEventAsync(StreamReader reader, CancellationToken cancellationToken)
    {
        string? data = null;
        while (await reader.ReadLineAsync(cancellationToken) is string line)
        {
            if (line.Length == 0)
            {
                if (data is not null) return data;
                continue;
            }
            Assert(line.StartsWith("data: ", StringComparison.Ordinal), $"a line that is not data: {line}");
            data = data is null ? line["data: ".Length..] : data + "\n" + line["data: ".Length..];
        }
        Assert(data is null, "an event without its blank line at the end of the stream");
        return null;
    }

    /// <summary>The value of a metric without labels in the Prometheus text format.</summary>
    public static double Metric(string metrics, string name) =>
        double.Parse(metrics.Split('\n').Single(line => line.StartsWith(name + " ", StringComparison.Ordinal))[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Polls /health and /metrics until both say what the test waits for (at most 10 s).</summary>
    public static async Task Until(HttpClient client, Func<JsonElement, bool> health, Func<string, bool>? metrics = null)
    {
        for (int i = 0; i < 1000; i++)
        {
            if (health(Parse(await client.GetStringAsync("/health"))) && (metrics is null || metrics(await client.GetStringAsync("/metrics"))))
                return;
            await Task.Delay(10);
        }
        throw new TimeoutException("the server did not get there within 10 s");
    }

    public static JsonElement Parse(string json)
    {
        using JsonDocument document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    private static StringContent Body(string json) => new(json, new MediaTypeHeaderValue("application/json", "utf-8"));

    private static void Assert(bool condition, string what)
    {
        if (!condition) throw new InvalidDataException($"The server's event stream has {what}.");
    }
}
