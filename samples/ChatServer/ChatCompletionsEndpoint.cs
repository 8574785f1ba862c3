using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using ChatSample;
using Microsoft.AspNetCore.Http;
using TransformerGen.Samples.Serving;

namespace TransformerGen.ChatServer;

/// <summary>
/// <c>POST /v1/chat/completions</c> as OpenAI's API has it. In: <c>{"messages": [{"role", "content"}, …], "max_tokens"
/// (or "max_completion_tokens"), "temperature", "top_p", "seed", "stream", "stream_options": {"include_usage"}}</c>; the
/// messages are written out with the model's chat template, ending with the opening of the assistant's turn. Out: one
/// <c>chat.completion</c> object, or with <c>"stream": true</c> Server-Sent Events of <c>chat.completion.chunk</c>
/// objects, the last with the finish reason, then <c>data: [DONE]</c>.
/// </summary>
/// <remarks>
/// <para>
/// The reply is generated in the <see cref="ChatEngine"/>'s batcher steps, shared with every other conversation, and
/// is what the Chat sample's <see cref="ChatSession"/> gives the same prompt and settings alone. <c>finish_reason</c> is
/// <c>"stop"</c> when the model ended its turn (an end-of-turn or end-of-sequence id, not part of the reply) and
/// <c>"length"</c> when <c>max_tokens</c> or the context (SeqLen positions, prompt and reply) ended it.
/// </para>
/// <para>
/// Refusals use OpenAI's error shape with 400: a body that is not JSON, no messages, a message that is not an object or
/// has no content, a role other than system, user, assistant (or developer, taken as system), <c>max_tokens</c> below 1,
/// a temperature outside 0–2 or a top_p outside 0–1, <c>n</c> other than 1, and a prompt longer than SeqLen − 1 tokens
/// (<c>context_length_exceeded</c>, with the counts). <c>stop</c>, penalties, <c>logit_bias</c>, <c>logprobs</c>,
/// tools and <c>model</c> are ignored. A client that goes away cancels its generation (its cache slot is free at the
/// next step) and is counted with <see cref="ServerMetrics.ClientClosedRequest"/>.
/// </para>
/// </remarks>
public static class ChatCompletionsEndpoint
{
    private const string ServerError = "server_error";

    public static async Task HandleAsync(HttpContext context, ChatEngine engine, ServerMetrics metrics)
    {
        CancellationToken aborted = context.RequestAborted;
        CompletionRequest? request;
        try
        {
            request = await ReadAsync(context.Request, engine, aborted);
        }
        catch (RequestError error)
        {
            metrics.ObserveRequest(error.Status);
            await error.WriteAsync(context.Response);
            return;
        }

        if (request is null)
        {
            metrics.ObserveRequest(ServerMetrics.ClientClosedRequest); // gone while sending
            return;
        }

        var completion = new Completion(engine.ModelName, request.Prompt.Length);
        int status = request.Stream
            ? await StreamAsync(context.Response, engine, request, completion, aborted)
            : await AnswerAsync(context.Response, engine, request, completion, aborted);
        metrics.ObserveTokens(request.Prompt.Length, completion.Tokens);
        metrics.ObserveRequest(status);
    }

    /// <summary>Generates the whole reply, then answers with one <c>chat.completion</c>; returns the status counted.</summary>
    private static async Task<int> AnswerAsync(HttpResponse response, ChatEngine engine, CompletionRequest request, Completion completion, CancellationToken aborted)
    {
        var tokens = new List<int>();
        try
        {
            await foreach (int token in engine.GenerateAsync(request.Prompt, request.MaxTokens, request.Sampler, aborted))
            {
                tokens.Add(token);
                completion.Tokens++;
            }
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            return ServerMetrics.ClientClosedRequest;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var error = new RequestError(StatusCodes.Status500InternalServerError, e.Message, type: ServerError);
            await error.WriteAsync(response);
            return error.Status;
        }

        string finish = FinishReason(request, completion.Tokens, engine.Layout.SeqLen);
        string content = engine.Decode(CollectionsMarshal.AsSpan(tokens));
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json";
        await using (var json = new Utf8JsonWriter(response.Body))
        {
            completion.Begin(json, "chat.completion");
            json.WriteStartArray("choices");
            json.WriteStartObject();
            json.WriteNumber("index", 0);
            json.WriteStartObject("message");
            json.WriteString("role", "assistant");
            json.WriteString("content", content);
            json.WriteEndObject();
            json.WriteNull("logprobs");
            json.WriteString("finish_reason", finish);
            json.WriteEndObject();
            json.WriteEndArray();
            completion.WriteUsage(json);
            json.WriteEndObject();
        }
        return StatusCodes.Status200OK;
    }

    /// <summary>
    /// Streams the reply as it is generated: a first chunk naming the assistant's role, one chunk per piece of text (a
    /// token that ends inside a character waits for the next), a chunk with the finish reason, the usage chunk if asked,
    /// and <c>[DONE]</c>. Returns the status counted.
    /// </summary>
    private static async Task<int> StreamAsync(HttpResponse response, ChatEngine engine, CompletionRequest request, Completion completion, CancellationToken aborted)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = EventStream.ContentType;
        response.Headers.CacheControl = "no-cache";
        var events = new EventStream(response.Body);
        StreamingDecoder decoder = engine.NewDecoder();
        try
        {
            await events.WriteAsync(json => completion.WriteChunk(json, role: "assistant", content: "", finishReason: null), aborted);
            await foreach (int token in engine.GenerateAsync(request.Prompt, request.MaxTokens, request.Sampler, aborted))
            {
                completion.Tokens++;
                string text = decoder.Push(token);
                if (text.Length > 0) await events.WriteAsync(json => completion.WriteChunk(json, role: null, text, finishReason: null), aborted);
            }

            string rest = decoder.Flush();
            if (rest.Length > 0) await events.WriteAsync(json => completion.WriteChunk(json, role: null, rest, finishReason: null), aborted);
            string finish = FinishReason(request, completion.Tokens, engine.Layout.SeqLen);
            await events.WriteAsync(json => completion.WriteChunk(json, role: null, content: null, finish), aborted);
            if (request.IncludeUsage) await events.WriteAsync(completion.WriteUsageChunk, aborted);
            await events.WriteDoneAsync(aborted);
            return StatusCodes.Status200OK;
        }
        catch (Exception e) when (aborted.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            return ServerMetrics.ClientClosedRequest;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The status went out with the first chunk: the error is the stream's last event.
            var error = new RequestError(StatusCodes.Status500InternalServerError, e.Message, type: ServerError);
            await events.WriteAsync(error.WriteTo, aborted);
            return error.Status;
        }
    }

    /// <summary>
    /// Why a reply ended. The batcher ends one after <c>max_tokens</c>, when the cache is full (prompt and reply one past
    /// SeqLen: the last token is drawn, not appended), or on a stop id, which it does not return; so the counts tell.
    /// </summary>
    private static string FinishReason(CompletionRequest request, int tokens, int seqLen) =>
        tokens == request.MaxTokens || request.Prompt.Length + tokens > seqLen ? "length" : "stop";

    /// <summary>A request read and checked: the prompt's ids, the reply's limit, its sampler, and how to answer.</summary>
    private sealed record CompletionRequest(int[] Prompt, int MaxTokens, Sampler Sampler, bool Stream, bool IncludeUsage);

    private static async Task<CompletionRequest?> ReadAsync(HttpRequest http, ChatEngine engine, CancellationToken aborted)
    {
        using JsonDocument? document = await RequestError.ReadObjectAsync(http, "'messages'", aborted);
        if (document is null) return null;
        JsonElement root = document.RootElement;
        List<(string Role, string Content)> messages = Messages(root);
        int maxTokens = MaxTokens(root) ?? engine.MaxTokens;
        float temperature = Number(root, "temperature", 0, 2) ?? 1f;
        float topP = Number(root, "top_p", 0, 1) ?? 1f;
        ulong seed = Seed(root);
        CheckOneChoice(root);
        bool stream = Flag(root, "stream");
        bool includeUsage = root.TryGetProperty("stream_options", out JsonElement streamOptions) && streamOptions.ValueKind == JsonValueKind.Object
                            && Flag(streamOptions, "include_usage");

        int[] prompt;
        try
        {
            prompt = engine.Encode(messages);
        }
        catch (ArgumentException e)
        {
            throw new RequestError(StatusCodes.Status400BadRequest, e.Message, "messages");
        }
        if (prompt.Length == 0)
            throw new RequestError(StatusCodes.Status400BadRequest, "The messages come to no tokens.", "messages");
        if (prompt.Length > engine.MaxPromptTokens)
        {
            throw new RequestError(StatusCodes.Status400BadRequest,
                $"The messages come to {prompt.Length} tokens in the chat template; {engine.ModelName} holds {engine.Layout.SeqLen} positions, prompt and reply together, so a prompt may have at most {engine.MaxPromptTokens} tokens.",
                "messages", code: "context_length_exceeded");
        }

        return new CompletionRequest(prompt, maxTokens, engine.NewSampler(temperature, topP, seed), stream, includeUsage);
    }

    private static List<(string Role, string Content)> Messages(JsonElement root)
    {
        if (!root.TryGetProperty("messages", out JsonElement list) || list.ValueKind == JsonValueKind.Null)
            throw new RequestError(StatusCodes.Status400BadRequest, "'messages' is required: an array of {\"role\", \"content\"} objects.", "messages");
        if (list.ValueKind != JsonValueKind.Array)
            throw new RequestError(StatusCodes.Status400BadRequest, $"'messages' is {RequestError.Describe(list.ValueKind)}; it must be an array of {{\"role\", \"content\"}} objects.", "messages");
        if (list.GetArrayLength() == 0)
            throw new RequestError(StatusCodes.Status400BadRequest, "'messages' is empty; a conversation needs at least one message.", "messages");

        var messages = new List<(string Role, string Content)>();
        foreach (JsonElement message in list.EnumerateArray())
        {
            string at = $"messages[{messages.Count}]";
            if (message.ValueKind != JsonValueKind.Object)
                throw new RequestError(StatusCodes.Status400BadRequest, $"{at} is {RequestError.Describe(message.ValueKind)}; a message is an object with a role and a content.", "messages");
            string? role = message.TryGetProperty("role", out JsonElement r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
            role = role switch
            {
                "system" or "user" or "assistant" => role,
                "developer" => "system", // OpenAI's newer name for the system message
                null => throw new RequestError(StatusCodes.Status400BadRequest, $"{at} has no role (a string).", "messages"),
                _ => throw new RequestError(StatusCodes.Status400BadRequest, $"{at}.role is '{role}'; this server takes system, user and assistant (developer as system).", "messages"),
            };
            messages.Add((role, Content(message, at)));
        }
        return messages;
    }

    /// <summary>A message's text: a string, or an array of text parts (<c>{"type": "text", "text"}</c>) put one per line.</summary>
    private static string Content(JsonElement message, string at)
    {
        if (!message.TryGetProperty("content", out JsonElement content) || content.ValueKind == JsonValueKind.Null)
            throw new RequestError(StatusCodes.Status400BadRequest, $"{at} has no content.", "messages");
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array)
            throw new RequestError(StatusCodes.Status400BadRequest, $"{at}.content is {RequestError.Describe(content.ValueKind)}; it must be a string or an array of text parts.", "messages");
        var parts = new List<string>();
        foreach (JsonElement part in content.EnumerateArray())
        {
            bool text = part.ValueKind == JsonValueKind.Object
                        && part.TryGetProperty("type", out JsonElement type) && type.ValueKind == JsonValueKind.String && type.GetString() == "text"
                        && part.TryGetProperty("text", out JsonElement value) && value.ValueKind == JsonValueKind.String;
            if (!text)
                throw new RequestError(StatusCodes.Status400BadRequest, $"{at}.content[{parts.Count}] is not a text part ({{\"type\": \"text\", \"text\": \"…\"}}); this server takes text only.", "messages");
            parts.Add(part.GetProperty("text").GetString()!);
        }
        return string.Join('\n', parts);
    }

    /// <summary><c>max_completion_tokens</c> (OpenAI's newer name) or <c>max_tokens</c>; null when neither is given.</summary>
    private static int? MaxTokens(JsonElement root)
    {
        foreach (string name in new[] { "max_completion_tokens", "max_tokens" })
        {
            if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null) continue;
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int tokens))
                throw new RequestError(StatusCodes.Status400BadRequest, $"'{name}' is {value.GetRawText()}; it must be a whole number of tokens.", name);
            if (tokens < 1)
                throw new RequestError(StatusCodes.Status400BadRequest, $"'{name}' is {tokens}; a reply has at least 1 token.", name);
            return tokens;
        }
        return null;
    }

    private static float? Number(JsonElement root, string name, float min, float max)
    {
        if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double number) || !(number >= min && number <= max))
            throw new RequestError(StatusCodes.Status400BadRequest, $"'{name}' is {value.GetRawText()}; it must be a number from {min} to {max}.", name);
        return (float)number;
    }

    /// <summary>The sampler's seed: the request's (any 64-bit integer), or a random one.</summary>
    private static ulong Seed(JsonElement root)
    {
        if (!root.TryGetProperty("seed", out JsonElement value) || value.ValueKind == JsonValueKind.Null) return (ulong)Random.Shared.NextInt64();
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out long signed)) return unchecked((ulong)signed);
        if (value.ValueKind == JsonValueKind.Number && value.TryGetUInt64(out ulong seed)) return seed;
        throw new RequestError(StatusCodes.Status400BadRequest, $"'seed' is {value.GetRawText()}; it must be a whole number.", "seed");
    }

    private static void CheckOneChoice(JsonElement root)
    {
        if (!root.TryGetProperty("n", out JsonElement n) || n.ValueKind == JsonValueKind.Null) return;
        if (n.ValueKind != JsonValueKind.Number || !n.TryGetInt32(out int choices) || choices != 1)
            throw new RequestError(StatusCodes.Status400BadRequest, $"'n' is {n.GetRawText()}; this server generates one choice per request.", "n");
    }

    private static bool Flag(JsonElement parent, string name)
    {
        if (!parent.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null) return false;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new RequestError(StatusCodes.Status400BadRequest, $"'{name}' is {value.GetRawText()}; it must be true or false.", name),
        };
    }

    /// <summary>What every object of one completion repeats (its id, creation time, model), and the tokens it has so far.</summary>
    private sealed class Completion(string model, int promptTokens)
    {
        private readonly string _id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        /// <summary>Reply tokens generated so far (stop ids not counted).</summary>
        public int Tokens;

        /// <summary>Opens the object and writes the fields every object of the completion has.</summary>
        public void Begin(Utf8JsonWriter json, string kind)
        {
            json.WriteStartObject();
            json.WriteString("id", _id);
            json.WriteString("object", kind);
            json.WriteNumber("created", _created);
            json.WriteString("model", model);
        }

        public void WriteUsage(Utf8JsonWriter json)
        {
            json.WriteStartObject("usage");
            json.WriteNumber("prompt_tokens", promptTokens);
            json.WriteNumber("completion_tokens", Tokens);
            json.WriteNumber("total_tokens", promptTokens + Tokens);
            json.WriteEndObject();
        }

        /// <summary>A <c>chat.completion.chunk</c> with a delta (the role, a piece of text, or nothing in the last chunk) and the finish reason once known.</summary>
        public void WriteChunk(Utf8JsonWriter json, string? role, string? content, string? finishReason)
        {
            Begin(json, "chat.completion.chunk");
            json.WriteStartArray("choices");
            json.WriteStartObject();
            json.WriteNumber("index", 0);
            json.WriteStartObject("delta");
            if (role is not null) json.WriteString("role", role);
            if (content is not null) json.WriteString("content", content);
            json.WriteEndObject();
            json.WriteNull("logprobs");
            if (finishReason is null) json.WriteNull("finish_reason");
            else json.WriteString("finish_reason", finishReason);
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
        }

        /// <summary>The chunk <c>stream_options.include_usage</c> asks for after the last: no choices, the usage.</summary>
        public void WriteUsageChunk(Utf8JsonWriter json)
        {
            Begin(json, "chat.completion.chunk");
            json.WriteStartArray("choices");
            json.WriteEndArray();
            WriteUsage(json);
            json.WriteEndObject();
        }
    }
}
