using System;
using B = TransformerGen.OnnxGraphBuilder;
using DataType = Onnx.TensorProto.Types.DataType;

namespace TransformerGen;

/// <summary>
/// Linear layers with 8-bit weights for ONNX Runtime (<see cref="OnnxWeightFormat.Int8Blocks"/>): its contrib operator
/// <c>com.microsoft.MatMulNBits</c> with <c>bits = 8</c> and <c>block_size = 32</c>, whose weight is
/// <c>uint8 [N, ⌈K/32⌉, 32]</c> codes with a per-block scale <c>[N, ⌈K/32⌉]</c> and the default zero point 128:
/// <c>w = (code − 128)·scale</c>. The blocks are GGUF's Q8_0 (symmetric, <c>d = max|w|/127</c>, <c>q = round(w/d)</c>),
/// with the scale kept in fp32 rather than fp16. Standard opset 17 has no block-quantized product; the dynamic
/// <c>MatMulInteger</c> form quantizes a whole tensor with one scale, which is not what the model's int8 computes.
/// </summary>
internal static class OnnxInt8Blocks
{
    private const int Block = 32;

    /// <summary><c>x·Wᵀ</c> for <paramref name="w"/> <c>[outF, inF]</c>, quantized here; returns the product's name.</summary>
    public static string MatMul(B g, string stem, string x, float[] w, int outF, int inF, int accuracyLevel)
    {
        int blocks = (inF + Block - 1) / Block;
        var codes = new byte[(long)outF * blocks * Block];
        var scales = new float[(long)outF * blocks];
        for (int o = 0; o < outF; o++)
        {
            for (int blk = 0; blk < blocks; blk++)
            {
                int start = blk * Block, length = Math.Min(Block, inF - start);
                ReadOnlySpan<float> values = w.AsSpan((int)((long)o * inF + start), length);
                float max = 0f;
                foreach (float v in values) max = Math.Max(max, Math.Abs(v));
                float d = max / 127f;
                float inverse = d == 0f ? 0f : 1f / d;
                long at = ((long)o * blocks + blk) * Block;
                for (int i = 0; i < Block; i++)
                {
                    int q = i < length ? (int)MathF.Round(values[i] * inverse, MidpointRounding.AwayFromZero) : 0;
                    codes[at + i] = (byte)(Math.Clamp(q, -127, 127) + 128);
                }
                scales[(long)o * blocks + blk] = d;
            }
        }
        string weight = g.Initializer(stem + ".weight_q8", [outF, blocks, Block], DataType.Uint8, codes);
        string scale = g.Floats(stem + ".weight_scales", [outF, blocks], scales);
        return g.Node("MatMulNBits", [x, weight, scale], stem + "_product", n =>
        {
            B.Int(n, "K", inF);
            B.Int(n, "N", outF);
            B.Int(n, "bits", 8);
            B.Int(n, "block_size", Block);
            B.Int(n, "accuracy_level", accuracyLevel);
        }, domain: B.MicrosoftDomain);
    }
}
