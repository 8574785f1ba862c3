using TransformerGen;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// An M2M100 of nllb-200-distilled-600M's form at toy size (16 wide, 2 encoder and 2 decoder layers, 2 heads, feed-forward
/// 24 with ReLU, fairseq's ids: &lt;s&gt; 0, &lt;pad&gt; 1, &lt;/s&gt; 2 and the decoder's start). Its 274 ids are exactly the tiny NLLB
/// tokenizer's (fairseq's 4 specials, 67 pieces, the 202 language codes, &lt;mask&gt;); the real config has 2 more ids than
/// its tokenizer, which a random model could choose and no tokenizer decodes. The Translate sample's tests run it; SeqLen
/// 12 and TargetSeqLen 10 are short so that a test sentence is cut and a translation fills its length.
/// </summary>
[TransformerModel(Config = "Models/tiny-nllb/config.json", SeqLen = 12, TargetSeqLen = 10)]
public partial class TinyNllbModel { }
