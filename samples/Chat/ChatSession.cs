using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Runtime.InteropServices;
using TransformerGen;
using TransformerGen.Tokenizers;
using TransformerGen.Tokenizers.Chat;

namespace ChatSample;

/// <summary>Why a reply ended.</summary>
public enum StopReason
{
    /// <summary>The model chose an end-of-sequence token (the tokenizer's, or one of its config.json's).</summary>
    EndOfSequence,

    /// <summary>The model chose the chat template's end-of-turn token (ChatML's <c>&lt;|im_end|&gt;</c>, Llama 3's <c>&lt;|eot_id|&gt;</c>).</summary>
    EndOfTurn,

    /// <summary>The reply reached <see cref="ChatSettings.MaxTokens"/>.</summary>
    MaxTokens,

    /// <summary>The key/value cache is full: prompt and reply fill the model's <c>SeqLen</c>.</summary>
    ContextFull,
}

/// <summary>How a reply is drawn.</summary>
/// <param name="MaxTokens">The most tokens to generate.</param>
/// <param name="Temperature">Softmax temperature; 0 is greedy.</param>
/// <param name="TopK">Keep only the K most likely tokens; 0 keeps all.</param>
/// <param name="TopP">Keep the most likely tokens up to this probability mass; 1 keeps all.</param>
/// <param name="Seed">The sampler's seed.</param>
/// <param name="SystemPrompt">A system message before the user's, where the template has a place for it; null for none (ChatML templates may put a default one).</param>
/// <param name="MinP">Keep only tokens at least this fraction as likely as the most likely one; 0 keeps all.</param>
/// <param name="RepetitionPenalty">transformers' repetition penalty over the prompt's and the reply's tokens; 1 is none.</param>
/// <param name="PresencePenalty">OpenAI's presence penalty over the reply's tokens; 0 is none.</param>
/// <param name="FrequencyPenalty">OpenAI's frequency penalty over the reply's tokens; 0 is none.</param>
public sealed record ChatSettings(int MaxTokens = 256, float Temperature = 0f, int TopK = 0, float TopP = 1f, ulong Seed = 1, string? SystemPrompt = null,
    float MinP = 0f, float RepetitionPenalty = 1f, float PresencePenalty = 0f, float FrequencyPenalty = 0f)
{
    /// <summary>Settings that sample as <paramref name="config"/> asks (a folder's generation_config.json); the others at their defaults.</summary>
    public static ChatSettings SamplingOf(GenerationConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var sampler = new Sampler(0);
        config.ApplyTo(sampler);
        return new ChatSettings(Temperature: sampler.Temperature, TopK: sampler.TopK, TopP: sampler.TopP, MinP: sampler.MinP, RepetitionPenalty: sampler.RepetitionPenalty);
    }

    /// <summary>A sampler that draws with these settings and <see cref="Seed"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of the sampler's range.</exception>
    public Sampler NewSampler(int vocabSize) => new(Seed, vocabSize)
    {
        Temperature = Temperature, TopK = TopK, TopP = TopP, MinP = MinP,
        RepetitionPenalty = RepetitionPenalty, PresencePenalty = PresencePenalty, FrequencyPenalty = FrequencyPenalty,
    };

    /// <summary>The sampling in words: "greedy" or the temperature and filters (with the seed, unless <paramref name="withSeed"/> is false), and the penalties where set.</summary>
    public string DescribeSampling(bool withSeed = true)
    {
        string sampling = Temperature == 0f || TopK == 1
            ? "greedy"
            : $"temperature {Temperature}, top-k {(TopK == 0 ? "off" : TopK)}, top-p {TopP}{(MinP > 0f ? $", min-p {MinP}" : "")}{(withSeed ? $", seed {Seed}" : "")}";
        if (RepetitionPenalty != 1f) sampling += $", repetition penalty {RepetitionPenalty}";
        if (PresencePenalty != 0f) sampling += $", presence penalty {PresencePenalty}";
        if (FrequencyPenalty != 0f) sampling += $", frequency penalty {FrequencyPenalty}";
        return sampling;
    }
}

/// <summary>A generated reply.</summary>
/// <param name="Prompt">The text the model was given: the chat template's rendering of the message, or the message itself.</param>
/// <param name="PromptTokens">Its ids.</param>
/// <param name="Tokens">The reply's ids, without the stop token.</param>
/// <param name="Text">The reply's text.</param>
/// <param name="Stop">Why it ended.</param>
/// <param name="StopToken">The end-of-sequence or end-of-turn id the model chose, or null.</param>
/// <param name="PromptTime">Running the prompt's new tokens through the model (one <see cref="LanguageModel.Append"/>).</param>
/// <param name="DecodeTime">Drawing, appending and decoding the reply's tokens.</param>
/// <param name="CachedPromptTokens">How many of the prompt's first tokens the key/value cache already held from the turns before (0 for a first turn).</param>
/// <param name="DroppedMessages">How many of the oldest messages were left out for the conversation to fit the model's SeqLen.</param>
public sealed record ChatReply(string Prompt, int[] PromptTokens, int[] Tokens, string Text, StopReason Stop, int? StopToken, TimeSpan PromptTime, TimeSpan DecodeTime,
    int CachedPromptTokens = 0, int DroppedMessages = 0)
{
    /// <summary>The prompt's tokens that were run through the model: those the cache did not hold.</summary>
    public int NewPromptTokens => PromptTokens.Length - CachedPromptTokens;

    /// <summary>New prompt tokens per second of <see cref="PromptTime"/>.</summary>
    public double PromptTokensPerSecond => NewPromptTokens / PromptTime.TotalSeconds;

    /// <summary>Reply tokens per second of <see cref="DecodeTime"/>.</summary>
    public double DecodeTokensPerSecond => Tokens.Length / DecodeTime.TotalSeconds;
}

/// <summary>
/// A chat with any decoder-only model and its tokenizer: the conversation is written out with the tokenizer's chat
/// template (or taken as plain text to continue when there is none), encoded without extra special tokens, run through
/// the model, and the reply is drawn token by token through the key/value cache and written to a stream as it comes,
/// until the model ends its turn or a limit is reached. <see cref="Respond"/> starts a conversation; <see cref="Continue"/>
/// adds a turn to it, running only the part of its prompt that the cache does not already hold.
/// </summary>
public sealed class ChatSession
{
    private readonly LanguageModel _model;
    private readonly PretrainedTokenizer _tokenizer;
    private readonly ChatPrompt _chat;
    private readonly int[] _next = new int[1];
    private readonly List<(string Role, string Content)> _history = [];
    private readonly List<int> _cached = [];   // the ids whose keys and values the model's cache holds, in order
    private string _text = "";                 // without a template: the text so far, prompt and replies

    /// <summary>Pairs a model with its tokenizer.</summary>
    /// <param name="model">The model.</param>
    /// <param name="tokenizer">Its tokenizer.</param>
    /// <param name="endOfSequence">More ids that end a reply (a folder's generation_config.json <c>eos_token_id</c> list), or null.</param>
    /// <exception cref="ArgumentException">The tokenizer has ids beyond the model's vocabulary, or so does <paramref name="endOfSequence"/>.</exception>
    public ChatSession(LanguageModel model, PretrainedTokenizer tokenizer, IEnumerable<int>? endOfSequence = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        _chat = new ChatPrompt(tokenizer, model.Layout, endOfSequence);
        _model = model;
        _tokenizer = tokenizer;
    }

    /// <summary>The chat template the prompt is written with, or null for plain continuation.</summary>
    public ChatTemplate? Template => _chat.Template;

    /// <summary>The ids that end a reply: end of sequence (the tokenizer's, every one compiled from the model's config, and those given) and the template's end of turn.</summary>
    public IReadOnlyCollection<int> StopTokens => _chat.StopTokens;

    /// <summary>The id of the template's end-of-turn text (ChatML <c>&lt;|im_end|&gt;</c>), or null.</summary>
    public int? EndOfTurnId => _chat.EndOfTurnId;

    /// <summary>The conversation so far: the system message where one was given, then each user message and reply.</summary>
    public IReadOnlyList<(string Role, string Content)> History => _history;

    /// <summary>The text the model is given for <paramref name="message"/> alone: the template's rendering with the opening of the assistant's turn, or the message itself.</summary>
    public string FormatPrompt(string message, string? systemPrompt = null)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (Template is null) return message;
        var messages = new List<(string Role, string Content)>();
        if (systemPrompt is not null) messages.Add(("system", systemPrompt));
        messages.Add(("user", message));
        return _chat.Format(messages);
    }

    /// <summary>
    /// Starts a new conversation with <paramref name="message"/> (and <see cref="ChatSettings.SystemPrompt"/>), forgetting
    /// the one before, and generates the reply, writing its text to <paramref name="stream"/> as it is generated.
    /// </summary>
    /// <exception cref="ArgumentException">The prompt is empty or fills the model's SeqLen.</exception>
    public ChatReply Respond(string message, ChatSettings settings, TextWriter stream)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(settings);
        _history.Clear();
        _text = "";
        _cached.Clear();
        _model.ResetCache();
        return Continue(message, settings, stream);
    }

    /// <summary>
    /// Adds <paramref name="message"/> to the conversation and generates the reply to all of it, writing its text to
    /// <paramref name="stream"/> as it is generated. The prompt is the whole conversation written out again; the cache
    /// keeps the tokens it shares with what it holds, so only the rest runs (usually the end of the last reply's turn and
    /// the new message). Where the conversation no longer leaves room in the model's SeqLen for a reply of
    /// <see cref="ChatSettings.MaxTokens"/> (or a quarter of SeqLen, if that is less), its oldest messages after the system
    /// message are left out, a user message with its reply at a time. The first turn's
    /// <see cref="ChatSettings.SystemPrompt"/> stays for the conversation; later ones are not read. A message refused, or a
    /// turn that throws, leaves the conversation as it was.
    /// </summary>
    /// <exception cref="ArgumentException">The message's prompt is empty, or does not fit the model's SeqLen even alone.</exception>
    public ChatReply Continue(string message, ChatSettings settings, TextWriter stream)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.MaxTokens, 1, nameof(settings));
        Sampler sampler = settings.NewSampler(_model.Layout.Vocab); // settings out of range are refused before anything changes

        // The conversation with the new message, on a copy: the session keeps its own until the reply is whole, so that
        // a message refused (too long) or a turn that throws leaves the conversation as it was.
        var history = new List<(string Role, string Content)>(_history);
        if (history.Count == 0 && settings.SystemPrompt is not null && Template is not null) history.Add(("system", settings.SystemPrompt));
        history.Add(("user", message));
        string text = _text;

        // Room for a reply of MaxTokens, or a quarter of SeqLen if that is less, is made by leaving out old turns.
        int seqLen = _model.Layout.SeqLen;
        int room = Math.Min(settings.MaxTokens, seqLen / 4);
        int dropped = 0;
        string prompt;
        int[] promptTokens;
        while (true)
        {
            prompt = Template is null ? text + message : _chat.Format(history);
            promptTokens = _chat.Encode(prompt);
            if (promptTokens.Length + room <= seqLen || !DropOldestTurn(history, ref text, ref dropped)) break;
        }
        if (promptTokens.Length == 0) throw new ArgumentException("the prompt encodes to no tokens", nameof(message));
        if (promptTokens.Length >= seqLen)
            throw new ArgumentException($"the prompt is {promptTokens.Length} tokens; {_model.Layout.Name} was compiled for {seqLen} positions (SeqLen), prompt and reply together", nameof(message));

        // Keep the cache's longest prefix in common with the prompt, leaving at least one token to run for the logits.
        int common = 0;
        while (common < _cached.Count && common < promptTokens.Length - 1 && _cached[common] == promptTokens[common]) common++;
        _model.TruncateCache(common);
        _cached.RemoveRange(common, _cached.Count - common);

        // The prompt and every reply token but the last go into the cache.
        int limit = Math.Min(settings.MaxTokens, seqLen - promptTokens.Length + 1);
        var decoder = new StreamingDecoder(_tokenizer);
        var reply = new List<int>(limit);

        long started = Stopwatch.GetTimestamp();
        ReadOnlySpan<float> logits = _model.Append(promptTokens.AsSpan(common));
        TimeSpan promptTime = Stopwatch.GetElapsedTime(started);
        _cached.AddRange(promptTokens.AsSpan(common));

        started = Stopwatch.GetTimestamp();
        StopReason stop;
        int? stopToken = null;
        while (true)
        {
            if (reply.Count == limit)
            {
                stop = limit == settings.MaxTokens ? StopReason.MaxTokens : StopReason.ContextFull;
                break;
            }

            int next = sampler.Sample(logits, promptTokens, CollectionsMarshal.AsSpan(reply));
            if (_chat.Stops(next, out stop))
            {
                stopToken = next;
                break;
            }

            reply.Add(next);
            stream.Write(decoder.Push(next));
            stream.Flush();
            if (reply.Count < limit)
            {
                _next[0] = next;
                logits = _model.Append(_next);
                _cached.Add(next);
            }
        }

        stream.Write(decoder.Flush());
        stream.Flush();
        TimeSpan decodeTime = Stopwatch.GetElapsedTime(started);
        int[] tokens = reply.ToArray();
        string replyText = _tokenizer.Decode(tokens);
        history.Add(("assistant", replyText));
        _history.Clear();
        _history.AddRange(history);
        _text = prompt + replyText;
        return new ChatReply(prompt, promptTokens, tokens, replyText, stop, stopToken, promptTime, decodeTime, common, dropped);
    }

    // Leaves out of history the oldest user message and the replies after it (the system message stays); false when only
    // the new message is left. Without a template the text so far goes instead, all of it.
    private bool DropOldestTurn(List<(string Role, string Content)> history, ref string text, ref int dropped)
    {
        if (Template is null)
        {
            if (text.Length == 0) return false;
            text = "";
            dropped++;
            return true;
        }

        int first = history.Count > 0 && history[0].Role == "system" ? 1 : 0;
        if (history.Count - first <= 1) return false;
        int count = 1;
        while (first + count < history.Count - 1 && history[first + count].Role != "user") count++;
        history.RemoveRange(first, count);
        dropped += count;
        return true;
    }
}
