using System;
using ChatSample;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;

namespace TransformerGen.Samples.Tests.ChatServer;

/// <summary>
/// A folder as the Hub has SmolLM2-Instruct's, at toy size (<see cref="TinyChat.Folder"/>), with a model that never
/// picks a stop id; and the Chat sample's <see cref="ChatSession"/> over <see cref="TinyChatModel"/> on the same weights,
/// which says what a conversation gets alone. Made once per test class.
/// </summary>
public sealed class TinyChatServerFolder : IDisposable
{
    private readonly TempFolder _folder = TinyChat.Folder(TinyChat.Model(seed: 3));
    private readonly ChatSession _session;

    public TinyChatServerFolder()
    {
        Tokenizer = PretrainedTokenizer.FromFolder(_folder.Path);
        _session = new ChatSession(TinyChatModel.ForInference(_folder.File("model.safetensors")), Tokenizer);
    }

    public string Path => _folder.Path;

    public PretrainedTokenizer Tokenizer { get; }

    /// <summary>The Chat sample's reply to <paramref name="user"/> with these settings, generated alone.</summary>
    public ChatReply Alone(string user, ChatSettings settings)
    {
        lock (_session) return _session.Respond(user, settings, System.IO.TextWriter.Null);
    }

    /// <summary>A user's message whose prompt (the chat template's rendering, with the default system message) is exactly <paramref name="tokens"/> tokens.</summary>
    public string MessageOfPromptLength(int tokens)
    {
        int empty = Alone("", new ChatSettings(MaxTokens: 1, Temperature: 0f)).PromptTokens.Length;
        return new string('x', tokens - empty); // no merge joins x's, so each is one token
    }

    public void Dispose() => _folder.Dispose();
}
