using System;
using Xunit;

namespace TransformerGen.Tests.Training;

public sealed class AdamWTests
{
    /// <summary>
    /// PyTorch's AdamW (torch/optim/adamw.py, single-tensor path), written independently in double:
    /// θ ← θ(1 − γλ); m ← β1 m + (1 − β1) g; v ← β2 v + (1 − β2) g²; θ ← θ − γ/(1 − β1ᵗ) · m / (√v/√(1 − β2ᵗ) + ε).
    /// </summary>
    private sealed class ReferenceAdamW(int length, double lr, double beta1, double beta2, double eps, double weightDecay, bool[] decayed)
    {
        private readonly double[] _m = new double[length], _v = new double[length];
        private int _t;

        public void Step(double[] theta, double[] g)
        {
            _t++;
            double bc1 = 1 - Math.Pow(beta1, _t), bc2 = 1 - Math.Pow(beta2, _t);
            for (int i = 0; i < theta.Length; i++)
            {
                if (decayed[i]) theta[i] *= 1 - lr * weightDecay;
                _m[i] = beta1 * _m[i] + (1 - beta1) * g[i];
                _v[i] = beta2 * _v[i] + (1 - beta2) * g[i] * g[i];
                double denominator = Math.Sqrt(_v[i]) / Math.Sqrt(bc2) + eps;
                theta[i] -= lr / bc1 * _m[i] / denominator;
            }
        }
    }

    public static TheoryData<int[][], float, bool> Cases => new()
    {
        { [[5, 3], [22]], 0.1f, true },
        { [[5, 3], [22]], 0f, true },
        { [[5, 3], [22]], 0.1f, false },
        { [[7], [9, 13], [3], [31, 33]], 0.05f, false }, // 1159 floats: every SIMD width and a tail, runs split by vectors
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesDoublePrecisionPyTorchAlgorithmOverFiveSteps(int[][] shapes, float weightDecay, bool decayVectors)
    {
        var model = new TestModel(shapes);
        var rng = new Rng(7);
        model.Randomize(rng);
        double[] theta = Array.ConvertAll(model.ParameterArray, x => (double)x);
        var decayed = new bool[theta.Length];
        foreach (ParameterTensor tensor in model.Tensors)
            Array.Fill(decayed, decayVectors || !tensor.IsVector, tensor.Offset, tensor.Length);

        const float lr = 0.01f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
        var optimizer = new AdamW(model, lr, beta1, beta2, eps, weightDecay, decayVectors);
        var reference = new ReferenceAdamW(theta.Length, lr, beta1, beta2, eps, weightDecay, decayed);

        for (int step = 1; step <= 5; step++)
        {
            double[] g = model.NewGradients(rng, scale: step); // changing scale makes the moments matter
            optimizer.Step();
            reference.Step(theta, g);
            Assert.Equal(step, optimizer.StepCount);
            for (int i = 0; i < theta.Length; i++)
                Assert.True(Math.Abs(model.ParameterArray[i] - theta[i]) <= 2e-6 + 1e-6 * Math.Abs(theta[i]),
                    $"step {step}, element {i}: {model.ParameterArray[i]} vs reference {theta[i]}");
        }
    }

    [Fact]
    public void DecayVectorsFalseLeavesVectorsUndecayed()
    {
        // With zero gradients Adam's update is 0, so only decay moves the parameters.
        var model = new TestModel([2, 3], [4]);
        Array.Fill(model.ParameterArray, 1f);
        var optimizer = new AdamW(model, learningRate: 0.1f, weightDecay: 0.5f, decayVectors: false);
        optimizer.Step();
        for (int i = 0; i < 6; i++) Assert.Equal(1f - 0.1f * 0.5f, model.ParameterArray[i], 6);
        for (int i = 6; i < 10; i++) Assert.Equal(1f, model.ParameterArray[i]);
    }

    [Fact]
    public void FirstStepMovesEachParameterByTheLearningRateAgainstTheGradientSign()
    {
        // Step 1: m̂ = g and v̂ = g², so the Adam update is γ·g/(|g| + ε) ≈ γ·sign(g); decay first scales θ by 1 − γλ.
        var model = new TestModel([4]);
        model.ParameterArray.AsSpan().Fill(1f);
        float[] g = [0.5f, -2f, 1e-3f, -7f];
        g.CopyTo(model.GradientArray, 0);

        var noDecay = new AdamW(model, learningRate: 0.1f, weightDecay: 0f);
        noDecay.Step();
        // g = 1e-3 shows ε: γ·g/(g + ε) = 0.1 · 1e-3 / (1e-3 + 1e-8) = 0.099999.
        Assert.Equal([0.9f, 1.1f, 0.900001f, 1.1f], model.ParameterArray, (a, b) => Math.Abs(a - b) < 1e-6f);

        model.ParameterArray.AsSpan().Fill(1f);
        var withDecay = new AdamW(model, learningRate: 0.1f, weightDecay: 0.01f);
        withDecay.Step();
        Assert.Equal([0.899f, 1.099f, 0.899001f, 1.099f], model.ParameterArray, (a, b) => Math.Abs(a - b) < 1e-6f);
    }

    [Fact]
    public void ResetStartsOverAsANewOptimizer()
    {
        var model = new TestModel([3, 5]);
        var rng = new Rng(3);
        model.Randomize(rng);
        model.NewGradients(rng);
        float[] start = (float[])model.ParameterArray.Clone();

        var optimizer = new AdamW(model);
        optimizer.Step();
        optimizer.Step();
        float[] afterTwo = (float[])model.ParameterArray.Clone();

        start.CopyTo(model.ParameterArray, 0);
        optimizer.Reset();
        Assert.Equal(0, optimizer.StepCount);
        optimizer.Step();
        optimizer.Step();
        Assert.Equal(afterTwo, model.ParameterArray);
    }

    [Fact]
    public void LearningRateChangesTakeEffectOnTheNextStep()
    {
        var model = new TestModel([8]);
        model.GradientArray.AsSpan().Fill(1f);
        var optimizer = new AdamW(model, learningRate: 0.5f, weightDecay: 0f) { LearningRate = 0.25f };
        optimizer.Step();
        Assert.Equal(-0.25f, model.ParameterArray[0], 5);
    }

    [Fact]
    public void RejectsInvalidArguments()
    {
        var model = new TestModel([4]);
        Assert.Throws<ArgumentNullException>(() => new AdamW(null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW(model, learningRate: -1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW(model, learningRate: float.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW(model, beta1: 1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW(model, beta2: -0.1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW(model, eps: -1e-8f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW(model, weightDecay: -0.1f));
        var optimizer = new AdamW(model);
        Assert.Throws<ArgumentOutOfRangeException>(() => optimizer.LearningRate = float.PositiveInfinity);
    }

    [Fact]
    public void StepAllocatesNothing()
    {
        var model = new TestModel([33, 17], [17], [1001]);
        model.NewGradients(new Rng(1), 1e-3f);
        var optimizer = new AdamW(model, decayVectors: false);
        Assert.Equal(0, Allocations.Measure(optimizer.Step));
    }
}
