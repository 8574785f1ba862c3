using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// Checks of the Marian reference (<see cref="HfMarian"/>) on its own, before any compiled model is compared with it:
/// the config read with transformers' defaults, the sinusoid table's split layout, the source padding mask, causality,
/// step-by-step decoding through the cache against the teacher-forced pass, gradients against central differences in
/// float64 (and the padding row's head-only gradient against its formula), and the saved files read back.
/// </summary>
public sealed class HfMarianSelfTests(ITestOutputHelper output)
{
    private const long Seed = 4321;
    private const int Vocab = 37, D = 20, Pad = 36, Positions = 24;

    private static string ConfigPath => HfFixtures.ConfigPath(HfFixtures.Marian);

    [Fact]
    public void Config_reads_the_opus_mt_keys()
    {
        HfConfig c = HfConfig.Read(ConfigPath);
        Assert.Equal((HfFamily.Marian, Vocab, D, 2, 4, 5, 44, Positions, "swish", 1e-5, true),
            (c.Family, c.VocabSize, c.HiddenSize, c.Layers, c.Heads, c.HeadDim, c.IntermediateSize, c.MaxPositions, c.Activation, c.NormEps, c.TieWordEmbeddings));
        Assert.Equal((3, 4, 44, true, Pad, Pad, 0), (c.DecoderLayers, c.DecoderHeads, c.DecoderIntermediateSize, c.ScaleEmbedding, c.PadTokenId, c.DecoderStartTokenId, c.EosTokenId));
        Assert.Equal([Pad], c.BannedTokens);
        Assert.False(c.IsDecoder);
    }

    /// <summary>
    /// The table as MarianSinusoidalPositionalEmbedding lays it out, checked against the formula written another way
    /// (frequencies e^(−2i·ln 10⁴/d)): sines in columns 0…d/2−1, cosines in d/2…d−1, so each pair (i, d/2+i) lies on the
    /// unit circle; the interleaved layout (sin, cos, sin, …) of the original Transformer differs.
    /// </summary>
    [Fact]
    public void Sinusoid_table_puts_sines_then_cosines()
    {
        using DisposeScope scope = NewDisposeScope();
        float[] table = HfMarian.SinusoidTable(Positions, D, ScalarType.Float32).data<float>().ToArray();
        double worst = 0, interleavedGap = 0;
        for (int p = 0; p < Positions; p++)
            for (int i = 0; i < D / 2; i++)
            {
                double angle = p * Math.Exp(-2.0 * i * Math.Log(10000.0) / D);
                worst = Math.Max(worst, Math.Abs(table[p * D + i] - (float)Math.Sin(angle)));
                worst = Math.Max(worst, Math.Abs(table[p * D + D / 2 + i] - (float)Math.Cos(angle)));
                double radius = (double)table[p * D + i] * table[p * D + i] + (double)table[p * D + D / 2 + i] * table[p * D + D / 2 + i];
                Assert.True(Math.Abs(radius - 1) < 1e-6, $"position {p} pair {i}: sin² + cos² = {radius}");
                double interleaved = i % 2 == 0 ? Math.Sin(p * Math.Exp(-i * Math.Log(10000.0) / D)) : Math.Cos(p * Math.Exp(-(i - 1) * Math.Log(10000.0) / D));
                interleavedGap = Math.Max(interleavedGap, Math.Abs(table[p * D + i] - interleaved));
            }
        output.WriteLine($"table vs formula {worst:E2}; the interleaved layout would differ by {interleavedGap:F3}");
        Assert.True(worst <= 1.2e-7, $"the table differs from the formula by {worst:E2}");
        Assert.True(interleavedGap > 0.5);
        Assert.Equal(0f, table[D / 2 - 1]);      // position 0: sines 0
        Assert.Equal(1f, table[D / 2]);          // cosines 1
    }

    /// <summary>
    /// Trailing source pads under the attention mask leave every logit as with the source alone (to 1e-6 of the largest:
    /// only the matrix products' shapes differ); the same pads
    /// left visible move them (the check would otherwise prove nothing).
    /// </summary>
    [Fact]
    public void Source_padding_is_masked()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        const int length = 9, real = 5, targets = 6;
        int[] sentence = RandomTokens(real, Vocab - 1, seed: 1);
        int[] padded = sentence.Concat(Enumerable.Repeat(Pad, length - real)).ToArray();
        int[] labels = RandomTokens(targets, Vocab - 1, seed: 2);

        float[] alone = reference.TranslationLogits(sentence, labels, 1, real, targets);
        float[] masked = reference.TranslationLogits(padded, labels, 1, length, targets);
        float[] visible = reference.TranslationLogits(padded, labels, 1, length, targets, Enumerable.Repeat(1, length).ToArray());
        double scale = alone.Max(Math.Abs), maskedError = MaxAbs(masked, alone) / scale, visibleGap = MaxAbs(visible, alone) / scale;
        output.WriteLine($"padded and masked vs alone {maskedError:E2}; pads left visible move the logits by {visibleGap:E2}");
        Assert.True(maskedError < 1e-6, $"masked padding changed the logits by {maskedError:E2}");
        Assert.True(visibleGap > 1e-2);
    }

    /// <summary>Changing label t changes the logits at positions after t only (the decoder reads it at t + 1).</summary>
    [Fact]
    public void Decoder_is_causal()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        const int sourceLength = 7, length = 8, changed = 3;
        int[] source = RandomTokens(sourceLength, Vocab - 1, seed: 3);
        int[] labels = RandomTokens(length, Vocab - 1, seed: 4), edited = (int[])labels.Clone();
        edited[changed] = (edited[changed] + 1) % (Vocab - 1);
        float[] before = reference.TranslationLogits(source, labels, 1, sourceLength, length);
        float[] after = reference.TranslationLogits(source, edited, 1, sourceLength, length);
        for (int t = 0; t < length; t++)
        {
            double gap = MaxAbs(before[(t * Vocab)..((t + 1) * Vocab)], after[(t * Vocab)..((t + 1) * Vocab)]);
            if (t > changed) Assert.True(gap > 1e-4, $"position {t} did not change");
            else Assert.True(gap == 0, $"position {t} changed by {gap:E2} when label {changed} did");
        }
    }

    /// <summary>
    /// generate's path: the decoder run one token at a time through the key/value cache (positions past…, cross-attention
    /// keys computed once) gives the teacher-forced pass's logits at every position, to 1e-6 of the largest.
    /// </summary>
    [Fact]
    public void Cached_decoding_equals_the_teacher_forced_pass()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        const int sourceLength = 10, length = 9;
        int[] source = RandomTokens(sourceLength - 2, Vocab - 1, seed: 5).Concat([Pad, Pad]).ToArray();
        int[] labels = RandomTokens(length, Vocab - 1, seed: 6);
        int[] decoderInput = new[] { Pad }.Concat(labels[..^1]).ToArray();

        float[] full = reference.TranslationLogits(source, labels, 1, sourceLength, length);
        float[] cached = reference.CachedDecoderLogits(source, decoderInput);
        float[] last = reference.NextTokenLogits(source, decoderInput);
        double error = MaxAbs(cached, full) / full.Max(Math.Abs), lastError = MaxAbs(last, full[^Vocab..]) / full.Max(Math.Abs);
        output.WriteLine($"cached vs full {error:E2}, next-token logits vs the full pass's last row {lastError:E2}");
        Assert.True(error < 1e-6, $"cached decoding differs by {error:E2}");
        Assert.True(lastError < 1e-6);

        // Greedy decoding never produces the padding (= start) token.
        int[] translation = reference.GreedyTranslation(source, 12);
        output.WriteLine($"greedy: {string.Join(' ', translation)}");
        Assert.DoesNotContain(Pad, translation);
        Assert.DoesNotContain(0, translation);
    }

    /// <summary>
    /// In float64, the gradients of a few parameters (one entry each, among its larger ones) equal central differences
    /// to 1e-6 relative; the float32 gradients equal the float64 ones to 1e-4 of each tensor's norm (the key biases'
    /// gradients vanish in exact arithmetic: softmax ignores a constant added to a row of scores).
    /// </summary>
    [Fact]
    public void Gradients_match_central_differences()
    {
        using HfReference precise = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        using HfReference single = HfReference.Create(ConfigPath, Seed);
        (int[] source, int[] labels) = Batch();
        const int batch = 2, sourceLength = 8, length = 7;
        Dictionary<string, float[]> gradients = precise.TranslationLossAndGradients(source, labels, batch, sourceLength, length).Gradients;
        Dictionary<string, float[]> singleGradients = single.TranslationLossAndGradients(source, labels, batch, sourceLength, length).Gradients;
        Assert.Equal(precise.ParameterNames.Order(StringComparer.Ordinal), gradients.Keys.Order(StringComparer.Ordinal));

        string[] names =
        [
            "final_logits_bias", "model.shared.weight", "model.encoder.layers.0.fc1.bias", "model.encoder.layers.1.self_attn.q_proj.weight",
            "model.decoder.layers.1.encoder_attn.k_proj.weight", "model.decoder.layers.2.self_attn.v_proj.weight", "model.decoder.layers.0.encoder_attn_layer_norm.weight",
        ];
        CentralDifferences.Check(precise, gradients, names, seed: 7, Pad, D,
            () => CentralDifferences.Evaluate(() => precise.TranslationLoss(source, labels, batch, sourceLength, length)), line => output.WriteLine(line));

        double worst = 0;
        string worstName = "";
        foreach ((string parameter, float[] g) in gradients)
        {
            double norm = Math.Sqrt(g.Sum(v => (double)v * v));
            if (parameter.EndsWith("k_proj.bias", StringComparison.Ordinal))
            {
                Assert.True(norm < 1e-12, $"the gradient of {parameter} should vanish, it is {norm:E2}");
                continue;
            }
            Assert.True(norm > 1e-6, $"the gradient of {parameter} is zero");
            double error = Math.Sqrt(g.Zip(singleGradients[parameter], (a, b) => ((double)a - b) * ((double)a - b)).Sum()) / norm;
            if (error > worst) (worst, worstName) = (error, parameter);
        }
        output.WriteLine($"float32 vs float64 gradients: worst {worst:E2} of the tensor's norm ({worstName})");
        Assert.True(worst < 1e-4, $"the float32 gradient of {worstName} differs from float64 by {worst:E2}");
    }

    /// <summary>
    /// padding_idx: the padding row of <c>model.shared.weight</c> learns only as a row of the output head, Σ over the
    /// counted positions of (softmax − one-hot)[pad]·h / count, although every decoder input starts with it.
    /// </summary>
    [Fact]
    public void Padding_row_gets_the_output_heads_gradient_only()
    {
        using HfReference precise = HfReference.Create(ConfigPath, Seed, ScalarType.Float64);
        (int[] source, int[] labels) = Batch();
        const int batch = 2, sourceLength = 8, length = 7;
        float[] row = precise.TranslationLossAndGradients(source, labels, batch, sourceLength, length).Gradients["model.shared.weight"][(Pad * D)..((Pad + 1) * D)];

        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        var marian = (HfMarian)precise.Model;
        Tensor mask = tensor(source.Select(t => t == Pad ? 0.0 : 1.0).ToArray(), new long[] { batch, sourceLength }, ScalarType.Float64);
        Tensor memory = marian.Encode(tensor(source.Select(t => (long)t).ToArray(), new long[] { batch, sourceLength }), mask);
        Tensor hidden = marian.Decode(tensor(marian.ShiftRight(labels, batch, length), new long[] { batch, length }), memory, mask).reshape(batch * length, D);
        Tensor probabilities = F.softmax(marian.TranslationLogits(hidden), -1);
        var expected = new double[D];
        int counted = labels.Count(t => t >= 0);
        for (int n = 0; n < batch * length; n++)
        {
            if (labels[n] < 0) continue;
            double weight = probabilities[n, Pad].item<double>() - (labels[n] == Pad ? 1 : 0);
            for (int j = 0; j < D; j++) expected[j] += weight * hidden[n, j].item<double>() / counted;
        }
        double error = expected.Zip(row, (a, b) => Math.Abs(a - b)).Max() / expected.Max(Math.Abs);
        output.WriteLine($"padding row vs the head-only formula {error:E2}");
        Assert.True(error < 1e-6, $"the padding row's gradient differs from the head's part by {error:E2}");
    }

    public static TheoryData<HfWriteOptions> FileVariants => new()
    {
        new HfWriteOptions(IncludeBuffers: false),
        new HfWriteOptions(KeepTiedCopy: true, IncludeBuffers: true),
        new HfWriteOptions(Dtype: HfDtype.BF16, IncludeBuffers: false),
        new HfWriteOptions(IncludeBuffers: false, Shards: 3),
    };

    /// <summary>
    /// A saved folder holds exactly MarianMTModel's names (written out here, not taken from the reference), their dtypes and
    /// shapes, the weights' values rounded to the dtype, tied copies equal to <c>model.shared.weight</c>, and the
    /// position tables equal to the formula.
    /// </summary>
    [Theory]
    [MemberData(nameof(FileVariants))]
    public void Saved_folder_reads_back(HfWriteOptions options)
    {
        string folder = Path.Combine(Path.GetTempPath(), "hf-marian-" + Guid.NewGuid().ToString("N"));
        try
        {
            using HfReference reference = HfReference.Create(ConfigPath, Seed);
            reference.Save(folder, options);
            Dictionary<string, HfReferenceSelfTests.StoredTensor> stored = HfReferenceSelfTests.ReadFolder(folder, options.Shards);
            string dtype = options.Dtype == HfDtype.BF16 ? "BF16" : "F32";
            var expected = new Dictionary<string, long[]>(StringComparer.Ordinal) { ["final_logits_bias"] = [1, Vocab], ["model.shared.weight"] = [Vocab, D] };
            void Linear(string prefix, long outputs, long inputs) { expected[prefix + ".weight"] = [outputs, inputs]; expected[prefix + ".bias"] = [outputs]; }
            void Norm(string prefix) { expected[prefix + ".weight"] = [D]; expected[prefix + ".bias"] = [D]; }
            for (int i = 0; i < 2; i++)
            {
                foreach (string p in new[] { "q_proj", "k_proj", "v_proj", "out_proj" }) Linear($"model.encoder.layers.{i}.self_attn.{p}", D, D);
                Norm($"model.encoder.layers.{i}.self_attn_layer_norm");
                Linear($"model.encoder.layers.{i}.fc1", 44, D);
                Linear($"model.encoder.layers.{i}.fc2", D, 44);
                Norm($"model.encoder.layers.{i}.final_layer_norm");
            }
            for (int i = 0; i < 3; i++)
            {
                foreach (string p in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
                {
                    Linear($"model.decoder.layers.{i}.self_attn.{p}", D, D);
                    Linear($"model.decoder.layers.{i}.encoder_attn.{p}", D, D);
                }
                Norm($"model.decoder.layers.{i}.self_attn_layer_norm");
                Norm($"model.decoder.layers.{i}.encoder_attn_layer_norm");
                Linear($"model.decoder.layers.{i}.fc1", 44, D);
                Linear($"model.decoder.layers.{i}.fc2", D, 44);
                Norm($"model.decoder.layers.{i}.final_layer_norm");
            }
            var copies = options.KeepTiedCopy ? new[] { "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight" } : [];
            foreach (string copy in copies) expected[copy] = [Vocab, D];
            var tables = options.IncludeBuffers ? new[] { "model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight" } : [];
            foreach (string table in tables) expected[table] = [Positions, D];

            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), stored.Keys.Order(StringComparer.Ordinal));
            float[] formula = HfMarian.SinusoidTable(Positions, D, ScalarType.Float32).data<float>().ToArray();
            foreach ((string name, long[] shape) in expected)
            {
                HfReferenceSelfTests.StoredTensor t = stored[name];
                bool table = tables.Contains(name);
                Assert.True((table ? "F32" : dtype) == t.Dtype, $"{name}: dtype {t.Dtype}");
                Assert.True(shape.SequenceEqual(t.Shape), $"{name}: shape [{string.Join(",", t.Shape)}]");
                float[] values = HfReferenceSelfTests.Decode(t);
                float[] want = table ? formula : reference.ParameterValues(copies.Contains(name) ? "model.shared.weight" : name);
                Assert.True(values.SequenceEqual(want), $"{name}: the file's values differ from the reference's");
                if (!table) Assert.True(values.All(v => HfFloats.Round(v, options.Dtype) == v), $"{name}: not rounded to {options.Dtype}");
            }
            Assert.Contains(stored["final_logits_bias"].Data, b => b != 0);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Options_that_do_not_apply_are_refused()
    {
        using HfReference reference = HfReference.Create(ConfigPath, Seed);
        Assert.Throws<ArgumentException>(() => reference.Save(Path.GetTempPath(), new HfWriteOptions(Prefix: true)));
        Assert.Throws<ArgumentException>(() => reference.Save(Path.GetTempPath(), new HfWriteOptions(LegacyGammaBeta: true)));
        Assert.Throws<InvalidOperationException>(() => reference.Logits([1, 2], 1, 2));
    }

    // Two sources (the second padded after 5 tokens) and their labels (the second ignored after 4).
    private static (int[] Source, int[] Labels) Batch()
    {
        const int sourceLength = 8, length = 7;
        int[] source = RandomTokens(2 * sourceLength, Vocab - 1, seed: 8);
        for (int t = 5; t < sourceLength; t++) source[sourceLength + t] = Pad;
        int[] labels = RandomTokens(2 * length, Vocab - 1, seed: 9);
        for (int t = 4; t < length; t++) labels[length + t] = -1;
        labels[2] = Pad; // a padding label that transformers counts (only −100 is ignored)
        return (source, labels);
    }

    private static int[] RandomTokens(int count, int vocab, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(vocab)).ToArray();
    }

    private static double MaxAbs(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs((double)a[i] - b[i]));
        return m;
    }
}
