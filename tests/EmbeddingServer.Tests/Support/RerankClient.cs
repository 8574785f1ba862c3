using System.Linq;
using System.Net;
using System.Net.Http;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace TransformerGen.EmbeddingServer.Tests.Support;

/// <summary>POST /rerank and what came back.</summary>
public static class RerankClient
{
    public sealed record Rank(int Index, float Score, string? Text);

    public sealed record Answer(HttpStatusCode Status, JsonElement Body, string Text)
    {
        /// <summary>The ranks in the order the server gave them.</summary>
        public Rank[] Ranks => Body.EnumerateArray().Select(r => new Rank(
            r.GetProperty("index").GetInt32(),
            r.GetProperty("score").GetSingle(),
            r.TryGetProperty("text", out JsonElement text) ? text.GetString() : null)).ToArray();

        public string ErrorMessage => Body.GetProperty("error").GetProperty("message").GetString()!;
    }

    public static Task<Answer> PostAsync(HttpClient client, object body, CancellationToken cancellationToken = default) =>
        PostRawAsync(client, JsonSerializer.Serialize(body), cancellationToken);

    public static async Task<Answer> PostRawAsync(HttpClient client, string json, CancellationToken cancellationToken = default)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using HttpResponseMessage response = await client.PostAsync("/rerank", content, cancellationToken);
        string text = await response.Content.ReadAsStringAsync(cancellationToken);
        using JsonDocument document = JsonDocument.Parse(text);
        return new Answer(response.StatusCode, document.RootElement.Clone(), text);
    }
}
