using TransformerGen;

namespace TranslateSample;

/// <summary>
/// google/flan-t5-small, compiled from its config.json (T5 v1.1 as instruction-tuned by Flan: 8 encoder and 8 decoder
/// layers, 512 wide, 6 heads of 64 (384 ≠ 512), gated feed-forward 1024 with the tanh GELU, pre-norm RMSNorm, no
/// positions but a learned relative-position bias per stack (32 buckets, distances to 128), one token table of 32,128 rows
/// shared by both stacks and an untied head). The decoder starts from &lt;pad&gt; (0) and ends at &lt;/s&gt; (1).
/// </summary>
/// <remarks>
/// T5 has no position table, so the lengths are the sample's choice. SeqLen is 512, the tokenizer's model_max_length and
/// the length Flan-T5 was fine-tuned on: an instruction and a text to summarize or a question with its context fit. TargetSeqLen
/// is 256: transformers' generate stops at 20 tokens unless told, and a translation, an answer or a summary is far shorter
/// than 256; it sizes the decoder's key/value cache (8 layers × 384 keys and values per position) and beam search's copies
/// of it. A longer source is cut at 512 tokens, keeping its closing &lt;/s&gt;.
/// </remarks>
[TransformerModel(Config = "models/flan-t5-small/config.json", SeqLen = 512, TargetSeqLen = 256)]
public partial class FlanT5Small { }
