using TransformerGen;

namespace EmbeddingsSample;

/// <summary>
/// google/embeddinggemma-300m, compiled from its config.json and the sentence-transformers modules beside it (a
/// bidirectional Gemma 3: 24 layers, 768 wide, 3 query heads of 256 on one key/value head, RMSNorm × (1 + w) around each
/// sub-layer, GEGLU of 1152, sliding layers that see 256 positions either side, every sixth layer global; then the mean
/// over the non-padding tokens, two Dense layers without bias, 768 → 3072 → 768, and L2 normalization).
/// </summary>
/// <remarks>
/// SeqLen is 512 of the model's 2048 positions: 512 Gemma tokens hold a long paragraph, far more than the sentences and
/// queries the sample embeds, while SeqLen sizes the workspace. Each batch still runs at the texts' own lengths; a longer
/// text is cut at 512 ids (the sample says how many were). The vocabulary of 262,144 ids is two thirds of the 308 million
/// parameters.
/// </remarks>
[TransformerModel(Config = "models/embeddinggemma-300m/config.json", SeqLen = 512, Batch = 8, Head = EncoderHead.SentenceEmbedding)]
public partial class EmbeddingGemma300m { }
