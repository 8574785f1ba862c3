using System;
using System.Collections.Generic;
using System.Numerics;
using System.Runtime.Intrinsics;
using Xunit;

namespace TransformerGen.Tests.Model;

/// <summary>
/// The vector Box–Muller that initializes models gives the floats of the scalar definition, bit for bit, and the bound
/// on its logarithm and cosine that this rests on (see BoxMuller's remarks) holds.
/// </summary>
public class BoxMullerTests
{
    private const int Count = 1 << 23;

    /// <summary>Random pairs of draws, then the extremes of each draw and the arguments where the cosine is near zero.</summary>
    private static ulong[] Draws()
    {
        var rng = new Rng(20261206);
        var draws = new ulong[Count];
        for (int i = 0; i < draws.Length; i++) draws[i] = rng.NextUInt32() | (ulong)rng.NextUInt32() << 32;
        int at = 0;
        uint[] edges = [0, 1, 2, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF];
        foreach (uint a in edges)
            foreach (uint b in edges) draws[at++] = a | (ulong)b << 32;
        // b near 2^30 and 3·2^30: 2π·b/2^32 near π/2 and 3π/2, where cos is smallest (6e-17 at b = 2^30 exactly).
        foreach (uint center in new uint[] { 1u << 30, 3u << 30, 1u << 31 })
            for (int d = -2048; d <= 2048; d++) draws[at++] = (uint)(at * 2654435761u) | (ulong)(uint)(center + d) << 32;
        return draws;
    }

    [Fact]
    public void Fill_gives_the_scalar_floats_bit_for_bit()
    {
        ulong[] draws = Draws();
        var values = new float[draws.Length];
        BoxMuller.Fill(draws, values, 0.02f);
        int differing = 0;
        for (int i = 0; i < draws.Length; i++)
        {
            float expected = BoxMuller.Scalar((uint)draws[i], (uint)(draws[i] >> 32)) * 0.02f;
            if (BitConverter.SingleToInt32Bits(values[i]) != BitConverter.SingleToInt32Bits(expected) && differing++ < 5)
                Assert.Fail($"draws {draws[i]:x16}: {values[i]:R} instead of {expected:R}");
        }
        Assert.Equal(0, differing);
    }

    [Fact]
    public void The_vector_logarithm_and_cosine_are_within_2_to_the_minus_46_of_the_library()
    {
        ulong[] draws = Draws();
        double worstLog = 0, worstCos = 0;
        for (int i = 0; i < draws.Length; i += 4)
        {
            Vector256<ulong> pairs = Vector256.Create(draws, i);
            var u1 = Vector256.Create(Lanes(pairs, pair => ((uint)pair + 1.0) * (1.0 / 4294967297.0)));
            var x = Vector256.Create(Lanes(pairs, pair => 2.0 * Math.PI * ((uint)(pair >> 32) * (1.0 / 4294967296.0))));
            Vector256<double> log = BoxMuller.Log(u1), cos = BoxMuller.Cos(x);
            for (int lane = 0; lane < 4; lane++)
            {
                worstLog = Math.Max(worstLog, RelativeError(log[lane], Math.Log(u1[lane])));
                worstCos = Math.Max(worstCos, RelativeError(cos[lane], Math.Cos(x[lane])));
            }
        }
        Assert.True(worstLog <= Math.ScaleB(1, -46), $"log: relative error {worstLog:E3}");
        Assert.True(worstCos <= Math.ScaleB(1, -46), $"cos: relative error {worstCos:E3}");
    }

    [Fact]
    public void Values_near_a_float_rounding_boundary_are_found_and_recomputed()
    {
        // Draws whose product lies near a midpoint between two floats: about one in 2^16, so these tests' draws hold
        // about a hundred. The library's product is near the midpoint too, and Fill stores the scalar value there.
        ulong[] draws = Draws();
        var near = new List<int>();
        for (int i = 0; i < draws.Length; i += 4)
        {
            uint mask = BoxMuller.NearFloatMidpoint(BoxMuller.Product(Vector256.Create(draws, i))).ExtractMostSignificantBits();
            for (; mask != 0; mask &= mask - 1) near.Add(i + BitOperations.TrailingZeroCount(mask));
        }
        Assert.InRange(near.Count, 32, 1024);
        foreach (int i in near)
        {
            double exact = Math.Sqrt(-2.0 * Math.Log(((uint)draws[i] + 1.0) * (1.0 / 4294967297.0)))
                * Math.Cos(2.0 * Math.PI * ((uint)(draws[i] >> 32) * (1.0 / 4294967296.0)));
            long dropped = BitConverter.DoubleToInt64Bits(exact) & 0x1FFF_FFFF;
            Assert.InRange(Math.Abs(dropped - (1L << 28)), 0, 1L << 13);
            var four = new float[4];
            BoxMuller.Fill(draws.AsSpan(i & ~3, 4), four, 1f);
            Assert.Equal(BoxMuller.Scalar((uint)draws[i], (uint)(draws[i] >> 32)), four[i & 3]);
        }
    }

    /// <summary>
    /// Draws where the vector product, rounded to float, is not the scalar value (found by a search over about 10^10
    /// random pairs, one in a few billion): only the recomputation near a rounding boundary makes Fill right there.
    /// </summary>
    [Theory]
    [InlineData(0x07B9B4FFB292C585UL)]
    [InlineData(0xA931F5D1EC4162A3UL)]
    [InlineData(0xCA36BEE177EE3FCEUL)]
    public void Where_the_vector_product_rounds_to_another_float_Fill_stores_the_scalar_one(ulong pair)
    {
        uint a = (uint)pair, b = (uint)(pair >> 32);
        float scalar = BoxMuller.Scalar(a, b);
        Vector256<double> product = BoxMuller.Product(Vector256.Create(pair));
        Assert.NotEqual(scalar, (float)product[0]);
        Assert.Equal(0xFu, BoxMuller.NearFloatMidpoint(product).ExtractMostSignificantBits());
        var values = new float[8];
        BoxMuller.Fill([pair, pair, pair, pair, pair, pair, pair, pair], values, 1f);
        Assert.All(values, value => Assert.Equal(scalar, value));
    }

    private static double[] Lanes(Vector256<ulong> pairs, Func<ulong, double> f) => [f(pairs[0]), f(pairs[1]), f(pairs[2]), f(pairs[3])];

    private static double RelativeError(double value, double reference) =>
        value == reference ? 0 : Math.Abs((value - reference) / reference);
}
