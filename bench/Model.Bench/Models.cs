using TransformerGen;

namespace TransformerGen.Model.Bench;

// The three configurations, decoder-only with the attribute's defaults otherwise (pre-LN, sinusoidal
// positions, exact GELU, tied LM head, no dropout).

/// <summary>tiny: 0.12 M parameters, 256 tokens per step.</summary>
[TransformerModel(Vocab = 256, DModel = 64, Heads = 4, Layers = 2, DFF = 256, SeqLen = 32, Batch = 8)]
public partial class TinyGpt { }

/// <summary>small: 3.4 M parameters, 1024 tokens per step.</summary>
[TransformerModel(Vocab = 1024, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 128, Batch = 8)]
public partial class SmallGpt { }

/// <summary>base (the paper's base sizes): 21 M parameters, 512 tokens per step.</summary>
[TransformerModel(Vocab = 4096, DModel = 512, Heads = 8, Layers = 6, DFF = 2048, SeqLen = 128, Batch = 4)]
public partial class BaseGpt { }
