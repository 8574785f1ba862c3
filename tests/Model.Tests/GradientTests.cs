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

    internal static LanguageModel Create(string name) => name switch
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

    /// <summary>See <see cref="FiniteDifferences"/> for the steps and the tolerance.</summary>
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
        (double worst, string worstName, int kinks) = FiniteDifferences.Check(model, analytic, Loss);
        output.WriteLine($"{name}: {model.ParameterTensors.Count} tensors, worst relative error {worst:E2} in {worstName}, {kinks} elements skipped at ReLU kinks");
    }
}
