using System;
using System.Collections.Generic;
using System.Globalization;

namespace TransformerGen;

/// <summary>Finds which gradient is not finite, once a step's check has failed (so its cost is paid only then).</summary>
internal static class NonFiniteGradients
{
    /// <summary>The first tensor, in table order, whose gradient holds a NaN or an infinity, with that element's index and value; null when there is none.</summary>
    public static (ParameterTensor Tensor, int Index, float Value)? First(IReadOnlyList<ParameterTensor> tensors, ReadOnlySpan<float> gradients)
    {
        foreach (ParameterTensor tensor in tensors)
        {
            ReadOnlySpan<float> values = gradients.Slice(tensor.Offset, tensor.Length);
            for (int i = 0; i < values.Length; i++)
                if (!float.IsFinite(values[i])) return (tensor, i, values[i]);
        }
        return null;
    }

    /// <summary>The exception that refuses the step, naming the loss and the first tensor whose gradient is not finite.</summary>
    public static NonFiniteStepException Describe(string model, float loss, IReadOnlyList<ParameterTensor> tensors, ReadOnlySpan<float> gradients, long optimizerStep)
    {
        var first = First(tensors, gradients);
        string lossText = $"the loss is {loss.ToString(CultureInfo.InvariantCulture)}";
        string gradientText = first is { } f
            ? $"the gradient of '{f.Tensor.Name}' {f.Tensor.ShapeText} is not finite ({f.Value.ToString(CultureInfo.InvariantCulture)} at element {f.Index}; the first such tensor)"
            : "every gradient is finite";
        return new NonFiniteStepException(
            $"{model}: the training step after optimizer step {optimizerStep} was refused: {lossText} and {gradientText}. " +
            "The parameters and the optimizer's state are unchanged; lower the learning rate, clip gradients, or set NonFiniteSteps = Skip to skip such steps and count them.",
            loss, first?.Tensor.Name);
    }
}
