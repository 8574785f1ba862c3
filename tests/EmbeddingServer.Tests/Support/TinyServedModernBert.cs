using TransformerGen;

namespace TransformerGen.EmbeddingServer.Tests.Support;

/// <summary>
/// tests/Samples.Tests' tiny ModernBERT (18 wide, 4 layers with global ones at 0 and 3 and local ones between, 2 positions
/// either side, CLS pooling from its modules, ModernBERT's 50,368 ids) as a served model: up to 4 texts a batch.
/// </summary>
[TransformerModel(Config = "../Samples.Tests/Models/tiny-modernbert/config.json", SeqLen = 32, Batch = 4, Head = EncoderHead.SentenceEmbedding)]
public partial class TinyServedModernBert { }
