using System;
using System.IO;
using System.Linq;
using System.Text;
using ChatSample;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;
using TransformerGen.Tokenizers.Chat;
using Xunit;

namespace TransformerGen.Samples.Tests;

/// <summary>The Chat sample's loop (<see cref="ChatSession"/>) driven with <see cref="TinyChatModel"/> and a tiny ChatML tokenizer.</summary>
public sealed class ChatSessionTests : IDisposable
{
    private const string ExpectedPrompt =
        "<|im_start|>system\n" + TinyByteLevelTokenizer.DefaultSystemPrompt + "<|im_end|>\n<|im_start|>user\nHello world<|im_end|>\n<|im_start|>assistant\n";

    private readonly TempFolder _folder = TinyChat.Folder();
    private readonly PretrainedTokenizer _tokenizer;

    public ChatSessionTests() => _tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Streams_max_tokens_after_the_ChatML_prompt_through_the_cache()
    {
        TinyChatModel model = TinyChat.Model(seed: 3);
        var session = new ChatSession(model, _tokenizer);
        Assert.Equal(ChatTemplateStyle.ChatMl, session.Template?.Style);
        Assert.Equal(TinyByteLevelTokenizer.ImEnd, session.EndOfTurnId);
        Assert.Equal(TinyChat.StopIds, session.StopTokens.Order());

        var streamed = new StringWriter();
        ChatReply reply = session.Respond("Hello world", new ChatSettings(MaxTokens: 12), streamed);

        Assert.Equal(ExpectedPrompt, reply.Prompt);
        Assert.Equal(_tokenizer.Encode(ExpectedPrompt, addSpecialTokens: false), reply.PromptTokens);
        Assert.Equal(TinyByteLevelTokenizer.ImStart, reply.PromptTokens[0]);
        Assert.Equal(3, reply.PromptTokens.Count(id => id == TinyByteLevelTokenizer.ImStart));
        Assert.Equal(2, reply.PromptTokens.Count(id => id == TinyByteLevelTokenizer.ImEnd));

        Assert.Equal(12, reply.Tokens.Length);
        Assert.Equal(StopReason.MaxTokens, reply.Stop);
        Assert.Null(reply.StopToken);
        Assert.Equal(_tokenizer.Decode(reply.Tokens), reply.Text);
        Assert.Equal(reply.Text, streamed.ToString());
        Assert.Equal(reply.PromptTokens.Length + 11, model.CacheLength); // the last token is drawn, not appended
        Assert.True(reply.PromptTime > TimeSpan.Zero && reply.DecodeTime > TimeSpan.Zero);

        // Greedy decoding through the cache draws what the runtime's own Generate draws from the same prompt.
        var expected = new int[12];
        model.Generate(reply.PromptTokens, expected, new Sampler(seed: 1) { Temperature = 0f });
        Assert.Equal(expected, reply.Tokens);
    }

    [Fact]
    public void The_penalties_read_the_prompt_and_the_reply()
    {
        var session = new ChatSession(TinyChat.Model(seed: 3), _tokenizer);
        int[] plain = session.Respond("Hello world", new ChatSettings(MaxTokens: 12), TextWriter.Null).Tokens;
        Assert.True(plain.Distinct().Count() < plain.Length, "the greedy reply was to repeat a token, for the penalty to have something to stop");

        // A presence penalty far above any logit: a greedy reply never takes a token twice.
        int[] distinct = session.Respond("Hello world", new ChatSettings(MaxTokens: 12, PresencePenalty: 1e4f), TextWriter.Null).Tokens;
        Assert.Equal(12, distinct.Length);
        Assert.Equal(distinct.Length, distinct.Distinct().Count());

        // A repetition penalty that large takes nearly all of a positive logit from every token seen so far, the prompt's
        // included: this reply holds no token of the prompt and none twice, where the plain one repeats a prompt token.
        ChatReply reply = session.Respond("Hello world", new ChatSettings(MaxTokens: 12, RepetitionPenalty: 1e4f), TextWriter.Null);
        Assert.Contains(plain[0], reply.PromptTokens);
        Assert.Equal(12, reply.Tokens.Length);
        Assert.Empty(reply.Tokens.Intersect(reply.PromptTokens));
        Assert.Equal(reply.Tokens.Length, reply.Tokens.Distinct().Count());
    }

    [Fact]
    public void Stops_at_the_end_of_sequence_token_when_the_model_prefers_it()
    {
        var session = new ChatSession(TinyChat.Model(seed: 3, preferred: TinyByteLevelTokenizer.EndOfText), _tokenizer);
        var streamed = new StringWriter();
        ChatReply reply = session.Respond("Hello world", new ChatSettings(MaxTokens: 12, Temperature: 1f, Seed: 9), streamed);
        Assert.Equal(StopReason.EndOfSequence, reply.Stop);
        Assert.Equal(TinyByteLevelTokenizer.EndOfText, reply.StopToken);
        Assert.Empty(reply.Tokens);
        Assert.Equal("", streamed.ToString());
    }

    [Fact]
    public void Stops_at_an_end_id_that_only_the_generation_config_names()
    {
        // Id 7 made the model's favourite: the plain session repeats it; given as an end of sequence (as Qwen2.5's
        // generation_config.json adds <|endoftext|> to its config's <|im_end|>), it ends the reply at once.
        TinyChatModel model = TinyChat.Model(seed: 3);
        ParameterTensor embedding = model.ParameterTensors.Single(t => t.Name == "model.embed_tokens.weight");
        model.Parameters.Slice(embedding.Offset, embedding.Length)[7 * TinyChatModel.DModel] = 30f;
        model.PackWeights();
        Assert.Equal([7, 7, 7], new ChatSession(model, _tokenizer).Respond("Hello world", new ChatSettings(MaxTokens: 3), TextWriter.Null).Tokens);

        var session = new ChatSession(model, _tokenizer, endOfSequence: [7]);
        Assert.Contains(7, session.StopTokens);
        ChatReply reply = session.Respond("Hello world", new ChatSettings(MaxTokens: 3), TextWriter.Null);
        Assert.Equal((StopReason.EndOfSequence, 7), (reply.Stop, reply.StopToken!.Value));
        Assert.Empty(reply.Tokens);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChatSession(model, _tokenizer, endOfSequence: [TinyChatModel.Vocab]));
    }

    [Fact]
    public void Stops_at_the_templates_end_of_turn_token()
    {
        var session = new ChatSession(TinyChat.Model(seed: 3, preferred: TinyByteLevelTokenizer.ImEnd), _tokenizer);
        ChatReply reply = session.Respond("Hello world", new ChatSettings(MaxTokens: 12), TextWriter.Null);
        Assert.Equal(StopReason.EndOfTurn, reply.Stop);
        Assert.Equal(TinyByteLevelTokenizer.ImEnd, reply.StopToken);
        Assert.Empty(reply.Tokens);
    }

    [Fact]
    public void Stops_when_prompt_and_reply_fill_the_cache()
    {
        TinyChatModel model = TinyChat.Model(seed: 4);
        ChatReply reply = new ChatSession(model, _tokenizer).Respond("Hello world", new ChatSettings(MaxTokens: 1000), TextWriter.Null);
        Assert.Equal(StopReason.ContextFull, reply.Stop);
        Assert.Equal(TinyChatModel.SeqLen - reply.PromptTokens.Length + 1, reply.Tokens.Length);
        Assert.Equal(TinyChatModel.SeqLen, model.CacheLength);
    }

    [Fact]
    public void A_conversation_goes_on_from_what_the_cache_holds()
    {
        TinyChatModel model = TinyChat.Model(seed: 3);
        var session = new ChatSession(model, _tokenizer);
        var settings = new ChatSettings(MaxTokens: 6, SystemPrompt: "Be brief");
        ChatReply first = session.Respond("Hello world", settings, TextWriter.Null);
        var streamed = new StringWriter();
        ChatReply second = session.Continue("And then?", settings with { SystemPrompt = "ignored after the first turn" }, streamed);

        // The prompt is the whole conversation written out again; the cache held its beginning, the first prompt and reply.
        (string, string)[] conversation = [("system", "Be brief"), ("user", "Hello world"), ("assistant", first.Text), ("user", "And then?")];
        Assert.Equal([.. conversation, ("assistant", second.Text)], session.History);
        Assert.Equal(session.Template!.Format(conversation, addGenerationPrompt: true), second.Prompt);
        Assert.Equal(_tokenizer.Encode(second.Prompt, addSpecialTokens: false), second.PromptTokens);
        Assert.Equal(0, first.CachedPromptTokens);
        Assert.Equal([.. first.PromptTokens, .. first.Tokens[..^1]], second.PromptTokens[..second.CachedPromptTokens]);
        Assert.True(second.NewPromptTokens < second.PromptTokens.Length / 2, $"{second.NewPromptTokens} of {second.PromptTokens.Length} prompt tokens were run again");
        Assert.Equal(second.Text, streamed.ToString());

        // The reply is the one the whole prompt gives run at once into an empty cache.
        TinyChatModel fresh = TinyChat.Model(seed: 3);
        var expected = new int[second.Tokens.Length];
        fresh.Generate(second.PromptTokens, expected, new Sampler(1) { Temperature = 0f });
        Assert.Equal(expected, second.Tokens);

        // Respond starts over: nothing of the conversation is kept.
        ChatReply again = session.Respond("Hello world", settings, TextWriter.Null);
        Assert.Equal(first.Tokens, again.Tokens);
        Assert.Equal(0, again.CachedPromptTokens);
        Assert.Equal(3, session.History.Count);
    }

    [Fact]
    public void A_message_refused_leaves_the_conversation_as_it_was()
    {
        var session = new ChatSession(TinyChat.Model(seed: 3), _tokenizer);
        var settings = new ChatSettings(MaxTokens: 6);
        ChatReply first = session.Respond("Hello world", settings, TextWriter.Null);
        (string Role, string Content)[] before = [.. session.History];

        // Too long even alone (no turn to leave out would make it fit), then settings the sampler refuses.
        Assert.Throws<ArgumentException>(() => session.Continue(string.Concat(Enumerable.Repeat("Hello world ", 40)), settings, TextWriter.Null));
        Assert.Throws<ArgumentOutOfRangeException>(() => session.Continue("And then?", settings with { TopP = 2f }, TextWriter.Null));
        Assert.Equal(before, session.History);

        // The next turn goes on from the first, its cache included.
        ChatReply second = session.Continue("And then?", settings, TextWriter.Null);
        Assert.Equal([.. first.PromptTokens, .. first.Tokens[..^1]], second.PromptTokens[..second.CachedPromptTokens]);
        Assert.Equal(("user", "Hello world"), session.History[^4]);
    }

    [Fact]
    public void A_conversation_that_outgrows_the_cache_leaves_out_its_oldest_turns()
    {
        var session = new ChatSession(TinyChat.Model(seed: 4), _tokenizer);
        var settings = new ChatSettings(MaxTokens: 8);
        ChatReply reply = session.Respond("Hello world", settings, TextWriter.Null);
        int turns = 1;
        while (reply.DroppedMessages == 0)
        {
            reply = session.Continue($"Tell me more {turns}", settings, TextWriter.Null);
            Assert.True(++turns < 20, "the conversation never outgrew SeqLen");
        }
        // The oldest user messages went with their replies; the newest turns stay, and the prompt leaves room for a reply
        // of MaxTokens, which this one used.
        Assert.True(reply.DroppedMessages >= 2 && reply.DroppedMessages % 2 == 0, $"{reply.DroppedMessages} messages left out");
        Assert.DoesNotContain(session.History, m => m.Content == "Hello world");
        Assert.Equal(("user", $"Tell me more {turns - 1}"), session.History[^2]);
        Assert.True(reply.PromptTokens.Length + 8 <= TinyChatModel.SeqLen);
        Assert.Equal(8, reply.Tokens.Length);
        Assert.True(reply.CachedPromptTokens > 0, "the template's opening is still shared with the cache");
    }

    [Fact]
    public void Refuses_a_prompt_longer_than_the_cache()
    {
        var session = new ChatSession(TinyChat.Model(seed: 4), _tokenizer);
        ArgumentException e = Assert.Throws<ArgumentException>(() => session.Respond(string.Concat(Enumerable.Repeat("Hello world ", 40)), new ChatSettings(), TextWriter.Null));
        Assert.Contains($"compiled for {TinyChatModel.SeqLen} positions", e.Message);
    }

    [Fact]
    public void Samples_the_same_reply_for_the_same_seed_and_another_for_another()
    {
        var session = new ChatSession(TinyChat.Model(seed: 5), _tokenizer);
        int[] Draw(ulong seed) => session.Respond("Hello world", new ChatSettings(MaxTokens: 16, Temperature: 1.5f, TopK: 50, Seed: seed), TextWriter.Null).Tokens;
        int[] first = Draw(7);
        Assert.Equal(16, first.Length);
        Assert.Equal(first, Draw(7));
        Assert.NotEqual(first, Draw(8));
    }

    [Fact]
    public void Without_a_chat_template_continues_the_plain_text()
    {
        using TempFolder plain = TinyChat.Folder(chatTemplate: false);
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(plain.Path);
        var session = new ChatSession(TinyChat.Model(seed: 3), tokenizer);
        Assert.Null(session.Template);
        Assert.Null(session.EndOfTurnId);
        Assert.Equal([TinyByteLevelTokenizer.EndOfText], session.StopTokens);

        var streamed = new StringWriter();
        ChatReply reply = session.Respond("Hello world", new ChatSettings(MaxTokens: 5), streamed);
        Assert.Equal("Hello world", reply.Prompt);
        Assert.Equal(tokenizer.Encode("Hello world"), reply.PromptTokens);
        Assert.Equal(2, reply.PromptTokens.Length); // "Hello" and " world" are single tokens of the tiny vocabulary
        Assert.Equal(5, reply.Tokens.Length);
        Assert.Equal(reply.Text, streamed.ToString());
    }

    [Fact]
    public void Streaming_holds_back_a_character_until_its_last_byte()
    {
        var decoder = new StreamingDecoder(_tokenizer);
        var pieces = new StringBuilder();
        foreach ((string text, string[] expected) in new[] { ("a", new[] { "a" }), ("é", ["", "é"]), ("🙂", ["", "", "", "🙂"]), ("€!", ["", "", "€", "!"]) })
        {
            string[] got = Encoding.UTF8.GetBytes(text).Select(b => decoder.Push(TinyByteLevelTokenizer.ByteId(b))).ToArray();
            Assert.Equal(expected, got);
            pieces.Append(string.Concat(got));
        }

        Assert.Equal("aé🙂€!", pieces.ToString());
        Assert.Equal("", decoder.Flush());

        // Bytes that never become a character come out at the end as U+FFFD.
        Assert.Equal("", decoder.Push(TinyByteLevelTokenizer.ByteId(0xE2)));
        Assert.Equal("\uFFFD", decoder.Flush());
    }
}
