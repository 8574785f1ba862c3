using TransformerGen;

namespace TransformerGen.Model.Tests;

// Tiny models with sizes that are not multiples of any SIMD width, one per positional encoding and norm placement.
// Vocab 11, DModel 12, Heads 3 (head size 4), DFF 20, SeqLen 5, Batch 2.

[TransformerModel(Vocab = 11, DModel = 12, Heads = 3, Layers = 2, DFF = 20, SeqLen = 5, Batch = 2,
    Positional = Positional.Sinusoidal, Norm = NormPlacement.Pre, Activation = Activation.Gelu)]
public partial class SinusoidalPre { }

[TransformerModel(Vocab = 11, DModel = 12, Heads = 3, Layers = 2, DFF = 20, SeqLen = 5, Batch = 2,
    Positional = Positional.Sinusoidal, Norm = NormPlacement.Post, Activation = Activation.Relu)]
public partial class SinusoidalPost { }

[TransformerModel(Vocab = 11, DModel = 12, Heads = 3, Layers = 2, DFF = 20, SeqLen = 5, Batch = 2,
    Positional = Positional.Learned, Norm = NormPlacement.Pre, TiedEmbeddings = false)]
public partial class LearnedPre { }

[TransformerModel(Vocab = 11, DModel = 12, Heads = 3, Layers = 2, DFF = 20, SeqLen = 5, Batch = 2,
    Positional = Positional.Learned, Norm = NormPlacement.Post, Activation = Activation.Gelu, LabelSmoothing = 0.1f)]
public partial class LearnedPost { }

[TransformerModel(Vocab = 11, DModel = 12, Heads = 3, Layers = 2, DFF = 20, SeqLen = 5, Batch = 2,
    Positional = Positional.Rotary, Norm = NormPlacement.Pre)]
public partial class RotaryPre { }

[TransformerModel(Vocab = 11, DModel = 12, Heads = 3, Layers = 2, DFF = 20, SeqLen = 5, Batch = 2,
    Positional = Positional.Rotary, Norm = NormPlacement.Post, TiedEmbeddings = false, Activation = Activation.Relu)]
public partial class RotaryPost { }

/// <summary>Dropout and label smoothing on; the test can replay the same dropout masks.</summary>
[TransformerModel(Vocab = 11, DModel = 12, Heads = 3, Layers = 2, DFF = 20, SeqLen = 5, Batch = 2,
    Positional = Positional.Learned, Norm = NormPlacement.Pre, Dropout = 0.2f, LabelSmoothing = 0.1f)]
public partial class WithDropout
{
    /// <summary>Restarts the dropout masks, so two forward passes draw the same masks.</summary>
    public void ReplayDropout(ulong seed) => DropoutRng.Reseed(seed);
}

/// <summary>A larger model for the memorization and allocation tests (still odd sizes).</summary>
[TransformerModel(Vocab = 29, DModel = 36, Heads = 6, Layers = 2, DFF = 72, SeqLen = 13, Batch = 3,
    Positional = Positional.Rotary, Norm = NormPlacement.Pre, Dropout = 0.1f)]
public partial class Medium { }

/// <summary>The same model as <see cref="SinusoidalPre"/>, with the checkpoint weights/tiny.safetensors built in.</summary>
[TransformerModel(Vocab = 11, DModel = 12, Heads = 3, Layers = 2, DFF = 20, SeqLen = 5, Batch = 2,
    Positional = Positional.Sinusoidal, Norm = NormPlacement.Pre, Activation = Activation.Gelu, Weights = "tiny.safetensors")]
public partial class BuiltInWeights { }
