using System;
using System.IO;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <see cref="HfMPNetModel"/> (compiled from <c>Configs/mpnet/config.json</c>) against the libtorch MPNetModel of
/// <see cref="HfMPNet"/> (<see cref="HfSentenceEncoderCheck"/>), at 40 positions so that the relative-position bias reaches
/// its logarithmic buckets: from MPNetModel's bare fp32 file, a BF16 file, a file that also holds the pooler, and
/// MPNetForMaskedLM's layout (<c>mpnet.</c> names beside the <c>lm_head</c> the encoder skips).
/// </summary>
public sealed class HfMPNetModelTests(ITestOutputHelper output) : IDisposable
{
    private const long Seed = 20261208;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "tg-hf-mpnet-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public void MPNet_sentence_embeddings_hidden_states_and_gradients() => Check(new HfWriteOptions());

    [Fact]
    public void MPNet_from_a_bf16_file() => Check(new HfWriteOptions(Dtype: HfDtype.BF16));

    [Fact]
    public void MPNet_skips_the_pooler_a_file_may_hold() => Check(new HfWriteOptions(IncludeUnusedHeads: true));

    [Fact]
    public void MPNet_from_the_masked_lm_layout() => Check(new HfWriteOptions(Prefix: true, IncludeUnusedHeads: true));

    private void Check(HfWriteOptions files)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.MPNet), Seed);
        var model = new HfMPNetModel(seed: 3);
        Assert.Equal((3, 40, 1), (model.Layout.Batch, model.Layout.SeqLen, model.Layout.PadToken));
        output.WriteLine(HfSentenceEncoderCheck.Run("mpnet", reference, _folder, files, model, HfMPNetModel.ForInference, [40, 13, 27]));
    }
}
