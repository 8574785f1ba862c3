using System;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace TransformerGen.Reference.Tests.HuggingFace;

// T5's own entry points. Its translation ones are the encoder–decoders' (HfReference.Marian.cs): TranslationLogits,
// TranslationLossAndGradients, EncoderLastHiddenState, NextTokenLogits, CachedDecoderLogits, GreedyTranslation.
public sealed partial class HfReference
{
    /// <summary>
    /// libtorch's T5 bucket (<c>T5Attention._relative_position_bucket</c>, float32 log as transformers runs it) of each
    /// relative position key − query in <paramref name="relativePositions"/>: bidirectional as the encoder reads it, or
    /// one-directional as the decoder does, for <paramref name="buckets"/> buckets (relative_attention_num_buckets) and
    /// <paramref name="maxDistance"/> (relative_attention_max_distance).
    /// </summary>
    public static int[] T5RelativePositionBuckets(int[] relativePositions, bool bidirectional, int buckets, int maxDistance)
    {
        ArgumentNullException.ThrowIfNull(relativePositions);
        if (buckets < (bidirectional ? 4 : 2)) throw new ArgumentOutOfRangeException(nameof(buckets), $"{buckets} buckets leave no exact ones");
        using DisposeScope scope = NewDisposeScope();
        Tensor deltas = tensor(relativePositions.Select(p => (long)p).ToArray(), ScalarType.Int64);
        return HfT5.RelativePositionBucket(deltas, bidirectional, buckets, maxDistance).data<long>().ToArray().Select(b => (int)b).ToArray();
    }

    /// <summary>
    /// T5: a stack's position bias <c>[H·queries·keys]</c> (compute_bias, before any mask), the encoder's (bidirectional) or
    /// the decoder's (one-directional), for query positions <paramref name="firstQuery"/>… over key positions 0…keys−1.
    /// </summary>
    public float[] T5PositionBias(bool decoder, int firstQuery, int queries, int keys)
    {
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        return Values(T5.PositionBias(decoder, firstQuery, queries, keys));
    }

    private HfT5 T5 => _model as HfT5 ?? throw new InvalidOperationException($"{ModelType} is not T5");
}
