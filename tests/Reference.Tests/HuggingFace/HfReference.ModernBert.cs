using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace TransformerGen.Reference.Tests.HuggingFace;

// ModernBERT's entry points beyond the encoders' (LastHiddenState, SentenceEmbeddings, EmbeddingGradients) and the
// classifiers' (ClassifierLogits, ClassifierGradients, ClassifierLossAndGradients), which serve it as they are: the
// gradients of the hidden states themselves, and the objectives as tensors for the float64 central differences.
public sealed partial class HfReference
{
    /// <summary>
    /// The gradient of Σ last_hidden_state ⊙ <paramref name="upstream"/> (<c>[B·T·E]</c>, padded positions included) for
    /// every parameter the forward pass reads, by canonical name; with an optional 0/1 <paramref name="attentionMask"/>.
    /// </summary>
    public Dictionary<string, float[]> HiddenStateGradients(int[] tokens, int batch, int seqLen, float[] upstream, int[]? attentionMask = null)
    {
        using DisposeScope scope = NewDisposeScope();
        return Gradients(HiddenStateObjective(tokens, batch, seqLen, upstream, attentionMask));
    }

    /// <summary>Σ last_hidden_state ⊙ upstream, as a tensor.</summary>
    internal Tensor HiddenStateObjective(int[] tokens, int batch, int seqLen, float[] upstream, int[]? attentionMask = null)
    {
        int width = _model.Config.HiddenSize;
        if (upstream.Length != batch * seqLen * width) throw new ArgumentException($"upstream has {upstream.Length} values, not {batch}·{seqLen}·{width}");
        Tensor hidden = _model.LastHiddenState(Ids(tokens, batch, seqLen), Mask(attentionMask, batch, seqLen));
        return (hidden * tensor(upstream, new long[] { batch, seqLen, width }).to(_model.Dtype)).sum();
    }

    /// <summary>Σ classifier logits ⊙ upstream (<c>[B·labels]</c>), as a tensor.</summary>
    internal Tensor ClassifierObjective(int[] tokens, int[] attentionMask, int batch, int seqLen, float[] upstream)
    {
        Tensor logits = ClassifierOutput(Ids(tokens, batch, seqLen), Mask(attentionMask, batch, seqLen)!);
        if (upstream.Length != logits.numel()) throw new ArgumentException($"upstream has {upstream.Length} values, the logits {logits.numel()}");
        return (logits * tensor(upstream, logits.shape).to(_model.Dtype)).sum();
    }
}
