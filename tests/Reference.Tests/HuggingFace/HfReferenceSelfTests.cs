using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// Checks of <see cref="HfReference"/> itself, which the generated models are later compared against: properties the
/// Hugging Face formulas must have (causality, padding invariance, relative rotary positions, grouped-query attention as
/// repeated heads, the GELU forms), gradients against central differences in float64, and the fixture files read back.
/// </summary>
public sealed class HfReferenceSelfTests(ITestOutputHelper output)
{
    private const long Seed = 1234;

    public static TheoryData<string> Decoders => new(new[] { "gpt2", "llama-gqa", "llama-mqa", "qwen2" }.Concat(HfFixtures.RopeScaled));

    public static TheoryData<string> AllFixtures => new(HfFixtures.Names.Concat(HfFixtures.RopeScaled));

    // ------------------------------------------------------------------------------------------------------------
    // Configs

    /// <summary>Each fixture's config read with transformers' defaults (n_inner null → 4E, head_dim absent → E/H, …).</summary>
    [Fact]
    public void Configs_read_with_transformers_defaults()
    {
        HfConfig gpt2 = HfConfig.Read(HfFixtures.ConfigPath("gpt2"));
        Assert.Equal((HfFamily.Gpt2, 53, 36, 2, 3, 12, 144, 24, "gelu_new", 1e-5, true),
            (gpt2.Family, gpt2.VocabSize, gpt2.HiddenSize, gpt2.Layers, gpt2.Heads, gpt2.HeadDim, gpt2.IntermediateSize, gpt2.MaxPositions, gpt2.Activation, gpt2.NormEps, gpt2.TieWordEmbeddings));

        HfConfig bert = HfConfig.Read(HfFixtures.ConfigPath("bert"));
        Assert.Equal((HfFamily.Bert, 41, 30, 2, 3, 10, 37, 20, 2, "gelu", 1e-12),
            (bert.Family, bert.VocabSize, bert.HiddenSize, bert.Layers, bert.Heads, bert.HeadDim, bert.IntermediateSize, bert.MaxPositions, bert.TypeVocabSize, bert.Activation, bert.NormEps));

        HfConfig gqa = HfConfig.Read(HfFixtures.ConfigPath("llama-gqa"));
        Assert.Equal((47, 40, 52, 2, 4, 2, 12, 1e-5, 10000.0, false, false, false, false),
            (gqa.VocabSize, gqa.HiddenSize, gqa.IntermediateSize, gqa.Layers, gqa.Heads, gqa.KeyValueHeads, gqa.HeadDim, gqa.NormEps, gqa.RopeTheta, gqa.TieWordEmbeddings, gqa.QkvBias, gqa.OutputBias, gqa.MlpBias));

        HfConfig mqa = HfConfig.Read(HfFixtures.ConfigPath("llama-mqa"));
        Assert.Equal((45, 30, 44, 3, 3, 1, 10, 1e-5, 100000.0, true, false),
            (mqa.VocabSize, mqa.HiddenSize, mqa.IntermediateSize, mqa.Layers, mqa.Heads, mqa.KeyValueHeads, mqa.HeadDim, mqa.NormEps, mqa.RopeTheta, mqa.TieWordEmbeddings, mqa.QkvBias));

        HfConfig qwen = HfConfig.Read(HfFixtures.ConfigPath("qwen2"));
        Assert.Equal((HfFamily.Llama, 51, 36, 44, 2, 6, 2, 6, 1e-6, 1e6, true, true, false, false),
            (qwen.Family, qwen.VocabSize, qwen.HiddenSize, qwen.IntermediateSize, qwen.Layers, qwen.Heads, qwen.KeyValueHeads, qwen.HeadDim, qwen.NormEps, qwen.RopeTheta, qwen.TieWordEmbeddings, qwen.QkvBias, qwen.OutputBias, qwen.MlpBias));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Properties of the forward passes

    /// <summary>Changing the token at position 6 leaves every logit before it bit-identical, and the other sequence's too.</summary>
    [Theory]
    [MemberData(nameof(Decoders))]
    public void Decoders_are_causal(string name)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(name), Seed);
        const int batch = 2, length = 10, changed = 6;
        int vocab = HfConfig.Read(HfFixtures.ConfigPath(name)).VocabSize;
        int[] tokens = RandomTokens(batch * length, vocab, seed: 1);
        int[] edited = (int[])tokens.Clone();
        edited[changed] = (edited[changed] + 1) % vocab;

        float[] before = reference.Logits(tokens, batch, length), after = reference.Logits(edited, batch, length);
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
            {
                float[] x = Row(before, b * length + t, vocab), y = Row(after, b * length + t, vocab);
                bool affected = b == 0 && t >= changed;
                if (affected) Assert.True(MaxAbs(x, y) > 1e-4, $"{name}: position {t} did not change when the token at {changed} did");
                else Assert.True(x.SequenceEqual(y), $"{name}: batch {b} position {t} changed when only the token at {changed} of batch 0 did");
            }
    }

    /// <summary>
    /// A sentence padded from 5 to 8 tokens (garbage ids in the padding, mask 0) has the embedding of the same sentence
    /// alone, to 1e-6; ignoring the mask moves it far more.
    /// </summary>
    [Fact]
    public void Bert_sentence_embedding_ignores_padding()
    {
        using HfReference bert = HfReference.Create(HfFixtures.ConfigPath("bert"), Seed);
        const int hidden = 30, length = 8, real = 5;
        int[] tokens = RandomTokens(2 * length, 41, seed: 2);
        int[] mask = Enumerable.Range(0, 2 * length).Select(i => i < real || i >= length ? 1 : 0).ToArray();

        float[] padded = bert.SentenceEmbeddings(tokens, mask, 2, length);
        float[] alone = bert.SentenceEmbeddings(tokens[..real], Enumerable.Repeat(1, real).ToArray(), 1, real);
        float[] fullAlone = bert.SentenceEmbeddings(tokens[length..], Enumerable.Repeat(1, length).ToArray(), 1, length);
        float[] unmasked = bert.SentenceEmbeddings(tokens[..length], Enumerable.Repeat(1, length).ToArray(), 1, length);

        double paddedError = MaxAbs(padded[..hidden], alone), fullError = MaxAbs(padded[hidden..], fullAlone);
        double withoutMask = MaxAbs(unmasked, alone);
        output.WriteLine($"padded vs alone {paddedError:E2}, unpadded row {fullError:E2}; padding not masked moves it by {withoutMask:E2}");
        Assert.True(paddedError < 1e-6, $"padding changed the embedding by {paddedError:E2}");
        Assert.True(fullError < 1e-6, $"the other row changed by {fullError:E2}");
        Assert.True(withoutMask > 1e-2, "the padding tokens hardly matter even unmasked: the test would prove nothing");
        for (int b = 0; b < 2; b++)
            Assert.Equal(1.0, Math.Sqrt(padded.Skip(b * hidden).Take(hidden).Sum(v => (double)v * v)), 6);
    }

    /// <summary>
    /// Rotary positions pair channel j with j + D/2 (rotate_half) and turn them by p·θ^(−2j/D); a rotated query and key
    /// then give a product that depends only on the distance between their positions.
    /// </summary>
    [Fact]
    public void Rope_is_half_split_and_relative()
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath("llama-gqa"), Seed);
        var llama = (HfLlama)reference.Model;
        const int length = 32, headDim = 12;
        using DisposeScope scope = NewDisposeScope();
        (Tensor cos, Tensor sin) = llama.RotaryTables(length);
        double[] q = RandomNormals(headDim, seed: 3), k = RandomNormals(headDim, seed: 4);
        float[] rotatedQ = Rotated(q), rotatedK = Rotated(k);

        double worstFormula = 0;
        for (int p = 0; p < length; p++)
            for (int j = 0; j < headDim / 2; j++)
            {
                double angle = p * Math.Pow(10000.0, -2.0 * j / headDim);
                double first = q[j] * Math.Cos(angle) - q[j + headDim / 2] * Math.Sin(angle);
                double second = q[j + headDim / 2] * Math.Cos(angle) + q[j] * Math.Sin(angle);
                worstFormula = Math.Max(worstFormula, Math.Max(Math.Abs(first - rotatedQ[p * headDim + j]), Math.Abs(second - rotatedQ[p * headDim + j + headDim / 2])));
            }

        double worstRelative = 0;
        for (int m = 0; m < length; m++)
            for (int n = 0; n < length; n++)
            {
                int shift = Math.Min(m, n);                                                      // the same distance from (0, n − m) or (m − n, 0)
                worstRelative = Math.Max(worstRelative, Math.Abs(Dot(rotatedQ, m, rotatedK, n) - Dot(rotatedQ, m - shift, rotatedK, n - shift)));
            }
        double scale = Math.Sqrt(q.Sum(v => v * v) * k.Sum(v => v * v));
        output.WriteLine($"rotation vs the half-split formula in double: {worstFormula:E2}; q·k at (m, n) vs (m − s, n − s): {worstRelative / scale:E2} of |q||k|");
        Assert.True(worstFormula < 1e-5, $"the rotation is not x[j]·cos − x[j+D/2]·sin, …: off by {worstFormula:E2}");
        Assert.True(worstRelative / scale < 1e-5, $"q·k depends on more than the distance: {worstRelative / scale:E2}");

        float[] Rotated(double[] x)
        {
            Tensor v = tensor(x, ScalarType.Float32).view(1, 1, 1, headDim).expand(1, 1, length, headDim);
            return HfLlama.ApplyRotary(v, cos, sin).contiguous().data<float>().ToArray();
        }
        static double Dot(float[] a, int m, float[] b, int n)
        {
            double s = 0;
            for (int j = 0; j < headDim; j++) s += (double)a[m * headDim + j] * b[n * headDim + j];
            return s;
        }
    }

    /// <summary>
    /// llama-gqa (4 query heads on 2 key/value heads) equals the same model with 4 key/value heads whose k_proj and
    /// v_proj rows are each group's copied: query head h reads key/value head ⌊h/2⌋.
    /// </summary>
    [Fact]
    public void Grouped_query_attention_equals_repeated_key_value_heads()
    {
        string folder = HfChecks.TemporaryFolder("hf-reference-");
        try
        {
            JsonObject json = JsonNode.Parse(File.ReadAllText(HfFixtures.ConfigPath("llama-gqa")))!.AsObject();
            json["num_key_value_heads"] = 4;
            string fullPath = Path.Combine(folder, "config.json");
            File.WriteAllText(fullPath, json.ToJsonString());

            using HfReference grouped = HfReference.Create(HfFixtures.ConfigPath("llama-gqa"), Seed);
            using HfReference full = HfReference.Create(fullPath, Seed + 1);
            const int keyValueHeads = 2, groups = 2, headDim = 12, hidden = 40;
            int[] tokens = RandomTokens(2 * 9, 47, seed: 5);
            float[] unrelated = full.Logits(tokens, 2, 9);
            using (DisposeScope scope = NewDisposeScope())
            using (no_grad())
            {
                foreach (string name in full.ParameterNames)
                {
                    Tensor source = grouped.Model[name];
                    if (name.EndsWith("k_proj.weight", StringComparison.Ordinal) || name.EndsWith("v_proj.weight", StringComparison.Ordinal))
                        source = source.view(keyValueHeads, 1, headDim, hidden).expand(keyValueHeads, groups, headDim, hidden).reshape(keyValueHeads * groups * headDim, hidden);
                    full.Model[name].copy_(source);
                }
            }
            float[] expected = grouped.Logits(tokens, 2, 9), actual = full.Logits(tokens, 2, 9);
            double error = MaxAbs(expected, actual) / expected.Max(Math.Abs), before = MaxAbs(expected, unrelated) / expected.Max(Math.Abs);
            output.WriteLine($"grouped vs repeated heads: {error:E2} of the largest logit (other weights: {before:E2})");
            // Not bit-identical: k_proj/v_proj have twice the rows, so libtorch's matmul blocks them differently (seen:
            // 4.7e-7). Head h reading the wrong key/value head moves the logits by order one.
            Assert.True(error < 5e-6, $"grouped-query attention differs from repeated heads by {error:E2}");
            Assert.True(before > 1e-2, "the two models agreed before their weights were made equal");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// GPT-2's gelu_new is the tanh approximation: it differs from BERT's erf GELU by up to ≈ 4.7e-4 (near x ≈ −2.7 in
    /// MODEL_FAMILIES.md), and equals libtorch's <c>gelu(approximate: "tanh")</c> to float rounding.
    /// </summary>
    [Fact]
    public void Gelu_new_is_the_tanh_form_not_erf()
    {
        using DisposeScope scope = NewDisposeScope();
        Tensor x64 = linspace(-8, 8, 160001, ScalarType.Float64);
        double[] xs = x64.data<double>().ToArray();
        double[] tanhForm = HfActivations.NewGelu(x64).data<double>().ToArray(), erfForm = F.gelu(x64).data<double>().ToArray();
        int worst = 0;
        for (int i = 0; i < xs.Length; i++)
            if (Math.Abs(tanhForm[i] - erfForm[i]) > Math.Abs(tanhForm[worst] - erfForm[worst])) worst = i;
        double gap = Math.Abs(tanhForm[worst] - erfForm[worst]);

        Tensor x32 = x64.to(ScalarType.Float32);
        float[] ours = HfActivations.NewGelu(x32).data<float>().ToArray();
        float[] libtorch = F.gelu(x32, TorchSharp.Modules.GELU.Approximate.tanh).data<float>().ToArray();
        double agreement = MaxAbs(ours, libtorch);
        output.WriteLine($"|gelu_new − erf gelu| ≤ {gap:E3} at x = {xs[worst]:F3}; gelu_new vs libtorch tanh gelu (float32): {agreement:E2}");
        Assert.InRange(gap, 4.5e-4, 5e-4);
        Assert.InRange(Math.Abs(xs[worst]), 2.0, 3.5);
        Assert.True(agreement < 1e-6, $"gelu_new differs from libtorch's tanh GELU by {agreement:E2}");
    }

    /// <summary>
    /// The loss of <see cref="HfReference.LossAndGradients"/> is the cross-entropy of <see cref="HfReference.Logits"/>
    /// at each position against the target at the same position, over targets ≥ 0; greedy continuation is the argmax of
    /// the last position's logits, recomputed after each token, without the prompt.
    /// </summary>
    [Theory]
    [MemberData(nameof(Decoders))]
    public void Loss_and_greedy_continuation_follow_the_logits(string name)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(name), Seed);
        int vocab = HfConfig.Read(HfFixtures.ConfigPath(name)).VocabSize;
        const int batch = 2, length = 7;
        int[] tokens = RandomTokens(batch * length, vocab, seed: 6), targets = RandomTokens(batch * length, vocab, seed: 7);
        targets[3] = -1;
        targets[9] = -100;
        float[] logits = reference.Logits(tokens, batch, length);
        double sum = 0;
        int counted = 0;
        for (int r = 0; r < batch * length; r++)
        {
            if (targets[r] < 0) continue;
            float[] row = Row(logits, r, vocab);
            double max = row.Max();
            sum += max + Math.Log(row.Sum(v => Math.Exp(v - max))) - row[targets[r]];
            counted++;
        }
        float loss = reference.LossAndGradients(tokens, targets, batch, length).Loss;
        Assert.Equal(sum / counted, loss, 5);

        int[] prompt = tokens[..4], continuation = reference.GreedyContinuation(prompt, 5);
        Assert.Equal(5, continuation.Length);
        var sequence = new List<int>(prompt);
        foreach (int next in continuation)
        {
            float[] last = Row(reference.Logits(sequence.ToArray(), 1, sequence.Count), sequence.Count - 1, vocab);
            Assert.Equal(Array.IndexOf(last, last.Max()), next);
            sequence.Add(next);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Gradients

    /// <summary>
    /// In the float64 model (the same weights), the gradient of three parameters picked at random per family equals a
    /// central difference to 1e-6 relative; the float32 gradients equal the float64 ones to 1e-4 of each tensor's norm.
    /// Decoders: the loss of <see cref="HfReference.LossAndGradients"/>; BERT: Σ embeddings ⊙ upstream, with padding.
    /// </summary>
    [Theory]
    [MemberData(nameof(AllFixtures))]
    public void Gradients_match_central_differences(string name)
    {
        string path = HfFixtures.ConfigPath(name);
        using HfReference precise = HfReference.Create(path, Seed, ScalarType.Float64);
        using HfReference single = HfReference.Create(path, Seed);
        HfConfig config = precise.Model.Config;
        const int batch = 2, length = 6;
        int[] tokens = RandomTokens(batch * length, config.VocabSize, seed: 8);

        Dictionary<string, float[]> gradients, singleGradients;
        Func<double> objective;
        if (config.IsDecoder)
        {
            int[] targets = RandomTokens(batch * length, config.VocabSize, seed: 9);
            targets[2] = -1;
            gradients = precise.LossAndGradients(tokens, targets, batch, length).Gradients;
            singleGradients = single.LossAndGradients(tokens, targets, batch, length).Gradients;
            objective = () => Evaluate(() => precise.Loss(tokens, targets, batch, length));
        }
        else
        {
            int[] mask = Enumerable.Range(0, batch * length).Select(i => i < length + 4 ? 1 : 0).ToArray();
            float[] upstream = RandomNormals(batch * config.HiddenSize, seed: 10).Select(v => (float)v).ToArray();
            gradients = precise.EmbeddingGradients(tokens, mask, batch, length, upstream);
            singleGradients = single.EmbeddingGradients(tokens, mask, batch, length, upstream);
            objective = () => Evaluate(() => precise.EmbeddingObjective(tokens, mask, batch, length, upstream));
        }
        Assert.Equal(precise.Model.UsedParameters.Select(e => e.Name).Order(StringComparer.Ordinal), gradients.Keys.Order(StringComparer.Ordinal));

        var rng = new Random(11);
        string[] names = gradients.Keys.OrderBy(_ => rng.Next()).Take(3).ToArray();
        const double h = 1e-5;
        foreach (string parameter in names)
        {
            float[] g = gradients[parameter];
            double largest = g.Max(v => Math.Abs(v));
            int[] candidates = Enumerable.Range(0, g.Length).Where(i => Math.Abs(g[i]) >= 0.1 * largest).ToArray();
            int index = candidates[rng.Next(candidates.Length)];
            Tensor values = precise.Model[parameter];
            double original = Evaluate(() => values.view(-1)[index]);
            double Shifted(double by)
            {
                Evaluate(() => values.view(-1)[index].fill_(original + by));
                return objective();
            }
            double difference = (Shifted(h) - Shifted(-h)) / (2 * h);
            Shifted(0);
            double error = Math.Abs(difference - g[index]);
            output.WriteLine($"{name} {parameter}[{index}]: analytic {g[index]:E6}, central difference {difference:E6}, error {error / Math.Abs(g[index]):E2} relative");
            Assert.True(error <= 1e-6 * Math.Abs(g[index]) + 1e-9, $"{name} {parameter}[{index}]: analytic {g[index]} vs central difference {difference}");
        }

        double worst = 0;
        string worstName = "";
        foreach ((string parameter, float[] g) in gradients)
        {
            double norm = Math.Sqrt(g.Sum(v => (double)v * v));
            if (parameter.EndsWith("attention.self.key.bias", StringComparison.Ordinal))
            {
                // Without rotary positions the key bias adds q·b to every score of a query's row, which softmax ignores:
                // its gradient is zero in exact arithmetic, so float32 gives pure rounding noise there.
                output.WriteLine($"{name}: {parameter} gradient norm {norm:E2} (zero in exact arithmetic)");
                Assert.True(norm < 1e-12, $"{name}: the gradient of {parameter} should vanish, it is {norm:E2}");
                continue;
            }
            Assert.True(norm > 1e-6, $"{name}: the gradient of {parameter} is zero");
            double error = Math.Sqrt(g.Zip(singleGradients[parameter], (a, b) => ((double)a - b) * ((double)a - b)).Sum()) / norm;
            if (error > worst) (worst, worstName) = (error, parameter);
        }
        output.WriteLine($"{name}: float32 vs float64 gradients, worst {worst:E2} of the tensor's norm ({worstName})");
        Assert.True(worst < 1e-4, $"{name}: the float32 gradient of {worstName} differs from float64 by {worst:E2}");
    }

    private static double Evaluate(Func<Tensor> objective)
    {
        using DisposeScope scope = NewDisposeScope();
        using (no_grad()) return objective().item<double>();
    }

    // ------------------------------------------------------------------------------------------------------------
    // Files

    public static TheoryData<string, HfWriteOptions> FileVariants => new()
    {
        { "gpt2", new HfWriteOptions() },
        { "gpt2", new HfWriteOptions(Prefix: true, IncludeBuffers: false) },
        { "gpt2", new HfWriteOptions(Dtype: HfDtype.BF16, Shards: 3) },
        { "gpt2", new HfWriteOptions(Dtype: HfDtype.F16, KeepTiedCopy: true) },
        { "bert", new HfWriteOptions() },
        { "bert", new HfWriteOptions(Prefix: true, LegacyGammaBeta: true, IncludeUnusedHeads: true) },
        { "bert", new HfWriteOptions(Dtype: HfDtype.BF16, IncludeBuffers: false, Shards: 2) },
        { "llama-gqa", new HfWriteOptions() },
        { "llama-gqa", new HfWriteOptions(Prefix: true, IncludeBuffers: false, Shards: 4) },
        { "llama-mqa", new HfWriteOptions(Dtype: HfDtype.BF16, IncludeBuffers: false) },
        { "llama-mqa", new HfWriteOptions(KeepTiedCopy: true, IncludeBuffers: false) },
        { "qwen2", new HfWriteOptions(Dtype: HfDtype.BF16) },
        { "qwen2", new HfWriteOptions(Dtype: HfDtype.F16, Prefix: true, Shards: 2) },
    };

    /// <summary>
    /// A saved folder read back by parsing the safetensors headers: exactly the names, dtypes and shapes that the family's
    /// files have (written out here from MODEL_FAMILIES.md), contiguous offsets, the weights' values rounded to the dtype
    /// (and the reference now computing with them), the buffers' contents, the index of a sharded folder, the config.
    /// </summary>
    [Theory]
    [MemberData(nameof(FileVariants))]
    public void Saved_folder_reads_back(string name, HfWriteOptions options)
    {
        string folder = HfChecks.TemporaryFolder("hf-reference-");
        try
        {
            using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(name), Seed);
            Dictionary<string, float[]> before = reference.ParameterNames.ToDictionary(n => n, reference.ParameterValues);
            reference.Save(folder, options);

            Assert.Equal(File.ReadAllBytes(HfFixtures.ConfigPath(name)), File.ReadAllBytes(Path.Combine(folder, "config.json")));
            Dictionary<string, StoredTensor> stored = ReadFolder(folder, options.Shards);
            Dictionary<string, (string Dtype, long[] Shape, string? Canonical)> expected = ExpectedTensors(name, options);
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), stored.Keys.Order(StringComparer.Ordinal));

            foreach ((string fileName, (string dtype, long[] shape, string? canonical)) in expected)
            {
                StoredTensor t = stored[fileName];
                Assert.True(dtype == t.Dtype, $"{fileName}: dtype {t.Dtype}, expected {dtype}");
                Assert.True(shape.SequenceEqual(t.Shape), $"{fileName}: shape [{string.Join(",", t.Shape)}], expected [{string.Join(",", shape)}]");
                if (canonical is null) CheckBuffer(name, fileName, t);
                else
                {
                    float[] values = Decode(t), original = before[canonical], now = reference.ParameterValues(canonical);
                    for (int i = 0; i < values.Length; i++)
                    {
                        float rounded = HfFloats.Round(original[i], options.Dtype);
                        if (BitConverter.SingleToInt32Bits(values[i]) != BitConverter.SingleToInt32Bits(rounded) || BitConverter.SingleToInt32Bits(now[i]) != BitConverter.SingleToInt32Bits(rounded))
                            Assert.Fail($"{fileName}[{i}]: file {values[i]}, reference {now[i]}, original {original[i]} rounded to {options.Dtype} {rounded}");
                    }
                    if (options.Dtype != HfDtype.F32) Assert.True(MaxAbs(original, values) > 0, $"{fileName}: rounding to {options.Dtype} changed nothing");
                }
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // The tensors a family's file holds with these options, by file name: dtype, shape, and the canonical parameter
    // name (null for a buffer). Written from MODEL_FAMILIES.md's tables, not from the reference's registrations.
    private static Dictionary<string, (string Dtype, long[] Shape, string? Canonical)> ExpectedTensors(string name, HfWriteOptions o)
    {
        var canonical = new List<(string Name, long[] Shape, bool Buffer, string BufferDtype)>();
        void Weight(string n, params long[] shape) => canonical.Add((n, shape, false, ""));
        void Buffer(string n, string dtype, params long[] shape) => canonical.Add((n, shape, true, dtype));
        string prefix = "";
        switch (name)
        {
            case "gpt2":
            {
                const long V = 53, E = 36, P = 24, I = 144;
                Weight("wte.weight", V, E);
                Weight("wpe.weight", P, E);
                for (int i = 0; i < 2; i++)
                {
                    string h = $"h.{i}.";
                    Weight(h + "ln_1.weight", E); Weight(h + "ln_1.bias", E);
                    Weight(h + "attn.c_attn.weight", E, 3 * E); Weight(h + "attn.c_attn.bias", 3 * E);
                    Weight(h + "attn.c_proj.weight", E, E); Weight(h + "attn.c_proj.bias", E);
                    Weight(h + "ln_2.weight", E); Weight(h + "ln_2.bias", E);
                    Weight(h + "mlp.c_fc.weight", E, I); Weight(h + "mlp.c_fc.bias", I);
                    Weight(h + "mlp.c_proj.weight", I, E); Weight(h + "mlp.c_proj.bias", E);
                    Buffer(h + "attn.bias", "F32", 1, 1, P, P);
                    Buffer(h + "attn.masked_bias", "F32");
                }
                Weight("ln_f.weight", E); Weight("ln_f.bias", E);
                prefix = "transformer.";
                break;
            }
            case "bert":
            {
                const long V = 41, E = 30, P = 20, I = 37;
                Weight("embeddings.word_embeddings.weight", V, E);
                Weight("embeddings.position_embeddings.weight", P, E);
                Weight("embeddings.token_type_embeddings.weight", 2, E);
                Weight("embeddings.LayerNorm.weight", E); Weight("embeddings.LayerNorm.bias", E);
                Buffer("embeddings.position_ids", "I64", 1, P);
                for (int i = 0; i < 2; i++)
                {
                    string l = $"encoder.layer.{i}.";
                    foreach (string part in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
                    {
                        Weight(l + part + ".weight", E, E); Weight(l + part + ".bias", E);
                    }
                    Weight(l + "attention.output.LayerNorm.weight", E); Weight(l + "attention.output.LayerNorm.bias", E);
                    Weight(l + "intermediate.dense.weight", I, E); Weight(l + "intermediate.dense.bias", I);
                    Weight(l + "output.dense.weight", E, I); Weight(l + "output.dense.bias", E);
                    Weight(l + "output.LayerNorm.weight", E); Weight(l + "output.LayerNorm.bias", E);
                }
                if (o.IncludeUnusedHeads)
                {
                    Weight("pooler.dense.weight", E, E); Weight("pooler.dense.bias", E);
                }
                prefix = "bert.";
                break;
            }
            default:
            {
                (long V, long E, long I, int L, long H, long KV, long D, bool qwen, bool tied) = name switch
                {
                    "llama-gqa" => (47L, 40L, 52L, 2, 4L, 2L, 12L, false, false),
                    "llama-mqa" => (45L, 30L, 44L, 3, 3L, 1L, 10L, false, true),
                    "qwen2" => (51L, 36L, 44L, 2, 6L, 2L, 6L, true, true),
                    _ => throw new ArgumentException(name),
                };
                Weight("model.embed_tokens.weight", V, E);
                for (int i = 0; i < L; i++)
                {
                    string l = $"model.layers.{i}.";
                    Weight(l + "input_layernorm.weight", E);
                    Weight(l + "post_attention_layernorm.weight", E);
                    Weight(l + "self_attn.q_proj.weight", H * D, E);
                    Weight(l + "self_attn.k_proj.weight", KV * D, E);
                    Weight(l + "self_attn.v_proj.weight", KV * D, E);
                    Weight(l + "self_attn.o_proj.weight", E, H * D);
                    if (qwen)
                    {
                        Weight(l + "self_attn.q_proj.bias", H * D);
                        Weight(l + "self_attn.k_proj.bias", KV * D);
                        Weight(l + "self_attn.v_proj.bias", KV * D);
                    }
                    Weight(l + "mlp.gate_proj.weight", I, E);
                    Weight(l + "mlp.up_proj.weight", I, E);
                    Weight(l + "mlp.down_proj.weight", E, I);
                    Buffer(l + "self_attn.rotary_emb.inv_freq", "F32", D / 2);
                }
                Weight("model.norm.weight", E);
                if (!tied) Weight("lm_head.weight", V, E);
                break;
            }
        }

        var result = new Dictionary<string, (string, long[], string?)>(StringComparer.Ordinal);
        foreach ((string n, long[] shape, bool buffer, string bufferDtype) in canonical)
        {
            if (buffer && !o.IncludeBuffers) continue;
            string file = n;
            if (o.LegacyGammaBeta) file = file.Replace("LayerNorm.weight", "LayerNorm.gamma").Replace("LayerNorm.bias", "LayerNorm.beta");
            if (o.Prefix) file = prefix.Length > 0 ? prefix + file : file.StartsWith("model.", StringComparison.Ordinal) ? file[6..] : file;
            result.Add(file, (buffer ? bufferDtype : o.Dtype.ToString(), shape, buffer ? null : n));
        }
        if (o.KeepTiedCopy)
        {
            (string embedding, long[] shape) = name == "gpt2" ? ("wte.weight", new long[] { 53, 36 }) : ("model.embed_tokens.weight", new long[] { 45, 30 });
            result.Add("lm_head.weight", (o.Dtype.ToString(), shape, embedding));
        }
        return result;
    }

    private static void CheckBuffer(string name, string fileName, StoredTensor t)
    {
        if (fileName.EndsWith("attn.masked_bias", StringComparison.Ordinal))
            Assert.Equal(-1e4f, Decode(t).Single());
        else if (fileName.EndsWith("attn.bias", StringComparison.Ordinal))
        {
            float[] mask = Decode(t);
            int p = (int)t.Shape[3];
            for (int i = 0; i < p; i++)
                for (int j = 0; j < p; j++)
                    Assert.Equal(j <= i ? 1f : 0f, mask[i * p + j]);
        }
        else if (fileName.EndsWith("position_ids", StringComparison.Ordinal))
        {
            for (int i = 0; i < t.Shape[1]; i++) Assert.Equal(i, BinaryPrimitives.ReadInt64LittleEndian(t.Data.AsSpan(i * 8)));
        }
        else if (fileName.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal))
        {
            HfConfig config = HfConfig.Read(HfFixtures.ConfigPath(name));
            float[] inverse = Decode(t);
            for (int j = 0; j < inverse.Length; j++)
            {
                // transformers rounds the exponent arange(0, D, 2).float() / D to float32 before the power: at θ = 1e6 that
                // alone moves the result by ln θ · 2^-24 ≈ 4e-7 of itself. The power and the reciprocal add an ulp or two.
                double exponent = (float)(2.0 * j / config.HeadDim);
                double expected = 1.0 / Math.Pow(config.RopeTheta, exponent);
                Assert.True(Math.Abs(inverse[j] - expected) <= 3e-7 * expected, $"{fileName}[{j}] = {inverse[j]}, 1 / θ^float32(2j/D) = {expected}");
            }
        }
        else Assert.Fail($"unexpected buffer {fileName}");
    }

    internal sealed record StoredTensor(string Dtype, long[] Shape, byte[] Data);

    // Reads model.safetensors, or the index and every shard it names: checks the header layout and returns the tensors.
    internal static Dictionary<string, StoredTensor> ReadFolder(string folder, int shards)
    {
        if (shards == 1)
        {
            Assert.False(File.Exists(Path.Combine(folder, "model.safetensors.index.json")));
            return ReadSafeTensors(Path.Combine(folder, "model.safetensors"));
        }
        Assert.False(File.Exists(Path.Combine(folder, "model.safetensors")));
        JsonObject index = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "model.safetensors.index.json")))!.AsObject();
        JsonObject weightMap = index["weight_map"]!.AsObject();
        string[] files = Enumerable.Range(1, shards).Select(k => $"model-{k:D5}-of-{shards:D5}.safetensors").ToArray();
        Assert.Equal(files, weightMap.Select(kv => kv.Value!.GetValue<string>()).Distinct().Order(StringComparer.Ordinal));
        Assert.Equal(weightMap.Select(kv => kv.Key).Order(StringComparer.Ordinal), weightMap.Select(kv => kv.Key));
        var all = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        foreach (string file in files)
            foreach ((string n, StoredTensor t) in ReadSafeTensors(Path.Combine(folder, file)))
            {
                Assert.Equal(file, weightMap[n]!.GetValue<string>());
                all.Add(n, t);
            }
        Assert.Equal(weightMap.Count, all.Count);
        Assert.Equal(all.Values.Sum(t => (long)t.Data.Length), index["metadata"]!["total_size"]!.GetValue<long>());
        return all;
    }

    private static Dictionary<string, StoredTensor> ReadSafeTensors(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        Assert.True(headerLength % 8 == 0, $"{path}: header of {headerLength} bytes, not padded to 8");
        string headerText = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        using JsonDocument header = JsonDocument.Parse(headerText);
        long dataStart = 8 + headerLength, expectedOffset = 0;
        var tensors = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        bool first = true;
        foreach (JsonProperty property in header.RootElement.EnumerateObject())
        {
            if (property.Name == "__metadata__")
            {
                Assert.True(first, "__metadata__ is not the first key");
                Assert.Equal("pt", property.Value.GetProperty("format").GetString());
                first = false;
                continue;
            }
            string dtype = property.Value.GetProperty("dtype").GetString()!;
            long[] shape = property.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            long[] offsets = property.Value.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            Assert.Equal(expectedOffset, offsets[0]);                                              // back to back, in header order
            Assert.Equal(shape.Aggregate(1L, (a, b) => a * b) * SafeTensorsWriter.ElementSize(dtype), offsets[1] - offsets[0]);
            tensors.Add(property.Name, new StoredTensor(dtype, shape, bytes[(int)(dataStart + offsets[0])..(int)(dataStart + offsets[1])]));
            expectedOffset = offsets[1];
        }
        Assert.False(first, $"{path} has no __metadata__");
        Assert.Equal(bytes.Length - dataStart, expectedOffset);
        return tensors;
    }

    internal static float[] Decode(StoredTensor t) => t.Dtype switch
    {
        "F32" => Enumerable.Range(0, t.Data.Length / 4).Select(i => BinaryPrimitives.ReadSingleLittleEndian(t.Data.AsSpan(i * 4))).ToArray(),
        "BF16" => Enumerable.Range(0, t.Data.Length / 2).Select(i => HfFloats.FromBFloat16Bits(BinaryPrimitives.ReadUInt16LittleEndian(t.Data.AsSpan(i * 2)))).ToArray(),
        "F16" => Enumerable.Range(0, t.Data.Length / 2).Select(i => HfFloats.FromFloat16Bits(BinaryPrimitives.ReadUInt16LittleEndian(t.Data.AsSpan(i * 2)))).ToArray(),
        _ => throw new NotSupportedException(t.Dtype),
    };

    /// <summary>Writing options that do not apply to the family are refused rather than ignored.</summary>
    [Fact]
    public void Options_that_do_not_apply_are_refused()
    {
        using HfReference gpt2 = HfReference.Create(HfFixtures.ConfigPath("gpt2"), Seed);
        using HfReference gqa = HfReference.Create(HfFixtures.ConfigPath("llama-gqa"), Seed);
        Assert.Throws<ArgumentException>(() => gpt2.Save(Path.GetTempPath(), new HfWriteOptions(LegacyGammaBeta: true)));
        Assert.Throws<ArgumentException>(() => gpt2.Save(Path.GetTempPath(), new HfWriteOptions(IncludeUnusedHeads: true)));
        Assert.Throws<ArgumentException>(() => gqa.Save(Path.GetTempPath(), new HfWriteOptions(KeepTiedCopy: true)));
        Assert.Throws<InvalidOperationException>(() => gqa.SentenceEmbeddings(new[] { 1 }, new[] { 1 }, 1, 1));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Rounding

    /// <summary>
    /// float32 → bfloat16 rounds to nearest, ties to even (hand-picked ties, carries, overflow, subnormals, NaN), and
    /// agrees bit for bit with libtorch's conversion on 200,000 random bit patterns; likewise float16.
    /// </summary>
    [Fact]
    public void Bfloat16_and_float16_round_to_nearest_even()
    {
        (uint Input, ushort Expected)[] cases =
        {
            (0x3F800000, 0x3F80), // 1
            (0x3F808000, 0x3F80), // 1 + 2^-8: a tie, the even neighbour is 1
            (0x3F818000, 0x3F82), // 1 + 3·2^-8: a tie, rounds up to the even 0x3F82
            (0x3F808001, 0x3F81), // just above the tie
            (0x3F807FFF, 0x3F80), // just below
            (0xBF818000, 0xBF82), // negative ties likewise
            (0x3FFF8000, 0x4000), // a tie that carries into the exponent
            (0x7F7F7FFF, 0x7F7F), // the largest bfloat16 stays
            (0x7F7FFFFF, 0x7F80), // float.MaxValue rounds to +∞
            (0xFF7FFFFF, 0xFF80), // and −float.MaxValue to −∞
            (0x7F800000, 0x7F80), // ∞
            (0x00008000, 0x0000), // subnormal tie to even 0
            (0x00018000, 0x0002), // subnormal tie to even 2
            (0x80000000, 0x8000), // −0
            (0x7FC00001, 0x7FC0), // NaN → c10's canonical quiet NaN
        };
        foreach ((uint input, ushort expected) in cases)
            Assert.True(HfFloats.ToBFloat16Bits(BitConverter.UInt32BitsToSingle(input)) == expected, $"0x{input:X8} → 0x{HfFloats.ToBFloat16Bits(BitConverter.UInt32BitsToSingle(input)):X4}, expected 0x{expected:X4}");

        var rng = new Random(12);
        float[] values = Enumerable.Range(0, 200_000).Select(_ => BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 1L << 32))).Where(v => !float.IsNaN(v)).ToArray();
        using DisposeScope scope = NewDisposeScope();
        Tensor t = tensor(values);
        float[] bf16 = t.to(ScalarType.BFloat16).to(ScalarType.Float32).data<float>().ToArray();
        float[] f16 = t.to(ScalarType.Float16).to(ScalarType.Float32).data<float>().ToArray();
        for (int i = 0; i < values.Length; i++)
        {
            Assert.True(BitConverter.SingleToUInt32Bits(bf16[i]) == (uint)HfFloats.ToBFloat16Bits(values[i]) << 16,
                $"bfloat16 of 0x{BitConverter.SingleToUInt32Bits(values[i]):X8}: libtorch 0x{BitConverter.SingleToUInt32Bits(bf16[i]):X8}");
            Assert.True(BitConverter.SingleToUInt32Bits(f16[i]) == BitConverter.SingleToUInt32Bits(HfFloats.Round(values[i], HfDtype.F16)),
                $"float16 of 0x{BitConverter.SingleToUInt32Bits(values[i]):X8}: libtorch {f16[i]}, ours {HfFloats.Round(values[i], HfDtype.F16)}");
        }
    }

    // ------------------------------------------------------------------------------------------------------------

    private static int[] RandomTokens(int count, int vocab, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(vocab)).ToArray();
    }

    private static double[] RandomNormals(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble())).ToArray();
    }

    private static float[] Row(float[] values, int row, int width) => values.AsSpan(row * width, width).ToArray();

    private static double MaxAbs(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs((double)a[i] - b[i]));
        return m;
    }
}
