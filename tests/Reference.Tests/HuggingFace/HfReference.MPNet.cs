using System;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace TransformerGen.Reference.Tests.HuggingFace;

// MPNet's own entry points; its sentence embeddings, hidden states and gradients are the encoders' (SentenceEmbeddings,
// LastHiddenState, EmbeddingGradients).
public sealed partial class HfReference
{
    /// <summary>
    /// libtorch's MPNet bucket (<c>MPNetEncoder.relative_position_bucket</c>: 32 buckets, max distance 128, float32 log as
    /// transformers runs it) of each relative position key − query in <paramref name="relativePositions"/>.
    /// </summary>
    public static int[] MPNetRelativePositionBuckets(int[] relativePositions)
    {
        ArgumentNullException.ThrowIfNull(relativePositions);
        using DisposeScope scope = NewDisposeScope();
        Tensor deltas = tensor(relativePositions.Select(p => (long)p).ToArray(), ScalarType.Int64);
        return HfMPNet.RelativePositionBucket(deltas).data<long>().ToArray().Select(b => (int)b).ToArray();
    }

    /// <summary>MPNet: the encoder's position bias <c>[H·T·T]</c> (compute_position_bias, before the mask) for <paramref name="length"/> tokens.</summary>
    public float[] MPNetPositionBias(int length)
    {
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        return Values(MPNet.PositionBias(length));
    }

    /// <summary>MPNet: the position ids <c>[B·T]</c> of <paramref name="tokens"/> (RoBERTa's, from the hard-coded padding id 1).</summary>
    public int[] MPNetPositionIds(int[] tokens, int batch, int seqLen)
    {
        using DisposeScope scope = NewDisposeScope();
        _ = MPNet;
        return HfMPNet.PositionIds(Ids(tokens, batch, seqLen)).data<long>().ToArray().Select(p => (int)p).ToArray();
    }

    private HfMPNet MPNet => _model as HfMPNet ?? throw new InvalidOperationException($"{ModelType} is not MPNet");
}
