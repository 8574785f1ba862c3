using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using ChatSample;
using Microsoft.AspNetCore.Http;
using TransformerGen.Samples.Serving;

namespace TransformerGen.ChatServer;

/// <summary>
/// <c>POST /v1/chat/completions</c> as OpenAI's API has it. In: <c>{"messages": [{"role", "content"}, …], "max_tokens"
/// (or "max_completion_tokens"), "temperature", "top_p", "presence_penalty", "frequency_penalty", "seed", "n", "stop",
/// "stream", "stream_options": {"include_usage"}}</c>, and vLLM's extensions <c>"top_k"</c>, <c>"min_p"</c> and
/// <c>"repetition_penalty"</c>; the messages are written out with the model's chat template, ending with the opening of
/// the assistant's turn. A sampling field left out takes the value the model folder's generation_config.json gives it,
/// as vLLM does, else OpenAI's default (temperature 1, no filter, no penalty; <see cref="ChatEngine.DefaultSampling"/>). Out: one <c>chat.completion</c> object with <c>n</c> choices, or with <c>"stream": true</c>
/// Server-Sent Events of <c>chat.completion.chunk</c> objects, each choice's last with its finish reason, then
/// <c>data: [DONE]</c>.
/// </summary>
/// <remarks>
/// <para>
/// A reply is generated in the <see cref="ChatEngine"/>'s batcher steps, shared with every other conversation, and is
/// what the Chat sample's <see cref="ChatSession"/> gives the same prompt and settings alone, up to the first
/// <c>stop</c> string. <c>finish_reason</c> is <c>"stop"</c> when the model ended its turn (an end-of-turn or
/// end-of-sequence id, not part of the reply) or a stop string appeared in the decoded text (the reply is the text before
/// it; the generation is cancelled at once, so its cache slot is free at the next step, and the tokens counted are those
/// generated up to it), and <c>"length"</c> when <c>max_tokens</c> or the context (SeqLen positions, prompt and reply)
/// ended it. A stream never sends text that may still turn out to begin a stop string (<see cref="StopStringFilter"/>).
/// </para>
/// <para>
/// <c>n</c> choices (1 to <see cref="ChatEngine.MaxSequences"/>) are independent generations of the same prompt, run side
/// by side in the batcher's slots. Choice i samples with seed <c>seed + i</c>, so it is the single reply a request with
/// that seed gets (with temperature 0 all choices are equal). <c>usage</c> counts the prompt once and every choice's
/// tokens; its <c>prompt_tokens_details.cached_tokens</c> is how many of the prompt's tokens came from a free slot's
/// cache instead of being run (the fewest of the choices').
/// </para>
/// <para>
/// Refusals use OpenAI's error shape with 400: a body that is not JSON, no messages, a message that is not an object or
/// has no content, a role other than system, user, assistant (or developer, taken as system), <c>max_tokens</c> below 1,
/// a temperature outside 0–2, a top_p or min_p outside 0–1, a presence or frequency penalty outside −2–2, a
/// repetition_penalty outside 0.01–2, a top_k below −1, <c>n</c> outside 1 to <see cref="ChatEngine.MaxSequences"/>, a
/// <c>stop</c> that is not a string or an array of up to 4 strings or has an empty one, and a prompt longer than
/// SeqLen − 1 tokens (<c>context_length_exceeded</c>, with the counts). <c>logit_bias</c>, <c>logprobs</c>, tools and
/// <c>model</c> are ignored. A client that goes away cancels its generations (their cache slots are free at the
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
        metrics.ObserveTokens(request.Prompt.Length * request.Choices, completion.Tokens); // each choice runs the prompt
        metrics.ObserveRequest(status);
    }

    /// <summary>Generates every choice's whole reply, then answers with one <c>chat.completion</c>; returns the status counted.</summary>
    private static async Task<int> AnswerAsync(HttpResponse response, ChatEngine engine, CompletionRequest request, Completion completion, CancellationToken aborted)
    {
        Choice[] choices;
        try
        {
            choices = await GenerateChoicesAsync(engine, request, completion, send: null, aborted);
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

        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json";
        await using (var json = new Utf8JsonWriter(response.Body))
        {
            completion.Begin(json, "chat.completion");
            json.WriteStartArray("choices");
            foreach (Choice choice in choices)
            {
                json.WriteStartObject();
                json.WriteNumber("index", choice.Index);
                json.WriteStartObject("message");
                json.WriteString("role", "assistant");
                json.WriteString("content", choice.Content);
                json.WriteEndObject();
                json.WriteNull("logprobs");
                json.WriteString("finish_reason", choice.FinishReason);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            completion.WriteUsage(json);
            json.WriteEndObject();
        }
        return StatusCodes.Status200OK;
    }

    /// <summary>
    /// Streams the replies as they are generated: a first chunk per choice naming the assistant's role, one chunk per piece
    /// of a choice's text (a token that ends inside a character waits for the next, text that may begin a stop string waits
    /// until it cannot), a chunk with each choice's finish reason when it ends, the usage chunk if asked, and
    /// <c>[DONE]</c>. The choices' chunks interleave as their tokens come, each carrying its index. Returns the status
    /// counted.
    /// </summary>
    private static async Task<int> StreamAsync(HttpResponse response, ChatEngine engine, CompletionRequest request, Completion completion, CancellationToken aborted)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = EventStream.ContentType;
        response.Headers.CacheControl = "no-cache";
        var events = new EventStream(response.Body);
        using var sending = new SemaphoreSlim(1); // the choices' chunks go out one at a time
        async Task SendAsync(Action<Utf8JsonWriter> write)
        {
            await sending.WaitAsync(aborted);
            try
            {
                await events.WriteAsync(write, aborted);
            }
            finally
            {
                sending.Release();
            }
        }

        try
        {
            for (int index = 0; index < request.Choices; index++)
            {
                int choice = index;
                await events.WriteAsync(json => completion.WriteChunk(json, choice, role: "assistant", content: "", finishReason: null), aborted);
            }
            await GenerateChoicesAsync(engine, request, completion, (choice, text, finish) =>
                SendAsync(json => completion.WriteChunk(json, choice, role: null, text, finish)), aborted);
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

    /// <summary>Sends a piece of one choice's text (<c>finishReason</c> null), or its end (text null).</summary>
    private delegate Task ChoiceSender(int choice, string? text, string? finishReason);

    /// <summary>One choice as it ended: its reply (without any stop string) and why it ended.</summary>
    private sealed record Choice(int Index, string Content, string FinishReason);

    /// <summary>
    /// Runs the request's choices at once, each its own generation in the batcher's steps, and returns them in index order
    /// once all have ended. When one fails, the others are cancelled and its exception is thrown.
    /// </summary>
    private static async Task<Choice[]> GenerateChoicesAsync(ChatEngine engine, CompletionRequest request, Completion completion, ChoiceSender? send, CancellationToken aborted)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        var choices = new Task<Choice>[request.Choices];
        for (int index = 0; index < choices.Length; index++) choices[index] = RunAsync(index);
        // A choice cancelled because another failed ends cancelled, not faulted: WhenAll throws the failure.
        return await Task.WhenAll(choices);

        async Task<Choice> RunAsync(int index)
        {
            try
            {
                return await GenerateChoiceAsync(engine, request, index, completion, send, cancel.Token);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                await cancel.CancelAsync();
                throw;
            }
        }
    }

    /// <summary>
    /// Generates one choice, its text cut at the first stop string. When one appears, the enumeration is left at once, so
    /// the batcher frees the choice's cache slot at its next step; the tokens counted are those generated up to it.
    /// </summary>
    private static async Task<Choice> GenerateChoiceAsync(ChatEngine engine, CompletionRequest request, int index, Completion completion, ChoiceSender? send, CancellationToken cancel)
    {
        var text = new StopStringFilter(engine.NewDecoder(), request.Stops);
        int tokens = 0;
        string last = "";
        await foreach (int token in engine.GenerateAsync(request.Prompt, request.MaxTokens, request.SamplerOf(engine, index), completion.CountCached, cancel))
        {
            tokens++;
            completion.CountToken();
            string piece = text.Push(token);
            if (text.Stopped)
            {
                last = piece; // sent after the generation has ended
                break;
            }
            if (piece.Length > 0 && send is not null) await send(index, piece, finishReason: null);
        }

        if (!text.Stopped) last = text.Flush();
        string finish = text.Stopped ? "stop" : FinishReason(request, tokens, engine.Layout.SeqLen);
        if (send is not null)
        {
            if (last.Length > 0) await send(index, last, finishReason: null);
            await send(index, text: null, finish);
        }
        return new Choice(index, text.Reply, finish);
    }

    /// <summary>
    /// Why a reply ended. The batcher ends one after <c>max_tokens</c>, when the cache is full (prompt and reply one past
    /// SeqLen: the last token is drawn, not appended), or on a stop id, which it does not return; so the counts tell.
    /// </summary>
    private static string FinishReason(CompletionRequest request, int tokens, int seqLen) =>
        tokens == request.MaxTokens || request.Prompt.Length + tokens > seqLen ? "length" : "stop";

    /// <summary>
    /// A request read and checked: the prompt's ids, a reply's limit, the sampler's settings, the number of choices, the
    /// stop strings, and how to answer.
    /// </summary>
    private sealed record CompletionRequest(
        int[] Prompt, int MaxTokens, ChatSettings Sampling, int Choices, string[] Stops, bool Stream, bool IncludeUsage)
    {
        /// <summary>Choice <paramref name="index"/>'s sampler: its seed is the request's plus the index, so choice i is the single reply to seed + i.</summary>
        public Sampler SamplerOf(ChatEngine engine, int index) => (Sampling with { Seed = unchecked(Sampling.Seed + (ulong)index) }).NewSampler(engine.Layout.Vocab);
    }

    private static async Task<CompletionRequest?> ReadAsync(HttpRequest http, ChatEngine engine, CancellationToken aborted)
    {
        using JsonDocument? document = await RequestError.ReadObjectAsync(http, "'messages'", aborted);
        if (document is null) return null;
        JsonElement root = document.RootElement;
        List<(string Role, string Content)> messages = Messages(root);
        int maxTokens = MaxTokens(root) ?? engine.MaxTokens;
        ChatSettings defaults = engine.DefaultSampling;
        ChatSettings sampling = defaults with
        {
            Temperature = Number(root, "temperature", 0, 2) ?? defaults.Temperature,
            TopP = Number(root, "top_p", 0, 1) ?? defaults.TopP,
            TopK = TopK(root) ?? defaults.TopK,
            MinP = Number(root, "min_p", 0, 1) ?? defaults.MinP,
            RepetitionPenalty = Number(root, "repetition_penalty", MinimumRepetitionPenalty, 2) ?? defaults.RepetitionPenalty,
            PresencePenalty = Number(root, "presence_penalty", -2, 2) ?? 0f,
            FrequencyPenalty = Number(root, "frequency_penalty", -2, 2) ?? 0f,
            Seed = Seed(root),
        };
        int choices = Choices(root, engine.MaxSequences);
        string[] stops = Stops(root);
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

        return new CompletionRequest(prompt, maxTokens, sampling, choices, stops, stream, includeUsage);
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

    // repetition_penalty must be positive; vLLM's own bound is > 0, and 2 is past any useful value.
    private const float MinimumRepetitionPenalty = 0.01f;

    /// <summary><c>top_k</c> (vLLM's extension): a whole number, 0 or −1 for all tokens; null when not given.</summary>
    private static int? TopK(JsonElement root)
    {
        if (!root.TryGetProperty("top_k", out JsonElement value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int k) || k < -1)
            throw new RequestError(StatusCodes.Status400BadRequest, $"'top_k' is {value.GetRawText()}; it must be a whole number of tokens, 0 or -1 for all.", "top_k");
        return Math.Max(k, 0);
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

    /// <summary><c>n</c>: 1 when not given, at most <paramref name="max"/> (the conversations the batcher runs at once, so a request's choices run side by side).</summary>
    private static int Choices(JsonElement root, int max)
    {
        if (!root.TryGetProperty("n", out JsonElement n) || n.ValueKind == JsonValueKind.Null) return 1;
        if (n.ValueKind != JsonValueKind.Number || !n.TryGetInt32(out int choices) || choices < 1 || choices > max)
            throw new RequestError(StatusCodes.Status400BadRequest, $"'n' is {n.GetRawText()}; it must be a whole number of choices from 1 to {max} (the conversations this server generates at once).", "n");
        return choices;
    }

    /// <summary>The most stop strings a request may give, as in OpenAI's API.</summary>
    private const int MaxStops = 4;

    /// <summary><c>stop</c>: none when not given (or null), a string, or an array of up to <see cref="MaxStops"/> strings, none empty.</summary>
    private static string[] Stops(JsonElement root)
    {
        if (!root.TryGetProperty("stop", out JsonElement stop) || stop.ValueKind == JsonValueKind.Null) return [];
        if (stop.ValueKind == JsonValueKind.String) return [StopString(stop, "'stop'")];
        if (stop.ValueKind != JsonValueKind.Array)
            throw new RequestError(StatusCodes.Status400BadRequest, $"'stop' is {RequestError.Describe(stop.ValueKind)}; it must be a string or an array of up to {MaxStops} strings.", "stop");
        if (stop.GetArrayLength() > MaxStops)
            throw new RequestError(StatusCodes.Status400BadRequest, $"'stop' has {stop.GetArrayLength()} strings; at most {MaxStops} are allowed.", "stop");
        var stops = new string[stop.GetArrayLength()];
        for (int i = 0; i < stops.Length; i++)
        {
            JsonElement element = stop[i];
            if (element.ValueKind != JsonValueKind.String)
                throw new RequestError(StatusCodes.Status400BadRequest, $"stop[{i}] is {RequestError.Describe(element.ValueKind)}; a stop string is a string.", "stop");
            stops[i] = StopString(element, $"stop[{i}]");
        }
        return stops;
    }

    private static string StopString(JsonElement value, string at)
    {
        string stop = value.GetString()!;
        if (stop.Length == 0)
            throw new RequestError(StatusCodes.Status400BadRequest, $"{at} is an empty string; a stop string has at least one character.", "stop");
        return stop;
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

        private int _tokens;
        private int _cached = int.MaxValue;

        /// <summary>Reply tokens generated so far, all choices together (stop ids not counted).</summary>
        public int Tokens => Volatile.Read(ref _tokens);

        /// <summary>
        /// Prompt tokens every choice took from a cache slot instead of running them (the fewest of the choices'; OpenAI's
        /// <c>prompt_tokens_details.cached_tokens</c>); 0 before a choice has a slot.
        /// </summary>
        public int CachedTokens => Volatile.Read(ref _cached) is var cached && cached != int.MaxValue ? cached : 0;

        /// <summary>Records what one choice took from its slot's cache (the batcher calls it as the choice takes a slot).</summary>
        public void CountCached(int tokens)
        {
            int seen = Volatile.Read(ref _cached);
            while (tokens < seen && Interlocked.CompareExchange(ref _cached, tokens, seen) is var now && now != seen) seen = now;
        }

        /// <summary>Counts one generated token (the choices count at once).</summary>
        public void CountToken() => Interlocked.Increment(ref _tokens);

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
            json.WriteStartObject("prompt_tokens_details");
            json.WriteNumber("cached_tokens", CachedTokens);
            json.WriteEndObject();
            json.WriteEndObject();
        }

        /// <summary>A <c>chat.completion.chunk</c> of one choice with a delta (the role, a piece of text, or nothing in its last chunk) and the finish reason once known.</summary>
        public void WriteChunk(Utf8JsonWriter json, int choice, string? role, string? content, string? finishReason)
        {
            Begin(json, "chat.completion.chunk");
            json.WriteStartArray("choices");
            json.WriteStartObject();
            json.WriteNumber("index", choice);
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
