using TransformerGen;

namespace TransformerGen.EmbeddingServer.Tests.Support;

/// <summary>
/// A small BERT sentence embedder (48 wide, 2 layers, 4 heads, 256 ids) compiled from Models/tiny-bert/config.json the
/// way the server compiles all-MiniLM-L6-v2: mean pooling, L2 normalization. SeqLen 24 so that the tests reach the cut
/// with short texts; Batch 8.
/// </summary>
[TransformerModel(Config = "Models/tiny-bert/config.json", SeqLen = 24, Batch = 8, Head = EncoderHead.SentenceEmbedding)]
public partial class TinyBert { }
