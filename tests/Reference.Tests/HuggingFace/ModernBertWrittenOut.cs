using System;
using System.Collections.Generic;
using System.Linq;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>The misreadings of ModernBERT that <see cref="ModernBertWrittenOut"/> can be told to make, to show that a comparison can fail.</summary>
internal enum ModernBertMistake
{
    None,
    /// <summary>Layer 0 normalizes its attention input too (a LayerNorm of weight 1, no bias) instead of the identity.</summary>
    NormOnLayerZero,
    /// <summary>The local window |i − j| &lt; local_attention // 2 instead of ≤.</summary>
    ExclusiveWindow,
    /// <summary>The global layers turn by local_rope_theta and the local ones by global_rope_theta.</summary>
    SwappedRopeBases,
    /// <summary>A layer global when i % n == 1 instead of 0 (n the distance between the first two global layers).</summary>
    GlobalLayersOffByOne,
    /// <summary>Wi's halves taken the other way round: the activation on the last I rows, times the first I.</summary>
    ActivationOnGate,
    /// <summary>Rotary pairs (2j, 2j + 1) instead of (j, j + D/2).</summary>
    InterleavedRotary,
    /// <summary>No final_norm.</summary>
    NoFinalNorm,
    /// <summary>Padding keys visible.</summary>
    PaddingNotMasked,
}

/// <summary>
/// ModernBERT in double with plain loops over positions, heads and channels, reading the reference's parameter values (no
/// libtorch), written from the description of modeling_modernbert.py: the token rows and embeddings.norm; per layer
/// h += Wo(attention(attn_norm(h))) with layer 0's attn_norm the identity, h += Wo(act(input)·gate) of mlp_norm(h), with
/// (input | gate) = Wi·x; final_norm. Attention: Wqkv's rows Q | K | V, each head's D channels rotated in pairs (j, j + D/2)
/// by position·inv_freq_j with the angle rounded to float32 as transformers computes it, scores q·k·D^−½ plus 0 or
/// finfo(float64).min (padding key, or a local layer's key beyond local_attention // 2), softmax. Then the pooling and
/// normalization of sentence-transformers, or ModernBertForSequenceClassification's head.
/// </summary>
internal sealed class ModernBertWrittenOut(HfReference reference, HfConfig c, ModernBertMistake mistake = ModernBertMistake.None)
{
    private readonly Dictionary<string, double[]> _parameters = new(StringComparer.Ordinal);

    private double[] P(string name)
    {
        if (!_parameters.TryGetValue(name, out double[]? values))
            _parameters[name] = values = reference.ParameterValues(name).Select(v => (double)v).ToArray();
        return values;
    }

    private readonly HashSet<string> _names = new(reference.ParameterNames, StringComparer.Ordinal);

    private bool Has(string name) => _names.Contains(name);

    /// <summary>The last hidden states of a batch, <c>[B·T·E]</c>; <paramref name="mask"/> 0 hides a key.</summary>
    public double[] Hidden(int[] tokens, int[] mask, int batch, int length) =>
        Enumerable.Range(0, batch).SelectMany(b => Hidden(Row(tokens, b, length), Keep(mask, b, length)).SelectMany(r => r)).ToArray();

    /// <summary>The sentence-transformers embeddings <c>[B·E]</c>: the mean over the unpadded positions (or token 0), divided by its 2-norm.</summary>
    public double[] Embeddings(int[] tokens, int[] mask, int batch, int length, bool cls)
    {
        var result = new List<double>();
        for (int b = 0; b < batch; b++)
        {
            double[] x = Pool(Hidden(Row(tokens, b, length), Keep(mask, b, length)), Keep(mask, b, length), cls);
            double norm = Math.Max(Math.Sqrt(x.Sum(v => v * v)), 1e-12);
            result.AddRange(x.Select(v => v / norm));
        }
        return result.ToArray();
    }

    /// <summary>ModernBertForSequenceClassification's logits <c>[B·labels]</c>: the pooled state through dense, the activation, head.norm, classifier.</summary>
    public double[] ClassifierLogits(int[] tokens, int[] mask, int batch, int length)
    {
        var result = new List<double>();
        for (int b = 0; b < batch; b++)
        {
            bool[] keep = Keep(mask, b, length);
            double[] pooled = Pool(Hidden(Row(tokens, b, length), keep), keep, c.ClassifierPooling == HfPooling.Cls);
            double[] dense = Linear(pooled, "head.dense").Select(z => Activation(c.ClassifierActivation, z)).ToArray();
            result.AddRange(Linear(LayerNorm(dense, "head.norm"), "classifier"));
        }
        return result.ToArray();
    }

    private double[] Pool(double[][] hidden, bool[] keep, bool cls)
    {
        if (cls) return hidden[0];
        var sum = new double[c.HiddenSize];
        int count = 0;
        for (int t = 0; t < hidden.Length; t++)
        {
            if (!keep[t]) continue;
            count++;
            for (int e = 0; e < sum.Length; e++) sum[e] += hidden[t][e];
        }
        return sum.Select(v => v / count).ToArray();
    }

    /// <summary>One sequence's last hidden states <c>[T][E]</c>.</summary>
    public double[][] Hidden(int[] ids, bool[] keep)
    {
        int e = c.HiddenSize, inner = c.IntermediateSize;
        double[] table = P(HfModernBert.TokenEmbeddings);
        double[][] h = ids.Select(id => LayerNorm(table.AsSpan(id * e, e).ToArray(), "embeddings.norm")).ToArray();
        for (int i = 0; i < c.Layers; i++)
        {
            string l = $"layers.{i}.";
            double[][] normed = i > 0 ? h.Select(r => LayerNorm(r, l + "attn_norm")).ToArray()
                : mistake == ModernBertMistake.NormOnLayerZero ? h.Select(UnitLayerNorm).ToArray() : h;
            double[][] attention = Attention(normed, IsLocal(i), keep, l + "attn.");
            h = h.Select((r, t) => r.Zip(attention[t], (a, b) => a + b).ToArray()).ToArray();
            for (int t = 0; t < h.Length; t++)
            {
                double[] both = Linear(LayerNorm(h[t], l + "mlp_norm"), l + "mlp.Wi");
                var product = new double[inner];
                for (int k = 0; k < inner; k++)
                {
                    double input = both[k], gate = both[inner + k];
                    product[k] = mistake == ModernBertMistake.ActivationOnGate ? Activation(c.Activation, gate) * input : Activation(c.Activation, input) * gate;
                }
                double[] mlp = Linear(product, l + "mlp.Wo");
                for (int k = 0; k < e; k++) h[t][k] += mlp[k];
            }
        }
        return mistake == ModernBertMistake.NoFinalNorm ? h : h.Select(r => LayerNorm(r, "final_norm")).ToArray();
    }

    private bool IsLocal(int i)
    {
        if (mistake != ModernBertMistake.GlobalLayersOffByOne) return c.SlidingLayers[i];
        int[] globals = Enumerable.Range(0, c.Layers).Where(j => !c.SlidingLayers[j]).ToArray();
        int every = globals.Length > 1 ? globals[1] - globals[0] : c.Layers;
        return i % every != 1;
    }

    private double[][] Attention(double[][] x, bool local, bool[] keep, string prefix)
    {
        int length = x.Length, e = c.HiddenSize, heads = c.Heads, d = c.HeadDim;
        double[][] qkv = x.Select(r => Linear(r, prefix + "Wqkv")).ToArray();
        double[][] q = qkv.Select(r => r[..e]).ToArray(), k = qkv.Select(r => r[e..(2 * e)]).ToArray(), v = qkv.Select(r => r[(2 * e)..]).ToArray();
        for (int t = 0; t < length; t++)
            for (int h = 0; h < heads; h++)
            {
                Rotate(q[t], h * d, t, local);
                Rotate(k[t], h * d, t, local);
            }

        double scale = Math.Pow(d, -0.5);
        var merged = new double[length][];
        for (int t = 0; t < length; t++)
        {
            merged[t] = new double[e];
            for (int h = 0; h < heads; h++)
            {
                var scores = new double[length];
                for (int s = 0; s < length; s++)
                {
                    double dot = 0;
                    for (int j = 0; j < d; j++) dot += q[t][h * d + j] * k[s][h * d + j];
                    scores[s] = dot * scale + (Sees(t, s, local, keep) ? 0.0 : double.MinValue);
                }
                double max = scores.Max(), total = scores.Sum(z => Math.Exp(z - max));
                for (int s = 0; s < length; s++)
                {
                    double weight = Math.Exp(scores[s] - max) / total;
                    for (int j = 0; j < d; j++) merged[t][h * d + j] += weight * v[s][h * d + j];
                }
            }
        }
        return merged.Select(r => Linear(r, prefix + "Wo")).ToArray();
    }

    private bool Sees(int t, int s, bool local, bool[] keep)
    {
        if (!keep[s] && mistake != ModernBertMistake.PaddingNotMasked) return false;
        if (!local) return true;
        int distance = Math.Abs(t - s), half = c.LocalAttention / 2;
        return mistake == ModernBertMistake.ExclusiveWindow ? distance < half : distance <= half;
    }

    // Turns the head starting at channel o by position·inv_freq_j, pair j being (o + j, o + j + D/2), or (o + 2j, o + 2j + 1)
    // when interleaved. inv_freq_j = 1 / θ^(2j/D) and the angle are float32 values, as transformers computes them.
    private void Rotate(double[] row, int o, int position, bool local)
    {
        int d = c.HeadDim, half = d / 2;
        bool localBase = local != (mistake == ModernBertMistake.SwappedRopeBases);
        float theta = (float)(localBase ? c.RopeLocalTheta : c.RopeTheta);
        for (int j = 0; j < half; j++)
        {
            float exponent = (float)(2 * j) / d;
            float inverse = 1f / (float)Math.Pow(theta, exponent);
            float angle = position * inverse;
            double cos = Math.Cos(angle), sin = Math.Sin(angle);
            (int first, int second) = mistake == ModernBertMistake.InterleavedRotary ? (o + 2 * j, o + 2 * j + 1) : (o + j, o + j + half);
            double a = row[first], b = row[second];
            row[first] = a * cos - b * sin;
            row[second] = b * cos + a * sin;
        }
    }

    // (x − mean) / √(var + ε) · w + b, the variance the biased one; b only where the reference has it (norm_bias).
    private double[] LayerNorm(double[] x, string prefix)
    {
        double[] w = P(prefix + ".weight");
        double[]? b = Has(prefix + ".bias") ? P(prefix + ".bias") : null;
        double mean = x.Average(), variance = x.Sum(z => (z - mean) * (z - mean)) / x.Length, scale = Math.Sqrt(variance + c.NormEps);
        return x.Select((z, i) => (z - mean) / scale * w[i] + (b?[i] ?? 0)).ToArray();
    }

    private double[] UnitLayerNorm(double[] x)
    {
        double mean = x.Average(), variance = x.Sum(z => (z - mean) * (z - mean)) / x.Length;
        return x.Select(z => (z - mean) / Math.Sqrt(variance + c.NormEps)).ToArray();
    }

    // y[o] = Σ_i W[o, i]·x[i] (+ b[o] where the reference has the bias), W [out, in] row-major.
    private double[] Linear(double[] x, string prefix)
    {
        double[] w = P(prefix + ".weight");
        double[]? b = Has(prefix + ".bias") ? P(prefix + ".bias") : null;
        int inputs = x.Length, outputs = w.Length / inputs;
        var y = new double[outputs];
        for (int o = 0; o < outputs; o++)
        {
            double sum = b?[o] ?? 0;
            for (int i = 0; i < inputs; i++) sum += w[o * inputs + i] * x[i];
            y[o] = sum;
        }
        return y;
    }

    // The activations by transformers' names: erf GELU, the tanh GELU forms (the same function; they differ only in how
    // float32 rounds), ReLU, SiLU.
    private static double Activation(string name, double z) => name switch
    {
        "gelu" => 0.5 * z * (1 + HfMPNetSelfTests.Erf(z / Math.Sqrt(2))),
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => 0.5 * z * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (z + 0.044715 * z * z * z))),
        "relu" => Math.Max(z, 0),
        "silu" or "swish" => z / (1 + Math.Exp(-z)),
        _ => throw new NotSupportedException(name),
    };

    private static int[] Row(int[] values, int b, int length) => values[(b * length)..((b + 1) * length)];

    private static bool[] Keep(int[] mask, int b, int length) => Row(mask, b, length).Select(m => m == 1).ToArray();
}
