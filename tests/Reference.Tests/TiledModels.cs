using TransformerGen;

namespace TransformerGen.Reference.Tests
{
    // Models of Models.cs and EncoderModels.cs with tiled training attention (AttentionKernel.Tiled, which Auto picks only
    // from 512 positions): the same comparisons with libtorch, through Attention.FlashForward/FlashBackward. Together:
    // causal decoder attention with rotary positions, an encoder–decoder with padding, a window and cross-attention of
    // another length, and a mean-pooling encoder with padding.

    [TransformerModel(Vocab = 13, DModel = 20, Heads = 2, Layers = 2, DFF = 36, SeqLen = 7, Batch = 3,
        Positional = Positional.Rotary, Norm = NormPlacement.Pre, Activation = Activation.Gelu, TiedEmbeddings = false,
        AttentionKernel = AttentionKernel.Tiled)]
    public partial class TiledRotaryPreGelu { }

    [TransformerModel(Vocab = 13, DModel = 20, Heads = 4, Layers = 2, DFF = 36, SeqLen = 7, Batch = 3,
        Positional = Positional.Learned, Norm = NormPlacement.Post, Activation = Activation.Gelu, AttentionKernel = AttentionKernel.Tiled)]
    public partial class TiledLearnedPostGelu { }

    [TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 13, TargetVocab = 11, DModel = 20, Heads = 4, EncoderLayers = 1, DecoderLayers = 2,
        DFF = 23, SeqLen = 7, TargetSeqLen = 6, Batch = 3, PadToken = 0, BosToken = 1, EosToken = 2,
        Positional = Positional.Sinusoidal, Norm = NormPlacement.Pre, Activation = Activation.Relu, AttentionWindow = 2, LabelSmoothing = 0.15f,
        AttentionKernel = AttentionKernel.Tiled)]
    public partial class TiledSinusoidalPreWindowSeq2Seq { }

    [TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 13, Classes = 5, DModel = 20, Heads = 4, Layers = 2, DFF = 23, SeqLen = 7, Batch = 3,
        PadToken = 0, Pooling = Pooling.Mean, Positional = Positional.Learned, Norm = NormPlacement.Pre, Activation = Activation.Gelu, LabelSmoothing = 0.1f,
        AttentionKernel = AttentionKernel.Tiled)]
    public partial class TiledMeanPoolPreClassifier { }
}

namespace TransformerGen.Reference.Tests.HuggingFace
{
    /// <summary>Llama with 2 key/value heads for 4 query heads, tiled: grouped-query attention through the tiled kernel.</summary>
    [TransformerModel(Config = "HuggingFace/Configs/llama-gqa/config.json", SeqLen = 13, Batch = 2, AttentionKernel = AttentionKernel.Tiled)]
    public partial class HfLlamaGqaTiledModel { }
}
