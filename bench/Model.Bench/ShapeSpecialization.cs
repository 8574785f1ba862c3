using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;

namespace TransformerGen.Model.Bench;

/// <summary>
/// DESIGN.md's shape specialization, measured: the backward product's 6 × 64 register kernel as the runtime has it
/// (depth and row stride as arguments) against the same kernel with both as constants of dimension types, so the JIT
/// compiles one copy per size with the numbers folded in. Operands stay in L1, so the figure is the kernel's own
/// speed (one thread; 2 × 6 × 64 × depth operations per call).
/// </summary>
/// <remarks>
/// The setup checks that both give the same bits. The runtime keeps the plain kernel unless this shows the constant
/// one faster (see the README's performance section for the figures).
/// </remarks>
public unsafe class ShapeSpecialization
{
    private const int RowStride = 256, Width = 64;
    private float* _a, _panel, _c;

    [Params(64, 128)]
    public int Depth { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _a = (float*)NativeMemory.AlignedAlloc(6 * RowStride * sizeof(float), 64);
        _panel = (float*)NativeMemory.AlignedAlloc(128 * Width * sizeof(float), 64);
        _c = (float*)NativeMemory.AlignedAlloc(6 * Width * sizeof(float), 64);
        var rng = new Rng(5);
        for (int i = 0; i < 6 * RowStride; i++) _a[i] = rng.NextNormal();
        for (int i = 0; i < 128 * Width; i++) _panel[i] = rng.NextNormal();

        var plain = new float[6 * Width];
        new Span<float>(_c, plain.Length).Clear();
        Plain();
        new Span<float>(_c, plain.Length).CopyTo(plain);
        new Span<float>(_c, plain.Length).Clear();
        Constant();
        if (!new Span<float>(_c, plain.Length).SequenceEqual(plain))
            throw new InvalidOperationException("the specialized kernel disagrees with the runtime's");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_a);
        NativeMemory.AlignedFree(_panel);
        NativeMemory.AlignedFree(_c);
    }

    [Benchmark(Baseline = true)]
    public void Plain() => Kernels.MatMul.Panel6x64Of512(_a, RowStride, 1, _panel, _c, Width, Depth, 6, true, null);

    [Benchmark]
    public void Constant()
    {
        if (Depth == 64) Panel6x64<D64, D256>(_a, _panel, _c);
        else Panel6x64<D128, D256>(_a, _panel, _c);
    }

    private interface IDimension { static abstract int Value { get; } }
    private readonly struct D64 : IDimension { public static int Value => 64; }
    private readonly struct D128 : IDimension { public static int Value => 128; }
    private readonly struct D256 : IDimension { public static int Value => 256; }

    // The runtime's Panel6x64Of512 with depth and the row stride of a (column stride 1) as type constants, and the
    // result's row stride the panel width.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Panel6x64<TDepth, TRowStride>(float* a, float* panel, float* c)
        where TDepth : IDimension where TRowStride : IDimension
    {
        Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default;
        Vector512<float> s10 = default, s11 = default, s12 = default, s13 = default;
        Vector512<float> s20 = default, s21 = default, s22 = default, s23 = default;
        Vector512<float> s30 = default, s31 = default, s32 = default, s33 = default;
        Vector512<float> s40 = default, s41 = default, s42 = default, s43 = default;
        Vector512<float> s50 = default, s51 = default, s52 = default, s53 = default;
        for (int k = 0; k < TDepth.Value; k++)
        {
            float* p = panel + k * Width, ak = a + k;
            Vector512<float> b0 = Vector512.LoadAligned(p), b1 = Vector512.LoadAligned(p + 16), b2 = Vector512.LoadAligned(p + 32), b3 = Vector512.LoadAligned(p + 48);
            Vector512<float> av = Vector512.Create(ak[0]);
            s00 = Vector512.FusedMultiplyAdd(av, b0, s00); s01 = Vector512.FusedMultiplyAdd(av, b1, s01);
            s02 = Vector512.FusedMultiplyAdd(av, b2, s02); s03 = Vector512.FusedMultiplyAdd(av, b3, s03);
            av = Vector512.Create(ak[TRowStride.Value]);
            s10 = Vector512.FusedMultiplyAdd(av, b0, s10); s11 = Vector512.FusedMultiplyAdd(av, b1, s11);
            s12 = Vector512.FusedMultiplyAdd(av, b2, s12); s13 = Vector512.FusedMultiplyAdd(av, b3, s13);
            av = Vector512.Create(ak[2 * TRowStride.Value]);
            s20 = Vector512.FusedMultiplyAdd(av, b0, s20); s21 = Vector512.FusedMultiplyAdd(av, b1, s21);
            s22 = Vector512.FusedMultiplyAdd(av, b2, s22); s23 = Vector512.FusedMultiplyAdd(av, b3, s23);
            av = Vector512.Create(ak[3 * TRowStride.Value]);
            s30 = Vector512.FusedMultiplyAdd(av, b0, s30); s31 = Vector512.FusedMultiplyAdd(av, b1, s31);
            s32 = Vector512.FusedMultiplyAdd(av, b2, s32); s33 = Vector512.FusedMultiplyAdd(av, b3, s33);
            av = Vector512.Create(ak[4 * TRowStride.Value]);
            s40 = Vector512.FusedMultiplyAdd(av, b0, s40); s41 = Vector512.FusedMultiplyAdd(av, b1, s41);
            s42 = Vector512.FusedMultiplyAdd(av, b2, s42); s43 = Vector512.FusedMultiplyAdd(av, b3, s43);
            av = Vector512.Create(ak[5 * TRowStride.Value]);
            s50 = Vector512.FusedMultiplyAdd(av, b0, s50); s51 = Vector512.FusedMultiplyAdd(av, b1, s51);
            s52 = Vector512.FusedMultiplyAdd(av, b2, s52); s53 = Vector512.FusedMultiplyAdd(av, b3, s53);
        }
        AddRow(c, s00, s01, s02, s03);
        AddRow(c + Width, s10, s11, s12, s13);
        AddRow(c + 2 * Width, s20, s21, s22, s23);
        AddRow(c + 3 * Width, s30, s31, s32, s33);
        AddRow(c + 4 * Width, s40, s41, s42, s43);
        AddRow(c + 5 * Width, s50, s51, s52, s53);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow(float* c, Vector512<float> s0, Vector512<float> s1, Vector512<float> s2, Vector512<float> s3)
    {
        (Vector512.Load(c) + s0).Store(c);
        (Vector512.Load(c + 16) + s1).Store(c + 16);
        (Vector512.Load(c + 32) + s2).Store(c + 32);
        (Vector512.Load(c + 48) + s3).Store(c + 48);
    }
}
