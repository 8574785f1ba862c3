using TransformerGen;

namespace TinyLmSample;

/// <summary>
/// A character-level language model: 4 pre-LN layers of width 128 with 4 heads, rotary positions, GELU, a
/// 64-character window and 16 windows per step. The generator writes its forward, backward and cached
/// inference passes at build time.
/// </summary>
[TransformerModel(Vocab = 64, DModel = 128, Heads = 4, Layers = 4, DFF = 512, SeqLen = 64, Batch = 16,
    Positional = Positional.Rotary, Norm = NormPlacement.Pre, Activation = Activation.Gelu)]
public partial class TinyLm { }
