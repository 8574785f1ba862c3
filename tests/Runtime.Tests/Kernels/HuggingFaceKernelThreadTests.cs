using System;
using TransformerGen.Kernels;
using TransformerGen.Tests.Threading;
using TransformerGen.Threading;
using Xunit;

namespace TransformerGen.Tests.Kernels;

/// <summary>
/// The Hugging Face families' kernels give bit-identical results with 1, 2 and 3 threads, with the work threshold
/// lowered so that small shapes split too, and allocate nothing once the workers exist (as
/// <see cref="ParallelKernelTests"/> checks for the original kernels).
/// </summary>
[Collection(ThreadSettingsCollection.Name)]
public sealed class HuggingFaceKernelThreadTests
{
    private static readonly int[] ThreadCounts = { 2, 3 };

    [Theory]
    [InlineData(1, 5)]
    [InlineData(33, 37)]   // one row past a block, a width off the vector widths
    [InlineData(100, 200)] // several row blocks and column blocks, the last ones partial
    public void RmsNorm_is_bit_identical_on_any_thread_count(int n, int c)
    {
        var rng = new Rng(100);
        float[] x = TestTensors.Normal(rng, n * c, 3f), weight = TestTensors.Normal(rng, c), dy = TestTensors.Normal(rng, n * c);
        float[] dx0 = TestTensors.Normal(rng, n * c), dw0 = TestTensors.Normal(rng, c);
        foreach (bool overwrite in new[] { false, true })
        {
            float[][] Run(int threads)
            {
                float[] y = new float[n * c], rstd = new float[n], dx = (float[])dx0.Clone(), dw = (float[])dw0.Clone();
                using (new ThreadSettings(threads))
                {
                    RmsNorm.Forward(x, weight, y, rstd, n, c, 1e-6f);
                    RmsNorm.Backward(dy, x, weight, rstd, dx, dw, n, c, overwrite);
                }
                return new[] { y, rstd, dx, dw };
            }
            AssertSame(Run, new[] { "y", "rstd", "dx", "dweight" }, $"overwrite={overwrite}");
        }
    }

    [Theory]
    [InlineData(1, 5)]
    [InlineData(33, 37)]
    [InlineData(100, 200)]
    public void L2Normalize_is_bit_identical_on_any_thread_count(int n, int c)
    {
        var rng = new Rng(101);
        float[] x = TestTensors.Normal(rng, n * c), dy = TestTensors.Normal(rng, n * c), dx0 = TestTensors.Normal(rng, n * c);
        x.AsSpan(0, c).Clear(); // one clamped row
        foreach (bool overwrite in new[] { false, true })
        {
            float[][] Run(int threads)
            {
                float[] y = new float[n * c], norms = new float[n], dx = (float[])dx0.Clone();
                using (new ThreadSettings(threads))
                {
                    L2Normalize.Forward(x, y, norms, n, c);
                    L2Normalize.Backward(dy, y, norms, dx, n, c, overwriteDx: overwrite);
                }
                return new[] { y, norms, dx };
            }
            AssertSame(Run, new[] { "y", "norms", "dx" }, $"overwrite={overwrite}");
        }
    }

    [Theory]
    [InlineData(37)]
    [InlineData(16384)]
    [InlineData(3 * 16384 + 45)]
    public void Pointwise_activations_are_bit_identical_on_any_thread_count(int length)
    {
        var rng = new Rng(102);
        float[] x = TestTensors.Normal(rng, length, 3f), dy = TestTensors.Normal(rng, length), dx0 = TestTensors.Normal(rng, length);
        foreach (bool overwrite in new[] { false, true })
        {
            float[][] Run(int threads)
            {
                float[] geluY = new float[length], geluDx = (float[])dx0.Clone(), siluY = new float[length], siluDx = (float[])dx0.Clone();
                using (new ThreadSettings(threads))
                {
                    Activations.GeluTanhForward(x, geluY);
                    Activations.GeluTanhBackward(dy, x, geluDx, overwrite);
                    Activations.SiluForward(x, siluY);
                    Activations.SiluBackward(dy, x, siluDx, overwrite);
                }
                return new[] { geluY, geluDx, siluY, siluDx };
            }
            AssertSame(Run, new[] { "gelu_tanh y", "gelu_tanh dx", "silu y", "silu dx" }, $"overwrite={overwrite}");
        }
    }

    [Theory]
    [InlineData(1, 7)]
    [InlineData(33, 37)]
    [InlineData(40, 1000)]  // 16 rows per block: three blocks, the last partial
    [InlineData(5, 20_000)] // wider than a block: one row per block
    public void SwiGlu_is_bit_identical_on_any_thread_count(int n, int hidden)
    {
        var rng = new Rng(103);
        float[] gateUp = TestTensors.Normal(rng, n * 2 * hidden, 2f), dy = TestTensors.Normal(rng, n * hidden), d0 = TestTensors.Normal(rng, gateUp.Length);
        foreach (bool overwrite in new[] { false, true })
        {
            float[][] Run(int threads)
            {
                float[] y = new float[n * hidden], dGateUp = (float[])d0.Clone();
                using (new ThreadSettings(threads))
                {
                    Activations.SwiGluForward(gateUp, y, n, hidden);
                    Activations.SwiGluBackward(dy, gateUp, dGateUp, n, hidden, overwrite);
                }
                return new[] { y, dGateUp };
            }
            AssertSame(Run, new[] { "y", "dGateUp" }, $"overwrite={overwrite}");
        }
    }

    [Theory]
    [InlineData(3, 5)]
    [InlineData(100, 200)]
    [InlineData(40, 1000)]
    public void AddRow_and_its_backward_are_bit_identical_on_any_thread_count(int n, int c)
    {
        var rng = new Rng(104);
        float[] x = TestTensors.Normal(rng, n * c), row = TestTensors.Normal(rng, c), dRow0 = TestTensors.Normal(rng, c);
        float[][] Run(int threads)
        {
            float[] y = (float[])x.Clone(), dRow = (float[])dRow0.Clone();
            using (new ThreadSettings(threads))
            {
                Embedding.AddRow(y, row, n, c);
                Embedding.AddRowBackward(x, dRow, n, c);
            }
            return new[] { y, dRow };
        }
        AssertSame(Run, new[] { "x + row", "dRow" }, "");
    }

    [Fact]
    public void The_kernels_allocate_nothing_on_the_caller_or_the_worker()
    {
        const int n = 64, c = 96, hidden = 160;
        var rng = new Rng(105);
        float[] x = TestTensors.Normal(rng, n * c), weight = TestTensors.Normal(rng, c), y = new float[n * c], stats = new float[n];
        float[] dx = new float[n * c], dw = new float[c];
        float[] gateUp = TestTensors.Normal(rng, n * 2 * hidden), act = new float[n * hidden], dGateUp = new float[gateUp.Length];
        void Step()
        {
            RmsNorm.Forward(x, weight, y, stats, n, c, 1e-6f);
            RmsNorm.Backward(y, x, weight, stats, dx, dw, n, c, overwriteDx: true);
            L2Normalize.Forward(x, y, stats, n, c);
            L2Normalize.Backward(x, y, stats, dx, n, c);
            Activations.GeluTanhForward(x, y);
            Activations.GeluTanhBackward(x, x, dx, overwriteDx: true);
            Activations.SiluForward(x, y);
            Activations.SiluBackward(x, x, dx);
            Activations.SwiGluForward(gateUp, act, n, hidden);
            Activations.SwiGluBackward(act, gateUp, dGateUp, n, hidden, overwriteDGateUp: true);
            Embedding.AddRow(y, weight, n, c);
            Embedding.AddRowBackward(dx, dw, n, c);
        }

        using (new ThreadSettings(2))
        {
            Step(); // starts the worker and compiles everything
            Step();
            long before = GC.GetAllocatedBytesForCurrentThread(), beforeWorkers = WorkerPool.WorkerAllocatedBytes;
            for (int i = 0; i < 50; i++) Step();
            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
            Assert.True(WorkerPool.WorkerCount >= 1, "no worker thread was started");
            Assert.Equal(0, WorkerPool.WorkerAllocatedBytes - beforeWorkers);
        }
    }

    private static void AssertSame(Func<int, float[][]> run, string[] names, string what)
    {
        float[][] expected = run(1);
        foreach (int threads in ThreadCounts)
        {
            float[][] actual = run(threads);
            for (int k = 0; k < names.Length; k++)
                ThreadSettings.AssertBitIdentical(expected[k], actual[k], $"{what} threads={threads} {names[k]}");
        }
    }
}
