using TransformerGen;

namespace TransformerGen.Reference.Tests;

// Encoder–decoder and encoder-only models checked against libtorch (TorchEncoderDecoder). Sizes that are multiples
// of no SIMD width: source vocabulary 13, target vocabulary 11, 5 classes, DModel 20 with 4 heads of 5 channels (an odd
// head size), DFF 23, SeqLen 7, TargetSeqLen 6, Batch 3; rotary positions need an even head size: DModel 12, 2 heads of
// 6. Ids 0 = padding, 1 = begin, 2 = end.
// Together they cover each positional encoding with each norm placement, both activations, tied and untied LM heads,
// label smoothing, scaled embeddings, attention windows, padding and no padding, different encoder and decoder depths,
// mean and first-token pooling and the tagging head. The reference reads each model's attribute, so the two cannot
// drift apart.

// ----- encoder–decoder

/// <summary>The paper's model: sinusoids, post-LN, ReLU, embeddings × √DModel; untied, label smoothing 0.1.</summary>
[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 13, TargetVocab = 11, DModel = 20, Heads = 4, EncoderLayers = 2, DecoderLayers = 2,
    DFF = 23, SeqLen = 7, TargetSeqLen = 6, Batch = 3, PadToken = 0, BosToken = 1, EosToken = 2,
    Positional = Positional.Sinusoidal, Norm = NormPlacement.Post, Activation = Activation.Relu, ScaleEmbeddings = true,
    TiedEmbeddings = false, LabelSmoothing = 0.1f)]
public partial class PaperSeq2Seq { }

[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 13, TargetVocab = 11, DModel = 20, Heads = 4, EncoderLayers = 2, DecoderLayers = 1,
    DFF = 23, SeqLen = 7, TargetSeqLen = 6, Batch = 3, PadToken = 0, BosToken = 1, EosToken = 2,
    Positional = Positional.Learned, Norm = NormPlacement.Pre, Activation = Activation.Gelu)]
public partial class LearnedPreGeluSeq2Seq { }

[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 13, TargetVocab = 11, DModel = 20, Heads = 4, EncoderLayers = 1, DecoderLayers = 2,
    DFF = 23, SeqLen = 7, TargetSeqLen = 6, Batch = 3, PadToken = 0, BosToken = 1, EosToken = 2,
    Positional = Positional.Sinusoidal, Norm = NormPlacement.Pre, Activation = Activation.Relu, AttentionWindow = 2, LabelSmoothing = 0.15f)]
public partial class SinusoidalPreWindowSeq2Seq { }

/// <summary>No padding id: nothing is masked but the future and the window; ignored targets become BOS in the decoder's input.</summary>
[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 13, TargetVocab = 11, DModel = 20, Heads = 4, Layers = 2,
    DFF = 23, SeqLen = 7, TargetSeqLen = 6, Batch = 3, BosToken = 1, EosToken = 2,
    Positional = Positional.Learned, Norm = NormPlacement.Post, Activation = Activation.Gelu, AttentionWindow = 3, TiedEmbeddings = false)]
public partial class LearnedPostWindowSeq2Seq { }

[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 13, TargetVocab = 11, DModel = 12, Heads = 2, Layers = 2,
    DFF = 23, SeqLen = 7, TargetSeqLen = 6, Batch = 3, PadToken = 0, BosToken = 1, EosToken = 2,
    Positional = Positional.Rotary, Norm = NormPlacement.Pre, Activation = Activation.Gelu, AttentionWindow = 2, TiedEmbeddings = false, LabelSmoothing = 0.2f)]
public partial class RotaryPreWindowSeq2Seq { }

[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 13, TargetVocab = 11, DModel = 12, Heads = 2, EncoderLayers = 2, DecoderLayers = 1,
    DFF = 23, SeqLen = 7, TargetSeqLen = 6, Batch = 3, PadToken = 0, BosToken = 1, EosToken = 2,
    Positional = Positional.Rotary, Norm = NormPlacement.Post, Activation = Activation.Relu, ScaleEmbeddings = true)]
public partial class RotaryPostReluSeq2Seq { }

// ----- encoder-only

[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 13, Classes = 5, DModel = 20, Heads = 4, Layers = 2, DFF = 23, SeqLen = 7, Batch = 3,
    PadToken = 0, Pooling = Pooling.Mean, Positional = Positional.Learned, Norm = NormPlacement.Pre, Activation = Activation.Gelu, LabelSmoothing = 0.1f)]
public partial class MeanPoolPreClassifier { }

[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 13, Classes = 5, DModel = 20, Heads = 4, Layers = 2, DFF = 23, SeqLen = 7, Batch = 3,
    PadToken = 0, Pooling = Pooling.FirstToken, Positional = Positional.Sinusoidal, Norm = NormPlacement.Post, Activation = Activation.Relu,
    ScaleEmbeddings = true, AttentionWindow = 2)]
public partial class FirstTokenPostWindowClassifier { }

[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 13, Classes = 5, DModel = 12, Heads = 2, Layers = 2, DFF = 23, SeqLen = 7, Batch = 3,
    PadToken = 0, Pooling = Pooling.Mean, Positional = Positional.Rotary, Norm = NormPlacement.Post, Activation = Activation.Gelu)]
public partial class RotaryPostMeanClassifier { }

[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 13, Classes = 5, DModel = 12, Heads = 2, Layers = 2, DFF = 23, SeqLen = 7, Batch = 3,
    PadToken = 0, Head = EncoderHead.Tagging, Positional = Positional.Rotary, Norm = NormPlacement.Pre, Activation = Activation.Relu, LabelSmoothing = 0.1f)]
public partial class RotaryPreTagger { }

/// <summary>A tagger without a padding id, every position tagged; a window of 1 (each token sees its neighbours only).</summary>
[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 13, Classes = 5, DModel = 20, Heads = 4, Layers = 2, DFF = 23, SeqLen = 7, Batch = 3,
    Head = EncoderHead.Tagging, Positional = Positional.Learned, Norm = NormPlacement.Post, Activation = Activation.Gelu, AttentionWindow = 1)]
public partial class LearnedPostWindowTagger { }
