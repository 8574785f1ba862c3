using System;
using System.Collections.Generic;
using System.Linq;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// Gemma 3's layers in double with plain loops over positions, heads and channels, reading the reference's parameter values
/// (no libtorch): embeddings × float32(√E); per layer h = x + norm(attention(norm(x))), x = h + norm(mlp(norm(h))); the
/// final norm. Which keys a query sees is the caller's (<see cref="Sees"/>: Gemma3ForCausalLM's causal windows,
/// EmbeddingGemma's two-sided ones), and so are the misreadings a self test makes it compute to show that its checks can
/// fail (the score factor, the norms' 1 + w, the rotary bases and factor, the embedding scale).
/// </summary>
internal sealed class Gemma3WrittenOut(HfReference reference, HfConfig c)
{
    private readonly Dictionary<string, double[]> _parameters = new(StringComparer.Ordinal);

    /// <summary>Whether query t sees key s on a sliding (true) or global layer, padding aside.</summary>
    public required Func<int, int, bool, bool> Sees { get; init; }

    /// <summary>Scores times head_dim^−½ (Llama's) instead of query_pre_attn_scalar^−½.</summary>
    public bool HeadDimScale { get; init; }

    /// <summary>RMSNorm times w instead of 1 + w.</summary>
    public bool NormWeightWithoutOne { get; init; }

    /// <summary>The global table without its linear factor.</summary>
    public bool NoLinearFactor { get; init; }

    /// <summary>θ of the global and the sliding tables exchanged.</summary>
    public bool SwappedRopeBases { get; init; }

    /// <summary>The embeddings not multiplied by √hidden.</summary>
    public bool UnscaledEmbedding { get; init; }

    /// <summary>A parameter's values in double, by canonical name.</summary>
    public double[] P(string name)
    {
        if (!_parameters.TryGetValue(name, out double[]? values))
            _parameters[name] = values = reference.ParameterValues(name).Select(v => (double)v).ToArray();
        return values;
    }

    /// <summary>The hidden states after <c>model.norm</c> of one sequence, <c>[T][E]</c>; <paramref name="keep"/> false hides a key (padding).</summary>
    public double[][] Hidden(int[] ids, bool[] keep)
    {
        int d = c.HiddenSize;
        double[] table = P("model.embed_tokens.weight");
        // transformers holds √E as a float32 tensor.
        double scale = UnscaledEmbedding ? 1.0 : (float)Math.Sqrt(d);
        double[][] x = ids.Select(t => Enumerable.Range(0, d).Select(e => table[t * d + e] * scale).ToArray()).ToArray();
        for (int i = 0; i < c.Layers; i++)
        {
            string l = $"model.layers.{i}.";
            double[][] attention = Attention(Norm(x, l + "input_layernorm.weight"), c.SlidingLayers[i], keep, l + "self_attn.");
            x = Add(x, Norm(attention, l + "post_attention_layernorm.weight"));
            double[][] b = Norm(x, l + "pre_feedforward_layernorm.weight");
            double[][] gate = Linear(b, l + "mlp.gate_proj.weight"), up = Linear(b, l + "mlp.up_proj.weight");
            double[][] inner = gate.Select((row, t) => row.Select((z, k) => GeluTanh(z) * up[t][k]).ToArray()).ToArray();
            x = Add(x, Norm(Linear(inner, l + "mlp.down_proj.weight"), l + "post_feedforward_layernorm.weight"));
        }
        return Norm(x, "model.norm.weight");
    }

    private double[][] Attention(double[][] x, bool sliding, bool[] keep, string prefix)
    {
        int length = x.Length, heads = c.Heads, dh = c.HeadDim, half = dh / 2, perKeyValue = c.Heads / c.KeyValueHeads;
        double[][] q = Linear(x, prefix + "q_proj.weight"), k = Linear(x, prefix + "k_proj.weight"), v = Linear(x, prefix + "v_proj.weight");
        double[] qNorm = P(prefix + "q_norm.weight"), kNorm = P(prefix + "k_norm.weight");
        // Each head's channels RMS-normalized, then rotated in pairs (j, j + D/2) by position·frequency j.
        void NormalizeAndRotate(double[] row, int head, double[] weight, int position)
        {
            double[] part = NormRow(row.AsSpan(head * dh, dh).ToArray(), weight);
            for (int j = 0; j < half; j++)
            {
                (double cos, double sin) = Rotation(sliding, position, j);
                double a = part[j], b = part[j + half];
                row[head * dh + j] = a * cos - b * sin;
                row[head * dh + j + half] = b * cos + a * sin;
            }
        }
        for (int t = 0; t < length; t++)
        {
            for (int h = 0; h < heads; h++) NormalizeAndRotate(q[t], h, qNorm, t);
            for (int h = 0; h < c.KeyValueHeads; h++) NormalizeAndRotate(k[t], h, kNorm, t);
        }

        double scaling = HeadDimScale ? 1 / Math.Sqrt(dh) : 1 / Math.Sqrt(c.QueryPreAttnScalar);
        var merged = new double[length][];
        for (int t = 0; t < length; t++)
        {
            merged[t] = new double[heads * dh];
            int[] visible = Enumerable.Range(0, length).Where(s => keep[s] && Sees(t, s, sliding)).ToArray();
            for (int h = 0; h < heads; h++)
            {
                int g = h / perKeyValue;
                double[] scores = visible.Select(s => Enumerable.Range(0, dh).Sum(j => q[t][h * dh + j] * k[s][g * dh + j]) * scaling).ToArray();
                double max = scores.Max(), total = scores.Sum(z => Math.Exp(z - max));
                for (int n = 0; n < visible.Length; n++)
                    for (int j = 0; j < dh; j++) merged[t][h * dh + j] += Math.Exp(scores[n] - max) / total * v[visible[n]][g * dh + j];
            }
        }
        return Linear(merged, prefix + "o_proj.weight");
    }

    // cos and sin of the angle position·inv_freq_j, which transformers computes in float32: exponent 2j/D, θ^exponent,
    // its reciprocal, divided by the linear factor on the global layers, times the position, each rounded to float32.
    private (double Cos, double Sin) Rotation(bool sliding, int position, int j)
    {
        bool localBase = sliding != SwappedRopeBases;
        double theta = localBase ? c.RopeLocalTheta : c.RopeTheta;
        double factor = sliding || NoLinearFactor ? 1.0 : c.RopeLinearFactor;
        float exponent = (float)(2 * j) / c.HeadDim;
        float inverse = 1f / (float)Math.Pow((float)theta, exponent);
        if (factor != 1.0) inverse /= (float)factor;
        float angle = position * inverse;
        return (Math.Cos(angle), Math.Sin(angle));
    }

    private double[][] Norm(double[][] x, string weight) => x.Select(row => NormRow(row, P(weight))).ToArray();

    // x / √(mean(x²) + ε) · (1 + w).
    private double[] NormRow(double[] row, double[] w)
    {
        double rms = Math.Sqrt(row.Sum(v => v * v) / row.Length + c.NormEps);
        return row.Select((v, i) => v / rms * (NormWeightWithoutOne ? w[i] : 1 + w[i])).ToArray();
    }

    // y[t][o] = Σ_i W[o, i]·x[t][i] (+ b[o] where the reference has the bias), W [out, in] row-major.
    private double[][] Linear(double[][] x, string name)
    {
        double[] w = P(name);
        string biasName = name[..^"weight".Length] + "bias";
        double[]? bias = reference.ParameterNames.Contains(biasName) ? P(biasName) : null;
        int inputs = x[0].Length, outputs = w.Length / inputs;
        return x.Select(row => Enumerable.Range(0, outputs).Select(o => Enumerable.Range(0, inputs).Sum(i => w[o * inputs + i] * row[i]) + (bias?[o] ?? 0)).ToArray()).ToArray();
    }

    // gelu(z, approximate='tanh') = ½z(1 + tanh(√(2/π)(z + 0.044715z³))).
    private static double GeluTanh(double z) => 0.5 * z * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (z + 0.044715 * z * z * z)));

    private static double[][] Add(double[][] a, double[][] b) => a.Zip(b, (r, s) => r.Zip(s, (u, v) => u + v).ToArray()).ToArray();
}
