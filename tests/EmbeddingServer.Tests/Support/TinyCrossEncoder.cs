using TransformerGen;

namespace TransformerGen.EmbeddingServer.Tests.Support;

/// <summary>
/// A small BERT cross-encoder (48 wide, 2 layers, 4 heads, 256 ids; <c>BertForSequenceClassification</c> with one label)
/// compiled from Models/tiny-cross-encoder/config.json the way the server compiles ms-marco-MiniLM-L-6-v2: one score per
/// sequence. SeqLen 32 so that the tests reach the cut with short texts; Batch 8.
/// </summary>
[TransformerModel(Config = "Models/tiny-cross-encoder/config.json", SeqLen = 32, Batch = 8)]
public partial class TinyCrossEncoder { }
