using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Text.Json;
using System.Threading.Tasks;
using ChatSample;
using TransformerGen.Samples.Tests.Support;
using Xunit;

namespace TransformerGen.Samples.Tests.ChatServer;

/// <summary>
/// POST /v1/chat/completions on the tiny model: replies equal to the Chat sample's alone, whole and streamed, why they end,
/// every refusal with its message, /health and /metrics.
/// </summary>
public sealed class ChatCompletionsTests(TinyChatServerFolder folder) : IClassFixture<TinyChatServerFolder>
{
    private const string Model = "tests/tiny-chat";

    [Fact]
    public async Task A_reply_is_the_one_the_Chat_sample_gives_the_same_conversation_alone()
    {
        using var server = new ChatServerFactory(folder.Path);
        using HttpClient client = server.CreateClient();

        // Greedy, then sampled with a seed, with a system message of the client's own.
        ChatClient.Answer greedy = await ChatClient.PostAsync(client, new { model = "anything", messages = ChatClient.Conversation("Hello world"), max_tokens = 12, temperature = 0 });
        ChatReply alone = folder.Alone("Hello world", new ChatSettings(MaxTokens: 12, Temperature: 0f));
        Assert.Equal(HttpStatusCode.OK, greedy.Status);
        Assert.Equal(alone.Text, greedy.Content);
        Assert.StartsWith("chatcmpl-", greedy.Body.GetProperty("id").GetString());
        Assert.Equal("chat.completion", greedy.Body.GetProperty("object").GetString());
        Assert.InRange(greedy.Body.GetProperty("created").GetInt64(), DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60, DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        Assert.Equal(Model, greedy.Body.GetProperty("model").GetString());
        Assert.Equal(0, greedy.Choice.GetProperty("index").GetInt32());
        Assert.Equal("assistant", greedy.Choice.GetProperty("message").GetProperty("role").GetString());
        Assert.Equal("length", greedy.FinishReason);
        Assert.Equal(alone.PromptTokens.Length, greedy.Usage("prompt_tokens"));
        Assert.Equal(12, greedy.Usage("completion_tokens"));
        Assert.Equal(alone.PromptTokens.Length + 12, greedy.Usage("total_tokens"));

        ChatClient.Answer sampled = await ChatClient.PostAsync(client, new
        {
            messages = ChatClient.Conversation("You are a", system: "the world is"),
            max_completion_tokens = 20, temperature = 0.8, top_p = 0.9, seed = 7,
        });
        ChatReply sampledAlone = folder.Alone("You are a", new ChatSettings(MaxTokens: 20, Temperature: 0.8f, TopP: 0.9f, Seed: 7, SystemPrompt: "the world is"));
        Assert.Equal(sampledAlone.Text, sampled.Content);
        Assert.Equal(sampledAlone.PromptTokens.Length, sampled.Usage("prompt_tokens"));
        Assert.NotEqual(alone.Text, sampled.Content);

        // OpenAI's newer spellings: a developer message is a system message, content given as text parts.
        ChatClient.Answer parts = await ChatClient.PostAsync(client, new
        {
            messages = new object[]
            {
                new { role = "developer", content = "the world is" },
                new { role = "user", content = new object[] { new { type = "text", text = "You" }, new { type = "text", text = "are a" } } },
            },
            max_tokens = 5, temperature = 0,
        });
        Assert.Equal(folder.Alone("You\nare a", new ChatSettings(MaxTokens: 5, Temperature: 0f, SystemPrompt: "the world is")).Text, parts.Content);
    }

    [Fact]
    public async Task Penalties_top_k_and_min_p_draw_as_the_Chat_sample_does()
    {
        using var server = new ChatServerFactory(folder.Path);
        using HttpClient client = server.CreateClient();
        ChatClient.Answer penalized = await ChatClient.PostAsync(client, new
        {
            messages = ChatClient.Conversation("Hello world"), max_tokens = 16, temperature = 0.9, top_p = 0.95, seed = 11,
            presence_penalty = 1.5, frequency_penalty = 0.5, top_k = 30, min_p = 0.02, repetition_penalty = 1.4,
        });
        var settings = new ChatSettings(MaxTokens: 16, Temperature: 0.9f, TopK: 30, TopP: 0.95f, Seed: 11, MinP: 0.02f, RepetitionPenalty: 1.4f, PresencePenalty: 1.5f, FrequencyPenalty: 0.5f);
        Assert.Equal(folder.Alone("Hello world", settings).Text, penalized.Content);
        Assert.NotEqual(folder.Alone("Hello world", settings with { PresencePenalty = 0f, FrequencyPenalty = 0f, RepetitionPenalty = 1f }).Text, penalized.Content);

        // top_k -1 is vLLM's "all tokens", as 0 is.
        ChatClient.Answer all = await ChatClient.PostAsync(client, new { messages = ChatClient.Conversation("Hello world"), max_tokens = 16, temperature = 1.2, top_k = -1, seed = 5 });
        Assert.Equal(folder.Alone("Hello world", new ChatSettings(MaxTokens: 16, Temperature: 1.2f, Seed: 5)).Text, all.Content);
    }

    [Fact]
    public async Task A_request_that_leaves_sampling_out_samples_as_the_folders_generation_config_asks()
    {
        using TempFolder withConfig = TinyChat.Folder(TinyChat.Model(seed: 3));
        // No do_sample: vLLM does not read it, and neither does the server; a request samples unless its temperature is 0.
        File.WriteAllText(withConfig.File(GenerationConfig.FileName), """{ "temperature": 0.6, "top_p": 0.9, "repetition_penalty": 1.2 }""");
        using var server = new ChatServerFactory(withConfig.Path);
        using HttpClient client = server.CreateClient();
        var session = new ChatSession(TinyChatModel.ForInference(withConfig.File("model.safetensors")), folder.Tokenizer);

        // vLLM's reading of the file: its own keys over OpenAI's defaults, so top-k stays off where it is silent (transformers
        // would take 50, and no sampling at all without do_sample).
        ChatClient.Answer defaults = await ChatClient.PostAsync(client, new { messages = ChatClient.Conversation("Hello world"), max_tokens = 16, seed = 2 });
        var expected = new ChatSettings(MaxTokens: 16, Temperature: 0.6f, TopP: 0.9f, Seed: 2, RepetitionPenalty: 1.2f);
        Assert.Equal(session.Respond("Hello world", expected, TextWriter.Null).Text, defaults.Content);

        // A field given replaces its own default only.
        ChatClient.Answer greedy = await ChatClient.PostAsync(client, new { messages = ChatClient.Conversation("Hello world"), max_tokens = 16, temperature = 0 });
        Assert.Equal(session.Respond("Hello world", new ChatSettings(MaxTokens: 16, RepetitionPenalty: 1.2f), TextWriter.Null).Text, greedy.Content);

        // Without the file a request samples at OpenAI's temperature 1 with no filter.
        using var plainServer = new ChatServerFactory(folder.Path);
        using HttpClient plainClient = plainServer.CreateClient();
        ChatClient.Answer openAi = await ChatClient.PostAsync(plainClient, new { messages = ChatClient.Conversation("Hello world"), max_tokens = 16, seed = 2 });
        Assert.Equal(folder.Alone("Hello world", new ChatSettings(MaxTokens: 16, Temperature: 1f, Seed: 2)).Text, openAi.Content);
    }

    [Fact]
    public async Task Streamed_chunks_add_up_to_the_same_reply_and_end_with_DONE()
    {
        using var server = new ChatServerFactory(folder.Path);
        using HttpClient client = server.CreateClient();
        ChatReply alone = folder.Alone("Hello", new ChatSettings(MaxTokens: 30, Temperature: 0f));

        ChatClient.Stream stream = await ChatClient.StreamAsync(client, new
        {
            messages = ChatClient.Conversation("Hello"), max_tokens = 30, temperature = 0, stream = true, stream_options = new { include_usage = true },
        });

        Assert.Equal(HttpStatusCode.OK, stream.Status);
        Assert.Equal("text/event-stream", stream.ContentType);
        Assert.True(stream.Done);
        Assert.Equal(alone.Text, stream.Content);
        Assert.All(stream.Events, e =>
        {
            Assert.Equal("chat.completion.chunk", e.GetProperty("object").GetString());
            Assert.Equal(stream.Events[0].GetProperty("id").GetString(), e.GetProperty("id").GetString());
            Assert.Equal(Model, e.GetProperty("model").GetString());
        });
        JsonElement[] chunks = stream.Chunks.ToArray();
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        Assert.All(chunks[..^1], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("choices")[0].GetProperty("finish_reason").ValueKind));
        Assert.Equal("length", stream.FinishReason);
        Assert.Empty(chunks[^1].GetProperty("choices")[0].GetProperty("delta").EnumerateObject());
        Assert.True(chunks.Length > 3, "the reply comes in pieces"); // role, text pieces, finish
        JsonElement usage = stream.Events[^1].GetProperty("usage");
        Assert.Equal(alone.PromptTokens.Length, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(30, usage.GetProperty("completion_tokens").GetInt32());

        // Without stream_options there is no usage chunk.
        ChatClient.Stream plain = await ChatClient.StreamAsync(client, new { messages = ChatClient.Conversation("Hello"), max_tokens = 30, temperature = 0, stream = true });
        Assert.Equal(alone.Text, plain.Content);
        Assert.All(plain.Events, e => Assert.False(e.TryGetProperty("usage", out _)));
    }

    [Fact]
    public async Task A_reply_ends_with_stop_at_the_end_of_turn_and_with_length_when_the_context_is_full()
    {
        // The context: a prompt of SeqLen − 4 tokens leaves room for 5 reply tokens (the last is drawn, not cached).
        string message = folder.MessageOfPromptLength(TinyServedChat.SeqLen - 4);
        using (var server = new ChatServerFactory(folder.Path))
        {
            using HttpClient client = server.CreateClient();
            ChatClient.Answer full = await ChatClient.PostAsync(client, new { messages = ChatClient.Conversation(message), max_tokens = 50, temperature = 0 });
            ChatReply alone = folder.Alone(message, new ChatSettings(MaxTokens: 50, Temperature: 0f));
            Assert.Equal(StopReason.ContextFull, alone.Stop);
            Assert.Equal(HttpStatusCode.OK, full.Status);
            Assert.Equal("length", full.FinishReason);
            Assert.Equal(5, full.Usage("completion_tokens"));
            Assert.Equal(alone.Text, full.Content);

            ChatClient.Stream streamed = await ChatClient.StreamAsync(client, new { messages = ChatClient.Conversation(message), max_tokens = 50, temperature = 0, stream = true });
            Assert.Equal("length", streamed.FinishReason);
            Assert.Equal(alone.Text, streamed.Content);
        }

        // The end of turn: a model whose head always picks <|im_end|> answers nothing, and says it stopped.
        using TempFolder ending = TinyChat.Folder(TinyChat.Model(seed: 3, preferred: TinyByteLevelTokenizer.ImEnd));
        using (var server = new ChatServerFactory(ending.Path))
        {
            using HttpClient client = server.CreateClient();
            ChatClient.Answer stopped = await ChatClient.PostAsync(client, new { messages = ChatClient.Conversation("Hello"), max_tokens = 50 });
            Assert.Equal("stop", stopped.FinishReason);
            Assert.Equal("", stopped.Content);
            Assert.Equal(0, stopped.Usage("completion_tokens"));

            ChatClient.Stream streamed = await ChatClient.StreamAsync(client, new { messages = ChatClient.Conversation("Hello"), stream = true });
            Assert.Equal("stop", streamed.FinishReason);
            Assert.Equal("", streamed.Content);
            Assert.True(streamed.Done);
        }
    }

    public static TheoryData<string, string, string?> Refusals => new()
    {
        { "{\"messages\": [", "The body is not valid JSON: ", null },
        { "[1, 2]", "The body must be a JSON object with 'messages'.", null },
        { "{}", "'messages' is required: an array of {\"role\", \"content\"} objects.", "messages" },
        { "{\"messages\": \"Hello\"}", "'messages' is a string; it must be an array of {\"role\", \"content\"} objects.", "messages" },
        { "{\"messages\": []}", "'messages' is empty; a conversation needs at least one message.", "messages" },
        { "{\"messages\": [\"Hello\"]}", "messages[0] is a string; a message is an object with a role and a content.", "messages" },
        { "{\"messages\": [{\"content\": \"Hello\"}]}", "messages[0] has no role (a string).", "messages" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"tool\", \"content\": \"42\"}]}", "messages[1].role is 'tool'; this server takes system, user and assistant (developer as system).", "messages" },
        { "{\"messages\": [{\"role\": \"user\"}]}", "messages[0] has no content.", "messages" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}", "messages[0].content[0] is not a text part ({\"type\": \"text\", \"text\": \"…\"}); this server takes text only.", "messages" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 0}", "'max_tokens' is 0; a reply has at least 1 token.", "max_tokens" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_completion_tokens\": -3}", "'max_completion_tokens' is -3; a reply has at least 1 token.", "max_completion_tokens" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 2.5}", "'max_tokens' is 2.5; it must be a whole number of tokens.", "max_tokens" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"temperature\": 3}", "'temperature' is 3; it must be a number from 0 to 2.", "temperature" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"top_p\": \"high\"}", "'top_p' is \"high\"; it must be a number from 0 to 1.", "top_p" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"seed\": \"7\"}", "'seed' is \"7\"; it must be a whole number.", "seed" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"presence_penalty\": 2.5}", "'presence_penalty' is 2.5; it must be a number from -2 to 2.", "presence_penalty" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"frequency_penalty\": -3}", "'frequency_penalty' is -3; it must be a number from -2 to 2.", "frequency_penalty" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"repetition_penalty\": 0}", "'repetition_penalty' is 0; it must be a number from 0.01 to 2.", "repetition_penalty" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"min_p\": 1.5}", "'min_p' is 1.5; it must be a number from 0 to 1.", "min_p" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"top_k\": -2}", "'top_k' is -2; it must be a whole number of tokens, 0 or -1 for all.", "top_k" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"top_k\": 2.5}", "'top_k' is 2.5; it must be a whole number of tokens, 0 or -1 for all.", "top_k" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"n\": 0}", "'n' is 0; it must be a whole number of choices from 1 to 8 (the conversations this server generates at once).", "n" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"n\": 9}", "'n' is 9; it must be a whole number of choices from 1 to 8 (the conversations this server generates at once).", "n" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"n\": 2.5}", "'n' is 2.5; it must be a whole number of choices from 1 to 8 (the conversations this server generates at once).", "n" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"n\": \"2\"}", "'n' is \"2\"; it must be a whole number of choices from 1 to 8 (the conversations this server generates at once).", "n" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"stop\": 42}", "'stop' is a number; it must be a string or an array of up to 4 strings.", "stop" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"stop\": {\"text\": \"x\"}}", "'stop' is an object; it must be a string or an array of up to 4 strings.", "stop" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"stop\": \"\"}", "'stop' is an empty string; a stop string has at least one character.", "stop" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}", "'stop' has 5 strings; at most 4 are allowed.", "stop" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"stop\": [\"a\", \"\"]}", "stop[1] is an empty string; a stop string has at least one character.", "stop" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"stop\": [\"a\", 1]}", "stop[1] is a number; a stop string is a string.", "stop" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"stream\": \"yes\"}", "'stream' is \"yes\"; it must be true or false.", "stream" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task A_request_the_server_cannot_take_is_refused_with_400_in_OpenAIs_error_shape(string body, string message, string? param)
    {
        using var server = new ChatServerFactory(folder.Path);
        using HttpClient client = server.CreateClient();
        ChatClient.Answer answer = await ChatClient.PostRawAsync(client, body);
        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.StartsWith(message, answer.ErrorMessage);
        Assert.Equal("invalid_request_error", answer.Error.GetProperty("type").GetString());
        Assert.Equal(param, answer.Error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task A_prompt_longer_than_SeqLen_minus_one_is_refused_with_its_count()
    {
        using var server = new ChatServerFactory(folder.Path);
        using HttpClient client = server.CreateClient();
        int seqLen = TinyServedChat.SeqLen;

        ChatClient.Answer tooLong = await ChatClient.PostAsync(client, new { messages = ChatClient.Conversation(folder.MessageOfPromptLength(seqLen)) });
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.Status);
        Assert.Equal($"The messages come to {seqLen} tokens in the chat template; {Model} holds {seqLen} positions, prompt and reply together, so a prompt may have at most {seqLen - 1} tokens.", tooLong.ErrorMessage);
        Assert.Equal("context_length_exceeded", tooLong.Error.GetProperty("code").GetString());

        // SeqLen − 1 fits, and leaves room for two tokens.
        ChatClient.Answer fits = await ChatClient.PostAsync(client, new { messages = ChatClient.Conversation(folder.MessageOfPromptLength(seqLen - 1)), temperature = 0 });
        Assert.Equal(HttpStatusCode.OK, fits.Status);
        Assert.Equal(seqLen - 1, fits.Usage("prompt_tokens"));
        Assert.Equal(2, fits.Usage("completion_tokens"));
        Assert.Equal("length", fits.FinishReason);
    }

    [Fact]
    public async Task Health_and_metrics_report_the_model_the_requests_the_tokens_and_the_steps()
    {
        using var server = new ChatServerFactory(folder.Path, new Dictionary<string, string> { ["model-name"] = "tiny" });
        using HttpClient client = server.CreateClient();

        JsonElement health = ChatClient.Parse(await client.GetStringAsync("/health"));
        Assert.Equal("ok", health.GetProperty("status").GetString());
        Assert.Equal("tiny", health.GetProperty("model").GetString());
        Assert.Equal(0, health.GetProperty("active").GetInt32());
        Assert.Equal(0, health.GetProperty("queued").GetInt32());

        // OpenAI's model listing: the served name, and the positions a conversation may fill; one model by its id.
        JsonElement models = ChatClient.Parse(await client.GetStringAsync("/v1/models"));
        JsonElement model = Assert.Single(models.GetProperty("data").EnumerateArray());
        Assert.Equal(("tiny", "model", TinyServedChat.SeqLen), (model.GetProperty("id").GetString(), model.GetProperty("object").GetString(), model.GetProperty("max_model_len").GetInt32()));
        Assert.Equal("tiny", ChatClient.Parse(await client.GetStringAsync("/v1/models/tiny")).GetProperty("id").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/v1/models/gpt-4o")).StatusCode);

        ChatClient.Answer first = await ChatClient.PostAsync(client, new { messages = ChatClient.Conversation("Hello"), max_tokens = 7, temperature = 0 });
        ChatClient.Answer second = await ChatClient.PostAsync(client, new { messages = ChatClient.Conversation("Hello world"), max_tokens = 3, temperature = 0 });
        await ChatClient.PostAsync(client, new { messages = Array.Empty<object>() });
        Assert.Equal("tiny", first.Body.GetProperty("model").GetString());
        int prompts = first.Usage("prompt_tokens") + second.Usage("prompt_tokens");
        // The second prompt begins as the first does (the template's system message): that much of it comes from the
        // free slot that ran the first.
        int cached = folder.Alone("Hello", new ChatSettings(MaxTokens: 1)).PromptTokens.AsSpan().CommonPrefixLength(folder.Alone("Hello world", new ChatSettings(MaxTokens: 1)).PromptTokens);
        Assert.True(cached > 10, $"{cached} tokens in common");
        int CachedOf(ChatClient.Answer answer) => answer.Body.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32();
        Assert.Equal((0, cached), (CachedOf(first), CachedOf(second)));

        // One conversation at a time: each reply is a step of its prompt (what the cache did not hold), then a step per further token.
        string metrics = await client.GetStringAsync("/metrics");
        string[] expected =
        [
            "# TYPE chat_requests_total counter", "chat_requests_total{code=\"200\"} 2", "chat_requests_total{code=\"400\"} 1",
            $"chat_prompt_tokens_total {prompts}", "chat_completion_tokens_total 10",
            "# TYPE chat_step_sequences histogram", "chat_step_sequences_count 10", "chat_step_sequences_sum 10",
            $"chat_step_tokens_sum {prompts - cached + 6 + 2}", "chat_step_seconds_bucket{le=\"+Inf\"} 10", $"chat_prompt_tokens_cached_total {cached}",
            "chat_active_sequences 0", "chat_queued_requests 0", "http_requests_received_total",
        ];
        Assert.All(expected, line => Assert.Contains(line, metrics));

        // --reuse-prefixes false: every prompt runs whole.
        using var unshared = new ChatServerFactory(folder.Path, new Dictionary<string, string> { ["reuse-prefixes"] = "false" });
        using HttpClient unsharedClient = unshared.CreateClient();
        await ChatClient.PostAsync(unsharedClient, new { messages = ChatClient.Conversation("Hello"), max_tokens = 7, temperature = 0 });
        ChatClient.Answer again = await ChatClient.PostAsync(unsharedClient, new { messages = ChatClient.Conversation("Hello world"), max_tokens = 3, temperature = 0 });
        Assert.Equal(second.Content, again.Content);
        Assert.Equal(0, CachedOf(again));
        string unsharedMetrics = await unsharedClient.GetStringAsync("/metrics");
        Assert.Contains("chat_prompt_tokens_cached_total 0", unsharedMetrics);
        Assert.Contains($"chat_step_tokens_sum {prompts + 6 + 2}", unsharedMetrics);
    }
}
