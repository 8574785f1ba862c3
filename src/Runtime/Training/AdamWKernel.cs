using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TransformerGen;

/// <summary>The AdamW update over one span of the flat buffer: Vector512, then Vector256, then a scalar tail.</summary>
internal static partial class AdamWKernel
{
    /// <summary>The per-step scalars, already in float.</summary>
    internal readonly record struct Coefficients(
        float DecayFactor, float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2,
        float StepSize, float SqrtBiasCorrection2, float Epsilon);

    /// <summary>
    /// Effectively computes, for every i:
    /// <c>θ[i] *= decay; m[i] = β1·m[i] + (1−β1)·g[i]; v[i] = β2·v[i] + (1−β2)·g[i]²;
    /// θ[i] −= stepSize · (m[i] / (√v[i] / √bc2 + ε))</c>.
    /// All four spans have the same length.
    /// </summary>
    public static void Update(Span<float> parameters, ReadOnlySpan<float> gradients, Span<float> firstMoment, Span<float> secondMoment, in Coefficients c)
    {
        int n = parameters.Length;
        if (gradients.Length != n || firstMoment.Length != n || secondMoment.Length != n)
            throw new ArgumentException("parameters, gradients and moments must have the same length");

        ref float p = ref MemoryMarshal.GetReference(parameters);
        ref float g = ref MemoryMarshal.GetReference(gradients);
        ref float m = ref MemoryMarshal.GetReference(firstMoment);
        ref float v = ref MemoryMarshal.GetReference(secondMoment);
        int i = 0;

        if (Vector512.IsHardwareAccelerated && n >= Vector512<float>.Count)
        {
            Vector512<float> decay = Vector512.Create(c.DecayFactor), beta1 = Vector512.Create(c.Beta1), oneMinusBeta1 = Vector512.Create(c.OneMinusBeta1);
            Vector512<float> beta2 = Vector512.Create(c.Beta2), oneMinusBeta2 = Vector512.Create(c.OneMinusBeta2);
            Vector512<float> stepSize = Vector512.Create(c.StepSize), sqrtBc2 = Vector512.Create(c.SqrtBiasCorrection2), eps = Vector512.Create(c.Epsilon);
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                nuint at = (nuint)i;
                Vector512<float> grad = Vector512.LoadUnsafe(ref g, at);
                Vector512<float> theta = Vector512.LoadUnsafe(ref p, at) * decay;
                Vector512<float> mNew = beta1 * Vector512.LoadUnsafe(ref m, at) + oneMinusBeta1 * grad;
                Vector512<float> vNew = beta2 * Vector512.LoadUnsafe(ref v, at) + oneMinusBeta2 * (grad * grad);
                Vector512<float> denominator = Vector512.Sqrt(vNew) / sqrtBc2 + eps;
                theta -= stepSize * (mNew / denominator);
                mNew.StoreUnsafe(ref m, at);
                vNew.StoreUnsafe(ref v, at);
                theta.StoreUnsafe(ref p, at);
            }
        }

        if (Vector256.IsHardwareAccelerated && n - i >= Vector256<float>.Count)
        {
            Vector256<float> decay = Vector256.Create(c.DecayFactor), beta1 = Vector256.Create(c.Beta1), oneMinusBeta1 = Vector256.Create(c.OneMinusBeta1);
            Vector256<float> beta2 = Vector256.Create(c.Beta2), oneMinusBeta2 = Vector256.Create(c.OneMinusBeta2);
            Vector256<float> stepSize = Vector256.Create(c.StepSize), sqrtBc2 = Vector256.Create(c.SqrtBiasCorrection2), eps = Vector256.Create(c.Epsilon);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                nuint at = (nuint)i;
                Vector256<float> grad = Vector256.LoadUnsafe(ref g, at);
                Vector256<float> theta = Vector256.LoadUnsafe(ref p, at) * decay;
                Vector256<float> mNew = beta1 * Vector256.LoadUnsafe(ref m, at) + oneMinusBeta1 * grad;
                Vector256<float> vNew = beta2 * Vector256.LoadUnsafe(ref v, at) + oneMinusBeta2 * (grad * grad);
                Vector256<float> denominator = Vector256.Sqrt(vNew) / sqrtBc2 + eps;
                theta -= stepSize * (mNew / denominator);
                mNew.StoreUnsafe(ref m, at);
                vNew.StoreUnsafe(ref v, at);
                theta.StoreUnsafe(ref p, at);
            }
        }

        for (; i < n; i++)
        {
            float grad = Unsafe.Add(ref g, i);
            float theta = Unsafe.Add(ref p, i) * c.DecayFactor;
            float mNew = c.Beta1 * Unsafe.Add(ref m, i) + c.OneMinusBeta1 * grad;
            float vNew = c.Beta2 * Unsafe.Add(ref v, i) + c.OneMinusBeta2 * (grad * grad);
            float denominator = MathF.Sqrt(vNew) / c.SqrtBiasCorrection2 + c.Epsilon;
            Unsafe.Add(ref m, i) = mNew;
            Unsafe.Add(ref v, i) = vNew;
            Unsafe.Add(ref p, i) = theta - c.StepSize * (mNew / denominator);
        }
    }
}
