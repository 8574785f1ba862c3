using System;
using System.Collections.Generic;
using System.Linq;

namespace TransformerGen.Export.Tests;

/// <summary>
/// A BERT sentence embedder's forward pass in double precision over a model's parameters (transformers' BertModel, then
/// sentence-transformers' pooling and normalization), for one sequence without padding and token types all 0, with the
/// feed-forward's GELU as a choice: the erf form BERT's <c>hidden_act</c> "gelu" means, or ggml's fp16 table
/// (<see cref="Gpt2Reference.GgmlGelu"/>), which is what llama.cpp's <c>bert</c> applies.
/// </summary>
internal static class BertReference
{
    /// <summary>x·Φ(x), BERT's erf GELU, with Φ from <see cref="Erfc"/> (relative error below 1.2e-7: far under what the tests resolve).</summary>
    public static double ErfGelu(double x) => 0.5 * x * Erfc(-x / Math.Sqrt(2));

    /// <summary>The L2-normalized pooled embedding of <paramref name="tokens"/> (mean of every token, or the first).</summary>
    public static float[] Embedding(TransformerModel model, int heads, double eps, int[] tokens, Pooling pooling, Func<double, double> gelu)
    {
        var p = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (ParameterTensor t in model.ParameterTensors)
            p[t.Name.StartsWith("bert.", StringComparison.Ordinal) ? t.Name[5..] : t.Name] = model.Parameters.Slice(t.Offset, t.Length).ToArray();
        int n = tokens.Length, hidden = p["embeddings.LayerNorm.weight"].Length, d = hidden / heads;
        int layers = 0;
        while (p.ContainsKey($"encoder.layer.{layers}.attention.self.query.weight")) layers++;
        var x = new double[n][];
        for (int t = 0; t < n; t++)
        {
            x[t] = new double[hidden];
            for (int c = 0; c < hidden; c++)
                x[t][c] = (double)p["embeddings.word_embeddings.weight"][tokens[t] * hidden + c]
                    + p["embeddings.position_embeddings.weight"][t * hidden + c]
                    + p["embeddings.token_type_embeddings.weight"][c];
        }
        x = Norm(x, p, "embeddings.LayerNorm", eps);
        for (int l = 0; l < layers; l++)
        {
            string a = $"encoder.layer.{l}.";
            double[][] q = Linear(x, p, a + "attention.self.query"), k = Linear(x, p, a + "attention.self.key"), v = Linear(x, p, a + "attention.self.value");
            var context = new double[n][];
            for (int i = 0; i < n; i++)
            {
                context[i] = new double[hidden];
                for (int h = 0; h < heads; h++)
                {
                    var scores = new double[n];
                    for (int j = 0; j < n; j++)
                    {
                        double dot = 0;
                        for (int c = 0; c < d; c++) dot += q[i][h * d + c] * k[j][h * d + c];
                        scores[j] = dot / Math.Sqrt(d);
                    }
                    double max = scores.Max(), sum = 0;
                    for (int j = 0; j < n; j++) sum += scores[j] = Math.Exp(scores[j] - max);
                    for (int j = 0; j < n; j++)
                        for (int c = 0; c < d; c++) context[i][h * d + c] += scores[j] / sum * v[j][h * d + c];
                }
            }
            x = Norm(Add(Linear(context, p, a + "attention.output.dense"), x), p, a + "attention.output.LayerNorm", eps);
            double[][] up = Linear(x, p, a + "intermediate.dense");
            foreach (double[] row in up)
                for (int c = 0; c < row.Length; c++) row[c] = gelu(row[c]);
            x = Norm(Add(Linear(up, p, a + "output.dense"), x), p, a + "output.LayerNorm", eps);
        }
        var pooled = new double[hidden];
        if (pooling == Pooling.FirstToken) Array.Copy(x[0], pooled, hidden);
        else
            for (int c = 0; c < hidden; c++) pooled[c] = x.Average(row => row[c]);
        double norm = Math.Sqrt(pooled.Sum(v => v * v));
        return pooled.Select(v => (float)(v / Math.Max(norm, 1e-12))).ToArray();
    }

    private static double[][] Linear(double[][] x, Dictionary<string, float[]> p, string name)
    {
        float[] w = p[name + ".weight"], b = p[name + ".bias"];
        int inputs = x[0].Length, outputs = b.Length;
        return x.Select(row =>
        {
            var y = new double[outputs];
            for (int o = 0; o < outputs; o++)
            {
                double s = b[o];
                for (int i = 0; i < inputs; i++) s += (double)w[o * inputs + i] * row[i];
                y[o] = s;
            }
            return y;
        }).ToArray();
    }

    private static double[][] Add(double[][] a, double[][] b) => a.Select((row, t) => row.Select((v, c) => v + b[t][c]).ToArray()).ToArray();

    private static double[][] Norm(double[][] x, Dictionary<string, float[]> p, string name, double eps)
    {
        float[] w = p[name + ".weight"], b = p[name + ".bias"];
        return x.Select(row =>
        {
            double mean = row.Average(), variance = row.Average(v => (v - mean) * (v - mean));
            return row.Select((v, c) => (v - mean) / Math.Sqrt(variance + eps) * w[c] + b[c]).ToArray();
        }).ToArray();
    }

    /// <summary>The complementary error function by the Chebyshev-fitted exponential of Numerical Recipes' <c>erfcc</c> (relative error below 1.2e-7 everywhere).</summary>
    private static double Erfc(double x)
    {
        double z = Math.Abs(x), t = 1 / (1 + 0.5 * z);
        double r = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2 - r;
    }
}
