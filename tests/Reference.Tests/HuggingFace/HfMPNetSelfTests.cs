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
/// Checks of the MPNet reference (<see cref="HfMPNet"/>) itself: its config reading against configuration_mpnet.py and
/// modeling_mpnet.py, the relative-position buckets against values worked out by hand, the position bias and the
/// position ids, the whole encoder against a plain-loop float64 implementation, padding invariance, gradients against
/// central differences in float64, and the files it writes.
/// </summary>
public sealed class HfMPNetSelfTests(ITestOutputHelper output)
{
    private const long Seed = 2718;
    private const int Vocab = 47, D = 30, Heads = 3, HeadDim = 10, Inner = 37, Layers = 2, Positions = 48, Buckets = 32, Pad = 1;

    private static string ConfigPath => HfFixtures.ConfigPath(HfFixtures.MPNet);

    // ------------------------------------------------------------------------------------------------------------
    // Config

    [Fact]
    public void Config_reads_mpnet_keys_and_the_hard_coded_padding_id()
    {
        HfConfig c = HfConfig.Read(ConfigPath);
        Assert.Equal((HfFamily.MPNet, "mpnet", Vocab, D, Layers, Heads, HeadDim, Inner, Positions, "gelu", 1e-5),
            (c.Family, c.ModelType, c.VocabSize, c.HiddenSize, c.Layers, c.Heads, c.HeadDim, c.IntermediateSize, c.MaxPositions, c.Activation, c.NormEps));
        Assert.Equal((Pad, true, Buckets, 128, 0), (c.PadTokenId, c.PositionsFromPadding, c.RelativeBuckets, c.RelativeMaxDistance, c.TypeVocabSize));

        HfConfig Variant(Action<JsonObject> change)
        {
            JsonObject json = JsonNode.Parse(File.ReadAllText(ConfigPath))!.AsObject();
            change(json);
            string path = Path.Combine(Path.GetTempPath(), $"tg-mpnet-{Guid.NewGuid():N}.json");
            File.WriteAllText(path, json.ToJsonString());
            try { return HfConfig.Read(path); }
            finally { File.Delete(path); }
        }
        Assert.Equal(1e-12, Variant(j => j.Remove("layer_norm_eps")).NormEps);                  // MPNetConfig's default, not all-mpnet-base-v2's
        Assert.Equal(32, Variant(j => j.Remove("relative_attention_num_buckets")).RelativeBuckets);
        Assert.Equal(40, Variant(j => j["relative_attention_num_buckets"] = 40).RelativeBuckets); // rows 32… never read
        Assert.Equal(Pad, Variant(j => j["pad_token_id"] = 0).PadTokenId);                      // MPNetEmbeddings hard-codes 1
        Assert.Equal(30527, Variant(j => j.Remove("vocab_size")).VocabSize);
        Assert.Throws<InvalidDataException>(() => Variant(j => j["relative_attention_num_buckets"] = 16)); // bucket 17 would miss
        Assert.Throws<InvalidDataException>(() => Variant(j => j["num_attention_heads"] = 4));               // 30 / 4

        // Position ids reach length + 1: 48 rows serve 46 tokens.
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        Assert.Equal(46 * D, reference.LastHiddenState(Tokens(46, seed: 1), 1, 46).Length);
        Assert.Throws<ArgumentException>(() => reference.LastHiddenState(Tokens(47, seed: 1), 1, 47));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Positions

    /// <summary>
    /// MPNetEncoder.relative_position_bucket of key − query, worked out by hand from the formula: n = query − key; keys
    /// after the query (n &lt; 0) add 16; |n| &lt; 8 is its own bucket; else 8 + ⌊log(|n|/8)/log(16)·8⌋ capped at 15, so
    /// bucket 8 + k starts at ⌈8·√2^k⌉: 8, 12 (8√2 ≈ 11.31), 16, 23 (16√2 ≈ 22.63), 32, 46 (≈ 45.25), 64, 91 (≈ 90.51), and
    /// 128 (8 + 8 = 16) is capped to 15. At 16, 32 and 64 the quotient is exact in float32 (log 2^k / log 16 = k/4, the
    /// float32 logs of 4 and 16 being 2 and 4 times that of 2), so they open their buckets.
    /// </summary>
    [Fact]
    public void Buckets_match_hand_worked_values()
    {
        var expected = new (int Offset, int Bucket)[]
        {
            (0, 0), (1, 17), (-1, 1), (7, 23), (-7, 7), (8, 24), (-8, 8), (11, 24), (-11, 8), (12, 25), (-12, 9),
            (15, 25), (-15, 9), (16, 26), (-16, 10), (22, 26), (-22, 10), (23, 27), (-23, 11), (31, 27), (-31, 11),
            (32, 28), (-32, 12), (45, 28), (-45, 12), (46, 29), (-46, 13), (63, 29), (-63, 13), (64, 30), (-64, 14),
            (90, 30), (-90, 14), (91, 31), (-91, 15), (127, 31), (-127, 15), (128, 31), (-128, 15), (500, 31), (-500, 15),
        };
        int[] buckets = HfReference.MPNetRelativePositionBuckets(expected.Select(e => e.Offset).ToArray());
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i].Bucket == buckets[i], $"offset {expected[i].Offset}: bucket {buckets[i]}, by hand {expected[i].Bucket}");

        // Every offset up to ±600 from the hand-worked thresholds, and T5's bidirectional bucket (the same formula with
        // the sign read the other way round: key − query > 0 adds half the buckets) agrees.
        int[] offsets = Enumerable.Range(-600, 1201).ToArray();
        int[] all = HfReference.MPNetRelativePositionBuckets(offsets), t5 = HfReference.T5RelativePositionBuckets(offsets, bidirectional: true, 32, 128);
        for (int i = 0; i < offsets.Length; i++)
        {
            Assert.True(all[i] == HandBucket(offsets[i]), $"offset {offsets[i]}: bucket {all[i]}, by hand {HandBucket(offsets[i])}");
            Assert.Equal(t5[i], all[i]);
        }
        Assert.Equal(32, all.Distinct().Count() + 1); // every bucket but 16 (a key after the query at distance 0) is reached
        Assert.DoesNotContain(16, all);
    }

    /// <summary>The bucket of key − query from the hand-worked thresholds (see <see cref="Buckets_match_hand_worked_values"/>).</summary>
    private static int HandBucket(int offset)
    {
        int distance = Math.Abs(offset), after = offset > 0 ? 16 : 0;
        if (distance < 8) return after + distance;
        int[] starts = [8, 12, 16, 23, 32, 46, 64, 91];
        return after + 8 + starts.Count(s => distance >= s) - 1;
    }

    /// <summary>
    /// The position bias is table[bucket(j − i), h] for query i and key j over plain indices, and the position ids count
    /// the real tokens from 2 with every padding id at 1, even inside the sentence.
    /// </summary>
    [Fact]
    public void Position_bias_and_position_ids()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        const int length = 20;
        float[] bias = reference.MPNetPositionBias(length), table = reference.ParameterValues("encoder.relative_attention_bias.weight");
        Assert.Equal(Heads * length * length, bias.Length);
        for (int h = 0; h < Heads; h++)
            for (int i = 0; i < length; i++)
                for (int j = 0; j < length; j++)
                    Assert.Equal(table[HandBucket(j - i) * Heads + h], bias[(h * length + i) * length + j]);
        // A table laid out [heads, buckets] would read other values: the check above can tell.
        Assert.NotEqual(table[1 * Heads + 0], table[0 * Heads + 1]);

        // Each row counts afresh; <s> (0) and </s> (2) are real tokens.
        int[] tokens = [0, 5, 1, 7, 9, 1, /**/ 1, 2, 1, 1, 3, 4];
        Assert.Equal(new[] { 2, 3, 1, 4, 5, 1, /**/ 1, 2, 1, 1, 3, 4 }, reference.MPNetPositionIds(tokens, 2, 6));
    }

    // ------------------------------------------------------------------------------------------------------------
    // The whole encoder written differently

    /// <summary>
    /// The reference's last hidden states of a padded batch (right padding, a real token with the padding id inside a
    /// sentence) at every position against the same model written as plain loops in double from the modeling file: word
    /// rows plus RoBERTa-position rows, LayerNorm; per layer q, k, v, scores over √D plus table[bucket(key − query)] with
    /// padded keys skipped, o, post-LN residuals, erf GELU. Taking the bias from the position ids instead of the indices
    /// would be off by far more.
    /// </summary>
    [Fact]
    public void Encoder_equals_a_plain_loop_implementation()
    {
        Assert.Equal(0.5204998778130465, Erf(0.5), 14);
        Assert.Equal(0.8427007929497149, Erf(1.0), 14);
        Assert.Equal(-0.9953222650189527, Erf(-2.0), 14);
        Assert.Equal(0.9999779095030014, Erf(3.0), 14);

        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        const int batch = 3, length = 11;
        int[] lengths = [length, 7, 4];
        int[] tokens = Tokens(batch * length, seed: 5);
        int[] mask = Enumerable.Range(0, batch * length).Select(i => i % length < lengths[i / length] ? 1 : 0).ToArray();
        for (int i = 0; i < mask.Length; i++) if (mask[i] == 0) tokens[i] = Pad;
        tokens[4] = Pad; // real (mask 1) but the padding id: position 1, the later tokens do not advance, its bias by index
        float[] expected = reference.LastHiddenState(tokens, batch, length, mask);

        double[] loop = PlainLoop(reference, tokens, mask, batch, length, biasFromPositionIds: false);
        double[] wrong = PlainLoop(reference, tokens, mask, batch, length, biasFromPositionIds: true);
        double largest = loop.Max(Math.Abs), worst = 0, wrongWorst = 0;
        for (int i = 0; i < loop.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(loop[i] - expected[i]));
            wrongWorst = Math.Max(wrongWorst, Math.Abs(wrong[i] - expected[i]));
        }
        output.WriteLine($"libtorch vs plain loops in double: {worst / largest:E2} of the largest hidden value; with the bias from the position ids instead: {wrongWorst / largest:E2}");
        Assert.True(worst / largest < 1e-5, $"the reference differs from the loops by {worst / largest:E2}");
        Assert.True(wrongWorst / largest > 1e-3, "the bias's positions hardly matter: the test would prove nothing");
    }

    private static double[] PlainLoop(HfReference reference, int[] tokens, int[] mask, int batch, int length, bool biasFromPositionIds)
    {
        var cache = new Dictionary<string, double[]>();
        double[] W(string name) => cache.TryGetValue(name, out double[]? v) ? v : cache[name] = reference.ParameterValues(name).Select(x => (double)x).ToArray();
        double[] table = W("encoder.relative_attention_bias.weight");
        var result = new double[batch * length * D];
        for (int b = 0; b < batch; b++)
        {
            var ids = new int[length];
            for (int t = 0, count = 0; t < length; t++) ids[t] = tokens[b * length + t] == Pad ? Pad : ++count + Pad;
            var h = new double[length][];
            for (int t = 0; t < length; t++)
            {
                double[] word = Row(W("embeddings.word_embeddings.weight"), tokens[b * length + t], D), position = Row(W("embeddings.position_embeddings.weight"), ids[t], D);
                h[t] = Norm(word.Zip(position, (x, y) => x + y).ToArray(), "embeddings.LayerNorm");
            }
            for (int l = 0; l < Layers; l++)
            {
                string p = $"encoder.layer.{l}.";
                double[][] q = h.Select(x => Affine(p + "attention.attn.q", x)).ToArray(), k = h.Select(x => Affine(p + "attention.attn.k", x)).ToArray(), v = h.Select(x => Affine(p + "attention.attn.v", x)).ToArray();
                var attended = new double[length][];
                for (int t = 0; t < length; t++)
                {
                    attended[t] = new double[D];
                    int[] keys = Enumerable.Range(0, length).Where(u => mask[b * length + u] == 1).ToArray();
                    for (int head = 0; head < Heads; head++)
                    {
                        int o = head * HeadDim;
                        double[] scores = keys.Select(u =>
                            Enumerable.Range(o, HeadDim).Sum(j => q[t][j] * k[u][j]) / Math.Sqrt(HeadDim)
                            + table[HandBucket(biasFromPositionIds ? ids[u] - ids[t] : u - t) * Heads + head]).ToArray();
                        double top = scores.Max(), total = scores.Sum(s => Math.Exp(s - top));
                        for (int n = 0; n < keys.Length; n++)
                            for (int j = o; j < o + HeadDim; j++) attended[t][j] += Math.Exp(scores[n] - top) / total * v[keys[n]][j];
                    }
                }
                for (int t = 0; t < length; t++)
                {
                    double[] a = Norm(Affine(p + "attention.attn.o", attended[t]).Zip(h[t], (x, y) => x + y).ToArray(), p + "attention.LayerNorm");
                    double[] up = Affine(p + "intermediate.dense", a).Select(x => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)))).ToArray();
                    h[t] = Norm(Affine(p + "output.dense", up).Zip(a, (x, y) => x + y).ToArray(), p + "output.LayerNorm");
                }
            }
            for (int t = 0; t < length; t++) h[t].CopyTo(result, (b * length + t) * D);
        }
        return result;

        double[] Affine(string prefix, double[] x)
        {
            double[] weight = W(prefix + ".weight"), bias = W(prefix + ".bias");
            var y = new double[bias.Length];
            for (int r = 0; r < y.Length; r++)
            {
                y[r] = bias[r];
                for (int c = 0; c < x.Length; c++) y[r] += weight[r * x.Length + c] * x[c];
            }
            return y;
        }
        double[] Norm(double[] x, string prefix)
        {
            double mean = x.Average(), variance = x.Sum(v => (v - mean) * (v - mean)) / x.Length;
            double[] gamma = W(prefix + ".weight"), beta = W(prefix + ".bias");
            return x.Select((v, j) => (v - mean) / Math.Sqrt(variance + 1e-5) * gamma[j] + beta[j]).ToArray();
        }
    }

    /// <summary>
    /// erf in double: its Maclaurin series below 2, else 1 − erfc by erfc's continued fraction
    /// e^(−z²)/√π / (z + ½/(z + 1/(z + 3/2/(z + …)))).
    /// </summary>
    internal static double Erf(double x)
    {
        double z = Math.Abs(x), value;
        if (z < 2)
        {
            double term = z, sum = 0;                     // term = (−1)ⁿ z^(2n+1) / n!
            for (int n = 0; Math.Abs(term) > 1e-18; n++)
            {
                sum += term / (2 * n + 1);
                term *= -z * z / (n + 1);
            }
            value = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            double fraction = z;
            for (int k = 80; k >= 1; k--) fraction = z + k / 2.0 / fraction;
            value = 1 - Math.Exp(-z * z) / Math.Sqrt(Math.PI) / fraction;
        }
        return Math.Sign(x) * value;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Padding

    /// <summary>
    /// A right-padded row equals its sentence alone at its own length (positions from the padding id, the bias by index:
    /// with the pads after the sentence both agree), and so does a left-padded one (the position ids skip the pads, the
    /// bias depends only on key − query); the unpadded row is untouched. Left unmasked, the pads would move the result.
    /// </summary>
    [Fact]
    public void Sentence_embedding_ignores_padding()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        const int length = 9, real = 5;
        int[] tokens = Tokens(3 * length, seed: 6);
        int[] mask = Enumerable.Repeat(1, 3 * length).ToArray();
        for (int i = real; i < length; i++) (tokens[i], mask[i]) = (Pad, 0);                     // row 0: right padding
        for (int i = 2 * length; i < 2 * length + length - real; i++) (tokens[i], mask[i]) = (Pad, 0); // row 2: left padding

        float[] padded = reference.SentenceEmbeddings(tokens, mask, 3, length);
        float[] alone = reference.SentenceEmbeddings(tokens[..real], Enumerable.Repeat(1, real).ToArray(), 1, real);
        float[] leftAlone = reference.SentenceEmbeddings(tokens[^real..], Enumerable.Repeat(1, real).ToArray(), 1, real);
        float[] other = reference.SentenceEmbeddings(tokens[length..(2 * length)], Enumerable.Repeat(1, length).ToArray(), 1, length);
        float[] unmasked = reference.SentenceEmbeddings(tokens[..length], Enumerable.Repeat(1, length).ToArray(), 1, length);
        float[] hiddenPadded = reference.LastHiddenState(tokens, 3, length, mask), hiddenAlone = reference.LastHiddenState(tokens[..real], 1, real);

        double paddedError = MaxAbs(padded[..D], alone), leftError = MaxAbs(padded[(2 * D)..], leftAlone), otherError = MaxAbs(padded[D..(2 * D)], other);
        double hiddenError = MaxAbs(hiddenPadded[..(real * D)], hiddenAlone), withoutMask = MaxAbs(unmasked, alone);
        output.WriteLine($"padded vs alone: embedding {paddedError:E2} (left-padded {leftError:E2}), hidden states {hiddenError:E2}; the unpadded row {otherError:E2}; padding left unmasked moves it by {withoutMask:E2}");
        Assert.True(paddedError < 1e-6 && leftError < 1e-6 && hiddenError < 1e-5 && otherError < 1e-6, $"padding changed the results: {paddedError:E2}, {leftError:E2}, {hiddenError:E2}, {otherError:E2}");
        Assert.True(withoutMask > 1e-2, "the padding hardly matters even unmasked: the test would prove nothing");
        for (int b = 0; b < 3; b++) Assert.Equal(1.0, Math.Sqrt(padded.Skip(b * D).Take(D).Sum(v => (double)v * v)), 6);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Gradients

    /// <summary>
    /// The float64 reference's gradients of Σ embeddings ⊙ upstream against central differences (q, k, v, o, the
    /// feed-forward, both embedding tables, norms, and the relative bias table's rows for keys before and after the
    /// query), and the float32 gradients against float64. Row 1 of both embedding tables gets none (padding_idx), nor do
    /// the bias table's rows no offset of the batch reaches, nor, but for rounding, the key biases.
    /// </summary>
    [Fact]
    public void Gradients_match_central_differences()
    {
        using HfReference precise = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        using HfReference single = HfReference.Create(ConfigPath, Seed);
        const int batch = 2, length = 7;
        int[] tokens = Tokens(batch * length, seed: 8);
        int[] mask = Enumerable.Range(0, batch * length).Select(i => i < length + 4 ? 1 : 0).ToArray();
        for (int i = 0; i < mask.Length; i++) if (mask[i] == 0) tokens[i] = Pad;
        tokens[3] = Pad; // a real token with the padding id: its lookups pass no gradient (padding_idx), its values still count
        float[] upstream = HfChecks.Normals(batch * D, seed: 10).Select(v => (float)v).ToArray();
        Dictionary<string, float[]> gradients = precise.EmbeddingGradients(tokens, mask, batch, length, upstream);
        Dictionary<string, float[]> singleGradients = single.EmbeddingGradients(tokens, mask, batch, length, upstream);
        Assert.Equal(precise.Model.UsedParameters.Select(e => e.Name).Order(StringComparer.Ordinal), gradients.Keys.Order(StringComparer.Ordinal));
        Assert.DoesNotContain("pooler.dense.weight", gradients.Keys);
        Assert.Contains("encoder.relative_attention_bias.weight", gradients.Keys);

        const string table = "encoder.relative_attention_bias.weight";
        var checks = new (string Name, int From, int To)[]
        {
            ("encoder.layer.0.attention.attn.q.weight", 0, D * D),
            ("encoder.layer.1.attention.attn.k.weight", 0, D * D),
            ("encoder.layer.0.attention.attn.v.bias", 0, D),
            ("encoder.layer.1.attention.attn.o.weight", 0, D * D),
            ("encoder.layer.0.intermediate.dense.weight", 0, Inner * D),
            ("encoder.layer.1.output.dense.weight", 0, D * Inner),
            ("embeddings.word_embeddings.weight", 2 * D, Vocab * D),          // not the padding row
            ("embeddings.position_embeddings.weight", 2 * D, Positions * D),  // nor here
            ("embeddings.LayerNorm.weight", 0, D),
            ("encoder.layer.1.attention.LayerNorm.bias", 0, D),
            (table, 0, 16 * Heads),                                           // keys at or before the query
            (table, 16 * Heads, Buckets * Heads),                             // keys after it
        };
        var rng = new Random(11);
        const double h = 1e-5;
        double Objective() => CentralDifferences.Evaluate(() => precise.EmbeddingObjective(tokens, mask, batch, length, upstream));
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

        Assert.All(gradients["embeddings.word_embeddings.weight"][D..(2 * D)], v => Assert.Equal(0f, v));
        Assert.All(gradients["embeddings.position_embeddings.weight"][D..(2 * D)], v => Assert.Equal(0f, v));
        // Offsets −6 … 6 reach buckets 0–6 and 17–22 only.
        float[] tableGradient = gradients[table];
        for (int bucket = 0; bucket < Buckets; bucket++)
        {
            bool reached = bucket <= 6 || bucket is >= 17 and <= 22;
            double norm = Math.Sqrt(Enumerable.Range(0, Heads).Sum(head => (double)tableGradient[bucket * Heads + head] * tableGradient[bucket * Heads + head]));
            Assert.True(reached ? norm > 1e-9 : norm == 0, $"bucket {bucket}: gradient norm {norm}");
        }

        double worst = 0;
        string worstName = "";
        foreach ((string name, float[] g) in gradients)
        {
            double norm = Math.Sqrt(g.Sum(v => (double)v * v));
            // A key bias adds q·b_k to every score of the query alike, which softmax cancels: its gradient is rounding.
            if (name.EndsWith(".attn.k.bias", StringComparison.Ordinal))
            {
                Assert.True(norm < 1e-12, $"the gradient of {name} is {norm:E2}, not zero");
                continue;
            }
            Assert.True(norm > 1e-6, $"the gradient of {name} is zero");
            double error = Math.Sqrt(g.Zip(singleGradients[name], (a, b) => ((double)a - b) * ((double)a - b)).Sum()) / norm;
            if (error > worst) (worst, worstName) = (error, name);
        }
        output.WriteLine($"float32 vs float64 gradients: worst {worst:E2} of the tensor's norm ({worstName})");
        Assert.True(worst < 1e-4, $"the float32 gradient of {worstName} differs from float64 by {worst:E2}");
    }

    // ------------------------------------------------------------------------------------------------------------
    // Files

    /// <summary>
    /// MPNetModel's bare names and shapes (the position_ids buffer unless left out, the pooler on request), and
    /// MPNetForMaskedLM's layout: <c>mpnet.</c> everywhere, no pooler, its <c>lm_head</c> on request with the decoder a copy
    /// of the word embeddings and its bias of <c>lm_head.bias</c>, in BF16 too.
    /// </summary>
    [Fact]
    public void Saved_files_hold_mpnet_model_or_masked_lm_names()
    {
        string folder = Path.Combine(Path.GetTempPath(), "tg-mpnet-" + Guid.NewGuid().ToString("N"));
        try
        {
            using HfReference reference = HfReference.Create(ConfigPath, Seed);
            var encoder = new List<(string, long[])>
            {
                ("embeddings.word_embeddings.weight", [Vocab, D]), ("embeddings.position_embeddings.weight", [Positions, D]),
                ("embeddings.LayerNorm.weight", [D]), ("embeddings.LayerNorm.bias", [D]),
                ("encoder.relative_attention_bias.weight", [Buckets, Heads]),
            };
            for (int i = 0; i < Layers; i++)
            {
                string p = $"encoder.layer.{i}.";
                foreach (string x in new[] { "q", "k", "v", "o" })
                    encoder.AddRange(new (string, long[])[] { ($"{p}attention.attn.{x}.weight", [D, D]), ($"{p}attention.attn.{x}.bias", [D]) });
                encoder.AddRange(new (string, long[])[]
                {
                    ($"{p}attention.LayerNorm.weight", [D]), ($"{p}attention.LayerNorm.bias", [D]),
                    ($"{p}intermediate.dense.weight", [Inner, D]), ($"{p}intermediate.dense.bias", [Inner]),
                    ($"{p}output.dense.weight", [D, Inner]), ($"{p}output.dense.bias", [D]),
                    ($"{p}output.LayerNorm.weight", [D]), ($"{p}output.LayerNorm.bias", [D]),
                });
            }
            (string, long[])[] buffer = [("embeddings.position_ids", [1, Positions])];
            (string, long[])[] pooler = [("pooler.dense.weight", [D, D]), ("pooler.dense.bias", [D])];
            (string, long[])[] lmHead =
            [
                ("lm_head.bias", [Vocab]), ("lm_head.dense.weight", [D, D]), ("lm_head.dense.bias", [D]), ("lm_head.layer_norm.weight", [D]),
                ("lm_head.layer_norm.bias", [D]), ("lm_head.decoder.weight", [Vocab, D]), ("lm_head.decoder.bias", [Vocab]),
            ];
            static IEnumerable<(string, long[])> Prefixed(IEnumerable<(string Name, long[] Shape)> e) => e.Select(x => ("mpnet." + x.Name, x.Shape));

            var layouts = new (HfWriteOptions Options, IEnumerable<(string, long[])> Want)[]
            {
                (new HfWriteOptions(), encoder.Concat(buffer)),
                (new HfWriteOptions(IncludeBuffers: false), encoder),
                (new HfWriteOptions(IncludeUnusedHeads: true), encoder.Concat(buffer).Concat(pooler)),
                (new HfWriteOptions(Prefix: true, IncludeBuffers: false), Prefixed(encoder)),
                (new HfWriteOptions(Prefix: true, IncludeUnusedHeads: true), Prefixed(encoder.Concat(buffer)).Concat(lmHead)),
                (new HfWriteOptions(Dtype: HfDtype.BF16, Prefix: true, IncludeUnusedHeads: true), Prefixed(encoder.Concat(buffer)).Concat(lmHead)),
            };
            foreach ((HfWriteOptions options, IEnumerable<(string, long[])> want) in layouts)
            {
                reference.Save(folder, options);
                Dictionary<string, long[]> stored = SafeTensorsReader.Shapes(Path.Combine(folder, "model.safetensors"));
                Assert.Equal(want.Select(e => e.Item1).Order(StringComparer.Ordinal), stored.Keys.Order(StringComparer.Ordinal));
                foreach ((string name, long[] shape) in want) Assert.True(shape.SequenceEqual(stored[name]), $"{name}: [{string.Join(",", stored[name])}]");
            }

            // The last file (BF16, MaskedLM): the tied decoder is the word embeddings, its bias lm_head.bias.
            Dictionary<string, float[]> values = SafeTensorsReader.Bf16(Path.Combine(folder, "model.safetensors"));
            Assert.Equal(reference.ParameterValues("embeddings.word_embeddings.weight"), values["lm_head.decoder.weight"]);
            Assert.Equal(values["lm_head.bias"], values["lm_head.decoder.bias"]);
            Assert.Equal(reference.ParameterValues("encoder.relative_attention_bias.weight"), values["mpnet.encoder.relative_attention_bias.weight"]);
            Assert.NotEqual(values["lm_head.dense.weight"], values["mpnet.encoder.layer.0.attention.attn.q.weight"]);

            Assert.Throws<ArgumentException>(() => reference.Save(folder, new HfWriteOptions(KeepTiedCopy: true)));
            Assert.Throws<ArgumentException>(() => reference.Save(folder, new HfWriteOptions(LegacyGammaBeta: true)));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    // ----- helpers -----

    private static double[] Row(double[] table, int row, int width) => table.AsSpan(row * width, width).ToArray();

    /// <summary>Tokens in [3, Vocab): never the padding id 1 (nor &lt;s&gt; or &lt;/s&gt;).</summary>
    private static int[] Tokens(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(3, Vocab)).ToArray();
    }

    private static double MaxAbs(float[] a, float[] b)
    {
        Assert.Equal(b.Length, a.Length);
        return a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();
    }
}
