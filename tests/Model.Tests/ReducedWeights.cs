using System;
using TransformerGen.Kernels;

namespace TransformerGen.Model.Tests;

/// <summary>
/// What an instance with reduced weights should compute: the fp32 model's packed matrices rounded to the format with the
/// kernels' public conversions (8-bit blocks quantized and dequantized, or bf16 rounded), for a reference to compare with.
/// </summary>
internal static class ReducedWeights
{
    /// <summary>The weights a matrix holds once rounded to <paramref name="type"/>.</summary>
    public static float[] Rounded(ReadOnlySpan<float> w, int rows, int columns, WeightType type)
    {
        var result = new float[w.Length];
        if (type == WeightType.Int8)
        {
            var q = new byte[QuantizedMatMul.ByteCount(rows, columns)];
            QuantizedMatMul.Quantize(w, rows, columns, q);
            QuantizedMatMul.Dequantize(q, rows, columns, result);
        }
        else
        {
            for (int i = 0; i < w.Length; i++) result[i] = BFloat16MatMul.ToSingle(BFloat16MatMul.RoundToBFloat16(w[i]));
        }
        return result;
    }

    /// <summary>Rounds every packed matrix of <paramref name="model"/>'s fp32 parameters to <paramref name="type"/>, in place.</summary>
    public static void RoundMatrices(TransformerModel model, WeightType type)
    {
        Span<float> p = model.Parameters;
        foreach (WeightMatrix m in model.Layout.PackedMatrices)
        {
            Span<float> w = p.Slice(m.Offset, m.Rows * m.Columns);
            Rounded(w, m.Rows, m.Columns, type).CopyTo(w);
        }
    }
}
