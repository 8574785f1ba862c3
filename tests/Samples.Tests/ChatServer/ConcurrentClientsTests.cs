using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using ChatSample;
using Xunit;

namespace TransformerGen.Samples.Tests.ChatServer;

/// <summary>
/// Conversations sharing the batcher's steps: eight clients at once, each reply equal to its conversation alone; and a
/// client that goes away in the middle of its stream, which frees its slot at the next step and changes nothing for the
/// others.
/// </summary>
public sealed class ConcurrentClientsTests(TinyChatServerFolder folder) : IClassFixture<TinyChatServerFolder>
{
    private static readonly string[] Messages =
    [
        "Hello", "Hello world", "You are a helpful assistant", "the", "Is the world a helpful place? Hello, hello, hello.",
        "x", "You are", "assistant is helpful, the world is a world",
    ];

    /// <summary>One client's request: its conversation, settings and way of answering.</summary>
    private sealed record Turn(string Message, int MaxTokens, float Temperature, ulong Seed, bool Stream)
    {
        public ChatSettings Settings => new(MaxTokens, Temperature, TopK: 0, TopP: 1f, Seed);

        public object Body => new { messages = ChatClient.Conversation(Message), max_tokens = MaxTokens, temperature = Temperature, seed = Seed, stream = Stream };
    }

    [Fact]
    public async Task Eight_clients_sending_requests_of_mixed_lengths_at_once_get_their_replies_alone()
    {
        // Prompts of 60 to 83 tokens (the template's default system message is most of them) over steps of 48 tokens: each
        // goes in over two steps or more, beside the others' tokens.
        // The batcher waits after its first step until every client's first request is in, so that those share steps.
        using var gate = new StepGate();
        using var server = new ChatServerFactory(folder.Path, new Dictionary<string, string> { ["max-step-tokens"] = "48" }, gate);
        using HttpClient client = server.CreateClient();
        Turn[][] clients = Enumerable.Range(0, 8).Select(c => Enumerable.Range(0, 3).Select(r =>
        {
            int i = c * 3 + r;
            return new Turn(Messages[(c + r) % Messages.Length], MaxTokens: 1 + i * 7 % 40, Temperature: i % 3 == 0 ? 0.9f : 0f, Seed: (ulong)i, Stream: i % 2 == 1);
        }).ToArray()).ToArray();

        Task<string[][]> sending = Task.WhenAll(clients.Select(async turns =>
        {
            var texts = new List<string>();
            foreach (Turn turn in turns)
            {
                if (turn.Stream)
                {
                    ChatClient.Stream stream = await ChatClient.StreamAsync(client, turn.Body);
                    Assert.True(stream.Done);
                    texts.Add(stream.Content);
                }
                else
                {
                    texts.Add((await ChatClient.PostAsync(client, turn.Body)).Content);
                }
            }
            return texts.ToArray();
        }));
        await ChatClient.Until(client, health => health.GetProperty("active").GetInt32() + health.GetProperty("queued").GetInt32() == clients.Length);
        gate.Open();
        string[][] replies = await sending;

        for (int c = 0; c < clients.Length; c++)
            for (int r = 0; r < clients[c].Length; r++)
                Assert.Equal(folder.Alone(clients[c][r].Message, clients[c][r].Settings).Text, replies[c][r]);

        string metrics = await client.GetStringAsync("/metrics");
        Assert.Contains("chat_requests_total{code=\"200\"} 24", metrics);
        Assert.Contains("chat_step_sequences_bucket{le=\"8\"}", metrics);
        double steps = ChatClient.Metric(metrics, "chat_step_sequences_count"), sequences = ChatClient.Metric(metrics, "chat_step_sequences_sum");
        Assert.True(sequences > 2 * steps, $"{sequences} sequences in {steps} steps: the conversations shared steps");
    }

    [Fact]
    public async Task A_client_that_goes_away_mid_stream_frees_its_slot_and_leaves_the_others_their_replies()
    {
        using var gate = new StepGate();
        using var server = new ChatServerFactory(folder.Path, gate: gate);
        using HttpClient client = server.CreateClient();
        var leaving = new Turn("Hello world", MaxTokens: 100, Temperature: 0f, Seed: 1, Stream: true);
        Turn[] staying = Messages.Skip(1).Select((m, i) => new Turn(m, MaxTokens: 5 + 3 * i, Temperature: i % 2 == 0 ? 0f : 0.7f, Seed: (ulong)i, Stream: i % 3 == 0)).ToArray();

        // The leaving client's reply alone tells at which token its first piece of text is out.
        ChatReply leavingAlone = folder.Alone(leaving.Message, leaving.Settings);
        var decoder = new StreamingDecoder(folder.Tokenizer);
        int firstText = 1;
        while (decoder.Push(leavingAlone.Tokens[firstText - 1]).Length == 0) firstText++;

        // Its stream: the role chunk, then, after exactly that many steps, the first piece of text. The batcher waits.
        using var leave = new CancellationTokenSource();
        using HttpResponseMessage response = await ChatClient.SendAsync(client, leaving.Body, leave.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        JsonElement role = ChatClient.Parse((await ChatClient.ReadEventAsync(reader, default))!);
        Assert.Equal("assistant", role.GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        gate.Permit(firstText - 1);
        JsonElement first = ChatClient.Parse((await ChatClient.ReadEventAsync(reader, default))!);
        Assert.Equal(leavingAlone.Text[..first.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString()!.Length],
                     first.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.True(SpinWait.SpinUntil(() => gate.Steps == firstText, TimeSpan.FromSeconds(10)));

        // The others arrive while the batcher waits, and queue for slots.
        Task<string>[] others = staying.Select(async turn => turn.Stream
            ? (await ChatClient.StreamAsync(client, turn.Body)).Content
            : (await ChatClient.PostAsync(client, turn.Body)).Content).ToArray();
        await ChatClient.Until(client, health => health.GetProperty("queued").GetInt32() == staying.Length);

        // The client goes away; once the server has seen it, the batcher may go on.
        leave.Cancel();
        reader.Dispose();
        await ChatClient.Until(client, _ => true, metrics => metrics.Contains("chat_requests_total{code=\"499\"} 1", StringComparison.Ordinal));
        gate.Open();

        string[] replies = await Task.WhenAll(others);
        for (int i = 0; i < staying.Length; i++)
            Assert.Equal(folder.Alone(staying[i].Message, staying[i].Settings).Text, replies[i]);

        // The leaving reply stopped where its client left: the steps ran its prompt and firstText − 1 tokens, nothing more.
        int[] prompts = staying.Select(t => folder.Alone(t.Message, t.Settings).PromptTokens.Length).ToArray();
        int stepTokens = leavingAlone.PromptTokens.Length + firstText - 1 + prompts.Sum() + staying.Sum(t => t.MaxTokens - 1);
        string metrics = await client.GetStringAsync("/metrics");
        Assert.Contains($"chat_step_tokens_sum {stepTokens}", metrics);
        Assert.Contains($"chat_requests_total{{code=\"200\"}} {staying.Length}", metrics);
        Assert.Contains($"chat_completion_tokens_total {firstText + staying.Sum(t => t.MaxTokens)}", metrics);
        JsonElement health = ChatClient.Parse(await client.GetStringAsync("/health"));
        Assert.Equal(0, health.GetProperty("active").GetInt32());
        Assert.Equal(0, health.GetProperty("queued").GetInt32());
    }
}
