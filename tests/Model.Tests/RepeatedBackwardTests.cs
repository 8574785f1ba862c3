using System;
using System.Collections.Generic;
using System.Linq;
using Xunit;

namespace TransformerGen.Model.Tests;

/// <summary>
/// The activation-gradient buffer is not cleared as a whole between backward passes: the generated code clears each
/// gradient just before its first use. A pass after another must therefore give exactly what a fresh model gives.
/// </summary>
public class RepeatedBackwardTests
{
    public static IEnumerable<object[]> Models() =>
        new[]
        {
            "SinusoidalPre", "SinusoidalPost", "LearnedPre", "LearnedPost", "RotaryPre", "RotaryPost",
            "PaperSeq2Seq", "LearnedSeq2Seq", "RotaryWindowSeq2Seq", "MeanClassifier", "FirstTokenClassifier", "Tagger",
        }.Select(name => new object[] { name });

    private static TransformerModel Create(string name)
    {
        TransformerModel model = name.Contains("Seq2Seq") || name.Contains("Classifier") || name == "Tagger"
            ? ArchitectureTests.Create(name)
            : GradientTests.Create(name);
        TestData.Perturb(model, 4);
        return model;
    }

    private static (int[] Tokens, int[] Targets) Batch(TransformerModel model, ulong seed)
    {
        if (model.Layout.Architecture != Architecture.DecoderOnly) return ArchitectureTests.Batch(model, seed);
        int count = model.Layout.TokensPerStep, vocab = model.Layout.Vocab;
        return (TestData.Tokens(count, vocab, seed), TestData.Tokens(count, vocab, seed + 100));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void A_backward_pass_after_another_gives_the_gradients_of_a_fresh_model(string name)
    {
        TransformerModel reused = Create(name), fresh = Create(name);
        (int[] firstTokens, int[] firstTargets) = Batch(reused, 1);
        (int[] tokens, int[] targets) = Batch(reused, 2);

        reused.Forward(firstTokens, firstTargets);
        reused.Backward();
        reused.Forward(tokens, targets);
        reused.ZeroGrad();
        reused.Backward();

        fresh.Forward(tokens, targets);
        fresh.ZeroGrad();
        fresh.Backward();

        float[] expected = fresh.Gradients.ToArray(), actual = reused.Gradients.ToArray();
        Assert.Contains(expected, g => g != 0f);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                $"{name}: gradient {i} is {actual[i]} after a previous pass, {expected[i]} in a fresh model");
    }
}
