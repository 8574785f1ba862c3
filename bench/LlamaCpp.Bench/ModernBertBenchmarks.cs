using BenchmarkDotNet.Attributes;

namespace TransformerGen.LlamaCpp.Bench;

/// <summary>
/// One sentence embedding at gte-modernbert-base's shape (<see cref="ModernBertBatch1"/>: [CLS] pooling), 128 or 512
/// tokens, against llama.cpp's <c>modern-bert</c> (<see cref="EncoderEmbedBenchmarks{TModel}"/>). Without flash attention
/// llama.cpp scores every query against every key of the sentence and masks what the local layers' window leaves out;
/// ours computes only the pairs inside the window.
/// </summary>
public class ModernBertEmbed : EncoderEmbedBenchmarks<ModernBertBatch1>
{
    [Params(128, 512)]
    public override int Tokens { get; set; }

    protected override ulong Seed => 20261208;

    protected override string Config => "models/gte-modernbert-base/config.json";

    protected override int Vocab => ModernBertBatch1.Vocab;

    // ModernBERT-base's tokenizer: [CLS] 50281, [SEP] 50282, [PAD] 50283 (its config's cls/sep/pad_token_id).
    protected override (int Cls, int Sep, int Pad) SpecialIds => (50281, 50282, 50283);

    protected override Pooling Pooling => Pooling.FirstToken;

    protected override ModernBertBatch1 ForInference(ulong seed, WeightType weights) => ModernBertBatch1.ForInference(seed, weights);
}
