using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TransformerGen.Kernels;

/// <summary>
/// The instruction-set variants of the kernels that are hand-vectorized (<see cref="MatMul"/>). The public
/// entry points take <see cref="Simd.Best"/>; tests run every variant the machine supports so that the fallbacks
/// stay correct on a machine that always takes the fastest one.
/// </summary>
internal enum SimdPath
{
    /// <summary>Built from <c>TensorPrimitives</c> calls, which vectorize at whatever width the machine has (Vector128 on Arm).</summary>
    Portable,
    /// <summary>AVX2 + FMA, Vector256 register blocking.</summary>
    Vector256,
    /// <summary>AVX-512F, Vector512 register blocking with masked tails.</summary>
    Vector512,
}

internal static unsafe class Simd
{
    /// <summary>The fastest variant this machine runs in hardware.</summary>
    public static readonly SimdPath Best =
        IsSupported(SimdPath.Vector512) ? SimdPath.Vector512 :
        IsSupported(SimdPath.Vector256) ? SimdPath.Vector256 : SimdPath.Portable;

    /// <summary>Whether <paramref name="path"/> runs in hardware here (Vector256 without FMA would be emulated, so it counts as unsupported).</summary>
    public static bool IsSupported(SimdPath path) => path switch
    {
        SimdPath.Vector512 => Vector512.IsHardwareAccelerated && Avx512F.IsSupported,
        SimdPath.Vector256 => Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported,
        _ => true,
    };

    /// <summary>Lanes below <paramref name="count"/> all ones, the rest zero: the mask for a tail of <paramref name="count"/> &lt; 16 elements.</summary>
    public static Vector512<float> TailMask512(int count)
        => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();

    /// <summary>
    /// <c>c[m·ldc + j] = 0</c> for m &lt; <paramref name="rows"/>, j &lt; <paramref name="cols"/>: a block of a
    /// row-major matrix (one head's columns, say). Short rows are stored from registers; a library clear per row
    /// costs a call and a size dispatch each, which shows when the rows are one head (32 floats) wide.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ClearBlock(float* c, int ldc, int rows, int cols)
    {
        if (cols <= 0) return;
        for (int m = 0; m < rows; m++)
        {
            float* row = c + (nint)m * ldc;
            if (cols >= 256)
            {
                new Span<float>(row, cols).Clear();
                continue;
            }
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
                for (; j + 16 <= cols; j += 16) Vector512<float>.Zero.Store(row + j);
            if (Vector256.IsHardwareAccelerated)
                for (; j + 8 <= cols; j += 8) Vector256<float>.Zero.Store(row + j);
            for (; j < cols; j++) row[j] = 0f;
        }
    }
}
