using TransformerGen;

namespace ChatSample;

/// <summary>
/// google/gemma-3-270m-it, compiled from its config.json (Gemma 3: 18 layers, 640 wide, 4 query heads of 256 on one
/// key/value head, GEGLU, RMSNorm × (1 + weight) before and after each sub-layer and on each query and key head,
/// embeddings × √640, five sliding layers of 512 keys for every full one, a 262,144-token vocabulary, tied LM head).
/// SeqLen bounds the key/value cache: 1024 positions hold a prompt and its reply and pass the sliding window (the model
/// knows 32,768; the cache grows by 18 layers × 2 × 256 floats = 36 KB per position).
/// </summary>
[TransformerModel(Config = "models/gemma-3-270m-it/config.json", SeqLen = 1024)]
public partial class Gemma3Chat { }
