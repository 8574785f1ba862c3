using System;
using System.Collections.Generic;
using System.Globalization;

namespace TransformerGen;

/// <summary>
/// Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay, with the
/// semantics of PyTorch's <c>torch.optim.SGD</c> (dampening 0, not maximizing).
/// </summary>
/// <remarks>
/// <para>Per element, as in the PyTorch docs for <c>torch.optim.SGD</c> and <c>torch/optim/sgd.py</c>, with
/// learning rate γ, momentum μ and weight decay λ:</para>
/// <code>
/// d ← g + λ·θ                                  // only when λ ≠ 0 (coupled decay: added to the gradient)
/// b ← d on the first step, else b ← μ·b + d    // only when μ ≠ 0
/// d ← d + μ·b if Nesterov, else d ← b          // only when μ ≠ 0
/// θ ← θ − γ·d
/// </code>
/// <para>The gradient buffer is read, never written. The momentum buffer exists only when μ ≠ 0.</para>
/// </remarks>
public sealed class Sgd : ICheckpointableOptimizer
{
    private readonly ITrainableParameters _model;
    private readonly float[] _momentumBuffer;
    private float _learningRate;

    /// <summary>Creates the optimizer (and, when <paramref name="momentum"/> ≠ 0, its zeroed momentum buffer).</summary>
    /// <param name="model">The model whose <see cref="ITrainableParameters.Parameters"/> this optimizer updates.</param>
    /// <param name="learningRate">γ, at least 0.</param>
    /// <param name="momentum">μ, at least 0; 0 turns momentum off.</param>
    /// <param name="weightDecay">λ, at least 0: L2 decay added to the gradient.</param>
    /// <param name="nesterov">Nesterov momentum; needs <paramref name="momentum"/> &gt; 0, as in PyTorch.</param>
    public Sgd(ITrainableParameters model, float learningRate, float momentum = 0f, float weightDecay = 0f, bool nesterov = false)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        LearningRate = learningRate;
        TrainingArguments.RequireFiniteNonNegative(momentum, nameof(momentum), "momentum");
        TrainingArguments.RequireFiniteNonNegative(weightDecay, nameof(weightDecay), "weightDecay");
        if (nesterov && momentum == 0f) throw new ArgumentException("Nesterov momentum requires a momentum above 0", nameof(nesterov));
        Momentum = momentum;
        WeightDecay = weightDecay;
        Nesterov = nesterov;

        int length = TrainingArguments.ParameterLength(model);
        _momentumBuffer = momentum != 0f ? new float[length] : [];
        ParameterCount = length;
    }

    private int ParameterCount { get; }

    /// <inheritdoc />
    public float LearningRate
    {
        get => _learningRate;
        set
        {
            TrainingArguments.RequireFiniteNonNegative(value, nameof(value), "the learning rate");
            _learningRate = value;
        }
    }

    /// <inheritdoc />
    public long StepCount { get; private set; }

    /// <summary>μ, the momentum factor (0 = plain SGD).</summary>
    public float Momentum { get; }

    /// <summary>λ, the L2 weight decay added to the gradient.</summary>
    public float WeightDecay { get; }

    /// <summary>Whether Nesterov momentum is used.</summary>
    public bool Nesterov { get; }

    /// <inheritdoc />
    public void Step()
    {
        using CallScope scope = TransformerModel.Enter(_model, "Sgd.Step");
        Span<float> parameters = _model.Parameters;
        ReadOnlySpan<float> gradients = _model.Gradients;
        if (parameters.Length != ParameterCount || gradients.Length != ParameterCount)
            throw new InvalidOperationException($"the model's buffers changed size: {parameters.Length} parameters and {gradients.Length} gradients, but the optimizer was built for {ParameterCount}");

        bool firstStep = StepCount == 0;
        StepCount++;
        SgdKernel.Update(parameters, gradients, _momentumBuffer,
            new SgdKernel.Settings(_learningRate, WeightDecay, Momentum, Nesterov, firstStep));
    }

    /// <summary>The momentum buffer b, with the parameter buffer's layout (PyTorch's <c>momentum_buffer</c>); empty when μ = 0.</summary>
    public Span<float> MomentumBuffer => _momentumBuffer;

    /// <inheritdoc />
    string ICheckpointableOptimizer.Algorithm => "SGD";

    /// <inheritdoc />
    IReadOnlyList<KeyValuePair<string, string>> ICheckpointableOptimizer.Settings =>
    [
        new("momentum", Momentum.ToString(CultureInfo.InvariantCulture)),
        new("weight_decay", WeightDecay.ToString(CultureInfo.InvariantCulture)),
        new("nesterov", Nesterov ? "true" : "false"),
    ];

    /// <inheritdoc />
    IReadOnlyList<string> ICheckpointableOptimizer.StateNames => Momentum != 0f ? ["momentum_buffer"] : [];

    /// <inheritdoc />
    Span<float> ICheckpointableOptimizer.State(int index) => index == 0 && Momentum != 0f
        ? _momentumBuffer
        : throw new ArgumentOutOfRangeException(nameof(index), index, Momentum != 0f ? "SGD keeps one buffer: momentum_buffer (0)" : "SGD without momentum keeps no buffer");

    /// <inheritdoc />
    void ICheckpointableOptimizer.RestoreStepCount(long stepCount)
    {
        if (stepCount < 0) throw new ArgumentOutOfRangeException(nameof(stepCount), stepCount, "a step count is at least 0");
        StepCount = stepCount;
    }

    /// <summary>Zeroes the momentum buffer and <see cref="StepCount"/>, as if the optimizer were new.</summary>
    public void Reset()
    {
        Array.Clear(_momentumBuffer);
        StepCount = 0;
    }
}
