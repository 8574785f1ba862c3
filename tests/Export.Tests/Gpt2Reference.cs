using System;
using System.Collections.Generic;

namespace TransformerGen.Export.Tests;

/// <summary>
/// GPT-2's forward pass written out in double precision over a model's parameters (MODEL_FAMILIES.md §1.2), with its
/// GELU as a choice: the tanh form (<c>gelu_new</c>, what our model computes), or ggml's CPU GELU, which looks the input
/// up in a table of fp16 values indexed by the input rounded to fp16 (<c>GGML_GELU_FP16</c> in ggml-cpu's <c>vec.h</c>;
/// inputs at or below −10 give 0, at or above 10 themselves).
/// </summary>
internal static class Gpt2Reference
{
    public static double TanhGelu(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

    /// <summary>ggml's table entry: the float tanh GELU of the fp16 input, rounded to fp16.</summary>
    public static double GgmlGelu(double x)
    {
        float f = (float)x;
        if (f <= -10f) return 0;
        if (f >= 10f) return f;
        float h = (float)(Half)f;
        float g = 0.5f * h * (1f + MathF.Tanh(0.797884560802865f * h * (1f + 0.044715f * h * h)));
        return (float)(Half)g;
    }

    /// <summary>Next-token logits after each position of <paramref name="tokens"/>.</summary>
    public static float[][] Logits(TransformerModel model, int heads, double epsilon, int[] tokens, Func<double, double> gelu)
    {
        var p = new Dictionary<string, (float[] Values, int[] Shape)>();
        foreach (ParameterTensor t in model.ParameterTensors)
            p[t.Name.StartsWith("transformer.", StringComparison.Ordinal) ? t.Name["transformer.".Length..] : t.Name] =
                (model.Parameters.Slice(t.Offset, t.Length).ToArray(), t.Shape.ToArray());
        int vocab = p["wte.weight"].Shape[0], e = p["wte.weight"].Shape[1], d = e / heads, n = tokens.Length;
        int layers = 0;
        while (p.ContainsKey($"h.{layers}.ln_1.weight")) layers++;
        var x = new double[n][];
        for (int t = 0; t < n; t++)
        {
            x[t] = new double[e];
            for (int c = 0; c < e; c++) x[t][c] = p["wte.weight"].Values[tokens[t] * e + c] + p["wpe.weight"].Values[t * e + c];
        }
        for (int l = 0; l < layers; l++)
        {
            string h = $"h.{l}.";
            double[][] qkv = Linear(Norm(x, p[h + "ln_1.weight"].Values, p[h + "ln_1.bias"].Values, epsilon), p[h + "attn.c_attn.weight"], p[h + "attn.c_attn.bias"].Values);
            var attended = new double[n][];
            for (int t = 0; t < n; t++)
            {
                attended[t] = new double[e];
                for (int head = 0; head < heads; head++)
                {
                    var scores = new double[t + 1];
                    double max = double.NegativeInfinity, sum = 0;
                    for (int s = 0; s <= t; s++)
                    {
                        double dot = 0;
                        for (int c = 0; c < d; c++) dot += qkv[t][head * d + c] * qkv[s][e + head * d + c];
                        scores[s] = dot / Math.Sqrt(d);
                        max = Math.Max(max, scores[s]);
                    }
                    for (int s = 0; s <= t; s++) sum += scores[s] = Math.Exp(scores[s] - max);
                    for (int s = 0; s <= t; s++)
                        for (int c = 0; c < d; c++) attended[t][head * d + c] += scores[s] / sum * qkv[s][2 * e + head * d + c];
                }
            }
            Add(x, Linear(attended, p[h + "attn.c_proj.weight"], p[h + "attn.c_proj.bias"].Values));
            double[][] inner = Linear(Norm(x, p[h + "ln_2.weight"].Values, p[h + "ln_2.bias"].Values, epsilon), p[h + "mlp.c_fc.weight"], p[h + "mlp.c_fc.bias"].Values);
            foreach (double[] row in inner)
                for (int c = 0; c < row.Length; c++) row[c] = gelu(row[c]);
            Add(x, Linear(inner, p[h + "mlp.c_proj.weight"], p[h + "mlp.c_proj.bias"].Values));
        }
        double[][] final = Norm(x, p["ln_f.weight"].Values, p["ln_f.bias"].Values, epsilon);
        var logits = new float[n][];
        for (int t = 0; t < n; t++)
        {
            logits[t] = new float[vocab];
            for (int v = 0; v < vocab; v++)
            {
                double dot = 0;
                for (int c = 0; c < e; c++) dot += final[t][c] * p["wte.weight"].Values[v * e + c];
                logits[t][v] = (float)dot;
            }
        }
        return logits;
    }

    private static double[][] Norm(double[][] x, float[] weight, float[] bias, double epsilon)
    {
        var y = new double[x.Length][];
        for (int t = 0; t < x.Length; t++)
        {
            double mean = 0, variance = 0;
            foreach (double v in x[t]) mean += v;
            mean /= x[t].Length;
            foreach (double v in x[t]) variance += (v - mean) * (v - mean);
            double rstd = 1 / Math.Sqrt(variance / x[t].Length + epsilon);
            y[t] = new double[x[t].Length];
            for (int c = 0; c < y[t].Length; c++) y[t][c] = (x[t][c] - mean) * rstd * weight[c] + bias[c];
        }
        return y;
    }

    /// <summary>y = x·Wᵀ + b with W held [out, in], as the model holds GPT-2's Conv1D weights.</summary>
    private static double[][] Linear(double[][] x, (float[] Values, int[] Shape) w, float[] b)
    {
        int outputs = w.Shape[0], inputs = w.Shape[1];
        var y = new double[x.Length][];
        for (int t = 0; t < x.Length; t++)
        {
            y[t] = new double[outputs];
            for (int o = 0; o < outputs; o++)
            {
                double dot = b[o];
                for (int i = 0; i < inputs; i++) dot += x[t][i] * w.Values[o * inputs + i];
                y[t][o] = dot;
            }
        }
        return y;
    }

    private static void Add(double[][] x, double[][] y)
    {
        for (int t = 0; t < x.Length; t++)
            for (int c = 0; c < x[t].Length; c++) x[t][c] += y[t][c];
    }
}
