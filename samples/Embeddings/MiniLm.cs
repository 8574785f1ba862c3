using TransformerGen;

namespace EmbeddingsSample;

/// <summary>
/// sentence-transformers/all-MiniLM-L6-v2, compiled from its config.json (BERT: 6 layers, 384 wide, 12 heads, post-LN,
/// learned positions, erf GELU) with mean pooling over the non-padding tokens and L2 normalization.
/// </summary>
/// <remarks>
/// SeqLen is 128, not sentence-transformers' max_seq_length of 256: the model was fine-tuned on pairs truncated to 128
/// word pieces and the sentences a search embeds are far shorter. Each batch runs at the sentences' own lengths (no
/// padding is computed), so SeqLen only bounds a sentence and sizes the workspace. Longer texts are cut at 128 ids (the
/// sample says how many were).
/// </remarks>
[TransformerModel(Config = "models/all-MiniLM-L6-v2/config.json", SeqLen = 128, Batch = 8, Head = EncoderHead.SentenceEmbedding)]
public partial class MiniLm { }
