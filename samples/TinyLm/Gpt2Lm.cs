using TransformerGen;

namespace TinyLmSample;

/// <summary>
/// TinyLm's shape over GPT-2's BPE vocabulary (50,257 ids; <c>--tokenizer gpt2</c>): narrower (width 64, 2 layers) and
/// with 8 windows of 64 tokens per step, because the 50,257-wide output layer dominates the cost (its logits alone are
/// 8·64·50,257 floats). The embedding is tied to the output layer, so the vocabulary is paid for once.
/// </summary>
[TransformerModel(Vocab = 50257, DModel = 64, Heads = 4, Layers = 2, DFF = 256, SeqLen = 64, Batch = 8,
    Positional = Positional.Rotary, Norm = NormPlacement.Pre, Activation = Activation.Gelu)]
public partial class Gpt2Lm { }
