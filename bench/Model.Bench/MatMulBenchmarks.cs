using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Model.Bench;

/// <summary>
/// The linear layer's forward product alone, <c>y = x·Wᵀ</c> with every dimension <see cref="Size"/>: ours and
/// libtorch's (<c>F.linear</c>). Our operands start on a cache line, as every tensor of a generated model does.
/// </summary>
[MemoryDiagnoser]
public unsafe class MatMul
{
    private float[] _x = null!, _w = null!, _y = null!;
    private int _xStart, _wStart, _yStart;
    private Tensor? _tx, _tw;

    [Params(64, 256, 512)]
    public int Size { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Parallelism.ThreadCount = Threads;
        set_num_threads(Threads);
        var rng = new Rng(3);
        int n = Size * Size;
        (_x, _xStart) = Aligned(n);
        (_w, _wStart) = Aligned(n);
        (_y, _yStart) = Aligned(n);
        Span<float> x = _x.AsSpan(_xStart, n), w = _w.AsSpan(_wStart, n);
        for (int i = 0; i < n; i++) { x[i] = rng.NextNormal(); w[i] = rng.NextNormal(); }
        _tx = tensor(x.ToArray(), new long[] { Size, Size });
        _tw = tensor(w.ToArray(), new long[] { Size, Size });
    }

    /// <summary>A pinned array and the index of its first float on a 64-byte boundary.</summary>
    private static (float[] Array, int Start) Aligned(int length)
    {
        float[] array = GC.AllocateArray<float>(length + 15, pinned: true);
        long address = (long)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
        return (array, (int)((64 - (address & 63)) & 63) / sizeof(float));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _tx?.Dispose();
        _tw?.Dispose();
    }

    [Benchmark]
    public void Ours()
    {
        int n = Size * Size;
        Kernels.MatMul.Forward(_x.AsSpan(_xStart, n), _w.AsSpan(_wStart, n), ReadOnlySpan<float>.Empty, _y.AsSpan(_yStart, n), Size, Size, Size);
    }

    [Benchmark(Baseline = true)]
    public void Torch()
    {
        using Tensor y = F.linear(_tx!, _tw!);
    }
}
