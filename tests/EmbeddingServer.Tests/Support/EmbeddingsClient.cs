using System;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace TransformerGen.EmbeddingServer.Tests.Support;

/// <summary>POST /v1/embeddings and what came back.</summary>
public static class EmbeddingsClient
{
    public sealed record Answer(HttpStatusCode Status, JsonElement Body, string Text)
    {
        public float[] Embedding(int index) => Body.GetProperty("data")[index].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();

        public long PromptTokens => Body.GetProperty("usage").GetProperty("prompt_tokens").GetInt64();

        public int[] Truncated => Body.GetProperty("usage").GetProperty("truncated_inputs").EnumerateArray().Select(v => v.GetInt32()).ToArray();

        public string ErrorMessage => Body.GetProperty("error").GetProperty("message").GetString()!;
    }

    public static Task<Answer> PostAsync(HttpClient client, object body, CancellationToken cancellationToken = default) =>
        PostRawAsync(client, JsonSerializer.Serialize(body), cancellationToken);

    public static async Task<Answer> PostRawAsync(HttpClient client, string json, CancellationToken cancellationToken = default)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using HttpResponseMessage response = await client.PostAsync("/v1/embeddings", content, cancellationToken);
        string text = await response.Content.ReadAsStringAsync(cancellationToken);
        using JsonDocument document = JsonDocument.Parse(text);
        return new Answer(response.StatusCode, document.RootElement.Clone(), text);
    }
}
