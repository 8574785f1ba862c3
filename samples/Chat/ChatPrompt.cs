using System;
using System.Collections.Generic;
using System.Linq;
using TransformerGen;
using TransformerGen.Samples.Hub;
using TransformerGen.Tokenizers;
using TransformerGen.Tokenizers.Chat;

namespace ChatSample;

/// <summary>
/// What a chat takes from a tokenizer and the model it drives: the chat template that writes a conversation out, the
/// ids of that text, and the ids at which a reply ends (end of sequence, as the tokenizer and the model's config name
/// it, and the template's end of turn). A config.json may list several end-of-sequence ids (Llama 3.2's
/// <c>eos_token_id: [128001, 128008, 128009]</c>): the compiled layout holds them all (<c>EndTokens</c>). <see cref="ChatSession"/>
/// uses it for one turn; samples/ChatServer for every request it serves.
/// </summary>
public sealed class ChatPrompt
{
    private readonly PretrainedTokenizer _tokenizer;
    private readonly ModelLayout _layout;
    private readonly Dictionary<int, StopReason> _stops = [];

    /// <summary>Pairs a tokenizer with the layout of the model its ids go to.</summary>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="layout">The compiled model's layout (its vocabulary, and the end-of-sequence ids compiled from its config).</param>
    /// <exception cref="ArgumentException">
    /// The tokenizer has ids beyond the model's vocabulary that are not special tokens. Special ones are let through
    /// (Gemma 3's text models keep the multimodal models' <c>&lt;image_soft_token&gt;</c>, id 262144, past their
    /// 262,144-row table) and refused in a prompt that holds them.
    /// </exception>
    /// <param name="endOfSequence">
    /// More ids that end a reply as an end of sequence: a folder's generation_config.json <c>eos_token_id</c> list
    /// (<see cref="GenerationConfig.EosTokenIds"/>; Qwen2.5's adds &lt;|endoftext|&gt; to config.json's &lt;|im_end|&gt;).
    /// </param>
    /// <exception cref="ArgumentOutOfRangeException">An id of <paramref name="endOfSequence"/> is outside the model's vocabulary.</exception>
    public ChatPrompt(PretrainedTokenizer tokenizer, ModelLayout layout, IEnumerable<int>? endOfSequence = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(layout);
        VocabularyFit.Check(tokenizer, layout.Vocab, layout.Name, nameof(tokenizer));

        _tokenizer = tokenizer;
        _layout = layout;
        EndOfTurnId = FindEndOfTurn(tokenizer);
        if (tokenizer.EosId is int eos) _stops[eos] = StopReason.EndOfSequence;
        if (layout.EosToken >= 0) _stops[layout.EosToken] = StopReason.EndOfSequence;
        foreach (int id in layout.EndTokens) _stops[id] = StopReason.EndOfSequence;
        foreach (int id in endOfSequence ?? [])
        {
            if ((uint)id >= (uint)layout.Vocab)
                throw new ArgumentOutOfRangeException(nameof(endOfSequence), id, $"end-of-sequence id {id} is outside {layout.Name}'s vocabulary (0 to {layout.Vocab - 1})");
            _stops[id] = StopReason.EndOfSequence;
        }

        if (EndOfTurnId is int endOfTurn) _stops[endOfTurn] = StopReason.EndOfTurn;
    }

    /// <summary>The chat template conversations are written with, or null (the tokenizer has none it can render).</summary>
    public ChatTemplate? Template => _tokenizer.Chat;

    /// <summary>The ids that end a reply: end of sequence (the tokenizer's and every one compiled from the model's config) and the template's end of turn.</summary>
    public IReadOnlyCollection<int> StopTokens => _stops.Keys;

    /// <summary>The id of the template's end-of-turn text (ChatML <c>&lt;|im_end|&gt;</c>), or null.</summary>
    public int? EndOfTurnId { get; }

    /// <summary>Whether <paramref name="id"/> ends a reply, and why.</summary>
    public bool Stops(int id, out StopReason reason) => _stops.TryGetValue(id, out reason);

    /// <summary>The template's rendering of <paramref name="messages"/>, ending with the opening of the assistant's turn.</summary>
    /// <exception cref="InvalidOperationException">The tokenizer has no chat template.</exception>
    /// <exception cref="ArgumentException">A role the template does not know, or an order it refuses (Llama-2's alternation).</exception>
    public string Format(IReadOnlyList<(string Role, string Content)> messages)
    {
        ChatTemplate template = Template ?? throw new InvalidOperationException($"the tokenizer has no chat template: {_tokenizer.ChatUnavailableReason}");
        return template.Format(messages, addGenerationPrompt: true);
    }

    /// <summary>
    /// The ids of a prompt: a template's rendering holds its special tokens already, so nothing is added; plain text gets
    /// what the tokenizer adds (Llama's <c>&lt;s&gt;</c>).
    /// </summary>
    /// <exception cref="ArgumentException">The prompt holds a special token the model has no embedding row for.</exception>
    public int[] Encode(string prompt)
    {
        int[] ids = _tokenizer.Encode(prompt, addSpecialTokens: Template is null).ToArray();
        foreach (int id in ids)
        {
            if (id >= _layout.Vocab)
            {
                throw new ArgumentException($"the prompt holds {_tokenizer.Decode([id], skipSpecialTokens: false)} (id {id}), which {_layout.Name} has no embedding row for: its vocabulary is {_layout.Vocab}", nameof(prompt));
            }
        }

        return ids;
    }

    private static int? FindEndOfTurn(PretrainedTokenizer tokenizer)
    {
        if (tokenizer.Chat is not { } template) return null;
        if (tokenizer.SpecialTokenId(template.EndOfTurn) is int id) return id;
        IReadOnlyList<int> ids = tokenizer.Encode(template.EndOfTurn, addSpecialTokens: false);
        return ids.Count == 1 ? ids[0] : null;
    }
}
