using BenchmarkDotNet.Attributes;

namespace TransformerGen.LlamaCpp.Bench;

/// <summary>
/// One sentence embedding at all-MiniLM-L6-v2's shape (<see cref="MiniLmBatch1"/>: mean pooling, token types 0), 32 or
/// 128 tokens, against llama.cpp's <c>bert</c> (<see cref="EncoderEmbedBenchmarks{TModel}"/>).
/// </summary>
public class MiniLmEmbed : EncoderEmbedBenchmarks<MiniLmBatch1>
{
    [Params(32, 128)]
    public override int Tokens { get; set; }

    protected override ulong Seed => 20261209;

    protected override string Config => "models/all-MiniLM-L6-v2/config.json";

    protected override int Vocab => MiniLmBatch1.Vocab;

    // bert-base-uncased's (and all-MiniLM-L6-v2's) [CLS], [SEP] and padding ids.
    protected override (int Cls, int Sep, int Pad) SpecialIds => (101, 102, 0);

    protected override Pooling Pooling => Pooling.Mean;

    protected override MiniLmBatch1 ForInference(ulong seed, WeightType weights) => MiniLmBatch1.ForInference(seed, weights);
}
