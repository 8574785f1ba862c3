using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Xunit;
using Xunit.Abstractions;
using TransformerGen.Model.Tests;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <see cref="HfEmbeddingGemmaModel"/> (compiled from <c>Configs/embeddinggemma/config.json</c> and the sentence-transformers
/// modules beside it) against the libtorch EmbeddingGemma of <see cref="HfGemma3"/> (<see cref="HfSentenceEncoderCheck"/>):
/// the folder as sentence-transformers saves it (bare Gemma3TextModel names, the Dense layers in their own files), a BF16
/// one, one with <c>model.</c> names in two shards, and the tiled kernels; then the folder refused by a model compiled
/// without its Dense layers.
/// </summary>
public sealed class HfEmbeddingGemmaModelTests(ITestOutputHelper output) : IDisposable
{
    private const long Seed = 20261207;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "tg-hf-embeddinggemma-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public void EmbeddingGemma_sentence_embeddings_hidden_states_and_gradients() =>
        Check(new HfWriteOptions(), new HfEmbeddingGemmaModel(seed: 3), HfEmbeddingGemmaModel.ForInference);

    [Fact]
    public void EmbeddingGemma_from_a_bf16_folder() =>
        Check(new HfWriteOptions(Dtype: HfDtype.BF16), new HfEmbeddingGemmaModel(seed: 3), HfEmbeddingGemmaModel.ForInference);

    [Fact]
    public void EmbeddingGemma_from_prefixed_names_in_two_shards() =>
        Check(new HfWriteOptions(Prefix: true, Shards: 2), new HfEmbeddingGemmaModel(seed: 3), HfEmbeddingGemmaModel.ForInference);

    [Fact]
    public void EmbeddingGemma_with_the_tiled_kernels() =>
        Check(new HfWriteOptions(), new HfEmbeddingGemmaTiledModel(seed: 3), HfEmbeddingGemmaTiledModel.ForInference);

    [Fact]
    public void Its_own_checkpoint_holds_the_dense_layers_and_loads_back_alone()
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.EmbeddingGemma), Seed);
        reference.Save(_folder, new HfWriteOptions());
        var model = new HfEmbeddingGemmaModel(seed: 3);
        model.Load(_folder);
        string saved = Path.Combine(_folder, "saved", "model.safetensors");
        Directory.CreateDirectory(Path.GetDirectoryName(saved)!);
        model.Save(saved);
        var again = new HfEmbeddingGemmaModel(seed: 4);
        again.Load(saved);
        int[] tokens = [5, 9, 13, 2, 44, 7];
        Assert.Equal(model.Predict(tokens).ToArray(), again.Predict(tokens).ToArray());
    }

    [Fact]
    public void A_saved_sentence_transformers_folder_holds_the_dense_layers_in_their_module_files_and_loads_back()
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.EmbeddingGemma), Seed);
        reference.Save(_folder, new HfWriteOptions());
        HfEmbeddingGemmaModel model = HfEmbeddingGemmaModel.ForInference(_folder, WeightType.Int8); // unpacked while it writes
        string saved = Path.Combine(_folder, "fine-tuned");
        model.SaveSentenceTransformers(saved);
        Dictionary<string, long[]> main = SafeTensorsReader.Shapes(Path.Combine(saved, "model.safetensors"));
        Assert.DoesNotContain(main.Keys, name => name.Contains("Dense", StringComparison.Ordinal));
        Assert.Contains("model.layers.2.post_feedforward_layernorm.weight", main.Keys);
        Assert.Equal(new long[] { 33, 20 }, SafeTensorsReader.Shapes(Path.Combine(saved, "2_Dense", "model.safetensors"))["linear.weight"]);
        Assert.Equal(["linear.bias", "linear.weight"], SafeTensorsReader.Shapes(Path.Combine(saved, "3_Dense", "model.safetensors")).Keys.Order(StringComparer.Ordinal));
        // With the source's configs beside them, the folder is the model again.
        foreach (string file in new[] { "config.json", "modules.json", "1_Pooling/config.json", "2_Dense/config.json", "3_Dense/config.json" })
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(saved, file))!);
            File.Copy(Path.Combine(_folder, file), Path.Combine(saved, file), overwrite: true);
        }
        int[] tokens = [5, 9, 13, 2, 44, 7];
        Assert.Equal(model.Predict(tokens).ToArray(), HfEmbeddingGemmaModel.ForInference(saved, WeightType.Int8).Predict(tokens).ToArray());
    }

    [Fact]
    public void A_folder_whose_dense_layers_the_model_lacks_is_refused()
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.EmbeddingGemma), Seed);
        reference.Save(_folder, new HfWriteOptions());
        File.Delete(Path.Combine(_folder, "3_Dense", "model.safetensors"));
        var model = new HfEmbeddingGemmaModel(seed: 3);
        FileNotFoundException missing = Assert.Throws<FileNotFoundException>(() => model.Load(_folder));
        Assert.Contains("Dense layer '3_Dense' is neither in", missing.Message);
    }

    [Fact]
    public void A_folder_whose_modules_list_a_dense_layer_the_model_was_compiled_without_is_refused()
    {
        // An MPNet compiled from config.json alone, and a folder whose sentence-transformers pipeline projects after the
        // pooling (as LaBSE's and sentence-t5's do): the embeddings would not be the folder's, so nothing loads.
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.MPNet), Seed);
        reference.Save(_folder, new HfWriteOptions());
        File.WriteAllText(Path.Combine(_folder, "modules.json"), """
            [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
             {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
             {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
             {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"}]
            """);
        var model = new HfMPNetModel(seed: 3);
        InvalidDataException refused = Assert.Throws<InvalidDataException>(() => model.Load(_folder));
        Assert.Contains("modules.json has a Dense layer '2_Dense' after the pooling, which the model was compiled without", refused.Message);
        // The transformer's file alone still loads.
        model.Load(Path.Combine(_folder, "model.safetensors"));
    }

    // Issue 14's bar for embeddings: a reduced instance computes what fp32 computes over its matrices rounded to the
    // format (12 rows, below the integer products' 16), and keeps a cosine of at least 0.999 with fp32 itself.
    [Theory]
    [InlineData(WeightType.Int8)]
    [InlineData(WeightType.BFloat16)]
    public void Reduced_weights_keep_the_embeddings(WeightType type)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.EmbeddingGemma), Seed);
        reference.Save(_folder, new HfWriteOptions());
        HfEmbeddingGemmaModel reduced = HfEmbeddingGemmaModel.ForInference(_folder, type), exact = HfEmbeddingGemmaModel.ForInference(_folder);
        HfEmbeddingGemmaModel rounded = HfEmbeddingGemmaModel.ForInference(_folder);
        ReducedWeights.RoundMatrices(rounded, type); // reading Parameters unpacks the fp32 panels
        rounded.PackWeights();
        Assert.True(reduced.WeightMatrixBytes < exact.WeightMatrixBytes);
        int[] lengths = [7, 5];
        int[] tokens = [3, 17, 29, 41, 8, 12, 5, 44, 6, 21, 33, 9];
        float[] a = reduced.Predict(tokens, lengths).ToArray(), b = rounded.Predict(tokens, lengths).ToArray(), c = exact.Predict(tokens, lengths).ToArray();
        double sameArithmetic = HfChecks.RelativeMax(a, b);
        double worst = Math.Min(HfChecks.Cosine(a.AsSpan(0, 17), c.AsSpan(0, 17)), HfChecks.Cosine(a.AsSpan(17, 17), c.AsSpan(17, 17)));
        output.WriteLine($"embeddinggemma {type}: against fp32 over the rounded weights {sameArithmetic:E2}, cosine with fp32 {worst:F6}, max difference {HfChecks.RelativeMax(a, c):E2}");
        Assert.True(sameArithmetic < 1e-5, $"{sameArithmetic:E2} from fp32 over the rounded weights");
        Assert.InRange(worst, 0.999, 1.000001);
        Assert.False(a.AsSpan().SequenceEqual(c));
    }

    // The modules path is not Gemma's own: a LaBSE-shaped BERT folder ([CLS] pooling, Dense with bias and tanh, read from
    // the folder's files) against the libtorch BertModel with the same modules.
    [Fact]
    public void A_bert_folder_with_cls_pooling_and_a_tanh_dense_layer()
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath("bert-dense"), Seed);
        var model = new HfBertDenseModel(seed: 3);
        Assert.Equal(Pooling.FirstToken, model.Layout.Pooling);
        Assert.Contains(model.ParameterTensors, t => t.Name == "2_Dense.linear.bias");
        output.WriteLine(HfSentenceEncoderCheck.Run("bert-dense", reference, _folder, new HfWriteOptions(), model, HfBertDenseModel.ForInference, [12, 5, 9]));
    }

    private void Check(HfWriteOptions files, EncoderModel model, Func<string, EncoderModel> forInference)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.EmbeddingGemma), Seed);
        Assert.Equal((3, 9, 0), (model.Layout.Batch, model.Layout.SeqLen, model.Layout.PadToken));
        Assert.Equal(17, HfEmbeddingGemmaModel.EmbeddingWidth);
        output.WriteLine(HfSentenceEncoderCheck.Run("embeddinggemma", reference, _folder, files, model, forInference, [9, 4, 7]));
    }
}
