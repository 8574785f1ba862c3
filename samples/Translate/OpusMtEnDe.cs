using TransformerGen;

namespace TranslateSample;

/// <summary>
/// Helsinki-NLP/opus-mt-en-de, compiled from its config.json (Marian: 6 encoder and 6 decoder layers, 512 wide, 8 heads,
/// feed-forward 2048 with SiLU, post-LN, one token table of 58,101 ids shared by both stacks and the head, scaled by √512,
/// split sinusoidal positions, final_logits_bias).
/// </summary>
/// <remarks>
/// The model knows 512 positions, but SeqLen and TargetSeqLen are 256: they size the encoder's workspace, the decoder's
/// key/value cache and the cross-attention cache, and a sentence of 256 SentencePiece tokens is already a long paragraph
/// (an English sentence is 10 to 40). Half the positions halves those buffers and beam search's copies of the decoder
/// cache. A longer source is cut at 256 tokens, keeping its closing &lt;/s&gt; (the sample says
/// so); a translation stops at 256 tokens.
/// </remarks>
[TransformerModel(Config = "models/opus-mt-en-de/config.json", SeqLen = 256, TargetSeqLen = 256)]
public partial class OpusMtEnDe { }
