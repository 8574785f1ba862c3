using System;

namespace TransformerGen.Export.Tests;

internal static class Weights
{
    /// <summary>
    /// Random weights at the scales of a trained model, so that rounding errors propagate as they would in one: each
    /// matrix N(0, 1/in) (a product keeps its input's size), the embedding N(0, 1), norm gains 1 + N(0, 0.1²), biases
    /// N(0, 0.1²). (TestData.Perturb's N(0, 0.4²) everywhere grows activations about fourfold per product at these widths:
    /// the attention then saturates and a 2⁻⁹ rounding of a weight moves logits by percents.)
    /// </summary>
    public static void Randomize(TransformerModel model, ulong seed)
    {
        var rng = new Rng(seed);
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            Span<float> values = model.Parameters.Slice(t.Offset, t.Length);
            bool embedding = t.Name.Contains("emb", StringComparison.Ordinal) || t.Name.StartsWith("wte", StringComparison.Ordinal) || t.Name.StartsWith("wpe", StringComparison.Ordinal);
            float scale = t.IsVector ? 0.1f : embedding ? 1f : 1f / MathF.Sqrt(t.Shape[1]);
            for (int i = 0; i < values.Length; i++)
            {
                float noise = rng.NextNormal();
                values[i] = t.Init == WeightInit.Ones ? 1f + scale * noise : scale * noise;
            }
        }
    }
}
