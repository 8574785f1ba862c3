using System;
using BenchmarkDotNet.Attributes;

namespace TransformerGen.Model.Bench;

/// <summary>
/// What issue 16's additions cost a training step (tiny and small, one thread). <c>Bare</c> is the step without them
/// (forward, zeroed gradients, backward, AdamW's update); <c>Guarded</c> is <c>TrainStep</c>, which also looks for a
/// non-finite loss or gradient before the update; <c>GuardedClipped</c> adds clipping to a global norm of 1, whose pass the
/// guard shares. <c>Accumulated2</c> is <c>TrainStep</c> over two micro-batches, which should cost two forward and backward
/// passes and one update: compare it with twice <c>Bare</c>. Each model is set to skip non-finite steps, so a
/// benchmark never throws; its losses stay finite at this learning rate.
/// </summary>
[MemoryDiagnoser]
public abstract class TrainingStepOverheadBenchmarks<TModel> where TModel : TransformerModel
{
    private TModel _model = null!;
    private AdamW _optimizer = null!;
    private int[] _tokens = null!, _targets = null!, _tokens2 = null!, _targets2 = null!;

    protected abstract TModel CreateModel();

    [GlobalSetup]
    public void Setup()
    {
        Parallelism.ThreadCount = 1;
        _model = CreateModel();
        _model.NonFiniteSteps = NonFiniteStepPolicy.Skip;
        _optimizer = new AdamW(_model, 1e-4f);
        var rng = new Rng(7);
        int vocab = _model.Layout.Vocab, n = _model.Layout.TokensPerStep;
        int[] Ids(int count)
        {
            var ids = new int[count];
            for (int i = 0; i < count; i++) ids[i] = rng.NextInt(vocab);
            return ids;
        }
        (_tokens, _targets, _tokens2, _targets2) = (Ids(n), Ids(n), Ids(2 * n), Ids(2 * n));
    }

    [Benchmark(Baseline = true)]
    public float Bare()
    {
        float loss = _model.Forward(_tokens, _targets);
        _model.ZeroGrad();
        _model.Backward();
        _optimizer.Step();
        return loss;
    }

    [Benchmark]
    public float Guarded() => _model.TrainStep(_tokens, _targets, _optimizer);

    [Benchmark]
    public float GuardedClipped() => _model.TrainStep(_tokens, _targets, _optimizer, maxGradientNorm: 1f);

    [Benchmark]
    public float Accumulated2() => _model.TrainStep(_tokens2, _targets2, 2, _optimizer);
}

/// <summary>The tiny configuration: 0.12 M parameters, 256 tokens a step, where fixed costs show most.</summary>
public class TinyTrainingStepOverhead : TrainingStepOverheadBenchmarks<TinyGpt>
{
    protected override TinyGpt CreateModel() => new(1);
}

/// <summary>The small configuration: 3.4 M parameters, 1024 tokens a step.</summary>
public class SmallTrainingStepOverhead : TrainingStepOverheadBenchmarks<SmallGpt>
{
    protected override SmallGpt CreateModel() => new(1);
}
