using TransformerGen;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// An MPNet of all-mpnet-base-v2's form at toy size (18 wide, 2 layers, 2 heads of 9, one relative-position bias of 32
/// buckets for the encoder, RoBERTa's positions from the padding id 1, post-LN, mean pooling). Its 1,001 ids are the tiny
/// WordPiece vocabulary <see cref="Support.TinyMPNet"/> writes and the &lt;mask&gt; added after it. The Embeddings
/// sample's tests run it; SeqLen 32 holds every test text, and reaches the bias's logarithmic buckets.
/// </summary>
[TransformerModel(Config = "Models/tiny-mpnet/config.json", SeqLen = 32, Batch = 8, Head = EncoderHead.SentenceEmbedding)]
public partial class TinyMPNetModel { }
