using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TransformerGen;

/// <summary>
/// Box–Muller's cosine branch, <c>(float)(√(−2·ln u1)·cos(2π·u2))</c> of two 32-bit draws, computed in double: one value
/// at a time with <see cref="Math.Log(double)"/> and <see cref="Math.Cos"/> (<see cref="Scalar"/>, the definition), and four at a
/// time with a vector logarithm and cosine of this file (<see cref="Fill"/>) that give the same floats, bit for bit.
/// </summary>
/// <remarks>
/// <para>
/// Why the vector path gives the same bits: its logarithm and cosine are within 2^-46 of the library's (relative; measured
/// by the tests, and the algorithms are good to a few units in the last place, 2^-52), so its double product
/// <c>√(−2·ln u1)·cos(2π·u2)</c> is within 2^-44 of the scalar one, under 2^9 units of the double's last place. Rounding
/// to float keeps the top 24 of the 53 significant bits: two doubles that close round to the same float unless a
/// rounding boundary (the midpoint between two floats, where the 29 dropped bits read 2^28) lies between them. A value
/// whose dropped bits are within 2^12 of that midpoint (one value in 2^16) is recomputed by <see cref="Scalar"/>;
/// every other one is the scalar value. Everything else is the same IEEE operations in the same order (the draws'
/// conversion, the scalings, the square root, the rounding to float and the multiplication by the scale).
/// </para>
/// <para>
/// The logarithm is fdlibm's (<c>e_log.c</c>: x = 2^k·(1+f) with 1+f in [√2/2, √2), log(1+f) from s = f/(2+f) and a
/// polynomial in s² with its coefficients Lg1…Lg7), the reduction as musl writes it with 64-bit integers. The cosine
/// reduces 2π·u2 in [0, 2π) by the nearest multiple q of π/2 with two fused multiply-adds (the first is exact: π/2's
/// leading double and the argument share a grid of 2^-53 there), then takes fdlibm's sine or cosine polynomial
/// (<c>k_sin.c</c>, <c>k_cos.c</c>, coefficients S1…S6 and C1…C6) and sign as q mod 4 says.
/// </para>
/// </remarks>
internal static class BoxMuller
{
    /// <summary>One value: the definition that <see cref="Fill"/> reproduces.</summary>
    public static float Scalar(uint a, uint b)
    {
        double u1 = (a + 1.0) * (1.0 / 4294967297.0); // (0, 1]: log stays finite
        double u2 = b * (1.0 / 4294967296.0);
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2));
    }

    /// <summary>
    /// <c>values[i] = Scalar(a, b) · scale</c> where draws[i] holds a in its low 32 bits and b in its high ones; the two
    /// spans have the same length.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Fill(ReadOnlySpan<ulong> draws, Span<float> values, float scale)
    {
        if (draws.Length != values.Length) throw new ArgumentException("one pair of draws per value");
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref ulong d = ref MemoryMarshal.GetReference(draws);
            ref float v = ref MemoryMarshal.GetReference(values);
            Vector128<float> s = Vector128.Create(scale);
            for (; i <= values.Length - Vector256<double>.Count; i += Vector256<double>.Count)
            {
                Vector256<double> product = Product(Vector256.LoadUnsafe(ref d, (nuint)i));
                (Vector128.Narrow(product.GetLower(), product.GetUpper()) * s).StoreUnsafe(ref v, (nuint)i);
                uint nearMidpoint = NearFloatMidpoint(product).ExtractMostSignificantBits();
                while (nearMidpoint != 0)
                {
                    int lane = BitOperations.TrailingZeroCount(nearMidpoint);
                    nearMidpoint &= nearMidpoint - 1;
                    ulong pair = Unsafe.Add(ref d, i + lane);
                    Unsafe.Add(ref v, i + lane) = Scalar((uint)pair, (uint)(pair >> 32)) * scale;
                }
            }
        }
        for (; i < values.Length; i++) values[i] = Scalar((uint)draws[i], (uint)(draws[i] >> 32)) * scale;
    }

    /// <summary>Lanes whose double lies within 2^12 units in the last place of a midpoint between two floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<ulong> NearFloatMidpoint(Vector256<double> product)
    {
        Vector256<ulong> dropped = product.AsUInt64() & Vector256.Create(0x1FFF_FFFFUL);
        // |dropped − 2^28| ≤ 2^12, as one unsigned comparison.
        return Vector256.LessThanOrEqual(dropped - Vector256.Create((1UL << 28) - (1UL << 12)), Vector256.Create(1UL << 13));
    }

    /// <summary>√(−2·ln u1)·cos(2π·u2) in double, of four pairs of draws (a low, b high).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<double> Product(Vector256<ulong> pairs)
    {
        Vector256<double> a = FromUInt32(pairs & Vector256.Create(0xFFFF_FFFFUL));
        Vector256<double> b = FromUInt32(pairs >>> 32);
        Vector256<double> u1 = (a + Vector256.Create(1.0)) * Vector256.Create(1.0 / 4294967297.0);
        Vector256<double> u2 = b * Vector256.Create(1.0 / 4294967296.0);
        return Vector256.Sqrt(Vector256.Create(-2.0) * Log(u1)) * Cos(Vector256.Create(2.0 * Math.PI) * u2);
    }

    // 2^52 + 2^51: adding a small integer to its bits adds it to its value.
    private const double Magic = 6755399441055744.0;

    /// <summary>Exactly the double of each lane's value, which is below 2^32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<double> FromUInt32(Vector256<ulong> x) =>
        (x + Vector256.Create(BitConverter.DoubleToUInt64Bits(Magic))).AsDouble() - Vector256.Create(Magic);

    /// <summary>ln x of positive normal doubles (fdlibm's e_log.c algorithm, within a few units in the last place).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<double> Log(Vector256<double> x)
    {
        const ulong Offset = 0x3FE6_A09E_667F_3BCD; // the bits of √2/2
        Vector256<ulong> ix = x.AsUInt64();
        Vector256<ulong> shifted = ix - Vector256.Create(Offset);
        // k = floor(log2(x·√2)), kept biased by 1023 so that a logical shift reads it; x/2^k in [√2/2, √2).
        Vector256<ulong> biasedK = (shifted + Vector256.Create(0x3FF0_0000_0000_0000UL)) >>> 52;
        Vector256<double> k = FromUInt32(biasedK) - Vector256.Create(1023.0);
        Vector256<double> m = (ix - (shifted & Vector256.Create(0xFFF0_0000_0000_0000UL))).AsDouble();

        Vector256<double> f = m - Vector256.Create(1.0);
        Vector256<double> s = f / (Vector256.Create(2.0) + f);
        Vector256<double> z = s * s;
        Vector256<double> w = z * z;
        Vector256<double> odd = w * Horner(w, 3.999999999940941908e-01, Horner(w, 2.222219843214978396e-01, Vector256.Create(1.531383769920937332e-01)));
        Vector256<double> even = z * Horner(w, 6.666666666666735130e-01, Horner(w, 2.857142874366239149e-01,
            Horner(w, 1.818357216161805012e-01, Vector256.Create(1.479819860511658591e-01))));
        Vector256<double> r = odd + even;
        Vector256<double> halfFSquared = Vector256.Create(0.5) * f * f;
        return k * Vector256.Create(6.93147180369123816490e-01)
            - ((halfFSquared - (s * (halfFSquared + r) + k * Vector256.Create(1.90821492927058770002e-10))) - f);
    }

    /// <summary>cos x for x in [0, 2π) (and somewhat beyond), within a few units in the last place of the result.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<double> Cos(Vector256<double> x)
    {
        const double HalfPi = 1.5707963267948966;            // π/2 rounded to double
        const double HalfPiTail = 6.123233995736766e-17;     // π/2 − HalfPi, rounded
        Vector256<double> shiftedQ = x * Vector256.Create(2.0 / Math.PI) + Vector256.Create(Magic);
        Vector256<ulong> quadrant = shiftedQ.AsUInt64();     // the nearest integer q in the low bits
        Vector256<double> q = shiftedQ - Vector256.Create(Magic);
        Vector256<double> r = Vector256.FusedMultiplyAdd(-q, Vector256.Create(HalfPi), x);
        r = Vector256.FusedMultiplyAdd(-q, Vector256.Create(HalfPiTail), r);

        Vector256<double> z = r * r;
        Vector256<double> sin = r + r * z * Horner(z, -1.66666666666666324348e-01, Horner(z, 8.33333333332248946124e-03,
            Horner(z, -1.98412698298579493134e-04, Horner(z, 2.75573137070700676789e-06,
            Horner(z, -2.50507602534068634195e-08, Vector256.Create(1.58969099521155010221e-10))))));
        Vector256<double> cos = Vector256.Create(1.0) - Vector256.Create(0.5) * z + z * z * Horner(z, 4.16666666666666019037e-02,
            Horner(z, -1.38888888888741095749e-03, Horner(z, 2.48015872894767294178e-05, Horner(z, -2.75573143513906633035e-07,
            Horner(z, 2.08757232129817482790e-09, Vector256.Create(-1.13596475577881948265e-11))))));
        // q mod 4 = 0, 1, 2, 3: cos r, −sin r, −cos r, sin r.
        Vector256<double> odd = Vector256.Equals(quadrant & Vector256.Create(1UL), Vector256.Create(1UL)).AsDouble();
        Vector256<ulong> negate = ((quadrant + Vector256.Create(1UL)) & Vector256.Create(2UL)) << 62;
        return (Vector256.ConditionalSelect(odd, sin, cos).AsUInt64() ^ negate).AsDouble();
    }

    /// <summary>One step of Horner's rule, c + x·rest (fused where the hardware has it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<double> Horner(Vector256<double> x, double c, Vector256<double> rest) =>
        Vector256.MultiplyAddEstimate(x, rest, Vector256.Create(c));
}
