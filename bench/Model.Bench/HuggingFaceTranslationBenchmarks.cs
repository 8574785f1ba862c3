using System;
using System.IO;
using System.Linq;
using BenchmarkDotNet.Attributes;
using static TorchSharp.torch;

namespace TransformerGen.Model.Bench;

/// <summary>A libtorch encoder–decoder of the translation benchmarks (<see cref="TorchMarian"/>, <see cref="TorchT5"/>), under <c>no_grad</c>.</summary>
internal interface ITorchTranslator : IDisposable
{
    /// <summary>Encodes a source (<c>[S]</c>, int64), fills every decoder layer's cross-attention keys and values and empties the decoder's cache.</summary>
    void Encode(Tensor source);

    /// <summary>Appends decoder ids (<c>[n]</c>, int64) after the cached ones; the next-token logits <c>[V]</c> after the last.</summary>
    Tensor Append(Tensor ids);
}

/// <summary>
/// One model of the translation benchmarks on both sides: our fp32 and int8 inference instances with seeded random
/// weights, the libtorch re-implementation holding the same weights, its 32-token source, greedy choice on each side, and
/// the check that libtorch computes what we compute.
/// </summary>
internal abstract class TranslationCase
{
    public const int SourceTokens = 32, TargetTokens = 32;

    /// <summary>The Hugging Face model's name, for messages and file names.</summary>
    public abstract string Model { get; }

    /// <summary>The config's decoder_start_token_id, pad_token_id (greedy decoding never chooses either) and eos_token_id.</summary>
    public abstract int StartToken { get; }
    public abstract int PadToken { get; }
    public abstract int EndToken { get; }

    public abstract int TargetVocab { get; }

    /// <summary>31 random ids (neither the padding id nor &lt;/s&gt;), then &lt;/s&gt;, as the tokenizer closes a source.</summary>
    public abstract int[] Source();

    /// <summary>The fp32 inference instance, its vectors (and what else the check should cover) moved off their initial values, seeded.</summary>
    public abstract Seq2SeqModel CreateOurs();

    /// <summary>The generated class's <c>ForInference(path, weights)</c>.</summary>
    protected abstract Seq2SeqModel Load(string path, WeightType weights);

    /// <summary>The libtorch model, in eval mode, with <paramref name="model"/>'s weights.</summary>
    public abstract ITorchTranslator CreateTorch(Seq2SeqModel model);

    /// <summary>The same weights with 8-bit matrices: written by <c>Save</c>, read by <c>ForInference(path, WeightType.Int8)</c>.</summary>
    public Seq2SeqModel CreateOursInt8()
    {
        string path = Path.Combine(Path.GetTempPath(), $"{Model}-bench-{Environment.ProcessId}.safetensors");
        try
        {
            CreateOurs().Save(path);
            return Load(path, WeightType.Int8);
        }
        finally
        {
            File.Delete(path);
            GC.Collect();
        }
    }

    /// <summary>Checks the compiled model's start, pad and end tokens against the ones the benchmark assumes.</summary>
    protected void CheckTokens(Seq2SeqModel model)
    {
        ModelLayout layout = model.Layout;
        if ((layout.BosToken, layout.PadToken, layout.EosToken) != (StartToken, PadToken, EndToken))
            throw new InvalidOperationException($"the compiled {Model}'s start, pad and end tokens are {layout.BosToken}, {layout.PadToken}, {layout.EosToken}");
    }

    /// <summary>Greedy choice as <c>Translate</c> makes it: the padding and start ids ruled out, then the largest logit.</summary>
    public int Greedy(ReadOnlySpan<float> logits, float[] choice)
    {
        logits.CopyTo(choice);
        choice[PadToken] = choice[StartToken] = float.NegativeInfinity;
        int best = 0;
        for (int i = 1; i < choice.Length; i++) if (choice[i] > choice[best]) best = i;
        return best;
    }

    /// <summary>The same choice in libtorch, on its own logits <c>[V]</c> (which it overwrites).</summary>
    public long Greedy(Tensor logits)
    {
        using (Tensor pad = logits[PadToken]) pad.fill_(float.NegativeInfinity);
        using (Tensor start = logits[StartToken]) start.fill_(float.NegativeInfinity);
        using Tensor best = logits.argmax();
        return best.item<long>();
    }

    /// <summary>
    /// Decodes the source greedily with <paramref name="model"/> for <see cref="TargetTokens"/> tokens and feeds libtorch the
    /// same tokens: every step's next-token logits must agree within 1e-5 of the largest and both must choose the same
    /// token. With <paramref name="model"/> in 8 bits, reports how far it is without failing.
    /// </summary>
    public void Check(string name, Seq2SeqModel model, ITorchTranslator torch, bool exact)
    {
        int[] source = Source();
        var choice = new float[TargetVocab];
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
        if (exact && !(worst <= 1e-5 && agreed == TargetTokens))
            throw new InvalidOperationException($"{name}: logits differ from libtorch's by {worst:E2} of the largest, {agreed} of {TargetTokens} greedy tokens the same");
    }

    public static Tensor Ids(ReadOnlySpan<int> ids)
    {
        var values = new long[ids.Length];
        for (int i = 0; i < values.Length; i++) values[i] = ids[i];
        return tensor(values);
    }
}

/// <summary>Helsinki-NLP/opus-mt-en-de (<see cref="OpusMtEnDe"/>) against <see cref="TorchMarian"/>.</summary>
internal sealed class OpusMtEnDeTranslation : TranslationCase
{
    public static readonly OpusMtEnDeTranslation Instance = new();

    public override string Model => "opus-mt-en-de";
    public override int StartToken => 58100;
    public override int PadToken => 58100;
    public override int EndToken => 0;
    public override int TargetVocab => OpusMtEnDe.TargetVocab;

    /// <summary>31 random ids in [1, 58100) (neither &lt;/s&gt; 0 nor the padding id 58100), then &lt;/s&gt;.</summary>
    public override int[] Source()
    {
        int[] ids = HuggingFaceBench.Tokens(SourceTokens, OpusMtEnDe.Vocab - 1, HuggingFaceBench.Seed + 4);
        ids[^1] = EndToken;
        return ids;
    }

    /// <summary>Also moves <c>final_logits_bias</c> off its zeros, so that the check covers it.</summary>
    public override Seq2SeqModel CreateOurs()
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
        CheckTokens(model);
        return model;
    }

    protected override Seq2SeqModel Load(string path, WeightType weights) => OpusMtEnDe.ForInference(path, weights);

    public override ITorchTranslator CreateTorch(Seq2SeqModel model)
    {
        int LayersOf(string stack) => model.ParameterTensors.Count(t => t.Name.StartsWith(stack, StringComparison.Ordinal) && t.Name.EndsWith(".fc1.weight", StringComparison.Ordinal));
        // The table of max_position_embeddings = 512 positions (the config's), of which the benchmark reads the first 33.
        var torch = new TorchMarian(OpusMtEnDe.Vocab, OpusMtEnDe.DModel, OpusMtEnDe.Heads, OpusMtEnDe.DFF, LayersOf("model.encoder.layers."),
            LayersOf("model.decoder.layers."), positions: 512, capacity: OpusMtEnDe.TargetSeqLen);
        torch.eval();
        torch.CopyFrom(model);
        return torch;
    }
}

/// <summary>
/// The common part of the translation benchmarks: <see cref="Ours"/> (fp32 matrices), <see cref="OursInt8"/> (8-bit
/// matrices; libtorch has no counterpart here, as its CPU int8 path is dynamic quantization of <c>nn.Linear</c> modules,
/// which these module-by-module reimplementations do not use) and <see cref="Torch"/>, the baseline, so that
/// BenchmarkDotNet's Ratio column is ours / libtorch's time. Each case builds only the models it needs, checks them
/// against libtorch and warms up by time (<see cref="HuggingFaceBench.WarmUp"/>), at the case's thread count. The model
/// is the benchmark's <see cref="Case"/>.
/// </summary>
[MemoryDiagnoser]
public abstract class TranslationBenchmarks
{
    private protected Seq2SeqModel? _model;
    private protected ITorchTranslator? _torch;
    private protected int[] _source = null!;
    private protected Tensor? _torchSource;
    private protected float[] _choice = null!;
    private protected readonly int[] _output = new int[TranslationCase.TargetTokens];

    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>The model on both sides.</summary>
    private protected abstract TranslationCase Case { get; }

    /// <summary>The timed work on our side.</summary>
    private protected abstract void RunOurs(Seq2SeqModel model);

    /// <summary>The timed work on libtorch's side, under <c>no_grad</c>.</summary>
    private protected abstract void RunTorch(ITorchTranslator torch);

    /// <summary>Before each warm-up round (and each iteration where the benchmark sets one up).</summary>
    private protected virtual void StartOurs(Seq2SeqModel model) { }
    private protected virtual void StartTorch(ITorchTranslator torch) { }

    /// <summary>Calls per warm-up round (the benchmark's invocations per iteration).</summary>
    private protected virtual int CallsPerRound => 1;

    private void Prepare()
    {
        Parallelism.ThreadCount = Threads;
        set_num_threads(Threads);
        _source = Case.Source();
        _choice = new float[Case.TargetVocab];
    }

    [GlobalSetup(Target = nameof(Ours))]
    public void SetupOurs()
    {
        Prepare();
        _model = Case.CreateOurs();
        WarmUp(() => { StartOurs(_model); for (int i = 0; i < CallsPerRound; i++) RunOurs(_model); });
    }

    [GlobalSetup(Target = nameof(OursInt8))]
    public void SetupOursInt8()
    {
        Prepare();
        // How far the 8-bit matrices move the logits, against libtorch's fp32 (reported, not required).
        using (ITorchTranslator reference = Case.CreateTorch(Case.CreateOurs()))
        {
            _model = Case.CreateOursInt8();
            Case.Check($"{Name} int8", _model, reference, exact: false);
        }
        GC.Collect();
        WarmUp(() => { StartOurs(_model); for (int i = 0; i < CallsPerRound; i++) RunOurs(_model); });
    }

    [GlobalSetup(Target = nameof(Torch))]
    public void SetupTorch()
    {
        Prepare();
        Seq2SeqModel model = Case.CreateOurs();
        _torch = Case.CreateTorch(model);
        _torchSource = TranslationCase.Ids(_source);
        // Both sides must compute the same thing: the same logits and greedy tokens from the same weights.
        Case.Check(Name, model, _torch, exact: true);
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
/// Encoding a 32-token source: our <c>Encode</c> (the encoder, then every decoder layer's cross-attention keys and values)
/// against the libtorch model's <c>Encode</c>, which does the same work (transformers computes those keys and values at
/// the first decoder step, once per source).
/// </summary>
public abstract class TranslationEncodeBenchmarks : TranslationBenchmarks
{
    private protected override void RunOurs(Seq2SeqModel model) => model.Encode(_source);

    private protected override void RunTorch(ITorchTranslator torch) => torch.Encode(_torchSource!);
}

/// <summary>
/// Decoding greedily with the key/value caches: each call chooses the next token from the last logits (the padding and
/// start ids ruled out, then the largest) and appends it. Each iteration first encodes the source and appends the start
/// token (untimed, in <c>IterationSetup</c>), then times 32 calls, target positions 1 … 32 (a leaf class sets
/// <c>[InvocationCount(TranslationCase.TargetTokens)]</c>): the figure is the mean time per generated token.
/// </summary>
public abstract class TranslationDecodeBenchmarks : TranslationBenchmarks
{
    private int _count;
    private int _next;
    private long _torchNext;

    private protected override int CallsPerRound => TranslationCase.TargetTokens;

    [IterationSetup(Targets = [nameof(Ours), nameof(OursInt8)])]
    public void StartOursIteration() => StartOurs(_model!);

    [IterationSetup(Target = nameof(Torch))]
    public void StartTorchIteration() => StartTorch(_torch!);

    private protected override void StartOurs(Seq2SeqModel model)
    {
        model.Encode(_source);
        _next = Case.Greedy(model.Append([Case.StartToken]), _choice);
        _count = 0;
    }

    private protected override void StartTorch(ITorchTranslator torch)
    {
        using IDisposable noGrad = no_grad();
        torch.Encode(_torchSource!);
        using Tensor start = TranslationCase.Ids([Case.StartToken]);
        using Tensor logits = torch.Append(start);
        _torchNext = Case.Greedy(logits);
        _count = 0;
    }

    /// <summary>Appends the token chosen last and chooses the next one from the logits.</summary>
    private protected override void RunOurs(Seq2SeqModel model)
    {
        if (_count++ == TranslationCase.TargetTokens) StartOurs(model); // only if BenchmarkDotNet ran more calls than set up
        _next = Case.Greedy(model.Append([_next]), _choice);
    }

    private protected override void RunTorch(ITorchTranslator torch)
    {
        if (_count++ == TranslationCase.TargetTokens) StartTorch(torch);
        using Tensor ids = tensor(new[] { _torchNext });
        using Tensor logits = torch.Append(ids);
        _torchNext = Case.Greedy(logits);
    }
}

/// <summary>
/// Translating the 32-token source into 32 tokens, greedily, end to end: our <c>Translate</c> (encode, the start token,
/// then choose and append until 32 tokens are written) against the same loop over the libtorch model. Random weights
/// never choose &lt;/s&gt; within 32 tokens here (checked), so both sides decode all 32.
/// </summary>
public abstract class TranslationGreedyBenchmarks : TranslationBenchmarks
{
    private protected override void RunOurs(Seq2SeqModel model)
    {
        int written = model.Translate(_source, _output);
        if (written != _output.Length) throw new InvalidOperationException($"Translate stopped after {written} tokens");
    }

    private protected override void RunTorch(ITorchTranslator torch)
    {
        torch.Encode(_torchSource!);
        long token = Case.StartToken;
        for (int count = 0; ; )
        {
            using Tensor ids = tensor(new[] { token });
            using Tensor logits = torch.Append(ids);
            token = Case.Greedy(logits);
            if (token == Case.EndToken) throw new InvalidOperationException($"libtorch chose </s> after {count} tokens");
            _output[count++] = (int)token;
            if (count == _output.Length) break;
        }
    }
}

/// <summary>opus-mt-en-de encoding a 32-token source (<see cref="TranslationEncodeBenchmarks"/>) against <see cref="TorchMarian"/>.</summary>
public class HuggingFaceTranslationEncode : TranslationEncodeBenchmarks
{
    private protected override TranslationCase Case => OpusMtEnDeTranslation.Instance;
}

/// <summary>opus-mt-en-de decoding greedily with the caches, per token (<see cref="TranslationDecodeBenchmarks"/>), against <see cref="TorchMarian"/>.</summary>
[InvocationCount(TranslationCase.TargetTokens)]
public class HuggingFaceTranslationDecode : TranslationDecodeBenchmarks
{
    private protected override TranslationCase Case => OpusMtEnDeTranslation.Instance;
}

/// <summary>opus-mt-en-de translating 32 → 32 tokens greedily (<see cref="TranslationGreedyBenchmarks"/>) against <see cref="TorchMarian"/>.</summary>
public class HuggingFaceTranslationGreedy : TranslationGreedyBenchmarks
{
    private protected override TranslationCase Case => OpusMtEnDeTranslation.Instance;
}
