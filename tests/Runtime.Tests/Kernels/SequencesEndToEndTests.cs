using System;
using System.Linq;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Tests.Kernels;

// The attribute library's enums TransformerGen.Pooling and TransformerGen.Positional would win name lookup here.
using Pooling = TransformerGen.Kernels.Pooling;
using Positional = TransformerGen.Kernels.Positional;

/// <summary>
/// The kernels over sequences of different lengths laid end to end (exact-length passes) compute, for each sequence,
/// the same bits as their batched forms give that sequence alone: attention (padding, causal, window, grouped heads),
/// positions, rotary angles and pooling. Odd sizes; lengths 1 and longer than a query block included.
/// </summary>
public class SequencesEndToEndTests
{
    private static readonly int[] Lengths = [5, 1, 19, 3];

    private static float[] Random(int count, ulong seed)
    {
        var rng = new Rng(seed);
        return Enumerable.Range(0, count).Select(_ => rng.NextNormal()).ToArray();
    }

    [Theory]
    [InlineData(false, 0, 0, false)]
    [InlineData(true, 0, 0, false)]
    [InlineData(false, 2, 0, true)]
    [InlineData(false, 0, 1, true)]
    public void Attention_of_each_sequence_is_that_of_the_sequence_alone(bool causal, int window, int kvHeads, bool padding)
    {
        const int heads = 3, headDim = 7, c = heads * headDim;
        int kvC = (kvHeads == 0 ? heads : kvHeads) * headDim, stride = c + 2 * kvC, n = Lengths.Sum(), longest = Lengths.Max();
        float[] qkv = Random(n * stride, 11);
        byte[] pad = padding ? Enumerable.Range(0, n).Select(i => (byte)(i % 4 == 3 ? 1 : 0)).ToArray() : [];
        var output = new float[n * c];
        var scratch = new float[heads * longest * longest];
        Attention.ForwardSequences(qkv, stride, qkv.AsSpan(c), qkv.AsSpan(c + kvC), stride, pad, output, scratch, Lengths, heads, headDim, causal, window, kvHeads);

        int row = 0;
        foreach (int length in Lengths)
        {
            var alone = new float[length * c];
            var probabilities = new float[heads * length * length];
            ReadOnlySpan<float> rows = qkv.AsSpan(row * stride, length * stride);
            Attention.Forward(rows, stride, rows.Slice(c), rows.Slice(c + kvC), stride, padding ? pad.AsSpan(row, length) : default,
                alone, probabilities, 1, length, length, heads, headDim, causal, window, kvHeads);
            Assert.Equal(alone, output.AsSpan(row * c, length * c).ToArray());
            row += length;
        }
    }

    [Theory]
    [InlineData(0f, false)]
    [InlineData(1f, true)]
    public void A_relative_position_bias_serves_every_sequence_as_it_serves_one_alone(float scale, bool padding)
    {
        // One copy of the rows, gathered for span 23 > the longest length 19, as an encoder's bias for SeqLen 23.
        const int heads = 3, headDim = 7, c = heads * headDim, stride = 3 * c, span = 23;
        int n = Lengths.Sum(), longest = Lengths.Max();
        float[] qkv = Random(n * stride, 12), table = Random(32 * heads, 13);
        var bias = new float[heads * (2 * span - 1)];
        RelativePosition.BiasForward(table, bias, heads, span, bidirectional: true, bucketCount: 32, maxDistance: 128);
        byte[] pad = padding ? Enumerable.Range(0, n).Select(i => (byte)(i % 5 == 4 ? 1 : 0)).ToArray() : [];
        var output = new float[n * c];
        var scratch = new float[heads * longest * longest];
        Attention.ForwardSequences(qkv, stride, qkv.AsSpan(c), qkv.AsSpan(2 * c), stride, pad, output, scratch, Lengths, heads, headDim,
            scale: scale, positionBias: bias, biasSpan: span);
        var unbiased = new float[n * c];
        Attention.ForwardSequences(qkv, stride, qkv.AsSpan(c), qkv.AsSpan(2 * c), stride, pad, unbiased, scratch, Lengths, heads, headDim, scale: scale);
        Assert.NotEqual(unbiased, output);

        int row = 0;
        foreach (int length in Lengths)
        {
            var alone = new float[length * c];
            var probabilities = new float[heads * length * length];
            ReadOnlySpan<float> rows = qkv.AsSpan(row * stride, length * stride);
            Attention.Forward(rows, stride, rows.Slice(c), rows.Slice(2 * c), stride, padding ? pad.AsSpan(row, length) : default,
                alone, probabilities, 1, length, length, heads, headDim, causal: false, scale: scale, positionBias: bias, biasSpan: span);
            Assert.Equal(alone, output.AsSpan(row * c, length * c).ToArray());
            row += length;
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => Attention.ForwardSequences(qkv, stride, qkv.AsSpan(c), qkv.AsSpan(2 * c), stride, pad,
            new float[n * c], new float[heads * longest * longest], Lengths, heads, headDim, positionBias: bias.AsSpan(0, heads * 35), biasSpan: 18));
    }

    [Fact]
    public void Positions_and_rotary_angles_restart_at_each_sequence()
    {
        const int c = 10, heads = 2, headDim = 4, stride = 3 * heads * headDim;
        int n = Lengths.Sum(), longest = Lengths.Max();
        float[] table = Random(longest * c, 3), x = Random(n * c, 4), expected = (float[])x.Clone();
        var cos = new float[longest * headDim / 2];
        var sin = new float[longest * headDim / 2];
        Positional.RotaryTables(cos, sin, longest, headDim);
        float[] qkv = Random(n * stride, 5), expectedQkv = (float[])qkv.Clone(), half = (float[])qkv.Clone(), expectedHalf = (float[])qkv.Clone();

        Positional.Add(x, table, Lengths, c);
        Positional.RotaryForward(qkv, cos, sin, Lengths, heads, headDim, stride);
        Positional.RotaryHalfForward(half, cos, sin, Lengths, 2 * heads, headDim, stride);
        int row = 0;
        foreach (int length in Lengths)
        {
            Positional.Add(expected.AsSpan(row * c, length * c), table, 1, length, c);
            Positional.RotaryForward(expectedQkv.AsSpan(row * stride, length * stride), cos, sin, 1, length, heads, headDim, stride);
            Positional.RotaryHalfForward(expectedHalf.AsSpan(row * stride, length * stride), cos, sin, 1, length, 2 * heads, headDim, stride);
            row += length;
        }
        Assert.Equal(expected, x);
        Assert.Equal(expectedQkv, qkv);
        Assert.Equal(expectedHalf, half);
    }

    [Fact]
    public void Positions_and_rotary_angles_continue_each_sequence_from_its_own_first_position()
    {
        // Cached decoding: sequence s starts at positions[s] (what its cache already holds), not at 0.
        const int c = 10, heads = 2, headDim = 4, stride = 3 * heads * headDim;
        int[] positions = [7, 0, 2, 30];
        int n = Lengths.Sum(), maxLen = Lengths.Zip(positions, (l, p) => l + p).Max();
        float[] table = Random(maxLen * c, 13), x = Random(n * c, 14), expected = (float[])x.Clone();
        var cos = new float[maxLen * headDim / 2];
        var sin = new float[maxLen * headDim / 2];
        Positional.RotaryTables(cos, sin, maxLen, headDim);
        float[] qkv = Random(n * stride, 15), expectedQkv = (float[])qkv.Clone(), half = (float[])qkv.Clone(), expectedHalf = (float[])qkv.Clone();

        Positional.Add(x, table, Lengths, c, positions);
        Positional.RotaryForward(qkv, cos, sin, Lengths, heads, headDim, stride, positions);
        Positional.RotaryHalfForward(half, cos, sin, Lengths, 2 * heads, headDim, stride, positions);
        int row = 0;
        for (int s = 0; s < Lengths.Length; s++)
        {
            int length = Lengths[s];
            Positional.Add(expected.AsSpan(row * c, length * c), table, 1, length, c, positions[s]);
            Positional.RotaryForward(expectedQkv.AsSpan(row * stride, length * stride), cos, sin, 1, length, heads, headDim, stride, positions[s]);
            Positional.RotaryHalfForward(expectedHalf.AsSpan(row * stride, length * stride), cos, sin, 1, length, 2 * heads, headDim, stride, positions[s]);
            row += length;
        }
        Assert.Equal(expected, x);
        Assert.Equal(expectedQkv, qkv);
        Assert.Equal(expectedHalf, half);
        Assert.NotEqual(Random(n * c, 14), x);
        // One position per sequence, and a table long enough for the last of them.
        Assert.Throws<ArgumentException>(() => Positional.Add(x, table, Lengths, c, [1, 2]));
        Assert.ThrowsAny<ArgumentException>(() => Positional.Add(x, table, Lengths, c, [7, 0, 2, 31]));
    }

    [Fact]
    public void Pooling_gives_one_row_per_sequence()
    {
        const int c = 9;
        int n = Lengths.Sum();
        float[] x = Random(n * c, 6);
        byte[] pad = Enumerable.Range(0, n).Select(i => (byte)(i % 3 == 2 ? 1 : 0)).ToArray();
        var mean = new float[Lengths.Length * c];
        var first = new float[Lengths.Length * c];
        Pooling.MeanForward(x, pad, mean, Lengths, c);
        Pooling.FirstForward(x, first, Lengths, c);
        int row = 0;
        for (int s = 0; s < Lengths.Length; s++)
        {
            var alone = new float[c];
            Pooling.MeanForward(x.AsSpan(row * c, Lengths[s] * c), pad.AsSpan(row, Lengths[s]), alone, 1, Lengths[s], c);
            Assert.Equal(alone, mean.AsSpan(s * c, c).ToArray());
            Assert.Equal(x.AsSpan(row * c, c).ToArray(), first.AsSpan(s * c, c).ToArray());
            row += Lengths[s];
        }
    }

    [Fact]
    public void Lengths_below_one_and_spans_that_do_not_match_them_are_refused()
    {
        var x = new float[6 * 4];
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => Positional.Add(x, new float[8 * 4], [3, 0, 3], 4));
        Assert.Contains("lengths[1] = 0", error.Message);
        Assert.Throws<ArgumentException>(() => Pooling.FirstForward(x, new float[2 * 4], [3, 2], 4));
        // The scratch holds one sequence's probabilities: 2 heads · 3² = 18 floats, not 17.
        var scratch = Assert.Throws<ArgumentException>(() => Attention.ForwardSequences(new float[6 * 12], 12, new float[6 * 12], new float[6 * 12], 12, default,
            new float[6 * 4], new float[17], [3, 3], 2, 2));
        Assert.Contains("scratch", scratch.Message);
    }
}
