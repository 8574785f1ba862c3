using System;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using TorchSharp;
using static TorchSharp.torch;

namespace TransformerGen.Model.Bench;

/// <summary>
/// One configuration, ours and libtorch's side by side at the same sizes and thread count: a training step (forward,
/// zeroed gradients, backward, AdamW), a forward pass with the loss, and, ours only, one token of cached decoding.
/// </summary>
/// <remarks>
/// Within a category, libtorch's method is the baseline, so BenchmarkDotNet's Ratio column is ours / libtorch's time.
/// Decoding appends one token to the key/value cache; the cache is emptied when it holds SeqLen positions, so the
/// figure is the mean over positions 0 … SeqLen − 1.
/// </remarks>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
[CategoriesColumn]
public abstract class ModelBenchmarks<TModel> where TModel : LanguageModel
{
    private const float LearningRate = 1e-4f, WeightDecay = 0.01f;

    private TModel _model = null!;
    private AdamW _optimizer = null!;
    private int[] _tokens = null!, _targets = null!;
    private int _nextToken;

    private TorchGpt? _torch;
    private optim.Optimizer? _torchOptimizer;
    private Tensor? _torchTokens, _torchTargets;

    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>A new model from a fixed seed.</summary>
    protected abstract TModel CreateModel();

    [GlobalSetup(Targets = new[] { nameof(TrainingStep), nameof(Forward), nameof(DecodeToken) })]
    public void SetupOurs()
    {
        Parallelism.ThreadCount = Threads;
        _model = CreateModel();
        _optimizer = new AdamW(_model, LearningRate, weightDecay: WeightDecay);
        (_tokens, _targets) = Batch(_model);
        _nextToken = 0;
    }

    [GlobalSetup(Targets = new[] { nameof(TorchTrainingStep), nameof(TorchForward) })]
    public void SetupTorch()
    {
        set_num_threads(Threads);
        _model = CreateModel();
        (_tokens, _targets) = Batch(_model);
        _torch = new TorchGpt(_model);
        _torchOptimizer = optim.AdamW(_torch.Parameters, LearningRate, weight_decay: WeightDecay);
        _torchTokens = tensor(Array.ConvertAll(_tokens, t => (long)t), new long[] { _model.Layout.Batch, _model.Layout.SeqLen });
        _torchTargets = tensor(Array.ConvertAll(_targets, t => (long)t));

        // Both sides must compute the same thing: the same loss from the same weights.
        float ours = _model.Forward(_tokens, _targets);
        float theirs = TorchForward();
        if (!(Math.Abs(ours - theirs) <= 1e-4f * Math.Abs(theirs)))
            throw new InvalidOperationException($"{typeof(TModel).Name}: loss {ours} here but {theirs} in libtorch");
    }

    [GlobalCleanup(Targets = new[] { nameof(TorchTrainingStep), nameof(TorchForward) })]
    public void CleanupTorch()
    {
        _torchOptimizer?.Dispose();
        _torch?.Dispose();
        _torchTokens?.Dispose();
        _torchTargets?.Dispose();
    }

    [Benchmark, BenchmarkCategory("TrainingStep")]
    public float TrainingStep()
    {
        float loss = _model.Forward(_tokens, _targets);
        _model.ZeroGrad();
        _model.Backward();
        _optimizer.Step();
        return loss;
    }

    [Benchmark(Baseline = true), BenchmarkCategory("TrainingStep")]
    public float TorchTrainingStep()
    {
        using DisposeScope scope = NewDisposeScope();
        _torchOptimizer!.zero_grad();
        Tensor loss = _torch!.Loss(_torchTokens!, _torchTargets!);
        loss.backward();
        _torchOptimizer.step();
        return loss.item<float>();
    }

    [Benchmark, BenchmarkCategory("Forward")]
    public float Forward() => _model.Forward(_tokens, _targets);

    [Benchmark(Baseline = true), BenchmarkCategory("Forward")]
    public float TorchForward()
    {
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        return _torch!.Loss(_torchTokens!, _torchTargets!).item<float>();
    }

    [Benchmark, BenchmarkCategory("DecodeToken")]
    public float DecodeToken()
    {
        if (_model.CacheLength == _model.Layout.SeqLen) _model.ResetCache();
        int token = _tokens[_nextToken];
        _nextToken = (_nextToken + 1) % _tokens.Length;
        return _model.Append(new ReadOnlySpan<int>(in token))[0];
    }

    private static (int[] Tokens, int[] Targets) Batch(LanguageModel model)
    {
        var rng = new Rng(7);
        int count = model.Layout.Batch * model.Layout.SeqLen;
        var tokens = new int[count];
        for (int i = 0; i < count; i++) tokens[i] = rng.NextInt(model.Layout.Vocab);
        var targets = new int[count];
        for (int i = 0; i < count; i++) targets[i] = tokens[(i + 1) % count];
        return (tokens, targets);
    }
}

public class Tiny : ModelBenchmarks<TinyGpt>
{
    protected override TinyGpt CreateModel() => new(seed: 1);
}

public class Small : ModelBenchmarks<SmallGpt>
{
    protected override SmallGpt CreateModel() => new(seed: 1);
}

public class Base : ModelBenchmarks<BaseGpt>
{
    protected override BaseGpt CreateModel() => new(seed: 1);
}
