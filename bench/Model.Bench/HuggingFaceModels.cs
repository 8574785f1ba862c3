using TransformerGen;

namespace TransformerGen.Model.Bench;

// The Hugging Face models of the HuggingFace benchmarks, compiled from their config.json files (models/, listed as
// TransformerConfig items in the project). The weights are random and seeded: only the shapes matter for timing.

/// <summary>all-MiniLM-L6-v2 (BERT, 22.7 M parameters) as sentence-transformers runs it, one sentence of 128 tokens.</summary>
[TransformerModel(Config = "models/all-MiniLM-L6-v2/config.json", SeqLen = 128, Batch = 1, Head = EncoderHead.SentenceEmbedding)]
public partial class MiniLmBatch1 { }

/// <summary>all-MiniLM-L6-v2, a batch of 8 sentences of 128 tokens.</summary>
[TransformerModel(Config = "models/all-MiniLM-L6-v2/config.json", SeqLen = 128, Batch = 8, Head = EncoderHead.SentenceEmbedding)]
public partial class MiniLmBatch8 { }

/// <summary>SmolLM2-135M (Llama: 30 layers, grouped-query attention 9/3, tied embeddings), decoding with a key/value cache of 128 positions.</summary>
[TransformerModel(Config = "models/SmolLM2-135M/config.json", SeqLen = 128, Batch = 1)]
public partial class SmolLm2 { }

/// <summary>
/// Helsinki-NLP/opus-mt-en-de (Marian: 6 + 6 post-LN layers, 512 wide, one 58,101-id table for both stacks and the head),
/// compiled as samples/Translate compiles it: 256 source and 256 target positions.
/// </summary>
[TransformerModel(Config = "models/opus-mt-en-de/config.json", SeqLen = 256, TargetSeqLen = 256)]
public partial class OpusMtEnDe { }

/// <summary>
/// google/flan-t5-small (T5 v1.1: 8 + 8 pre-norm layers with RMSNorm, 512 wide, 6 heads of 64, GEGLU 1024 with the tanh
/// GELU, a relative-position bias per stack, one 32,128-id table for both stacks and an untied lm_head), compiled as
/// samples/Translate compiles it: 512 source positions (the tokenizer's model_max_length) and 256 target positions.
/// </summary>
[TransformerModel(Config = "models/flan-t5-small/config.json", SeqLen = 512, TargetSeqLen = 256)]
public partial class FlanT5Small { }

/// <summary>
/// google/embeddinggemma-300m (a bidirectional Gemma 3: 24 layers, 768 wide, 3 heads of 256 on one key/value head, then
/// mean pooling and Dense 768 → 3072 → 768 from its sentence-transformers modules), one sentence of 128 tokens.
/// </summary>
[TransformerModel(Config = "models/embeddinggemma-300m/config.json", SeqLen = 128, Batch = 1, Head = EncoderHead.SentenceEmbedding)]
public partial class EmbeddingGemmaBatch1 { }

/// <summary>
/// Alibaba-NLP/gte-modernbert-base (ModernBERT-base: 22 pre-norm layers, 768 wide, 12 heads, GeGLU 1152, every third layer
/// global and the others windowed to ±64 positions, then [CLS] pooling and normalization from its sentence-transformers
/// modules), one sentence of 128 tokens.
/// </summary>
[TransformerModel(Config = "models/gte-modernbert-base/config.json", SeqLen = 128, Batch = 1, Head = EncoderHead.SentenceEmbedding)]
public partial class ModernBertBatch1 { }

/// <summary>gte-modernbert-base, one sentence of 512 tokens: long enough that the local layers' ±64 window leaves most pairs out.</summary>
[TransformerModel(Config = "models/gte-modernbert-base/config.json", SeqLen = 512, Batch = 1, Head = EncoderHead.SentenceEmbedding)]
public partial class ModernBertBatch1Seq512 { }
