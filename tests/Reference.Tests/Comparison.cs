using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace TransformerGen.Reference.Tests;

/// <summary>The largest relative errors of one forward and backward pass against libtorch.</summary>
/// <param name="Logits">Largest absolute logit difference over the largest absolute libtorch logit.</param>
/// <param name="Loss">|loss difference| / |libtorch's loss|.</param>
/// <param name="Gradient">Over the parameter tensors, the largest 2-norm of the gradient difference over the 2-norm of libtorch's gradient.</param>
/// <param name="WorstGradient">The tensor of <paramref name="Gradient"/>.</param>
/// <param name="Tensors">How many parameter tensors were compared.</param>
internal readonly record struct StepErrors(double Logits, double Loss, double Gradient, string WorstGradient, int Tensors)
{
    public override string ToString() =>
        $"logits {Logits:E2} (of max |logit|), loss {Loss:E2}, gradients {Gradient:E2} (of the tensor's norm; worst {WorstGradient}), {Tensors} tensors";
}

/// <summary>
/// Compares a generated model after <c>Forward</c> and <c>Backward</c> with a libtorch reference after
/// <c>loss.backward()</c>. Errors are relative and computed in double (see <see cref="StepErrors"/>); every parameter of
/// the model must have a gradient in the reference, and none may be near zero (that comparison would prove little).
/// </summary>
internal static class Comparison
{
    public static StepErrors OneStep(string name, TransformerModel model, float loss, Tensor torchLogits, Tensor torchLoss,
        IReadOnlyDictionary<string, Parameter> reference, double logitTolerance, double lossTolerance, double gradientTolerance)
    {
        float[] logits = model.Logits.ToArray(), expectedLogits = Values(torchLogits);
        Assert.True(expectedLogits.All(float.IsFinite), $"{name}: libtorch's logits are not all finite (a query with no visible key?)");
        double logitError = MaxAbsDifference(logits, expectedLogits) / expectedLogits.Max(Math.Abs);
        Assert.True(logitError < logitTolerance, $"{name}: logits differ from libtorch's by {logitError:E2} of the largest logit");
        float expectedLoss = torchLoss.item<float>();
        double lossError = Math.Abs(loss - expectedLoss) / Math.Abs(expectedLoss);
        Assert.True(lossError < lossTolerance, $"{name}: loss {loss} vs libtorch {expectedLoss}, relative error {lossError:E2}");

        double worst = 0;
        string worstName = "";
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            Tensor? grad = reference[t.Name].grad;
            Assert.True(grad is not null, $"{name}: libtorch computed no gradient for {t.Name}: the reference never uses it");
            float[] expected = Values(grad);
            double expectedNorm = Norm(expected.Select(v => (double)v));
            Assert.True(expectedNorm > 1e-3, $"{name}: libtorch's gradient of {t.Name} is near zero ({expectedNorm:E2}); the comparison would prove little");
            double error = Norm(Difference(model.Gradients.Slice(t.Offset, t.Length), expected)) / expectedNorm;
            Assert.True(error < gradientTolerance, $"{name}: gradient of {t.Name} differs from libtorch's by {error:E2} of its norm");
            if (error > worst) (worst, worstName) = (error, t.Name);
        }
        return new StepErrors(logitError, lossError, worst, worstName, model.ParameterTensors.Count);
    }

    public static float[] Values(Tensor t) => t.detach().contiguous().data<float>().ToArray();

    public static double[] Difference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(b.Length, a.Length);
        var d = new double[a.Length];
        for (int i = 0; i < d.Length; i++) d[i] = (double)a[i] - b[i];
        return d;
    }

    public static double MaxAbsDifference(ReadOnlySpan<float> a, ReadOnlySpan<float> b) => Difference(a, b).Max(Math.Abs);

    public static double Norm(IEnumerable<double> v) => Math.Sqrt(v.Sum(x => x * x));
}
