using System;
using System.IO;
using BenchmarkDotNet.Attributes;
using LLama;
using LLama.Common;
using LLama.Native;

namespace TransformerGen.LlamaCpp.Bench;

/// <summary>
/// flan-t5-small (<see cref="FlanT5Small"/>) against llama.cpp 0.30.0's <c>t5</c> in LLamaSharp on the GGUF export of the
/// same weights: ours with fp32 matrices (<see cref="Ours"/>, the baseline) against the F32 file, ours with 8-bit matrices
/// (<see cref="OursInt8"/>, <c>ForInference(path, WeightType.Int8)</c>) against the Q8_0 file, the same thread count on
/// both sides, llama.cpp with an F32 key/value cache and no flash attention. Each case builds only what it times, checks
/// it first and warms up by time (<see cref="Bench.WarmUp"/>). The check decodes the source greedily for 33 steps (the
/// start token, then 32 chosen ones) with our fp32 instance and feeds the other side the same tokens: llama.cpp's F32
/// logits must agree within 1e-3 of the largest (its GELU reads an fp16 table: 2.5e-4 in <c>tests/Export.Tests/GgufT5Tests</c>)
/// and choose the same token at every step; the Q8_0 file's and our int8 instance's gaps are printed.
/// </summary>
/// <remarks>
/// The two sides split the work differently: our <c>Encode</c> also computes every decoder layer's cross-attention keys
/// and values from the encoder's output (8 layers × 2 products of 32 rows), once per source; llama.cpp's
/// <c>llama_encode</c> keeps only the encoder's output, and every <c>llama_decode</c> computes those keys and values
/// again (its <c>llm_build_t5_dec</c> multiplies <c>wk_cross</c> and <c>wv_cross</c> by <c>embd_enc</c>).
/// </remarks>
[MemoryDiagnoser]
public abstract class T5Benchmarks
{
    public const int SourceTokens = 32, TargetTokens = 32;

    /// <summary>The config's decoder_start_token_id, pad_token_id (greedy decoding never chooses either) and eos_token_id.</summary>
    private const int StartToken = 0, PadToken = 0, EndToken = 1;

    private const ulong Seed = 20261207;
    private const string EncoderTable = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight";
    private const string DecoderTable = "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight";
    private const string Config = "models/flan-t5-small/config.json";

    private protected Seq2SeqModel? _model;
    private protected LLamaContext? _context;
    private protected int[] _source = [];
    private LLamaWeights? _weights;
    private readonly LLamaBatch _batch = new();
    private readonly float[] _choice = new float[FlanT5Small.TargetVocab];
    private string _folder = "";
    private int _position;

    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>The timed work on each side.</summary>
    private protected abstract void RunOurs();
    private protected abstract void RunLlamaCpp();

    /// <summary>Before each warm-up round and each iteration (where the benchmark sets one up).</summary>
    private protected virtual void StartOurs() { }
    private protected virtual void StartLlamaCpp() { }

    /// <summary>Calls per warm-up round (the benchmark's invocations per iteration).</summary>
    private protected virtual int CallsPerRound => 1;

    private void Prepare()
    {
        Parallelism.ThreadCount = Threads;
        // 31 random ids in [2, 32128) (neither the padding and start id 0 nor </s> 1), then </s>, as the tokenizer closes a source.
        var rng = new Rng(Seed + 1);
        _source = new int[SourceTokens];
        for (int i = 0; i < _source.Length; i++) _source[i] = 2 + rng.NextInt(FlanT5Small.Vocab - 2);
        _source[^1] = EndToken;
    }

    /// <summary>
    /// The fp32 inference instance, seeded: the norms' gains moved off 1 and both relative-position tables drawn N(0, 1)
    /// (the initialization draws them as small as a matrix, where a trained T5's biases span several units), so that
    /// the check covers them.
    /// </summary>
    private static FlanT5Small CreateOurs()
    {
        FlanT5Small model = FlanT5Small.ForInference(Seed);
        if ((model.Layout.BosToken, model.Layout.PadToken, model.Layout.EosToken) != (StartToken, PadToken, EndToken))
            throw new InvalidOperationException($"the compiled flan-t5-small's start, pad and end tokens are {model.Layout.BosToken}, {model.Layout.PadToken}, {model.Layout.EosToken}");
        var rng = new Rng(Seed + 2);
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            if (t.Name is not (EncoderTable or DecoderTable) && !t.IsVector) continue;
            Span<float> values = model.Parameters.Slice(t.Offset, t.Length);
            for (int i = 0; i < values.Length; i++)
                values[i] = t.IsVector ? (t.Init == WeightInit.Ones ? 1f : 0f) + 0.1f * rng.NextNormal() : rng.NextNormal();
        }
        model.PackWeights(); // reading Parameters unpacked the matrices
        return model;
    }

    /// <summary>Greedy choice as <c>Translate</c> makes it: the padding and start id (0) ruled out, then the largest logit.</summary>
    private int Greedy(ReadOnlySpan<float> logits)
    {
        logits.CopyTo(_choice);
        _choice[PadToken] = _choice[StartToken] = float.NegativeInfinity;
        int best = 0;
        for (int i = 1; i < _choice.Length; i++) if (_choice[i] > _choice[best]) best = i;
        return best;
    }

    private delegate ReadOnlySpan<float> Step(int token);

    /// <summary>
    /// Decodes the source greedily with <paramref name="reference"/> (our fp32 instance) and feeds <paramref name="other"/>
    /// the same tokens after <paramref name="encode"/>: the largest gap between their next-token logits (of the largest of
    /// ours) and the steps where both choose the same token, of 33.
    /// </summary>
    private (double Worst, int Agreed) Compare(Seq2SeqModel reference, Action encode, Step other)
    {
        reference.Encode(_source);
        encode();
        double worst = 0;
        int agreed = 0, token = StartToken;
        for (int step = 0; step <= TargetTokens; step++)
        {
            ReadOnlySpan<float> ours = reference.Append([token]);
            ReadOnlySpan<float> theirs = other(token);
            worst = Math.Max(worst, Bench.RelativeMax(ours, theirs));
            int theirChoice = Greedy(theirs);
            token = Greedy(ours);
            if (theirChoice == token) agreed++;
        }
        return (worst, agreed);
    }

    [GlobalSetup(Target = nameof(Ours))]
    public void SetupOurs()
    {
        Prepare();
        _model = CreateOurs();
        WarmUp(StartOurs, RunOurs);
    }

    [GlobalSetup(Target = nameof(OursInt8))]
    public void SetupOursInt8()
    {
        Prepare();
        FlanT5Small exact = CreateOurs();
        string path = Path.Combine(Path.GetTempPath(), $"flan-t5-small-bench-{Environment.ProcessId}.safetensors");
        try
        {
            exact.Save(path);
            _model = FlanT5Small.ForInference(path, WeightType.Int8);
        }
        finally
        {
            File.Delete(path);
        }
        Seq2SeqModel reduced = _model;
        int[] one = new int[1]; // a span of the caller's stack could not leave the lambda
        (double worst, int agreed) = Compare(exact, () => reduced.Encode(_source), token => { one[0] = token; return reduced.Append(one); });
        Console.WriteLine($"// {Name} ours Int8 ({reduced.WeightMatrixBytes / 1e6:F1} MB of matrices, fp32 {exact.WeightMatrixBytes / 1e6:F1} MB): next-token logits differ from our fp32 ones by {worst:E2} of the largest at most; {agreed} of {TargetTokens + 1} greedy tokens the same");
        exact = null!;
        GC.Collect();
        WarmUp(StartOurs, RunOurs);
    }

    [GlobalSetup(Target = nameof(LlamaCppF32))]
    public void SetupF32() => SetupLlamaCpp(GgufTensorType.F32);

    [GlobalSetup(Target = nameof(LlamaCppQ8_0))]
    public void SetupQ8() => SetupLlamaCpp(GgufTensorType.Q8_0);

    private void SetupLlamaCpp(GgufTensorType type)
    {
        Prepare();
        FlanT5Small model = CreateOurs();
        _folder = Directory.CreateTempSubdirectory("gguf-t5-bench-").FullName;
        string path = Path.Combine(_folder, $"{model.Layout.Name}.{type}.gguf");
        model.SaveGguf(path, Path.Combine(AppContext.BaseDirectory, Config), type);
        var parameters = new ModelParams(path)
        {
            ContextSize = 64, BatchSize = 64, UBatchSize = 64, Threads = Threads, BatchThreads = Threads, GpuLayerCount = 0,
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false,
        };
        _weights = LLamaWeights.LoadFromFile(parameters);
        if (!_weights.NativeHandle.HasEncoder) throw new InvalidOperationException($"llama.cpp reads '{path}' as a model without an encoder");
        if (_weights.NativeHandle.Vocab.DecoderStartToken is not { } start || (int)start != StartToken)
            throw new InvalidOperationException($"the file's decoder start id is {_weights.NativeHandle.Vocab.DecoderStartToken}, not {StartToken}");
        _context = _weights.CreateContext(parameters);

        // Both sides must compute the same thing (F32), or say how far apart they are (Q8_0).
        (double worst, int agreed) = Compare(model, () => { _context.NativeHandle.MemoryClear(true); EncodeLlamaCpp(); _position = 0; }, DecodeLlamaCpp);
        Console.WriteLine($"// {Name} {type}: llama.cpp's next-token logits differ from ours by {worst:E2} of the largest at most; {agreed} of {TargetTokens + 1} greedy tokens the same");
        if (type == GgufTensorType.F32 && !(worst <= 1e-3 && agreed == TargetTokens + 1))
            throw new InvalidOperationException($"{Name}: llama.cpp's F32 logits differ from ours by {worst:E2} of the largest, {agreed} of {TargetTokens + 1} greedy tokens the same");
        model = null!; // only llama.cpp runs in this case
        GC.Collect();
        WarmUp(StartLlamaCpp, RunLlamaCpp);
    }

    private void WarmUp(Action start, Action run) => Bench.Repeat(() =>
    {
        start();
        for (int i = 0; i < CallsPerRound; i++) run();
    });

    // BenchmarkDotNet's in-process toolchain runs a class it derives from the benchmark's: name the benchmark's own.
    private string Name
    {
        get
        {
            Type type = GetType();
            while (type.Assembly != typeof(T5Benchmarks).Assembly) type = type.BaseType!;
            return type.Name;
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _context?.Dispose();
        _weights?.Dispose();
        (_context, _weights, _model) = (null, null, null);
        if (_folder.Length > 0 && Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
        GC.Collect();
    }

    /// <summary>The source in one batch through <c>llama_encode</c> (llama.cpp keeps the encoder's output for the decoder).</summary>
    private protected void EncodeLlamaCpp()
    {
        _batch.Clear();
        for (int i = 0; i < _source.Length; i++) _batch.Add(_source[i], i, LLamaSeqId.Zero, false);
        Bench.Check(_context!.NativeHandle.Encode(_batch), "encode");
    }

    /// <summary>
    /// Empties llama.cpp's decoder cache, encodes the source and decodes the start token (position 0): the greedy token
    /// that follows it.
    /// </summary>
    private protected int StartLlamaCppDecoder()
    {
        _context!.NativeHandle.MemoryClear(true);
        EncodeLlamaCpp();
        _position = 0;
        return Greedy(DecodeLlamaCpp(StartToken));
    }

    /// <summary>One token through <c>llama_decode</c> at the next position: the next-token logits.</summary>
    private ReadOnlySpan<float> DecodeLlamaCpp(int token)
    {
        _batch.Clear();
        _batch.Add(token, _position++, LLamaSeqId.Zero, true);
        Bench.Check(_context!.NativeHandle.Decode(_batch));
        return _context.NativeHandle.GetLogitsIth(0);
    }

    /// <summary>Encodes the source and appends the start token on our side: the greedy token that follows it.</summary>
    private protected int StartOursDecoder()
    {
        _model!.Encode(_source);
        return Greedy(_model.Append([StartToken]));
    }

    /// <summary>Appends <paramref name="token"/> (ours, else llama.cpp) and chooses the next one.</summary>
    private protected int NextOurs(int token) => Greedy(_model!.Append([token]));
    private protected int NextLlamaCpp(int token) => Greedy(DecodeLlamaCpp(token));

    [Benchmark(Baseline = true)]
    public void Ours() => RunOurs();

    [Benchmark]
    public void OursInt8() => RunOurs();

    [Benchmark]
    public void LlamaCppF32() => RunLlamaCpp();

    [Benchmark]
    public void LlamaCppQ8_0() => RunLlamaCpp();
}

/// <summary>
/// Encoding a 32-token source: our <c>Encode</c> (the encoder, then every decoder layer's cross-attention keys and values)
/// against <c>llama_encode</c> (the encoder only; see the remarks of <see cref="T5Benchmarks"/>).
/// </summary>
public class FlanT5SmallEncode : T5Benchmarks
{
    private protected override void RunOurs() => _model!.Encode(_source);
    private protected override void RunLlamaCpp() => EncodeLlamaCpp();
}

/// <summary>
/// One greedy decoding step with the caches: append the token chosen last, choose the next one from the logits (the
/// padding and start id ruled out, then the largest). Each iteration first encodes the source, empties the decoder's
/// cache and decodes the start token (untimed, in <c>IterationSetup</c>), then times 32 steps, target positions 1 … 32:
/// the figure is the mean time per generated token.
/// </summary>
[InvocationCount(TargetTokens)]
public class FlanT5SmallDecode : T5Benchmarks
{
    private int _next, _count;

    private protected override int CallsPerRound => TargetTokens;

    [IterationSetup(Targets = [nameof(Ours), nameof(OursInt8)])]
    public void StartOursIteration() => StartOurs();

    [IterationSetup(Targets = [nameof(LlamaCppF32), nameof(LlamaCppQ8_0)])]
    public void StartLlamaCppIteration() => StartLlamaCpp();

    private protected override void StartOurs() => (_next, _count) = (StartOursDecoder(), 0);
    private protected override void StartLlamaCpp() => (_next, _count) = (StartLlamaCppDecoder(), 0);

    private protected override void RunOurs()
    {
        if (_count++ == TargetTokens) StartOurs(); // only if BenchmarkDotNet ran more calls than set up
        _next = NextOurs(_next);
    }

    private protected override void RunLlamaCpp()
    {
        if (_count++ == TargetTokens) StartLlamaCpp();
        _next = NextLlamaCpp(_next);
    }
}
