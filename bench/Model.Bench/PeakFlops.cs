using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Threading.Tasks;
using BenchmarkDotNet.Attributes;

namespace TransformerGen.Model.Bench;

/// <summary>
/// The machine's FP32 peak: a loop of independent Vector512 fused multiply-adds on registers only, on each of
/// <see cref="Threads"/> threads at once. Sixteen accumulators cover the FMA latency on both of a core's FMA pipes.
/// </summary>
public class PeakFlops
{
    /// <summary>Iterations of the loop on each thread.</summary>
    public const int Iterations = 1 << 20;

    /// <summary>Operations per thread: iterations × 16 accumulators × 16 lanes × 2 (multiply and add).</summary>
    public const double FlopsPerThread = (double)Iterations * 16 * 16 * 2;

    [Params(1, 2)]
    public int Threads { get; set; }

    [Benchmark]
    public float Fma()
    {
        if (Threads == 1) return Loop(Iterations);
        var sums = new float[Threads];
        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t => sums[t] = Loop(Iterations));
        return sums[0];
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Loop(int iterations)
    {
        // a ← a·m + c converges to c / (1 − m) = 1: no overflow, no denormals.
        Vector512<float> m = Vector512.Create(0.9999f), c = Vector512.Create(1e-4f);
        Vector512<float> a0 = Vector512.Create(0.1f), a1 = Vector512.Create(0.2f), a2 = Vector512.Create(0.3f), a3 = Vector512.Create(0.4f);
        Vector512<float> a4 = a0 * 2, a5 = a1 * 2, a6 = a2 * 2, a7 = a3 * 2, a8 = a0 * 3, a9 = a1 * 3, a10 = a2 * 3, a11 = a3 * 3;
        Vector512<float> a12 = a0 * 4, a13 = a1 * 4, a14 = a2 * 4, a15 = a3 * 4;
        for (int i = 0; i < iterations; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, m, c); a1 = Vector512.FusedMultiplyAdd(a1, m, c);
            a2 = Vector512.FusedMultiplyAdd(a2, m, c); a3 = Vector512.FusedMultiplyAdd(a3, m, c);
            a4 = Vector512.FusedMultiplyAdd(a4, m, c); a5 = Vector512.FusedMultiplyAdd(a5, m, c);
            a6 = Vector512.FusedMultiplyAdd(a6, m, c); a7 = Vector512.FusedMultiplyAdd(a7, m, c);
            a8 = Vector512.FusedMultiplyAdd(a8, m, c); a9 = Vector512.FusedMultiplyAdd(a9, m, c);
            a10 = Vector512.FusedMultiplyAdd(a10, m, c); a11 = Vector512.FusedMultiplyAdd(a11, m, c);
            a12 = Vector512.FusedMultiplyAdd(a12, m, c); a13 = Vector512.FusedMultiplyAdd(a13, m, c);
            a14 = Vector512.FusedMultiplyAdd(a14, m, c); a15 = Vector512.FusedMultiplyAdd(a15, m, c);
        }
        Vector512<float> sum = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11)) + ((a12 + a13) + (a14 + a15));
        return Vector512.Sum(sum);
    }
}
