using TransformerGen;

namespace Seq2SeqSample;

/// <summary>
/// The paper's Transformer, small: an encoder–decoder with post-LN, sinusoidal positions, embeddings scaled by
/// √DModel, ReLU, and label smoothing 0.1, learning to reverse digit strings of 1 to 10 digits.
/// Ids: 0 padding, 1 begin, 2 end, 3–12 the digits 0–9.
/// </summary>
[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 13, DModel = 64, Heads = 4, Layers = 2, DFF = 128,
    SeqLen = 10, TargetSeqLen = 11, Batch = 32, PadToken = 0, BosToken = 1, EosToken = 2,
    Positional = Positional.Sinusoidal, Norm = NormPlacement.Post, Activation = Activation.Relu,
    ScaleEmbeddings = true, LabelSmoothing = 0.1f)]
public partial class Reverser { }
