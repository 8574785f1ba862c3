using System;
using System.Numerics.Tensors;

namespace TransformerGen.Kernels;

/// <summary>
/// Multiplication by a constant: T5's tied head reads the decoder's output times d_model^−½ (transformers'
/// <c>sequence_output * (self.model_dim**-0.5)</c>), since the table it shares with the embeddings is not scaled.
/// </summary>
public static class Scaling
{
    /// <summary>Effectively computes <c>y[i] = factor·x[i]</c>. <paramref name="y"/> may be <paramref name="x"/>.</summary>
    public static void Forward(ReadOnlySpan<float> x, float factor, Span<float> y)
    {
        SpanChecks.SameLength(y.Length, x.Length, nameof(y), nameof(x));
        TensorPrimitives.Multiply(x, factor, y);
    }

    /// <summary>Effectively computes <c>dx[i] += factor·dy[i]</c> (<c>=</c> with <paramref name="overwriteDx"/>).</summary>
    public static void Backward(ReadOnlySpan<float> dy, float factor, Span<float> dx, bool overwriteDx = false)
    {
        SpanChecks.SameLength(dx.Length, dy.Length, nameof(dx), nameof(dy));
        if (overwriteDx) TensorPrimitives.Multiply(dy, factor, dx);
        else TensorPrimitives.MultiplyAdd(dy, factor, dx, dx);
    }
}
