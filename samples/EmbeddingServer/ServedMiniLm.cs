using TransformerGen;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// sentence-transformers/all-MiniLM-L6-v2 as the server runs it: compiled from its config.json (BERT, 6 layers, 384
/// wide, 12 heads) with mean pooling and L2 normalization, SeqLen 256 (sentence-transformers' max_seq_length for this
/// model), up to 16 sentences a batch.
/// </summary>
/// <remarks>
/// A batch runs at its sentences' own lengths laid end to end, so Batch and SeqLen only size the workspace (16 · 256 =
/// 4,096 tokens) and bound a batch; the batcher's token budget decides how full a batch gets.
/// </remarks>
[TransformerModel(Config = "models/all-MiniLM-L6-v2/config.json", SeqLen = 256, Batch = 16, Head = EncoderHead.SentenceEmbedding)]
public partial class ServedMiniLm { }
