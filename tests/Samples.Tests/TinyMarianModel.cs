using TransformerGen;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// A Marian of opus-mt-en-de's form at toy size (16 wide, 2 encoder and 2 decoder layers, 2 heads, feed-forward 24,
/// 47 ids: the tiny English and German SentencePiece fixtures' pieces numbered by one vocab.json, &lt;/s&gt; = 0,
/// &lt;pad&gt; = 46 and the decoder's start). The Translate sample's tests run it. SeqLen 12 and TargetSeqLen 10 are short
/// so that a test sentence is cut and a translation fills its length.
/// </summary>
[TransformerModel(Config = "Models/tiny-marian/config.json", SeqLen = 12, TargetSeqLen = 10)]
public partial class TinyMarianModel { }
