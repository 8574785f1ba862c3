using System;
using System.Collections.Generic;

namespace TransformerGen.Export.Tests;

/// <summary>
/// The test's own rounding of weights as a GGUF file stores them, written from ggml's definitions (independently of the
/// exporter): bfloat16 rounded to nearest even, and Q8_0 blocks of 32 with an fp16 scale. A model whose matrices are
/// replaced by these values computes what the file says; llama.cpp then differs from it only by its own arithmetic.
/// </summary>
internal static class ReducedPrecision
{
    /// <summary>The nearest bfloat16 (ties to even), as a float.</summary>
    public static float BFloat16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        uint rounded = bits + 0x7FFFu + ((bits >> 16) & 1u);
        return BitConverter.UInt32BitsToSingle(rounded & 0xFFFF_0000u);
    }

    /// <summary>One Q8_0 block quantized and dequantized: d = max|x|/127 held as fp16, q = round(x/d) (halves away from zero).</summary>
    public static void Q8Block(Span<float> block)
    {
        float amax = 0;
        foreach (float v in block) amax = Math.Max(amax, Math.Abs(v));
        float d = amax / 127f;
        float id = d == 0 ? 0 : 1f / d;
        float stored = (float)(Half)d;
        for (int i = 0; i < block.Length; i++)
        {
            int q = (int)MathF.Round(block[i] * id, MidpointRounding.AwayFromZero);
            Xunit.Assert.InRange(q, -127, 127);
            block[i] = stored * q;
        }
    }

    /// <summary>Replaces, in <paramref name="model"/>, every tensor the report says was stored as BF16 or Q8_0 by what the file holds.</summary>
    public static int Apply(TransformerModel model, GgufExportReport report)
    {
        var types = new Dictionary<string, GgufTensorType>();
        foreach (GgufTensorInfo t in report.Tensors) types[t.ModelName] = t.Type;
        int rounded = 0;
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            Span<float> values = model.Parameters.Slice(t.Offset, t.Length);
            switch (types[t.Name])
            {
                case GgufTensorType.BF16:
                    for (int i = 0; i < values.Length; i++) values[i] = BFloat16(values[i]);
                    rounded++;
                    break;
                case GgufTensorType.Q8_0:
                    for (int i = 0; i < values.Length; i += 32) Q8Block(values.Slice(i, 32));
                    rounded++;
                    break;
            }
        }
        return rounded;
    }
}
