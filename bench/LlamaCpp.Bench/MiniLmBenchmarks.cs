using System;
using System.IO;
using BenchmarkDotNet.Attributes;
using LLama;
using LLama.Common;
using LLama.Native;

namespace TransformerGen.LlamaCpp.Bench;

/// <summary>
/// One sentence embedding at all-MiniLM-L6-v2's shape (<see cref="MiniLmBatch1"/>), a sentence of 32 or 128 tokens
/// ([CLS] 101, random ids, [SEP] 102; no padding, token types 0): ours (<c>Predict(tokens, [length])</c>, the exact-length
/// pass, fp32 and 8-bit matrices) against llama.cpp 0.30.0's <c>bert</c> in LLamaSharp on our GGUF export of the same
/// weights (F32 and Q8_0) in embedding mode with mean pooling: one <c>llama_decode</c> of the sentence, then its pooled
/// row scaled to unit length as ours is. The same thread count on both sides (<see cref="Parallelism.ThreadCount"/>;
/// llama.cpp's <c>n_threads</c> and <c>n_threads_batch</c>), no flash attention. Each case builds only what it times,
/// checks it first and warms up by time (<see cref="Bench.WarmUp"/>).
/// </summary>
/// <remarks>
/// The check before timing: llama.cpp's F32 embedding within <see cref="F32Tolerance"/> of ours' largest component (its GELU
/// is ggml's fp16 table of the tanh form, BERT's the erf one: <c>tests/Export.Tests/GgufBertTests.cs</c> measured up to
/// 2.7e-4 and shows that is the whole gap), and its Q8_0 embedding within <see cref="Q8Tolerance"/> of our int8 one (the
/// file holds the weights our int8 instance multiplies by, but llama.cpp also rounds the activations to 8 bits per block
/// of 32); each distance is printed with the cosine. llama.cpp keeps no memory for <c>bert</c>, so a second decode must
/// give the same embedding, which the setup checks.
/// </remarks>
[MemoryDiagnoser]
public class MiniLmEmbed
{
    private const ulong Seed = 20261209;
    private const string Config = "models/all-MiniLM-L6-v2/config.json";

    /// <summary>bert-base-uncased's (and all-MiniLM-L6-v2's) [CLS], [SEP] and padding ids.</summary>
    private const int ClsId = 101, SepId = 102, PadId = 0;

    /// <summary>How far llama.cpp's F32 embedding may be from ours, over our largest component (ggml's GELU table).</summary>
    public const double F32Tolerance = 2e-3;

    /// <summary>How far llama.cpp's Q8_0 embedding may be from our int8 one, over our largest component.</summary>
    public const double Q8Tolerance = 2e-2;

    private MiniLmBatch1? _model;
    private int[] _tokens = [];
    private readonly int[] _length = new int[1];
    private readonly float[] _theirs = new float[MiniLmBatch1.DModel];
    private string _folder = "";
    private LLamaWeights? _weights;
    private LLamaContext? _context;
    private readonly LLamaBatch _batch = new();

    [Params(1, 2)]
    public int Threads { get; set; }

    [Params(32, 128)]
    public int Tokens { get; set; }

    private static string ConfigPath => Path.Combine(AppContext.BaseDirectory, Config);

    /// <summary>The sentence's ids ([CLS], Tokens − 2 seeded ids that are not special, [SEP]) and our thread count.</summary>
    private void Prepare()
    {
        Parallelism.ThreadCount = Threads;
        var rng = new Rng(Seed + 1);
        _tokens = new int[Tokens];
        for (int i = 1; i < _tokens.Length - 1; i++)
            do _tokens[i] = rng.NextInt(MiniLmBatch1.Vocab); while (_tokens[i] is ClsId or SepId or PadId);
        (_tokens[0], _tokens[^1]) = (ClsId, SepId);
        _length[0] = _tokens.Length;
    }

    /// <summary>
    /// An inference instance from the seed, its LayerNorms' gains drawn 1 + N(0, 0.1²) and every bias N(0, 0.02²) (seeded),
    /// so that the check covers them; the matrices and tables keep the model's seeded initialization. The same values
    /// whatever <paramref name="weights"/>.
    /// </summary>
    private static MiniLmBatch1 CreateOurs(WeightType weights)
    {
        MiniLmBatch1 model = MiniLmBatch1.ForInference(Seed, weights);
        if (model.Layout.Pooling != Pooling.Mean) throw new InvalidOperationException($"{model.Layout.Name} pools with {model.Layout.Pooling}: all-MiniLM-L6-v2 pools by the mean");
        var rng = new Rng(Seed + 2);
        Span<float> parameters = model.Parameters;
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            if (!t.IsVector) continue;
            Span<float> values = parameters.Slice(t.Offset, t.Length);
            for (int i = 0; i < values.Length; i++)
                values[i] = t.Init == WeightInit.Ones ? 1f + 0.1f * rng.NextNormal() : 0.02f * rng.NextNormal();
        }
        model.PackWeights(); // reading Parameters unpacked the matrices
        return model;
    }

    [GlobalSetup(Target = nameof(Ours))]
    public void SetupOurs()
    {
        Prepare();
        _model = CreateOurs(WeightType.Float32);
        Bench.Repeat(() => Ours());
    }

    [GlobalSetup(Target = nameof(OursInt8))]
    public void SetupOursInt8()
    {
        Prepare();
        float[] exact = CreateOurs(WeightType.Float32).Predict(_tokens, _length).ToArray();
        GC.Collect();
        _model = CreateOurs(WeightType.Int8);
        ReadOnlySpan<float> reduced = _model.Predict(_tokens, _length);
        Console.WriteLine($"// {nameof(MiniLmEmbed)} ours Int8 ({_model.WeightMatrixBytes / 1e6:F1} MB of matrices), {Tokens} tokens: the embedding differs from our fp32 one by {Bench.RelativeMax(exact, reduced):E2} of the largest component (cosine {Cosine(exact, reduced):F7})");
        Bench.Repeat(() => Ours());
    }

    [GlobalSetup(Target = nameof(LlamaCppF32))]
    public void SetupF32() => SetupLlamaCpp(GgufTensorType.F32);

    [GlobalSetup(Target = nameof(LlamaCppQ8_0))]
    public void SetupQ8() => SetupLlamaCpp(GgufTensorType.Q8_0);

    private void SetupLlamaCpp(GgufTensorType type)
    {
        Prepare();
        MiniLmBatch1 model = CreateOurs(WeightType.Float32);
        _folder = Directory.CreateTempSubdirectory("gguf-minilm-bench-").FullName;
        string path = Path.Combine(_folder, $"{model.Layout.Name}.{type}.gguf");
        model.SaveGguf(path, ConfigPath, type);
        float[] exact = model.Predict(_tokens, _length).ToArray();
        model = null!;
        GC.Collect();

        var parameters = new ModelParams(path)
        {
            ContextSize = (uint)MiniLmBatch1.SeqLen, BatchSize = (uint)MiniLmBatch1.SeqLen, UBatchSize = (uint)MiniLmBatch1.SeqLen,
            Threads = Threads, BatchThreads = Threads, GpuLayerCount = 0, FlashAttention = false,
            Embeddings = true, PoolingType = LLamaPoolingType.Mean,
        };
        _weights = LLamaWeights.LoadFromFile(parameters);
        _context = _weights.CreateContext(parameters);
        if (_context.NativeHandle.PoolingType != LLamaPoolingType.Mean)
            throw new InvalidOperationException($"llama.cpp pools with {_context.NativeHandle.PoolingType}, not Mean");

        // Twice: a second decode in the same context must give the same embedding.
        LlamaCpp();
        float[] first = (float[])_theirs.Clone();
        LlamaCpp();
        double again = Bench.RelativeMax(first, _theirs);
        double toExact = Bench.RelativeMax(exact, _theirs);
        string gap = $"from our fp32 one by {toExact:E2} of its largest component (cosine {Cosine(exact, _theirs):F7})";
        double worst = toExact, bound = F32Tolerance;
        if (type == GgufTensorType.Q8_0)
        {
            MiniLmBatch1 reduced = CreateOurs(WeightType.Int8);
            ReadOnlySpan<float> ours = reduced.Predict(_tokens, _length);
            worst = Bench.RelativeMax(ours, _theirs);
            gap = $"from our int8 one by {worst:E2} (cosine {Cosine(ours, _theirs):F7}), {gap}";
            bound = Q8Tolerance;
        }
        Console.WriteLine($"// {nameof(MiniLmEmbed)} {type}, {Tokens} tokens: llama.cpp's embedding differs {gap}; a second decode from the first by {again:E2}");
        if (!(worst <= bound && again <= 1e-6))
            throw new InvalidOperationException($"{nameof(MiniLmEmbed)} {type}, {Tokens} tokens: llama.cpp's embedding differs from ours by {worst:E2} of the largest component (allowed {bound:E0}), a second decode from the first by {again:E2}");
        GC.Collect();
        Bench.Repeat(() => LlamaCpp());
    }

    /// <summary>The cosine of two unit-length embeddings: their dot product.</summary>
    private static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0;
        for (int i = 0; i < a.Length; i++) dot += (double)a[i] * b[i];
        return dot;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _context?.Dispose();
        _weights?.Dispose();
        (_context, _weights, _model) = (null, null, null);
        if (_folder.Length > 0 && Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
        _folder = "";
        GC.Collect();
    }

    /// <summary>The sentence's unit-length mean embedding, fp32 weights.</summary>
    [Benchmark(Baseline = true)]
    public float Ours() => _model!.Predict(_tokens, _length)[0];

    /// <summary>The same with 8-bit weight matrices (against llama.cpp's Q8_0).</summary>
    [Benchmark]
    public float OursInt8() => Ours();

    [Benchmark]
    public float LlamaCppF32() => LlamaCpp();

    [Benchmark]
    public float LlamaCppQ8_0() => LlamaCpp();

    /// <summary>The whole sentence in one <c>llama_decode</c> (sequence 0, positions from 0), its pooled row scaled to unit length.</summary>
    private float LlamaCpp()
    {
        SafeLLamaContextHandle context = _context!.NativeHandle;
        context.MemoryClear(true);
        _batch.Clear();
        for (int i = 0; i < _tokens.Length; i++) _batch.Add(_tokens[i], i, LLamaSeqId.Zero, true);
        Bench.Check(context.Decode(_batch));
        ReadOnlySpan<float> pooled = context.GetEmbeddingsSeq(LLamaSeqId.Zero);
        if (pooled.Length != _theirs.Length) throw new InvalidOperationException($"llama.cpp's pooled embedding has {pooled.Length} components, not {_theirs.Length}");
        double sum = 0;
        foreach (float v in pooled) sum += (double)v * v;
        float scale = (float)(1 / Math.Max(Math.Sqrt(sum), 1e-12));
        for (int i = 0; i < _theirs.Length; i++) _theirs[i] = pooled[i] * scale;
        return _theirs[0];
    }
}
