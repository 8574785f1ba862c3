using System;
using System.Linq;
using BenchmarkDotNet.Attributes;

namespace TransformerGen.Model.Bench;

/// <summary>google/flan-t5-small (<see cref="FlanT5Small"/>) against <see cref="TorchT5"/>.</summary>
internal sealed class FlanT5SmallTranslation : TranslationCase
{
    public static readonly FlanT5SmallTranslation Instance = new();

    private const string EncoderTable = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight";
    private const string DecoderTable = "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight";

    public override string Model => "flan-t5-small";
    public override int StartToken => 0;
    public override int PadToken => 0;
    public override int EndToken => 1;
    public override int TargetVocab => FlanT5Small.TargetVocab;

    /// <summary>31 random ids in [2, 32128) (neither the padding id 0 nor &lt;/s&gt; 1), then &lt;/s&gt;.</summary>
    public override int[] Source()
    {
        int[] ids = HuggingFaceBench.Tokens(SourceTokens, FlanT5Small.Vocab - 1, HuggingFaceBench.Seed + 6);
        for (int i = 0; i < ids.Length; i++) ids[i]++;
        ids[^1] = EndToken;
        return ids;
    }

    /// <summary>
    /// The norms' gains moved off 1 (seeded) and both relative-position tables drawn N(0, 1) (the model's initialization
    /// draws them as small as a matrix, where a trained T5's biases span several units), so that the check covers them.
    /// </summary>
    public override Seq2SeqModel CreateOurs()
    {
        FlanT5Small model = FlanT5Small.ForInference(HuggingFaceBench.Seed);
        var rng = new Rng(HuggingFaceBench.Seed + 7);
        foreach (ParameterTensor t in model.ParameterTensors)
            if (t.Name is EncoderTable or DecoderTable)
            {
                Span<float> table = model.Parameters.Slice(t.Offset, t.Length);
                for (int i = 0; i < table.Length; i++) table[i] = rng.NextNormal();
            }
        HuggingFaceBench.PerturbVectors(model, HuggingFaceBench.Seed + 1); // packs the matrices again
        CheckTokens(model);
        return model;
    }

    protected override Seq2SeqModel Load(string path, WeightType weights) => FlanT5Small.ForInference(path, weights);

    public override ITorchTranslator CreateTorch(Seq2SeqModel model)
    {
        int LayersOf(string stack) => model.ParameterTensors.Count(t => t.Name.StartsWith(stack, StringComparison.Ordinal) && t.Name.EndsWith(".DenseReluDense.wo.weight", StringComparison.Ordinal));
        long Rows(string name) => model.ParameterTensors.Single(t => t.Name == name).Shape[0];
        // The config's sizes (d_kv and d_ff as the tensors give them; relative_attention_max_distance and layer_norm_epsilon,
        // which the generated class keeps as literals in its code, as config.json gives them), a cache of TargetSeqLen.
        long inner = Rows("encoder.block.0.layer.0.SelfAttention.q.weight"), intermediate = Rows("encoder.block.0.layer.1.DenseReluDense.wi_0.weight");
        var torch = new TorchT5(FlanT5Small.Vocab, FlanT5Small.DModel, FlanT5Small.Heads, inner / FlanT5Small.Heads, intermediate,
            LayersOf("encoder.block."), LayersOf("decoder.block."), buckets: Rows(EncoderTable), maxDistance: 128, eps: 1e-6, capacity: FlanT5Small.TargetSeqLen);
        torch.eval();
        torch.CopyFrom(model);
        return torch;
    }
}

/// <summary>flan-t5-small encoding a 32-token source (<see cref="TranslationEncodeBenchmarks"/>) against <see cref="TorchT5"/>.</summary>
public class HuggingFaceT5Encode : TranslationEncodeBenchmarks
{
    private protected override TranslationCase Case => FlanT5SmallTranslation.Instance;
}

/// <summary>flan-t5-small decoding greedily with the caches, per token (<see cref="TranslationDecodeBenchmarks"/>), against <see cref="TorchT5"/>.</summary>
[InvocationCount(TranslationCase.TargetTokens)]
public class HuggingFaceT5Decode : TranslationDecodeBenchmarks
{
    private protected override TranslationCase Case => FlanT5SmallTranslation.Instance;
}

/// <summary>flan-t5-small translating 32 → 32 tokens greedily (<see cref="TranslationGreedyBenchmarks"/>) against <see cref="TorchT5"/>.</summary>
public class HuggingFaceT5Greedy : TranslationGreedyBenchmarks
{
    private protected override TranslationCase Case => FlanT5SmallTranslation.Instance;
}
