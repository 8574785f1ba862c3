using System;
using System.Collections.Generic;
using System.Globalization;

namespace TransformerGen;

/// <summary>
/// Adam with decoupled weight decay, with exactly the semantics of PyTorch's <c>torch.optim.AdamW</c>
/// (non-AMSGrad, non-maximizing, no foreach/fused differences in the order of operations).
/// </summary>
/// <remarks>
/// <para>
/// Algorithm (Loshchilov and Hutter, "Decoupled Weight Decay Regularization", ICLR 2019; as written in
/// the PyTorch docs for <c>torch.optim.AdamW</c> and in <c>torch/optim/adamw.py</c>'s single-tensor path),
/// for step t = 1, 2, …, with learning rate γ, weight decay λ:
/// </para>
/// <code>
/// θ ← θ · (1 − γλ)                          // decoupled decay, before the Adam update
/// m ← β1·m + (1 − β1)·g
/// v ← β2·v + (1 − β2)·g²
/// θ ← θ − (γ / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
/// </code>
/// <para>
/// The denominator is computed as PyTorch computes it, <c>(sqrt(v) / sqrt(bias_correction2)) + eps</c>,
/// which differs from <c>sqrt(v̂) + eps</c> only in rounding. Scalars (bias corrections, step size, decay
/// factor) are computed in double and rounded to float once, as PyTorch does with Python floats.
/// </para>
/// <para>
/// Moments are two float arrays with the layout of the parameter buffer. The update is one SIMD loop over
/// the buffer; with <c>decayVectors: false</c> the buffer is cut once, at construction, into a few runs
/// that alternate between "decayed" and "not decayed", and the loop runs over each run.
/// </para>
/// </remarks>
public sealed class AdamW : ICheckpointableOptimizer
{
    private readonly ITrainableParameters _model;
    // Aligned like the model's buffers, so the update's vector loads of all four buffers start on cache lines.
    private readonly AlignedBuffer _firstMoment;
    private readonly AlignedBuffer _secondMoment;
    private readonly DecayRun[] _runs;
    private float _learningRate;

    /// <summary>Creates the optimizer and its zeroed moment buffers.</summary>
    /// <param name="model">The model whose <see cref="ITrainableParameters.Parameters"/> this optimizer updates.</param>
    /// <param name="learningRate">γ, at least 0.</param>
    /// <param name="beta1">β1 in [0, 1): decay rate of the first moment.</param>
    /// <param name="beta2">β2 in [0, 1): decay rate of the second moment.</param>
    /// <param name="eps">ε, at least 0, added to the denominator.</param>
    /// <param name="weightDecay">λ, at least 0 (PyTorch's default for AdamW is 0.01).</param>
    /// <param name="decayVectors">
    /// When false, tensors with one dimension (biases, LayerNorm gains and shifts; see
    /// <see cref="ParameterTensor.IsVector"/>) get no weight decay, as GPT-2-style training recipes do.
    /// Elements of the buffer that belong to no tensor are decayed.
    /// </param>
    public AdamW(ITrainableParameters model, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float eps = 1e-8f, float weightDecay = 0.01f, bool decayVectors = true)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        LearningRate = learningRate;
        if (!(beta1 >= 0f && beta1 < 1f)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "beta1 must be in [0, 1)");
        if (!(beta2 >= 0f && beta2 < 1f)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "beta2 must be in [0, 1)");
        TrainingArguments.RequireFiniteNonNegative(eps, nameof(eps), "eps");
        TrainingArguments.RequireFiniteNonNegative(weightDecay, nameof(weightDecay), "weightDecay");
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = eps;
        WeightDecay = weightDecay;
        DecayVectors = decayVectors;

        int length = TrainingArguments.ParameterLength(model);
        // Each update reads m and v before it writes them.
        _firstMoment = AlignedBuffer.WrittenOnce(length);
        _secondMoment = AlignedBuffer.WrittenOnce(length);
        _runs = DecayRun.Build(model.ParameterTensors, length, decayVectors);
    }

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

    /// <summary>β1, the decay rate of the first moment.</summary>
    public float Beta1 { get; }

    /// <summary>β2, the decay rate of the second moment.</summary>
    public float Beta2 { get; }

    /// <summary>ε, added to the denominator.</summary>
    public float Epsilon { get; }

    /// <summary>λ, the decoupled weight decay.</summary>
    public float WeightDecay { get; }

    /// <summary>Whether one-dimensional tensors are decayed.</summary>
    public bool DecayVectors { get; }

    /// <inheritdoc />
    public void Step()
    {
        using CallScope scope = TransformerModel.Enter(_model, "AdamW.Step");
        Span<float> parameters = _model.Parameters;
        ReadOnlySpan<float> gradients = _model.Gradients;
        Span<float> firstMoment = _firstMoment.Span, secondMoment = _secondMoment.Span;
        if (parameters.Length != firstMoment.Length || gradients.Length != firstMoment.Length)
            throw new InvalidOperationException($"the model's buffers changed size: {parameters.Length} parameters and {gradients.Length} gradients, but the optimizer was built for {firstMoment.Length}");

        long t = ++StepCount;
        double biasCorrection1 = 1.0 - Math.Pow(Beta1, t);
        double biasCorrection2 = 1.0 - Math.Pow(Beta2, t);
        var coefficients = new AdamWKernel.Coefficients(
            DecayFactor: (float)(1.0 - (double)_learningRate * WeightDecay),
            Beta1: Beta1,
            OneMinusBeta1: (float)(1.0 - Beta1),
            Beta2: Beta2,
            OneMinusBeta2: (float)(1.0 - Beta2),
            StepSize: (float)(_learningRate / biasCorrection1),
            SqrtBiasCorrection2: (float)Math.Sqrt(biasCorrection2),
            Epsilon: Epsilon);
        var noDecay = coefficients with { DecayFactor = 1f };

        foreach (DecayRun run in _runs)
        {
            AdamWKernel.UpdateSplit(
                parameters.Slice(run.Start, run.Length),
                gradients.Slice(run.Start, run.Length),
                firstMoment.Slice(run.Start, run.Length),
                secondMoment.Slice(run.Start, run.Length),
                run.Decay ? coefficients : noDecay);
        }
    }

    /// <summary>The first moment m, with the parameter buffer's layout (PyTorch's <c>exp_avg</c>).</summary>
    public Span<float> FirstMoment => _firstMoment.Span;

    /// <summary>The second moment v, with the parameter buffer's layout (PyTorch's <c>exp_avg_sq</c>).</summary>
    public Span<float> SecondMoment => _secondMoment.Span;

    /// <inheritdoc />
    string ICheckpointableOptimizer.Algorithm => "AdamW";

    /// <inheritdoc />
    IReadOnlyList<KeyValuePair<string, string>> ICheckpointableOptimizer.Settings =>
    [
        new("beta1", Beta1.ToString(CultureInfo.InvariantCulture)),
        new("beta2", Beta2.ToString(CultureInfo.InvariantCulture)),
        new("eps", Epsilon.ToString(CultureInfo.InvariantCulture)),
        new("weight_decay", WeightDecay.ToString(CultureInfo.InvariantCulture)),
        new("decay_vectors", DecayVectors ? "true" : "false"),
    ];

    /// <inheritdoc />
    IReadOnlyList<string> ICheckpointableOptimizer.StateNames => ["exp_avg", "exp_avg_sq"];

    /// <inheritdoc />
    Span<float> ICheckpointableOptimizer.State(int index) => index switch
    {
        0 => _firstMoment.Span,
        1 => _secondMoment.Span,
        _ => throw new ArgumentOutOfRangeException(nameof(index), index, "AdamW keeps two buffers: exp_avg (0) and exp_avg_sq (1)"),
    };

    /// <inheritdoc />
    void ICheckpointableOptimizer.RestoreStepCount(long stepCount)
    {
        if (stepCount < 0) throw new ArgumentOutOfRangeException(nameof(stepCount), stepCount, "a step count is at least 0");
        StepCount = stepCount;
    }

    /// <summary>Zeroes both moments and <see cref="StepCount"/>, as if the optimizer were new.</summary>
    public void Reset()
    {
        _firstMoment.Span.Clear();
        _secondMoment.Span.Clear();
        StepCount = 0;
    }

    /// <summary>A run of the buffer that is either wholly decayed or wholly not.</summary>
    private readonly record struct DecayRun(int Start, int Length, bool Decay)
    {
        /// <summary>Cuts [0, length) into maximal runs of equal decay.</summary>
        public static DecayRun[] Build(IReadOnlyList<ParameterTensor> tensors, int length, bool decayVectors)
        {
            if (tensors is null) throw new ArgumentException("the model has no parameter tensor table", "model");
            foreach (ParameterTensor tensor in tensors)
            {
                if ((long)tensor.Offset + tensor.Length > length)
                    throw new ArgumentException($"tensor '{tensor.Name}' {tensor.ShapeText} at offset {tensor.Offset} ends past the parameter buffer ({length} floats)", "model");
            }
            if (length == 0) return [];
            if (decayVectors) return [new DecayRun(0, length, true)];

            var decay = new bool[length];
            Array.Fill(decay, true);
            foreach (ParameterTensor tensor in tensors)
                if (tensor.IsVector) Array.Fill(decay, false, tensor.Offset, tensor.Length);

            var runs = new List<DecayRun>();
            int start = 0;
            for (int i = 1; i <= length; i++)
            {
                if (i == length || decay[i] != decay[start])
                {
                    runs.Add(new DecayRun(start, i - start, decay[start]));
                    start = i;
                }
            }
            return runs.ToArray();
        }
    }
}
