using TransformerGen;

namespace EmbeddingsSample;

/// <summary>
/// nomic-ai/nomic-embed-text-v1.5, compiled from its config.json (NomicBERT: 12 layers, 768 wide, 12 heads, post-LN,
/// rotary positions with base 1000 on whole heads, a fused Wqkv without biases, a SwiGLU feed-forward of 3072,
/// token types, emb_ln) with mean pooling over the non-padding tokens and L2 normalization.
/// </summary>
/// <remarks>
/// SeqLen is 512, not the 8192 of n_positions: the model was trained on 2048 positions (max_trained_positions), and
/// beyond them its code switches to dynamic NTK rotary scaling, which the compiler refuses; within 2048 the rotation is
/// the trained one. Of those, 512 word pieces hold a long paragraph, far more than the sentences and queries the sample
/// embeds, while SeqLen sizes the workspace (8 × 512 positions at 768 wide, and each layer's attention scores grow with
/// its square). Each batch still runs at the texts' own lengths; a longer text is cut at 512 ids (the sample says how
/// many were).
/// </remarks>
[TransformerModel(Config = "models/nomic-embed-text-v1.5/config.json", SeqLen = 512, Batch = 8, Head = EncoderHead.SentenceEmbedding)]
public partial class NomicEmbedTextV15 { }
