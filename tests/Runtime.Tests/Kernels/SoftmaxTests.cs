using System;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Tests.Kernels;

public class SoftmaxTests
{
    [Fact]
    public void Short_rows_in_one_vector_give_the_general_paths_bits()
    {
        var rng = new Rng(21);
        for (int length = 1; length <= 17; length++)
            foreach (float scale in new[] { 1f, 0.17677669f })
            {
                float[] x = TestTensors.Normal(rng, length, 4f);
                if (length > 2) x[1] = x[0]; // a tie for the max
                float[] fast = new float[length], general = new float[length];
                double fastLse = Softmax.Row(x, fast, scale), generalLse = Softmax.RowOfAnyLength(x, general, scale);
                Assert.Equal(BitConverter.DoubleToInt64Bits(generalLse), BitConverter.DoubleToInt64Bits(fastLse));
                for (int i = 0; i < length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(general[i]) == BitConverter.SingleToInt32Bits(fast[i]),
                        $"length {length}, scale {scale}: y[{i}] = {fast[i]:R}, the general path gives {general[i]:R}");
                // In place, as attention calls it.
                float[] inPlace = (float[])x.Clone();
                Softmax.Row(inPlace, inPlace, scale);
                Assert.Equal(general, inPlace);
            }
    }

    // Widths below, at and past one vector, so whole vectors, masked tails and both together are exercised.
    [Theory]
    [InlineData(37)]
    [InlineData(3)]
    [InlineData(16)]
    [InlineData(9)]
    public void Rows_sum_to_one_and_match_reference_even_with_large_inputs(int cols)
    {
        int rows = 4;
        var rng = new Rng(30);
        float[] x = TestTensors.Normal(rng, rows * cols, 3f);
        x[0] = 1000f; x[1] = 999f;                     // row 0: would overflow exp without the max subtraction
        for (int j = 0; j < cols; j++) x[cols + j] -= 1000f; // row 1: would underflow to 0/0
        var y = new float[x.Length];
        Softmax.Forward(x, y, rows, cols);
        for (int r = 0; r < rows; r++)
        {
            double max = double.NegativeInfinity, sum = 0, total = 0;
            for (int j = 0; j < cols; j++) max = Math.Max(max, x[r * cols + j]);
            for (int j = 0; j < cols; j++) sum += Math.Exp(x[r * cols + j] - max);
            for (int j = 0; j < cols; j++)
            {
                float v = y[r * cols + j];
                Assert.True(float.IsFinite(v));
                Assert.Equal(Math.Exp(x[r * cols + j] - max) / sum, v, 1e-6);
                total += v;
            }
            Assert.Equal(1.0, total, 1e-5);
        }
        Assert.Equal(1 / (1 + Math.E), y[1], 1e-6);

        // In place.
        var inPlace = (float[])x.Clone();
        Softmax.Forward(inPlace, inPlace, rows, cols);
        Assert.Equal(y, inPlace);
    }

    [Theory]
    [InlineData(7, 13)]
    [InlineData(3, 33)]
    public void Backward_matches_finite_differences_and_accumulates(int rows, int cols)
    {
        var rng = new Rng(31);
        float[] x = TestTensors.Normal(rng, rows * cols), g = TestTensors.Normal(rng, rows * cols);
        var y = new float[x.Length];
        double Loss() { Softmax.Forward(x, y, rows, cols); return GradientCheck.Dot(g, y); }
        Loss();
        float[] saved = (float[])y.Clone();
        var dx = new float[x.Length];
        Softmax.Backward(g, saved, dx, rows, cols);
        GradientCheck.Check("dx", x, dx, Loss);

        var twice = (float[])dx.Clone();
        Softmax.Backward(g, saved, twice, rows, cols);
        GradientCheck.AssertDoubled("dx", dx, twice);
    }

    [Fact]
    public void Wrong_lengths_throw()
    {
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => Softmax.Forward(new float[6], new float[5], 2, 3)).ParamName);
        Assert.Equal("dx", Assert.Throws<ArgumentException>(() => Softmax.Backward(new float[6], new float[6], new float[7], 2, 3)).ParamName);
    }
}
