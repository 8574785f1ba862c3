using System;
using System.Globalization;
using Xunit;
using static TransformerGen.Generator.Tests.ConfigFixtures;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// A Llama-family <c>rope_scaling</c> (or transformers 5's <c>rope_parameters</c>): llama3, yarn, longrope and linear
/// compile to the runtime's <c>RotaryScaling</c> with every number a literal and the attention factor computed as
/// transformers does; dynamic compiles to the default rotation where it changes nothing; the rest is a TG0042 naming the key.
/// </summary>
public partial class ConfigTests
{
    private const string Llama3Scaling = "{\"factor\": 8.0, \"high_freq_factor\": 4.0, \"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}";

    private static string WithScaling(string json, string scaling) => json.Replace("\"rope_scaling\": null", "\"rope_scaling\": " + scaling);

    private static string R(double value) => ((float)value).ToString("R", CultureInfo.InvariantCulture) + "f";

    [Fact]
    public void A_llama3_rope_scaling_compiles_to_its_frequency_bands()
    {
        Compile(At("llama-3.2", WithScaling(LlamaGqa, Llama3Scaling)), Declared("llama-3.2", seqLen: 13), out string source);
        Assert.Contains("global::TransformerGen.Kernels.RotaryScaling.Llama3(factor: 8f, lowFrequencyFactor: 1f, highFrequencyFactor: 4f, originalPositions: 8192));", source);
        Assert.Contains("// rotary angles: cos and sin tables [positions, HeadDim / 2], scaled as rope_scaling says (Llama 3: long wavelengths divided by the factor, short ones kept, a blend between)", source);
        Assert.Contains("rotary positions (rotate_half, theta 10000, llama3 scaling ×8)", source);

        // transformers 5 keeps the same numbers beside rope_theta in rope_parameters.
        string v5 = Set(Remove(Remove(LlamaGqa, "rope_theta"), "rope_scaling"), "rope_parameters",
            "{\"factor\": 32.0, \"high_freq_factor\": 4.0, \"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192, \"rope_theta\": 500000.0, \"rope_type\": \"llama3\"}");
        Compile(At("llama-v5", v5), Declared("llama-v5", seqLen: 13), out source);
        Assert.Contains(", 500000f, global::TransformerGen.Kernels.RotaryScaling.Llama3(factor: 32f, lowFrequencyFactor: 1f, highFrequencyFactor: 4f, originalPositions: 8192));", source);
    }

    [Theory]
    [InlineData("{\"factor\": 8.0, \"rope_type\": \"llama3\"}", "llama3 scaling needs low_freq_factor, high_freq_factor and original_max_position_embeddings")]
    [InlineData("{\"factor\": 8.0, \"high_freq_factor\": 1.0, \"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}", "llama3 scaling needs 0 < low_freq_factor < high_freq_factor")]
    [InlineData("{\"factor\": 8.0, \"high_freq_factor\": 4.0, \"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 81.5, \"rope_type\": \"llama3\"}", "original_max_position_embeddings must be a positive integer")]
    [InlineData("{\"high_freq_factor\": 4.0, \"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}", "llama3 scaling needs a positive factor")]
    [InlineData("{\"factor\": 8.0, \"type\": \"ntk\"}", "of the scaled rotary positions linear, llama3, yarn, longrope and dynamic (within max_position_embeddings) are implemented")]
    [InlineData("\"llama3\"", "an object with rope_type and its numbers is expected")]
    public void TG0042_a_rope_scaling_that_cannot_be_built_names_the_key_and_why(string scaling, string why)
    {
        string message = Unsupported("scaled", WithScaling(LlamaGqa, scaling));
        Assert.StartsWith("scaled/config.json: \"rope_scaling\": ", message);
        Assert.EndsWith(" cannot be compiled: " + why, message);
    }

    [Fact]
    public void A_yarn_rope_scaling_computes_its_attention_factor_as_transformers_does()
    {
        // Qwen2.5's long-context setting: the default attention factor 0.1·ln 4 + 1, beta_fast 32 and beta_slow 1.
        string qwen = WithScaling(Qwen2, "{\"factor\": 4.0, \"original_max_position_embeddings\": 16, \"type\": \"yarn\"}");
        Compile(At("qwen-yarn", qwen), Declared("qwen-yarn", seqLen: 13), out string source);
        Assert.Contains($"RotaryScaling.Yarn(factor: 4f, originalPositions: 16, betaFast: 32f, betaSlow: 1f, truncate: true, attentionFactor: {R(0.1 * Math.Log(4) + 1)}));", source);

        // mscale over mscale_all_dim (DeepSeek's form); an explicit attention_factor wins; truncate false and the betas read.
        string ratio = WithScaling(LlamaGqa, "{\"factor\": 40.0, \"mscale\": 1.0, \"mscale_all_dim\": 0.5, \"beta_fast\": 16, \"beta_slow\": 2, \"truncate\": false, \"rope_type\": \"yarn\"}");
        Compile(At("ratio", ratio), Declared("ratio", seqLen: 13), out source);
        double expected = (0.1 * Math.Log(40) + 1) / (0.05 * Math.Log(40) + 1);
        Assert.Contains($"RotaryScaling.Yarn(factor: 40f, originalPositions: 32, betaFast: 16f, betaSlow: 2f, truncate: false, attentionFactor: {R(expected)}));", source);
        Compile(At("given", WithScaling(LlamaGqa, "{\"factor\": 4.0, \"attention_factor\": 1.5, \"rope_type\": \"yarn\"}")), Declared("given", seqLen: 13), out source);
        Assert.Contains("attentionFactor: 1.5f));", source);
    }

    [Fact]
    public void A_phi3_longrope_uses_its_short_factors_within_the_original_context_and_refuses_past_it()
    {
        // head_dim 12: 6 pairs. Phi3Config's original_max_position_embeddings at the top level; the factor is 32 / 16 = 2.
        const string factors = "[1.0, 1.25, 1.5, 2.0, 3.0, 4.5]";
        string json = Set(Set(LlamaGqa, "model_type", "\"phi3\""), "original_max_position_embeddings", "16");
        json = WithScaling(json, $"{{\"long_factor\": [2, 3, 4, 5, 6, 7], \"short_factor\": {factors}, \"type\": \"longrope\"}}");
        Compile(At("phi-3.5", json), Declared("phi-3.5", seqLen: 13), out string source);
        Assert.Contains($"RotaryScaling.LongRope({R(Math.Sqrt(1 + Math.Log(2) / Math.Log(16)))}, 1f, 1.25f, 1.5f, 2f, 3f, 4.5f));", source);
        Assert.Contains("LongRoPE within the original 16 positions: short_factor per pair", source);

        Assert.Equal("phi-3.5/config.json: \"rope_scaling\": longrope cannot be compiled: past original_max_position_embeddings = 16 (SeqLen = 17) transformers turns every position by long_factor instead of short_factor; that switch is not implemented, declare SeqLen ≤ 16",
            SingleError(At("phi-3.5", json), Declared("phi-3.5", seqLen: 17), "TG0042", ConfigArgument("phi-3.5")).GetMessage());
        string shortList = json.Replace(factors, "[1.0, 1.25]");
        Assert.EndsWith("cannot be compiled: longrope needs short_factor: 6 positive numbers, one per pair of head_dim", Unsupported("phi-3.5", shortList));
    }

    [Fact]
    public void A_dynamic_rope_scaling_within_max_position_embeddings_is_the_default_rotation_and_linear_divides_every_frequency()
    {
        Compile(At("dynamic", WithScaling(LlamaGqa, "{\"factor\": 2.0, \"type\": \"dynamic\"}")), Declared("dynamic", seqLen: 13), out string source);
        Assert.DoesNotContain("RotaryScaling", source);
        Assert.Contains("rotary positions (rotate_half, theta 10000)", source);
        string bounded = WithScaling(LlamaGqa, "{\"factor\": 2.0, \"original_max_position_embeddings\": 8, \"type\": \"dynamic\"}");
        Assert.EndsWith("cannot be compiled: dynamic scaling changes the rotation past original_max_position_embeddings = 8, below SeqLen = 13; it is not implemented",
            SingleError(At("dynamic", bounded), Declared("dynamic", seqLen: 13), "TG0042", ConfigArgument("dynamic")).GetMessage());

        Compile(At("linear", WithScaling(LlamaGqa, "{\"factor\": 4.0, \"rope_type\": \"linear\"}")), Declared("linear", seqLen: 13), out source);
        Assert.Contains(", 10000f, global::TransformerGen.Kernels.RotaryScaling.Linear(4f));", source);
    }

    [Fact]
    public void TG0042_a_rope_theta_in_rope_parameters_that_contradicts_the_top_level_one()
    {
        string json = Set(LlamaGqa, "rope_parameters", "{\"rope_theta\": 500000.0, \"rope_type\": \"default\"}");
        Assert.Equal("both/config.json: \"rope_parameters\": {rope_theta: 500000, rope_type: default} cannot be compiled: its rope_theta 500000 contradicts the top-level rope_theta = 10000",
            Unsupported("both", json));
        // The same base in both places is one statement.
        Compile(At("agree", Set(LlamaGqa, "rope_parameters", "{\"rope_theta\": 10000.0, \"rope_type\": \"default\"}")), Declared("agree", seqLen: 13), out _);
    }
}
