using System;
using Xunit;

namespace TransformerGen.Model.Tests;

/// <summary>A step whose loss or gradients are not finite never reaches the optimizer: refused by default, or skipped and counted.</summary>
public class DivergenceGuardTests
{
    private static (Medium Model, AdamW Optimizer, int[] Tokens, int[] Targets) Trained()
    {
        var model = new Medium(3);
        var optimizer = new AdamW(model, learningRate: 1e-2f);
        int[] tokens = TestData.Tokens(Medium.TokensPerStep, Medium.Vocab, 1);
        int[] targets = TestData.Tokens(Medium.TokensPerStep, Medium.Vocab, 2);
        for (int i = 0; i < 3; i++) model.TrainStep(tokens, targets, optimizer, maxGradientNorm: 1f);
        return (model, optimizer, tokens, targets);
    }

    private static ParameterTensor Tensor(TransformerModel model, string name)
    {
        foreach (ParameterTensor t in model.ParameterTensors) if (t.Name == name) return t;
        throw new ArgumentException(name);
    }

    private static int[] Bits(ReadOnlySpan<float> values)
    {
        var bits = new int[values.Length];
        for (int i = 0; i < values.Length; i++) bits[i] = BitConverter.SingleToInt32Bits(values[i]);
        return bits;
    }

    [Fact]
    public void A_non_finite_loss_refuses_the_step_names_the_first_tensor_and_changes_nothing()
    {
        (Medium model, AdamW optimizer, int[] tokens, int[] targets) = Trained();
        ParameterTensor poisoned = Tensor(model, "decoder.layers.1.linear2.weight");
        model.Parameters[poisoned.Offset + 5] = float.NaN;
        int[] parameters = Bits(model.Parameters), m = Bits(optimizer.FirstMoment), v = Bits(optimizer.SecondMoment);

        var e = Assert.Throws<NonFiniteStepException>(() => model.TrainStep(tokens, targets, optimizer, maxGradientNorm: 1f));
        Assert.True(float.IsNaN(e.Loss));
        Assert.NotNull(e.TensorName);
        Assert.Contains($"the gradient of '{e.TensorName}' ", e.Message);
        Assert.Contains("the training step after optimizer step 3 was refused: the loss is NaN", e.Message);

        Assert.Equal(parameters, Bits(model.Parameters));
        Assert.Equal(m, Bits(optimizer.FirstMoment));
        Assert.Equal(v, Bits(optimizer.SecondMoment));
        Assert.Equal(3, optimizer.StepCount);
        Assert.Equal(0, model.SkippedSteps);
    }

    [Fact]
    public void With_Skip_the_step_is_counted_and_training_goes_on_once_the_cause_is_gone()
    {
        (Medium model, AdamW optimizer, int[] tokens, int[] targets) = Trained();
        model.NonFiniteSteps = NonFiniteStepPolicy.Skip;
        ParameterTensor norm = Tensor(model, "norm_f.weight");
        float kept = model.Parameters[norm.Offset];
        model.Parameters[norm.Offset] = float.PositiveInfinity;
        int[] parameters = Bits(model.Parameters);

        float loss = model.TrainStep(tokens, targets, optimizer, maxGradientNorm: 0f);
        Assert.False(float.IsFinite(loss));
        Assert.Equal(1, model.SkippedSteps);
        Assert.Equal(3, optimizer.StepCount);
        Assert.Equal(parameters, Bits(model.Parameters));

        model.Parameters[norm.Offset] = kept;
        Assert.True(float.IsFinite(model.TrainStep(tokens, targets, optimizer, maxGradientNorm: 1f)));
        Assert.Equal(4, optimizer.StepCount);
        Assert.Equal(1, model.SkippedSteps);
    }

    [Fact]
    public void With_a_finite_loss_the_first_non_finite_gradient_tensor_is_named()
    {
        var model = new Medium(1);
        var gradients = new float[model.Parameters.Length];
        ParameterTensor second = model.ParameterTensors[2], third = model.ParameterTensors[3];
        gradients[third.Offset + 1] = float.NaN;
        gradients[second.Offset + 7] = float.NegativeInfinity;
        NonFiniteStepException e = NonFiniteGradients.Describe("Medium", 2.5f, model.ParameterTensors, gradients, 41);
        Assert.Equal(second.Name, e.TensorName);
        Assert.Equal($"Medium: the training step after optimizer step 41 was refused: the loss is 2.5 and the gradient of '{second.Name}' {second.ShapeText} is not finite (-Infinity at element 7; the first such tensor). " +
            "The parameters and the optimizer's state are unchanged; lower the learning rate, clip gradients, or set NonFiniteSteps = Skip to skip such steps and count them.", e.Message);

        Assert.Null(NonFiniteGradients.First(model.ParameterTensors, new float[gradients.Length]));
    }

    [Fact]
    public void Clipping_through_the_guard_gives_the_bits_of_ClipByGlobalNorm()
    {
        // The guard measures the norm once and clips with it: the same bits as the public clipping call.
        var model = new Medium(5);
        int[] tokens = TestData.Tokens(Medium.TokensPerStep, Medium.Vocab, 1);
        int[] targets = TestData.Tokens(Medium.TokensPerStep, Medium.Vocab, 2);
        var reference = new Medium(5);
        var sgd = new Sgd(model, learningRate: 0.5f);
        var referenceSgd = new Sgd(reference, learningRate: 0.5f);
        model.TrainStep(tokens, targets, sgd, maxGradientNorm: 0.01f);

        reference.Forward(tokens, targets);
        reference.ZeroGrad();
        reference.Backward();
        float norm = GradientClipping.ClipByGlobalNorm(reference.Gradients, 0.01f);
        Assert.True(norm > 0.01f);
        referenceSgd.Step();
        Assert.Equal(Bits(reference.Parameters), Bits(model.Parameters));
    }
}
