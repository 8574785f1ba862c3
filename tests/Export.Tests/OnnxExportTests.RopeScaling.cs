using Xunit;

namespace TransformerGen.Export.Tests;

public sealed partial class OnnxExportTests
{
    /// <summary>
    /// Scaled rotary positions in ONNX: the cos and sin tables are the model's own (Positional.RotaryTables with the
    /// config's RotaryScaling), so Llama 3's bands, YaRN (Qwen2, its attention factor given) and LongRoPE (Phi-3's
    /// short_factor, cos and sin × its attention factor) give our logits within the tolerance; the same model exported with
    /// its unscaled config (the same shapes, rope_scaling null) misses them by far more, so the tables are what changed.
    /// </summary>
    [Theory]
    [InlineData("llama3-scaled", "llama-blocks")]
    [InlineData("qwen2-yarn-blocks", "qwen2-blocks")]
    [InlineData("phi3-longrope-blocks", "phi3-blocks")]
    public void ScaledRotaryDecoderLogitsMatchOurs(string name, string unscaledConfig)
    {
        (TransformerModel model, string? config) = Build(name);
        ModelLayout layout = model.Layout;
        int[] tokens = Tokens(layout, seed: 3);
        float[] ours = OurLogits(model, tokens);
        double relative, unscaled;
        using (var runner = new OnnxRuntimeRunner(Export(model, config)))
            relative = Relative(ours, runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens))["logits"], layout.Vocab);
        string unscaledPath = System.IO.Path.Combine(_folder, $"{layout.Name}.unscaled.onnx");
        OnnxExport.Save(model, unscaledPath, new OnnxExportOptions { Config = GgufLlamaCppTests.Config(unscaledConfig) });
        using (var runner = new OnnxRuntimeRunner(unscaledPath))
            unscaled = Relative(ours, runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens))["logits"], layout.Vocab);
        output.WriteLine($"{layout.Name}: {layout.Batch}×{layout.SeqLen} logits relative {relative:G3}; exported with {unscaledConfig}'s unscaled rotation {unscaled:G3}");
        Assert.True(relative < Tolerance, $"relative {relative}");
        Assert.True(unscaled > 1e-2, $"unscaled: relative {unscaled}");
    }
}
