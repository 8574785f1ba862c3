using TransformerGen;

namespace TransformerGen.EmbeddingServer.Tests.Support;

/// <summary>
/// tests/Samples.Tests' tiny EmbeddingGemma (18 wide, a sliding and a global layer, Dense 18 → 40 → 18) as a served model:
/// up to 4 texts a batch.
/// </summary>
[TransformerModel(Config = "../Samples.Tests/Models/tiny-embeddinggemma/config.json", SeqLen = 128, Batch = 4, Head = EncoderHead.SentenceEmbedding)]
public partial class TinyServedEmbeddingGemma { }
