using System;
using System.Collections.Generic;

namespace TransformerGen.Export.Tests;

/// <summary>
/// Gemma 3's text model written out in double precision over a model's parameters, as Hugging Face's
/// <c>Gemma3ForCausalLM</c> computes it: embeddings × √hidden; in each layer RMSNorms scaling by 1 + w before and after the
/// attention and the feed-forward, per-head q_norm and k_norm, rotate_half rotary positions (the sliding layers with the
/// local base, the full ones with <c>rope_theta</c> and linear scaling), causal attention within the window on the sliding
/// layers, scores × query_pre_attn_scalar^−½, grouped key/value heads, GEGLU; the final norm and the tied or own head.
/// The GELU is a choice, as in <see cref="Gpt2Reference"/>: the tanh form (ours) or ggml's fp16 table (llama.cpp's CPU
/// <c>ggml_vec_geglu_f32</c> under <c>GGML_GELU_FP16</c>).
/// </summary>
internal static class Gemma3Reference
{
    /// <summary>Next-token logits after each position of <paramref name="tokens"/>.</summary>
    public static float[][] Logits(TransformerModel model, GgufHyperparameters h, int[] tokens, Func<double, double> gelu)
    {
        var p = new Dictionary<string, (float[] Values, int[] Shape)>();
        foreach (ParameterTensor t in model.ParameterTensors)
            p[t.Name.StartsWith("model.", StringComparison.Ordinal) ? t.Name["model.".Length..] : t.Name] =
                (model.Parameters.Slice(t.Offset, t.Length).ToArray(), t.Shape.ToArray());
        (float[] Values, int[] Shape) embedding = p["embed_tokens.weight"];
        int vocab = embedding.Shape[0], e = embedding.Shape[1], n = tokens.Length;
        int heads = h.Heads, kvHeads = h.KeyValueHeads, d = h.HeadDim, group = heads / kvHeads;
        double eps = h.NormEpsilon, scoreScale = 1 / Math.Sqrt(h.QueryPreAttentionScalar);
        IReadOnlyList<bool> sliding = h.SlidingLayers ?? throw new ArgumentException("Gemma 3 hyperparameters are needed", nameof(h));

        var x = new double[n][];
        for (int t = 0; t < n; t++)
        {
            x[t] = new double[e];
            for (int c = 0; c < e; c++) x[t][c] = embedding.Values[tokens[t] * e + c] * Math.Sqrt(e);
        }
        for (int l = 0; l < sliding.Count; l++)
        {
            string layer = $"layers.{l}.";
            double[][] a = Norm(x, p[layer + "input_layernorm.weight"].Values, eps);
            double[][] q = Linear(a, p[layer + "self_attn.q_proj.weight"]), k = Linear(a, p[layer + "self_attn.k_proj.weight"]);
            double[][] v = Linear(a, p[layer + "self_attn.v_proj.weight"]);
            double theta = sliding[l] ? h.LocalRopeTheta : h.RopeTheta, scale = sliding[l] ? 1 : 1 / (double)(h.RopeScaling?.Factor ?? 1f);
            for (int t = 0; t < n; t++)
            {
                for (int head = 0; head < heads; head++) HeadNormAndRotate(q[t], head * d, d, p[layer + "self_attn.q_norm.weight"].Values, eps, t, theta, scale);
                for (int head = 0; head < kvHeads; head++) HeadNormAndRotate(k[t], head * d, d, p[layer + "self_attn.k_norm.weight"].Values, eps, t, theta, scale);
            }
            var attended = new double[n][];
            for (int t = 0; t < n; t++)
            {
                attended[t] = new double[heads * d];
                int first = sliding[l] ? Math.Max(0, t - h.SlidingWindow + 1) : 0;
                for (int head = 0; head < heads; head++)
                {
                    int kv = head / group;
                    var scores = new double[t + 1];
                    double max = double.NegativeInfinity, sum = 0;
                    for (int s = first; s <= t; s++)
                    {
                        double dot = 0;
                        for (int c = 0; c < d; c++) dot += q[t][head * d + c] * k[s][kv * d + c];
                        scores[s] = dot * scoreScale;
                        max = Math.Max(max, scores[s]);
                    }
                    for (int s = first; s <= t; s++) sum += scores[s] = Math.Exp(scores[s] - max);
                    for (int s = first; s <= t; s++)
                        for (int c = 0; c < d; c++) attended[t][head * d + c] += scores[s] / sum * v[s][kv * d + c];
                }
            }
            Add(x, Norm(Linear(attended, p[layer + "self_attn.o_proj.weight"]), p[layer + "post_attention_layernorm.weight"].Values, eps));
            double[][] f = Norm(x, p[layer + "pre_feedforward_layernorm.weight"].Values, eps);
            double[][] gate = Linear(f, p[layer + "mlp.gate_proj.weight"]), up = Linear(f, p[layer + "mlp.up_proj.weight"]);
            for (int t = 0; t < n; t++)
                for (int c = 0; c < gate[t].Length; c++) gate[t][c] = gelu(gate[t][c]) * up[t][c];
            Add(x, Norm(Linear(gate, p[layer + "mlp.down_proj.weight"]), p[layer + "post_feedforward_layernorm.weight"].Values, eps));
        }
        double[][] final = Norm(x, p["norm.weight"].Values, eps);
        double[][] logits = Linear(final, p.TryGetValue("lm_head.weight", out (float[] Values, int[] Shape) lmHead) ? lmHead : embedding);
        var result = new float[n][];
        for (int t = 0; t < n; t++)
        {
            result[t] = new float[vocab];
            for (int id = 0; id < vocab; id++) result[t][id] = (float)logits[t][id];
        }
        return result;
    }

    /// <summary>One head's RMSNorm (1 + w), then its rotation at <paramref name="position"/>: channel i with i + D/2, angle position·scale·θ^(−2i/D).</summary>
    private static void HeadNormAndRotate(double[] row, int start, int d, float[] weight, double eps, int position, double theta, double scale)
    {
        double squares = 0;
        for (int c = 0; c < d; c++) squares += row[start + c] * row[start + c];
        double rstd = 1 / Math.Sqrt(squares / d + eps);
        for (int c = 0; c < d; c++) row[start + c] *= rstd * (1 + weight[c]);
        int half = d / 2;
        for (int i = 0; i < half; i++)
        {
            double angle = position * scale * Math.Pow(theta, -2.0 * i / d);
            double a = row[start + i], b = row[start + half + i];
            row[start + i] = a * Math.Cos(angle) - b * Math.Sin(angle);
            row[start + half + i] = b * Math.Cos(angle) + a * Math.Sin(angle);
        }
    }

    /// <summary>Gemma's RMSNorm: x / √(mean x² + ε) × (1 + w).</summary>
    private static double[][] Norm(double[][] x, float[] weight, double eps)
    {
        var y = new double[x.Length][];
        for (int t = 0; t < x.Length; t++)
        {
            double squares = 0;
            foreach (double v in x[t]) squares += v * v;
            double rstd = 1 / Math.Sqrt(squares / x[t].Length + eps);
            y[t] = new double[x[t].Length];
            for (int c = 0; c < y[t].Length; c++) y[t][c] = x[t][c] * rstd * (1 + weight[c]);
        }
        return y;
    }

    /// <summary>y = x·Wᵀ with W held [out, in].</summary>
    private static double[][] Linear(double[][] x, (float[] Values, int[] Shape) w)
    {
        int outputs = w.Shape[0], inputs = w.Shape[1];
        var y = new double[x.Length][];
        for (int t = 0; t < x.Length; t++)
        {
            y[t] = new double[outputs];
            for (int o = 0; o < outputs; o++)
            {
                double dot = 0;
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
