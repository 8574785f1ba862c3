using System;
using TransformerGen.Kernels;
using TransformerGen.Tests.Threading;
using Xunit;

namespace TransformerGen.Tests.Kernels;

// The attribute library's enum TransformerGen.Positional would win name lookup inside TransformerGen.* namespaces.
using Positional = TransformerGen.Kernels.Positional;

/// <summary>
/// Half-split rotary embedding (Hugging Face's <c>rotate_half</c>, pairs (j, j + D/2)) and its float32 tables:
/// transformers' formula bit for bit, a double reference, the transpose in backward, position offsets, the tables for
/// the thetas of Llama 2, SmolLM2, Llama 3 and Qwen2, and the relative-position property.
/// </summary>
public class RotaryHalfTests
{
    private static (float[] Cos, float[] Sin) Tables(int maxLen, int headDim, float theta)
    {
        float[] cos = new float[maxLen * headDim / 2], sin = new float[maxLen * headDim / 2];
        Positional.RotaryTables(cos, sin, maxLen, headDim, theta);
        return (cos, sin);
    }

    /// <summary>
    /// transformers' <c>q·cos + rotate_half(q)·sin</c> written out for one head, in float, with its full-width
    /// <c>cos = cat(c, c)</c>, <c>sin = cat(s, s)</c> and <c>rotate_half(x) = cat(−x[D/2:], x[:D/2])</c>.
    /// </summary>
    private static float[] TransformersRotate(ReadOnlySpan<float> x, ReadOnlySpan<float> c, ReadOnlySpan<float> s)
    {
        int d = x.Length, half = d / 2;
        var result = new float[d];
        for (int i = 0; i < d; i++)
        {
            float cosFull = c[i % half], sinFull = s[i % half];
            float rotated = i < half ? -x[i + half] : x[i - half];
            float product = x[i] * cosFull, rotatedProduct = rotated * sinFull; // two tensor products, then the sum
            result[i] = product + rotatedProduct;
        }
        return result;
    }

    public static TheoryData<int> HeadDims() => new() { 2, 4, 6, 10, 12, 24, 40, 64, 128, 130 };

    [Theory]
    [MemberData(nameof(HeadDims))]
    public void Forward_is_transformers_rotate_half_bit_for_bit_and_matches_double(int headDim)
    {
        // 3 query heads and 1 key head rotated at the start of a packed Q | K | V row, V (and 3 more floats) not.
        int batch = 2, seqLen = 5, heads = 3, kvHeads = 1, rotatedHeads = heads + kvHeads, maxLen = 9, position0 = 3, half = headDim / 2;
        int rowStride = (heads + 2 * kvHeads) * headDim + 3;
        var (cos, sin) = Tables(maxLen, headDim, 10000f);
        float[] qkv = TestTensors.Normal(new Rng(90), batch * seqLen * rowStride);
        float[] rotated = (float[])qkv.Clone();
        Positional.RotaryHalfForward(rotated, cos, sin, batch, seqLen, rotatedHeads, headDim, rowStride, position0);

        for (int b = 0; b < batch; b++)
            for (int t = 0; t < seqLen; t++)
            {
                int row = (b * seqLen + t) * rowStride, p = position0 + t;
                ReadOnlySpan<float> c = cos.AsSpan(p * half, half), s = sin.AsSpan(p * half, half);
                for (int block = 0; block < rotatedHeads; block++)
                {
                    int at = row + block * headDim;
                    float[] expected = TransformersRotate(qkv.AsSpan(at, headDim), c, s);
                    ThreadSettings.AssertBitIdentical(expected, rotated.AsSpan(at, headDim), $"headDim={headDim} b={b} t={t} head {block}");
                    for (int j = 0; j < half; j++)
                    {
                        double x = qkv[at + j], y = qkv[at + j + half];
                        double xr = x * c[j] - y * s[j], yr = y * c[j] + x * s[j];
                        double tolerance = 1e-6 * (1 + Math.Abs(x) + Math.Abs(y));
                        Assert.True(Math.Abs(xr - rotated[at + j]) <= tolerance, $"x'[{j}] = {rotated[at + j]}, double {xr}");
                        Assert.True(Math.Abs(yr - rotated[at + j + half]) <= tolerance, $"x'[{j + half}] = {rotated[at + j + half]}, double {yr}");
                    }
                }
                // V and the columns after it are untouched.
                for (int col = rotatedHeads * headDim; col < rowStride; col++) Assert.Equal(qkv[row + col], rotated[row + col]);
            }
    }

    [Fact]
    public void Forward_rotates_pairs_j_and_j_plus_half_not_interleaved_pairs()
    {
        // Position 1 of a 4-float head, theta 1: both angles are 1 radian. x = e0 rotates into the plane (0, 2).
        int headDim = 4;
        var (cos, sin) = Tables(2, headDim, 1f);
        float[] row = [0, 0, 0, 0, 1, 0, 0, 0];
        Positional.RotaryHalfForward(row, cos, sin, 1, 2, 1, headDim, headDim);
        Assert.Equal([MathF.Cos(1f), 0f, MathF.Sin(1f), 0f], row.AsSpan(4).ToArray());
    }

    [Theory]
    [InlineData(2)]
    [InlineData(6)]
    [InlineData(10)]
    [InlineData(64)]
    [InlineData(130)]
    public void Backward_is_the_transpose(int headDim)
    {
        int batch = 2, seqLen = 7, rotatedHeads = 5, rowStride = 7 * headDim + 1, maxLen = 7;
        var (cos, sin) = Tables(maxLen, headDim, 500000f);
        var rng = new Rng(91);
        float[] x = TestTensors.Normal(rng, batch * seqLen * rowStride), y = TestTensors.Normal(rng, x.Length);
        float[] rx = (float[])x.Clone(), rty = (float[])y.Clone();
        Positional.RotaryHalfForward(rx, cos, sin, batch, seqLen, rotatedHeads, headDim, rowStride);
        Positional.RotaryHalfBackward(rty, cos, sin, batch, seqLen, rotatedHeads, headDim, rowStride);
        // ⟨R x, y⟩ = ⟨x, Rᵀ y⟩
        double left = GradientCheck.Dot(rx, y), right = GradientCheck.Dot(x, rty);
        Assert.True(Math.Abs(left - right) <= 1e-5 * Math.Sqrt(GradientCheck.Dot(x, x) * GradientCheck.Dot(y, y)), $"⟨Rx, y⟩ = {left}, ⟨x, Rᵀy⟩ = {right}");
        // Rᵀ R = I up to rounding (cos² + sin² = 1 within a few ulps), and columns past the rotated heads are untouched.
        Positional.RotaryHalfBackward(rx, cos, sin, batch, seqLen, rotatedHeads, headDim, rowStride);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.True(Math.Abs(rx[i] - x[i]) <= 1e-6 * (1 + Math.Abs(x[i])), $"RᵀRx[{i}] = {rx[i]}, x = {x[i]}");
            if (i % rowStride >= rotatedHeads * headDim) Assert.Equal(y[i], rty[i]);
        }
    }

    [Theory]
    [InlineData(6)]
    [InlineData(12)]
    public void Backward_matches_finite_differences_in_place(int headDim)
    {
        int batch = 2, seqLen = 4, rotatedHeads = 3, rowStride = 4 * headDim, maxLen = 4;
        var (cos, sin) = Tables(maxLen, headDim, 100000f);
        var rng = new Rng(92);
        float[] qkv = TestTensors.Normal(rng, batch * seqLen * rowStride), g = TestTensors.Normal(rng, qkv.Length);
        var y = new float[qkv.Length];
        double Loss() { qkv.CopyTo(y, 0); Positional.RotaryHalfForward(y, cos, sin, batch, seqLen, rotatedHeads, headDim, rowStride); return GradientCheck.Dot(g, y); }
        float[] dQkv = (float[])g.Clone();
        Positional.RotaryHalfBackward(dQkv, cos, sin, batch, seqLen, rotatedHeads, headDim, rowStride);
        GradientCheck.Check("dQkv", qkv, dQkv, Loss);
    }

    [Theory]
    [InlineData(10)]
    [InlineData(64)]
    public void Position0_gives_the_rows_of_a_longer_pass(int headDim)
    {
        int batch = 2, longLen = 12, position0 = 5, shortLen = longLen - position0, rotatedHeads = 4, rowStride = 6 * headDim;
        var (cos, sin) = Tables(longLen, headDim, 1000000f);
        float[] full = TestTensors.Normal(new Rng(93), batch * longLen * rowStride);
        float[] tail = new float[batch * shortLen * rowStride];
        for (int b = 0; b < batch; b++)
            Array.Copy(full, (b * longLen + position0) * rowStride, tail, b * shortLen * rowStride, shortLen * rowStride);
        Positional.RotaryHalfForward(full, cos, sin, batch, longLen, rotatedHeads, headDim, rowStride);
        Positional.RotaryHalfForward(tail, cos, sin, batch, shortLen, rotatedHeads, headDim, rowStride, position0);
        for (int b = 0; b < batch; b++)
            ThreadSettings.AssertBitIdentical(full.AsSpan((b * longLen + position0) * rowStride, shortLen * rowStride),
                tail.AsSpan(b * shortLen * rowStride, shortLen * rowStride), $"sequence {b}");
    }

    [Theory]
    [InlineData(10000f, 64)]
    [InlineData(100000f, 64)]
    [InlineData(500000f, 128)]
    [InlineData(1000000f, 64)]
    [InlineData(1000000f, 12)]
    public void Tables_follow_the_float32_recipe_of_transformers(float theta, int headDim)
    {
        int maxLen = 4096, half = headDim / 2;
        var (cos, sin) = Tables(maxLen, headDim, theta);
        double worst = 0;
        for (int j = 0; j < half; j++)
        {
            // transformers: inv_freq = 1.0 / (base ** (arange(0, dim, 2).float() / dim)), freqs = position.float() * inv_freq.
            float inverseFrequency = 1f / MathF.Pow(theta, (float)(2 * j) / (float)headDim);
            double exactFrequency = Math.Pow(theta, -2.0 * j / headDim);
            for (int p = 0; p < maxLen; p++)
            {
                float angle = (float)p * inverseFrequency;
                Assert.Equal(BitConverter.SingleToInt32Bits(MathF.Cos(angle)), BitConverter.SingleToInt32Bits(cos[p * half + j]));
                Assert.Equal(BitConverter.SingleToInt32Bits(MathF.Sin(angle)), BitConverter.SingleToInt32Bits(sin[p * half + j]));
                // Against the exact angle: the float exponent 2j/D (rounded by up to 2⁻²⁴ relative) moves θ^(−2j/D) by
                // up to ln θ·2⁻²⁴ relative, pow, the division and the product by a few ulps more; then the result's rounding.
                double exactAngle = p * exactFrequency;
                double bound = (Math.Log(theta) + 4) * Math.Pow(2, -24) * exactAngle + 1.5e-7;
                double error = Math.Max(Math.Abs(Math.Cos(exactAngle) - cos[p * half + j]), Math.Abs(Math.Sin(exactAngle) - sin[p * half + j]));
                Assert.True(error <= bound, $"theta={theta} p={p} j={j}: error {error:E2} beyond {bound:E2}");
                worst = Math.Max(worst, error);
            }
        }
        // Frequency 0 is 1 exactly: column 0 is cos(p), sin(p) of the float position.
        for (int p = 0; p < maxLen; p++) Assert.Equal(MathF.Cos(p), cos[p * half]);
        Assert.All(cos.AsSpan(0, half).ToArray(), c => Assert.Equal(1f, c));
        Assert.All(sin.AsSpan(0, half).ToArray(), s => Assert.Equal(0f, s));
        Assert.True(worst > 0);
    }

    [Fact]
    public void The_four_argument_tables_are_still_computed_in_double()
    {
        // The interleaved form's tables serve trained models: θ = 10000 in double, rounded once.
        int maxLen = 300, headDim = 12, half = headDim / 2;
        float[] cos = new float[maxLen * half], sin = new float[maxLen * half];
        Positional.RotaryTables(cos, sin, maxLen, headDim);
        int differentFromFloat32 = 0;
        var (cos32, _) = Tables(maxLen, headDim, 10000f);
        for (int i = 0; i < half; i++)
            for (int p = 0; p < maxLen; p++)
            {
                double angle = p * Math.Pow(10000.0, -2.0 * i / headDim);
                Assert.Equal((float)Math.Cos(angle), cos[p * half + i]);
                Assert.Equal((float)Math.Sin(angle), sin[p * half + i]);
                if (cos32[p * half + i] != cos[p * half + i]) differentFromFloat32++;
            }
        Assert.True(differentFromFloat32 > 0, "the float32 recipe should round differently somewhere, or this test shows nothing");
    }

    [Fact]
    public void Scores_after_rotation_depend_only_on_the_position_difference()
    {
        // Every row holds the same q (head 0) and k (head 1); one pass rotates them at every position 0…maxLen−1.
        int headDim = 64, maxLen = 520;
        var (cos, sin) = Tables(maxLen, headDim, 10000f);
        var rng = new Rng(94);
        float[] q = TestTensors.Normal(rng, headDim), k = TestTensors.Normal(rng, headDim);
        float[] rows = new float[maxLen * 2 * headDim];
        for (int p = 0; p < maxLen; p++)
        {
            q.CopyTo(rows, p * 2 * headDim);
            k.CopyTo(rows, p * 2 * headDim + headDim);
        }
        Positional.RotaryHalfForward(rows, cos, sin, 1, maxLen, 2, headDim, 2 * headDim);
        double Score(int m, int n) => GradientCheck.Dot(rows.AsSpan(m * 2 * headDim, headDim), rows.AsSpan(n * 2 * headDim + headDim, headDim));
        double norms = Math.Sqrt(GradientCheck.Dot(q, q) * GradientCheck.Dot(k, k));

        foreach (int distance in new[] { 0, 1, 5, 37 })
        {
            double near = Score(distance, 0);
            // Small positions: rounding of the products only (observed 6e-8 of |q|·|k|).
            for (int shift = 1; shift < 16; shift++)
                Assert.True(Math.Abs(Score(distance + shift, shift) - near) <= 5e-7 * norms, $"distance {distance} shift {shift}: {Score(distance + shift, shift)} vs {near}");
            // Far positions: the float angle's rounding grows with the position (observed 8e-7).
            foreach (int shift in new[] { 100, 255, 480 })
                Assert.True(Math.Abs(Score(distance + shift, shift) - near) <= 2e-5 * norms, $"distance {distance} shift {shift}: {Score(distance + shift, shift)} vs {near}");
            // The score does change with the distance, so the check above is not empty.
            Assert.True(Math.Abs(Score(distance + 1, 0) - near) > 1e-3 * norms);
        }
    }

    [Fact]
    public void Wrong_arguments_throw()
    {
        Assert.Equal("headDim", Assert.Throws<ArgumentOutOfRangeException>(() => Positional.RotaryTables(new float[10], new float[10], 5, 5, 10000f)).ParamName);
        foreach (float theta in new[] { 0f, -1f, float.NaN, float.PositiveInfinity })
            Assert.Equal("theta", Assert.Throws<ArgumentOutOfRangeException>(() => Positional.RotaryTables(new float[10], new float[10], 5, 4, theta)).ParamName);
        Assert.Equal("sin", Assert.Throws<ArgumentException>(() => Positional.RotaryTables(new float[10], new float[9], 5, 4, 10000f)).ParamName);

        float[] cos = new float[4 * 2], sin = new float[4 * 2];
        Assert.Equal("headDim", Assert.Throws<ArgumentOutOfRangeException>(() => Positional.RotaryHalfForward(new float[3 * 12], cos, sin, 1, 3, 2, 5, 12)).ParamName);
        Assert.Equal("rowStride", Assert.Throws<ArgumentOutOfRangeException>(() => Positional.RotaryHalfForward(new float[3 * 11], cos, sin, 1, 3, 3, 4, 11)).ParamName);
        Assert.Equal("rotatedHeads", Assert.Throws<ArgumentOutOfRangeException>(() => Positional.RotaryHalfForward(new float[3 * 12], cos, sin, 1, 3, 0, 4, 12)).ParamName);
        Assert.Equal("qkv", Assert.Throws<ArgumentException>(() => Positional.RotaryHalfForward(new float[3 * 12 + 1], cos, sin, 1, 3, 3, 4, 12)).ParamName);
        Assert.Equal("dQkv", Assert.Throws<ArgumentException>(() => Positional.RotaryHalfBackward(new float[3 * 12 - 1], cos, sin, 1, 3, 3, 4, 12)).ParamName);
        // Positions 2…4 need 5 table rows; there are 4.
        Assert.Equal("cos", Assert.Throws<ArgumentException>(() => Positional.RotaryHalfForward(new float[3 * 12], cos, sin, 1, 3, 3, 4, 12, position0: 2)).ParamName);
        Assert.Equal("sin", Assert.Throws<ArgumentException>(() => Positional.RotaryHalfBackward(new float[5 * 12], new float[10], new float[7], 1, 5, 3, 4, 12)).ParamName);
        Positional.RotaryHalfForward(new float[3 * 12], cos, sin, 1, 3, 3, 4, 12, position0: 1); // the right sizes pass
    }
}
