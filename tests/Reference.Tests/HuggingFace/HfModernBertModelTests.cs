using System;
using System.IO;
using System.Linq;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <see cref="HfModernBertModel"/> (compiled from <c>Configs/modernbert/config.json</c>) against the libtorch ModernBertModel
/// of <see cref="HfModernBert"/> (<see cref="HfSentenceEncoderCheck"/>): the folder as sentence-transformers saves it (bare
/// names), a BF16 one, ModernBertForMaskedLM's layout (<c>model.</c> names beside the head and decoder bias the encoder
/// skips) in two shards, and the tiled kernels; the sequence classifier (prediction head, mean pooling) with its loss and
/// gradients; and the reduced-precision instances.
/// </summary>
public sealed class HfModernBertModelTests(ITestOutputHelper output) : IDisposable
{
    private const long Seed = 20261209;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "tg-hf-modernbert-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public void ModernBert_sentence_embeddings_hidden_states_and_gradients() =>
        Check(new HfWriteOptions(), new HfModernBertModel(seed: 3), HfModernBertModel.ForInference);

    [Fact]
    public void ModernBert_from_a_bf16_folder() =>
        Check(new HfWriteOptions(Dtype: HfDtype.BF16), new HfModernBertModel(seed: 3), HfModernBertModel.ForInference);

    [Fact]
    public void ModernBert_from_the_masked_lm_layout_in_two_shards() =>
        Check(new HfWriteOptions(Prefix: true, IncludeUnusedHeads: true, Shards: 2), new HfModernBertModel(seed: 3), HfModernBertModel.ForInference);

    [Fact]
    public void ModernBert_with_the_tiled_kernels() =>
        Check(new HfWriteOptions(), new HfModernBertTiledModel(seed: 3), HfModernBertTiledModel.ForInference);

    [Fact]
    public void The_masked_lm_head_is_reported_as_skipped_and_the_first_layer_has_no_attention_norm()
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.ModernBert), Seed);
        reference.Save(_folder, new HfWriteOptions(Prefix: true, IncludeUnusedHeads: true));
        var model = new HfModernBertModel(seed: 3);
        SafeTensorsLoadReport report = HuggingFaceCheckpoint.Load(_folder, model.ParameterTensors, new float[model.Parameters.Length], CheckpointFamily.ModernBert);
        Assert.Equal(["decoder.bias", "head.dense.weight", "head.norm.weight"], report.Skipped.Select(s => s.Name).Order(StringComparer.Ordinal));
        Assert.All(report.Skipped, s => Assert.Equal(SafeTensorsSkipReason.UnusedHead, s.Reason));
        Assert.DoesNotContain(model.ParameterTensors, t => t.Name.StartsWith("layers.0.attn_norm", StringComparison.Ordinal));
        Assert.Contains(model.ParameterTensors, t => t.Name == "layers.1.attn_norm.weight");
        Assert.DoesNotContain(model.ParameterTensors, t => t.Name.EndsWith(".bias", StringComparison.Ordinal));
    }

    // Issue 14's bar for embeddings: a reduced instance computes what fp32 computes over its matrices rounded to the
    // format (12 rows, below the integer products' 16; 7 positions, so the local layers' window still leaves pairs out),
    // and keeps a cosine of at least 0.999 with fp32 itself.
    [Theory]
    [InlineData(WeightType.Int8)]
    [InlineData(WeightType.BFloat16)]
    public void Reduced_weights_keep_the_embeddings(WeightType type)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.ModernBert), Seed);
        reference.Save(_folder, new HfWriteOptions());
        HfModernBertModel reduced = HfModernBertModel.ForInference(_folder, type), exact = HfModernBertModel.ForInference(_folder);
        HfModernBertModel rounded = HfModernBertModel.ForInference(_folder);
        Model.Tests.ReducedWeights.RoundMatrices(rounded, type);
        rounded.PackWeights();
        Assert.True(reduced.WeightMatrixBytes < exact.WeightMatrixBytes);
        int[] lengths = [7, 5];
        int[] tokens = [3, 17, 29, 41, 8, 12, 5, 44, 6, 21, 33, 9];
        float[] a = reduced.Predict(tokens, lengths).ToArray(), b = rounded.Predict(tokens, lengths).ToArray(), c = exact.Predict(tokens, lengths).ToArray();
        int width = HfModernBertModel.DModel;
        double sameArithmetic = HfChecks.RelativeMax(a, b);
        double worst = Math.Min(HfChecks.Cosine(a.AsSpan(0, width), c.AsSpan(0, width)), HfChecks.Cosine(a.AsSpan(width, width), c.AsSpan(width, width)));
        output.WriteLine($"modernbert {type}: against fp32 over the rounded weights {sameArithmetic:E2}, cosine with fp32 {worst:F6}, max difference {HfChecks.RelativeMax(a, c):E2}");
        Assert.True(sameArithmetic < 1e-5, $"{sameArithmetic:E2} from fp32 over the rounded weights");
        Assert.InRange(worst, 0.999, 1.000001);
        Assert.False(a.AsSpan().SequenceEqual(c));
    }

    private void Check(HfWriteOptions files, EncoderModel model, Func<string, EncoderModel> forInference)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.ModernBert), Seed);
        Assert.Equal((3, 12, 58), (model.Layout.Batch, model.Layout.SeqLen, model.Layout.PadToken));
        output.WriteLine(HfSentenceEncoderCheck.Run("modernbert", reference, _folder, files, model, forInference, [12, 5, 9]));
    }
}
