using TransformerGen;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// cross-encoder/ms-marco-MiniLM-L-6-v2 as the server's reranker runs it: compiled from its config.json (BERT, 6 layers,
/// 384 wide, 12 heads; <c>BertForSequenceClassification</c> with one label, so <c>Predict</c> gives one relevance score
/// per sequence), SeqLen 512 (sentence-transformers' CrossEncoder cuts a pair at the tokenizer's model_max_length, 512 for
/// this model), up to 8 pairs a batch.
/// </summary>
/// <remarks>
/// As for the embedder, Batch and SeqLen size the workspace and bound a batch; the batcher's token budget
/// (<c>--max-batch-tokens</c>, 2,048 by default) decides how full a batch gets. Batch 8 rather than the embedder's 16: a
/// pair is longer than a sentence, so the budget fills at about 8 pairs of 256 tokens anyway, and the workspace of
/// 8 · 512 = 4,096 tokens is about the embedder's (240 MB an instance besides the shared weights, against 478 MB at
/// Batch 16).
/// </remarks>
[TransformerModel(Config = "models/ms-marco-MiniLM-L-6-v2/config.json", SeqLen = 512, Batch = 8)]
public partial class ServedMsMarcoMiniLm { }
