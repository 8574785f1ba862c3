using System;
using System.Collections.Concurrent;
using System.Threading;
using TransformerGen;

namespace TransformerGen.EmbeddingServer.Tests.Support;

/// <summary>
/// An encoder whose "model" is arithmetic the tests can predict, so the batcher's tests see exactly what each batch held:
/// sequence s of a batch gets the row <c>[Σ ids, length, first id]</c>. Every call's lengths are recorded; a call whose
/// tokens hold <see cref="Poison"/> throws; <see cref="Hold"/> makes the next call wait until released, so a test can
/// fill the queue while the instance is busy.
/// </summary>
public sealed class ProbeEncoder : EncoderModel
{
    /// <summary>The id the probe refuses to run by default (the vocabulary still has it, so the batcher accepts it).</summary>
    public const int Poison = 13;

    public const int Width = 3;

    private readonly float[] _rows;
    private int _inside;

    public ProbeEncoder(ModelLayout layout, int poison = Poison) : base(layout, 0, ModelUse.Inference, initialize: false)
    {
        _rows = new float[layout.Batch * Width];
        _poison = poison;
    }

    private readonly int _poison;

    /// <summary>A layout of <paramref name="batch"/> sequences of up to <paramref name="seqLen"/> ids of <paramref name="vocab"/> (one per probe model).</summary>
    public static ModelLayout NewLayout(int batch = 4, int seqLen = 16, int vocab = 50) =>
        new("ProbeEncoder", vocab: vocab, seqLen: seqLen, batch: batch, tensors: [], parameterCount: 0, activationCount: 0, constantCount: 0,
            inferenceCount: 0, keyValueCount: 0, logitsOffset: 0, logitsLength: 0, inferenceLogitsOffset: 0)
        { TargetLength = batch };

    /// <summary>The lengths of every call, in the order the calls ran.</summary>
    public ConcurrentQueue<int[]> Calls { get; } = new();

    /// <summary>Calls that were inside at the same time as another (the guard would also throw; the batcher must never do it).</summary>
    public int Overlaps;

    /// <summary>Set: the next call waits until <see cref="Release"/>.</summary>
    public ManualResetEventSlim Gate { get; } = new(initialState: true);

    /// <summary>Signalled when a call has started (and, with the gate closed, is waiting).</summary>
    public SemaphoreSlim Started { get; } = new(0);

    public void Hold() => Gate.Reset();

    public void Release() => Gate.Set();

    /// <summary>The row the probe gives a sequence.</summary>
    public static float[] Expected(int[] ids)
    {
        float sum = 0;
        foreach (int id in ids) sum += id;
        return [sum, ids.Length, ids[0]];
    }

    protected override ReadOnlySpan<float> PredictCore(ReadOnlySpan<int> tokens, ReadOnlySpan<int> lengths)
    {
        if (Interlocked.Increment(ref _inside) > 1) Interlocked.Increment(ref Overlaps);
        try
        {
            Calls.Enqueue(lengths.ToArray());
            Started.Release();
            Gate.Wait();
            if (tokens.Contains(_poison)) throw new InvalidOperationException($"the probe refuses id {_poison}");
            int first = 0;
            for (int s = 0; s < lengths.Length; s++)
            {
                ReadOnlySpan<int> ids = tokens.Slice(first, lengths[s]);
                float sum = 0;
                foreach (int id in ids) sum += id;
                _rows[s * Width] = sum;
                _rows[s * Width + 1] = ids.Length;
                _rows[s * Width + 2] = ids[0];
                first += lengths[s];
            }
            return _rows.AsSpan(0, lengths.Length * Width);
        }
        finally
        {
            Interlocked.Decrement(ref _inside);
        }
    }

    protected override float ForwardCore() => throw new NotSupportedException("the probe only predicts");

    protected override void BackwardCore() => throw new NotSupportedException("the probe only predicts");
}
