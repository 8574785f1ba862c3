using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TransformerGen;

/// <summary>The SGD update over the flat buffer: Vector512, then Vector256, then a scalar tail.</summary>
internal static class SgdKernel
{
    /// <summary>The per-step settings.</summary>
    internal readonly record struct Settings(float LearningRate, float WeightDecay, float Momentum, bool Nesterov, bool FirstStep);

    /// <summary>
    /// Effectively computes, for every i:
    /// <c>d = g[i] (+ λ·θ[i] when λ ≠ 0); when μ ≠ 0: b[i] = first ? d : μ·b[i] + d, d = nesterov ? d + μ·b[i] : b[i];
    /// θ[i] −= γ·d</c>. <paramref name="momentumBuffer"/> is empty when μ = 0.
    /// </summary>
    public static void Update(Span<float> parameters, ReadOnlySpan<float> gradients, Span<float> momentumBuffer, in Settings s)
    {
        int n = parameters.Length;
        bool hasMomentum = s.Momentum != 0f;
        bool hasDecay = s.WeightDecay != 0f;
        if (gradients.Length != n || (hasMomentum && momentumBuffer.Length != n))
            throw new ArgumentException("parameters, gradients and the momentum buffer must have the same length");

        ref float p = ref MemoryMarshal.GetReference(parameters);
        ref float g = ref MemoryMarshal.GetReference(gradients);
        ref float b = ref MemoryMarshal.GetReference(momentumBuffer);
        int i = 0;

        // The flags are loop-invariant; their branches are predicted perfectly and the loop is memory-bound.
        if (Vector512.IsHardwareAccelerated && n >= Vector512<float>.Count)
        {
            Vector512<float> lr = Vector512.Create(s.LearningRate), wd = Vector512.Create(s.WeightDecay), mu = Vector512.Create(s.Momentum);
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                nuint at = (nuint)i;
                Vector512<float> theta = Vector512.LoadUnsafe(ref p, at);
                Vector512<float> d = Vector512.LoadUnsafe(ref g, at);
                if (hasDecay) d += wd * theta;
                if (hasMomentum)
                {
                    Vector512<float> buf = s.FirstStep ? d : mu * Vector512.LoadUnsafe(ref b, at) + d;
                    buf.StoreUnsafe(ref b, at);
                    d = s.Nesterov ? d + mu * buf : buf;
                }
                (theta - lr * d).StoreUnsafe(ref p, at);
            }
        }

        if (Vector256.IsHardwareAccelerated && n - i >= Vector256<float>.Count)
        {
            Vector256<float> lr = Vector256.Create(s.LearningRate), wd = Vector256.Create(s.WeightDecay), mu = Vector256.Create(s.Momentum);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                nuint at = (nuint)i;
                Vector256<float> theta = Vector256.LoadUnsafe(ref p, at);
                Vector256<float> d = Vector256.LoadUnsafe(ref g, at);
                if (hasDecay) d += wd * theta;
                if (hasMomentum)
                {
                    Vector256<float> buf = s.FirstStep ? d : mu * Vector256.LoadUnsafe(ref b, at) + d;
                    buf.StoreUnsafe(ref b, at);
                    d = s.Nesterov ? d + mu * buf : buf;
                }
                (theta - lr * d).StoreUnsafe(ref p, at);
            }
        }

        for (; i < n; i++)
        {
            float theta = Unsafe.Add(ref p, i);
            float d = Unsafe.Add(ref g, i);
            if (hasDecay) d += s.WeightDecay * theta;
            if (hasMomentum)
            {
                float buf = s.FirstStep ? d : s.Momentum * Unsafe.Add(ref b, i) + d;
                Unsafe.Add(ref b, i) = buf;
                d = s.Nesterov ? d + s.Momentum * buf : buf;
            }
            Unsafe.Add(ref p, i) = theta - s.LearningRate * d;
        }
    }
}
