using System;
using BenchmarkDotNet.Attributes;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Model.Bench;

/// <summary>The linear layer's forward product alone, <c>y = x·Wᵀ</c> with every dimension <see cref="Size"/>: ours and libtorch's (<c>F.linear</c>).</summary>
[MemoryDiagnoser]
public class MatMul
{
    private float[] _x = null!, _w = null!, _y = null!;
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
        _x = new float[Size * Size];
        _w = new float[Size * Size];
        _y = new float[Size * Size];
        for (int i = 0; i < _x.Length; i++) { _x[i] = rng.NextNormal(); _w[i] = rng.NextNormal(); }
        _tx = tensor(_x, new long[] { Size, Size });
        _tw = tensor(_w, new long[] { Size, Size });
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _tx?.Dispose();
        _tw?.Dispose();
    }

    [Benchmark]
    public void Ours() => Kernels.MatMul.Forward(_x, _w, ReadOnlySpan<float>.Empty, _y, Size, Size, Size);

    [Benchmark(Baseline = true)]
    public void Torch()
    {
        using Tensor y = F.linear(_tx!, _tw!);
    }
}
