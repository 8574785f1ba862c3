using TransformerGen;

namespace ChatSample;

/// <summary>
/// meta-llama/Llama-3.2-1B-Instruct, compiled from its config.json (Llama 3: 16 layers, 2048 wide, 32 query heads of 64
/// on 8 key/value heads, SwiGLU 8192, RMSNorm, half-split rotary positions with theta 500000 scaled as llama3 (factor
/// 32 past 8192 original positions), a 128,256-token vocabulary, tied LM head: 1.24 B parameters). SeqLen bounds the
/// key/value cache: 1024 positions hold a prompt and its reply (the model knows 131,072; the cache grows by
/// 16 layers × 2 × 512 floats = 64 KB per position).
/// </summary>
[TransformerModel(Config = "models/Llama-3.2-1B-Instruct/config.json", SeqLen = 1024)]
public partial class Llama32 { }
