using System;
using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using TorchSharp;
using static TorchSharp.torch;

namespace TransformerGen.Model.Bench;

/// <summary>Shared pieces of the Hugging Face benchmarks: seeded weights, tokens, the equality checks and warm-up by time.</summary>
internal static class HuggingFaceBench
{
    public const ulong Seed = 20261206;

    /// <summary>Warm-up by time on each side (ENVIRONMENT.md: tiered compilation needs about a second of calls).</summary>
    public static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(2.5);

    /// <summary>
    /// Moves the norms' gains and the biases off their initial ones and zeros (seeded), so the equality check before
    /// timing also covers them; the matrices keep the model's own seeded initialization.
    /// </summary>
    public static void PerturbVectors(TransformerModel model, ulong seed)
    {
        var rng = new Rng(seed);
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            if (!t.IsVector) continue;
            Span<float> values = model.Parameters.Slice(t.Offset, t.Length);
            for (int i = 0; i < values.Length; i++) values[i] = (t.Init == WeightInit.Ones ? 1f : 0f) + 0.1f * rng.NextNormal();
        }
        // Reading Parameters unpacks an inference instance's matrices: pack them again for the kernels over panels.
        if (model.Use == ModelUse.Inference) model.PackWeights();
    }

    /// <summary>
    /// Random ids in [1, vocab) other than <paramref name="padToken"/>: no padding (id 0 is BERT's [PAD]; ModernBERT's is
    /// 50283, drawn again when it comes up, so the other models' ids stay what they were).
    /// </summary>
    public static int[] Tokens(int count, int vocab, ulong seed, int padToken = -1)
    {
        var rng = new Rng(seed);
        var ids = new int[count];
        for (int i = 0; i < ids.Length; i++)
            do ids[i] = 1 + rng.NextInt(vocab - 1); while (ids[i] == padToken);
        return ids;
    }

    /// <summary>max |ours − theirs| / max |theirs|.</summary>
    public static double RelativeMax(ReadOnlySpan<float> ours, ReadOnlySpan<float> theirs)
    {
        if (ours.Length != theirs.Length) throw new InvalidOperationException($"{ours.Length} values here but {theirs.Length} in libtorch");
        double error = 0, scale = 0;
        for (int i = 0; i < ours.Length; i++)
        {
            error = Math.Max(error, Math.Abs((double)ours[i] - theirs[i]));
            scale = Math.Max(scale, Math.Abs((double)theirs[i]));
        }
        return error / scale;
    }

    public static void Repeat(TimeSpan duration, Action action)
    {
        var clock = Stopwatch.StartNew();
        do action(); while (clock.Elapsed < duration);
    }
}

/// <summary>
/// all-MiniLM-L6-v2's sentence embeddings for a batch of 128-token sequences: ours (<c>Predict</c> of a model compiled
/// from the config with <c>Head = EncoderHead.SentenceEmbedding</c>) against libtorch's BertModel with eager
/// attention, mean pooling and normalisation under <c>no_grad</c> (<see cref="TorchBert"/>), the same weights, the same
/// thread count. The embeddings are checked equal before timing.
/// </summary>
/// <remarks>libtorch's method is the baseline, so BenchmarkDotNet's Ratio column is ours / libtorch's time.</remarks>
[MemoryDiagnoser]
public abstract class HuggingFaceEncoderBenchmarks<TModel> where TModel : EncoderModel
{
    private TModel? _model;
    private int[] _tokens = null!;
    private nn.Module<Tensor, Tensor>? _torch;
    private Tensor? _torchIds;

    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>An inference model from <see cref="HuggingFaceBench.Seed"/>.</summary>
    protected abstract TModel CreateModel();

    /// <summary>
    /// The libtorch module of the same architecture holding <paramref name="model"/>'s weights, in eval mode: ids
    /// <c>[B, T]</c> → sentence embeddings. transformers' BertModel (<see cref="TorchBert"/>) unless a model says otherwise.
    /// </summary>
    protected virtual nn.Module<Tensor, Tensor> CreateTorch(TModel model)
    {
        // The sizes libtorch's BertModel is built with: the config's, as the generated class's constants and tensors give them.
        long positions = Find(model, "embeddings.position_embeddings.weight").Shape[0];
        long types = Find(model, "embeddings.token_type_embeddings.weight").Shape[0];
        var torch = new TorchBert(model.Layout.Vocab, Constant("DModel"), Constant("Heads"), Constant("DFF"), Constant("Layers"), positions, types, eps: 1e-12, padId: 0);
        torch.eval();
        torch.CopyFrom(model);
        return torch;
    }

    private void CreateOurs()
    {
        _model = CreateModel();
        HuggingFaceBench.PerturbVectors(_model, HuggingFaceBench.Seed + 1);
        _tokens = HuggingFaceBench.Tokens(_model.Layout.Batch * _model.Layout.SeqLen, _model.Layout.Vocab, HuggingFaceBench.Seed + 2, _model.Layout.PadToken);
    }

    [GlobalSetup(Target = nameof(Ours))]
    public void SetupOurs()
    {
        Parallelism.ThreadCount = Threads;
        CreateOurs();
        HuggingFaceBench.Repeat(HuggingFaceBench.WarmUp, () => Ours());
    }

    [GlobalSetup(Target = nameof(Torch))]
    public void SetupTorch()
    {
        set_num_threads(Threads);
        CreateOurs();
        ModelLayout layout = _model!.Layout;
        _torch = CreateTorch(_model);
        _torchIds = tensor(Array.ConvertAll(_tokens, t => (long)t), new long[] { layout.Batch, layout.SeqLen });

        // Both sides must compute the same thing: the same sentence embeddings from the same weights.
        float[] ours = _model.Predict(_tokens).ToArray();
        float[] theirs;
        using (no_grad())
        using (Tensor e = _torch.call(_torchIds)) theirs = e.data<float>().ToArray();
        double error = HuggingFaceBench.RelativeMax(ours, theirs);
        Console.WriteLine($"// {GetType().Name}: sentence embeddings differ from libtorch's by {error:E2} of the largest");
        if (!(error <= 1e-5)) throw new InvalidOperationException($"{GetType().Name}: embeddings differ from libtorch's by {error:E2} of the largest");
        _model = null; // only libtorch runs in this benchmark case
        GC.Collect();
        HuggingFaceBench.Repeat(HuggingFaceBench.WarmUp, Torch);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _torch?.Dispose();
        _torchIds?.Dispose();
        (_torch, _torchIds, _model) = (null, null, null);
        GC.Collect();
    }

    [Benchmark]
    public float Ours() => _model!.Predict(_tokens)[0];

    [Benchmark(Baseline = true)]
    public void Torch()
    {
        using IDisposable noGrad = no_grad();
        using Tensor embeddings = _torch!.call(_torchIds!);
    }

    protected static int Constant(string name) =>
        typeof(TModel).GetField(name)?.GetRawConstantValue() is int value ? value : throw new InvalidOperationException($"{typeof(TModel).Name} has no constant {name}");

    private static ParameterTensor Find(TransformerModel model, string name)
    {
        foreach (ParameterTensor t in model.ParameterTensors) if (t.Name == name) return t;
        throw new InvalidOperationException($"{model.GetType().Name} has no parameter '{name}'");
    }
}

/// <summary>all-MiniLM-L6-v2, one sequence of 128 tokens.</summary>
public class HuggingFaceMiniLmBatch1 : HuggingFaceEncoderBenchmarks<MiniLmBatch1>
{
    protected override MiniLmBatch1 CreateModel() => MiniLmBatch1.ForInference(HuggingFaceBench.Seed);
}

/// <summary>all-MiniLM-L6-v2, 8 sequences of 128 tokens.</summary>
public class HuggingFaceMiniLmBatch8 : HuggingFaceEncoderBenchmarks<MiniLmBatch8>
{
    protected override MiniLmBatch8 CreateModel() => MiniLmBatch8.ForInference(HuggingFaceBench.Seed);
}

/// <summary>
/// SmolLM2-135M decoding one token with a key/value cache after a 64-token prompt: ours (<c>Append</c> of one token to
/// a model compiled from the config) against <see cref="TorchLlama"/> (libtorch modules with their own key/value
/// cache), the same weights, the same thread count. Each iteration first empties the cache and appends the prompt
/// (untimed, in <c>IterationSetup</c>), then times 32 single-token appends, positions 64 … 95: the figure is the mean
/// time per decoded token over those positions. Next-token logits are checked equal before timing, after the prompt
/// and after each of the 32 decoded tokens.
/// </summary>
[MemoryDiagnoser]
[InvocationCount(NewTokens)]
public class HuggingFaceSmolLm2Decode
{
    public const int Prompt = 64, NewTokens = 32;

    private SmolLm2? _model;
    private int[] _tokens = null!;
    private int _next;
    private TorchLlama? _torch;
    private Tensor? _torchPrompt;
    private Tensor[] _torchTokens = [];

    [Params(1, 2)]
    public int Threads { get; set; }

    private void CreateOurs()
    {
        _model = SmolLm2.ForInference(HuggingFaceBench.Seed);
        HuggingFaceBench.PerturbVectors(_model, HuggingFaceBench.Seed + 1);
        _tokens = HuggingFaceBench.Tokens(Prompt + NewTokens, SmolLm2.Vocab, HuggingFaceBench.Seed + 3);
    }

    [GlobalSetup(Target = nameof(Ours))]
    public void SetupOurs()
    {
        Parallelism.ThreadCount = Threads;
        CreateOurs();
        HuggingFaceBench.Repeat(HuggingFaceBench.WarmUp, () =>
        {
            StartOurs();
            for (int i = 0; i < NewTokens; i++) Ours();
        });
    }

    [GlobalSetup(Target = nameof(Torch))]
    public void SetupTorch()
    {
        set_num_threads(Threads);
        CreateOurs();
        SmolLm2 model = _model!;
        _torch = new TorchLlama(SmolLm2.Vocab, SmolLm2.DModel, SmolLm2.Heads, SmolLm2.KvHeads, SmolLm2.DFF, SmolLm2.Layers,
            theta: 100000, eps: 1e-5, capacity: SmolLm2.SeqLen);
        _torch.eval();
        _torch.CopyFrom(model);
        _torchPrompt = tensor(Array.ConvertAll(_tokens[..Prompt], t => (long)t));
        _torchTokens = new Tensor[NewTokens];
        for (int i = 0; i < NewTokens; i++) _torchTokens[i] = tensor(new long[] { _tokens[Prompt + i] });

        // Both sides must compute the same thing: the next-token logits after the prompt and after each decoded token.
        double worst = 0;
        using (no_grad())
        {
            model.ResetCache();
            _torch.ResetCache();
            for (int i = -1; i < NewTokens; i++)
            {
                ReadOnlySpan<float> ours = i < 0 ? model.Append(_tokens.AsSpan(0, Prompt)) : model.Append(_tokens.AsSpan(Prompt + i, 1));
                using Tensor logits = _torch.call(i < 0 ? _torchPrompt : _torchTokens[i]);
                worst = Math.Max(worst, HuggingFaceBench.RelativeMax(ours, logits.data<float>().ToArray()));
            }
        }
        Console.WriteLine($"// {nameof(HuggingFaceSmolLm2Decode)}: next-token logits differ from libtorch's by {worst:E2} of the largest at most");
        if (!(worst <= 1e-4)) throw new InvalidOperationException($"SmolLM2: next-token logits differ from libtorch's by {worst:E2} of the largest");
        _model = null; // 540 MB: only libtorch runs in this benchmark case
        GC.Collect();
        HuggingFaceBench.Repeat(HuggingFaceBench.WarmUp, () =>
        {
            StartTorch();
            for (int i = 0; i < NewTokens; i++) Torch();
        });
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _torch?.Dispose();
        _torchPrompt?.Dispose();
        foreach (Tensor t in _torchTokens) t.Dispose();
        (_torch, _torchPrompt, _torchTokens, _model) = (null, null, [], null);
        GC.Collect();
    }

    /// <summary>Empties the cache and appends the prompt, outside the timed part.</summary>
    [IterationSetup(Target = nameof(Ours))]
    public void StartOurs()
    {
        _model!.ResetCache();
        _model.Append(_tokens.AsSpan(0, Prompt));
        _next = Prompt;
    }

    [IterationSetup(Target = nameof(Torch))]
    public void StartTorch()
    {
        using IDisposable noGrad = no_grad();
        _torch!.ResetCache();
        using Tensor logits = _torch.call(_torchPrompt!);
        _next = Prompt;
    }

    /// <summary>One token appended to the cache (positions 64 … 95 within an iteration).</summary>
    [Benchmark]
    public float Ours()
    {
        if (_next == _tokens.Length) StartOurs(); // only if BenchmarkDotNet ran more than NewTokens calls in an iteration
        return _model!.Append(_tokens.AsSpan(_next++, 1))[0];
    }

    [Benchmark(Baseline = true)]
    public void Torch()
    {
        if (_next == _tokens.Length) StartTorch();
        using IDisposable noGrad = no_grad();
        using Tensor logits = _torch!.call(_torchTokens[_next++ - Prompt]);
    }
}

/// <summary>
/// embeddinggemma-300m's sentence embedding of one 128-token sentence: ours against <see cref="TorchEmbeddingGemma"/>
/// (libtorch modules with <c>scaled_dot_product_attention</c>, mean pooling, the two Dense layers and the normalization),
/// the same weights, the same thread count.
/// </summary>
public class HuggingFaceEmbeddingGemma : HuggingFaceEncoderBenchmarks<EmbeddingGemmaBatch1>
{
    protected override EmbeddingGemmaBatch1 CreateModel() => EmbeddingGemmaBatch1.ForInference(HuggingFaceBench.Seed);

    protected override nn.Module<Tensor, Tensor> CreateTorch(EmbeddingGemmaBatch1 model)
    {
        // Layers 5, 11, 17 and 23 global, the others sliding (the config's layer_types); its window, bases and eps.
        bool[] sliding = new bool[EmbeddingGemmaBatch1.Layers];
        for (int i = 0; i < sliding.Length; i++) sliding[i] = (i + 1) % 6 != 0;
        var torch = new TorchEmbeddingGemma(EmbeddingGemmaBatch1.Vocab, EmbeddingGemmaBatch1.DModel, EmbeddingGemmaBatch1.Heads, EmbeddingGemmaBatch1.KvHeads,
            EmbeddingGemmaBatch1.HeadDim, EmbeddingGemmaBatch1.DFF, sliding, slidingWindow: 512, globalTheta: 1e6, localTheta: 1e4, queryPreAttnScalar: 256,
            eps: 1e-6, projected: 3072);
        torch.eval();
        torch.CopyFrom(model);
        return torch;
    }
}

/// <summary>
/// gte-modernbert-base's sentence embedding of one sentence: ours against <see cref="TorchModernBert"/> (libtorch modules of
/// ModernBertModel with <c>scaled_dot_product_attention</c> under a mask per layer kind, then [CLS] pooling and the
/// normalization), the same weights, the same thread count. At 128 tokens the local layers' ±64 window hides only the
/// far corners; see <see cref="HuggingFaceModernBertSeq512"/> for a length where it hides most pairs.
/// </summary>
public class HuggingFaceModernBert : HuggingFaceEncoderBenchmarks<ModernBertBatch1>
{
    protected override ModernBertBatch1 CreateModel() => ModernBertBatch1.ForInference(HuggingFaceBench.Seed);

    protected override nn.Module<Tensor, Tensor> CreateTorch(ModernBertBatch1 model) => ModernBertTorch.Create(model, Constant);
}

/// <summary>
/// gte-modernbert-base, one sentence of 512 tokens: the local layers see 129 keys of 512 at most, which our kernels skip
/// and libtorch's masked <c>scaled_dot_product_attention</c> computes and then discards.
/// </summary>
public class HuggingFaceModernBertSeq512 : HuggingFaceEncoderBenchmarks<ModernBertBatch1Seq512>
{
    protected override ModernBertBatch1Seq512 CreateModel() => ModernBertBatch1Seq512.ForInference(HuggingFaceBench.Seed);

    protected override nn.Module<Tensor, Tensor> CreateTorch(ModernBertBatch1Seq512 model) => ModernBertTorch.Create(model, Constant);
}

internal static class ModernBertTorch
{
    /// <summary>
    /// <see cref="TorchModernBert"/> in eval mode with <paramref name="model"/>'s weights: the sizes from the generated class's
    /// constants (<paramref name="constant"/>), the rest as gte-modernbert-base's config.json and modules say (global every
    /// third layer from layer 0, local_attention 128, bases 160000 and 10000, norm_eps 1e-5, [CLS] pooling).
    /// </summary>
    public static TorchModernBert Create(TransformerModel model, Func<string, int> constant)
    {
        var torch = new TorchModernBert(model.Layout.Vocab, constant("DModel"), constant("Heads"), constant("DFF"), constant("Layers"),
            globalEvery: 3, localAttention: 128, globalTheta: 160000, localTheta: 10000, eps: 1e-5, clsPooling: true);
        torch.eval();
        torch.CopyFrom(model);
        return torch;
    }
}
