using TransformerGen;

namespace TransformerGen.ChatServer;

/// <summary>
/// HuggingFaceTB/SmolLM2-135M-Instruct as the server runs it: compiled from the same config.json as the Chat sample's
/// <c>SmolLm</c>, with its SeqLen of 1024 positions, and Sequences = 8 key/value cache slots, so that eight conversations
/// generate at once, each step reading the weights once for all of them. The caches cost 8 × 1024 positions × 30 layers
/// × 2 × 192 floats, about 377 MB; the training Batch stays 1 (the model is never trained here).
/// </summary>
[TransformerModel(Config = "models/SmolLM2-135M-Instruct/config.json", SeqLen = 1024, Sequences = 8)]
public partial class ServedSmolLm { }
