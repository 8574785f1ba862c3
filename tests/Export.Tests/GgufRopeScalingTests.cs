using System;
using System.IO;
using System.Linq;
using TransformerGen.Kernels;
using TransformerGen.Model.Tests;
using Xunit;
using Xunit.Abstractions;
using static TransformerGen.Export.Tests.GgufLlamaCppTests;

namespace TransformerGen.Export.Tests;

/// <summary>
/// Scaled rotary positions in GGUF: each kind llama.cpp (LLamaSharp 0.30.0) computes as transformers does is written and
/// run, and its logits compared with ours; the same weights written without the scaling show what it changes. The kinds
/// and architectures llama.cpp cannot compute are refused.
/// </summary>
public sealed class GgufRopeScalingTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("gguf-rope-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>
    /// llama3 as a rope_freqs tensor (llama.cpp's llama), linear and YaRN as rope.scaling keys (llama and qwen3; Qwen2's
    /// YaRN with its betas and attention factor given, Qwen3's from transformers 5's rope_parameters with the defaults),
    /// LongRoPE as Phi-3's short and long factor tensors: llama.cpp's logits equal ours within the unscaled tests' bound
    /// (1e-4), and the file written without the scaling misses them by far more.
    /// </summary>
    [Theory]
    [InlineData("llama3-scaled", "llama", "rope_freqs.weight")]
    [InlineData("llama-linear", "llama", null)]
    [InlineData("qwen2-yarn-blocks", "llama", null)]
    [InlineData("qwen3-yarn", "qwen3", null)]
    [InlineData("phi3-longrope-blocks", "phi3", "rope_factors_short.weight")]
    public void F32ExportWithScaledRotaryGivesOurLogits(string config, string architecture, string? factors)
    {
        LanguageModel model = Build(config);
        int[] tokens = TestData.Tokens(model.Layout.SeqLen, model.Layout.Vocab, seed: 7);
        GgufHyperparameters h = GgufHyperparameters.FromConfig(Config(config));
        Assert.NotNull(h.RopeScaling);
        (string path, GgufExportReport report) = Export(model, h, "scaled");
        Assert.Equal(architecture, report.Architecture);
        if (factors is not null) Assert.Contains(report.Tensors, t => t.Name == factors && t.ModelName == GgufExport.RopeScalingSource && t.Dimensions.SequenceEqual([h.HeadDim / 2L]));
        else Assert.DoesNotContain(report.Tensors, t => t.ModelName == GgufExport.RopeScalingSource);

        float[][] ours = Ours(model, tokens);
        double relative = Relative(ours, LlamaCpp.Logits(path, tokens));
        (string unscaledPath, _) = Export(model, h with { RopeScaling = null, RopeOriginalContext = 0, RopeLongFactors = null }, "unscaled");
        double unscaled = Relative(ours, LlamaCpp.Logits(unscaledPath, tokens));
        output.WriteLine($"{model.Layout.Name} F32 ({h.RopeScaling}): relative {relative:G3}; written without the scaling {unscaled:G3}");
        Assert.True(relative < 1e-4, $"relative {relative}");
        Assert.True(unscaled > 1e-2, $"without the scaling: relative {unscaled}");
    }

    /// <summary>
    /// LongRoPE in llama.cpp switches by its context rather than by the sequence: with a context (LlamaCpp.Logits asks 64,
    /// llama.cpp pads it to 256) longer than the original one, it turns every position by long_factor and misses our
    /// logits, though the positions are well within the original context; the same file with long_factor = short_factor
    /// gives them again, so the switch is all that differs.
    /// </summary>
    [Fact]
    public void LongRopeTurnsByTheLongFactorsWhenLlamaCppsContextPassesTheOriginal()
    {
        LanguageModel model = Build("phi3-longrope-blocks");
        int[] tokens = TestData.Tokens(model.Layout.SeqLen, model.Layout.Vocab, seed: 7);
        float[][] ours = Ours(model, tokens);
        GgufHyperparameters h = GgufHyperparameters.FromConfig(Config("phi3-longrope-blocks")) with { RopeOriginalContext = 64 };
        (string path, _) = Export(model, h, "short-original");
        (string same, _) = Export(model, h with { RopeLongFactors = h.RopeScaling!.Divisors.ToArray() }, "long-as-short");
        double switched = Relative(ours, LlamaCpp.Logits(path, tokens)), unswitched = Relative(ours, LlamaCpp.Logits(same, tokens));
        output.WriteLine($"original context 64 < llama.cpp's 256: relative {switched:G3}; with long_factor = short_factor {unswitched:G3}");
        Assert.True(switched > 1e-2, $"long factors: relative {switched}");
        Assert.True(unswitched < 1e-4, $"long factors = short factors: relative {unswitched}");
    }

    /// <summary>
    /// Why YaRN's betas other than 32 and 1 are refused: llama.cpp takes them from its context parameters. A file with
    /// <c>{arch}.rope.scaling.yarn_beta_fast</c> 16 and <c>yarn_beta_slow</c> 0.5 added (as a writer that knows those keys
    /// would add them) gives exactly the logits of the file without them.
    /// </summary>
    [Fact]
    public void LlamaCppIgnoresTheFilesYarnBetas()
    {
        LanguageModel model = Build("qwen3-yarn");
        int[] tokens = TestData.Tokens(model.Layout.SeqLen, model.Layout.Vocab, seed: 7);
        (string path, _) = Export(model, GgufHyperparameters.FromConfig(Config("qwen3-yarn")), "scaled");
        string withBetas = Path.Combine(_folder, "betas.gguf");
        GgufFile.Read(path).WriteWithFloatKeys(withBetas, ("qwen3.rope.scaling.yarn_beta_fast", 16f), ("qwen3.rope.scaling.yarn_beta_slow", 0.5f));
        Assert.Equal(0.5f, (float)GgufFile.Read(withBetas).Metadata["qwen3.rope.scaling.yarn_beta_slow"]);
        float[][] plain = LlamaCpp.Logits(path, tokens), betas = LlamaCpp.Logits(withBetas, tokens);
        Assert.Equal(plain.Length, betas.Length);
        for (int t = 0; t < plain.Length; t++) Assert.Equal(plain[t], betas[t]);
    }

    /// <summary>
    /// What llama.cpp would compute otherwise is refused, saying why: llama3 outside llama.cpp's llama (qwen3 and phi3 have
    /// no place for rope_freqs), LongRoPE outside its phi3, YaRN without truncate (llama.cpp rounds the correction range) or
    /// with other betas than 32 and 1 (llama.cpp takes its context parameters' and ignores the file's).
    /// </summary>
    [Fact]
    public void KindsLlamaCppCannotComputeAreRefused()
    {
        RotaryScaling llama3 = RotaryScaling.Llama3(8f, 1f, 4f, 64);
        NotSupportedException e = Refused("qwen3-blocks", h => h with { RopeScaling = llama3 });
        Assert.Contains("rope_freqs", e.Message, StringComparison.Ordinal);
        Assert.Contains("qwen3", e.Message, StringComparison.Ordinal);
        e = Refused("phi3-blocks", h => h with { RopeScaling = llama3 });
        Assert.Contains("rope_freqs", e.Message, StringComparison.Ordinal);

        RotaryScaling longRope = RotaryScaling.LongRope(1.1f, Enumerable.Repeat(1.5f, 16).ToArray());
        e = Refused("llama-blocks", h => h with { RopeScaling = longRope, RopeOriginalContext = 64 });
        Assert.Contains("rope_factors_short", e.Message, StringComparison.Ordinal);

        e = Refused("qwen2-blocks", h => h with { RopeScaling = RotaryScaling.Yarn(4f, 64, 32f, 1f, truncate: false, attentionFactor: 1.1386f) });
        Assert.Contains("truncate", e.Message, StringComparison.Ordinal);
        e = Refused("qwen3-blocks", h => h with { RopeScaling = RotaryScaling.Yarn(4f, 64, 16f, 0.5f, truncate: true, attentionFactor: 1.1386f) });
        Assert.Contains("beta_fast 16 and beta_slow 0.5", e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(_folder));
    }

    /// <summary>A LongRoPE whose original context is shorter than the model's SeqLen is not the compiled model's: refused by both exports.</summary>
    [Fact]
    public void LongRopePastTheOriginalContextIsRefused()
    {
        LanguageModel model = Build("phi3-longrope-blocks");
        GgufHyperparameters h = GgufHyperparameters.FromConfig(Config("phi3-longrope-blocks")) with { RopeOriginalContext = 16 };
        var e = Assert.Throws<ArgumentException>(() => model.SaveGguf(Path.Combine(_folder, "x.gguf"), new GgufExportOptions { Hyperparameters = h, Name = "test model" }));
        Assert.Contains("original_max_position_embeddings 16", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_folder, "x.gguf")));
    }

    private NotSupportedException Refused(string config, Func<GgufHyperparameters, GgufHyperparameters> change)
    {
        LanguageModel model = Build(config);
        GgufHyperparameters h = change(GgufHyperparameters.FromConfig(Config(config)));
        return Assert.Throws<NotSupportedException>(() => model.SaveGguf(Path.Combine(_folder, config + ".gguf"), new GgufExportOptions { Hyperparameters = h, Name = "test model" }));
    }

    private (string Path, GgufExportReport Report) Export(LanguageModel model, GgufHyperparameters h, string suffix)
    {
        string path = Path.Combine(_folder, $"{model.Layout.Name}.{suffix}.gguf");
        GgufExportReport report = model.SaveGguf(path, new GgufExportOptions { Hyperparameters = h, Name = "test model" });
        Assert.Equal(new FileInfo(path).Length, report.Bytes);
        return (path, report);
    }
}
