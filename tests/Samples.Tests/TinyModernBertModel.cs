using TransformerGen;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// A ModernBERT of gte-modernbert-base's form at toy size: 18 wide, 3 heads of 6, a GEGLU of 29, 4 pre-norm layers of which
/// 0 and 3 are global (rotary base 160000) and 1 and 2 local, seeing 2 positions either side (local_attention 4, base
/// 10000), LayerNorms without bias, and the [CLS] token's state as its sentence-transformers modules say (1_Pooling beside
/// the config). Its 50,368 ids are ModernBERT's, which the tiny tokenizer keeps (<see cref="Support.TinyModernBertTokenizer"/>:
/// [CLS] 50281, [SEP] 50282, [PAD] 50283). The Embeddings sample's tests run it; SeqLen 32 holds every test text, most of
/// them longer than the local layers' window of 5.
/// </summary>
[TransformerModel(Config = "Models/tiny-modernbert/config.json", SeqLen = 32, Batch = 8, Head = EncoderHead.SentenceEmbedding)]
public partial class TinyModernBertModel { }
