using TransformerGen;

namespace EmbeddedSample;

/// <summary>
/// The model of samples/TinyLm, declared again so this program can carry its own generated code: every size
/// that shapes a parameter is the same, so TinyLm's checkpoint loads here unchanged.
/// </summary>
[TransformerModel(Vocab = 64, DModel = 128, Heads = 4, Layers = 4, DFF = 512, SeqLen = 64, Batch = 16,
    Positional = Positional.Rotary, Norm = NormPlacement.Pre, Activation = Activation.Gelu)]
public partial class TinyLm { }
