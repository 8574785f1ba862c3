using TransformerGen;

namespace ChatSample;

/// <summary>
/// HuggingFaceTB/SmolLM2-135M-Instruct, compiled from its config.json (Llama: 30 layers, 576 wide, 9 query heads on 3
/// key/value heads, SwiGLU, RMSNorm, half-split rotary positions with theta 100000, tied LM head). SeqLen bounds the
/// key/value cache: 1024 positions hold a prompt and its reply (the model knows 8192; the cache grows by
/// 30 layers × 2 × 192 floats = 45 KB per position).
/// </summary>
[TransformerModel(Config = "models/SmolLM2-135M-Instruct/config.json", SeqLen = 1024)]
public partial class SmolLm { }
