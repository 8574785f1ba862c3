using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TransformerGen.Model.Tests;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static TransformerGen.Reference.Tests.Comparison;

namespace TransformerGen.Reference.Tests;

/// <summary>
/// Each generated model against the same model in libtorch (<see cref="TorchTransformer"/>) with the same weights:
/// logits, loss, the gradient of every parameter, and AdamW training steps against <c>torch.optim.AdamW</c>.
/// </summary>
/// <remarks>
/// Errors are relative, in double: logits as the largest absolute difference over the largest absolute logit
/// (softmax and the loss care about differences on the scale of the largest logit); the loss as |difference| over
/// |loss|; a gradient (and a parameter update) per tensor as the 2-norm of the difference over the 2-norm of
/// libtorch's tensor. Both sides compute in float32 with different orders of summation, so each value carries a
/// few float32 roundings (≈ 6e-8 each) amplified by the network: the bounds leave room for that and no more.
/// </remarks>
public sealed class TorchReferenceTests(ITestOutputHelper output)
{
    // Each bound is 2.5 to 10 times the largest error seen here, with our AVX-512 and with our portable kernels:
    // room for another CPU's SIMD path or libtorch's kernels summing in another order, none for a difference in
    // the math. Tried in the reference: the tanh-approximated GELU moves the logits by 3e-4 of the largest, and
    // scaling one coordinate of each rotary pair by 1 + 1e-5 moves them by 4e-5.

    /// <summary>Logits, relative to the largest absolute logit (seen: at most 1.2e-6).</summary>
    private const double LogitTolerance = 1e-5;

    /// <summary>The loss, relative to the loss (seen: at most 2.4e-7, including every AdamW step).</summary>
    private const double LossTolerance = 2e-6;

    /// <summary>Each parameter's gradient, relative to the 2-norm of libtorch's gradient of that tensor (seen: at most 1.5e-5).</summary>
    private const double GradientTolerance = 1e-4;

    /// <summary>Each tensor's change under AdamW, relative to the 2-norm of libtorch's change (seen: at most 3.9e-5).</summary>
    private const double UpdateTolerance = 1e-4;

    public static TheoryData<string> AllModels => new(Factories.Keys);

    /// <summary>The models libtorch's own TransformerEncoderLayer can run: post-LN, positions added to the input.</summary>
    public static TheoryData<string> PostLnAbsolutePositionModels => new("SinusoidalPostRelu", "LearnedPostGelu");

    private static readonly Dictionary<string, Func<TransformerModel>> Factories = new()
    {
        ["SinusoidalPreGelu"] = () => new SinusoidalPreGelu(7),
        ["SinusoidalPostRelu"] = () => new SinusoidalPostRelu(7),
        ["LearnedPreRelu"] = () => new LearnedPreRelu(7),
        ["LearnedPostGelu"] = () => new LearnedPostGelu(7),
        ["RotaryPreGelu"] = () => new RotaryPreGelu(7),
        ["RotaryPostRelu"] = () => new RotaryPostRelu(7),
        ["TiledRotaryPreGelu"] = () => new TiledRotaryPreGelu(7),
        ["TiledLearnedPostGelu"] = () => new TiledLearnedPostGelu(7),
    };

    [Theory]
    [MemberData(nameof(AllModels))]
    public void Logits_loss_and_every_gradient_match_libtorch(string name) => CompareOneStep(name, encoderLayers: false);

    /// <summary>
    /// The same comparison with each layer run by libtorch's <c>nn.TransformerEncoderLayer</c> and its parameters
    /// filled by name: the layer's parameter names and its math are those of PyTorch's module, as the README says.
    /// </summary>
    [Theory]
    [MemberData(nameof(PostLnAbsolutePositionModels))]
    public void Layers_are_nn_TransformerEncoderLayer_by_name_and_math(string name) => CompareOneStep(name, encoderLayers: true);

    /// <summary>
    /// Five training steps (forward, zeroed gradients, backward, AdamW step) on five different batches, against the
    /// same steps with <c>torch.optim.AdamW</c> and the same hyperparameters: the loss of every step, each tensor's
    /// update after the first step, and each tensor's total change after the fifth.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Updates are compared rather than parameters: the parameters are mostly their initial values, which both sides
    /// share exactly, so comparing them would hide an error in the update by a factor of |θ| / |Δθ|.
    /// </para>
    /// <para>
    /// ε is 1e-3, not the usual 1e-8, for two reasons. Some gradients are zero in exact arithmetic: softmax ignores a
    /// constant added to a row of scores, so without rotary positions the key part of <c>in_proj_bias</c> has no
    /// gradient, and each side computes rounding noise there (seen: 1e-10 to 7e-8, of either sign). Adam divides a
    /// gradient by its own size, so with ε = 1e-8 its first step moves each such element by ±lr by the sign of that
    /// noise, independently on each side (seen: updates of in_proj_bias 10–50% apart; single elements of other
    /// tensors with gradients near 1e-9 likewise, e.g. one out_proj.weight update 7e-3 apart). With ε = 1e-3 such
    /// noise moves an element by at most lr·7e-8/ε < 1e-6. And an ε near the size of the smaller gradients (median |g| ≈ 2e-2, one in ten below
    /// 3e-3) makes the result depend on where ε enters the denominator (√v/√(1−β2ᵗ) + ε, PyTorch's), which an ε of
    /// 1e-8 would not check.
    /// </para>
    /// </remarks>
    [Theory]
    [MemberData(nameof(AllModels))]
    public void AdamW_steps_match_torch_optim_AdamW(string name)
    {
        const float learningRate = 1e-2f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-3f, weightDecay = 0.1f; // ε: see the remarks
        const int steps = 5;
        using DisposeScope scope = NewDisposeScope();
        TransformerModel model = CreatePerturbed(name);
        var reference = new TorchTransformer(model);
        float[] initial = model.Parameters.ToArray();
        var optimizer = new AdamW(model, learningRate, beta1, beta2, eps, weightDecay);
        using optim.Optimizer torchOptimizer = optim.AdamW(reference.Parameters.Values, learningRate, beta1, beta2, eps, weightDecay);

        double worstLoss = 0, worstFirstUpdate = 0, worstChange = 0;
        string worstFirstUpdateName = "", worstChangeName = "";
        for (int step = 1; step <= steps; step++)
        {
            (int[] tokens, int[] targets) = Batch(model, seed: (ulong)(100 + step));
            float loss = model.TrainStep(tokens, targets, optimizer);

            torchOptimizer.zero_grad();
            (_, Tensor torchLoss) = reference.Forward(tokens, targets);
            torchLoss.backward();
            torchOptimizer.step();

            double lossError = Math.Abs(loss - torchLoss.item<float>()) / Math.Abs(torchLoss.item<float>());
            worstLoss = Math.Max(worstLoss, lossError);
            Assert.True(lossError < LossTolerance, $"{name} step {step}: loss {loss} vs libtorch {torchLoss.item<float>()}, relative error {lossError:E2}");

            if (step is 1 or steps)
            {
                foreach (ParameterTensor t in model.ParameterTensors)
                {
                    // Δθ since the start, on each side.
                    double[] ours = Difference(model.Parameters.Slice(t.Offset, t.Length), initial.AsSpan(t.Offset, t.Length));
                    double[] theirs = Difference(Values(reference.Parameters[t.Name]), initial.AsSpan(t.Offset, t.Length));
                    double error = Norm(ours.Zip(theirs, (a, b) => a - b)) / Norm(theirs);
                    Assert.True(error < UpdateTolerance, $"{name} after step {step}: {t.Name} changed by {Norm(ours):E4}, in libtorch by {Norm(theirs):E4}; relative error {error:E2}");
                    if (step == 1 && error > worstFirstUpdate) (worstFirstUpdate, worstFirstUpdateName) = (error, t.Name);
                    if (step == steps && error > worstChange) (worstChange, worstChangeName) = (error, t.Name);
                }
            }
        }
        output.WriteLine($"{name}: AdamW, {steps} steps: loss {worstLoss:E2} (worst step); first update {worstFirstUpdate:E2} ({worstFirstUpdateName}); change after {steps} steps {worstChange:E2} ({worstChangeName})");
    }

    private void CompareOneStep(string name, bool encoderLayers)
    {
        using DisposeScope scope = NewDisposeScope();
        TransformerModel model = CreatePerturbed(name);
        (int[] tokens, int[] targets) = Batch(model, seed: 5);
        float loss = model.Forward(tokens, targets);
        model.ZeroGrad();
        model.Backward();

        var reference = new TorchTransformer(model, encoderLayers);
        (Tensor torchLogits, Tensor torchLoss) = reference.Forward(tokens, targets);
        torchLoss.backward();

        StepErrors errors = Comparison.OneStep(name, model, loss, torchLogits, torchLoss, reference.Parameters, LogitTolerance, LossTolerance, GradientTolerance);
        output.WriteLine($"{name}{(encoderLayers ? " (nn.TransformerEncoderLayer)" : "")}: {errors}");
    }

    /// <summary>A model with larger weights than its initialization (TestData.Perturb), so every value matters.</summary>
    private static TransformerModel CreatePerturbed(string name)
    {
        TransformerModel model = Factories[name]();
        TestData.Perturb(model, 11);
        return model;
    }

    /// <summary>Random tokens and targets, two of the targets ignored (−1).</summary>
    private static (int[] Tokens, int[] Targets) Batch(TransformerModel model, ulong seed)
    {
        int count = model.Layout.TokensPerStep, vocab = model.Layout.Vocab;
        int[] tokens = TestData.Tokens(count, vocab, seed);
        int[] targets = TestData.Tokens(count, vocab, seed + 1000);
        targets[1] = -1;
        targets[count - 3] = -1;
        return (tokens, targets);
    }
}
