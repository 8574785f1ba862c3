using TransformerGen;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// sentence-transformers/all-mpnet-base-v2 as the server runs it (MPNet: 12 layers, 768 wide, the encoder's relative-position
/// bias), SeqLen its sentence-transformers max_seq_length, 384, and batches of up to 16 sentences, as <see cref="ServedMiniLm"/>.
/// </summary>
[TransformerModel(Config = "models/all-mpnet-base-v2/config.json", SeqLen = 384, Batch = 16, Head = EncoderHead.SentenceEmbedding)]
public partial class ServedMPNet { }
