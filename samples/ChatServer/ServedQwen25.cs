using TransformerGen;

namespace TransformerGen.ChatServer;

/// <summary>
/// Qwen/Qwen2.5-0.5B-Instruct as the server runs it: compiled from the same config.json as the Chat sample's
/// <c>Qwen25</c> (24 layers, 896 wide, 14 query heads of 64 on 2 key/value heads, q/k/v biases), with its SeqLen of 2048
/// positions and Sequences = 8 key/value cache slots: 8 × 2048 positions × 24 layers × 2 × 128 floats, about 403 MB,
/// beside 2.0 GB of fp32 weights (0.5 GB with <c>--weights int8</c>).
/// </summary>
[TransformerModel(Config = "models/Qwen2.5-0.5B-Instruct/config.json", SeqLen = 2048, Sequences = 8)]
public partial class ServedQwen25 { }
