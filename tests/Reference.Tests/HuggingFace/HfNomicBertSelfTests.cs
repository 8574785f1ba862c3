using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// Checks of the NomicBERT reference (<see cref="HfNomicBert"/>) itself: its config reading against
/// configuration_hf_nomic_bert.py and modeling_hf_nomic_bert.py, the rotary rotation against the formula written out in
/// double, the whole encoder against a plain-loop float64 implementation, padding invariance, gradients against central
/// differences in float64, and the files it writes.
/// </summary>
public sealed class HfNomicBertSelfTests(ITestOutputHelper output)
{
    private const long Seed = 4321;
    private const int Vocab = 53, D = 24, Heads = 4, HeadDim = 6, Inner = 256, Layers = 2;

    private static string ConfigPath => HfFixtures.ConfigPath(HfFixtures.NomicBert);

    // ------------------------------------------------------------------------------------------------------------
    // Config

    [Fact]
    public void Config_reads_the_gpt2_style_keys_and_the_hub_codes_roundings()
    {
        HfConfig c = HfConfig.Read(ConfigPath);
        Assert.Equal((HfFamily.NomicBert, "nomic_bert", Vocab, D, Layers, Heads, HeadDim, 2, 1e-12, 1000.0, 0),
            (c.Family, c.ModelType, c.VocabSize, c.HiddenSize, c.Layers, c.Heads, c.HeadDim, c.TypeVocabSize, c.NormEps, c.RopeTheta, c.PadTokenId));
        // NomciBertGatedMLP: (n_inner + 255) // 256 · 256, so n_inner 40 gives fc11/fc12 of 256 rows.
        Assert.Equal(Inner, c.IntermediateSize);
        Assert.False(c.QkvBias || c.OutputBias || c.MlpBias || c.MlpOutputBias);
        Assert.Equal(int.MaxValue, c.RotaryUnscaledPositions); // rotary_scaling_factor null

        HfConfig Variant(Action<JsonObject> change)
        {
            JsonObject json = JsonNode.Parse(File.ReadAllText(ConfigPath))!.AsObject();
            change(json);
            string path = Path.Combine(Path.GetTempPath(), $"tg-nomic-{Guid.NewGuid():N}.json");
            File.WriteAllText(path, json.ToJsonString());
            try { return HfConfig.Read(path); }
            finally { File.Delete(path); }
        }
        Assert.Equal(3072, Variant(j => j["n_inner"] = 3072).IntermediateSize);          // nomic-embed-text-v1.5: unchanged
        Assert.Equal(3328, Variant(j => j["n_inner"] = 3073).IntermediateSize);
        Assert.Equal(256, Variant(j => j["n_inner"] = null).IntermediateSize);           // int(8·24/3) = 64 → 256
        Assert.Equal(64, Variant(j => j["pad_vocab_size_multiple"] = 64).VocabSize);     // 53 → 64 rows
        Assert.Equal(-1, Variant(j => j.Remove("pad_token_id")).PadTokenId);            // GPT2Config has none: no padding row
        Assert.Equal(1000.0, Variant(j => j.Remove("rotary_emb_base")).RopeTheta);       // NomicBertConfig's default, not 10000
        Assert.Equal(2048, Variant(j => j.Remove("rotary_scaling_factor")).RotaryUnscaledPositions); // absent → 1.0: NTK beyond 2048
        HfConfig biased = Variant(j => { j.Remove("qkv_proj_bias"); j.Remove("mlp_fc1_bias"); j.Remove("mlp_fc2_bias"); });
        Assert.True(biased.QkvBias && biased.OutputBias && biased.MlpBias && biased.MlpOutputBias); // NomicBertConfig defaults them to true

        foreach (Action<JsonObject> refused in new Action<JsonObject>[]
        {
            j => j["prenorm"] = true,
            j => j.Remove("rotary_emb_fraction"),            // default 0.0: learned positions instead
            j => j["rotary_emb_fraction"] = 0.5,
            j => j["rotary_emb_interleaved"] = true,
            j => j["rotary_emb_scale_base"] = 512,
            j => j["activation_function"] = "gelu",
            j => j["norm_mlp"] = true,
            j => j["num_heads_kv"] = 2,
        })
            Assert.Throws<NotSupportedException>(() => Variant(refused));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Rotary positions

    /// <summary>
    /// Channel j pairs with j + D/2 and turns by p·base^(−2j/D) (base 1000), computed here per pair in double; a rotated
    /// query and key then give a product that depends only on the distance between their positions.
    /// </summary>
    [Fact]
    public void Rotary_is_half_split_with_base_1000_and_relative()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        var nomic = (HfNomicBert)reference.Model;
        const int length = 40;
        using DisposeScope scope = NewDisposeScope();
        (Tensor cos, Tensor sin) = nomic.RotaryTables(length);
        Assert.Equal(new long[] { length, HeadDim / 2 }, cos.shape);
        double[] q = HfChecks.Normals(HeadDim, seed: 3), k = HfChecks.Normals(HeadDim, seed: 4);
        float[] rotatedQ = Rotated(q), rotatedK = Rotated(k);

        double worstFormula = 0;
        for (int p = 0; p < length; p++)
            for (int j = 0; j < HeadDim / 2; j++)
            {
                double angle = p / Math.Pow(1000.0, 2.0 * j / HeadDim);
                (double c, double s) = (Math.Cos(angle), Math.Sin(angle));
                // The pair (x_j, x_{j+D/2}) as a complex number times e^{iθ}.
                double re = q[j] * c - q[j + HeadDim / 2] * s, im = q[j] * s + q[j + HeadDim / 2] * c;
                worstFormula = Math.Max(worstFormula, Math.Max(Math.Abs(re - rotatedQ[p * HeadDim + j]), Math.Abs(im - rotatedQ[p * HeadDim + j + HeadDim / 2])));
            }
        double worstRelative = 0;
        for (int m = 0; m < length; m++)
            for (int n = 0; n < length; n++)
            {
                int shift = Math.Min(m, n);
                worstRelative = Math.Max(worstRelative, Math.Abs(Dot(rotatedQ, m, rotatedK, n) - Dot(rotatedQ, m - shift, rotatedK, n - shift)));
            }
        double scale = Math.Sqrt(q.Sum(v => v * v) * k.Sum(v => v * v));
        // Base 10000 (Llama's) would be off by far more than rounding: the base matters at these positions.
        double otherBase = Math.Abs(Math.Cos(39 / Math.Pow(1000.0, 2.0 / HeadDim)) - Math.Cos(39 / Math.Pow(10000.0, 2.0 / HeadDim)));
        output.WriteLine($"rotation vs the pairwise formula in double: {worstFormula:E2}; q·k at (m, n) vs (m − s, n − s): {worstRelative / scale:E2} of |q||k|; base 10000 instead would move cos by {otherBase:E2}");
        Assert.True(worstFormula < 2e-5, $"the rotation is off the half-split formula by {worstFormula:E2}");
        Assert.True(worstRelative / scale < 2e-5, $"q·k depends on more than the distance: {worstRelative / scale:E2}");
        Assert.True(otherBase > 1e-2);

        float[] Rotated(double[] x)
        {
            Tensor v = tensor(x, ScalarType.Float32).view(1, 1, 1, HeadDim).expand(1, length, 1, HeadDim); // [B, T, H, D]
            return HfNomicBert.ApplyRotary(v, cos, sin).contiguous().data<float>().ToArray();
        }
        static double Dot(float[] a, int m, float[] b, int n)
        {
            double s = 0;
            for (int j = 0; j < HeadDim; j++) s += (double)a[m * HeadDim + j] * b[n * HeadDim + j];
            return s;
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // The whole encoder written differently

    /// <summary>
    /// The reference's last hidden states of a padded batch against the same model written as plain loops in double
    /// from the modeling file: Wqkv rows Q | K | V per head, each pair rotated by its angle, scores over √D with padded
    /// keys skipped, post-LN residuals, fc2(fc11·silu(fc12)).
    /// </summary>
    [Fact]
    public void Encoder_equals_a_plain_loop_implementation()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        const int batch = 2, length = 9;
        int[] tokens = Tokens(batch * length, seed: 5), lengths = [length, 6];
        int[] mask = Enumerable.Range(0, batch * length).Select(i => i % length < lengths[i / length] ? 1 : 0).ToArray();
        for (int i = 0; i < mask.Length; i++) if (mask[i] == 0) tokens[i] = 0;
        float[] expected = reference.LastHiddenState(tokens, batch, length, mask);
        Func<string, double[]> w = name => reference.ParameterValues(name).Select(v => (double)v).ToArray();

        double worst = 0, largest = 0;
        for (int b = 0; b < batch; b++)
        {
            int n = lengths[b];
            var h = new double[n][];
            for (int t = 0; t < n; t++)
            {
                double[] word = Row(w("embeddings.word_embeddings.weight"), tokens[b * length + t], D), type = Row(w("embeddings.token_type_embeddings.weight"), 0, D);
                h[t] = Norm(word.Zip(type, (x, y) => x + y).ToArray(), "emb_ln");
            }
            for (int l = 0; l < Layers; l++)
            {
                string p = $"encoder.layers.{l}.";
                double[] wqkv = w(p + "attn.Wqkv.weight");
                double[][] q = h.Select(x => MatVec(wqkv, x, 0, D)).ToArray(), k = h.Select(x => MatVec(wqkv, x, D, D)).ToArray(), v = h.Select(x => MatVec(wqkv, x, 2 * D, D)).ToArray();
                for (int t = 0; t < n; t++) { Rotate(q[t], t); Rotate(k[t], t); }
                var attended = new double[n][];
                for (int t = 0; t < n; t++)
                {
                    attended[t] = new double[D];
                    for (int head = 0; head < Heads; head++)
                    {
                        int o = head * HeadDim;
                        double[] scores = Enumerable.Range(0, n).Select(u => Enumerable.Range(o, HeadDim).Sum(j => q[t][j] * k[u][j]) / Math.Sqrt(HeadDim)).ToArray();
                        double top = scores.Max(), total = scores.Sum(s => Math.Exp(s - top));
                        for (int u = 0; u < n; u++)
                            for (int j = o; j < o + HeadDim; j++) attended[t][j] += Math.Exp(scores[u] - top) / total * v[u][j];
                    }
                }
                double[] outProj = w(p + "attn.out_proj.weight"), fc11 = w(p + "mlp.fc11.weight"), fc12 = w(p + "mlp.fc12.weight"), fc2 = w(p + "mlp.fc2.weight");
                for (int t = 0; t < n; t++)
                {
                    double[] a = Norm(MatVec(outProj, attended[t], 0, D).Zip(h[t], (x, y) => x + y).ToArray(), p + "norm1");
                    double[] up = MatVec(fc11, a, 0, Inner), gate = MatVec(fc12, a, 0, Inner);
                    double[] gated = up.Zip(gate, (u, g) => u * g / (1 + Math.Exp(-g))).ToArray();
                    h[t] = Norm(MatVec(fc2, gated, 0, D).Zip(a, (x, y) => x + y).ToArray(), p + "norm2");
                }
            }
            for (int t = 0; t < n; t++)
                for (int j = 0; j < D; j++)
                {
                    largest = Math.Max(largest, Math.Abs(h[t][j]));
                    worst = Math.Max(worst, Math.Abs(h[t][j] - expected[(b * length + t) * D + j]));
                }
        }
        output.WriteLine($"libtorch vs plain loops in double: {worst / largest:E2} of the largest hidden value");
        Assert.True(worst / largest < 1e-5, $"the reference differs from the loops by {worst / largest:E2}");

        double[] Norm(double[] x, string prefix)
        {
            double mean = x.Average(), variance = x.Sum(v => (v - mean) * (v - mean)) / x.Length;
            double[] gamma = w(prefix + ".weight"), beta = w(prefix + ".bias");
            return x.Select((v, j) => (v - mean) / Math.Sqrt(variance + 1e-12) * gamma[j] + beta[j]).ToArray();
        }
        static void Rotate(double[] x, int position)
        {
            for (int head = 0; head < Heads; head++)
                for (int j = 0; j < HeadDim / 2; j++)
                {
                    double angle = position * Math.Pow(1000.0, -2.0 * j / HeadDim);
                    int a = head * HeadDim + j, b = a + HeadDim / 2;
                    (x[a], x[b]) = (x[a] * Math.Cos(angle) - x[b] * Math.Sin(angle), x[b] * Math.Cos(angle) + x[a] * Math.Sin(angle));
                }
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Padding

    [Fact]
    public void Sentence_embedding_ignores_padding()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        const int length = 9, real = 5;
        int[] tokens = Tokens(2 * length, seed: 6);
        int[] mask = Enumerable.Range(0, 2 * length).Select(i => i < real || i >= length ? 1 : 0).ToArray();
        for (int i = real; i < length; i++) tokens[i] = 0;

        float[] padded = reference.SentenceEmbeddings(tokens, mask, 2, length);
        float[] alone = reference.SentenceEmbeddings(tokens[..real], Enumerable.Repeat(1, real).ToArray(), 1, real);
        float[] other = reference.SentenceEmbeddings(tokens[length..], Enumerable.Repeat(1, length).ToArray(), 1, length);
        float[] unmasked = reference.SentenceEmbeddings(tokens[..length], Enumerable.Repeat(1, length).ToArray(), 1, length);
        float[] hiddenPadded = reference.LastHiddenState(tokens, 2, length, mask), hiddenAlone = reference.LastHiddenState(tokens[..real], 1, real);

        double paddedError = MaxAbs(padded[..D], alone), otherError = MaxAbs(padded[D..], other), hiddenError = MaxAbs(hiddenPadded[..(real * D)], hiddenAlone);
        double withoutMask = MaxAbs(unmasked, alone);
        output.WriteLine($"padded vs alone: embedding {paddedError:E2}, hidden states {hiddenError:E2}; the unpadded row {otherError:E2}; padding left unmasked moves it by {withoutMask:E2}");
        Assert.True(paddedError < 1e-6 && hiddenError < 1e-5 && otherError < 1e-6, $"padding changed the results: {paddedError:E2}, {hiddenError:E2}, {otherError:E2}");
        Assert.True(withoutMask > 1e-2, "the padding hardly matters even unmasked: the test would prove nothing");
        for (int b = 0; b < 2; b++) Assert.Equal(1.0, Math.Sqrt(padded.Skip(b * D).Take(D).Sum(v => (double)v * v)), 6);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Gradients

    /// <summary>
    /// The float64 reference's gradients of Σ embeddings ⊙ upstream against central differences (entries of Q, K and V
    /// rows of a Wqkv, the gate and up projections, the embeddings, a norm), and the float32 gradients against float64.
    /// The padding row of the word embeddings gets no gradient from padded lookups; row 1 of the token types none at all.
    /// </summary>
    [Fact]
    public void Gradients_match_central_differences()
    {
        using HfReference precise = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        using HfReference single = HfReference.Create(ConfigPath, Seed);
        const int batch = 2, length = 7;
        int[] tokens = Tokens(batch * length, seed: 8);
        int[] mask = Enumerable.Range(0, batch * length).Select(i => i < length + 4 ? 1 : 0).ToArray();
        for (int i = 0; i < mask.Length; i++) if (mask[i] == 0) tokens[i] = 0;
        tokens[3] = 0; // a real token with the padding id: its lookup passes no gradient (padding_idx), its value still counts
        float[] upstream = HfChecks.Normals(batch * D, seed: 10).Select(v => (float)v).ToArray();
        Dictionary<string, float[]> gradients = precise.EmbeddingGradients(tokens, mask, batch, length, upstream);
        Dictionary<string, float[]> singleGradients = single.EmbeddingGradients(tokens, mask, batch, length, upstream);
        Assert.Equal(precise.Model.UsedParameters.Select(e => e.Name).Order(StringComparer.Ordinal), gradients.Keys.Order(StringComparer.Ordinal));
        Assert.DoesNotContain("pooler.dense.weight", gradients.Keys);
        double Objective() => CentralDifferences.Evaluate(() => precise.EmbeddingObjective(tokens, mask, batch, length, upstream));

        var rng = new Random(11);
        var checks = new (string Name, int From, int To)[]
        {
            ("encoder.layers.0.attn.Wqkv.weight", 0, D * D),                  // a query row
            ("encoder.layers.0.attn.Wqkv.weight", D * D, 2 * D * D),          // a key row
            ("encoder.layers.1.attn.Wqkv.weight", 2 * D * D, 3 * D * D),      // a value row
            ("encoder.layers.1.mlp.fc11.weight", 0, Inner * D),
            ("encoder.layers.0.mlp.fc12.weight", 0, Inner * D),
            ("encoder.layers.1.mlp.fc2.weight", 0, D * Inner),
            ("embeddings.word_embeddings.weight", D, Vocab * D),              // not the padding row
            ("embeddings.token_type_embeddings.weight", 0, D),
            ("emb_ln.weight", 0, D),
            ("encoder.layers.0.norm1.bias", 0, D),
        };
        const double h = 1e-5;
        foreach ((string name, int from, int to) in checks)
        {
            float[] g = gradients[name];
            double largest = g[from..to].Max(v => Math.Abs(v));
            int[] candidates = Enumerable.Range(from, to - from).Where(i => Math.Abs(g[i]) >= 0.1 * largest).ToArray();
            int index = candidates[rng.Next(candidates.Length)];
            Tensor values = precise.Model[name];
            double original = CentralDifferences.Evaluate(() => values.view(-1)[index]);
            double Shifted(double by)
            {
                CentralDifferences.Evaluate(() => values.view(-1)[index].fill_(original + by));
                return Objective();
            }
            double difference = (Shifted(h) - Shifted(-h)) / (2 * h);
            Shifted(0);
            double error = Math.Abs(difference - g[index]);
            output.WriteLine($"{name}[{index}]: analytic {g[index]:E6}, central difference {difference:E6}, error {error / Math.Abs(g[index]):E2} relative");
            Assert.True(error <= 1e-6 * Math.Abs(g[index]) + 1e-9, $"{name}[{index}]: analytic {g[index]} vs central difference {difference}");
        }

        float[] padRow = gradients["embeddings.word_embeddings.weight"][..D], typeRow = gradients["embeddings.token_type_embeddings.weight"][D..];
        Assert.All(padRow, v => Assert.Equal(0f, v));
        Assert.All(typeRow, v => Assert.Equal(0f, v));

        double worst = 0;
        string worstName = "";
        foreach ((string name, float[] g) in gradients)
        {
            double norm = Math.Sqrt(g.Sum(v => (double)v * v));
            Assert.True(norm > 1e-6, $"the gradient of {name} is zero");
            double error = Math.Sqrt(g.Zip(singleGradients[name], (a, b) => ((double)a - b) * ((double)a - b)).Sum()) / norm;
            if (error > worst) (worst, worstName) = (error, name);
        }
        output.WriteLine($"float32 vs float64 gradients: worst {worst:E2} of the tensor's norm ({worstName})");
        Assert.True(worst < 1e-4, $"the float32 gradient of {worstName} differs from float64 by {worst:E2}");
    }

    // ------------------------------------------------------------------------------------------------------------
    // Files

    /// <summary>NomicBertModel's names and shapes (fc11/fc12 at the rounded width), the pooler only on request, no buffers.</summary>
    [Fact]
    public void Saved_file_holds_nomic_bert_model_names()
    {
        string folder = Path.Combine(Path.GetTempPath(), "tg-nomic-" + Guid.NewGuid().ToString("N"));
        try
        {
            using HfReference reference = HfReference.Create(ConfigPath, Seed);
            var expected = new List<(string, long[])>
            {
                ("embeddings.word_embeddings.weight", [Vocab, D]), ("embeddings.token_type_embeddings.weight", [2, D]),
                ("emb_ln.weight", [D]), ("emb_ln.bias", [D]),
            };
            for (int i = 0; i < Layers; i++)
                expected.AddRange(new (string, long[])[]
                {
                    ($"encoder.layers.{i}.attn.Wqkv.weight", [3 * D, D]), ($"encoder.layers.{i}.attn.out_proj.weight", [D, D]),
                    ($"encoder.layers.{i}.mlp.fc11.weight", [Inner, D]), ($"encoder.layers.{i}.mlp.fc12.weight", [Inner, D]), ($"encoder.layers.{i}.mlp.fc2.weight", [D, Inner]),
                    ($"encoder.layers.{i}.norm1.weight", [D]), ($"encoder.layers.{i}.norm1.bias", [D]), ($"encoder.layers.{i}.norm2.weight", [D]), ($"encoder.layers.{i}.norm2.bias", [D]),
                });
            foreach (bool pooler in new[] { false, true })
            {
                reference.Save(folder, new HfWriteOptions(IncludeUnusedHeads: pooler));
                var want = new List<(string, long[])>(expected);
                if (pooler) want.AddRange(new (string, long[])[] { ("pooler.dense.weight", [D, D]), ("pooler.dense.bias", [D]) });
                Dictionary<string, long[]> stored = SafeTensorsReader.Shapes(Path.Combine(folder, "model.safetensors"));
                Assert.Equal(want.Select(e => e.Item1).Order(StringComparer.Ordinal), stored.Keys.Order(StringComparer.Ordinal));
                foreach ((string name, long[] shape) in want) Assert.True(shape.SequenceEqual(stored[name]), $"{name}: [{string.Join(",", stored[name])}]");
            }
            Assert.Throws<ArgumentException>(() => reference.Save(folder, new HfWriteOptions(Prefix: true)));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    // ----- helpers -----

    private static double[] Row(double[] table, int row, int width) => table.AsSpan(row * width, width).ToArray();

    /// <summary>rows [from, from + count) of a row-major [·, x.Length] matrix times x.</summary>
    private static double[] MatVec(double[] matrix, double[] x, int from, int count)
    {
        var y = new double[count];
        for (int r = 0; r < count; r++)
            for (int c = 0; c < x.Length; c++) y[r] += matrix[(from + r) * x.Length + c] * x[c];
        return y;
    }

    /// <summary>Tokens in [1, Vocab): never the padding id 0.</summary>
    private static int[] Tokens(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(1, Vocab)).ToArray();
    }

    private static double MaxAbs(float[] a, float[] b)
    {
        Assert.Equal(b.Length, a.Length);
        return a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();
    }
}
