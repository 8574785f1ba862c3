using TransformerGen;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// A NomicBERT of nomic-embed-text-v1.5's form at toy size (16 wide, 2 layers, 2 heads of 8 with rotary positions, the
/// SwiGLU feed-forward's 40 rounded up to 256 as NomicBertGatedMLP does, no biases, post-LN, mean pooling). Its 1,000 ids
/// (padded to 1,024 by pad_vocab_size_multiple 64) are the tiny WordPiece vocabulary <see cref="Support.TinyNomic"/> writes.
/// The Embeddings sample's tests run it; SeqLen 32 holds every prefixed test text.
/// </summary>
[TransformerModel(Config = "Models/tiny-nomic/config.json", SeqLen = 32, Batch = 8, Head = EncoderHead.SentenceEmbedding)]
public partial class TinyNomicModel { }
