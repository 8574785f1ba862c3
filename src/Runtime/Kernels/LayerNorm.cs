using System;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace TransformerGen.Kernels;

/// <summary>
/// PyTorch's <c>nn.LayerNorm(c)</c> over the last dimension: per row, <c>y = (x − mean)·rstd·gamma + beta</c> with
/// <c>rstd = 1/√(var + eps)</c> and the biased variance (divide by c).
/// </summary>
public static class LayerNorm
{
    /// <summary>
    /// Normalizes each of the <paramref name="n"/> rows of width <paramref name="c"/> and saves the per-row
    /// <paramref name="mean"/> and <paramref name="rstd"/> for <see cref="Backward"/>. Overwrites the outputs.
    /// </summary>
    /// <param name="x">Input <c>[n, c]</c>.</param>
    /// <param name="gamma">Scale <c>[c]</c>.</param>
    /// <param name="beta">Shift <c>[c]</c>.</param>
    /// <param name="y">Output <c>[n, c]</c>; must not overlap <paramref name="x"/>.</param>
    /// <param name="mean">Saved row means <c>[n]</c>.</param>
    /// <param name="rstd">Saved reciprocal standard deviations <c>[n]</c>.</param>
    /// <param name="n">Rows.</param>
    /// <param name="c">Row width (channels).</param>
    /// <param name="eps">Added to the variance, 1e-5 as in PyTorch.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y, Span<float> mean, Span<float> rstd, int n, int c, float eps = 1e-5f)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.Positive(c, nameof(c));
        SpanChecks.Length(x.Length, (long)n * c, nameof(x));
        SpanChecks.Length(gamma.Length, c, nameof(gamma));
        SpanChecks.Length(beta.Length, c, nameof(beta));
        SpanChecks.Length(y.Length, (long)n * c, nameof(y));
        SpanChecks.Length(mean.Length, n, nameof(mean));
        SpanChecks.Length(rstd.Length, n, nameof(rstd));

        for (int i = 0; i < n; i++)
        {
            ReadOnlySpan<float> xRow = x.Slice(i * c, c);
            Span<float> yRow = y.Slice(i * c, c);
            float rowMean = TensorPrimitives.Sum(xRow) / c;
            // Two passes (centre, then square) rather than E[x²] − E[x]², which cancels when |mean| ≫ std.
            // The output row doubles as the scratch for the centred values.
            TensorPrimitives.Subtract(xRow, rowMean, yRow);
            float variance = TensorPrimitives.SumOfSquares(yRow) / c;
            float rowRstd = 1f / MathF.Sqrt(variance + eps);
            TensorPrimitives.Multiply(yRow, rowRstd, yRow);
            TensorPrimitives.MultiplyAdd(yRow, gamma, beta, yRow);
            mean[i] = rowMean;
            rstd[i] = rowRstd;
        }
    }

    /// <summary>
    /// Accumulates the gradients of <see cref="Forward"/> (reference: llm.c <c>layernorm_backward</c>). With
    /// x̂ = (x − mean)·rstd and g = dy·gamma, per row:
    /// <c>dx += rstd·(g − mean(g) − x̂·mean(g·x̂))</c>, <c>dgamma += dy·x̂</c>, <c>dbeta += dy</c>.
    /// </summary>
    /// <param name="dy">Gradient of the output <c>[n, c]</c>.</param>
    /// <param name="x">The forward input <c>[n, c]</c>.</param>
    /// <param name="gamma">Scale <c>[c]</c>.</param>
    /// <param name="mean">Row means saved by forward <c>[n]</c>.</param>
    /// <param name="rstd">Reciprocal standard deviations saved by forward <c>[n]</c>.</param>
    /// <param name="dx">Gradient of the input <c>[n, c]</c> (accumulated).</param>
    /// <param name="dgamma">Gradient of gamma <c>[c]</c> (accumulated).</param>
    /// <param name="dbeta">Gradient of beta <c>[c]</c> (accumulated).</param>
    /// <param name="n">Rows.</param>
    /// <param name="c">Row width.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dgamma, Span<float> dbeta, int n, int c)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.Positive(c, nameof(c));
        SpanChecks.Length(dy.Length, (long)n * c, nameof(dy));
        SpanChecks.Length(x.Length, (long)n * c, nameof(x));
        SpanChecks.Length(gamma.Length, c, nameof(gamma));
        SpanChecks.Length(mean.Length, n, nameof(mean));
        SpanChecks.Length(rstd.Length, n, nameof(rstd));
        SpanChecks.Length(dx.Length, (long)n * c, nameof(dx));
        SpanChecks.Length(dgamma.Length, c, nameof(dgamma));
        SpanChecks.Length(dbeta.Length, c, nameof(dbeta));

        int width = Vector<float>.Count;
        for (int i = 0; i < n; i++)
        {
            ReadOnlySpan<float> dyRow = dy.Slice(i * c, c);
            ReadOnlySpan<float> xRow = x.Slice(i * c, c);
            Span<float> dxRow = dx.Slice(i * c, c);
            float mu = mean[i], rs = rstd[i];

            // Pass 1: Σ g and Σ g·x̂.
            var vMu = new Vector<float>(mu);
            var vRs = new Vector<float>(rs);
            Vector<float> vSumG = Vector<float>.Zero, vSumGX = Vector<float>.Zero;
            int j = 0;
            for (; j <= c - width; j += width)
            {
                Vector<float> g = new Vector<float>(dyRow.Slice(j)) * new Vector<float>(gamma.Slice(j));
                Vector<float> xHat = (new Vector<float>(xRow.Slice(j)) - vMu) * vRs;
                vSumG += g;
                vSumGX += g * xHat;
            }
            float sumG = Vector.Sum(vSumG), sumGX = Vector.Sum(vSumGX);
            for (; j < c; j++)
            {
                float g = dyRow[j] * gamma[j];
                sumG += g;
                sumGX += g * (xRow[j] - mu) * rs;
            }
            float meanG = sumG / c, meanGX = sumGX / c;

            // Pass 2: the three accumulations.
            var vMeanG = new Vector<float>(meanG);
            var vMeanGX = new Vector<float>(meanGX);
            j = 0;
            for (; j <= c - width; j += width)
            {
                Vector<float> d = new Vector<float>(dyRow.Slice(j));
                Vector<float> xHat = (new Vector<float>(xRow.Slice(j)) - vMu) * vRs;
                Vector<float> g = d * new Vector<float>(gamma.Slice(j));
                (new Vector<float>(dxRow.Slice(j)) + vRs * (g - vMeanG - xHat * vMeanGX)).CopyTo(dxRow.Slice(j));
                (new Vector<float>(dgamma.Slice(j)) + d * xHat).CopyTo(dgamma.Slice(j));
                (new Vector<float>(dbeta.Slice(j)) + d).CopyTo(dbeta.Slice(j));
            }
            for (; j < c; j++)
            {
                float d = dyRow[j];
                float xHat = (xRow[j] - mu) * rs;
                dxRow[j] += rs * (d * gamma[j] - meanG - xHat * meanGX);
                dgamma[j] += d * xHat;
                dbeta[j] += d;
            }
        }
    }
}
