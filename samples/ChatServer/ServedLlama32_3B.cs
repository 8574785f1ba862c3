using TransformerGen;

namespace TransformerGen.ChatServer;

/// <summary>
/// meta-llama/Llama-3.2-3B-Instruct as the server runs it: compiled from the same config.json as the Chat sample's
/// <c>Llama32_3B</c> (28 layers, 3072 wide, 24 query heads of 128 on 8 key/value heads, llama3 rope scaling; 3.21 B
/// parameters, laid out in two parameter segments, so for inference only), with its SeqLen of 1024 positions and
/// Sequences = 4 key/value cache slots: 4 × 1024 positions × 28 layers × 2 × 1024 floats, about 940 MB, beside 3.4 GB of
/// 8-bit weights (its default; 12.85 GB with <c>--weights float32</c>).
/// </summary>
[TransformerModel(Config = "models/Llama-3.2-3B-Instruct/config.json", SeqLen = 1024, Sequences = 4)]
public partial class ServedLlama32_3B { }
