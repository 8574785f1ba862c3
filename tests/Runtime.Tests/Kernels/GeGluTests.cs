using System;
using TransformerGen.Kernels;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Tests.Kernels;

/// <summary>
/// GEGLU with the erf GELU (ModernBERT's feed-forward, <c>Wo(gelu(input)·gate)</c> over <c>Wi</c>'s two halves):
/// the forward pass is GeluForward of the first half times the second, to the bit; the backward pass against central
/// differences of the formula in double.
/// </summary>
public class GeGluTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(5, 7)]
    [InlineData(3, 37)]
    [InlineData(33, 67)]
    public void Forward_is_the_erf_gelu_of_the_first_half_times_the_second_to_the_bit(int n, int hidden)
    {
        var rng = new Rng(71);
        float[] gateUp = TestTensors.Normal(rng, n * 2 * hidden, 3f);
        float[] y = OverwriteChecks.Poisoned(n * hidden);
        Activations.GeGluForward(gateUp, y, n, hidden);
        float[] first = new float[hidden], gelu = new float[hidden];
        for (int r = 0; r < n; r++)
        {
            Array.Copy(gateUp, r * 2 * hidden, first, 0, hidden);
            Activations.GeluForward(first, gelu);
            for (int j = 0; j < hidden; j++)
            {
                float second = gateUp[r * 2 * hidden + hidden + j];
                Assert.Equal(BitConverter.SingleToInt32Bits(gelu[j] * second), BitConverter.SingleToInt32Bits(y[r * hidden + j]));
                double expected = ReferenceMath.Gelu(first[j]) * second;
                Assert.True(Math.Abs(y[r * hidden + j] - expected) <= 1e-6 * (1 + Math.Abs(expected)), $"y[{r},{j}] = {y[r * hidden + j]}, expected {expected}");
            }
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(5, 7)]
    [InlineData(3, 37)]
    [InlineData(2, 67)]
    public void Backward_matches_finite_differences_of_the_double_formula_and_accumulates(int n, int hidden)
    {
        var rng = new Rng(72);
        float[] gateUp = TestTensors.Normal(rng, n * 2 * hidden, 2f), g = TestTensors.Normal(rng, n * hidden);
        double[] gateUpD = ReferenceGradient.ToDouble(gateUp);
        double Loss()
        {
            double sum = 0;
            for (int r = 0; r < n; r++)
                for (int j = 0; j < hidden; j++)
                    sum += g[r * hidden + j] * ReferenceMath.Gelu(gateUpD[r * 2 * hidden + j]) * gateUpD[r * 2 * hidden + hidden + j];
            return sum;
        }
        float[] dGateUp = OverwriteChecks.Poisoned(gateUp.Length);
        Activations.GeGluBackward(g, gateUp, dGateUp, n, hidden, overwriteDGateUp: true);
        double error = ReferenceGradient.AssertClose("dGateUp", dGateUp, ReferenceGradient.Numeric(gateUpD, Loss), 1e-6);
        output.WriteLine($"n={n} hidden={hidden}: max error {error:E2} of the gradient's scale");

        var twice = (float[])dGateUp.Clone();
        Activations.GeGluBackward(g, gateUp, twice, n, hidden);
        GradientCheck.AssertDoubled("dGateUp", dGateUp, twice);
    }
}
