using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using EmbeddingsSample;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// The Embeddings sample's embeddinggemma-300m path: a tiny EmbeddingGemma folder (<see cref="TinyEmbeddingGemma"/>, the
/// Dense layers in their module files) picked by its model_type among the sample's MiniLM and the tiny model, its texts
/// given EmbeddingGemma's prompts between &lt;bos&gt; and &lt;eos&gt;, and every printed cosine checked against the model's
/// own <c>Predict</c> on the prompted texts one at a time; and the real embeddinggemma-300m picked, checked and told what to
/// download from its config.json alone.
/// </summary>
public sealed class EmbeddingsGemmaSampleTests(TinyEmbeddingGemma fixture, ITestOutputHelper log) : IClassFixture<TinyEmbeddingGemma>
{
    private const string Document = "title: none | text: ", Query = "task: search result | query: ";

    [Fact]
    public void The_similarities_are_cosines_of_the_models_own_embeddings_of_the_document_prompted_sentences()
    {
        (int exit, string output, string error) = RunTiny();
        Assert.True(exit == 0, error);
        Assert.Equal("", error);
        log.WriteLine(output);
        Assert.Contains("model: tests/tiny-embeddinggemma from " + fixture.Path + ": Gemma 3 (bidirectional, Dense 18 → 18), 2 layers, 18 wide; compiled for 8 sentences of 128 tokens a batch", output);
        Assert.Contains($"task prefixes, as the model card asks: sentences embedded as \"{Document}…\", queries as \"{Query}…\"", output);
        EmbeddingsOutput.AssertMatrix(output, [.. EmbeddingsApp.Sentences.Select(s => Embed(Document + s))]);
        Assert.Matches(@"embedded 6 texts \(\d+ tokens, 1 batch of up to 8 at their own lengths\)", output);
    }

    [Fact]
    public void Search_scores_are_cosines_of_query_prompted_queries_and_document_prompted_sentences_best_first()
    {
        (int exit, string output, string error) = RunTiny();
        Assert.True(exit == 0, error);
        Dictionary<string, List<(float Score, string Sentence)>> results =
            EmbeddingsOutput.AssertSearch(output, query => Embed(Query + query), sentence => Embed(Document + sentence));
        string listed = MiniLmFolder.SearchList[5];
        float self = results[listed].Single(hit => hit.Sentence == listed).Score;
        Assert.True(self < 0.9999f, $"the listed sentence scored {self} against itself, though its query and document prompts differ");
    }

    [Fact]
    public void The_dense_layers_come_from_their_module_files_and_change_the_embedding()
    {
        TinyEmbeddingGemmaModel model = TinyEmbeddingGemmaModel.ForInference(fixture.Path);
        Assert.Equal(18, TinyEmbeddingGemmaModel.EmbeddingWidth);
        // The folder's main file holds the transformer alone; the Dense weights are only in 2_Dense/ and 3_Dense/.
        int[] ids = [.. PretrainedTokenizer.FromFolder(fixture.Path).Encode(Document + MiniLmFolder.SearchList[0])];
        float[] embedding = model.Predict(ids, [ids.Length]).ToArray();
        File.Move(fixture.Folder.File("3_Dense/model.safetensors"), fixture.Folder.File("3_Dense/moved.safetensors"));
        try
        {
            FileNotFoundException missing = Assert.Throws<FileNotFoundException>(() => TinyEmbeddingGemmaModel.ForInference(fixture.Path));
            Assert.Contains("Dense layer '3_Dense'", missing.Message);
        }
        finally
        {
            File.Move(fixture.Folder.File("3_Dense/moved.safetensors"), fixture.Folder.File("3_Dense/model.safetensors"));
        }
        Assert.Equal(embedding, TinyEmbeddingGemmaModel.ForInference(fixture.Path).Predict(ids, [ids.Length]).ToArray());
        Assert.Equal(1.0, Math.Sqrt(embedding.Sum(v => (double)v * v)), 5);
    }

    [Fact]
    public void With_weights_int8_the_similarities_are_the_8_bit_models_own()
    {
        (int exit, string output, string error) = EmbeddingsOutput.RunTiny(fixture.Folder, TinyEmbeddingGemma.Spec, "--weights", "int8");
        Assert.True(exit == 0, error);
        Assert.Matches(@"weights \d+\.\d\d s, int8, \d+ MB of buffers\)", output);
        TinyEmbeddingGemmaModel reduced = TinyEmbeddingGemmaModel.ForInference(fixture.Path, WeightType.Int8);
        float[] Embed8(string text)
        {
            int[] ids = [.. PretrainedTokenizer.FromFolder(fixture.Path).Encode(text)];
            return reduced.Predict(ids, [ids.Length]).ToArray();
        }
        EmbeddingsOutput.AssertMatrix(output, [.. EmbeddingsApp.Sentences.Select(s => Embed8(Document + s))]);
    }

    [Fact]
    public void The_folders_tokenizer_puts_each_text_between_bos_and_eos()
    {
        IReadOnlyList<int> ids = PretrainedTokenizer.FromFolder(fixture.Path).Encode(Query + MiniLmFolder.Queries[0]);
        Assert.Equal((2, 1), (ids[0], ids[^1]));
        Assert.True(ids.Count <= TinyEmbeddingGemmaModel.SeqLen);
    }

    [Fact]
    public void A_folder_of_embeddinggemmas_config_alone_is_told_its_own_files()
    {
        using var gemma = new TempFolder();
        gemma.Write("config.json", EmbeddingModelSpec.EmbeddingGemma300m.CompiledConfig);
        (int exit, string output, string error) = EmbeddingsOutput.Run(EmbeddingModelSpec.All, "--model", gemma.Path);
        Assert.Equal(EmbeddingsApp.ExitMissingModel, exit);
        Assert.Equal("", output);
        Assert.StartsWith($"The model folder '{gemma.Path}' lacks model.safetensors, tokenizer.model, tokenizer_config.json, modules.json, 1_Pooling/config.json, 2_Dense/config.json, 2_Dense/model.safetensors, 3_Dense/config.json, 3_Dense/model.safetensors.", error);
        Assert.Contains("huggingface-cli download google/embeddinggemma-300m config.json model.safetensors tokenizer.model tokenizer_config.json modules.json 1_Pooling/config.json 2_Dense/config.json 2_Dense/model.safetensors 3_Dense/config.json 3_Dense/model.safetensors --local-dir models/embeddinggemma-300m", error);
        Assert.Contains("dotnet run -c Release --project samples/Embeddings -- --model models/embeddinggemma-300m", error);
    }

    [Fact]
    public void A_causal_gemma3_folder_is_refused_against_embeddinggemmas_config()
    {
        using var other = new TempFolder();
        var config = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(EmbeddingModelSpec.EmbeddingGemma300m.CompiledConfig)!;
        config["use_bidirectional_attention"] = JsonSerializer.SerializeToElement(false);
        config["sliding_window"] = JsonSerializer.SerializeToElement(1024);
        other.Write("config.json", JsonSerializer.Serialize(config));
        (int exit, string output, string error) = EmbeddingsOutput.Run(EmbeddingModelSpec.All, "--model", other.Path);
        Assert.Equal(EmbeddingsApp.ExitWrongModel, exit);
        Assert.Equal("", output);
        Assert.Contains("describes another model than the one this program was compiled for (google/embeddinggemma-300m)", error);
        Assert.Contains("use_bidirectional_attention: false in the folder, true compiled", error);
        Assert.Contains("sliding_window: 1024 in the folder, 512 compiled", error);
    }

    [Fact]
    public void The_embedded_config_and_modules_are_the_ones_embeddinggemma_was_compiled_from()
    {
        using JsonDocument config = JsonDocument.Parse(EmbeddingModelSpec.EmbeddingGemma300m.CompiledConfig);
        JsonElement root = config.RootElement;
        Assert.Equal("gemma3_text", root.GetProperty("model_type").GetString());
        Assert.True(root.GetProperty("use_bidirectional_attention").GetBoolean());
        Assert.Equal((262144, 768, 24, 3, 1152), (EmbeddingGemma300m.Vocab, EmbeddingGemma300m.DModel, EmbeddingGemma300m.Layers, EmbeddingGemma300m.Heads, EmbeddingGemma300m.DFF));
        Assert.Equal((768, 512, 256), (EmbeddingGemma300m.EmbeddingWidth, EmbeddingGemma300m.SeqLen, EmbeddingGemma300m.HeadDim));
        // The 308 million of its model card: the 262144 × 768 table, 24 layers of 4,230,656, the final norm, and the two
        // Dense layers' 2 × 768 × 3072.
        Assert.Equal(262144L * 768 + 24L * 4_230_656 + 768 + 2L * 768 * 3072, EmbeddingGemma300m.ParameterCount);
        Assert.Equal(307_581_696, EmbeddingGemma300m.ParameterCount);
    }

    private (int Exit, string Output, string Error) RunTiny() => EmbeddingsOutput.RunTiny(fixture.Folder, TinyEmbeddingGemma.Spec);

    /// <summary>One prompted text alone through the tiny model's own Predict, one row: &lt;bos&gt; prompt text &lt;eos&gt;.</summary>
    private float[] Embed(string text)
    {
        int[] ids = [.. PretrainedTokenizer.FromFolder(fixture.Path).Encode(text)];
        Assert.Equal((2, 1), (ids[0], ids[^1]));
        Assert.True(ids.Length <= TinyEmbeddingGemmaModel.SeqLen, text);
        return TinyEmbeddingGemmaModel.ForInference(fixture.Path).Predict(ids, [ids.Length]).ToArray();
    }
}
