using System;
using System.IO;
using BenchmarkDotNet.Attributes;
using LLama;
using LLama.Common;
using LLama.Native;

namespace TransformerGen.LlamaCpp.Bench;

/// <summary>
/// Reading a prompt of 64 or 512 tokens into an empty key/value cache and computing the next-token logits: ours
/// (<c>Append</c> of the whole prompt) against llama.cpp (<c>llama_decode</c> of one batch, logits of the last position
/// only) on the GGUF export of the same weights at F32 and Q8_0, the same thread count, an F32 cache, no flash attention.
/// Before timing, the next-token logits are compared (F32 within 1e-4 of the largest).
/// </summary>
[MemoryDiagnoser]
public abstract class PrefillBenchmarks<TModel> where TModel : LanguageModel
{
    private TModel? _model;
    private int[] _tokens = [];
    private string _folder = "";
    private LLamaWeights? _weights;
    private LLamaContext? _context;
    private LLamaBatch? _batch;

    [Params(1, 2)]
    public int Threads { get; set; }

    [Params(64, 512)]
    public int PromptLength { get; set; }

    protected abstract TModel CreateModel(WeightType weights);

    protected abstract string Config { get; }

    private void CreateOurs(WeightType weights = WeightType.Float32)
    {
        _model = CreateModel(weights);
        var rng = new Rng(13);
        _tokens = new int[PromptLength];
        for (int i = 0; i < _tokens.Length; i++) _tokens[i] = rng.NextInt(_model.Layout.Vocab);
    }

    [GlobalSetup(Target = nameof(Ours))]
    public void SetupOurs()
    {
        Parallelism.ThreadCount = Threads;
        CreateOurs();
        Bench.Repeat(() => Ours());
    }

    [GlobalSetup(Target = nameof(OursInt8))]
    public void SetupInt8()
    {
        Parallelism.ThreadCount = Threads;
        CreateOurs(WeightType.Int8);
        Bench.Repeat(() => Ours());
    }

    [GlobalSetup(Target = nameof(LlamaCppF32))]
    public void SetupF32() => SetupLlamaCpp(GgufTensorType.F32);

    [GlobalSetup(Target = nameof(LlamaCppQ8_0))]
    public void SetupQ8() => SetupLlamaCpp(GgufTensorType.Q8_0);

    private void SetupLlamaCpp(GgufTensorType type)
    {
        Parallelism.ThreadCount = Threads;
        // Q8_0 from our 8-bit instance: the file holds its blocks unchanged, so both engines multiply the same weights.
        CreateOurs(type == GgufTensorType.Q8_0 ? WeightType.Int8 : WeightType.Float32);
        TModel model = _model!;
        _folder = Directory.CreateTempSubdirectory("gguf-bench-").FullName;
        string path = Path.Combine(_folder, $"{model.Layout.Name}.{type}.gguf");
        model.SaveGguf(path, Path.Combine(AppContext.BaseDirectory, Config), type);
        var parameters = new ModelParams(path)
        {
            ContextSize = 512, BatchSize = 512, UBatchSize = 512, Threads = Threads, BatchThreads = Threads, GpuLayerCount = 0,
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false,
        };
        _weights = LLamaWeights.LoadFromFile(parameters);
        _context = _weights.CreateContext(parameters);
        _batch = new LLamaBatch();
        model.ResetCache();
        LlamaCpp();
        double worst = Bench.RelativeMax(model.Append(_tokens), _context.NativeHandle.GetLogitsIth(PromptLength - 1));
        Console.WriteLine($"// {GetType().Name} {type}, {PromptLength} tokens: llama.cpp's next-token logits differ from ours ({model.WeightType}, the same weights) by {worst:E2} of the largest");
        if (type == GgufTensorType.F32 && !(worst <= 1e-4))
            throw new InvalidOperationException($"{model.Layout.Name}: llama.cpp's F32 logits differ from ours by {worst:E2} of the largest");
        _model = null;
        GC.Collect();
        Bench.Repeat(() => LlamaCpp());
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _context?.Dispose();
        _weights?.Dispose();
        (_context, _weights, _model, _batch) = (null, null, null, null);
        if (_folder.Length > 0 && Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
        GC.Collect();
    }

    /// <summary>The whole prompt into an empty cache.</summary>
    [Benchmark(Baseline = true)]
    public float Ours()
    {
        _model!.ResetCache();
        return _model.Append(_tokens)[0];
    }

    /// <summary>The whole prompt into an empty cache, with 8-bit weight matrices (against llama.cpp's Q8_0).</summary>
    [Benchmark]
    public float OursInt8() => Ours();

    [Benchmark]
    public float LlamaCppF32() => LlamaCpp();

    [Benchmark]
    public float LlamaCppQ8_0() => LlamaCpp();

    private float LlamaCpp()
    {
        _context!.NativeHandle.MemoryClear(true);
        _batch!.Clear();
        for (int i = 0; i < _tokens.Length; i++) _batch.Add(_tokens[i], i, LLamaSeqId.Zero, i == _tokens.Length - 1);
        Bench.Check(_context.NativeHandle.Decode(_batch));
        return _context.NativeHandle.GetLogitsIth(_tokens.Length - 1)[0];
    }
}

/// <summary>SmolLM2-135M, seeded initialization.</summary>
public class SmolLm2Prefill : PrefillBenchmarks<SmolLm2Long>
{
    protected override SmolLm2Long CreateModel(WeightType weights) => SmolLm2Long.ForInference(7, weights);
    protected override string Config => "models/SmolLM2-135M/config.json";
}

/// <summary>The TinyLm sample's sizes as a Llama.</summary>
public class TinyLmLlamaPrefill : PrefillBenchmarks<TinyLmLlamaLong>
{
    protected override TinyLmLlamaLong CreateModel(WeightType weights) => TinyLmLlamaLong.ForInference(7, weights);
    protected override string Config => "models/TinyLm-llama/config.json";
}
