using System;
using System.Collections.Generic;
using System.Linq;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Model.Tests;

/// <summary>
/// The whole generated model's gradients against central finite differences, for every parameter tensor, for
/// each positional encoding and norm placement (and dropout, label smoothing, untied head, ReLU).
/// </summary>
public class GradientTests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> Models() =>
        new[] { "SinusoidalPre", "SinusoidalPost", "LearnedPre", "LearnedPost", "RotaryPre", "RotaryPost", "WithDropout" }
            .Select(name => new object[] { name });

    internal static TransformerModel Create(string name) => name switch
    {
        "SinusoidalPre" => new SinusoidalPre(3),
        "SinusoidalPost" => new SinusoidalPost(3),
        "LearnedPre" => new LearnedPre(3),
        "LearnedPost" => new LearnedPost(3),
        "RotaryPre" => new RotaryPre(3),
        "RotaryPost" => new RotaryPost(3),
        "WithDropout" => new WithDropout(3),
        _ => throw new ArgumentException(name),
    };

    /// <summary>
    /// Step h = 1e-2 on float32: the central difference's truncation error is O(h²) and the loss's rounding
    /// (≈ 3e-7) divided by 2h stays near 1e-5, both far below the 1e-2 relative tolerance per tensor. Up to 16
    /// elements per tensor, spread over the tensor, are checked.
    /// </summary>
    [Theory]
    [MemberData(nameof(Models))]
    public void Gradients_match_finite_differences_for_every_parameter_tensor(string name)
    {
        TransformerModel model = Create(name);
        TestData.Perturb(model, 11);
        int count = model.Layout.TokensPerStep, vocab = model.Layout.Vocab;
        int[] tokens = TestData.Tokens(count, vocab, 5);
        int[] targets = TestData.Tokens(count, vocab, 6);
        targets[3] = -1; // an ignored position must contribute nothing
        var withDropout = model as WithDropout;

        float Loss()
        {
            withDropout?.ReplayDropout(99);
            return model.Forward(tokens, targets);
        }

        Loss();
        model.ZeroGrad();
        model.Backward();
        float[] analytic = model.Gradients.ToArray();

        const float h = 1e-2f;
        double worst = 0;
        string worstName = "";
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            int checks = Math.Min(16, t.Length);
            double diff = 0, normA = 0, normN = 0;
            for (int k = 0; k < checks; k++)
            {
                int i = t.Offset + (int)((long)k * t.Length / checks);
                float saved = model.Parameters[i];
                model.Parameters[i] = saved + h;
                double plus = Loss();
                model.Parameters[i] = saved - h;
                double minus = Loss();
                model.Parameters[i] = saved;
                double numeric = (plus - minus) / (2 * h);
                diff += (numeric - analytic[i]) * (numeric - analytic[i]);
                normA += (double)analytic[i] * analytic[i];
                normN += numeric * numeric;
            }
            double relative = Math.Sqrt(diff) / Math.Max(Math.Max(Math.Sqrt(normA), Math.Sqrt(normN)), 1e-6);
            Assert.True(Math.Sqrt(normA) > 1e-5, $"{t.Name}: the analytic gradient is zero; the check would prove nothing");
            if (relative > worst) (worst, worstName) = (relative, t.Name);
            Assert.True(relative < 1e-2, $"{name}: {t.Name} relative error {relative:E2} (|analytic| {Math.Sqrt(normA):E3}, |numeric| {Math.Sqrt(normN):E3})");
        }
        output.WriteLine($"{name}: {model.ParameterTensors.Count} tensors checked, worst relative error {worst:E2} in {worstName}");
    }
}
