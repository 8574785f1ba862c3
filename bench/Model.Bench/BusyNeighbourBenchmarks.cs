using System;
using System.Threading;
using BenchmarkDotNet.Attributes;

namespace TransformerGen.Model.Bench;

/// <summary>
/// Issue 15's "two threads never slower than one", on tiny and small, with the machine to ourselves and beside a busy
/// neighbour: a thread of this process that spins for the whole benchmark, as another program on one of the cores would.
/// With the neighbour, a worker that the system takes off its core keeps the caller waiting for a time slice; the pool
/// then keeps small problems on the calling thread for a while (Threading/Contention.cs).
/// </summary>
/// <remarks>
/// A training step as in <see cref="ModelBenchmarks{TModel}"/> (forward, zeroed gradients, backward, AdamW). Compare
/// Threads = 2 with Threads = 1 at each Neighbour: on a two-core machine the neighbour leaves about one core, so two threads
/// cannot gain there, and the question is only whether they lose.
/// </remarks>
[MemoryDiagnoser]
public class BusyNeighbourBenchmarks
{
    private LanguageModel _model = null!;
    private AdamW _optimizer = null!;
    private int[] _tokens = null!, _targets = null!;
    private Thread? _neighbour;
    private volatile bool _stop;

    [Params("tiny", "small")]
    public string Config { get; set; } = "tiny";

    [Params(false, true)]
    public bool Neighbour { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Parallelism.ThreadCount = Threads;
        _model = Config == "tiny" ? new TinyGpt(seed: 1) : new SmallGpt(seed: 1);
        _optimizer = new AdamW(_model, LongSequence.LearningRate, weightDecay: LongSequence.WeightDecay);
        (_tokens, _targets) = LongSequence.Batch(_model);
        if (!Neighbour) return;
        _stop = false;
        _neighbour = new Thread(() =>
        {
            while (!_stop) Thread.SpinWait(1000);
        }) { IsBackground = true, Name = "busy neighbour" };
        _neighbour.Start();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stop = true;
        _neighbour?.Join();
        _neighbour = null;
    }

    [Benchmark]
    public float TrainingStep()
    {
        float loss = _model.Forward(_tokens, _targets);
        _model.ZeroGrad();
        _model.Backward();
        _optimizer.Step();
        return loss;
    }
}
