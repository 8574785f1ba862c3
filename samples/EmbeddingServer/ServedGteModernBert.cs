using TransformerGen;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// Alibaba-NLP/gte-modernbert-base as the server runs it (ModernBERT: 22 pre-norm layers, 768 wide, every third layer
/// global with rotary base 160000 and the others local, 64 positions either side, with base 10000; the [CLS] token's
/// state as its sentence-transformers pooling says, L2-normalized), SeqLen 512 of its 8192 positions and batches of up to
/// 8 sentences, as the Embeddings sample compiles it. Inputs are embedded as they are: the model takes no prompts.
/// </summary>
[TransformerModel(Config = "models/gte-modernbert-base/config.json", SeqLen = 512, Batch = 8, Head = EncoderHead.SentenceEmbedding)]
public partial class ServedGteModernBert { }
