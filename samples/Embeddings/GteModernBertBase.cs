using TransformerGen;

namespace EmbeddingsSample;

/// <summary>
/// Alibaba-NLP/gte-modernbert-base, compiled from its config.json and the sentence-transformers modules beside it
/// (ModernBERT: 22 pre-norm layers, 768 wide, 12 heads of 64, LayerNorms without bias and none before the first layer's
/// attention, a GEGLU feed-forward of 1152 with the erf GELU, no biases in the projections, rotary positions; every third
/// layer from the first is global with rotary base 160000, the others see 64 positions either side with base 10000; then
/// the [CLS] token's hidden state, as 1_Pooling/config.json asks, and L2 normalization).
/// </summary>
/// <remarks>
/// SeqLen is 512 of the model's 8192 positions: 512 tokens hold a long paragraph, far more than the sentences and
/// queries the sample embeds, while SeqLen sizes the workspace (8 × 512 positions at 768 wide, and the global layers'
/// attention scores grow with its square). Each batch still runs at the texts' own lengths; a longer text is cut at 512
/// ids, [SEP] kept (the sample says how many were). Its texts take no prefix: the model card embeds queries and documents
/// as they are.
/// </remarks>
[TransformerModel(Config = "models/gte-modernbert-base/config.json", SeqLen = 512, Batch = 8, Head = EncoderHead.SentenceEmbedding)]
public partial class GteModernBertBase { }
