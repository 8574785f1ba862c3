using System;

namespace TransformerGen.Export.Tests;

internal static class Weights
{
    /// <summary>
    /// Random weights at the scales of a trained model, so that rounding errors propagate as they would in one: each
    /// matrix N(0, 1/in) (a product keeps its input's size), the embedding N(0, 1), norm gains 1 + N(0, 0.1²), biases
    /// N(0, 0.1²). (TestData.Perturb's N(0, 0.4²) everywhere grows activations about fourfold per product at these widths:
    /// the attention then saturates and a 2⁻⁹ rounding of a weight moves logits by percents.) T5's queries N(0, 1/(in·d_kv)):
    /// its attention does not divide the scores by √d_kv, and its initialization (transformers' <c>T5PreTrainedModel._init_weights</c>,
    /// from Mesh TensorFlow) puts that factor into the query projection instead, as a trained T5 keeps it.
    /// </summary>
    public static void Randomize(TransformerModel model, ulong seed)
    {
        var rng = new Rng(seed);
        // T5's heads: the columns of a relative-position table [buckets, heads] (MPNet has one too, but no T5 queries to scale).
        int t5Heads = 0;
        foreach (ParameterTensor t in model.ParameterTensors)
            if (t.Name.EndsWith("relative_attention_bias.weight", StringComparison.Ordinal)) t5Heads = t.Shape[1];
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            Span<float> values = model.Parameters.Slice(t.Offset, t.Length);
            bool embedding = t.Name.Contains("emb", StringComparison.Ordinal) || t.Name.StartsWith("wte", StringComparison.Ordinal) || t.Name.StartsWith("wpe", StringComparison.Ordinal);
            bool t5Query = t5Heads > 0 && (t.Name.EndsWith("SelfAttention.q.weight", StringComparison.Ordinal) || t.Name.EndsWith("EncDecAttention.q.weight", StringComparison.Ordinal));
            float scale = t.IsVector ? 0.1f : embedding ? 1f : 1f / MathF.Sqrt(t.Shape[1]);
            if (t5Query) scale /= MathF.Sqrt(t.Shape[0] / t5Heads);
            for (int i = 0; i < values.Length; i++)
            {
                float noise = rng.NextNormal();
                values[i] = t.Init == WeightInit.Ones ? 1f + scale * noise : scale * noise;
            }
        }
    }
}
