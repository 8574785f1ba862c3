using System;

namespace TransformerGen;

/// <summary>What a training step does when its loss or a gradient is not finite (see <see cref="TransformerModel.NonFiniteSteps"/>).</summary>
public enum NonFiniteStepPolicy
{
    /// <summary>Refuse the step with a <see cref="NonFiniteStepException"/>; the parameters and the optimizer are unchanged.</summary>
    Throw,
    /// <summary>Skip the optimizer's update and count the step in <see cref="TransformerModel.SkippedSteps"/>.</summary>
    Skip,
}

/// <summary>
/// A training step whose loss or gradients were not finite (NaN or infinite) was refused before the optimizer's update:
/// the parameters and the optimizer's state are as they were before the step.
/// </summary>
public sealed class NonFiniteStepException : ArithmeticException
{
    /// <summary>Creates the exception.</summary>
    public NonFiniteStepException(string message, float loss, string? tensorName) : base(message)
    {
        Loss = loss;
        TensorName = tensorName;
    }

    /// <summary>The step's loss (possibly finite, when only a gradient is not).</summary>
    public float Loss { get; }

    /// <summary>The first parameter tensor, in table order, whose gradient holds a value that is not finite; null when every gradient is finite.</summary>
    public string? TensorName { get; }
}
