using TransformerGen;

namespace TransformerGen.Reference.Tests;

// Models checked against libtorch. Sizes that are multiples of no SIMD width: Vocab 13, DModel 20, DFF 36,
// SeqLen 7, Batch 3, 2 layers; 4 heads of 5 channels (an odd head size), except with rotary positions, which
// need an even head size: 2 heads of 10.
// Together they cover each positional encoding with each norm placement, both activations, tied and untied
// LM heads, and label smoothing on and off. The reference reads each model's attribute, so the two cannot
// drift apart.

[TransformerModel(Vocab = 13, DModel = 20, Heads = 4, Layers = 2, DFF = 36, SeqLen = 7, Batch = 3,
    Positional = Positional.Sinusoidal, Norm = NormPlacement.Pre, Activation = Activation.Gelu, LabelSmoothing = 0.1f)]
public partial class SinusoidalPreGelu { }

[TransformerModel(Vocab = 13, DModel = 20, Heads = 4, Layers = 2, DFF = 36, SeqLen = 7, Batch = 3,
    Positional = Positional.Sinusoidal, Norm = NormPlacement.Post, Activation = Activation.Relu, TiedEmbeddings = false)]
public partial class SinusoidalPostRelu { }

[TransformerModel(Vocab = 13, DModel = 20, Heads = 4, Layers = 2, DFF = 36, SeqLen = 7, Batch = 3,
    Positional = Positional.Learned, Norm = NormPlacement.Pre, Activation = Activation.Relu, TiedEmbeddings = false, LabelSmoothing = 0.1f)]
public partial class LearnedPreRelu { }

[TransformerModel(Vocab = 13, DModel = 20, Heads = 4, Layers = 2, DFF = 36, SeqLen = 7, Batch = 3,
    Positional = Positional.Learned, Norm = NormPlacement.Post, Activation = Activation.Gelu)]
public partial class LearnedPostGelu { }

[TransformerModel(Vocab = 13, DModel = 20, Heads = 2, Layers = 2, DFF = 36, SeqLen = 7, Batch = 3,
    Positional = Positional.Rotary, Norm = NormPlacement.Pre, Activation = Activation.Gelu, TiedEmbeddings = false)]
public partial class RotaryPreGelu { }

[TransformerModel(Vocab = 13, DModel = 20, Heads = 2, Layers = 2, DFF = 36, SeqLen = 7, Batch = 3,
    Positional = Positional.Rotary, Norm = NormPlacement.Post, Activation = Activation.Relu, LabelSmoothing = 0.2f)]
public partial class RotaryPostRelu { }
