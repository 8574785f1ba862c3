using System;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>float32 ↔ bfloat16/float16 bit patterns, rounding to nearest, ties to even (as libtorch's conversions do).</summary>
internal static class HfFloats
{
    /// <summary>
    /// The bfloat16 nearest to <paramref name="value"/>, ties to even: add 0x7FFF plus the kept part's lowest bit, then
    /// drop the low 16 bits (c10's <c>round_to_nearest_even</c>). Overflow carries into the exponent and gives ±∞ as
    /// it should; NaN becomes c10's canonical quiet NaN 0x7FC0.
    /// </summary>
    public static ushort ToBFloat16Bits(float value)
    {
        if (float.IsNaN(value)) return 0x7FC0;
        uint bits = BitConverter.SingleToUInt32Bits(value);
        uint lsb = (bits >> 16) & 1;
        return (ushort)((bits + 0x7FFFu + lsb) >> 16);
    }

    /// <summary>bfloat16 → float32 is exact: the bits shifted up by 16.</summary>
    public static float FromBFloat16Bits(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>The float16 nearest to <paramref name="value"/> (.NET's conversion rounds to nearest, ties to even).</summary>
    public static ushort ToFloat16Bits(float value) => BitConverter.HalfToUInt16Bits((Half)value);

    public static float FromFloat16Bits(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary><paramref name="value"/> rounded to <paramref name="dtype"/> and widened back.</summary>
    public static float Round(float value, HfDtype dtype) => dtype switch
    {
        HfDtype.F32 => value,
        HfDtype.BF16 => FromBFloat16Bits(ToBFloat16Bits(value)),
        HfDtype.F16 => FromFloat16Bits(ToFloat16Bits(value)),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };
}
