using TransformerGen;

namespace TransformerGen.ChatServer;

/// <summary>
/// meta-llama/Llama-3.2-1B-Instruct as the server runs it: compiled from the same config.json as the Chat sample's
/// <c>Llama32</c> (16 layers, 2048 wide, 32 query heads of 64 on 8 key/value heads, llama3 rope scaling), with its SeqLen
/// of 1024 positions and Sequences = 4 key/value cache slots: 4 × 1024 positions × 16 layers × 2 × 512 floats, about
/// 268 MB, beside 4.9 GB of fp32 weights (1.3 GB with <c>--weights int8</c>).
/// </summary>
[TransformerModel(Config = "models/Llama-3.2-1B-Instruct/config.json", SeqLen = 1024, Sequences = 4)]
public partial class ServedLlama32 { }
