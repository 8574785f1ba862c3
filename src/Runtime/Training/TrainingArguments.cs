using System;
using System.Diagnostics.CodeAnalysis;

namespace TransformerGen;

/// <summary>Argument checks shared by the optimizers and the learning-rate schedules.</summary>
internal static class TrainingArguments
{
    /// <summary>Throws unless <paramref name="value"/> is finite and at least 0 (NaN fails); the message reads "<paramref name="what"/> must be finite and at least 0".</summary>
    public static void RequireFiniteNonNegative(float value, string name, string what)
    {
        if (!(value >= 0f) || float.IsPositiveInfinity(value)) ThrowNotFiniteNonNegative(value, name, what);
    }

    [DoesNotReturn]
    private static void ThrowNotFiniteNonNegative(float value, string name, string what) =>
        throw new ArgumentOutOfRangeException(name, value, $"{what} must be finite and at least 0");

    /// <summary>The length of <paramref name="model"/>'s parameter buffer, after checking that its gradient buffer has the same.</summary>
    public static int ParameterLength(ITrainableParameters model)
    {
        int length = model.Parameters.Length;
        if (model.Gradients.Length != length)
            throw new ArgumentException($"the gradient buffer has {model.Gradients.Length} floats but the parameter buffer has {length}", nameof(model));
        return length;
    }
}
