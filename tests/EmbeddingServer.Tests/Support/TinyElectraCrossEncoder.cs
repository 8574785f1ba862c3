using TransformerGen;

namespace TransformerGen.EmbeddingServer.Tests.Support;

/// <summary>
/// A small ELECTRA cross-encoder (32-wide embeddings projected to 48 wide, 2 layers, 4 heads, 256 ids;
/// <c>ElectraForSequenceClassification</c> with one label) compiled from Models/tiny-electra-cross-encoder/config.json the
/// way the server compiles ms-marco-electra-base: one score per sequence. SeqLen 32 and Batch 8, as <see cref="TinyCrossEncoder"/>.
/// </summary>
[TransformerModel(Config = "Models/tiny-electra-cross-encoder/config.json", SeqLen = 32, Batch = 8)]
public partial class TinyElectraCrossEncoder { }
