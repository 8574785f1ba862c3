using TransformerGen;

namespace TransformerGen.ChatServer;

/// <summary>
/// google/gemma-3-270m-it as the server runs it: compiled from the same config.json as the Chat sample's
/// <c>Gemma3Chat</c>, with its SeqLen of 1024 positions, and Sequences = 8 key/value cache slots. The caches cost
/// 8 × 1024 positions × 18 layers × 2 × 256 floats (one key/value head of 256), about 302 MB.
/// </summary>
[TransformerModel(Config = "models/gemma-3-270m-it/config.json", SeqLen = 1024, Sequences = 8)]
public partial class ServedGemma3 { }
