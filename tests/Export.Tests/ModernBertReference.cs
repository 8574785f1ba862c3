using System;
using System.Collections.Generic;
using System.Linq;
using TransformerGen.Tests.Kernels;

namespace TransformerGen.Export.Tests;

/// <summary>
/// ModernBERT as transformers' <c>ModernBertModel</c> computes it with eager attention, in double precision over a model's
/// parameters, then the sentence-transformers head: the token table and <c>embeddings.norm</c>; in each layer
/// <c>h += Wo(attention(attn_norm(h)))</c>, where layer 0's <c>attn_norm</c> is an identity, Q | K | V from <c>Wqkv</c>,
/// rotate_half with the global or the local base, scores × headDim^−½, padding keys masked, and on local layers (index not a
/// multiple of <c>global_attn_every_n_layers</c>) also every key with |i − j| &gt; <c>local_attention</c> // 2; then
/// <c>h += mlp.Wo(gelu(input)·gate)</c> over the halves of <c>Wi(mlp_norm(h))</c> (the erf GELU, or the tanh form for
/// <c>gelu_pytorch_tanh</c>); <c>final_norm</c>; the mean of the real
/// tokens or the first token, the Dense layers, L2 normalization. Every LayerNorm and projection takes its bias when the
/// model has one. Written from transformers' modeling_modernbert.py, not from our kernels or the exporter.
/// </summary>
/// <remarks>
/// Two switches compute what a wrong export would: <see cref="Settings.Window"/> false lets the local layers see every
/// key, and <see cref="Settings.BareFirstLayer"/> false normalizes layer 0's attention input (a LayerNorm of unit weight).
/// </remarks>
internal static class ModernBertReference
{
    internal sealed record Settings(int Heads, double Eps, int Every, int LocalAttention, double GlobalTheta, double LocalTheta, bool DenseTanh, bool TanhGelu)
    {
        public bool Window { get; init; } = true;
        public bool BareFirstLayer { get; init; } = true;
        /// <summary>The feed-forward's GELU where it is not transformers' (the GGUF tests put ggml's fp16 table here).</summary>
        public Func<double, double>? Gelu { get; init; }
    }

    /// <summary>
    /// The last hidden states <c>[batch·sequence, hidden]</c> and the sentence embeddings <c>[batch, width]</c> of
    /// <paramref name="tokens"/> (<paramref name="batch"/> rows, <paramref name="pad"/> marking padding).
    /// </summary>
    public static (float[] Hidden, float[] Embeddings) Run(TransformerModel model, Settings s, int[] tokens, int batch, int pad, Pooling pooling)
    {
        var p = new Dictionary<string, (float[] Values, int[] Shape)>(StringComparer.Ordinal);
        foreach (ParameterTensor t in model.ParameterTensors) p[t.Name] = (model.Parameters.Slice(t.Offset, t.Length).ToArray(), t.Shape.ToArray());
        float[]? Optional(string name) => p.TryGetValue(name, out (float[] Values, int[] Shape) t) ? t.Values : null;
        (float[] Values, int[] Shape) table = p["embeddings.tok_embeddings.weight"];
        int hidden = table.Shape[1], n = tokens.Length / batch, d = hidden / s.Heads;
        int layers = 0;
        while (p.ContainsKey($"layers.{layers}.attn.Wqkv.weight")) layers++;
        string[] dense = p.Keys.Where(k => k.EndsWith(".linear.weight", StringComparison.Ordinal)).Select(k => k[..^".linear.weight".Length]).Order(StringComparer.Ordinal).ToArray();

        var allHidden = new List<float>();
        var embeddings = new List<float>();
        for (int b = 0; b < batch; b++)
        {
            int[] row = tokens.AsSpan(b * n, n).ToArray();
            bool[] real = row.Select(t => t != pad).ToArray();
            var x = new double[n][];
            for (int t = 0; t < n; t++) x[t] = table.Values.AsSpan(row[t] * hidden, hidden).ToArray().Select(v => (double)v).ToArray();
            x = Norm(x, p["embeddings.norm.weight"].Values, Optional("embeddings.norm.bias"), s.Eps);
            for (int l = 0; l < layers; l++)
            {
                string a = $"layers.{l}.";
                bool local = l % s.Every != 0;
                double[][] input = l > 0 ? Norm(x, p[a + "attn_norm.weight"].Values, Optional(a + "attn_norm.bias"), s.Eps)
                    : s.BareFirstLayer ? x : Norm(x, Enumerable.Repeat(1f, hidden).ToArray(), null, s.Eps);
                double[][] qkv = Linear(input, p[a + "attn.Wqkv.weight"], Optional(a + "attn.Wqkv.bias"));
                double theta = local ? s.LocalTheta : s.GlobalTheta;
                for (int t = 0; t < n; t++)
                    for (int head = 0; head < 2 * s.Heads; head++) Rotate(qkv[t], head * d, d, t, theta); // the query heads, then the key heads
                var attended = new double[n][];
                for (int i = 0; i < n; i++)
                {
                    attended[i] = new double[hidden];
                    bool Sees(int j) => real[j] && (!local || !s.Window || Math.Abs(i - j) <= s.LocalAttention / 2);
                    if (!Enumerable.Range(0, n).Any(Sees)) continue; // a padding query with no real key near it: not compared
                    for (int head = 0; head < s.Heads; head++)
                    {
                        var scores = new double[n];
                        double max = double.NegativeInfinity, sum = 0;
                        for (int j = 0; j < n; j++)
                        {
                            if (!Sees(j)) continue;
                            double dot = 0;
                            for (int c = 0; c < d; c++) dot += qkv[i][head * d + c] * qkv[j][hidden + head * d + c];
                            scores[j] = dot / Math.Sqrt(d);
                            max = Math.Max(max, scores[j]);
                        }
                        for (int j = 0; j < n; j++) if (Sees(j)) sum += scores[j] = Math.Exp(scores[j] - max);
                        for (int j = 0; j < n; j++)
                            if (Sees(j))
                                for (int c = 0; c < d; c++) attended[i][head * d + c] += scores[j] / sum * qkv[j][2 * hidden + head * d + c];
                    }
                }
                Add(x, Linear(attended, p[a + "attn.Wo.weight"], Optional(a + "attn.Wo.bias")));
                double[][] up = Linear(Norm(x, p[a + "mlp_norm.weight"].Values, Optional(a + "mlp_norm.bias"), s.Eps), p[a + "mlp.Wi.weight"], Optional(a + "mlp.Wi.bias"));
                int inner = up[0].Length / 2;
                Func<double, double> gelu = s.Gelu ?? (s.TanhGelu ? Gpt2Reference.TanhGelu : ReferenceMath.Gelu);
                double[][] gated = up.Select(u => Enumerable.Range(0, inner).Select(c => gelu(u[c]) * u[inner + c]).ToArray()).ToArray();
                Add(x, Linear(gated, p[a + "mlp.Wo.weight"], Optional(a + "mlp.Wo.bias")));
            }
            x = Norm(x, p["final_norm.weight"].Values, Optional("final_norm.bias"), s.Eps);
            foreach (double[] v in x) allHidden.AddRange(v.Select(e => (float)e));

            double[] pooled = new double[hidden];
            if (pooling == Pooling.FirstToken) x[0].CopyTo(pooled, 0);
            else
            {
                int count = real.Count(r => r);
                for (int t = 0; t < n; t++)
                    if (real[t])
                        for (int c = 0; c < hidden; c++) pooled[c] += x[t][c] / count;
            }
            foreach (string module in dense)
            {
                pooled = Linear([pooled], p[module + ".linear.weight"], Optional(module + ".linear.bias"))[0];
                if (s.DenseTanh) pooled = pooled.Select(Math.Tanh).ToArray();
            }
            double norm = Math.Max(Math.Sqrt(pooled.Sum(v => v * v)), 1e-12);
            embeddings.AddRange(pooled.Select(v => (float)(v / norm)));
        }
        return (allHidden.ToArray(), embeddings.ToArray());
    }

    /// <summary>Channels i and i + D/2 of one head turned by position·θ^(−2i/D) (transformers' rotate_half form).</summary>
    private static void Rotate(double[] row, int start, int d, int position, double theta)
    {
        int half = d / 2;
        for (int i = 0; i < half; i++)
        {
            double angle = position * Math.Pow(theta, -2.0 * i / d);
            double a = row[start + i], b = row[start + half + i];
            row[start + i] = a * Math.Cos(angle) - b * Math.Sin(angle);
            row[start + half + i] = b * Math.Cos(angle) + a * Math.Sin(angle);
        }
    }

    /// <summary>LayerNorm over each row: (x − mean)/√(var + ε)·w (+ b).</summary>
    private static double[][] Norm(double[][] x, float[] weight, float[]? bias, double eps)
    {
        var y = new double[x.Length][];
        for (int t = 0; t < x.Length; t++)
        {
            double mean = x[t].Average();
            double variance = x[t].Sum(v => (v - mean) * (v - mean)) / x[t].Length;
            double rstd = 1 / Math.Sqrt(variance + eps);
            y[t] = new double[x[t].Length];
            for (int c = 0; c < y[t].Length; c++) y[t][c] = (x[t][c] - mean) * rstd * weight[c] + (bias?[c] ?? 0);
        }
        return y;
    }

    /// <summary>y = x·Wᵀ (+ b) with W held [out, in].</summary>
    private static double[][] Linear(double[][] x, (float[] Values, int[] Shape) w, float[]? b)
    {
        int outputs = w.Shape[0], inputs = w.Shape[1];
        var y = new double[x.Length][];
        for (int t = 0; t < x.Length; t++)
        {
            y[t] = new double[outputs];
            for (int o = 0; o < outputs; o++)
            {
                double dot = b?[o] ?? 0;
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
