using System;
using TransformerGen.Kernels;

namespace TransformerGen;

/// <summary>
/// Where a tiled attention (<c>AttentionKernel.Tiled</c>) finds, in the training workspace, the queries, keys and softmax
/// statistics of the last forward pass, so that <see cref="TransformerModel.AttentionMap"/> can recompute its
/// probabilities <c>[batch, heads, queries, keys]</c> on request: the attention itself keeps none.
/// </summary>
public sealed class TiledAttentionMap
{
    /// <summary>Describes one tiled attention; offsets and strides are in floats of the training workspace.</summary>
    /// <param name="name">The map's name, as the stored kernel's probabilities would be named (<c>layers.0.attention_probabilities</c>).</param>
    /// <param name="batch">Sequences.</param>
    /// <param name="heads">Query heads.</param>
    /// <param name="queries">Queries per sequence.</param>
    /// <param name="keys">Keys per sequence.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="kvHeads">Key/value heads (0 for one per query head).</param>
    /// <param name="queryOffset">Where the first query row starts.</param>
    /// <param name="queryStride">Distance between query rows.</param>
    /// <param name="keyOffset">Where the first key row starts.</param>
    /// <param name="keyStride">Distance between key rows.</param>
    /// <param name="statisticsOffset">Where the statistics <c>[batch, heads, queries, 2]</c> start.</param>
    /// <param name="causal">Whether query i sees only keys j ≤ i.</param>
    /// <param name="window">0, or the window of restricted attention.</param>
    /// <param name="keyPadding">Which padding masks the keys: 0 none, 1 the input tokens', 2 the decoder tokens'.</param>
    public TiledAttentionMap(string name, int batch, int heads, int queries, int keys, int headDim, int kvHeads,
        int queryOffset, int queryStride, int keyOffset, int keyStride, int statisticsOffset, bool causal, int window, int keyPadding)
    {
        Name = name ?? throw new ArgumentNullException(nameof(name));
        Batch = batch; Heads = heads; Queries = queries; Keys = keys; HeadDim = headDim; KvHeads = kvHeads;
        QueryOffset = queryOffset; QueryStride = queryStride; KeyOffset = keyOffset; KeyStride = keyStride; StatisticsOffset = statisticsOffset;
        Causal = causal; Window = window; KeyPadding = keyPadding;
    }

    /// <summary>The map's name.</summary>
    public string Name { get; }
    /// <summary>Sequences.</summary>
    public int Batch { get; }
    /// <summary>Query heads.</summary>
    public int Heads { get; }
    /// <summary>Queries per sequence.</summary>
    public int Queries { get; }
    /// <summary>Keys per sequence.</summary>
    public int Keys { get; }
    /// <summary>Channels per head.</summary>
    public int HeadDim { get; }
    /// <summary>Key/value heads (0 for one per query head).</summary>
    public int KvHeads { get; }
    /// <summary>Where the first query row starts in the training workspace.</summary>
    public int QueryOffset { get; }
    /// <summary>Distance between query rows.</summary>
    public int QueryStride { get; }
    /// <summary>Where the first key row starts.</summary>
    public int KeyOffset { get; }
    /// <summary>Distance between key rows.</summary>
    public int KeyStride { get; }
    /// <summary>Where the softmax statistics start.</summary>
    public int StatisticsOffset { get; }
    /// <summary>Whether the attention is causal.</summary>
    public bool Causal { get; }
    /// <summary>The window of restricted attention, or 0.</summary>
    public int Window { get; }
    /// <summary>Which padding masks the keys: 0 none, 1 the input tokens', 2 the decoder tokens'.</summary>
    public int KeyPadding { get; }

    /// <summary>Floats of the map: batch · heads · queries · keys.</summary>
    public long Length => (long)Batch * Heads * Queries * Keys;

    /// <summary>The probabilities of the last forward pass over <paramref name="workspace"/>, in a new array.</summary>
    internal float[] Recompute(ReadOnlySpan<float> workspace, ReadOnlySpan<byte> padding)
    {
        if (Length > Array.MaxLength)
            throw new InvalidOperationException($"the attention map {Name} has {Length} floats, more than an array holds; declare a shorter SeqLen to read it");
        var probabilities = new float[Length];
        Attention.FlashProbabilities(workspace.Slice(QueryOffset), QueryStride, workspace.Slice(KeyOffset), KeyStride, padding,
            workspace.Slice(StatisticsOffset, checked((int)Attention.FlashStatisticsLength(Batch, Heads, Queries))), probabilities,
            Batch, Queries, Keys, Heads, HeadDim, Causal, Window, KvHeads);
        return probabilities;
    }
}
