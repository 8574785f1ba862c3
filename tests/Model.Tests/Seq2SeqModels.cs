using TransformerGen;

namespace TransformerGen.Model.Tests;

// Encoder–decoder and encoder-only models with odd sizes. Ids: 0 = padding, 1 = begin, 2 = end.
// Source vocabulary 11, target vocabulary 9; source length 6, target length 5; DModel 12, 3 heads, DFF 20.

[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 11, TargetVocab = 9, DModel = 12, Heads = 3,
    EncoderLayers = 2, DecoderLayers = 1, DFF = 20, SeqLen = 6, TargetSeqLen = 5, Batch = 2,
    PadToken = 0, BosToken = 1, EosToken = 2, TiedEmbeddings = false,
    Positional = Positional.Sinusoidal, Norm = NormPlacement.Post, Activation = Activation.Relu, ScaleEmbeddings = true)]
public partial class PaperSeq2Seq { }

[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 11, TargetVocab = 9, DModel = 12, Heads = 3,
    EncoderLayers = 1, DecoderLayers = 2, DFF = 20, SeqLen = 6, TargetSeqLen = 5, Batch = 2,
    PadToken = 0, BosToken = 1, EosToken = 2, Positional = Positional.Learned, Norm = NormPlacement.Pre, LabelSmoothing = 0.1f)]
public partial class LearnedSeq2Seq { }

[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 11, TargetVocab = 9, DModel = 12, Heads = 2,
    Layers = 1, DFF = 20, SeqLen = 6, TargetSeqLen = 5, Batch = 2,
    PadToken = 0, BosToken = 1, EosToken = 2, Positional = Positional.Rotary, Norm = NormPlacement.Pre, AttentionWindow = 2)]
public partial class RotaryWindowSeq2Seq { }

[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 11, Classes = 3, DModel = 12, Heads = 3, Layers = 2, DFF = 20,
    SeqLen = 6, Batch = 3, PadToken = 0, Pooling = Pooling.Mean, Norm = NormPlacement.Pre, Positional = Positional.Learned)]
public partial class MeanClassifier { }

[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 11, Classes = 3, DModel = 12, Heads = 3, Layers = 1, DFF = 20,
    SeqLen = 6, Batch = 3, PadToken = 0, Pooling = Pooling.FirstToken, Norm = NormPlacement.Post, Activation = Activation.Relu)]
public partial class FirstTokenClassifier { }

[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 11, Classes = 4, DModel = 12, Heads = 3, Layers = 2, DFF = 20,
    SeqLen = 6, Batch = 2, PadToken = 0, Head = EncoderHead.Tagging, Positional = Positional.Rotary)]
public partial class Tagger { }
