using System;
using System.Collections.Generic;
using TransformerGen.Kernels;
using TransformerGen.Tests.Kernels;
using TransformerGen.Threading;
using Xunit;

namespace TransformerGen.Tests.Threading;

/// <summary>
/// Every kernel that splits its work between threads gives bit-identical results with 1, 2, 3 and 4 threads, on
/// every SIMD path, with the work threshold lowered so that even the smallest shapes are split; and the split kernels
/// allocate nothing once the workers exist.
/// </summary>
[Collection(ThreadSettingsCollection.Name)]
public sealed class ParallelKernelTests
{
    private static readonly int[] ThreadCounts = { 2, 3, 4 };

    // Rows and features not multiples of 4, one row (decoding: the split goes over output features), more rows than
    // one 64-row tile, inner dimensions around the vector widths, and fewer rows or features than threads.
    public static IEnumerable<object[]> MatMulShapes() => new[]
    {
        new object[] { 1, 17, 5 }, new object[] { 17, 33, 65 }, new object[] { 66, 48, 12 }, new object[] { 130, 70, 67 },
        new object[] { 1, 300, 130 }, new object[] { 3, 64, 257 }, new object[] { 200, 40, 9 }, new object[] { 257, 20, 3 },
        new object[] { 2, 5, 2 }, new object[] { 139, 129, 133 }, new object[] { 260, 270, 65 },
    };

    private static IEnumerable<SimdPath> SupportedPaths()
    {
        foreach (SimdPath path in Enum.GetValues<SimdPath>())
            if (Simd.IsSupported(path)) yield return path;
    }

    [Theory]
    [MemberData(nameof(MatMulShapes))]
    public void MatMul_forward_is_bit_identical_on_any_thread_count(int n, int inF, int outF)
    {
        var rng = new Rng(11);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF), b = TestTensors.Normal(rng, outF);
        foreach (SimdPath path in SupportedPaths())
            foreach (bool withBias in new[] { true, false })
            {
                float[] Run(int threads)
                {
                    var y = new float[n * outF];
                    using (new ThreadSettings(threads))
                        MatMul.Forward(x, w, withBias ? b : ReadOnlySpan<float>.Empty, y, n, inF, outF, path);
                    return y;
                }
                float[] expected = Run(1);
                foreach (int threads in ThreadCounts)
                    ThreadSettings.AssertBitIdentical(expected, Run(threads), $"{path} bias={withBias} threads={threads} y");
            }
    }

    [Theory]
    [MemberData(nameof(MatMulShapes))]
    public void MatMul_backward_is_bit_identical_on_any_thread_count(int n, int inF, int outF)
    {
        var rng = new Rng(12);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF), dy = TestTensors.Normal(rng, n * outF);
        float[] dx0 = TestTensors.Normal(rng, n * inF), dw0 = TestTensors.Normal(rng, outF * inF), db0 = TestTensors.Normal(rng, outF);
        foreach (SimdPath path in SupportedPaths())
            foreach ((bool withInputGradient, bool overwriteDx) in new[] { (true, false), (true, true), (false, false) })
                foreach (bool withBias in new[] { true, false })
                {
                    (float[] Dx, float[] Dw, float[] Db) Run(int threads)
                    {
                        float[] dx = (float[])dx0.Clone(), dw = (float[])dw0.Clone(), db = (float[])db0.Clone();
                        using (new ThreadSettings(threads))
                            MatMul.Backward(dy, x, w, withInputGradient ? dx : Span<float>.Empty, dw, withBias ? db : Span<float>.Empty, n, inF, outF, path, overwriteDx);
                        return (dx, dw, db);
                    }
                    var expected = Run(1);
                    foreach (int threads in ThreadCounts)
                    {
                        var actual = Run(threads);
                        string what = $"{path} dx={withInputGradient} overwrite={overwriteDx} bias={withBias} threads={threads}";
                        ThreadSettings.AssertBitIdentical(expected.Dx, actual.Dx, what + " dx");
                        ThreadSettings.AssertBitIdentical(expected.Dw, actual.Dw, what + " dw");
                        ThreadSettings.AssertBitIdentical(expected.Db, actual.Db, what + " dbias");
                    }
                }
    }

    // (batch, seqLen, heads, headDim): one pair, more pairs than threads, head sizes off the vector widths, and
    // sequences long enough that backward walks its scratch in several chunks.
    public static IEnumerable<object[]> AttentionShapes() => new[]
    {
        new object[] { 1, 1, 1, 4 }, new object[] { 2, 5, 3, 4 }, new object[] { 3, 37, 2, 8 },
        new object[] { 1, 70, 4, 16 }, new object[] { 2, 130, 2, 5 },
    };

    [Theory]
    [MemberData(nameof(AttentionShapes))]
    public void Attention_forward_and_backward_are_bit_identical_on_any_thread_count(int batch, int seqLen, int heads, int headDim)
    {
        int c = heads * headDim;
        var rng = new Rng(13);
        float[] qkv = TestTensors.Normal(rng, batch * seqLen * 3 * c), dOut = TestTensors.Normal(rng, batch * seqLen * c);
        float[] dQkv0 = TestTensors.Normal(rng, qkv.Length);
        foreach ((bool causal, bool overwrite) in new[] { (true, false), (false, false), (true, true) })
            foreach (int scratchFloats in new[] { 0, 3 * seqLen + 1 })
            {
                (float[] Out, float[] Probs, float[] DQkv) Run(int threads)
                {
                    var output = new float[batch * seqLen * c];
                    var probs = new float[batch * heads * seqLen * seqLen];
                    float[] dQkv = (float[])dQkv0.Clone();
                    using (new ThreadSettings(threads))
                    {
                        Attention.Forward(qkv, output, probs, batch, seqLen, heads, headDim, causal);
                        if (scratchFloats == 0) Attention.Backward(dOut, qkv, probs, dQkv, batch, seqLen, heads, headDim, causal, overwrite);
                        else Attention.Backward(dOut, qkv, probs, dQkv, batch, seqLen, heads, headDim, causal, new float[scratchFloats], overwrite);
                    }
                    return (output, probs, dQkv);
                }
                var expected = Run(1);
                foreach (int threads in ThreadCounts)
                {
                    var actual = Run(threads);
                    string what = $"causal={causal} overwrite={overwrite} scratch={scratchFloats} threads={threads}";
                    ThreadSettings.AssertBitIdentical(expected.Out, actual.Out, what + " output");
                    ThreadSettings.AssertBitIdentical(expected.Probs, actual.Probs, what + " probabilities");
                    ThreadSettings.AssertBitIdentical(expected.DQkv, actual.DQkv, what + " dQkv");
                }
            }
    }

    // Cross-attention (queries and keys of different lengths and strides), key padding at both ends and inside, a
    // window with and without the causal mask; 3 heads so that items start in the middle of a sequence.
    [Theory]
    [InlineData(0, 0)]
    [InlineData(2, 3)]
    [InlineData(0, 2)]
    public void Cached_attention_of_several_sequences_is_each_sequence_alone_on_any_thread_count(int window, int kvHeads)
    {
        // Three sequences in slots 2, 0 and 3 of four, with 5, 1 and 12 cached positions and 3, 1 and 7 new rows.
        const int heads = 6, headDim = 5, maxLen = 23;
        int[] lengths = [3, 1, 7], positions = [5, 1, 12], slots = [2, 0, 3];
        int kvC = (kvHeads == 0 ? heads : kvHeads) * headDim, c = heads * headDim, qStride = c + 2 * kvC, n = 11;
        int keyOffset = 7, valueOffset = keyOffset + maxLen * kvC, slotLength = valueOffset + maxLen * kvC + 3;
        var rng = new Rng(31);
        float[] q = TestTensors.Normal(rng, n * qStride), caches = TestTensors.Normal(rng, 4 * slotLength);

        var expected = new float[n * c];
        for (int s = 0, row = 0; s < 3; row += lengths[s++])
        {
            ReadOnlySpan<float> slot = caches.AsSpan(slots[s] * slotLength, slotLength);
            Attention.ForwardCached(q.AsSpan(row * qStride), qStride, slot.Slice(keyOffset, maxLen * kvC), slot.Slice(valueOffset, maxLen * kvC),
                expected.AsSpan(row * c, lengths[s] * c), new float[maxLen], positions[s], lengths[s], heads, headDim, window, kvHeads);
        }
        Assert.Contains(expected, x => x != 0);
        foreach (int threads in new[] { 1, 2, 3, 4 })
        {
            var output = new float[n * c];
            using (new ThreadSettings(threads))
                Attention.ForwardCachedSequences(q, qStride, caches, slotLength, keyOffset, valueOffset, output, new float[maxLen], lengths, positions, slots, heads, headDim, window, kvHeads);
            ThreadSettings.AssertBitIdentical(expected, output, $"threads={threads} output");
        }
        // A slot outside the caches, or a cache too short for a sequence's positions, is refused.
        Assert.Throws<ArgumentOutOfRangeException>(() => Attention.ForwardCachedSequences(q, qStride, caches, slotLength, keyOffset, valueOffset, new float[n * c], new float[maxLen],
            lengths, positions, [2, 0, 4], heads, headDim, window, kvHeads));
        Assert.ThrowsAny<ArgumentException>(() => Attention.ForwardCachedSequences(q, qStride, caches, slotLength, keyOffset, valueOffset, new float[n * c], new float[maxLen],
            lengths, [5, 1, 17], slots, heads, headDim, window, kvHeads));
    }

    [Theory]
    [InlineData(3, 7, 11, 3, 5, false, 0)]
    [InlineData(2, 13, 13, 3, 4, true, 2)]
    [InlineData(4, 9, 6, 2, 7, false, 3)]
    public void General_attention_with_masks_is_bit_identical_on_any_thread_count(int batch, int queryLen, int keyLen, int heads, int headDim, bool causal, int window)
    {
        int c = heads * headDim, qStride = c + 3, kvStride = 2 * c + 1;
        var rng = new Rng(29);
        float[] q = TestTensors.Normal(rng, batch * queryLen * qStride), kv = TestTensors.Normal(rng, batch * keyLen * kvStride);
        float[] dOut = TestTensors.Normal(rng, batch * queryLen * c);
        float[] dq0 = TestTensors.Normal(rng, q.Length), dkv0 = TestTensors.Normal(rng, kv.Length);
        var padding = new byte[batch * keyLen];
        for (int b = 0; b < batch; b++)
        {
            padding[b * keyLen + keyLen - 1 - b % keyLen] = 1; // one padded key per sequence, moving from the end inwards
            if (b == 1) padding.AsSpan(b * keyLen, keyLen).Fill(1); // a sequence that is all padding
        }
        (float[] Out, float[] Probs, float[] Dq, float[] Dkv) Run(int threads)
        {
            var output = new float[batch * queryLen * c];
            var probs = new float[batch * heads * queryLen * keyLen];
            float[] dq = (float[])dq0.Clone(), dkv = (float[])dkv0.Clone();
            using (new ThreadSettings(threads))
            {
                Attention.Forward(q, qStride, kv, kv.AsSpan(c), kvStride, padding, output, probs, batch, queryLen, keyLen, heads, headDim, causal, window);
                Attention.Backward(dOut, q, qStride, kv, kv.AsSpan(c), kvStride, probs, dq, dkv, dkv.AsSpan(c), batch, queryLen, keyLen, heads, headDim);
            }
            return (output, probs, dq, dkv);
        }
        var expected = Run(1);
        Assert.Contains(expected.Out, x => x != 0);
        foreach (int threads in ThreadCounts)
        {
            var actual = Run(threads);
            string what = $"threads={threads}";
            ThreadSettings.AssertBitIdentical(expected.Out, actual.Out, what + " output");
            ThreadSettings.AssertBitIdentical(expected.Probs, actual.Probs, what + " probabilities");
            ThreadSettings.AssertBitIdentical(expected.Dq, actual.Dq, what + " dq");
            ThreadSettings.AssertBitIdentical(expected.Dkv, actual.Dkv, what + " dk and dv");
        }
    }

    [Theory]
    [InlineData(37)]
    [InlineData(16384)]
    [InlineData(3 * 16384 + 45)]
    public void Gelu_forward_and_backward_are_bit_identical_on_any_thread_count(int length)
    {
        var rng = new Rng(16);
        float[] x = TestTensors.Normal(rng, length, 2f), dy = TestTensors.Normal(rng, length), dx0 = TestTensors.Normal(rng, length);
        (float[] Y, float[] Dx, float[] DxFromY) Run(int threads)
        {
            float[] y = new float[length], dx = (float[])dx0.Clone(), dxFromY = (float[])dx0.Clone();
            using (new ThreadSettings(threads))
            {
                Activations.GeluForward(x, y);
                Activations.GeluBackward(dy, x, dx);
                Activations.GeluBackward(dy, x, y, dxFromY);
            }
            return (y, dx, dxFromY);
        }
        var expected = Run(1);
        foreach (int threads in ThreadCounts)
        {
            var actual = Run(threads);
            ThreadSettings.AssertBitIdentical(expected.Y, actual.Y, $"threads={threads} y");
            ThreadSettings.AssertBitIdentical(expected.Dx, actual.Dx, $"threads={threads} dx");
            ThreadSettings.AssertBitIdentical(expected.DxFromY, actual.DxFromY, $"threads={threads} dx from y");
        }
    }

    [Theory]
    [InlineData(1, 5)]
    [InlineData(33, 37)]   // one row past a block, a width off the vector widths
    [InlineData(100, 200)] // several row blocks and column blocks, the last ones partial
    public void LayerNorm_forward_and_backward_are_bit_identical_on_any_thread_count(int n, int c)
    {
        var rng = new Rng(17);
        float[] x = TestTensors.Normal(rng, n * c, 3f), gamma = TestTensors.Normal(rng, c), beta = TestTensors.Normal(rng, c), dy = TestTensors.Normal(rng, n * c);
        float[] dx0 = TestTensors.Normal(rng, n * c), dg0 = TestTensors.Normal(rng, c), db0 = TestTensors.Normal(rng, c);
        foreach (bool overwrite in new[] { false, true })
        {
            float[][] Run(int threads)
            {
                float[] y = new float[n * c], mean = new float[n], rstd = new float[n];
                float[] dx = (float[])dx0.Clone(), dg = (float[])dg0.Clone(), db = (float[])db0.Clone();
                using (new ThreadSettings(threads))
                {
                    LayerNorm.Forward(x, gamma, beta, y, mean, rstd, n, c);
                    LayerNorm.Backward(dy, x, gamma, mean, rstd, dx, dg, db, n, c, overwrite);
                }
                return new[] { y, mean, rstd, dx, dg, db };
            }
            string[] names = { "y", "mean", "rstd", "dx", "dgamma", "dbeta" };
            float[][] expected = Run(1);
            foreach (int threads in ThreadCounts)
            {
                float[][] actual = Run(threads);
                for (int k = 0; k < names.Length; k++)
                    ThreadSettings.AssertBitIdentical(expected[k], actual[k], $"overwrite={overwrite} threads={threads} {names[k]}");
            }
        }
    }

    [Theory]
    [InlineData(37)]
    [InlineData(3 * 16384 + 45)]
    public void Residual_add_and_backward_are_bit_identical_on_any_thread_count(int length)
    {
        var rng = new Rng(18);
        float[] a = TestTensors.Normal(rng, length), b = TestTensors.Normal(rng, length), da0 = TestTensors.Normal(rng, length);
        float[][] Run(int threads)
        {
            float[] y = new float[length], da = (float[])da0.Clone(), db = new float[length];
            using (new ThreadSettings(threads))
            {
                Residual.Add(a, b, y);
                Residual.Backward(y, da, db, overwriteDb: true);
            }
            return new[] { y, da, db };
        }
        float[][] expected = Run(1);
        foreach (int threads in ThreadCounts)
        {
            float[][] actual = Run(threads);
            ThreadSettings.AssertBitIdentical(expected[0], actual[0], $"threads={threads} y");
            ThreadSettings.AssertBitIdentical(expected[1], actual[1], $"threads={threads} da");
            ThreadSettings.AssertBitIdentical(expected[2], actual[2], $"threads={threads} db");
        }
    }

    [Theory]
    [InlineData(1, 7, 0f)]
    [InlineData(37, 19, 0.1f)]    // blocks of 16 rows, the last partial
    [InlineData(2100, 5, 0.2f)]   // more rows than 1024 blocks of 16: larger blocks
    public void Cross_entropy_is_bit_identical_on_any_thread_count(int n, int vocab, float smoothing)
    {
        var rng = new Rng(19);
        float[] logits = TestTensors.Normal(rng, n * vocab, 2f), d0 = TestTensors.Normal(rng, n * vocab);
        var targets = new int[n];
        for (int i = 0; i < n; i++) targets[i] = i % 7 == 3 ? -1 : (i * 5) % vocab;
        foreach (bool overwrite in new[] { false, true })
        {
            (float Loss, float[] Probs, float[] D) Run(int threads)
            {
                float[] probs = new float[n * vocab], d = (float[])d0.Clone();
                float loss;
                using (new ThreadSettings(threads))
                {
                    loss = CrossEntropy.Forward(logits, targets, probs, n, vocab, smoothing);
                    CrossEntropy.Backward(probs, targets, d, n, vocab, smoothing, overwriteDLogits: overwrite);
                }
                return (loss, probs, d);
            }
            var expected = Run(1);
            foreach (int threads in ThreadCounts)
            {
                var actual = Run(threads);
                ThreadSettings.AssertBitIdentical(new[] { expected.Loss }, new[] { actual.Loss }, $"overwrite={overwrite} threads={threads} loss");
                ThreadSettings.AssertBitIdentical(expected.Probs, actual.Probs, $"overwrite={overwrite} threads={threads} probabilities");
                ThreadSettings.AssertBitIdentical(expected.D, actual.D, $"overwrite={overwrite} threads={threads} dLogits");
            }
        }
    }

    [Theory]
    [InlineData(37)]
    [InlineData(16384)]
    [InlineData(5 * 16384 + 45)]
    public void Clearing_on_several_threads_zeroes_exactly_the_span(int length)
    {
        foreach (int threads in ThreadCounts)
        {
            float[] buffer = new float[length + 2];
            Array.Fill(buffer, 7f);
            using (new ThreadSettings(threads))
                Elementwise.ClearSplit(buffer.AsSpan(1, length));
            Assert.Equal(7f, buffer[0]);
            Assert.Equal(7f, buffer[^1]);
            for (int i = 1; i <= length; i++)
                Assert.True(buffer[i] == 0f, $"threads={threads}: element {i - 1} of {length} is {buffer[i]}");
        }
    }

    [Theory]
    [InlineData(37)]
    [InlineData(65536)]
    [InlineData(3 * 65536 + 45)]
    public void AdamW_update_is_bit_identical_on_any_thread_count(int length)
    {
        var rng = new Rng(14);
        float[] p0 = TestTensors.Normal(rng, length), g = TestTensors.Normal(rng, length), m0 = TestTensors.Normal(rng, length, 0.1f);
        float[] v0 = TestTensors.Uniform(rng, length, 0f, 0.2f);
        var c = new AdamWKernel.Coefficients(0.999f, 0.9f, 0.1f, 0.95f, 0.05f, 1e-3f, 0.3f, 1e-8f);
        (float[] P, float[] M, float[] V) Run(int threads)
        {
            float[] p = (float[])p0.Clone(), m = (float[])m0.Clone(), v = (float[])v0.Clone();
            using (new ThreadSettings(threads))
                AdamWKernel.UpdateSplit(p, g, m, v, c);
            return (p, m, v);
        }
        var expected = Run(1);
        foreach (int threads in ThreadCounts)
        {
            var actual = Run(threads);
            ThreadSettings.AssertBitIdentical(expected.P, actual.P, $"threads={threads} parameters");
            ThreadSettings.AssertBitIdentical(expected.M, actual.M, $"threads={threads} first moment");
            ThreadSettings.AssertBitIdentical(expected.V, actual.V, $"threads={threads} second moment");
        }
    }

    [Fact]
    public void Split_kernels_allocate_nothing_on_the_caller_or_the_worker()
    {
        const int n = 96, inF = 64, outF = 80, batch = 2, seqLen = 24, heads = 4, headDim = 8, c = heads * headDim;
        var rng = new Rng(15);
        float[] x = TestTensors.Normal(rng, n * inF), w = TestTensors.Normal(rng, outF * inF), b = TestTensors.Normal(rng, outF);
        float[] y = new float[n * outF], dx = new float[n * inF], dw = new float[outF * inF], db = new float[outF];
        float[] qkv = TestTensors.Normal(rng, batch * seqLen * 3 * c), output = new float[batch * seqLen * c];
        float[] probs = new float[batch * heads * seqLen * seqLen], dQkv = new float[qkv.Length];
        float[] p = TestTensors.Normal(rng, 200_000), g = TestTensors.Normal(rng, p.Length), m = new float[p.Length], v = new float[p.Length];
        float[] hidden = TestTensors.Normal(rng, 40_000), activated = new float[hidden.Length];
        int[] targets = new int[n];
        for (int i = 0; i < n; i++) targets[i] = i % 5 == 0 ? -1 : i % inF;
        float[] gamma = TestTensors.Normal(rng, inF), beta = TestTensors.Normal(rng, inF), normed = new float[n * inF], mean = new float[n], rstd = new float[n];
        var coefficients = new AdamWKernel.Coefficients(1f, 0.9f, 0.1f, 0.95f, 0.05f, 1e-6f, 0.3f, 1e-8f);
        void Step()
        {
            MatMul.Forward(x, w, b, y, n, inF, outF);
            MatMul.Backward(y, x, w, dx, dw, db, n, inF, outF);
            Attention.Forward(qkv, output, probs, batch, seqLen, heads, headDim, causal: true);
            Attention.Backward(output, qkv, probs, dQkv, batch, seqLen, heads, headDim, causal: true);
            AdamWKernel.UpdateSplit(p, g, m, v, coefficients);
            Activations.GeluForward(hidden, activated);
            Activations.GeluBackward(activated, hidden, activated);
            LayerNorm.Forward(x, gamma, beta, normed, mean, rstd, n, inF);
            LayerNorm.Backward(normed, x, gamma, mean, rstd, dx, dw.AsSpan(0, inF), db.AsSpan(0, inF), n, inF, overwriteDx: true);
            Residual.Add(hidden, activated, activated);
            Residual.Backward(hidden, activated, p.AsSpan(0, hidden.Length), overwriteDa: true);
            CrossEntropy.Forward(x, targets, normed, n, inF, 0.1f);
            CrossEntropy.Backward(normed, targets, dx, n, inF, 0.1f, overwriteDLogits: true);
        }

        using (new ThreadSettings(2))
        {
            Step(); // starts the worker and compiles everything
            Step();
            // The workers' own count, not all threads': that would include the test runner's threads too.
            long before = GC.GetAllocatedBytesForCurrentThread(), beforeWorkers = WorkerPool.WorkerAllocatedBytes;
            for (int i = 0; i < 50; i++) Step();
            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
            Assert.True(WorkerPool.WorkerCount >= 1, "no worker thread was started");
            Assert.Equal(0, WorkerPool.WorkerAllocatedBytes - beforeWorkers);
        }
    }
}
