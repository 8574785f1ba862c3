using System;
using System.Linq;
using TransformerGen.Kernels;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Tests.Kernels;

/// <summary>
/// A score factor other than 1/√headDim (Gemma 3's query_pre_attn_scalar^−½) reaches every attention kernel: the tiled
/// forward and backward, the exact-length sequences and the cached decode agree with the stored-probabilities kernels
/// given the same factor, and differ from the default. Grouped heads, a window, odd sizes.
/// </summary>
public sealed class AttentionScaleTests(ITestOutputHelper output)
{
    private const int Batch = 2, Length = 11, Heads = 3, KvHeads = 1, HeadDim = 10, Window = 3;
    private const int C = Heads * HeadDim, KvC = KvHeads * HeadDim, Stride = C + 2 * KvC;
    private static readonly float Scale = (float)(1 / Math.Sqrt(12));

    private static float[] Random(int count, ulong seed)
    {
        var rng = new Rng(seed);
        return Enumerable.Range(0, count).Select(_ => rng.NextNormal()).ToArray();
    }

    private static double RelativeMax(float[] actual, float[] expected)
    {
        double scale = expected.Max(v => Math.Abs((double)v)), worst = 0;
        for (int i = 0; i < actual.Length; i++) worst = Math.Max(worst, Math.Abs((double)actual[i] - expected[i]));
        return worst / scale;
    }

    [Fact]
    public void Tiled_forward_and_backward_take_the_factor_the_stored_kernels_take()
    {
        float[] qkv = Random(Batch * Length * Stride, 91), dOut = Random(Batch * Length * C, 92);
        var stored = new float[Batch * Length * C];
        var probabilities = new float[Batch * Heads * Length * Length];
        Attention.Forward(qkv, Stride, qkv.AsSpan(C), qkv.AsSpan(C + KvC), Stride, default, stored, probabilities, Batch, Length, Length, Heads, HeadDim,
            causal: true, window: Window, kvHeads: KvHeads, scale: Scale);
        var tiled = new float[Batch * Length * C];
        var statistics = new float[Attention.FlashStatisticsLength(Batch, Heads, Length)];
        Attention.FlashForward(qkv, Stride, qkv.AsSpan(C), qkv.AsSpan(C + KvC), Stride, default, tiled, statistics, Batch, Length, Length, Heads, HeadDim,
            causal: true, window: Window, kvHeads: KvHeads, scale: Scale);
        var plain = new float[Batch * Length * C];
        Attention.FlashForward(qkv, Stride, qkv.AsSpan(C), qkv.AsSpan(C + KvC), Stride, default, plain, new float[statistics.Length], Batch, Length, Length, Heads, HeadDim,
            causal: true, window: Window, kvHeads: KvHeads);
        double forward = RelativeMax(tiled, stored), fromDefault = RelativeMax(plain, stored);
        Assert.True(forward < 1e-6, $"tiled forward {forward:E2}");
        Assert.True(fromDefault > 1e-3, $"the default factor gave the same output ({fromDefault:E2})");

        float[] dqkvStored = new float[qkv.Length], dqkvTiled = new float[qkv.Length];
        Attention.Backward(dOut, qkv, Stride, qkv.AsSpan(C), qkv.AsSpan(C + KvC), Stride, probabilities, dqkvStored, dqkvStored.AsSpan(C), dqkvStored.AsSpan(C + KvC),
            Batch, Length, Length, Heads, HeadDim, kvHeads: KvHeads, scale: Scale);
        Attention.FlashBackward(dOut, qkv, Stride, qkv.AsSpan(C), qkv.AsSpan(C + KvC), Stride, default, tiled, statistics, dqkvTiled, dqkvTiled.AsSpan(C), dqkvTiled.AsSpan(C + KvC),
            Batch, Length, Length, Heads, HeadDim, causal: true, window: Window, kvHeads: KvHeads, scale: Scale);
        double backward = RelativeMax(dqkvTiled, dqkvStored);
        output.WriteLine($"tiled forward {forward:E2}, backward {backward:E2}; the default factor {fromDefault:E2} away");
        Assert.True(backward < 1e-5, $"tiled backward {backward:E2}");
    }

    [Fact]
    public void Exact_length_sequences_and_the_cached_decode_take_the_factor()
    {
        int[] lengths = [Length, 6];
        int n = lengths.Sum();
        float[] qkv = Random(n * Stride, 93);
        // Each sequence alone through the stored kernel, causal with the window.
        var expected = new float[n * C];
        int row = 0;
        foreach (int length in lengths)
        {
            ReadOnlySpan<float> rows = qkv.AsSpan(row * Stride, length * Stride);
            Attention.Forward(rows, Stride, rows.Slice(C), rows.Slice(C + KvC), Stride, default, expected.AsSpan(row * C, length * C), new float[Heads * length * length],
                1, length, length, Heads, HeadDim, causal: true, window: Window, kvHeads: KvHeads, scale: Scale);
            row += length;
        }

        var tiled = new float[n * C];
        Attention.FlashForwardSequences(qkv, Stride, qkv.AsSpan(C), qkv.AsSpan(C + KvC), Stride, default, tiled, lengths, Heads, HeadDim,
            causal: true, window: Window, kvHeads: KvHeads, scale: Scale);
        Assert.True(RelativeMax(tiled, expected) < 1e-6, $"tiled sequences {RelativeMax(tiled, expected):E2}");

        // The cached decode: each sequence's keys and values in its own slot, all its queries at once from position 0.
        int slotLength = 2 * Length * KvC;
        var caches = new float[lengths.Length * slotLength];
        row = 0;
        for (int s = 0; s < lengths.Length; row += lengths[s++])
            for (int i = 0; i < lengths[s]; i++)
            {
                qkv.AsSpan((row + i) * Stride + C, KvC).CopyTo(caches.AsSpan(s * slotLength + i * KvC));
                qkv.AsSpan((row + i) * Stride + C + KvC, KvC).CopyTo(caches.AsSpan(s * slotLength + Length * KvC + i * KvC));
            }
        var cached = new float[n * C];
        Attention.ForwardCachedSequences(qkv, Stride, caches, slotLength, 0, Length * KvC, cached, new float[Length], lengths, [0, 0], [0, 1],
            Heads, HeadDim, window: Window, kvHeads: KvHeads, scale: Scale);
        double cachedError = RelativeMax(cached, expected);
        output.WriteLine($"tiled sequences {RelativeMax(tiled, expected):E2}, cached {cachedError:E2}");
        Assert.True(cachedError < 1e-6, $"cached {cachedError:E2}");

        Assert.Throws<ArgumentOutOfRangeException>(() => Attention.ForwardCachedSequences(qkv, Stride, caches, slotLength, 0, Length * KvC, cached, new float[Length],
            lengths, [0, 0], [0, 1], Heads, HeadDim, kvHeads: KvHeads, scale: -1f));
    }
}
