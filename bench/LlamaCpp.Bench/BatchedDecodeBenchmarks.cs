using System;
using System.IO;
using BenchmarkDotNet.Attributes;
using LLama;
using LLama.Common;
using LLama.Native;

namespace TransformerGen.LlamaCpp.Bench;

/// <summary>
/// Serving several conversations at once over one copy of SmolLM2-135M's weights. <see cref="Sequences"/> sequences
/// (1, 4, 8 or 16) each hold their own 64-token prompt (different random tokens); one timed call is ONE decode step
/// that appends one new token to every sequence and returns their next-token logits, one row each, so tokens/s is
/// Sequences / (time per call). Each iteration starts from the prompts (untimed, in <c>IterationSetup</c>) and times 32
/// steps, positions 64 … 95 of every sequence.
/// <list type="bullet">
/// <item><c>Ours</c>, <c>OursInt8</c>: one instance of <see cref="SmolLm2Batched"/> (16 key/value cache slots), one
/// <c>Append(tokens, lengths, sequences)</c> of Sequences tokens.</item>
/// <item><c>OursSeparate</c>, <c>OursSeparateInt8</c>: the baseline without batching, Sequences single-sequence
/// instances (<see cref="SmolLm2"/>) over one <see cref="ModelWeights"/>, stepped one after another, one
/// <c>Append</c> of one token each.</item>
/// <item><c>LlamaCppF32</c>, <c>LlamaCppQ8_0</c>: llama.cpp (LLamaSharp 0.30.0) on the GGUF export of the same weights,
/// one context of 16 sequences (a separate 128-cell F32 key/value stream per sequence, <c>kv_unified</c> off, no flash
/// attention), one <c>llama_decode</c> of a batch of Sequences tokens, each with its own sequence id and logits.</item>
/// </list>
/// Before timing, the logits are checked: llama.cpp's rows of a batched step against a decode of each sequence alone
/// (within 1e-3 of the largest logit) and, at F32, against ours (1e-4); our batched rows against the separate instances.
/// </summary>
[MemoryDiagnoser]
[InvocationCount(Steps)]
public partial class SmolLm2BatchedDecode
{
    /// <summary>The cache slots of <see cref="SmolLm2Batched"/> and llama.cpp's <c>n_seq_max</c>.</summary>
    public const int MaxSequences = 16;

    /// <summary>Each sequence's prompt, the decode steps timed per iteration, and the positions each sequence has room for.</summary>
    public const int Prompt = 64, Steps = 32, Positions = 128;

    // The cells of each sequence's key/value stream in llama.cpp (its padding of a stream).
    private const int LlamaCppStreamCells = 256;

    private const ulong Seed = 7;
    private const string Config = "models/SmolLM2-135M/config.json";

    // Sequence s's prompt is _prompts[s * Prompt ..]; the token appended to sequence s by step k is _stepTokens[k * MaxSequences + s].
    private int[] _prompts = [], _stepTokens = [];
    private int _step;
    private string _folder = "";

    private SmolLm2[] _separate = [];

    private LLamaWeights? _weights;
    private LLamaContext? _context;
    private LLamaBatch? _batch;

    /// <summary>Sequences served at once: tokens per decode step.</summary>
    [Params(1, 4, 8, 16)]
    public int Sequences { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    private void CreateTokens(int vocab)
    {
        var rng = new Rng(17);
        _prompts = new int[MaxSequences * Prompt];
        _stepTokens = new int[Steps * MaxSequences];
        for (int i = 0; i < _prompts.Length; i++) _prompts[i] = rng.NextInt(vocab);
        for (int i = 0; i < _stepTokens.Length; i++) _stepTokens[i] = rng.NextInt(vocab);
    }

    private ReadOnlySpan<int> PromptOf(int sequence) => _prompts.AsSpan(sequence * Prompt, Prompt);

    private int StepToken(int step, int sequence) => _stepTokens[step * MaxSequences + sequence];

    private string TemporaryFolder()
    {
        if (_folder.Length == 0) _folder = Directory.CreateTempSubdirectory("batched-bench-").FullName;
        return _folder;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _context?.Dispose();
        _weights?.Dispose();
        (_context, _weights, _batch) = (null, null, null);
        _separate = [];
        CleanupBatched();
        if (_folder.Length > 0 && Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
        _folder = "";
        GC.Collect();
    }

    partial void CleanupBatched();

    // ---------------------------------------------------------------- ours, one instance per sequence (the baseline without batching)

    [GlobalSetup(Target = nameof(OursSeparate))]
    public void SetupSeparate() => SetupSeparate(WeightType.Float32);

    [GlobalSetup(Target = nameof(OursSeparateInt8))]
    public void SetupSeparateInt8() => SetupSeparate(WeightType.Int8);

    private void SetupSeparate(WeightType type)
    {
        Parallelism.ThreadCount = Threads;
        ModelWeights weights = SharedWeights(type);
        CreateTokens(weights.Layout.Vocab);
        _separate = new SmolLm2[Sequences];
        for (int s = 0; s < Sequences; s++) _separate[s] = SmolLm2.ForInference(weights);
        GC.Collect();
        Bench.Repeat(() =>
        {
            StartSeparate();
            for (int k = 0; k < Steps; k++) OursSeparate();
        });
    }

    /// <summary>
    /// The seeded weights as one read-only copy for any number of instances: <c>LoadWeights</c> reads a checkpoint, so the
    /// seeded fp32 parameters go through a temporary safetensors file (and are reduced to <paramref name="type"/> at load).
    /// </summary>
    private ModelWeights SharedWeights(WeightType type)
    {
        string path = Path.Combine(TemporaryFolder(), "smollm2-seeded.safetensors");
        if (!File.Exists(path)) SmolLm2.ForInference(Seed).Save(path);
        return SmolLm2.LoadWeights(path, type);
    }

    [IterationSetup(Targets = [nameof(OursSeparate), nameof(OursSeparateInt8)])]
    public void StartSeparate()
    {
        for (int s = 0; s < _separate.Length; s++)
        {
            _separate[s].ResetCache();
            _separate[s].Append(PromptOf(s));
        }
        _step = 0;
    }

    /// <summary>One token appended to each sequence, instance after instance (fp32 weights shared by all).</summary>
    [Benchmark]
    public float OursSeparate()
    {
        if (_step == Steps) StartSeparate(); // only if BenchmarkDotNet ran more than Steps calls in an iteration
        float last = 0;
        for (int s = 0; s < _separate.Length; s++) last = _separate[s].Append([StepToken(_step, s)])[0];
        _step++;
        return last;
    }

    /// <summary>As <see cref="OursSeparate"/> with 8-bit weight matrices.</summary>
    [Benchmark]
    public float OursSeparateInt8() => OursSeparate();

    // ---------------------------------------------------------------- llama.cpp, one context of 16 sequences

    [GlobalSetup(Target = nameof(LlamaCppF32))]
    public void SetupF32() => SetupLlamaCpp(GgufTensorType.F32);

    [GlobalSetup(Target = nameof(LlamaCppQ8_0))]
    public void SetupQ8() => SetupLlamaCpp(GgufTensorType.Q8_0);

    private void SetupLlamaCpp(GgufTensorType type)
    {
        Parallelism.ThreadCount = Threads;
        // Q8_0 from our 8-bit instance: the file holds its blocks unchanged, so both engines multiply the same weights.
        SmolLm2 reference = SmolLm2.ForInference(Seed, type == GgufTensorType.Q8_0 ? WeightType.Int8 : WeightType.Float32);
        int vocab = reference.Layout.Vocab;
        CreateTokens(vocab);
        string path = Path.Combine(TemporaryFolder(), $"{reference.Layout.Name}.{type}.gguf");
        reference.SaveGguf(path, Path.Combine(AppContext.BaseDirectory, Config), type);
        // Without kv_unified, llama.cpp gives each of the SeqMax sequences its own stream of ContextSize / SeqMax cells, and
        // attention reads only the stream of the token's sequence. It pads a stream to 256 cells (asked for 128, it
        // allocates 256 and says so), so 256 are asked for; a step reads 64 + Steps of them at most.
        var parameters = new ModelParams(path)
        {
            ContextSize = MaxSequences * LlamaCppStreamCells, SeqMax = MaxSequences, KVUnified = false,
            BatchSize = Prompt, UBatchSize = Prompt, Threads = Threads, BatchThreads = Threads, GpuLayerCount = 0,
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false,
        };
        _weights = LLamaWeights.LoadFromFile(parameters);
        _context = _weights.CreateContext(parameters);
        _batch = new LLamaBatch();
        SafeLLamaContextHandle context = _context.NativeHandle;
        for (int s = 0; s < Sequences; s++)
        {
            _batch.Clear();
            for (int i = 0; i < Prompt; i++) _batch.Add(PromptOf(s)[i], i, (LLamaSeqId)s, i == Prompt - 1);
            Bench.Check(context.Decode(_batch));
        }

        // Two batched steps, every row kept; then the same tokens decoded one sequence at a time (a batch of one), and by ours.
        const int checkedSteps = 2;
        var rows = new float[checkedSteps, Sequences][];
        StartLlamaCpp();
        for (int k = 0; k < checkedSteps; k++)
        {
            LlamaCppStep();
            for (int s = 0; s < Sequences; s++) rows[k, s] = context.GetLogitsIth(s).ToArray();
        }
        StartLlamaCpp();
        double alone = 0, ours = 0;
        for (int s = 0; s < Sequences; s++)
        {
            reference.ResetCache();
            reference.Append(PromptOf(s));
            for (int k = 0; k < checkedSteps; k++)
            {
                _batch.Clear();
                _batch.Add(StepToken(k, s), Prompt + k, (LLamaSeqId)s, true);
                Bench.Check(context.Decode(_batch));
                alone = Math.Max(alone, Bench.RelativeMax(rows[k, s], context.GetLogitsIth(0)));
                ours = Math.Max(ours, Bench.RelativeMax(reference.Append([StepToken(k, s)]), rows[k, s]));
            }
        }
        Console.WriteLine($"// {GetType().Name} {type}, {Sequences} sequences: llama.cpp's batched rows differ from each sequence decoded alone by {alone:E2} and from ours ({reference.WeightType}, the same weights, one sequence) by {ours:E2} of the largest logit at most");
        if (!(alone <= 1e-3))
            throw new InvalidOperationException($"llama.cpp's batched rows differ from each sequence decoded alone by {alone:E2} of the largest logit");
        if (type == GgufTensorType.F32 && !(ours <= 1e-4))
            throw new InvalidOperationException($"llama.cpp's F32 batched rows differ from ours by {ours:E2} of the largest logit");
        GC.Collect();
        Bench.Repeat(() =>
        {
            StartLlamaCpp();
            for (int k = 0; k < Steps; k++) LlamaCppStep();
        });
    }

    /// <summary>Drops every position past the prompt from each sequence's cache, so the next step appends at 64 again.</summary>
    [IterationSetup(Targets = [nameof(LlamaCppF32), nameof(LlamaCppQ8_0)])]
    public void StartLlamaCpp()
    {
        // LLamaSharp's MemorySequenceRemove drops llama_memory_seq_rm's success flag (it returns void), so the last
        // position left is read back instead.
        SafeLLamaContextHandle context = _context!.NativeHandle;
        for (int s = 0; s < Sequences; s++)
        {
            context.MemorySequenceRemove((LLamaSeqId)s, Prompt, -1);
            if (context.MemorySequenceMaxPosition((LLamaSeqId)s) != Prompt - 1)
                throw new InvalidOperationException($"llama.cpp kept positions past {Prompt - 1} of sequence {s}");
        }
        _step = 0;
    }

    [Benchmark]
    public float LlamaCppF32() => LlamaCppStep();

    [Benchmark]
    public float LlamaCppQ8_0() => LlamaCppStep();

    /// <summary>One batch of Sequences tokens, token s at sequence s's next position, logits for every row.</summary>
    private float LlamaCppStep()
    {
        if (_step == Steps) StartLlamaCpp();
        _batch!.Clear();
        for (int s = 0; s < Sequences; s++) _batch.Add(StepToken(_step, s), Prompt + _step, (LLamaSeqId)s, true);
        _step++;
        SafeLLamaContextHandle context = _context!.NativeHandle;
        Bench.Check(context.Decode(_batch));
        return context.GetLogitsIth(Sequences - 1)[0];
    }
}
