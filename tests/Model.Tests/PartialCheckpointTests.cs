using System;
using System.IO;
using System.Linq;
using Xunit;

namespace TransformerGen.Model.Tests;

/// <summary>
/// Non-strict loading between models that share only part of their parameters: one classifier starting from another's
/// encoder, as a model is fine-tuned from a checkpoint with a different depth or head.
/// </summary>
public sealed class PartialCheckpointTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("tg-partial-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    // MeanClassifier has what FirstTokenClassifier has (token embedding, encoder layer 0, classifier, same shapes) and
    // more: learned positions, a second layer and a final norm (pre-LN).
    private static readonly string[] OnlyInMeanClassifier =
        new[] { "pos_embedding.weight", "norm_f.weight", "norm_f.bias" }
            .Concat(new MeanClassifier(0).ParameterTensors.Select(t => t.Name).Where(n => n.StartsWith("encoder.layers.1.", StringComparison.Ordinal)))
            .ToArray();

    [Fact]
    public void A_shallower_model_loads_the_shared_tensors_and_reports_the_rest_as_unexpected()
    {
        var source = new MeanClassifier(1);
        TestData.Perturb(source, 3);
        string path = Path.Combine(_folder, "mean.safetensors");
        source.Save(path);

        var target = new FirstTokenClassifier(2);
        SafeTensorsLoadReport report = target.Load(path, strict: false);

        Assert.Empty(report.Missing);
        Assert.Equal(OnlyInMeanClassifier.Order(StringComparer.Ordinal), report.Unexpected.Select(t => t.Name).Order(StringComparer.Ordinal));
        Assert.Contains(report.Unexpected, t => t.ToString() == "pos_embedding.weight [6, 12] F32");
        Assert.Equal(target.ParameterTensors.Count, report.Loaded.Count);
        foreach (ParameterTensor t in target.ParameterTensors)
            Assert.True(target.Parameters.Slice(t.Offset, t.Length).SequenceEqual(Values(source, t.Name)), t.Name);

        // Strict, the same file is refused and the model keeps what it has.
        var strict = new FirstTokenClassifier(2);
        float[] before = strict.Parameters.ToArray();
        var error = Assert.Throws<InvalidDataException>(() => strict.Load(path));
        Assert.Contains("encoder.layers.1.linear1.weight [20, 12]", error.Message);
        Assert.True(strict.Parameters.SequenceEqual(before));
    }

    [Fact]
    public void A_deeper_model_keeps_its_own_values_for_the_tensors_the_file_lacks()
    {
        var source = new FirstTokenClassifier(4);
        TestData.Perturb(source, 5);
        string path = Path.Combine(_folder, "first.safetensors");
        source.Save(path);

        var target = new MeanClassifier(6);
        float[] initial = target.Parameters.ToArray();
        SafeTensorsLoadReport report = target.Load(path, strict: false);

        Assert.Empty(report.Unexpected);
        Assert.Equal(OnlyInMeanClassifier.Order(StringComparer.Ordinal), report.Missing.Select(t => t.Name).Order(StringComparer.Ordinal));
        Assert.Contains(report.Missing, t => t.ToString() == "encoder.layers.1.self_attn.in_proj_weight [36, 12] F32");
        foreach (ParameterTensor t in target.ParameterTensors)
        {
            ReadOnlySpan<float> loaded = target.Parameters.Slice(t.Offset, t.Length);
            if (OnlyInMeanClassifier.Contains(t.Name)) Assert.True(loaded.SequenceEqual(initial.AsSpan(t.Offset, t.Length)), t.Name);
            else Assert.True(loaded.SequenceEqual(Values(source, t.Name)), t.Name);
        }

        // The partly loaded model trains.
        int[] tokens = TestData.Tokens(MeanClassifier.TokensPerStep, MeanClassifier.Vocab, 7);
        Assert.True(float.IsFinite(target.Forward(tokens, [0, 1, 2])));
    }

    private static ReadOnlySpan<float> Values(TransformerModel model, string name)
    {
        ParameterTensor t = model.ParameterTensors.Single(p => p.Name == name);
        return model.Parameters.Slice(t.Offset, t.Length);
    }
}
