using TransformerGen;

namespace EmbeddedSample;

/// <summary>
/// The model of samples/TinyLm, declared again (the same sizes) with its trained checkpoint built in: the
/// generator checks every tensor of weights/tinylm.safetensors against this declaration at compile time, and
/// <c>FromBuiltInWeights()</c> loads it from the assembly.
/// </summary>
[TransformerModel(Vocab = 64, DModel = 128, Heads = 4, Layers = 4, DFF = 512, SeqLen = 64, Batch = 16,
    Positional = Positional.Rotary, Norm = NormPlacement.Pre, Activation = Activation.Gelu, Weights = Weights)]
public partial class TinyLm
{
    /// <summary>The checkpoint's file name, which is also the name of the resource that holds it.</summary>
    public const string Weights = "tinylm.safetensors";
}
