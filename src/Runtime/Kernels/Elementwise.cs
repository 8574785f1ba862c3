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

/// <summary>
/// An activation's backward <c>f(dy, x, y)</c> of the output's gradient, the forward's input and the forward's output
/// (an operator that needs only one of the two ignores the other).
/// </summary>
internal interface IBackwardOperator
{
    static abstract float Invoke(float dy, float x, float y);
    static abstract Vector128<float> Invoke(Vector128<float> dy, Vector128<float> x, Vector128<float> y);
    static abstract Vector256<float> Invoke(Vector256<float> dy, Vector256<float> x, Vector256<float> y);
    static abstract Vector512<float> Invoke(Vector512<float> dy, Vector512<float> x, Vector512<float> y);
}

/// <summary>
/// The shared loops that drive <see cref="IUnaryOperator"/> and <see cref="IBackwardOperator"/>: they own the length
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
            i = Map512<TOp>(ref px, ref py, length);
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
    /// Effectively computes <c>d[i] += TOp(dy[i], x[i], y[i])</c>, or <c>d[i] = TOp(dy[i], x[i], y[i])</c> without
    /// <paramref name="accumulate"/>: the two shapes of every elementwise backward (adding into a gradient, or its first
    /// contribution).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MapBackward<TOp>(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d, bool accumulate, string dyName, string xName, string yName, string dName) where TOp : IBackwardOperator
    {
        SpanChecks.SameLength(x.Length, dy.Length, xName, dyName);
        SpanChecks.SameLength(y.Length, dy.Length, yName, dyName);
        SpanChecks.SameLength(d.Length, dy.Length, dName, dyName);
        ref float pa = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(dy);
        ref float pb = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        ref float pc = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(y);
        ref float pd = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(d);
        nuint length = (nuint)dy.Length, i = 0;
        // The branch on accumulate is the same every time, so it predicts perfectly; adding 0 instead would read d.
        if (Vector512.IsHardwareAccelerated)
            i = MapBackward512<TOp>(ref pa, ref pb, ref pc, ref pd, length, accumulate);
        else if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= length; i += 8)
            {
                Vector256<float> r = TOp.Invoke(Vector256.LoadUnsafe(ref pa, i), Vector256.LoadUnsafe(ref pb, i), Vector256.LoadUnsafe(ref pc, i));
                (accumulate ? Vector256.LoadUnsafe(ref pd, i) + r : r).StoreUnsafe(ref pd, i);
            }
        if (Vector128.IsHardwareAccelerated)
            for (; i + 4 <= length; i += 4)
            {
                Vector128<float> r = TOp.Invoke(Vector128.LoadUnsafe(ref pa, i), Vector128.LoadUnsafe(ref pb, i), Vector128.LoadUnsafe(ref pc, i));
                (accumulate ? Vector128.LoadUnsafe(ref pd, i) + r : r).StoreUnsafe(ref pd, i);
            }
        for (; i < length; i++)
        {
            float r = TOp.Invoke(Unsafe.Add(ref pa, i), Unsafe.Add(ref pb, i), Unsafe.Add(ref pc, i));
            Unsafe.Add(ref pd, i) = accumulate ? Unsafe.Add(ref pd, i) + r : r;
        }
    }

    // The Vector512 loops stand in methods of their own: inlined beside the narrower loops, which inline the operator's
    // 128- and 256-bit forms too, an operator as long as the exact GELU's (erfc, exp) left its 512-bit helpers as calls,
    // each passing vectors through memory.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static nuint Map512<TOp>(ref float px, ref float py, nuint length) where TOp : IUnaryOperator
    {
        nuint i = 0;
        for (; i + 16 <= length; i += 16)
            TOp.Invoke(Vector512.LoadUnsafe(ref px, i)).StoreUnsafe(ref py, i);
        return i;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static nuint MapBackward512<TOp>(ref float pa, ref float pb, ref float pc, ref float pd, nuint length, bool accumulate) where TOp : IBackwardOperator
    {
        nuint i = 0;
        for (; i + 16 <= length; i += 16)
        {
            Vector512<float> r = TOp.Invoke(Vector512.LoadUnsafe(ref pa, i), Vector512.LoadUnsafe(ref pb, i), Vector512.LoadUnsafe(ref pc, i));
            (accumulate ? Vector512.LoadUnsafe(ref pd, i) + r : r).StoreUnsafe(ref pd, i);
        }
        return i;
    }
}
