using TransformerGen;

namespace TransformerGen.LlamaCpp.Bench;

// The decoders timed against llama.cpp, compiled from their config.json files with random seeded weights (only the
// shapes matter for timing), exported to GGUF for llama.cpp.

/// <summary>SmolLM2-135M (Llama: 30 layers, grouped-query attention 9/3, tied embeddings), a key/value cache of 128 positions.</summary>
[TransformerModel(Config = "models/SmolLM2-135M/config.json", SeqLen = 128)]
public partial class SmolLm2 { }

/// <summary>
/// gemma-3-270m's shape (Gemma 3: 18 layers of 640, 4 heads of 256 on one key/value head, GEGLU 2048, every sixth layer
/// full and the others sliding through 512 positions, tied embeddings over 262,144 ids), random weights; a key/value cache
/// of 128 positions.
/// </summary>
[TransformerModel(Config = "models/gemma-3-270m/config.json", SeqLen = 128)]
public partial class Gemma3_270M { }

/// <summary>
/// The TinyLm sample's sizes (vocabulary 65, DModel 128, 4 heads, 4 layers, DFF 512) as a Llama: the sample's own layers
/// (LayerNorm, erf GELU, interleaved rotary) have no llama.cpp architecture, so both sides run RMSNorm and SwiGLU.
/// </summary>
[TransformerModel(Config = "models/TinyLm-llama/config.json", SeqLen = 128)]
public partial class TinyLmLlama { }

/// <summary>
/// Llama-3.2-3B's shape (28 layers of 3,072, 24 query heads of 128 on 8 key/value heads, SwiGLU 8,192, llama3-scaled
/// rotary positions, tied embeddings over 128,256 ids: 3.21 B parameters), random weights; a key/value cache of 128
/// positions. Its 12.85 GB of fp32 parameters are more than one array holds: the compiler lays them out in two segments,
/// and it runs for inference only.
/// </summary>
[TransformerModel(Config = "models/Llama-3.2-3B/config.json", SeqLen = 128)]
public partial class Llama32_3B
{
    /// <summary>The compiled layout, without an instance (which would hold 12.85 GB): the tensors a checkpoint of it has.</summary>
    internal static ModelLayout CompiledLayout => s_layout;
}

/// <summary>SmolLM2-135M with room for a 512-token prompt (the prefill benchmarks).</summary>
[TransformerModel(Config = "models/SmolLM2-135M/config.json", SeqLen = 512)]
public partial class SmolLm2Long { }

/// <summary>TinyLm's sizes as a Llama with room for a 512-token prompt.</summary>
[TransformerModel(Config = "models/TinyLm-llama/config.json", SeqLen = 512)]
public partial class TinyLmLlamaLong { }

/// <summary>
/// SmolLM2-135M with 16 key/value cache slots of 128 positions: up to 16 sequences appended in one pass (the batched
/// decode benchmarks).
/// </summary>
[TransformerModel(Config = "models/SmolLM2-135M/config.json", SeqLen = 128, Batch = 16)]
public partial class SmolLm2Batched { }

/// <summary>
/// google/flan-t5-small (T5 v1.1: 8 + 8 layers, 512 wide, 6 heads of 64, gated GELU 1024, untied head over 32128 ids): a
/// 32-token source and 33 decoder positions (the start token, then 32 generated), llama.cpp's <c>t5</c> on the other side.
/// </summary>
[TransformerModel(Config = "models/flan-t5-small/config.json", SeqLen = 32, TargetSeqLen = 33)]
public partial class FlanT5Small { }

/// <summary>
/// gte-modernbert-base's shape (ModernBERT-base: 22 layers of 768, 12 heads, GeGLU 1152, every third layer global and the
/// others within 64 positions either side, no biases, 50,368 ids), random weights; one sentence of up to 512 tokens, its
/// [CLS] state normalized to unit length as the folder's sentence-transformers modules say.
/// </summary>
[TransformerModel(Config = "models/gte-modernbert-base/config.json", SeqLen = 512, Batch = 1, Head = EncoderHead.SentenceEmbedding)]
public partial class ModernBertBatch1 { }

/// <summary>
/// sentence-transformers/all-MiniLM-L6-v2's shape (a BERT: 6 post-LN layers of 384, 12 heads of 32, erf GELU 1536, 512
/// positions, 2 token types, 30,522 ids), random weights; one sentence of up to 128 tokens, the mean of its states
/// normalized to unit length, as the model's 1_Pooling (mean) and Normalize modules say (mean pooling is the compiled
/// sentence embedding's default, so the config alone is copied here).
/// </summary>
[TransformerModel(Config = "models/all-MiniLM-L6-v2/config.json", SeqLen = 128, Batch = 1, Head = EncoderHead.SentenceEmbedding)]
public partial class MiniLmBatch1 { }
