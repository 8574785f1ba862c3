using TransformerGen;

namespace TranslateSample;

/// <summary>
/// facebook/nllb-200-distilled-600M, compiled from its config.json (M2M100: 12 encoder and 12 decoder layers, 1024 wide,
/// 16 heads, feed-forward 4096 with ReLU, pre-LN with a final norm per stack, one token table of 256,206 ids shared by both
/// stacks and the head, scaled by √1024, fairseq's sinusoidal positions numbered from the padding id, no logits bias).
/// </summary>
/// <remarks>
/// The model knows 1024 positions, but SeqLen and TargetSeqLen are 256. NLLB was trained on sentences (its generation
/// config stops a translation at 200 tokens, and its tokenizer's 1024 is the position table, not a sentence length), and
/// a sentence is 10 to 60 of its tokens, so 256 leaves room for a paragraph. SeqLen sizes the encoder's workspace and the
/// cross-attention cache and TargetSeqLen the decoder's key/value cache: at 1024 wide and 12 layers each position costs
/// 96 KB in each, so a quarter of the positions keeps them at 24 MB instead of 96. A longer source is cut at 256 tokens,
/// keeping its language code and closing &lt;/s&gt;; a translation stops after 255 tokens (the forced target-language code
/// takes one of the decoder's positions).
/// </remarks>
[TransformerModel(Config = "models/nllb-200-distilled-600M/config.json", SeqLen = 256, TargetSeqLen = 256)]
public partial class Nllb200Distilled600M { }
