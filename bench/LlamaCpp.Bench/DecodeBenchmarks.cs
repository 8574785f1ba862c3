using System;
using System.IO;
using BenchmarkDotNet.Attributes;
using LLama;
using LLama.Common;
using LLama.Native;

namespace TransformerGen.LlamaCpp.Bench;

/// <summary>
/// Decoding one token with a key/value cache after a 64-token prompt: ours (<c>Append</c> of one token, with fp32, bf16
/// and 8-bit weight matrices: <see cref="WeightType"/>) against llama.cpp 0.30.0's build in LLamaSharp (<c>llama_decode</c> of one token) on the GGUF export of the same
/// weights, F32 and Q8_0, the same thread count. llama.cpp keeps an F32 key/value cache without flash attention (as ours:
/// only the weights' precision differs between its two cases). The F32 file is our fp32 instance's export, the Q8_0 file
/// our 8-bit instance's (the same blocks). Each iteration empties the caches and reads the prompt
/// (untimed, in <c>IterationSetup</c>), then times 32 single-token decodes, positions 64 … 95. Before timing, the
/// next-token logits after the prompt and after each decoded token are compared: F32 must agree within 1e-4 of the
/// largest logit (Gemma 3: 1e-3, <see cref="F32Tolerance"/>), Q8_0's gap to our 8-bit logits is printed (llama.cpp also
/// rounds the activations to 8 bits), and so are the gaps of our bf16 and 8-bit instances to our fp32 one.
/// </summary>
[MemoryDiagnoser]
[InvocationCount(NewTokens)]
public abstract class DecodeBenchmarks<TModel> where TModel : LanguageModel
{
    public const int Prompt = 64, NewTokens = 32;

    private TModel? _model;
    private int[] _tokens = [];
    private int _next;
    private string _folder = "";
    private LLamaWeights? _weights;
    private LLamaContext? _context;
    private LLamaBatch? _batch;

    [Params(1, 2)]
    public int Threads { get; set; }

    protected abstract TModel CreateModel(WeightType weights);

    protected abstract string Config { get; }

    /// <summary>How far llama.cpp's F32 logits may be from ours, over the largest (the families whose arithmetic llama.cpp matches: 1e-4).</summary>
    protected virtual double F32Tolerance => 1e-4;

    /// <summary>
    /// Whether a reduced-precision case first measures how far its logits are from an fp32 instance's, which then coexists
    /// with it: false for models whose two instances would not fit this machine's memory together.
    /// </summary>
    protected virtual bool CompareReducedWithFp32 => true;

    private void CreateOurs(WeightType weights = WeightType.Float32)
    {
        _model = CreateModel(weights);
        var rng = new Rng(11);
        _tokens = new int[Prompt + NewTokens];
        for (int i = 0; i < _tokens.Length; i++) _tokens[i] = rng.NextInt(_model.Layout.Vocab);
    }

    [GlobalSetup(Target = nameof(Ours))]
    public void SetupOurs()
    {
        Parallelism.ThreadCount = Threads;
        CreateOurs();
        Bench.Repeat(() =>
        {
            StartOurs();
            for (int i = 0; i < NewTokens; i++) Ours();
        });
    }

    [GlobalSetup(Target = nameof(OursBFloat16))]
    public void SetupBFloat16() => SetupReduced(WeightType.BFloat16);

    [GlobalSetup(Target = nameof(OursInt8))]
    public void SetupInt8() => SetupReduced(WeightType.Int8);

    /// <summary>Our instance with reduced weights, after printing how far its logits are from our fp32 instance's.</summary>
    private void SetupReduced(WeightType weights)
    {
        Parallelism.ThreadCount = Threads;
        if (!CompareReducedWithFp32)
        {
            CreateOurs(weights);
            Console.WriteLine($"// {GetType().Name} ours {weights} ({_model!.WeightMatrixBytes / 1e6:F1} MB of matrices): not compared with an fp32 instance, which would not fit beside it");
            Bench.Repeat(() =>
            {
                StartOurs();
                for (int i = 0; i < NewTokens; i++) Ours();
            });
            return;
        }
        CreateOurs();
        TModel exact = _model!;
        TModel reduced = CreateModel(weights);
        double worst = Bench.RelativeMax(exact.Append(_tokens.AsSpan(0, Prompt)), reduced.Append(_tokens.AsSpan(0, Prompt)));
        for (int i = 0; i < NewTokens; i++)
            worst = Math.Max(worst, Bench.RelativeMax(exact.Append(_tokens.AsSpan(Prompt + i, 1)), reduced.Append(_tokens.AsSpan(Prompt + i, 1))));
        Console.WriteLine($"// {GetType().Name} ours {weights} ({reduced.WeightMatrixBytes / 1e6:F1} MB of matrices, fp32 {exact.WeightMatrixBytes / 1e6:F1} MB): next-token logits differ from our fp32 ones by {worst:E2} of the largest at most");
        _model = reduced;
        GC.Collect();
        Bench.Repeat(() =>
        {
            StartOurs();
            for (int i = 0; i < NewTokens; i++) Ours();
        });
    }

    [GlobalSetup(Target = nameof(LlamaCppF32))]
    public void SetupF32() => SetupLlamaCpp(GgufTensorType.F32);

    [GlobalSetup(Target = nameof(LlamaCppQ8_0))]
    public void SetupQ8() => SetupLlamaCpp(GgufTensorType.Q8_0);

    private void SetupLlamaCpp(GgufTensorType type)
    {
        Parallelism.ThreadCount = Threads;
        // Q8_0 is exported from our 8-bit instance, whose blocks the file then holds unchanged (GgufFileTests): both engines
        // multiply the same 8-bit weights, and the check below compares llama.cpp with our int8 logits. (Exported from the
        // fp32 instance, the file's blocks were a second rounding of the fp32 weights, and the 3B case needed its 12.85 GB.)
        CreateOurs(type == GgufTensorType.Q8_0 ? WeightType.Int8 : WeightType.Float32);
        TModel model = _model!;
        _folder = Directory.CreateTempSubdirectory("gguf-bench-").FullName;
        string path = Path.Combine(_folder, $"{model.Layout.Name}.{type}.gguf");
        model.SaveGguf(path, Path.Combine(AppContext.BaseDirectory, Config), type);
        var parameters = new ModelParams(path)
        {
            ContextSize = 128, BatchSize = Prompt, UBatchSize = Prompt, Threads = Threads, BatchThreads = Threads, GpuLayerCount = 0,
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false,
        };
        _weights = LLamaWeights.LoadFromFile(parameters);
        _context = _weights.CreateContext(parameters);
        _batch = new LLamaBatch();

        // Both sides must compute the same thing (F32), or say how far apart they are (Q8_0).
        double worst = 0;
        model.ResetCache();
        StartLlamaCpp();
        worst = Math.Max(worst, Bench.RelativeMax(model.Append(_tokens.AsSpan(0, Prompt)), _context.NativeHandle.GetLogitsIth(Prompt - 1)));
        for (int i = 0; i < NewTokens; i++)
        {
            ReadOnlySpan<float> ours = model.Append(_tokens.AsSpan(Prompt + i, 1));
            DecodeOne();
            worst = Math.Max(worst, Bench.RelativeMax(ours, _context.NativeHandle.GetLogitsIth(0)));
        }
        Console.WriteLine($"// {GetType().Name} {type}: llama.cpp's next-token logits differ from ours ({model.WeightType}, the same weights) by {worst:E2} of the largest at most");
        if (type == GgufTensorType.F32 && !(worst <= F32Tolerance))
            throw new InvalidOperationException($"{model.Layout.Name}: llama.cpp's F32 logits differ from ours by {worst:E2} of the largest");
        _model = null; // only llama.cpp runs in this case
        GC.Collect();
        Bench.Repeat(() =>
        {
            StartLlamaCpp();
            for (int i = 0; i < NewTokens; i++) DecodeOne();
        });
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

    [IterationSetup(Targets = [nameof(Ours), nameof(OursBFloat16), nameof(OursInt8)])]
    public void StartOurs()
    {
        _model!.ResetCache();
        _model.Append(_tokens.AsSpan(0, Prompt));
        _next = Prompt;
    }

    [IterationSetup(Targets = [nameof(LlamaCppF32), nameof(LlamaCppQ8_0)])]
    public void StartLlamaCpp()
    {
        _context!.NativeHandle.MemoryClear(true);
        _batch!.Clear();
        for (int i = 0; i < Prompt; i++) _batch.Add(_tokens[i], i, LLamaSeqId.Zero, i == Prompt - 1);
        Bench.Check(_context.NativeHandle.Decode(_batch));
        _next = Prompt;
    }

    /// <summary>One token appended to the cache (positions 64 … 95 within an iteration).</summary>
    [Benchmark(Baseline = true)]
    public float Ours()
    {
        if (_next == _tokens.Length) StartOurs(); // only if BenchmarkDotNet ran more than NewTokens calls in an iteration
        return _model!.Append(_tokens.AsSpan(_next++, 1))[0];
    }

    [Benchmark]
    public float OursBFloat16() => Ours();

    [Benchmark]
    public float OursInt8() => Ours();

    [Benchmark]
    public float LlamaCppF32() => DecodeOne();

    [Benchmark]
    public float LlamaCppQ8_0() => DecodeOne();

    private float DecodeOne()
    {
        if (_next == _tokens.Length) StartLlamaCpp();
        _batch!.Clear();
        _batch.Add(_tokens[_next], _next, LLamaSeqId.Zero, true);
        _next++;
        Bench.Check(_context!.NativeHandle.Decode(_batch));
        return _context.NativeHandle.GetLogitsIth(0)[0];
    }
}

/// <summary>SmolLM2-135M, seeded initialization (GPT-2's N(0, 0.02²)); 538 MB of fp32 weights.</summary>
public class SmolLm2Decode : DecodeBenchmarks<SmolLm2>
{
    protected override SmolLm2 CreateModel(WeightType weights) => SmolLm2.ForInference(7, weights);
    protected override string Config => "models/SmolLM2-135M/config.json";
}

/// <summary>
/// gemma-3-270m's shape (268 M parameters, 168 M of them the tied 262,144 × 640 table, which the head reads whole for each
/// token); 1.07 GB of fp32 weights, llama.cpp's <c>gemma3</c> on the other side.
/// </summary>
public class Gemma3Decode : DecodeBenchmarks<Gemma3_270M>
{
    protected override Gemma3_270M CreateModel(WeightType weights) => Gemma3_270M.ForInference(7, weights);
    protected override string Config => "models/gemma-3-270m/config.json";

    /// <summary>
    /// ggml's CPU GEGLU reads GELU from a table of fp16 values (Gemma3ExportTests): at this initialization's scale
    /// (N(0, 0.02²) matrices, small logits) the table alone moves the test shapes' logits by 2.0e-4 – 3.1e-4 of the largest
    /// (a double-precision Gemma 3 with the tanh GELU matches ours within 5e-7); 6.1e-4 here.
    /// </summary>
    protected override double F32Tolerance => 1e-3;
}

/// <summary>The TinyLm sample's sizes as a Llama (0.8 M parameters), where per-token overhead dominates.</summary>
public class TinyLmLlamaDecode : DecodeBenchmarks<TinyLmLlama>
{
    protected override TinyLmLlama CreateModel(WeightType weights) => TinyLmLlama.ForInference(7, weights);
    protected override string Config => "models/TinyLm-llama/config.json";
}

/// <summary>
/// Llama-3.2-3B's shape, seeded initialization (N(0, 0.02²)): 12.85 GB of fp32 weights in two parameter segments. Its
/// 8-bit instance is not compared with an fp32 one (both would not fit 23 GB), and llama.cpp's F32 case would map another
/// 12.85 GB: run <c>OursInt8</c> and <c>LlamaCppQ8_0</c>, whose setup exports our 8-bit instance and measures llama.cpp's
/// logits against its. Named so that the other decoders' filter (<c>*Decode*</c>) leaves it out.
/// </summary>
public class Llama32_3BDecoding : DecodeBenchmarks<Llama32_3B>
{
    protected override Llama32_3B CreateModel(WeightType weights) => Llama32_3B.ForInference(7, weights);
    protected override string Config => "models/Llama-3.2-3B/config.json";
    protected override bool CompareReducedWithFp32 => false;
}
