using System;
using System.Globalization;
using System.IO;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using TorchSharp;
using static TorchSharp.torch;

namespace TransformerGen.Model.Bench;

// Issue 15's long-sequence configuration: DModel 256, 4 layers, 8 heads of 32, DFF 1024, Batch 2, byte vocabulary; the
// attribute's defaults otherwise (pre-LN, sinusoidal positions, exact GELU, tied head), so TorchGpt mirrors it.
// AttentionKernel is left at Auto, which tiles from 512 positions.

[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 512, Batch = 2)]
public partial class LongGpt512 { }

[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 1024, Batch = 2)]
public partial class LongGpt1024 { }

[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 2048, Batch = 2)]
public partial class LongGpt2048 { }

[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 4096, Batch = 2)]
public partial class LongGpt4096 { }

// The same configuration with each training attention declared, for the crossover that sets Auto's threshold.

[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 64, Batch = 2, AttentionKernel = AttentionKernel.StoredProbabilities)]
public partial class StoredGpt64 { }

[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 128, Batch = 2, AttentionKernel = AttentionKernel.StoredProbabilities)]
public partial class StoredGpt128 { }

[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 256, Batch = 2, AttentionKernel = AttentionKernel.StoredProbabilities)]
public partial class StoredGpt256 { }

[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 512, Batch = 2, AttentionKernel = AttentionKernel.StoredProbabilities)]
public partial class StoredGpt512 { }


[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 64, Batch = 2, AttentionKernel = AttentionKernel.Tiled)]
public partial class TiledGpt64 { }

[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 128, Batch = 2, AttentionKernel = AttentionKernel.Tiled)]
public partial class TiledGpt128 { }

[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 256, Batch = 2, AttentionKernel = AttentionKernel.Tiled)]
public partial class TiledGpt256 { }

[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 512, Batch = 2, AttentionKernel = AttentionKernel.Tiled)]
public partial class TiledGpt512 { }


/// <summary>Model construction, the batch, and the bytes a step holds, shared by the two benchmark classes.</summary>
internal static class LongSequence
{
    public const float LearningRate = 1e-4f, WeightDecay = 0.01f;

    public static (int[] Tokens, int[] Targets) Batch(LanguageModel model)
    {
        var rng = new Rng(7);
        int count = model.Layout.Batch * model.Layout.SeqLen;
        var tokens = new int[count];
        for (int i = 0; i < count; i++) tokens[i] = rng.NextInt(model.Layout.Vocab);
        var targets = new int[count];
        for (int i = 0; i < count; i++) targets[i] = tokens[(i + 1) % count];
        return (tokens, targets);
    }

    /// <summary>The process's resident set and its peak since the last <see cref="ResetPeak"/> (Linux; 0 elsewhere).</summary>
    public static (long Current, long Peak) Resident()
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return (0, 0);
        long current = 0, peak = 0;
        foreach (string line in File.ReadLines(status))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) current = Kilobytes(line) * 1024;
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) peak = Kilobytes(line) * 1024;
        }
        return (current, peak);
    }

    /// <summary>
    /// Returns the C heap's free pages to the system (glibc's malloc_trim), then sets the peak resident set back to the
    /// current one (writing 5 to clear_refs, Linux 4.0 and later): memory freed before is then counted again when a step
    /// touches it, as a fresh process would.
    /// </summary>
    public static void ResetPeak()
    {
        GC.Collect();
        try { MallocTrim(0); }
        catch (DllNotFoundException) { }
        catch (EntryPointNotFoundException) { }
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    private static long Kilobytes(string line) =>
        long.Parse(line.Substring(line.IndexOf(':') + 1).Trim().Split(' ')[0], CultureInfo.InvariantCulture);
}

/// <summary>
/// The training step (forward, zeroed gradients, backward, AdamW) of the long-sequence configuration at SeqLen 512, 1024,
/// 2048 and 4096, ours against libtorch's with <c>F.scaled_dot_product_attention(is_causal: true)</c>, the same weights,
/// batch and thread count; the losses are checked to agree before anything is timed.
/// </summary>
/// <remarks>
/// <para>
/// A 4096-position step takes seconds on either side, so this class runs 1 warm-up and 3 measured iterations (the
/// global job's 3 and 10 would take most of an hour); the table reports each median.
/// </para>
/// <para>
/// Bytes, printed by the setups: ours is the model's <see cref="TransformerModel.BufferBytes"/>, every buffer it ever
/// uses, allocated when it is built; libtorch's is the growth of the process's peak resident set over its first training
/// step, with the C heap's free pages returned to the system before (the tensors the step creates: activations saved for
/// backward, gradients, AdamW's moments, temporaries), next to the parameters, which it holds beforehand.
/// </para>
/// </remarks>
[MemoryDiagnoser]
[WarmupCount(1)]
[IterationCount(3)]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
[CategoriesColumn]
public class LongSequenceBenchmarks
{
    private LanguageModel _model = null!;
    private AdamW _optimizer = null!;
    private int[] _tokens = null!, _targets = null!;

    private TorchGpt? _torch;
    private optim.Optimizer? _torchOptimizer;
    private Tensor? _torchTokens, _torchTargets;

    [Params(512, 1024, 2048, 4096)]
    public int SeqLen { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    private LanguageModel CreateModel() => SeqLen switch
    {
        512 => new LongGpt512(seed: 1),
        1024 => new LongGpt1024(seed: 1),
        2048 => new LongGpt2048(seed: 1),
        4096 => new LongGpt4096(seed: 1),
        _ => throw new ArgumentOutOfRangeException(nameof(SeqLen), SeqLen, "no model declared at that length"),
    };

    [GlobalSetup(Target = nameof(TrainingStep))]
    public void SetupOurs()
    {
        Parallelism.ThreadCount = Threads;
        LongSequence.ResetPeak();
        long before = LongSequence.Resident().Current;
        _model = CreateModel();
        _optimizer = new AdamW(_model, LongSequence.LearningRate, weightDecay: LongSequence.WeightDecay);
        (_tokens, _targets) = LongSequence.Batch(_model);
        TrainingStep();
        long peak = LongSequence.Resident().Peak;
        Console.WriteLine($"// bytes: ours SeqLen {SeqLen}, {Threads} thread(s): BufferBytes {_model.BufferBytes:N0} (+ AdamW moments {8L * _model.Parameters.Length:N0}); peak resident growth over build and first step {peak - before:N0}");
    }

    [GlobalSetup(Target = nameof(TorchTrainingStep))]
    public void SetupTorch()
    {
        set_num_threads(Threads);
        _model = CreateModel();
        (_tokens, _targets) = LongSequence.Batch(_model);
        _torch = new TorchGpt(_model);
        _torchOptimizer = optim.AdamW(_torch.Parameters, LongSequence.LearningRate, weight_decay: LongSequence.WeightDecay);
        _torchTokens = tensor(Array.ConvertAll(_tokens, t => (long)t), new long[] { _model.Layout.Batch, _model.Layout.SeqLen });
        _torchTargets = tensor(Array.ConvertAll(_targets, t => (long)t));

        // Both sides must compute the same thing: the same loss from the same weights.
        float ours = _model.Forward(_tokens, _targets);
        float theirs;
        using (DisposeScope scope = NewDisposeScope())
        using (no_grad())
            theirs = _torch.Loss(_torchTokens, _torchTargets).item<float>();
        if (!(Math.Abs(ours - theirs) <= 1e-4f * Math.Abs(theirs)))
            throw new InvalidOperationException($"SeqLen {SeqLen}: loss {ours} here but {theirs} in libtorch");
        Console.WriteLine($"// loss check SeqLen {SeqLen}: ours {ours:R}, libtorch {theirs:R}");
        _model = null!; // only the libtorch side from here on; its buffers go with it

        LongSequence.ResetPeak();
        long before = LongSequence.Resident().Current;
        TorchTrainingStep();
        long peak = LongSequence.Resident().Peak;
        long parameters = 0;
        foreach (var p in _torch.Parameters) parameters += 4 * p.numel();
        Console.WriteLine($"// bytes: libtorch SeqLen {SeqLen}, {Threads} thread(s): parameters {parameters:N0}; peak resident growth over the first step {peak - before:N0}");
    }

    [GlobalCleanup(Target = nameof(TorchTrainingStep))]
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
}

/// <summary>
/// Where the tiled attention becomes no slower: the long-sequence configuration's training step with the probabilities
/// stored (the baseline) and with tiled attention, at SeqLen 64 to 512. Auto's threshold in the generator
/// (Lowerer.TiledAttentionFromLength) is set from this run.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByParams)]
public class AttentionKernelCrossover : TrainingStepOf
{
    [Params(64, 128, 256, 512)]
    public int SeqLen { get; set; }

    [GlobalSetup(Target = nameof(StoredProbabilities))]
    public void SetupStored() => Build(SeqLen switch
    {
        64 => new StoredGpt64(seed: 1),
        128 => new StoredGpt128(seed: 1),
        256 => new StoredGpt256(seed: 1),
        _ => new StoredGpt512(seed: 1),
    });

    [GlobalSetup(Target = nameof(Tiled))]
    public void SetupTiled() => Build(SeqLen switch
    {
        64 => new TiledGpt64(seed: 1),
        128 => new TiledGpt128(seed: 1),
        256 => new TiledGpt256(seed: 1),
        _ => new TiledGpt512(seed: 1),
    });

    [Benchmark(Baseline = true)]
    public float StoredProbabilities() => Step();

    [Benchmark]
    public float Tiled() => Step();
}

/// <summary>
/// One model of the long-sequence configuration trained a step at a time (forward, zeroed gradients, backward, AdamW) at
/// each thread count: what the benchmark classes that compare two forms of a model share.
/// </summary>
public abstract class TrainingStepOf
{
    private LanguageModel _model = null!;
    private AdamW _optimizer = null!;
    private int[] _tokens = null!, _targets = null!;

    [Params(1, 2)]
    public int Threads { get; set; }

    protected void Build(LanguageModel model)
    {
        Parallelism.ThreadCount = Threads;
        _model = model;
        _optimizer = new AdamW(_model, LongSequence.LearningRate, weightDecay: LongSequence.WeightDecay);
        (_tokens, _targets) = LongSequence.Batch(_model);
    }

    protected float Step()
    {
        float loss = _model.Forward(_tokens, _targets);
        _model.ZeroGrad();
        _model.Backward();
        _optimizer.Step();
        return loss;
    }
}

// The long-sequence configuration at 1024 positions with RecomputeActivations, against LongGpt1024 (the same model).
[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 4, DFF = 1024, SeqLen = 1024, Batch = 2, RecomputeActivations = true)]
public partial class RecomputingGpt1024 { }

/// <summary>
/// What <c>RecomputeActivations</c> costs: the long-sequence configuration's training step at 1024 positions, keeping its
/// GELU outputs (the baseline) and making them again in the backward pass. Both give the same loss and gradients; the
/// setup prints the bytes each holds.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByParams)]
public class RecomputeActivationsBenchmarks : TrainingStepOf
{
    private void BuildAndTell(LanguageModel model)
    {
        Build(model);
        Console.WriteLine($"// {model.Layout.Name}: BufferBytes {model.BufferBytes:N0}");
    }

    [GlobalSetup(Target = nameof(Kept))]
    public void SetupKept() => BuildAndTell(new LongGpt1024(seed: 1));

    [GlobalSetup(Target = nameof(Recomputed))]
    public void SetupRecomputed() => BuildAndTell(new RecomputingGpt1024(seed: 1));

    [Benchmark(Baseline = true)]
    public float Kept() => Step();

    [Benchmark]
    public float Recomputed() => Step();
}
