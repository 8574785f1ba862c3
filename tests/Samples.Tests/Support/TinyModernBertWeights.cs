using System;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>
/// Spreads the seeded weights of a tiny ModernBERT before it is saved. ModernBERT is initialized with a standard deviation
/// of 0.02, and at that scale the layers add almost nothing to the normalized token embedding: the [CLS] token's state,
/// which CLS pooling takes, comes out nearly the same for every text (cosines of 1.0000). Scaled up 15 times, the matrices
/// mix the other tokens into it; the norms' weights are set apart from 1 so that loading them matters too.
/// </summary>
public static class TinyModernBertWeights
{
    public static void Spread(TransformerModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        Span<float> parameters = model.Parameters;
        foreach (ParameterTensor tensor in model.ParameterTensors)
        {
            Span<float> values = parameters.Slice(tensor.Offset, tensor.Length);
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = tensor.IsVector ? 0.6f + 0.8f * (i * 37 % 19) / 18f : values[i] * 15f;
            }
        }
    }
}
