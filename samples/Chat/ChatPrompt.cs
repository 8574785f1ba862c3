using System;
using System.Collections.Generic;
using System.Linq;
using TransformerGen;
using TransformerGen.Tokenizers;
using TransformerGen.Tokenizers.Chat;

namespace ChatSample;

/// <summary>
/// What a chat takes from a tokenizer and the model it drives: the chat template that writes a conversation out, the
/// ids of that text, and the ids at which a reply ends (end of sequence, as the tokenizer and the model's config name
/// it, and the template's end of turn). <see cref="ChatSession"/> uses it for one turn; samples/ChatServer for every
/// request it serves.
/// </summary>
public sealed class ChatPrompt
{
    private readonly PretrainedTokenizer _tokenizer;
    private readonly Dictionary<int, StopReason> _stops = [];

    /// <summary>Pairs a tokenizer with the layout of the model its ids go to.</summary>
    /// <exception cref="ArgumentException">The tokenizer has ids beyond the model's vocabulary.</exception>
    public ChatPrompt(PretrainedTokenizer tokenizer, ModelLayout layout)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(layout);
        if (tokenizer.VocabSize > layout.Vocab)
        {
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} ids, {layout.Name}'s vocabulary {layout.Vocab}", nameof(tokenizer));
        }

        _tokenizer = tokenizer;
        EndOfTurnId = FindEndOfTurn(tokenizer);
        if (tokenizer.EosId is int eos) _stops[eos] = StopReason.EndOfSequence;
        if (layout.EosToken >= 0) _stops[layout.EosToken] = StopReason.EndOfSequence;
        if (EndOfTurnId is int endOfTurn) _stops[endOfTurn] = StopReason.EndOfTurn;
    }

    /// <summary>The chat template conversations are written with, or null (the tokenizer has none it can render).</summary>
    public ChatTemplate? Template => _tokenizer.Chat;

    /// <summary>The ids that end a reply: end of sequence (the tokenizer's and the model config's) and the template's end of turn.</summary>
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
    public int[] Encode(string prompt) => _tokenizer.Encode(prompt, addSpecialTokens: Template is null).ToArray();

    private static int? FindEndOfTurn(PretrainedTokenizer tokenizer)
    {
        if (tokenizer.Chat is not { } template) return null;
        if (tokenizer.SpecialTokenId(template.EndOfTurn) is int id) return id;
        IReadOnlyList<int> ids = tokenizer.Encode(template.EndOfTurn, addSpecialTokens: false);
        return ids.Count == 1 ? ids[0] : null;
    }
}
