using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Text.Json;
using System.Threading.Tasks;
using ChatSample;
using Xunit;

namespace TransformerGen.Samples.Tests.ChatServer;

/// <summary>
/// <c>n</c> choices: independent generations of one prompt, side by side in the batcher's slots, choice i sampled with
/// seed + i, so each is the single reply to that seed; whole and streamed, with stop strings, and the limit.
/// </summary>
public sealed class ChoicesTests(TinyChatServerFolder folder) : IClassFixture<TinyChatServerFolder>
{
    private const string Message = "Hello";

    [Fact]
    public async Task Three_choices_are_the_replies_to_seed_plus_their_index_generated_side_by_side()
    {
        const int MaxTokens = 20;
        const ulong Seed = 7;
        object Body(int? n, ulong seed) => new { messages = ChatClient.Conversation(Message), n, max_tokens = MaxTokens, temperature = 0.9, seed };

        // The batcher is held after its first step until all three generations are in.
        using var gate = new StepGate();
        using var server = new ChatServerFactory(folder.Path, gate: gate);
        using HttpClient client = server.CreateClient();
        Task<ChatClient.Answer> asking = ChatClient.PostAsync(client, Body(3, Seed));
        await ChatClient.Until(client, health => health.GetProperty("active").GetInt32() + health.GetProperty("queued").GetInt32() == 3);
        gate.Open();
        ChatClient.Answer answer = await asking;

        ChatReply[] alone = [.. Enumerable.Range(0, 3).Select(i => folder.Alone(Message, new ChatSettings(MaxTokens, Temperature: 0.9f, Seed: Seed + (ulong)i)))];
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal(alone.Select(r => r.Text), answer.Contents);
        Assert.Equal(3, answer.Contents.Distinct().Count());
        JsonElement[] choices = [.. answer.Body.GetProperty("choices").EnumerateArray()];
        Assert.Equal([0, 1, 2], choices.Select(c => c.GetProperty("index").GetInt32()));
        Assert.All(choices, c => Assert.Equal("length", c.GetProperty("finish_reason").GetString()));
        Assert.Equal(alone[0].PromptTokens.Length, answer.Usage("prompt_tokens")); // once, as OpenAI counts it
        Assert.Equal(3 * MaxTokens, answer.Usage("completion_tokens"));
        Assert.Equal(alone[0].PromptTokens.Length + 3 * MaxTokens, answer.Usage("total_tokens"));

        // Side by side: 3 × 20 tokens in 20 to 22 steps, not 60 (the first step may have run one prompt alone, and the three
        // prompts of about 60 tokens do not fit one step of 128), some of them with all three.
        string metrics = await client.GetStringAsync("/metrics");
        double steps = ChatClient.Metric(metrics, "chat_step_sequences_count");
        Assert.InRange(steps, MaxTokens, MaxTokens + 2);
        Assert.True(ChatClient.Metric(metrics, "chat_step_sequences_bucket{le=\"2\"}") < steps, "a step ran all three");
        Assert.Equal(3 * alone[0].PromptTokens.Length, ChatClient.Metric(metrics, "chat_prompt_tokens_total")); // each choice ran the prompt

        // Each choice is what a request of one choice with its seed gets.
        for (int i = 0; i < 3; i++)
        {
            ChatClient.Answer single = await ChatClient.PostAsync(client, Body(null, Seed + (ulong)i));
            Assert.Equal(single.Content, answer.Contents[i]);
        }
    }

    [Fact]
    public async Task Streamed_choices_carry_their_index_and_each_ends_at_its_own_stop()
    {
        // Seed 55's reply has the stop string (StopStringTests), the next seeds' do not.
        const string Stop = "re\u05AA6 t";
        const ulong Seed = 55;
        object Body(int? n, ulong seed, bool stream) => new
        {
            messages = ChatClient.Conversation(Message), n, max_tokens = 30, temperature = 1, seed, stop = Stop, stream,
            stream_options = stream ? new { include_usage = true } : null,
        };

        using var server = new ChatServerFactory(folder.Path);
        using HttpClient client = server.CreateClient();
        ChatClient.Stream stream = await ChatClient.StreamAsync(client, Body(3, Seed, stream: true));
        Assert.Equal(HttpStatusCode.OK, stream.Status);
        Assert.True(stream.Done);

        var completionTokens = 0;
        var finishes = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            string text = folder.Alone(Message, new ChatSettings(MaxTokens: 30, Temperature: 1f, Seed: Seed + (ulong)i)).Text;
            int at = text.IndexOf(Stop, StringComparison.Ordinal);
            ChatClient.Answer single = await ChatClient.PostAsync(client, Body(null, Seed + (ulong)i, stream: false));
            Assert.Equal(at >= 0 ? text[..at] : text, single.Content);
            completionTokens += single.Usage("completion_tokens");

            JsonElement[] chunks = stream.ChunksOf(i);
            Assert.Equal("assistant", chunks[0].GetProperty("delta").GetProperty("role").GetString());
            Assert.All(chunks[..^1], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("finish_reason").ValueKind));
            Assert.Empty(chunks[^1].GetProperty("delta").EnumerateObject());
            Assert.Equal(single.FinishReason, chunks[^1].GetProperty("finish_reason").GetString());
            Assert.Equal(single.Content, stream.ContentOf(i));
            finishes.Add(single.FinishReason);
        }
        Assert.Equal(["stop", "length", "length"], finishes);
        Assert.All(stream.ChoiceChunks, c => Assert.InRange(c.GetProperty("index").GetInt32(), 0, 2));
        JsonElement usage = stream.Events[^1].GetProperty("usage");
        Assert.Equal(completionTokens, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + completionTokens, usage.GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task A_request_may_ask_for_as_many_choices_as_conversations_run_at_once()
    {
        using var server = new ChatServerFactory(folder.Path, new Dictionary<string, string> { ["max-sequences"] = "2" });
        using HttpClient client = server.CreateClient();

        ChatClient.Answer three = await ChatClient.PostAsync(client, new { messages = ChatClient.Conversation(Message), n = 3 });
        Assert.Equal(HttpStatusCode.BadRequest, three.Status);
        Assert.Equal("'n' is 3; it must be a whole number of choices from 1 to 2 (the conversations this server generates at once).", three.ErrorMessage);
        Assert.Equal("n", three.Error.GetProperty("param").GetString());

        // Greedy choices are all the same reply.
        ChatClient.Answer two = await ChatClient.PostAsync(client, new { messages = ChatClient.Conversation(Message), n = 2, max_tokens = 9, temperature = 0 });
        string greedy = folder.Alone(Message, new ChatSettings(MaxTokens: 9, Temperature: 0f)).Text;
        Assert.Equal([greedy, greedy], two.Contents);
        Assert.Equal(18, two.Usage("completion_tokens"));
    }
}
