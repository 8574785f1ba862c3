using TransformerGen;

namespace ChatSample;

/// <summary>
/// meta-llama/Llama-3.2-3B-Instruct, compiled from its config.json (Llama 3: 28 layers, 3072 wide, 24 query heads of 128
/// on 8 key/value heads, SwiGLU 8192, RMSNorm, rotary positions with theta 500000 scaled as llama3, a 128,256-token
/// vocabulary, tied LM head: 3.21 B parameters). Its 12.85 GB of fp32 parameters are more than one array holds, so the
/// compiler lays them out in two segments and the model runs for inference only (which is all the sample does); int8
/// weights hold its matrices in 3.4 GB. SeqLen bounds the key/value cache: 28 layers × 2 × 1024 floats = 224 KB per position.
/// </summary>
[TransformerModel(Config = "models/Llama-3.2-3B-Instruct/config.json", SeqLen = 1024)]
public partial class Llama32_3B { }
