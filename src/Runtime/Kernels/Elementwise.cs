using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TransformerGen.Kernels;

/// <summary>An elementwise map <c>y = f(x)</c> written once per vector width (System.Numerics.Tensors' operator pattern).</summary>
internal interface IUnaryOperator
{
    static abstract float Invoke(float x);
    static abstract Vector128<float> Invoke(Vector128<float> x);
    static abstract Vector256<float> Invoke(Vector256<float> x);
    static abstract Vector512<float> Invoke(Vector512<float> x);
}

/// <summary>An elementwise map of two inputs <c>f(a, b)</c>, e.g. an activation's backward <c>f(dy, x)</c>.</summary>
internal interface IBinaryOperator
{
    static abstract float Invoke(float a, float b);
    static abstract Vector128<float> Invoke(Vector128<float> a, Vector128<float> b);
    static abstract Vector256<float> Invoke(Vector256<float> a, Vector256<float> b);
    static abstract Vector512<float> Invoke(Vector512<float> a, Vector512<float> b);
}

/// <summary>
/// The shared loops that drive <see cref="IUnaryOperator"/> and <see cref="IBinaryOperator"/>: they own the length
/// checks, the choice of vector width and the scalar tail, so an operator only says what happens to one element.
/// </summary>
internal static partial class Elementwise
{
    /// <summary>Effectively computes <c>y[i] = TOp(x[i])</c>. <paramref name="y"/> may be <paramref name="x"/> itself.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Map<TOp>(ReadOnlySpan<float> x, Span<float> y, string xName, string yName) where TOp : IUnaryOperator
    {
        SpanChecks.SameLength(y.Length, x.Length, yName, xName);
        ref float px = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        ref float py = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(y);
        nuint length = (nuint)x.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= length; i += 16)
                TOp.Invoke(Vector512.LoadUnsafe(ref px, i)).StoreUnsafe(ref py, i);
        else if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= length; i += 8)
                TOp.Invoke(Vector256.LoadUnsafe(ref px, i)).StoreUnsafe(ref py, i);
        if (Vector128.IsHardwareAccelerated)
            for (; i + 4 <= length; i += 4)
                TOp.Invoke(Vector128.LoadUnsafe(ref px, i)).StoreUnsafe(ref py, i);
        // A scalar tail rather than one overlapping last vector: with y aliasing x the overlap would apply f twice.
        for (; i < length; i++)
            Unsafe.Add(ref py, i) = TOp.Invoke(Unsafe.Add(ref px, i));
    }

    /// <summary>
    /// Effectively computes <c>d[i] += TOp(a[i], b[i])</c>, or <c>d[i] = TOp(a[i], b[i])</c> without
    /// <paramref name="accumulate"/>: the two shapes of every elementwise backward (adding into a gradient, or its first
    /// contribution).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MapPair<TOp>(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> d, bool accumulate, string aName, string bName, string dName) where TOp : IBinaryOperator
    {
        SpanChecks.SameLength(b.Length, a.Length, bName, aName);
        SpanChecks.SameLength(d.Length, a.Length, dName, aName);
        ref float pa = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(a);
        ref float pb = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(b);
        ref float pd = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(d);
        nuint length = (nuint)a.Length, i = 0;
        // The branch on accumulate is the same every time, so it predicts perfectly; adding 0 instead would read d.
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= length; i += 16)
            {
                Vector512<float> r = TOp.Invoke(Vector512.LoadUnsafe(ref pa, i), Vector512.LoadUnsafe(ref pb, i));
                (accumulate ? Vector512.LoadUnsafe(ref pd, i) + r : r).StoreUnsafe(ref pd, i);
            }
        else if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= length; i += 8)
            {
                Vector256<float> r = TOp.Invoke(Vector256.LoadUnsafe(ref pa, i), Vector256.LoadUnsafe(ref pb, i));
                (accumulate ? Vector256.LoadUnsafe(ref pd, i) + r : r).StoreUnsafe(ref pd, i);
            }
        if (Vector128.IsHardwareAccelerated)
            for (; i + 4 <= length; i += 4)
            {
                Vector128<float> r = TOp.Invoke(Vector128.LoadUnsafe(ref pa, i), Vector128.LoadUnsafe(ref pb, i));
                (accumulate ? Vector128.LoadUnsafe(ref pd, i) + r : r).StoreUnsafe(ref pd, i);
            }
        for (; i < length; i++)
        {
            float r = TOp.Invoke(Unsafe.Add(ref pa, i), Unsafe.Add(ref pb, i));
            Unsafe.Add(ref pd, i) = accumulate ? Unsafe.Add(ref pd, i) + r : r;
        }
    }
}
