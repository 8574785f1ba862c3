using System;
using BenchmarkDotNet.Attributes;
using TransformerGen;

namespace TransformerGen.Model.Bench;

/// <summary>The TinyLm sample's model (samples/TinyLm/TinyLm.cs), for the decode step the concurrency guard is weighed against.</summary>
[TransformerModel(Vocab = 64, DModel = 128, Heads = 4, Layers = 4, DFF = 512, SeqLen = 64, Batch = 16,
    Positional = Positional.Rotary, Norm = NormPlacement.Pre, Activation = Activation.Gelu)]
public partial class TinyLmShape { }

/// <summary>
/// What the concurrency guard (issue 18) costs on TinyLm's decode step: every public member enters the instance with one
/// compare-and-swap and leaves it with a store. <see cref="ResetCache"/> is the cheapest guarded member (the guard and
/// two stores), so its time bounds the guard's; the decode step (<c>Append</c> of one token, the mean over positions
/// 0 … 63 with the cache reset every 64) pays it once.
/// </summary>
[MemoryDiagnoser]
public class CallGuardBenchmarks
{
    private readonly TinyLmShape _model = TinyLmShape.ForInference(3);
    private int _position;

    [Params(1)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup() => Parallelism.ThreadCount = Threads;

    /// <summary>One token through the cache.</summary>
    [Benchmark(Baseline = true)]
    public float DecodeToken()
    {
        if (_position == TinyLmShape.SeqLen)
        {
            _model.ResetCache();
            _position = 0;
        }
        int token = _position++ % TinyLmShape.Vocab;
        return _model.Append(new ReadOnlySpan<int>(in token))[0];
    }

    /// <summary>The guard alone, nearly: enter, reset two counters, leave.</summary>
    [Benchmark]
    public void ResetCache() => _model.ResetCache();
}
