using System;
using BenchmarkDotNet.Attributes;

namespace TransformerGen.LlamaCpp.Bench;

// Ours, batched: one instance with 16 key/value cache slots, one Append of a token per sequence for each step.
public partial class SmolLm2BatchedDecode
{
    private SmolLm2Batched? _batched;
    // Sequence ids 0 … MaxSequences − 1, and a length per sequence: Prompt (filling the caches) or 1 (a decode step).
    private readonly int[] _sequenceIds = CreateSequenceIds(), _promptLengths = Filled(Prompt), _stepLengths = Filled(1);

    private static int[] CreateSequenceIds()
    {
        var ids = new int[MaxSequences];
        for (int s = 0; s < ids.Length; s++) ids[s] = s;
        return ids;
    }

    private static int[] Filled(int value)
    {
        var values = new int[MaxSequences];
        Array.Fill(values, value);
        return values;
    }

    partial void CleanupBatched() => _batched = null;

    [GlobalSetup(Target = nameof(Ours))]
    public void SetupBatched() => SetupBatched(WeightType.Float32);

    [GlobalSetup(Target = nameof(OursInt8))]
    public void SetupBatchedInt8() => SetupBatched(WeightType.Int8);

    private void SetupBatched(WeightType type)
    {
        Parallelism.ThreadCount = Threads;
        _batched = SmolLm2Batched.ForInference(Seed, type);
        if (_batched.Layout.Batch != MaxSequences || _batched.Layout.SeqLen != Positions)
            throw new InvalidOperationException($"{_batched.Layout.Name} has {_batched.Layout.Batch} cache slots of {_batched.Layout.SeqLen} positions, not {MaxSequences} of {Positions}");
        int vocab = _batched.Layout.Vocab;
        CreateTokens(vocab);

        // The batched rows of two steps against each sequence appended alone by a single-sequence instance over the
        // same weights (as the separate baseline's): fp32 within 1e-4 of the largest logit. With 8-bit matrices a
        // product of 16 rows or more runs in integers (13-bit activations), so at 16 sequences a row may differ by
        // that rounding (README: 2e-3 of the largest logit).
        const int checkedSteps = 2;
        SmolLm2 alone = SmolLm2.ForInference(SharedWeights(type));
        var rows = new float[checkedSteps, Sequences][];
        StartBatched();
        for (int k = 0; k < checkedSteps; k++)
        {
            ReadOnlySpan<float> logits = BatchedStep(k);
            if (logits.Length != Sequences * vocab)
                throw new InvalidOperationException($"a batched step returned {logits.Length} logits, not {Sequences} rows of {vocab}");
            for (int s = 0; s < Sequences; s++) rows[k, s] = logits.Slice(s * vocab, vocab).ToArray();
        }
        double worst = 0;
        for (int s = 0; s < Sequences; s++)
        {
            alone.ResetCache();
            alone.Append(PromptOf(s));
            for (int k = 0; k < checkedSteps; k++)
                worst = Math.Max(worst, Bench.RelativeMax(alone.Append([StepToken(k, s)]), rows[k, s]));
        }
        Console.WriteLine($"// {GetType().Name} ours {type}, {Sequences} sequences: batched rows differ from each sequence appended alone by {worst:E2} of the largest logit at most");
        if (!(worst <= (type == WeightType.Float32 ? 1e-4 : 5e-3)))
            throw new InvalidOperationException($"our batched {type} rows differ from each sequence appended alone by {worst:E2} of the largest logit");
        GC.Collect();
        Bench.Repeat(() =>
        {
            StartBatched();
            for (int k = 0; k < Steps; k++) Ours();
        });
    }

    /// <summary>
    /// Empties the slots and fills each with its prompt, as many sequences per <c>Append</c> as the workspace holds
    /// (<c>InferenceTokens</c>: SeqLen tokens in all, so two prompts of 64).
    /// </summary>
    [IterationSetup(Targets = [nameof(Ours), nameof(OursInt8)])]
    public void StartBatched()
    {
        SmolLm2Batched model = _batched!;
        int perCall = Math.Max(1, model.Layout.InferenceTokens / Prompt);
        for (int first = 0; first < Sequences; first += perCall)
        {
            int count = Math.Min(perCall, Sequences - first);
            for (int s = first; s < first + count; s++) model.ResetCache(s);
            model.Append(_prompts.AsSpan(first * Prompt, count * Prompt), _promptLengths.AsSpan(first, count), _sequenceIds.AsSpan(first, count));
        }
        _step = 0;
    }

    private ReadOnlySpan<float> BatchedStep(int step) =>
        _batched!.Append(_stepTokens.AsSpan(step * MaxSequences, Sequences), _stepLengths.AsSpan(0, Sequences), _sequenceIds.AsSpan(0, Sequences));

    /// <summary>One token appended to each sequence, all in one <c>Append</c> (fp32 weights).</summary>
    [Benchmark(Baseline = true)]
    public float Ours()
    {
        if (_step == Steps) StartBatched(); // only if BenchmarkDotNet ran more than Steps calls in an iteration
        ReadOnlySpan<float> logits = BatchedStep(_step++);
        return logits[^1];
    }

    /// <summary>As <see cref="Ours"/> with 8-bit weight matrices.</summary>
    [Benchmark]
    public float OursInt8() => Ours();
}
