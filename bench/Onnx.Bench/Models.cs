using TransformerGen;

namespace TransformerGen.Onnx.Bench;

// The models are compiled from the Hugging Face configs; the weights are random and seeded (only the shapes matter for
// timing), and the same weights go to ONNX Runtime through SaveOnnx.

/// <summary>all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide, 12 heads) as sentence-transformers runs it, one sentence of 128 tokens.</summary>
[TransformerModel(Config = "../Model.Bench/models/all-MiniLM-L6-v2/config.json", SeqLen = 128, Batch = 1, Head = EncoderHead.SentenceEmbedding)]
public partial class MiniLmBatch1 { }

/// <summary>all-MiniLM-L6-v2, 8 sentences of 128 tokens.</summary>
[TransformerModel(Config = "../Model.Bench/models/all-MiniLM-L6-v2/config.json", SeqLen = 128, Batch = 8, Head = EncoderHead.SentenceEmbedding)]
public partial class MiniLmBatch8 { }

/// <summary>
/// all-mpnet-base-v2 (MPNet: 12 layers, 768 wide, 12 heads, one relative-position bias for the encoder), 8 sentences of 128
/// tokens.
/// </summary>
[TransformerModel(Config = "../Model.Bench/models/all-mpnet-base-v2/config.json", SeqLen = 128, Batch = 8, Head = EncoderHead.SentenceEmbedding)]
public partial class MPNetBatch8 { }

/// <summary>SmolLM2-135M (Llama: 30 layers, 576 wide, grouped-query attention 9/3, tied head), a prompt of 128 tokens.</summary>
[TransformerModel(Config = "../Model.Bench/models/SmolLM2-135M/config.json", SeqLen = 128, Batch = 1)]
public partial class SmolLm2Prefill { }

/// <summary>
/// google/embeddinggemma-300m (a bidirectional Gemma 3: 24 layers, 768 wide, 3 heads of 256 on one key/value head, then
/// mean pooling and Dense 768 → 3072 → 768 from its sentence-transformers modules), one sentence of 128 tokens.
/// </summary>
[TransformerModel(Config = "../Model.Bench/models/embeddinggemma-300m/config.json", SeqLen = 128, Batch = 1, Head = EncoderHead.SentenceEmbedding)]
public partial class EmbeddingGemmaBatch1 { }

/// <summary>
/// Alibaba-NLP/gte-modernbert-base (ModernBERT-base: 22 pre-norm layers, 768 wide, 12 heads, GeGLU 1152, every third layer
/// global and the others windowed to ±64 positions, then [CLS] pooling and normalization from its sentence-transformers
/// modules), one sentence of 128 tokens.
/// </summary>
[TransformerModel(Config = "../Model.Bench/models/gte-modernbert-base/config.json", SeqLen = 128, Batch = 1, Head = EncoderHead.SentenceEmbedding)]
public partial class ModernBertBatch1 { }
