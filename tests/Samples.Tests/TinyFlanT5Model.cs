using TransformerGen;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// A T5 of flan-t5-small's form at toy size (16 wide, 2 encoder and 2 decoder layers, 2 heads of 6 (12 ≠ 16), gated
/// feed-forward 24 with the tanh GELU, 8 relative-position buckets to distance 20, an untied head; &lt;pad&gt; 0 the decoder's
/// start, &lt;/s&gt; 1). Its 57 rows are the tiny T5 tokenizer's 54 ids and 3 more, as flan-t5-small's 32128 rows hold its
/// tokenizer's 32100 ids and 28 rows that are no token. The Translate sample's Flan-T5 tests run it; SeqLen 16 and
/// TargetSeqLen 10 are short so that an instructed sentence is cut and a translation fills its length.
/// </summary>
[TransformerModel(Config = "Models/tiny-flan-t5/config.json", SeqLen = 16, TargetSeqLen = 10)]
public partial class TinyFlanT5Model { }
