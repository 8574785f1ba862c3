using System;
using System.Collections.Generic;
using System.Linq;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>The misreadings of ELECTRA that <see cref="ElectraWrittenOut"/> can be told to make, to show that a comparison can fail.</summary>
internal enum ElectraMistake
{
    None,
    /// <summary>ElectraClassificationHead with BERT's and RoBERTa's tanh instead of GELU.</summary>
    TanhHead,
    /// <summary>The classification head on the last real token instead of the first.</summary>
    HeadOnLastToken,
    /// <summary>embeddings_project without its bias.</summary>
    ProjectionWithoutBias,
    /// <summary>The embeddings' LayerNorm after embeddings_project (over the hidden width, without its affine weights, which are E wide) instead of before.</summary>
    NormAfterProjection,
    /// <summary>Every token read as token type 0.</summary>
    TypesIgnored,
}

/// <summary>
/// ELECTRA in double with plain loops over positions, heads and channels, reading the reference's parameter values (no
/// libtorch), written from the description of modeling_electra.py: per token the rows of word_embeddings, of
/// token_type_embeddings at its type and of position_embeddings at its index, all E wide, summed; the embeddings'
/// LayerNorm over E; embeddings_project (x·Wᵀ + b, E → H) when the reference has it; per layer BERT's post-LN block
/// (query, key and value; per head the scores q·k/√D over the unpadded keys, softmax, the weighted values; output.dense
/// plus the input, LayerNorm; intermediate.dense, hidden_act; output.dense plus its input, LayerNorm). Then
/// ElectraClassificationHead on token 0 (dense, erf GELU whatever hidden_act says, out_proj) or
/// ElectraForTokenClassification's classifier on every token.
/// </summary>
internal sealed class ElectraWrittenOut(HfReference reference, ElectraMistake mistake = ElectraMistake.None)
{
    private readonly HfConfig _c = reference.Model.Config;
    private readonly Dictionary<string, double[]> _parameters = new(StringComparer.Ordinal);
    private readonly HashSet<string> _names = new(reference.ParameterNames, StringComparer.Ordinal);

    private double[] P(string name)
    {
        if (!_parameters.TryGetValue(name, out double[]? values))
            _parameters[name] = values = reference.ParameterValues(name).Select(v => (double)v).ToArray();
        return values;
    }

    /// <summary>The last hidden states <c>[B·T·H]</c>; <paramref name="mask"/> 0 hides a key; <paramref name="types"/> null: all 0.</summary>
    public double[] Hidden(int[] tokens, int[] mask, int[]? types, int batch, int length)
    {
        var result = new List<double>();
        for (int b = 0; b < batch; b++) result.AddRange(Sequence(tokens, mask, types, b, length).SelectMany(h => h));
        return result.ToArray();
    }

    /// <summary>ElectraForSequenceClassification's logits <c>[B·labels]</c>, or ElectraForTokenClassification's <c>[B·T·labels]</c>.</summary>
    public double[] ClassifierLogits(int[] tokens, int[] mask, int[]? types, int batch, int length)
    {
        var result = new List<double>();
        for (int b = 0; b < batch; b++)
        {
            double[][] h = Sequence(tokens, mask, types, b, length);
            if (_c.EncoderHead == HfEncoderHead.TokenClassification)
            {
                foreach (double[] row in h) result.AddRange(Linear(row, "classifier"));
                continue;
            }
            int last = Enumerable.Range(0, length).Last(t => mask[b * length + t] == 1);
            double[] first = h[mistake == ElectraMistake.HeadOnLastToken ? last : 0];
            double[] dense = Linear(first, "classifier.dense").Select(z => mistake == ElectraMistake.TanhHead ? Math.Tanh(z) : Gelu(z)).ToArray();
            result.AddRange(Linear(dense, "classifier.out_proj"));
        }
        return result.ToArray();
    }

    private double[][] Sequence(int[] tokens, int[] mask, int[]? types, int b, int length)
    {
        int e = _c.InputEmbeddingSize, hidden = _c.HiddenSize, heads = _c.Heads, d = _c.HeadDim;
        double[] words = P("embeddings.word_embeddings.weight"), positions = P("embeddings.position_embeddings.weight"), typeRows = P("embeddings.token_type_embeddings.weight");
        var h = new double[length][];
        for (int t = 0; t < length; t++)
        {
            int id = tokens[b * length + t], type = types is null || mistake == ElectraMistake.TypesIgnored ? 0 : types[b * length + t];
            var x = new double[e];
            for (int j = 0; j < e; j++) x[j] = words[id * e + j] + typeRows[type * e + j] + positions[t * e + j];
            bool project = _names.Contains("embeddings_project.weight");
            if (mistake == ElectraMistake.NormAfterProjection && project) h[t] = LayerNorm(Linear(x, "embeddings_project"), null);
            else
            {
                h[t] = LayerNorm(x, "embeddings.LayerNorm");
                if (project) h[t] = Linear(h[t], "embeddings_project", bias: mistake != ElectraMistake.ProjectionWithoutBias);
            }
        }
        int[] keys = Enumerable.Range(0, length).Where(u => mask[b * length + u] == 1).ToArray();
        for (int l = 0; l < _c.Layers; l++)
        {
            string p = $"encoder.layer.{l}.";
            double[][] q = h.Select(x => Linear(x, p + "attention.self.query")).ToArray();
            double[][] k = h.Select(x => Linear(x, p + "attention.self.key")).ToArray();
            double[][] v = h.Select(x => Linear(x, p + "attention.self.value")).ToArray();
            var next = new double[length][];
            for (int t = 0; t < length; t++)
            {
                var context = new double[hidden];
                for (int head = 0; head < heads; head++)
                {
                    int o = head * d;
                    double[] scores = keys.Select(u =>
                    {
                        double dot = 0;
                        for (int j = o; j < o + d; j++) dot += q[t][j] * k[u][j];
                        return dot / Math.Sqrt(d);
                    }).ToArray();
                    double top = scores.Max(), total = scores.Sum(s => Math.Exp(s - top));
                    for (int n = 0; n < keys.Length; n++)
                        for (int j = o; j < o + d; j++) context[j] += Math.Exp(scores[n] - top) / total * v[keys[n]][j];
                }
                double[] attended = LayerNorm(Add(Linear(context, p + "attention.output.dense"), h[t]), p + "attention.output.LayerNorm");
                double[] inner = Linear(attended, p + "intermediate.dense").Select(Activation).ToArray();
                next[t] = LayerNorm(Add(Linear(inner, p + "output.dense"), attended), p + "output.LayerNorm");
            }
            h = next;
        }
        return h;
    }

    private double Activation(double z) => _c.Activation switch
    {
        "gelu" => Gelu(z),
        "relu" => Math.Max(z, 0),
        string other => throw new NotSupportedException($"the written-out ELECTRA has no '{other}'"),
    };

    private static double Gelu(double z) => 0.5 * z * (1 + HfMPNetSelfTests.Erf(z / Math.Sqrt(2)));

    private static double[] Add(double[] x, double[] y) => x.Zip(y, (a, b) => a + b).ToArray();

    private double[] Linear(double[] x, string prefix, bool bias = true)
    {
        double[] weight = P(prefix + ".weight"), b = P(prefix + ".bias");
        var y = new double[b.Length];
        for (int r = 0; r < y.Length; r++)
        {
            double sum = bias ? b[r] : 0;
            for (int col = 0; col < x.Length; col++) sum += weight[r * x.Length + col] * x[col];
            y[r] = sum;
        }
        return y;
    }

    // (x − mean)/√(var + ε)·w + b over x's own width, the variance biased; no affine part without a prefix.
    private double[] LayerNorm(double[] x, string? prefix)
    {
        double mean = x.Average(), variance = x.Sum(v => (v - mean) * (v - mean)) / x.Length;
        double[]? gamma = prefix is null ? null : P(prefix + ".weight"), beta = prefix is null ? null : P(prefix + ".bias");
        return x.Select((v, j) => (v - mean) / Math.Sqrt(variance + _c.NormEps) * (gamma?[j] ?? 1) + (beta?[j] ?? 0)).ToArray();
    }
}
