using System;
using System.IO;
using System.Linq;
using BenchmarkDotNet.Attributes;
using static TorchSharp.torch;

namespace TransformerGen.Model.Bench;

/// <summary>
/// Pieces shared by the translation benchmarks: opus-mt-en-de with seeded random weights as an fp32 and an int8 inference
/// instance and as <see cref="TorchMarian"/> (the same weights), the 32-token source, greedy choice on each side, and the
/// check that libtorch computes what we compute.
/// </summary>
internal static class TranslationBench
{
    public const int SourceTokens = 32, TargetTokens = 32;

    /// <summary>31 random ids (neither the padding id nor &lt;/s&gt;), then &lt;/s&gt;, as the tokenizer closes a source.</summary>
    public static int[] Source()
    {
        int[] ids = HuggingFaceBench.Tokens(SourceTokens, OpusMtEnDe.Vocab - 1, HuggingFaceBench.Seed + 4);
        ids[^1] = EndToken;
        return ids;
    }

    /// <summary>The config's decoder_start_token_id (also its pad_token_id, which greedy decoding never chooses) and eos_token_id.</summary>
    public const int StartToken = 58100, PadToken = 58100, EndToken = 0;

    /// <summary>
    /// The fp32 inference instance, with the norms' gains, the biases and <c>final_logits_bias</c> moved off their initial
    /// values (seeded), so that the check covers them.
    /// </summary>
    public static OpusMtEnDe CreateOurs()
    {
        OpusMtEnDe model = OpusMtEnDe.ForInference(HuggingFaceBench.Seed);
        var rng = new Rng(HuggingFaceBench.Seed + 5);
        foreach (ParameterTensor t in model.ParameterTensors)
            if (t.Name == "final_logits_bias")
            {
                Span<float> bias = model.Parameters.Slice(t.Offset, t.Length);
                for (int i = 0; i < bias.Length; i++) bias[i] = 0.1f * rng.NextNormal();
            }
        HuggingFaceBench.PerturbVectors(model, HuggingFaceBench.Seed + 1); // packs the matrices again
        ModelLayout layout = model.Layout;
        if ((layout.BosToken, layout.PadToken, layout.EosToken) != (StartToken, PadToken, EndToken))
            throw new InvalidOperationException($"the compiled model's start, pad and end tokens are {layout.BosToken}, {layout.PadToken}, {layout.EosToken}");
        return model;
    }

    /// <summary>The same weights with 8-bit matrices: written by <c>Save</c>, read by <c>ForInference(path, WeightType.Int8)</c>.</summary>
    public static OpusMtEnDe CreateOursInt8()
    {
        string path = Path.Combine(Path.GetTempPath(), $"opus-mt-en-de-bench-{Environment.ProcessId}.safetensors");
        try
        {
            CreateOurs().Save(path);
            return OpusMtEnDe.ForInference(path, WeightType.Int8);
        }
        finally
        {
            File.Delete(path);
            GC.Collect();
        }
    }

    public static TorchMarian CreateTorch(OpusMtEnDe model)
    {
        int LayersOf(string stack) => model.ParameterTensors.Count(t => t.Name.StartsWith(stack, StringComparison.Ordinal) && t.Name.EndsWith(".fc1.weight", StringComparison.Ordinal));
        // The table of max_position_embeddings = 512 positions (the config's), of which the benchmark reads the first 33.
        var torch = new TorchMarian(OpusMtEnDe.Vocab, OpusMtEnDe.DModel, OpusMtEnDe.Heads, OpusMtEnDe.DFF, LayersOf("model.encoder.layers."),
            LayersOf("model.decoder.layers."), positions: 512, capacity: OpusMtEnDe.TargetSeqLen);
        torch.eval();
        torch.CopyFrom(model);
        return torch;
    }

    /// <summary>Greedy choice as <c>Translate</c> makes it: the padding id (also the start token) ruled out, then the largest logit.</summary>
    public static int Greedy(ReadOnlySpan<float> logits, float[] choice)
    {
        logits.CopyTo(choice);
        choice[PadToken] = float.NegativeInfinity;
        int best = 0;
        for (int i = 1; i < choice.Length; i++) if (choice[i] > choice[best]) best = i;
        return best;
    }

    /// <summary>The same choice in libtorch, on its own logits <c>[V]</c> (which it overwrites).</summary>
    public static long Greedy(Tensor logits)
    {
        using (Tensor pad = logits[PadToken]) pad.fill_(float.NegativeInfinity);
        using Tensor best = logits.argmax();
        return best.item<long>();
    }

    /// <summary>
    /// Decodes the source greedily with <paramref name="model"/> for <see cref="TargetTokens"/> tokens and feeds libtorch the
    /// same tokens: every step's next-token logits must agree within 1e-4 of the largest and both must choose the same
    /// token. With <paramref name="model"/> in 8 bits, reports how far it is without failing.
    /// </summary>
    public static void Check(string name, OpusMtEnDe model, TorchMarian torch, bool exact)
    {
        int[] source = Source();
        var choice = new float[OpusMtEnDe.TargetVocab];
        double worst = 0;
        int agreed = 0;
        using (no_grad())
        using (Tensor torchSource = Ids(source))
        {
            model.Encode(source);
            torch.Encode(torchSource);
            int token = StartToken;
            for (int step = 0; step < TargetTokens; step++)
            {
                ReadOnlySpan<float> ours = model.Append([token]);
                using Tensor ids = Ids([token]);
                using Tensor theirs = torch.Append(ids);
                worst = Math.Max(worst, HuggingFaceBench.RelativeMax(ours, theirs.data<float>().ToArray()));
                token = Greedy(ours, choice);
                if (Greedy(theirs) == token) agreed++;
            }
        }
        Console.WriteLine($"// {name}: next-token logits differ from libtorch's by {worst:E2} of the largest at most; {agreed} of {TargetTokens} greedy tokens the same");
        if (exact && !(worst <= 1e-4 && agreed == TargetTokens))
            throw new InvalidOperationException($"{name}: logits differ from libtorch's by {worst:E2} of the largest, {agreed} of {TargetTokens} greedy tokens the same");
    }

    public static Tensor Ids(ReadOnlySpan<int> ids)
    {
        var values = new long[ids.Length];
        for (int i = 0; i < values.Length; i++) values[i] = ids[i];
        return tensor(values);
    }
}

/// <summary>
/// The common part of the translation benchmarks: <see cref="Ours"/> (fp32 matrices), <see cref="OursInt8"/> (8-bit
/// matrices; libtorch has no counterpart here, as its CPU int8 path is dynamic quantization of <c>nn.Linear</c> modules,
/// which this module-by-module reimplementation does not use) and <see cref="Torch"/>, the baseline, so that
/// BenchmarkDotNet's Ratio column is ours / libtorch's time. Each case builds only the models it needs, checks them
/// against libtorch and warms up by time (<see cref="HuggingFaceBench.WarmUp"/>), at the case's thread count.
/// </summary>
[MemoryDiagnoser]
public abstract class TranslationBenchmarks
{
    private protected OpusMtEnDe? _model;
    private protected TorchMarian? _torch;
    private protected int[] _source = null!;
    private protected Tensor? _torchSource;
    private protected readonly float[] _choice = new float[OpusMtEnDe.TargetVocab];
    private protected readonly int[] _output = new int[TranslationBench.TargetTokens];

    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>The timed work on our side.</summary>
    private protected abstract void RunOurs(OpusMtEnDe model);

    /// <summary>The timed work on libtorch's side, under <c>no_grad</c>.</summary>
    private protected abstract void RunTorch(TorchMarian torch);

    /// <summary>Before each warm-up round (and each iteration where the benchmark sets one up).</summary>
    private protected virtual void StartOurs(OpusMtEnDe model) { }
    private protected virtual void StartTorch(TorchMarian torch) { }

    /// <summary>Calls per warm-up round (the benchmark's invocations per iteration).</summary>
    private protected virtual int CallsPerRound => 1;

    private void Prepare()
    {
        Parallelism.ThreadCount = Threads;
        set_num_threads(Threads);
        _source = TranslationBench.Source();
    }

    [GlobalSetup(Target = nameof(Ours))]
    public void SetupOurs()
    {
        Prepare();
        _model = TranslationBench.CreateOurs();
        WarmUp(() => { StartOurs(_model); for (int i = 0; i < CallsPerRound; i++) RunOurs(_model); });
    }

    [GlobalSetup(Target = nameof(OursInt8))]
    public void SetupOursInt8()
    {
        Prepare();
        // How far the 8-bit matrices move the logits, against libtorch's fp32 (reported, not required).
        using (TorchMarian reference = TranslationBench.CreateTorch(TranslationBench.CreateOurs()))
        {
            _model = TranslationBench.CreateOursInt8();
            TranslationBench.Check($"{Name} int8", _model, reference, exact: false);
        }
        GC.Collect();
        WarmUp(() => { StartOurs(_model); for (int i = 0; i < CallsPerRound; i++) RunOurs(_model); });
    }

    [GlobalSetup(Target = nameof(Torch))]
    public void SetupTorch()
    {
        Prepare();
        OpusMtEnDe model = TranslationBench.CreateOurs();
        _torch = TranslationBench.CreateTorch(model);
        _torchSource = TranslationBench.Ids(_source);
        // Both sides must compute the same thing: the same logits and greedy tokens from the same weights.
        TranslationBench.Check(Name, model, _torch, exact: true);
        model = null!; // only libtorch runs in this case
        GC.Collect();
        WarmUp(() => { StartTorch(_torch); for (int i = 0; i < CallsPerRound; i++) RunTorch(_torch); });
    }

    // BenchmarkDotNet's in-process toolchain runs a class it derives from this one: name the benchmark's own.
    private string Name
    {
        get
        {
            Type type = GetType();
            while (type.Assembly != typeof(TranslationBenchmarks).Assembly) type = type.BaseType!;
            return type.Name;
        }
    }

    private static void WarmUp(Action round) => HuggingFaceBench.Repeat(HuggingFaceBench.WarmUp, round);

    [GlobalCleanup]
    public void Cleanup()
    {
        _torch?.Dispose();
        _torchSource?.Dispose();
        (_torch, _torchSource, _model) = (null, null, null);
        GC.Collect();
    }

    [Benchmark]
    public void Ours() => RunOurs(_model!);

    [Benchmark]
    public void OursInt8() => RunOurs(_model!);

    [Benchmark(Baseline = true)]
    public void Torch()
    {
        using IDisposable noGrad = no_grad();
        RunTorch(_torch!);
    }
}

/// <summary>
/// opus-mt-en-de encoding a 32-token source: our <c>Encode</c> (the encoder, then every decoder layer's cross-attention
/// keys and values) against <see cref="TorchMarian.Encode"/>, which does the same work (transformers computes those keys and
/// values at the first decoder step, once per source).
/// </summary>
public class HuggingFaceTranslationEncode : TranslationBenchmarks
{
    private protected override void RunOurs(OpusMtEnDe model) => model.Encode(_source);

    private protected override void RunTorch(TorchMarian torch) => torch.Encode(_torchSource!);
}

/// <summary>
/// opus-mt-en-de decoding greedily with the key/value caches: each call chooses the next token from the last logits (the
/// padding id ruled out, then the largest) and appends it. Each iteration first encodes the source and appends the start
/// token (untimed, in <c>IterationSetup</c>), then times 32 calls, target positions 1 … 32: the figure is the mean time
/// per generated token.
/// </summary>
[InvocationCount(TranslationBench.TargetTokens)]
public class HuggingFaceTranslationDecode : TranslationBenchmarks
{
    private int _count;
    private int _next;
    private long _torchNext;

    private protected override int CallsPerRound => TranslationBench.TargetTokens;

    [IterationSetup(Targets = [nameof(Ours), nameof(OursInt8)])]
    public void StartOursIteration() => StartOurs(_model!);

    [IterationSetup(Target = nameof(Torch))]
    public void StartTorchIteration() => StartTorch(_torch!);

    private protected override void StartOurs(OpusMtEnDe model)
    {
        model.Encode(_source);
        _next = TranslationBench.Greedy(model.Append([TranslationBench.StartToken]), _choice);
        _count = 0;
    }

    private protected override void StartTorch(TorchMarian torch)
    {
        using IDisposable noGrad = no_grad();
        torch.Encode(_torchSource!);
        using Tensor start = TranslationBench.Ids([TranslationBench.StartToken]);
        using Tensor logits = torch.Append(start);
        _torchNext = TranslationBench.Greedy(logits);
        _count = 0;
    }

    /// <summary>Appends the token chosen last and chooses the next one from the logits.</summary>
    private protected override void RunOurs(OpusMtEnDe model)
    {
        if (_count++ == TranslationBench.TargetTokens) StartOurs(model); // only if BenchmarkDotNet ran more calls than set up
        _next = TranslationBench.Greedy(model.Append([_next]), _choice);
    }

    private protected override void RunTorch(TorchMarian torch)
    {
        if (_count++ == TranslationBench.TargetTokens) StartTorch(torch);
        using Tensor ids = tensor(new[] { _torchNext });
        using Tensor logits = torch.Append(ids);
        _torchNext = TranslationBench.Greedy(logits);
    }
}

/// <summary>
/// opus-mt-en-de translating the 32-token source into 32 tokens, greedily, end to end: our <c>Translate</c> (encode, the
/// start token, then choose and append until 32 tokens are written) against the same loop over <see cref="TorchMarian"/>.
/// Random weights never choose &lt;/s&gt; within 32 tokens here (checked), so both sides decode all 32.
/// </summary>
public class HuggingFaceTranslationGreedy : TranslationBenchmarks
{
    private protected override void RunOurs(OpusMtEnDe model)
    {
        int written = model.Translate(_source, _output);
        if (written != _output.Length) throw new InvalidOperationException($"Translate stopped after {written} tokens");
    }

    private protected override void RunTorch(TorchMarian torch)
    {
        torch.Encode(_torchSource!);
        long token = TranslationBench.StartToken;
        for (int count = 0; ; )
        {
            using Tensor ids = tensor(new[] { token });
            using Tensor logits = torch.Append(ids);
            token = TranslationBench.Greedy(logits);
            if (token == TranslationBench.EndToken) throw new InvalidOperationException($"libtorch chose </s> after {count} tokens");
            _output[count++] = (int)token;
            if (count == _output.Length) break;
        }
    }
}
