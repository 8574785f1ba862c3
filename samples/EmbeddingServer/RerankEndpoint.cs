using System;
using System.Collections.Generic;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Http;
using TransformerGen.Samples.Serving;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// <c>POST /rerank</c> as Hugging Face's text-embeddings-inference has it: <c>{"query": "…", "texts": ["…", …],
/// "raw_scores": false, "return_text": false, "truncate": bool}</c> in; <c>[{"index": i, "text"?: "…", "score": s}, …]</c>
/// out, sorted by score from the highest (equal scores by index). Each text is scored with the query as one pair by the
/// cross-encoder of <c>--reranker</c>: the logit through a sigmoid, or the logit itself with <c>raw_scores</c>.
/// <c>text</c> is the passage as sent, given with <c>return_text</c>.
/// </summary>
/// <remarks>
/// Refusals take the embeddings endpoint's OpenAI error shape, <c>{"error": {"message", "type", "param", "code"}}</c>: 501
/// when the server has no reranker; 400 for a body that is not JSON, a missing or empty <c>query</c>, <c>texts</c> that is
/// missing, empty, or holds an empty string or something other than strings, a flag that is not a boolean, or a
/// <c>truncation_direction</c> other than <c>Right</c>; 413 for more passages than <c>--max-inputs</c> or, when
/// <c>truncate</c> is false, a pair longer than SeqLen tokens. <c>truncate</c> defaults to the server's
/// <c>--truncate</c>, as text-embeddings-inference's to its <c>--auto-truncate</c>; a pair that is cut loses ids longest
/// first, so the passage goes first (sentence-transformers' CrossEncoder). Other fields are ignored. A request whose
/// client goes away is dropped from the batches without touching the others.
/// </remarks>
public static class RerankEndpoint
{
    public static async Task HandleAsync(HttpContext context, EmbeddingEngine engine, ServerMetrics metrics)
    {
        RerankEngine? reranker = engine.Reranker;
        if (reranker is null)
        {
            await WriteErrorAsync(context, metrics, new RequestError(StatusCodes.Status501NotImplemented,
                "This server has no reranker: start it with --reranker <folder> (the files of a cross-encoder such as cross-encoder/ms-marco-MiniLM-L-6-v2) to serve /rerank.",
                type: "server_error"));
            return;
        }

        CancellationToken aborted = context.RequestAborted;
        Request? request;
        try
        {
            request = await ReadAsync(context, engine, reranker, aborted);
        }
        catch (RequestError error)
        {
            await WriteErrorAsync(context, metrics, error);
            return;
        }

        if (request is null) return; // the client went away while sending

        var scores = new Task<float>[request.Pairs.Length];
        for (int i = 0; i < scores.Length; i++) scores[i] = reranker.ScoreAsync(request.Pairs[i], aborted);
        try
        {
            await Task.WhenAll(scores);
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            return; // nobody is listening; the other requests' batches went on without these pairs
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The model refused a pair the checks let through: this request fails alone, with the model's message.
            await WriteErrorAsync(context, metrics, new RequestError(StatusCodes.Status500InternalServerError, e.Message, type: "server_error"));
            return;
        }

        var ranks = new (int Index, float Score)[scores.Length];
        for (int i = 0; i < ranks.Length; i++)
        {
            float logit = scores[i].Result;
            if (float.IsNaN(logit))
            {
                await WriteErrorAsync(context, metrics, new RequestError(StatusCodes.Status500InternalServerError, $"The score of texts[{i}] is NaN.", type: "server_error"));
                return;
            }
            ranks[i] = (i, request.RawScores ? logit : Sigmoid(logit));
        }
        // Highest first; equal scores keep the texts' order, so the answer does not depend on the sort.
        Array.Sort(ranks, static (a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Index.CompareTo(b.Index));

        long tokens = 0;
        foreach (RerankEngine.Pair pair in request.Pairs) tokens += pair.Ids.Length;
        metrics.ObserveRerankPairs(request.Pairs.Length, tokens, request.Truncated);
        metrics.ObserveRerankRequest(StatusCodes.Status200OK);
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/json";
        await using var json = new Utf8JsonWriter(context.Response.Body);
        json.WriteStartArray();
        foreach ((int index, float score) in ranks)
        {
            json.WriteStartObject();
            json.WriteNumber("index", index);
            if (request.Texts is not null) json.WriteString("text", request.Texts[index]);
            json.WriteNumber("score", score);
            json.WriteEndObject();
            if (json.BytesPending > 32 * 1024) await json.FlushAsync(aborted);
        }
        json.WriteEndArray();
    }

    /// <summary>
    /// The probability the logit stands for, <c>1 / (1 + e^−x)</c> in float32, as text-embeddings-inference (and
    /// torch.sigmoid, sentence-transformers' activation for one-label cross-encoders) computes it.
    /// </summary>
    public static float Sigmoid(float logit) => 1f / (1f + MathF.Exp(-logit));

    /// <summary>A request's pairs, tokenized; the texts when they are to be returned.</summary>
    private sealed record Request(RerankEngine.Pair[] Pairs, int Truncated, bool RawScores, List<string>? Texts);

    private static async Task<Request?> ReadAsync(HttpContext context, EmbeddingEngine engine, RerankEngine reranker, CancellationToken aborted)
    {
        using JsonDocument? document = await RequestError.ReadObjectAsync(context.Request, "a 'query' and 'texts'", aborted);
        if (document is null) return null;
        JsonElement root = document.RootElement;
        string query = Query(root);
        List<string> texts = Texts(root);
        bool rawScores = Flag(root, "raw_scores") ?? false;
        bool returnText = Flag(root, "return_text") ?? false;
        bool truncate = Flag(root, "truncate") ?? engine.Truncate;
        TruncationDirection(root);
        if (texts.Count > engine.MaxInputs)
            throw new RequestError(StatusCodes.Status413PayloadTooLarge, $"'texts' holds {texts.Count} passages; this server takes at most {engine.MaxInputs} per request (--max-inputs).", "texts");

        int seqLen = reranker.Layout.SeqLen;
        var pairs = new RerankEngine.Pair[texts.Count];
        int truncated = 0;
        for (int i = 0; i < texts.Count; i++)
        {
            pairs[i] = reranker.Tokenize(query, texts[i], out int length);
            if (length <= seqLen) continue;
            if (!truncate)
                throw new RequestError(StatusCodes.Status413PayloadTooLarge, $"The query with texts[{i}] has {length} tokens, more than the reranker's {seqLen} (special tokens included), and 'truncate' is false.", "texts");
            truncated++;
        }

        return new Request(pairs, truncated, rawScores, returnText ? texts : null);
    }

    private static string Query(JsonElement root)
    {
        if (!root.TryGetProperty("query", out JsonElement query))
            throw new RequestError(StatusCodes.Status400BadRequest, "'query' is required: a string.", "query");
        if (query.ValueKind != JsonValueKind.String)
            throw new RequestError(StatusCodes.Status400BadRequest, $"'query' is {RequestError.Describe(query.ValueKind)}; it must be a string.", "query");
        string text = query.GetString()!;
        if (text.Length == 0) throw new RequestError(StatusCodes.Status400BadRequest, "'query' is an empty string.", "query");
        return text;
    }

    private static List<string> Texts(JsonElement root)
    {
        if (!root.TryGetProperty("texts", out JsonElement texts))
            throw new RequestError(StatusCodes.Status400BadRequest, "'texts' is required: an array of strings.", "texts");
        if (texts.ValueKind != JsonValueKind.Array)
            throw new RequestError(StatusCodes.Status400BadRequest, $"'texts' is {RequestError.Describe(texts.ValueKind)}; it must be an array of strings.", "texts");
        var list = new List<string>(texts.GetArrayLength());
        foreach (JsonElement item in texts.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
                throw new RequestError(StatusCodes.Status400BadRequest, $"texts[{list.Count}] is {RequestError.Describe(item.ValueKind)}; it must be a string.", "texts");
            string text = item.GetString()!;
            if (text.Length == 0) throw new RequestError(StatusCodes.Status400BadRequest, $"texts[{list.Count}] is an empty string.", "texts");
            list.Add(text);
        }
        if (list.Count == 0) throw new RequestError(StatusCodes.Status400BadRequest, "'texts' is an empty array: give at least one passage.", "texts");
        return list;
    }

    /// <summary>A boolean field, or null when it is absent or null.</summary>
    private static bool? Flag(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out JsonElement value)) return null;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Null => null,
            _ => throw new RequestError(StatusCodes.Status400BadRequest, $"'{name}' is {RequestError.Describe(value.ValueKind)}; it must be true or false.", name),
        };
    }

    /// <summary>text-embeddings-inference's <c>truncation_direction</c>: only <c>Right</c> (its default) is served; <c>Left</c> would keep a passage's end.</summary>
    private static void TruncationDirection(JsonElement root)
    {
        if (!root.TryGetProperty("truncation_direction", out JsonElement direction) || direction.ValueKind == JsonValueKind.Null) return;
        if (direction.ValueKind == JsonValueKind.String && string.Equals(direction.GetString(), "Right", StringComparison.OrdinalIgnoreCase)) return;
        throw new RequestError(StatusCodes.Status400BadRequest, $"'truncation_direction' is {direction.GetRawText()}; this server cuts pairs at the right only (\"Right\").", "truncation_direction");
    }

    private static Task WriteErrorAsync(HttpContext context, ServerMetrics metrics, RequestError error)
    {
        metrics.ObserveRerankRequest(error.Status);
        return error.WriteAsync(context.Response);
    }
}
