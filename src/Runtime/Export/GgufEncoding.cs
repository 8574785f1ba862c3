using System;
using System.Buffers.Binary;

namespace TransformerGen;

/// <summary>
/// The reduced-precision encodings of GGUF tensor data, written from their definitions in ggml: bfloat16 rounded to
/// nearest even, and Q8_0 blocks of 32 weights with one fp16 scale.
/// </summary>
internal static class GgufEncoding
{
    /// <summary>
    /// bfloat16 of <paramref name="value"/>: the top 16 bits of the float after rounding to nearest, ties to even (as
    /// ggml's <c>ggml_compute_fp32_to_bf16</c>); a NaN stays a quiet NaN of the same sign.
    /// </summary>
    public static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7fff_ffff) > 0x7f80_0000) return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
    }

    /// <summary>Writes <paramref name="values"/> as bfloat16, 2 bytes each, into <paramref name="destination"/>.</summary>
    public static void WriteBFloat16(ReadOnlySpan<float> values, Span<byte> destination)
    {
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteUInt16LittleEndian(destination[(2 * i)..], ToBFloat16(values[i]));
    }

    /// <summary>
    /// Writes <paramref name="values"/> (a multiple of 32 long) as Q8_0 blocks into <paramref name="destination"/>
    /// (<see cref="GgufFormat.Q8BlockBytes"/> bytes per block). Per block, as ggml's reference <c>quantize_row_q8_0_ref</c>
    /// defines it: <c>d = max|x| / 127</c>, stored as fp16 (round to nearest even); each weight becomes
    /// <c>round(x · (1/d))</c> with halves rounded away from zero, computed with the float <c>d</c> before its rounding to
    /// fp16; a block of zeros has <c>d = 0</c> and zero bytes. Dequantized, a weight is <c>fp16(d) · q</c>.
    /// </summary>
    public static void WriteQ8_0(ReadOnlySpan<float> values, Span<byte> destination)
    {
        if (values.Length % GgufFormat.Q8BlockLength != 0)
            throw new ArgumentException($"Q8_0 needs a multiple of {GgufFormat.Q8BlockLength} values, got {values.Length}", nameof(values));
        for (int block = 0; block < values.Length / GgufFormat.Q8BlockLength; block++)
        {
            ReadOnlySpan<float> x = values.Slice(block * GgufFormat.Q8BlockLength, GgufFormat.Q8BlockLength);
            Span<byte> y = destination.Slice(block * GgufFormat.Q8BlockBytes, GgufFormat.Q8BlockBytes);
            float amax = 0f;
            foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
            float d = amax / 127f;
            float inverse = d != 0f ? 1f / d : 0f;
            BinaryPrimitives.WriteHalfLittleEndian(y, (Half)d);
            for (int j = 0; j < x.Length; j++)
                y[2 + j] = unchecked((byte)(sbyte)MathF.Round(x[j] * inverse, MidpointRounding.AwayFromZero));
        }
    }
}
