using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Http;
using TransformerGen.Samples.Serving;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// <c>POST /v1/embeddings</c> as OpenAI's API has it: <c>{"input": "text" | ["text", …], "encoding_format": "float" |
/// "base64", "dimensions": d}</c> in (<c>dimensions</c>, as OpenAI's API has it for its Matryoshka-trained models and
/// EmbeddingGemma's model card for its 512, 256 and 128: the first d components, normalized again to unit length;
/// and, as text-embeddings-inference takes it, <c>"prompt_name"</c>: one of the folder's sentence-transformers prompts,
/// put before every input, the folder's <c>default_prompt_name</c> when the request names none); <c>{"object": "list", "data": [{"object": "embedding", "index": i, "embedding": […]}, …], "model",
/// "usage": {"prompt_tokens", "total_tokens"}}</c> out, in input order. Usage counts the tokens the model ran, [CLS] and
/// [SEP] included, after any cut; <c>usage.truncated_inputs</c> lists the indices of the sentences cut at SeqLen.
/// </summary>
/// <remarks>
/// Errors use OpenAI's shape, <c>{"error": {"message", "type", "param", "code"}}</c>: 400 for a body that is not JSON or
/// has no usable <c>input</c> (missing, empty, an empty string, not strings), 413 for more sentences than
/// <c>--max-inputs</c> or, with truncation off, a sentence longer than SeqLen tokens. A request whose client goes away
/// is dropped from the batches without touching the others.
/// </remarks>
public static class EmbeddingsEndpoint
{
    public static async Task HandleAsync(HttpContext context, EmbeddingEngine engine, ServerMetrics metrics)
    {
        CancellationToken aborted = context.RequestAborted;
        Request? request;
        try
        {
            request = await ReadAsync(context, engine, aborted);
        }
        catch (RequestError error)
        {
            await WriteErrorAsync(context, metrics, error);
            return;
        }

        if (request is null) return; // the client went away while sending

        var embeddings = new Task<float[]>[request.Ids.Length];
        for (int i = 0; i < embeddings.Length; i++) embeddings[i] = engine.EmbedAsync(request.Ids[i], aborted);
        try
        {
            await Task.WhenAll(embeddings);
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            return; // nobody is listening; the other requests' batches went on without these sentences
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The model refused a sentence the checks let through: this request fails alone (the batcher reran its batch
            // sentence by sentence), with the model's message.
            await WriteErrorAsync(context, metrics, new RequestError(StatusCodes.Status500InternalServerError, e.Message, type: "server_error"));
            return;
        }

        long tokens = 0;
        foreach (int[] ids in request.Ids) tokens += ids.Length;
        metrics.ObserveInputs(request.Ids.Length, tokens, request.Truncated.Count);
        metrics.ObserveRequest(StatusCodes.Status200OK);
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/json";
        await using (var json = new Utf8JsonWriter(context.Response.Body))
        {
            json.WriteStartObject();
            json.WriteString("object", "list");
            json.WriteStartArray("data");
            for (int i = 0; i < embeddings.Length; i++)
            {
                json.WriteStartObject();
                json.WriteString("object", "embedding");
                json.WriteNumber("index", i);
                float[] vector = request.Dimensions is int d ? Shortened(embeddings[i].Result, d) : embeddings[i].Result;
                if (request.Base64)
                {
                    json.WriteBase64String("embedding", MemoryMarshal.AsBytes(vector.AsSpan()));
                }
                else
                {
                    json.WriteStartArray("embedding");
                    foreach (float v in vector) json.WriteNumberValue(v);
                    json.WriteEndArray();
                }
                json.WriteEndObject();
                if (json.BytesPending > 32 * 1024) await json.FlushAsync(aborted);
            }
            json.WriteEndArray();
            json.WriteString("model", engine.ModelName);
            json.WriteStartObject("usage");
            json.WriteNumber("prompt_tokens", tokens);
            json.WriteNumber("total_tokens", tokens);
            json.WriteStartArray("truncated_inputs");
            foreach (int index in request.Truncated) json.WriteNumberValue(index);
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndObject();
        }
    }

    /// <summary>A request's sentences, tokenized, and how their embeddings are written.</summary>
    private sealed record Request(int[][] Ids, List<int> Truncated, bool Base64, int? Dimensions);

    /// <summary>The first <paramref name="dimensions"/> components of a unit embedding, scaled back to unit length.</summary>
    private static float[] Shortened(float[] embedding, int dimensions)
    {
        float[] shortened = embedding[..dimensions];
        double squares = 0;
        foreach (float v in shortened) squares += (double)v * v;
        float scale = (float)(1 / Math.Max(Math.Sqrt(squares), 1e-12));
        for (int i = 0; i < shortened.Length; i++) shortened[i] *= scale;
        return shortened;
    }

    private static async Task<Request?> ReadAsync(HttpContext context, EmbeddingEngine engine, CancellationToken aborted)
    {
        using JsonDocument? document = await RequestError.ReadObjectAsync(context.Request, "an 'input'", aborted);
        if (document is null) return null;
        JsonElement root = document.RootElement;
        bool base64 = EncodingFormat(root);
        int? dimensions = Dimensions(root, engine.EmbeddingWidth);
        string prompt = Prompt(root, engine.Prompts);
        List<string> texts = Inputs(root);
        if (prompt.Length > 0)
            for (int i = 0; i < texts.Count; i++) texts[i] = prompt + texts[i];
        if (texts.Count > engine.MaxInputs)
            throw new RequestError(StatusCodes.Status413PayloadTooLarge, $"'input' holds {texts.Count} sentences; this server takes at most {engine.MaxInputs} per request (--max-inputs).", "input");

        var ids = new int[texts.Count][];
        var truncated = new List<int>();
        for (int i = 0; i < texts.Count; i++)
        {
            ids[i] = engine.Tokenize(texts[i], out int length);
            if (length <= engine.Layout.SeqLen) continue;
            if (!engine.Truncate)
                throw new RequestError(StatusCodes.Status413PayloadTooLarge, $"input[{i}] has {length} tokens, more than the model's {engine.Layout.SeqLen} ([CLS] and [SEP] included), and truncation is off (--truncate false).", "input");
            truncated.Add(i);
        }

        return new Request(ids, truncated, base64, dimensions);
    }

    private static List<string> Inputs(JsonElement root)
    {
        if (!root.TryGetProperty("input", out JsonElement input))
            throw new RequestError(StatusCodes.Status400BadRequest, "'input' is required: a string or an array of strings.", "input");
        var texts = new List<string>();
        switch (input.ValueKind)
        {
            case JsonValueKind.String:
                texts.Add(input.GetString()!);
                break;
            case JsonValueKind.Array:
                foreach (JsonElement item in input.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.String)
                        throw new RequestError(StatusCodes.Status400BadRequest, $"input[{texts.Count}] is {RequestError.Describe(item.ValueKind)}; this server takes strings (not token ids).", "input");
                    texts.Add(item.GetString()!);
                }
                break;
            default:
                throw new RequestError(StatusCodes.Status400BadRequest, $"'input' is {RequestError.Describe(input.ValueKind)}; it must be a string or an array of strings.", "input");
        }

        if (texts.Count == 0)
            throw new RequestError(StatusCodes.Status400BadRequest, "'input' is an empty array: give at least one sentence.", "input");
        for (int i = 0; i < texts.Count; i++)
        {
            if (texts[i].Length == 0)
                throw new RequestError(StatusCodes.Status400BadRequest, input.ValueKind == JsonValueKind.String ? "'input' is an empty string." : $"input[{i}] is an empty string.", "input");
        }

        return texts;
    }

    /// <summary>The text the request's <c>prompt_name</c> (or the folder's default) puts before each input; empty for none.</summary>
    private static string Prompt(JsonElement root, SentencePrompts prompts)
    {
        string? name = prompts.DefaultName;
        if (root.TryGetProperty("prompt_name", out JsonElement value) && value.ValueKind != JsonValueKind.Null)
        {
            name = value.ValueKind == JsonValueKind.String ? value.GetString() : null;
            if (name is null || !prompts.Prompts.ContainsKey(name))
                throw new RequestError(StatusCodes.Status400BadRequest, prompts.Prompts.Count == 0
                    ? $"'prompt_name' is {value.GetRawText()}, but this model's folder names no prompts ({SentencePrompts.FileName})."
                    : $"'prompt_name' is {value.GetRawText()}; this model's prompts are {string.Join(", ", prompts.Prompts.Keys)}.", "prompt_name");
        }
        return name is null ? "" : prompts.Prompts[name];
    }

    /// <summary>The <c>dimensions</c> asked for: null for the whole embedding (absent or null), else 1 to its width.</summary>
    private static int? Dimensions(JsonElement root, int width)
    {
        if (!root.TryGetProperty("dimensions", out JsonElement value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int dimensions) && dimensions >= 1 && dimensions <= width)
            return dimensions;
        throw new RequestError(StatusCodes.Status400BadRequest, $"'dimensions' is {value.GetRawText()}; it must be an integer from 1 to the embedding's {width}.", "dimensions");
    }

    /// <summary>True for base64 (little-endian float32 bytes, as OpenAI's API), false for JSON numbers (the default).</summary>
    private static bool EncodingFormat(JsonElement root)
    {
        if (!root.TryGetProperty("encoding_format", out JsonElement format) || format.ValueKind == JsonValueKind.Null) return false;
        return (format.ValueKind == JsonValueKind.String ? format.GetString() : null) switch
        {
            "float" => false,
            "base64" => true,
            _ => throw new RequestError(StatusCodes.Status400BadRequest, $"'encoding_format' is {format.GetRawText()}; it must be \"float\" or \"base64\".", "encoding_format"),
        };
    }

    private static Task WriteErrorAsync(HttpContext context, ServerMetrics metrics, RequestError error)
    {
        metrics.ObserveRequest(error.Status);
        return error.WriteAsync(context.Response);
    }
}
