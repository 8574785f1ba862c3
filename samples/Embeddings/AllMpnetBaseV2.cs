using TransformerGen;

namespace EmbeddingsSample;

/// <summary>
/// sentence-transformers/all-mpnet-base-v2, compiled from its config.json (MPNet: 12 layers, 768 wide, 12 heads, post-LN,
/// learned positions counted from the padding id + 1 and a relative-position bias on every layer's scores, erf GELU)
/// with mean pooling over the non-padding tokens and L2 normalization.
/// </summary>
/// <remarks>
/// SeqLen is 384, sentence-transformers' max_seq_length for this model (its table has 512 positions after the padding
/// rows): the model was fine-tuned on texts cut there. Each batch runs at the texts' own lengths, so SeqLen only bounds a
/// text and sizes the workspace; a longer text is cut at 384 ids (the sample says how many were).
/// </remarks>
[TransformerModel(Config = "models/all-mpnet-base-v2/config.json", SeqLen = 384, Batch = 8, Head = EncoderHead.SentenceEmbedding)]
public partial class AllMpnetBaseV2 { }
