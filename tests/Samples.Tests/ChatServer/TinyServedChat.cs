using TransformerGen;

namespace TransformerGen.Samples.Tests.ChatServer;

/// <summary>
/// <see cref="TinyChatModel"/>'s Llama (same config.json, same SeqLen) with Sequences = 8 key/value cache slots, as the chat
/// server compiles SmolLM2: the server runs it in SmolLM2's place, and its replies are compared with the Chat sample's
/// <c>ChatSession</c> over <see cref="TinyChatModel"/> on the same weights.
/// </summary>
[TransformerModel(Config = "Models/tiny-llama/config.json", SeqLen = 128, Sequences = 8)]
public partial class TinyServedChat { }
