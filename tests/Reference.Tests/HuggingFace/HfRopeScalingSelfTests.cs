using System;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using Xunit;
using Xunit.Abstractions;
using TorchSharp;
using static TorchSharp.torch;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// Checks of the reference's scaled rotary positions (<see cref="HfRope"/>): each kind's <c>inv_freq</c> against the
/// formula of modeling_rope_utils.py evaluated in double, one pair at a time; the fixtures reaching every part of it
/// (llama3's three bands, a yarn ramp with pairs strictly inside it, distinct longrope factors); the attention factor
/// on cos and sin; the configs read as transformers reads them; and the scaling changing the fixtures' logits, so that
/// the compiled models' comparisons against them test it.
/// </summary>
public sealed class HfRopeScalingSelfTests(ITestOutputHelper output)
{
    private const long Seed = 4321;

    // float32 arithmetic against the double formula: the exponent 2j/D rounded to float32 alone moves θ^(2j/D) by
    // ln θ · 2^-24 ≈ 4e-7 of itself at θ = 1e4, and the power, the products and the reciprocals add a few ulps.
    private const double Tolerance = 2e-6;

    // ------------------------------------------------------------------------------------------------------------
    // Configs

    [Fact]
    public void Fixture_configs_read_their_scaling_with_transformers_defaults()
    {
        HfConfig llama3 = HfConfig.Read(HfFixtures.ConfigPath("llama3-rope"));
        HfRopeScaling l = llama3.RopeScaling!;
        Assert.Equal((HfRopeKind.Llama3, 4.0, 1.0, 8.0, 64, 100.0, 14), (l.Kind, l.Factor, l.LowFrequencyFactor, l.HighFrequencyFactor, l.OriginalPositions, llama3.RopeTheta, llama3.HeadDim));

        // transformers 5's form: rope_theta and the same keys under rope_parameters give the same model.
        HfConfig parameters = HfConfig.Read(HfFixtures.ConfigPath("llama3-rope-parameters"));
        Assert.Equal(llama3.RopeTheta, parameters.RopeTheta);
        Assert.Equal(l, parameters.RopeScaling);

        HfConfig qwen = HfConfig.Read(HfFixtures.ConfigPath("qwen2-yarn"));
        HfRopeScaling y = qwen.RopeScaling!;
        Assert.Equal((HfRopeKind.Yarn, 4.0, 16, (double?)null, (double?)null, (double?)null, 32.0, 1.0, true, 20.0, 14),
            (y.Kind, y.Factor, y.OriginalPositions, y.AttentionFactor, y.Mscale, y.MscaleAllDim, y.BetaFast, y.BetaSlow, y.Truncate, qwen.RopeTheta, qwen.HeadDim));
        Assert.True(qwen.QkvBias);

        // Phi-3: the factor is max_position_embeddings over the top-level original context, whatever rope_scaling says.
        HfConfig phi3 = HfConfig.Read(HfFixtures.ConfigPath("phi3-longrope"));
        HfRopeScaling p = phi3.RopeScaling!;
        Assert.Equal((HfRopeKind.LongRope, 64.0 / 16, 16, (double?)null, 10), (p.Kind, p.Factor, p.OriginalPositions, p.AttentionFactor, phi3.HeadDim));
        Assert.Equal(new[] { 1.3, 1.9, 2.6, 4.1, 5.7 }, p.ShortFactor);
        Assert.Equal(new[] { 1.1, 1.7, 3.2, 5.5, 8.3 }, p.LongFactor);
        Assert.Equal(p.ShortFactor!.Length, p.ShortFactor.Distinct().Count());

        // The unscaled fixtures stay unscaled (rope_scaling null).
        foreach (string name in new[] { "llama-gqa", "qwen2", "phi3", "qwen3" })
            Assert.Null(HfConfig.Read(HfFixtures.ConfigPath(name)).RopeScaling);
    }

    /// <summary>Keys read with transformers' defaults: beta 0 or null → 32 and 1, mscale 0 → absent, Phi-3's 4096, yarn's max_position_embeddings.</summary>
    [Fact]
    public void Scaling_keys_take_transformers_defaults()
    {
        HfRopeScaling yarn = ReadVariant("qwen2-yarn", rope =>
        {
            rope.Remove("original_max_position_embeddings");
            rope["beta_fast"] = 0;
            rope["beta_slow"] = null;
            rope["mscale"] = 0;
            rope["mscale_all_dim"] = 1;
            rope["truncate"] = false;
        }).RopeScaling!;
        Assert.Equal((64, 32.0, 1.0, (double?)null, (double?)1.0, false), (yarn.OriginalPositions, yarn.BetaFast, yarn.BetaSlow, yarn.Mscale, yarn.MscaleAllDim, yarn.Truncate));

        HfConfig phi3 = ReadVariant("phi3-longrope", _ => { }, top => top.Remove("original_max_position_embeddings"));
        Assert.Equal((4096, 64.0 / 4096), (phi3.RopeScaling!.OriginalPositions, phi3.RopeScaling.Factor));

        // A Llama config with longrope and no top-level original context: rope_scaling's factor, over max_position_embeddings.
        HfConfig llama = ReadVariant("llama3-rope", rope =>
        {
            rope.Clear();
            rope["rope_type"] = "longrope";
            rope["factor"] = 3.0;
            rope["short_factor"] = new JsonArray(Enumerable.Repeat(1.5, 7).Select(v => (JsonNode?)v).ToArray());
            rope["long_factor"] = new JsonArray(Enumerable.Repeat(2.5, 7).Select(v => (JsonNode?)v).ToArray());
        });
        Assert.Equal((HfRopeKind.LongRope, 3.0, 256), (llama.RopeScaling!.Kind, llama.RopeScaling.Factor, llama.RopeScaling.OriginalPositions));

        HfConfig dynamic = ReadVariant("llama3-rope", rope =>
        {
            rope.Clear();
            rope["type"] = "dynamic";
            rope["factor"] = 2.0;
        });
        Assert.Equal((HfRopeKind.Dynamic, 2.0, 256), (dynamic.RopeScaling!.Kind, dynamic.RopeScaling.Factor, dynamic.RopeScaling.OriginalPositions));

        // rope_parameters of the default type: no scaling, its θ read.
        HfConfig plain = ReadVariant("llama3-rope-parameters", rope =>
        {
            foreach (string key in new[] { "factor", "high_freq_factor", "low_freq_factor", "original_max_position_embeddings" }) rope.Remove(key);
            rope["rope_type"] = "default";
            rope["rope_theta"] = 321.0;
        }, key: "rope_parameters");
        Assert.Equal((321.0, (HfRopeScaling?)null), (plain.RopeTheta, plain.RopeScaling));
    }

    [Fact]
    public void Scalings_that_are_not_implemented_or_malformed_are_refused()
    {
        Assert.Throws<NotSupportedException>(() => ReadVariant("qwen2-yarn", rope => rope["type"] = "su"));
        Assert.Throws<NotSupportedException>(() => ReadVariant("qwen2-yarn", rope => rope["type"] = "mrope"));
        Assert.Throws<InvalidDataException>(() => ReadVariant("qwen2-yarn", rope => rope.Remove("factor")));
        Assert.Throws<InvalidDataException>(() => ReadVariant("llama3-rope", rope => rope.Remove("low_freq_factor")));
        Assert.Throws<InvalidDataException>(() => ReadVariant("llama3-rope", rope => rope.Remove("original_max_position_embeddings")));
        Assert.Throws<InvalidDataException>(() => ReadVariant("phi3-longrope", rope => ((JsonArray)rope["short_factor"]!).RemoveAt(0)));
        Assert.Throws<InvalidDataException>(() => ReadVariant("phi3-longrope", rope => rope.Remove("long_factor")));
        Assert.Throws<NotSupportedException>(() => ReadVariant("phi3-longrope", rope => rope["original_max_position_embeddings"] = 16));
        Assert.Throws<InvalidDataException>(() => ReadVariant("llama3-rope", _ => { }, top => top["rope_scaling"] = "llama3"));

        // dynamic NTK past its length is refused when the tables are asked for.
        HfConfig dynamic = ReadVariant("llama3-rope", rope =>
        {
            rope.Clear();
            rope["rope_type"] = "dynamic";
            rope["factor"] = 2.0;
            rope["original_max_position_embeddings"] = 12;
        });
        using DisposeScope scope = NewDisposeScope();
        HfRope.InverseFrequencies(dynamic, 12);
        Assert.Throws<NotSupportedException>(() => HfRope.InverseFrequencies(dynamic, 13));
    }

    // ------------------------------------------------------------------------------------------------------------
    // inv_freq against the formulas in double

    /// <summary>
    /// llama3 on the fixture: pairs sorted into the three bands by wavelength 2π/inv against L/high = 8 and L/low = 64
    /// (one kept, three blended, three divided), each equal to its formula; and the same kind on a head of 64 at θ 5e5
    /// and L 8192 (Llama 3.1's numbers), where all three bands occur again.
    /// </summary>
    [Fact]
    public void Llama3_frequencies_follow_the_three_bands()
    {
        HfConfig fixture = HfConfig.Read(HfFixtures.ConfigPath("llama3-rope"));
        int[] bands = CheckLlama3(fixture);
        Assert.Equal(new[] { 1, 3, 3 }, bands);

        HfConfig llama31 = fixture with
        {
            HeadDim = 64,
            RopeTheta = 500000.0,
            RopeScaling = fixture.RopeScaling! with { Factor = 8.0, LowFrequencyFactor = 1.0, HighFrequencyFactor = 4.0, OriginalPositions = 8192 },
        };
        bands = CheckLlama3(llama31);
        Assert.All(bands, count => Assert.True(count > 0, $"bands {string.Join("/", bands)}"));

        int[] CheckLlama3(HfConfig config)
        {
            HfRopeScaling s = config.RopeScaling!;
            int[] counts = new int[3];
            double[] expected = new double[config.HeadDim / 2];
            for (int j = 0; j < expected.Length; j++)
            {
                double inv = DefaultFrequency(config, j), wavelength = 2 * Math.PI / inv;
                if (wavelength < s.OriginalPositions / s.HighFrequencyFactor)
                {
                    expected[j] = inv;
                    counts[0]++;
                }
                else if (wavelength > s.OriginalPositions / s.LowFrequencyFactor)
                {
                    expected[j] = inv / s.Factor;
                    counts[2]++;
                }
                else
                {
                    double smooth = (s.OriginalPositions / wavelength - s.LowFrequencyFactor) / (s.HighFrequencyFactor - s.LowFrequencyFactor);
                    expected[j] = (1 - smooth) * inv / s.Factor + smooth * inv;
                    counts[1]++;
                }
            }
            Compare($"llama3 D {config.HeadDim} θ {config.RopeTheta} (kept/blended/divided {string.Join("/", counts)})", config, expected);
            return counts;
        }
    }

    /// <summary>
    /// yarn: the fixture's ramp (low 0, high 3 after truncation) puts pairs 1 and 2 strictly between the kept and the
    /// interpolated frequency; variants reach the other branches: a range starting above 0 (L 4096, D 64), no
    /// truncation, and an empty range (beta_fast = beta_slow, where the ramp's end moves by 0.001).
    /// </summary>
    [Fact]
    public void Yarn_frequencies_follow_the_ramp()
    {
        HfConfig fixture = HfConfig.Read(HfFixtures.ConfigPath("qwen2-yarn"));
        double[] ramp = CheckYarn(fixture);
        Assert.Equal(0.0, ramp[0]);
        Assert.Equal(2, ramp.Count(r => r > 0 && r < 1));
        Assert.Equal(1.0, ramp[^1]);

        HfConfig longer = fixture with { HeadDim = 64, RopeTheta = 10000.0, RopeScaling = fixture.RopeScaling! with { OriginalPositions = 4096 } };
        ramp = CheckYarn(longer);
        Assert.True(ramp.Count(r => r == 0) > 1 && ramp.Count(r => r > 0 && r < 1) > 1 && ramp.Count(r => r == 1) > 1);
        CheckYarn(longer with { RopeScaling = longer.RopeScaling! with { Truncate = false } });
        ramp = CheckYarn(longer with { RopeScaling = longer.RopeScaling! with { BetaFast = 4, BetaSlow = 4, Truncate = false } });
        Assert.True(ramp.Contains(0.0) && ramp.Contains(1.0), "the empty range should still split the pairs");
        Assert.DoesNotContain(ramp, r => r > 0 && r < 1);

        double[] CheckYarn(HfConfig config)
        {
            HfRopeScaling s = config.RopeScaling!;
            int d = config.HeadDim;
            double theta = config.RopeTheta;
            double Dim(double rotations) => d * Math.Log(s.OriginalPositions / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
            double low = Dim(s.BetaFast), high = Dim(s.BetaSlow);
            if (s.Truncate) (low, high) = (Math.Floor(low), Math.Ceiling(high));
            low = Math.Max(low, 0);
            high = Math.Min(high, d - 1);
            if (low == high) high += 0.001;
            var ramps = new double[d / 2];
            var expected = new double[d / 2];
            for (int j = 0; j < d / 2; j++)
            {
                ramps[j] = Math.Clamp((j - low) / (high - low), 0, 1);
                double e = 1 - ramps[j], power = Math.Pow(theta, 2.0 * j / d);
                expected[j] = 1 / (s.Factor * power) * (1 - e) + 1 / power * e;
            }
            Compare($"yarn D {d} L {s.OriginalPositions} β {s.BetaFast}/{s.BetaSlow}{(s.Truncate ? "" : " untruncated")}: range [{low}, {high}]", config, expected);
            return ramps;
        }
    }

    /// <summary>
    /// longrope: short_factor within the original context (up to 16 positions), long_factor past it; linear divides by
    /// the factor; dynamic within its length is the default rotation.
    /// </summary>
    [Fact]
    public void Longrope_linear_and_dynamic_frequencies_follow_their_formulas()
    {
        HfConfig phi3 = HfConfig.Read(HfFixtures.ConfigPath("phi3-longrope"));
        HfRopeScaling s = phi3.RopeScaling!;
        Compare("longrope short", phi3, Enumerable.Range(0, 5).Select(j => DefaultFrequency(phi3, j) / s.ShortFactor![j]).ToArray(), length: 16);
        Compare("longrope long", phi3, Enumerable.Range(0, 5).Select(j => DefaultFrequency(phi3, j) / s.LongFactor![j]).ToArray(), length: 17);

        HfConfig llama = HfConfig.Read(HfFixtures.ConfigPath("llama-gqa"));
        Compare("default", llama, Enumerable.Range(0, 6).Select(j => DefaultFrequency(llama, j)).ToArray());
        HfConfig linear = llama with { RopeScaling = new HfRopeScaling(HfRopeKind.Linear, 2.5) };
        Compare("linear 2.5", linear, Enumerable.Range(0, 6).Select(j => DefaultFrequency(llama, j) / 2.5).ToArray());
        HfConfig dynamic = llama with { RopeScaling = new HfRopeScaling(HfRopeKind.Dynamic, 2.0, OriginalPositions: 32) };
        using DisposeScope scope = NewDisposeScope();
        Assert.Equal(HfRope.InverseFrequencies(llama, 32).data<float>().ToArray(), HfRope.InverseFrequencies(dynamic, 32).data<float>().ToArray());
    }

    // ------------------------------------------------------------------------------------------------------------
    // The attention factor and the tables

    /// <summary>
    /// cos² + sin² = a² at every position and channel of the tables, with a = 0.1·ln 4 + 1 for the yarn fixture,
    /// √(1 + ln 4 / ln 16) for the longrope one and 1 for llama3; yarn's other attention factors (given, or a ratio of
    /// mscales) and longrope's given one.
    /// </summary>
    [Fact]
    public void Tables_carry_the_attention_factor()
    {
        (string Fixture, double Attention)[] cases =
        {
            ("qwen2-yarn", 0.1 * Math.Log(4) + 1),
            ("phi3-longrope", Math.Sqrt(1 + Math.Log(4) / Math.Log(16))),
            ("llama3-rope", 1.0),
        };
        foreach ((string fixture, double attention) in cases)
        {
            using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
            var llama = (HfLlama)reference.Model;
            Assert.Equal(attention, llama.AttentionScaling, 12);
            using DisposeScope scope = NewDisposeScope();
            (Tensor cos, Tensor sin) = llama.RotaryTables(16);
            float[] c = cos.data<float>().ToArray(), s = sin.data<float>().ToArray();
            double worst = c.Zip(s, (x, y) => Math.Abs((double)x * x + (double)y * y - attention * attention)).Max();
            output.WriteLine($"{fixture}: attention factor {attention:F9}, |cos² + sin² − a²| ≤ {worst:E2}");
            Assert.True(worst < 1e-6 * attention * attention, $"{fixture}: cos² + sin² differs from {attention * attention} by {worst:E2}");
            // Position 0 is unrotated: cos = a, sin = 0.
            Assert.All(c.Take(llama.Config.HeadDim), v => Assert.Equal((float)attention, v));
        }

        HfConfig yarn = HfConfig.Read(HfFixtures.ConfigPath("qwen2-yarn"));
        HfRopeScaling y = yarn.RopeScaling!;
        Assert.Equal(1.25, HfRope.AttentionScaling(yarn with { RopeScaling = y with { AttentionFactor = 1.25, Mscale = 2, MscaleAllDim = 1 } }));
        Assert.Equal((0.1 * 0.707 * Math.Log(4) + 1) / (0.1 * 1.5 * Math.Log(4) + 1), HfRope.AttentionScaling(yarn with { RopeScaling = y with { Mscale = 0.707, MscaleAllDim = 1.5 } }), 12);
        Assert.Equal(0.1 * Math.Log(4) + 1, HfRope.AttentionScaling(yarn with { RopeScaling = y with { Mscale = 0.707 } }), 12);
        Assert.Equal(1.0, HfRope.AttentionScaling(yarn with { RopeScaling = y with { Factor = 1.0 } }));
        HfConfig phi3 = HfConfig.Read(HfFixtures.ConfigPath("phi3-longrope"));
        Assert.Equal(0.9, HfRope.AttentionScaling(phi3 with { RopeScaling = phi3.RopeScaling! with { AttentionFactor = 0.9 } }));
        Assert.Equal(1.0, HfRope.AttentionScaling(phi3 with { RopeScaling = phi3.RopeScaling! with { Factor = 1.0 } }));
    }

    /// <summary>
    /// Each scaled fixture's logits against the same weights without its rope_scaling: far apart, so a compiled model
    /// that ignored the scaling would fail its comparison; and the transformers 5 form computes exactly the same logits
    /// as the rope_scaling form.
    /// </summary>
    [Theory]
    [InlineData("llama3-rope", "rope_scaling")]
    [InlineData("llama3-rope-parameters", "rope_parameters")]
    [InlineData("qwen2-yarn", "rope_scaling")]
    [InlineData("phi3-longrope", "rope_scaling")]
    public void Scaling_changes_the_logits(string fixture, string key)
    {
        string folder = HfChecks.TemporaryFolder("hf-rope-");
        try
        {
            JsonObject json = JsonNode.Parse(File.ReadAllText(HfFixtures.ConfigPath(fixture)))!.AsObject();
            if (key == "rope_parameters") json[key] = new JsonObject { ["rope_theta"] = json[key]!["rope_theta"]!.GetValue<double>(), ["rope_type"] = "default" };
            else json[key] = null;
            string plainPath = Path.Combine(folder, "config.json");
            File.WriteAllText(plainPath, json.ToJsonString());

            using HfReference scaled = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
            using HfReference plain = HfReference.Create(plainPath, Seed);
            Assert.Null(plain.Model.Config.RopeScaling);
            Assert.Equal(scaled.ParameterValues("model.layers.0.mlp.down_proj.weight"), plain.ParameterValues("model.layers.0.mlp.down_proj.weight"));
            const int batch = 2, length = 13;
            int[] tokens = Enumerable.Range(0, batch * length).Select(i => (i * 7 + 3) % scaled.Model.Config.VocabSize).ToArray();
            float[] withScaling = scaled.Logits(tokens, batch, length), without = plain.Logits(tokens, batch, length);
            double difference = HfChecks.RelativeMax(without, withScaling);
            output.WriteLine($"{fixture}: logits without the scaling differ by {difference:E2} of the largest");
            Assert.True(difference > 1e-2, $"{fixture}: the scaling moves the logits by only {difference:E2}");

            if (fixture == "llama3-rope-parameters")
            {
                using HfReference legacy = HfReference.Create(HfFixtures.ConfigPath("llama3-rope"), Seed);
                Assert.Equal(legacy.Logits(tokens, batch, length), withScaling);
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// Each part of a scaling on its own moves the fixture's logits well past the comparisons' 1e-5: yarn's and longrope's
    /// frequencies without their attention factor (attention_factor 1) and the factor without the frequencies; longrope's
    /// short factors against its long ones; llama3's blended band (gone when high_freq_factor nears low_freq_factor).
    /// </summary>
    [Theory]
    [InlineData("qwen2-yarn", "attention_factor", 1.0)]
    [InlineData("qwen2-yarn", "factor", 1.0001)]
    [InlineData("phi3-longrope", "attention_factor", 1.0)]
    [InlineData("phi3-longrope", "short_factor", 0.0)]
    [InlineData("llama3-rope", "high_freq_factor", 1.0001)]
    public void Each_part_of_a_scaling_moves_the_logits(string fixture, string key, double value)
    {
        string folder = HfChecks.TemporaryFolder("hf-rope-");
        try
        {
            JsonObject json = JsonNode.Parse(File.ReadAllText(HfFixtures.ConfigPath(fixture)))!.AsObject();
            JsonObject rope = json["rope_scaling"]!.AsObject();
            double attention = HfRope.AttentionScaling(HfConfig.Read(HfFixtures.ConfigPath(fixture)));
            if (key == "short_factor") rope[key] = rope["long_factor"]!.DeepClone();                   // the tables past the original context
            else rope[key] = value;
            if (key == "factor") rope["attention_factor"] = attention;                                 // yarn's factor alone gone
            string path = Path.Combine(folder, "config.json");
            File.WriteAllText(path, json.ToJsonString());

            using HfReference scaled = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
            using HfReference changed = HfReference.Create(path, Seed);
            const int batch = 2, length = 13;
            int[] tokens = Enumerable.Range(0, batch * length).Select(i => (i * 5 + 2) % scaled.Model.Config.VocabSize).ToArray();
            double difference = HfChecks.RelativeMax(changed.Logits(tokens, batch, length), scaled.Logits(tokens, batch, length));
            output.WriteLine($"{fixture} with {key} {(key == "short_factor" ? "= long_factor" : value.ToString())}: logits differ by {difference:E2} of the largest");
            Assert.True(difference > 1e-3, $"{fixture}: {key} moves the logits by only {difference:E2}");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // ------------------------------------------------------------------------------------------------------------

    private static double DefaultFrequency(HfConfig config, int j) => 1.0 / Math.Pow(config.RopeTheta, 2.0 * j / config.HeadDim);

    private void Compare(string what, HfConfig config, double[] expected, long length = 1)
    {
        using DisposeScope scope = NewDisposeScope();
        float[] actual = HfRope.InverseFrequencies(config, length).data<float>().ToArray();
        Assert.Equal(expected.Length, actual.Length);
        double worst = expected.Zip(actual, (e, a) => Math.Abs(a - e) / e).Max();
        output.WriteLine($"{what}: inv_freq within {worst:E2} of the double formula");
        Assert.True(worst < Tolerance, $"{what}: inv_freq {string.Join(", ", actual)} vs {string.Join(", ", expected)} ({worst:E2})");
    }

    // The fixture's config with its rope_scaling (or rope_parameters) object and top level edited, read back.
    private static HfConfig ReadVariant(string fixture, Action<JsonObject> editRope, Action<JsonObject>? editTop = null, string key = "rope_scaling")
    {
        string folder = HfChecks.TemporaryFolder("hf-rope-");
        try
        {
            JsonObject json = JsonNode.Parse(File.ReadAllText(HfFixtures.ConfigPath(fixture)))!.AsObject();
            editRope(json[key]!.AsObject());
            editTop?.Invoke(json);
            string path = Path.Combine(folder, "config.json");
            File.WriteAllText(path, json.ToJsonString());
            return HfConfig.Read(path);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
