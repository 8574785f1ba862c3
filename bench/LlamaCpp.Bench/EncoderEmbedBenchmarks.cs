using System;
using System.IO;
using BenchmarkDotNet.Attributes;
using LLama;
using LLama.Common;
using LLama.Native;

namespace TransformerGen.LlamaCpp.Bench;

/// <summary>
/// One sentence embedding of a compiled sentence embedder, a sentence of <see cref="Tokens"/> tokens ([CLS], random ids,
/// [SEP]; no padding, token types 0): ours (<c>Predict(tokens, [length])</c>, the exact-length pass, with fp32 and with
/// 8-bit matrices) against llama.cpp 0.30.0 in LLamaSharp on our GGUF export of the same weights (F32 and Q8_0) in
/// embedding mode with the model's pooling: one <c>llama_decode</c> of the whole sentence, then its pooled row, scaled to
/// unit length as ours is. The same thread count on both sides (<see cref="Parallelism.ThreadCount"/>; llama.cpp's
/// <c>n_threads</c> and <c>n_threads_batch</c>), no flash attention. Each case builds only what it times, checks it first
/// and warms up by time (<see cref="Bench.WarmUp"/>).
/// </summary>
/// <remarks>
/// The check before timing: llama.cpp's F32 embedding must be within <see cref="F32Tolerance"/> of the largest component
/// of ours in fp32, no tighter because ggml's GELU reads an fp16 table of the tanh form where BERT's and ModernBERT's is
/// erf (<c>tests/Export.Tests/GgufBertTests.cs</c> and <c>GgufModernBertTests.cs</c> show that is the whole gap). The
/// Q8_0 file holds the weights our int8 instance multiplies by (Q8_0's block is ours), but llama.cpp also rounds the
/// activations to 8 bits per block of 32 where ours keeps 13, so its embedding must be within <see cref="Q8Tolerance"/>
/// of our int8 one; its distance to our fp32 one is printed as well, as is our int8 instance's, each with the cosine,
/// which a single component's gap does not sway. llama.cpp keeps no memory for its BERT family, so nothing is kept from
/// one decode to the next (the setup checks that a second decode gives the same embedding); the memory is cleared before
/// each decode all the same, which costs nothing when there is none.
/// </remarks>
[MemoryDiagnoser]
public abstract class EncoderEmbedBenchmarks<TModel> where TModel : EncoderModel
{
    /// <summary>How far llama.cpp's F32 embedding may be from ours, over our largest component (ggml's GELU table).</summary>
    public const double F32Tolerance = 2e-3;

    /// <summary>How far llama.cpp's Q8_0 embedding may be from our int8 one, over our largest component.</summary>
    public const double Q8Tolerance = 2e-2;

    /// <summary>The seed of the weights and of the sentence.</summary>
    protected abstract ulong Seed { get; }

    /// <summary>The config.json the model was compiled from, beside the program (the GGUF export reads it).</summary>
    protected abstract string Config { get; }

    /// <summary>The vocabulary the sentence's ids are drawn from.</summary>
    protected abstract int Vocab { get; }

    /// <summary>The [CLS], [SEP] and padding ids, none of which is drawn inside the sentence.</summary>
    protected abstract (int Cls, int Sep, int Pad) SpecialIds { get; }

    /// <summary>The pooling the model was compiled with (its folder's sentence-transformers modules).</summary>
    protected abstract Pooling Pooling { get; }

    /// <summary>The generated <c>ForInference(seed, weights)</c>.</summary>
    protected abstract TModel ForInference(ulong seed, WeightType weights);

    // The benchmark's own class (BenchmarkDotNet runs a type it derives from it in process).
    private string Name
    {
        get
        {
            Type t = GetType();
            while (t.BaseType is { } b && !(b.IsGenericType && b.GetGenericTypeDefinition() == typeof(EncoderEmbedBenchmarks<>))) t = b;
            return t.Name;
        }
    }

    private LLamaPoolingType LlamaPooling => Pooling == Pooling.FirstToken ? LLamaPoolingType.CLS : LLamaPoolingType.Mean;

    private EncoderModel? _model;
    private int[] _tokens = [];
    private readonly int[] _length = new int[1];
    private float[] _theirs = [];
    private string _folder = "";
    private LLamaWeights? _weights;
    private LLamaContext? _context;
    private readonly LLamaBatch _batch = new();

    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>The sentence's length in tokens, [CLS] and [SEP] included (each benchmark's own [Params]).</summary>
    public abstract int Tokens { get; set; }

    /// <summary>
    /// The sentence's ids, and the thread count on our side: [CLS], then Tokens − 2 seeded ids of the vocabulary that are
    /// none of [CLS], [SEP] and padding, then [SEP], as the tokenizer frames a sentence.
    /// </summary>
    private void Prepare()
    {
        Parallelism.ThreadCount = Threads;
        (int cls, int sep, int pad) = SpecialIds;
        var rng = new Rng(Seed + 1);
        _tokens = new int[Tokens];
        for (int i = 1; i < _tokens.Length - 1; i++)
            do _tokens[i] = rng.NextInt(Vocab); while (_tokens[i] == cls || _tokens[i] == sep || _tokens[i] == pad);
        (_tokens[0], _tokens[^1]) = (cls, sep);
        _length[0] = _tokens.Length;
    }

    private string ConfigPath => Path.Combine(AppContext.BaseDirectory, Config);

    /// <summary>
    /// An inference instance from the seed whose norms' gains are drawn 1 + N(0, 0.1²) and other vectors (biases) N(0,
    /// 0.02²), seeded, so that the check covers them; the matrices and tables keep the model's own seeded initialization.
    /// The same values whatever <paramref name="weights"/>: an 8-bit instance quantizes again, to the same bytes, what
    /// reading its parameters dequantized.
    /// </summary>
    private TModel CreateOurs(WeightType weights)
    {
        TModel model = ForInference(Seed, weights);
        if (model.Layout.Pooling != Pooling)
            throw new InvalidOperationException($"{model.Layout.Name} pools with {model.Layout.Pooling}, its folder's modules with {Pooling}");
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
        Console.WriteLine($"// {Name} ours Int8 ({_model.WeightMatrixBytes / 1e6:F1} MB of matrices), {Tokens} tokens: the embedding differs from our fp32 one by {Bench.RelativeMax(exact, reduced):E2} of the largest component (cosine {Cosine(exact, reduced):F7})");
        Bench.Repeat(() => Ours());
    }

    [GlobalSetup(Target = nameof(LlamaCppF32))]
    public void SetupF32() => SetupLlamaCpp(GgufTensorType.F32);

    [GlobalSetup(Target = nameof(LlamaCppQ8_0))]
    public void SetupQ8() => SetupLlamaCpp(GgufTensorType.Q8_0);

    private void SetupLlamaCpp(GgufTensorType type)
    {
        Prepare();
        TModel model = CreateOurs(WeightType.Float32);
        _folder = Directory.CreateTempSubdirectory("gguf-embed-bench-").FullName;
        string path = Path.Combine(_folder, $"{model.Layout.Name}.{type}.gguf");
        model.SaveGguf(path, ConfigPath, type);
        float[] exact = model.Predict(_tokens, _length).ToArray();
        uint seqLen = (uint)model.Layout.SeqLen;
        _theirs = new float[exact.Length];
        model = null!;
        GC.Collect();

        var parameters = new ModelParams(path)
        {
            ContextSize = seqLen, BatchSize = seqLen, UBatchSize = seqLen,
            Threads = Threads, BatchThreads = Threads, GpuLayerCount = 0, FlashAttention = false,
            Embeddings = true, PoolingType = LlamaPooling,
        };
        _weights = LLamaWeights.LoadFromFile(parameters);
        _context = _weights.CreateContext(parameters);
        if (_context.NativeHandle.PoolingType != LlamaPooling)
            throw new InvalidOperationException($"llama.cpp pools with {_context.NativeHandle.PoolingType}, not {LlamaPooling}");

        // Twice: a second decode in the same context must give the same embedding (nothing left over from the first).
        LlamaCpp();
        float[] first = (float[])_theirs.Clone();
        LlamaCpp();
        double again = Bench.RelativeMax(first, _theirs);
        double toExact = Bench.RelativeMax(exact, _theirs);
        string gap = $"from our fp32 one by {toExact:E2} of its largest component (cosine {Cosine(exact, _theirs):F7})";
        double worst = toExact, bound = F32Tolerance;
        if (type == GgufTensorType.Q8_0)
        {
            TModel reduced = CreateOurs(WeightType.Int8);
            ReadOnlySpan<float> ours = reduced.Predict(_tokens, _length);
            worst = Bench.RelativeMax(ours, _theirs);
            gap = $"from our int8 one by {worst:E2} (cosine {Cosine(ours, _theirs):F7}), {gap}";
            bound = Q8Tolerance;
        }
        Console.WriteLine($"// {Name} {type}, {Tokens} tokens: llama.cpp's embedding differs {gap}; a second decode from the first by {again:E2}");
        if (!(worst <= bound && again <= 1e-6))
            throw new InvalidOperationException($"{Name} {type}, {Tokens} tokens: llama.cpp's embedding differs from ours by {worst:E2} of the largest component (allowed {bound:E0}), a second decode from the first by {again:E2}");
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

    /// <summary>The sentence's unit-length embedding, fp32 weights.</summary>
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
