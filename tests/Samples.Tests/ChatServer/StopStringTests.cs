using System;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using ChatSample;
using Xunit;

namespace TransformerGen.Samples.Tests.ChatServer;

/// <summary>
/// <c>stop</c> strings, found in the decoded reply wherever they fall among its tokens: the reply is the text before the
/// first, whole and streamed; a stream never sends text that could still begin one; the generation ends at once, freeing
/// its slot at the next step. The expected replies come from the Chat sample's reply alone, cut where the string is.
/// </summary>
public sealed class StopStringTests(TinyChatServerFolder folder) : IClassFixture<TinyChatServerFolder>
{
    private const string Message = "Hello";
    private const int MaxTokens = 30;
    private const ulong Seed = 55;

    /// <summary>
    /// Seed 55's reply begins " ; are֪6 the…", in tokens " ", ";", " are", two byte tokens that make U+05AA, "6", " the": this
    /// stop string begins inside " are", goes over the character split between two tokens, and ends inside " the".
    /// </summary>
    private const string Spanning = "re\u05AA6 t";

    private static ChatSettings Sampled(ulong seed) => new(MaxTokens, Temperature: 1f, Seed: seed);

    private static object Body(object stop, bool stream = false, ulong seed = Seed, int maxTokens = MaxTokens) => new
    {
        messages = ChatClient.Conversation(Message), max_tokens = maxTokens, temperature = 1, seed, stop, stream,
        stream_options = stream ? new { include_usage = true } : null,
    };

    /// <summary>The reply alone, with the text of its first k tokens for every k.</summary>
    private (ChatReply Whole, string[] Prefixes) Alone(ulong seed = Seed)
    {
        ChatReply whole = folder.Alone(Message, Sampled(seed));
        string[] prefixes = [.. Enumerable.Range(0, whole.Tokens.Length + 1).Select(k => folder.Tokenizer.Decode(whole.Tokens.AsSpan(0, k)))];
        return (whole, prefixes);
    }

    /// <summary>Tokens generated until <paramref name="stop"/> is in the text.</summary>
    private static int TokensUntil(string[] prefixes, string stop) => Array.FindIndex(prefixes, p => p.Contains(stop, StringComparison.Ordinal));

    [Fact]
    public async Task A_stop_string_across_tokens_ends_the_reply_before_it_whole_and_streamed()
    {
        (ChatReply whole, string[] prefixes) = Alone();
        int at = whole.Text.IndexOf(Spanning, StringComparison.Ordinal);
        int tokens = TokensUntil(prefixes, Spanning);
        int begins = Array.FindIndex(prefixes, p => p.Length > at); // the token holding the stop string's first character

        // What the test is about: the string begins inside a token, spans tokens (one of them a character's first byte), and ends inside one.
        Assert.InRange(prefixes[begins - 1].Length, 1, at - 1);
        Assert.True(tokens > begins + 1);
        Assert.Contains(Enumerable.Range(begins, tokens - begins), k => prefixes[k].EndsWith('\uFFFD'));
        Assert.True(prefixes[tokens].Length > at + Spanning.Length, "the last token goes on after the stop string");
        string expected = whole.Text[..at];
        Assert.Equal(" ; a", expected);

        using var server = new ChatServerFactory(folder.Path);
        using HttpClient client = server.CreateClient();
        ChatClient.Answer answer = await ChatClient.PostAsync(client, Body(Spanning));
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal(expected, answer.Content);
        Assert.Equal("stop", answer.FinishReason);
        Assert.Equal(whole.PromptTokens.Length, answer.Usage("prompt_tokens"));
        Assert.Equal(tokens, answer.Usage("completion_tokens"));

        ChatClient.Stream stream = await ChatClient.StreamAsync(client, Body(new[] { Spanning }, stream: true));
        Assert.True(stream.Done);
        Assert.Equal(expected, stream.Content); // nothing of the stop string went out, not even its held-back "re"
        Assert.Equal("stop", stream.FinishReason);
        Assert.Equal(tokens, stream.Events[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        // Of several, the reply ends before the one that begins first, although the same token completes both.
        Assert.True(whole.Text.IndexOf("the", StringComparison.Ordinal) > at);
        Assert.Equal(tokens, TokensUntil(prefixes, "the"));
        ChatClient.Answer several = await ChatClient.PostAsync(client, Body(new[] { "the", Spanning, "never" }));
        Assert.Equal(expected, several.Content);
        Assert.Equal("stop", several.FinishReason);
        Assert.Equal(tokens, several.Usage("completion_tokens"));
    }

    [Fact]
    public async Task A_stream_holds_back_text_that_may_begin_a_stop_string_and_sends_it_once_it_cannot()
    {
        // "re֪6 " is in the reply, "re֪6 X" is not: the stream holds "re" back from " are" on, and sends "re֪6 the" when " the" comes.
        const string Never = "re\u05AA6 X";
        (ChatReply whole, string[] prefixes) = Alone();
        Assert.Contains("re\u05AA6 t", whole.Text);
        Assert.DoesNotContain(Never, whole.Text);

        using var server = new ChatServerFactory(folder.Path);
        using HttpClient client = server.CreateClient();
        ChatClient.Answer answer = await ChatClient.PostAsync(client, Body(new[] { Never, "never" }));
        Assert.Equal(whole.Text, answer.Content);
        Assert.Equal("length", answer.FinishReason);
        Assert.Equal(MaxTokens, answer.Usage("completion_tokens"));

        ChatClient.Stream stream = await ChatClient.StreamAsync(client, Body(Never, stream: true));
        Assert.Equal(whole.Text, stream.Content);
        Assert.Equal("length", stream.FinishReason);
        string[] deltas = Deltas(stream);
        Assert.Contains(" a", deltas);
        Assert.Contains("re\u05AA6 the", deltas);

        // A reply that ends (at max_tokens) on the beginning of a stop string: that is held to the end, then sent.
        Assert.EndsWith(" the", prefixes[7]);
        ChatClient.Stream ending = await ChatClient.StreamAsync(client, Body("the end", stream: true, maxTokens: 7));
        Assert.Equal(prefixes[7], ending.Content);
        Assert.Equal("length", ending.FinishReason);
        Assert.Equal("the", Deltas(ending)[^1]);
    }

    /// <summary>The pieces of text a stream sent, in order.</summary>
    private static string[] Deltas(ChatClient.Stream stream) =>
        [.. stream.ChoiceChunks.Select(c => c.GetProperty("delta")).Where(d => d.TryGetProperty("content", out _)).Select(d => d.GetProperty("content").GetString()!)];

    [Fact]
    public async Task A_generation_that_meets_a_stop_string_frees_its_slot_at_the_next_step()
    {
        (ChatReply whole, string[] prefixes) = Alone();
        int tokens = TokensUntil(prefixes, Spanning);
        string expected = whole.Text[..whole.Text.IndexOf(Spanning, StringComparison.Ordinal)];

        foreach (bool stream in new[] { false, true })
        {
            // The prompt's step samples the first token, each later step one more: the batcher is held after the step
            // that samples the token completing the stop string, and may go on only once the answer is out.
            using var gate = new StepGate();
            using var server = new ChatServerFactory(folder.Path, gate: gate);
            using HttpClient client = server.CreateClient();
            gate.Permit(tokens - 1);
            string content = stream
                ? (await ChatClient.StreamAsync(client, Body(Spanning, stream: true))).Content
                : (await ChatClient.PostAsync(client, Body(Spanning))).Content;
            Assert.Equal(expected, content);
            Assert.True(SpinWait.SpinUntil(() => gate.Steps == tokens, TimeSpan.FromSeconds(10)));
            gate.Open();
            await ChatClient.Until(client, health => health.GetProperty("active").GetInt32() == 0);

            // No step ran after the stop (without it, the reply would have gone on to its 30 tokens).
            string metrics = await client.GetStringAsync("/metrics");
            Assert.Equal(tokens, ChatClient.Metric(metrics, "chat_step_sequences_count"));
            Assert.Equal(whole.PromptTokens.Length + tokens - 1, ChatClient.Metric(metrics, "chat_step_tokens_sum"));
            Assert.Equal(tokens, ChatClient.Metric(metrics, "chat_completion_tokens_total"));
            Assert.Equal(tokens, gate.Steps);
        }
    }
}
