using System;
using Xunit;

namespace TransformerGen.Tests.Training;

public sealed class SgdTests
{
    /// <summary>PyTorch's SGD (torch/optim/sgd.py, dampening 0), written independently in double.</summary>
    private static void ReferenceStep(double[] theta, double[] g, double[]? buffer, bool first, double lr, double momentum, double weightDecay, bool nesterov)
    {
        for (int i = 0; i < theta.Length; i++)
        {
            double d = g[i];
            if (weightDecay != 0) d += weightDecay * theta[i];
            if (momentum != 0)
            {
                buffer![i] = first ? d : momentum * buffer[i] + d;
                d = nesterov ? d + momentum * buffer[i] : buffer[i];
            }
            theta[i] -= lr * d;
        }
    }

    [Theory]
    [InlineData(0f, 0f, false)]
    [InlineData(0f, 0.01f, false)]
    [InlineData(0.9f, 0f, false)]
    [InlineData(0.9f, 0.01f, false)]
    [InlineData(0.9f, 0.01f, true)]
    public void MatchesDoublePrecisionPyTorchAlgorithmOverFiveSteps(float momentum, float weightDecay, bool nesterov)
    {
        var model = new TestModel([5, 3], [22], [3, 41]);
        var rng = new Rng(11);
        model.Randomize(rng);
        double[] theta = Array.ConvertAll(model.ParameterArray, x => (double)x);
        double[]? buffer = momentum != 0 ? new double[theta.Length] : null;
        const float lr = 0.05f;
        var optimizer = new Sgd(model, lr, momentum, weightDecay, nesterov);

        for (int step = 1; step <= 5; step++)
        {
            double[] g = model.NewGradients(rng);
            optimizer.Step();
            ReferenceStep(theta, g, buffer, step == 1, lr, momentum, weightDecay, nesterov);
            for (int i = 0; i < theta.Length; i++)
                Assert.True(Math.Abs(model.ParameterArray[i] - theta[i]) <= 1e-5 + 1e-6 * Math.Abs(theta[i]),
                    $"step {step}, element {i}: {model.ParameterArray[i]} vs reference {theta[i]}");
        }
        Assert.Equal(5, optimizer.StepCount);
    }

    [Fact]
    public void GradientBufferIsNotModified()
    {
        var model = new TestModel([40]);
        var rng = new Rng(2);
        model.Randomize(rng);
        model.NewGradients(rng);
        float[] gradients = (float[])model.GradientArray.Clone();
        var optimizer = new Sgd(model, 0.1f, momentum: 0.9f, weightDecay: 0.1f, nesterov: true);
        optimizer.Step();
        optimizer.Step();
        Assert.Equal(gradients, model.GradientArray);
    }

    [Fact]
    public void RejectsInvalidArguments()
    {
        var model = new TestModel([4]);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd(model, -0.1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd(model, 0.1f, momentum: -0.5f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd(model, 0.1f, weightDecay: float.NaN));
        Assert.Throws<ArgumentException>(() => new Sgd(model, 0.1f, nesterov: true));
    }

    [Fact]
    public void StepAllocatesNothing()
    {
        var model = new TestModel([33, 17], [17]);
        model.NewGradients(new Rng(1), 1e-3f);
        var optimizer = new Sgd(model, 0.01f, momentum: 0.9f, weightDecay: 1e-4f, nesterov: true);
        Assert.Equal(0, Allocations.Measure(optimizer.Step));
    }
}
