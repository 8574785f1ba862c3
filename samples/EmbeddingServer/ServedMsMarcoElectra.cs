using TransformerGen;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// cross-encoder/ms-marco-electra-base as the server's reranker runs it: compiled from its config.json (ELECTRA, 12
/// layers, 768 wide with 768-wide embeddings, 12 heads; <c>ElectraForSequenceClassification</c> with one label, so
/// <c>Predict</c> gives one relevance score per sequence), with <see cref="ServedMsMarcoMiniLm"/>'s SeqLen 512 and Batch 8,
/// for the same reasons (CrossEncoder cuts a pair at the tokenizer's model_max_length, 512; the token budget fills at
/// about 8 pairs anyway). Its tokenizer is BERT's WordPiece (vocab.txt), and its pairs carry token types as BERT's do.
/// </summary>
[TransformerModel(Config = "models/ms-marco-electra-base/config.json", SeqLen = 512, Batch = 8)]
public partial class ServedMsMarcoElectra { }
