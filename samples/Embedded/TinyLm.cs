using TransformerGen;

namespace EmbeddedSample;

/// <summary>
/// The model of samples/TinyLm, declared again (the same sizes) with its trained checkpoint built in: the
/// generator checks every tensor of the checkpoint against this declaration at compile time, and
/// <c>FromBuiltInWeights()</c> loads it from the assembly. The default build holds the weight matrices in 8 bits
/// (weights/int8) and decodes with them; <c>-p:EmbeddedWeights=fp32</c> builds the fp32 checkpoint in and decodes in fp32.
/// </summary>
#if EMBEDDED_FP32
[TransformerModel(Vocab = 64, DModel = 128, Heads = 4, Layers = 4, DFF = 512, SeqLen = 64, Batch = 16,
    Positional = Positional.Rotary, Norm = NormPlacement.Pre, Activation = Activation.Gelu, Weights = Weights)]
#else
[TransformerModel(Vocab = 64, DModel = 128, Heads = 4, Layers = 4, DFF = 512, SeqLen = 64, Batch = 16,
    Positional = Positional.Rotary, Norm = NormPlacement.Pre, Activation = Activation.Gelu, Weights = Weights, WeightType = WeightType.Int8)]
#endif
public partial class TinyLm
{
    /// <summary>The checkpoint's file name, which is also the name of the resource that holds it.</summary>
    public const string Weights = "tinylm.safetensors";
}
