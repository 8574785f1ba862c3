using System;
using System.IO;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <see cref="HfNomicBertModel"/> (compiled from <c>Configs/nomic-bert/config.json</c>) against the libtorch
/// NomicBertModel of <see cref="HfNomicBert"/> (<see cref="HfSentenceEncoderCheck"/>): from an fp32 file, a BF16 file, and
/// a file that also holds the pooler the model skips.
/// </summary>
public sealed class HfNomicBertModelTests(ITestOutputHelper output) : IDisposable
{
    private const long Seed = 20261207;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "tg-hf-nomic-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public void NomicBert_sentence_embeddings_hidden_states_and_gradients() => Check(new HfWriteOptions());

    [Fact]
    public void NomicBert_from_a_bf16_file() => Check(new HfWriteOptions(Dtype: HfDtype.BF16));

    [Fact]
    public void NomicBert_skips_the_pooler_a_file_may_hold() => Check(new HfWriteOptions(IncludeUnusedHeads: true));

    private void Check(HfWriteOptions files)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.NomicBert), Seed);
        var model = new HfNomicBertModel(seed: 3);
        Assert.Equal((3, 9, 0), (model.Layout.Batch, model.Layout.SeqLen, model.Layout.PadToken));
        output.WriteLine(HfSentenceEncoderCheck.Run("nomic-bert", reference, _folder, files, model, HfNomicBertModel.ForInference, [9, 4, 7]));
    }
}
