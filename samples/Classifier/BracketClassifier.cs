using TransformerGen;

namespace ClassifierSample;

/// <summary>
/// An encoder-only model (BERT-like, pre-LN, learned positions) that reads a bracket string behind a [CLS] token
/// and says whether it is balanced. Ids: 0 padding, 1 [CLS], 2 "(", 3 ")".
/// </summary>
[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 4, Classes = 2, DModel = 64, Heads = 4, Layers = 3, DFF = 128,
    SeqLen = 25, Batch = 32, PadToken = 0, Pooling = Pooling.FirstToken,
    Positional = Positional.Learned, Norm = NormPlacement.Pre, Activation = Activation.Gelu)]
public partial class BracketClassifier { }
