using System;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using TransformerGen.Threading;

namespace TransformerGen.Model.Bench;

/// <summary>all-MiniLM-L6-v2 compiled for sentences of at most 16 tokens: what a 16-token sentence costs when SeqLen fits it.</summary>
[TransformerModel(Config = "models/all-MiniLM-L6-v2/config.json", SeqLen = 16, Batch = 1, Head = EncoderHead.SentenceEmbedding)]
public partial class MiniLmSeqLen16 { }

/// <summary>
/// Exact-length passes (issue 18) on all-MiniLM-L6-v2's shape (hidden 384, 6 layers, 12 heads, FFN 1536, vocabulary
/// 30522), random seeded weights, inference instances, sentence embeddings:
/// <list type="bullet">
/// <item>one sentence of 16 tokens in a model compiled with SeqLen 128 (<see cref="MiniLmBatch1"/>), against the same
/// sentence in one compiled with SeqLen 16 (<see cref="MiniLmSeqLen16"/>, the baseline), and against the same sentence
/// padded to 128 tokens (what a call paid before: every position computed, padding masked);</item>
/// <item>a batch of 8 sentences of mixed lengths (9 to 97 tokens, 300 in all) laid end to end in a SeqLen-128 Batch-8
/// model (<see cref="MiniLmBatch8"/>), against the same 8 sentences padded to 8 × 128 (the baseline).</item>
/// </list>
/// Each case's embeddings are checked against its baseline's (within 1e-5 of the largest) before timing.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class ExactLengthBenchmarks
{
    private const string OneSentence = "one sentence of 16 tokens", EightSentences = "8 sentences of 9-97 tokens";
    private static readonly int[] MixedLengths = [9, 14, 16, 22, 31, 47, 64, 97];

    private MiniLmSeqLen16 _short = null!;
    private MiniLmBatch1 _long = null!;
    private MiniLmBatch8 _batch = null!;
    private int[] _sentence = null!, _sentencePadded = null!, _sentences = null!, _sentencesPadded = null!;

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Parallelism.ThreadCount = Threads;
        // The same seed gives the same weights in the three models: their parameter tables have the same shapes.
        _short = MiniLmSeqLen16.ForInference(HuggingFaceBench.Seed);
        _long = MiniLmBatch1.ForInference(HuggingFaceBench.Seed);
        _batch = MiniLmBatch8.ForInference(HuggingFaceBench.Seed);
        _sentence = HuggingFaceBench.Tokens(16, MiniLmBatch1.Vocab, HuggingFaceBench.Seed + 2);
        _sentencePadded = new int[MiniLmBatch1.SeqLen]; // [PAD] is 0
        _sentence.CopyTo(_sentencePadded, 0);
        _sentences = HuggingFaceBench.Tokens(Sum(MixedLengths), MiniLmBatch8.Vocab, HuggingFaceBench.Seed + 3);
        _sentencesPadded = new int[MiniLmBatch8.TokensPerStep];
        for (int s = 0, row = 0; s < MixedLengths.Length; row += MixedLengths[s++])
            _sentences.AsSpan(row, MixedLengths[s]).CopyTo(_sentencesPadded.AsSpan(s * MiniLmBatch8.SeqLen));

        Check("SeqLen 128", _long.Predict(_sentence), _short.Predict(_sentence));
        Check("padded to 128", _long.Predict(_sentencePadded), _short.Predict(_sentence));
        // One instance's output is in its workspace until its next call: copy the first.
        Check("8 sentences end to end", _batch.Predict(_sentences, MixedLengths).ToArray(), _batch.Predict(_sentencesPadded));
        HuggingFaceBench.Repeat(HuggingFaceBench.WarmUp, () =>
        {
            SentenceInSeqLen16();
            SentenceInSeqLen128();
            SentencePaddedTo128();
            MixedLengthsEndToEnd();
            MixedLengthsPadded();
        });
    }

    private static int Sum(int[] values)
    {
        int sum = 0;
        foreach (int v in values) sum += v;
        return sum;
    }

    private static void Check(string what, ReadOnlySpan<float> ours, ReadOnlySpan<float> baseline)
    {
        double error = HuggingFaceBench.RelativeMax(ours, baseline);
        Console.WriteLine($"// {nameof(ExactLengthBenchmarks)}: {what}: embeddings differ from the baseline's by {error:E2} of the largest");
        if (!(error <= 1e-5)) throw new InvalidOperationException($"{what}: embeddings differ from the baseline's by {error:E2}");
    }

    [Benchmark(Baseline = true), BenchmarkCategory(OneSentence)]
    public float SentenceInSeqLen16() => _short.Predict(_sentence)[0];

    [Benchmark, BenchmarkCategory(OneSentence)]
    public float SentenceInSeqLen128() => _long.Predict(_sentence)[0];

    [Benchmark, BenchmarkCategory(OneSentence)]
    public float SentencePaddedTo128() => _long.Predict(_sentencePadded)[0];

    [Benchmark(Baseline = true), BenchmarkCategory(EightSentences)]
    public float MixedLengthsPadded() => _batch.Predict(_sentencesPadded)[0];

    [Benchmark, BenchmarkCategory(EightSentences)]
    public float MixedLengthsEndToEnd() => _batch.Predict(_sentences, MixedLengths)[0];
}
