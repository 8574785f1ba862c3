using TransformerGen;

namespace ChatSample;

/// <summary>
/// Qwen/Qwen2.5-0.5B-Instruct, compiled from its config.json (Qwen2: 24 layers, 896 wide, 14 query heads of 64 on 2
/// key/value heads, biases on the query, key and value projections, SwiGLU 4864, RMSNorm, half-split rotary positions
/// with theta 1000000, a 151,936-row vocabulary, tied LM head: 494 M parameters). SeqLen bounds the key/value cache:
/// 2048 positions hold a conversation and its reply (the model knows 32,768; the cache grows by
/// 24 layers × 2 × 128 floats = 24 KB per position).
/// </summary>
[TransformerModel(Config = "models/Qwen2.5-0.5B-Instruct/config.json", SeqLen = 2048)]
public partial class Qwen25 { }
