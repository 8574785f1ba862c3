using System;
using System.Numerics.Tensors;

namespace TransformerGen.Kernels;

/// <summary>Inverted dropout, as PyTorch's <c>nn.Dropout</c> in training mode (kept values are scaled by 1/(1 − p)).</summary>
public static class Dropout
{
    /// <summary>
    /// Draws <c>mask[i] = 0</c> with probability <paramref name="p"/>, else <c>1/(1 − p)</c>, from <paramref name="rng"/>
    /// (one <see cref="Rng.NextFloat"/> per element, so a seed fixes the mask), and sets <c>y = x ⊙ mask</c>.
    /// With <c>p == 0</c>, <c>y = x</c> and the mask is all ones, and no random numbers are drawn.
    /// <paramref name="y"/> may be <paramref name="x"/>.
    /// </summary>
    /// <param name="x">Input, any shape.</param>
    /// <param name="y">Output, the same length.</param>
    /// <param name="mask">Saved mask, the same length.</param>
    /// <param name="p">Probability of dropping an element, in [0, 1).</param>
    /// <param name="rng">The random stream.</param>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, Span<float> mask, float p, Rng rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (!(p >= 0f && p < 1f)) throw new ArgumentOutOfRangeException(nameof(p), p, "The dropout probability must be in [0, 1).");
        SpanChecks.SameLength(y.Length, x.Length, nameof(y), nameof(x));
        SpanChecks.SameLength(mask.Length, x.Length, nameof(mask), nameof(x));
        if (p == 0f)
        {
            mask.Fill(1f);
            x.CopyTo(y);
            return;
        }
        float keep = 1f / (1f - p);
        for (int i = 0; i < mask.Length; i++)
            mask[i] = rng.NextFloat() < p ? 0f : keep;
        TensorPrimitives.Multiply(x, mask, y);
    }

    /// <summary>Effectively computes <c>dx[i] += dy[i]·mask[i]</c> (<c>=</c> with <paramref name="overwriteDx"/>).</summary>
    /// <param name="dy">Gradient of the output.</param>
    /// <param name="mask">The mask saved by forward.</param>
    /// <param name="dx">Gradient of the input (accumulated unless <paramref name="overwriteDx"/>).</param>
    /// <param name="overwriteDx">Store rather than add (the first contribution to the input's gradient).</param>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> mask, Span<float> dx, bool overwriteDx = false)
    {
        SpanChecks.SameLength(mask.Length, dy.Length, nameof(mask), nameof(dy));
        SpanChecks.SameLength(dx.Length, dy.Length, nameof(dx), nameof(dy));
        if (overwriteDx) TensorPrimitives.Multiply(dy, mask, dx);
        else TensorPrimitives.MultiplyAdd(dy, mask, dx, dx);
    }
}
