using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using EmbeddingsSample;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// The Embeddings sample's all-mpnet-base-v2 path: a tiny MPNet folder (<see cref="TinyMPNet"/>) picked by its model_type
/// among the sample's MiniLM and the tiny model, its texts between &lt;s&gt; (0) and &lt;/s&gt; (2) as MPNetTokenizer puts
/// them, and every printed cosine checked against the model's own <c>Predict</c> on each text alone; and the real
/// all-mpnet-base-v2 picked, checked and told what to download from its config.json alone.
/// </summary>
public sealed class EmbeddingsMPNetSampleTests(TinyMPNet fixture, ITestOutputHelper log) : IClassFixture<TinyMPNet>
{
    [Fact]
    public void The_similarities_are_cosines_of_the_models_own_embeddings_of_the_sentences()
    {
        (int exit, string output, string error) = RunTiny();
        Assert.True(exit == 0, error);
        Assert.Equal("", error);
        log.WriteLine(output);
        Assert.Contains("model: tests/tiny-mpnet from " + fixture.Path + ": MPNet (relative-position bias), 2 layers, 18 wide; compiled for 8 sentences of 32 tokens a batch", output);
        Assert.DoesNotContain("task prefixes", output);

        EmbeddingsOutput.AssertMatrix(output, [.. EmbeddingsApp.Sentences.Select(Embed)]);
        Assert.Matches(@"embedded 6 texts \(\d+ tokens, 1 batch of up to 8 at their own lengths\)", output);
    }

    [Fact]
    public void Search_scores_are_cosines_of_the_queries_and_sentences_best_first()
    {
        (int exit, string output, string error) = RunTiny();
        Assert.True(exit == 0, error);
        Dictionary<string, List<(float Score, string Sentence)>> results = EmbeddingsOutput.AssertSearch(output, Embed, Embed);

        // Without prefixes a listed sentence asked as a query is its own copy.
        string listed = MiniLmFolder.SearchList[5];
        float self = results[listed].Single(hit => hit.Sentence == listed).Score;
        Assert.True(self >= 0.9999f, $"the listed sentence scored {self} against itself");
    }

    [Fact]
    public void The_folders_tokenizer_puts_texts_between_s_and_slash_s_and_adds_the_mask_after_vocab_txt()
    {
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(fixture.Path);
        IReadOnlyList<int> ids = tokenizer.Encode(MiniLmFolder.SearchList[0]);
        Assert.Equal("<s>", fixture.VocabularyLines[ids[0]]);
        Assert.Equal("</s>", fixture.VocabularyLines[ids[ids.Count - 1]]);
        Assert.Equal((0, 2), (ids[0], ids[ids.Count - 1]));
        Assert.Equal(1000, tokenizer.SpecialTokenId("<mask>"));
        Assert.Equal(TinyMPNetModel.Vocab, tokenizer.VocabSize);
    }

    [Fact]
    public void A_folder_of_all_mpnet_base_v2s_config_alone_is_told_its_own_files()
    {
        using var mpnet = new TempFolder();
        mpnet.Write("config.json", EmbeddingModelSpec.AllMpnetBaseV2.CompiledConfig);
        (int exit, string output, string error) = EmbeddingsOutput.Run(EmbeddingModelSpec.All, "--model", mpnet.Path);
        Assert.Equal(EmbeddingsApp.ExitMissingModel, exit);
        Assert.Equal("", output);
        Assert.StartsWith($"The model folder '{mpnet.Path}' lacks model.safetensors, vocab.txt, tokenizer_config.json.", error);
        Assert.Contains("huggingface-cli download sentence-transformers/all-mpnet-base-v2 config.json model.safetensors vocab.txt tokenizer_config.json --local-dir models/all-mpnet-base-v2", error);
        Assert.Contains("dotnet run -c Release --project samples/Embeddings -- --model models/all-mpnet-base-v2", error);
        Assert.DoesNotContain("all-MiniLM", error);
        Assert.DoesNotContain("nomic", error);
    }

    [Fact]
    public void An_mpnet_folder_of_other_sizes_is_refused_against_all_mpnet_base_v2s_config()
    {
        using var other = new TempFolder();
        var config = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(EmbeddingModelSpec.AllMpnetBaseV2.CompiledConfig)!;
        config["num_hidden_layers"] = JsonSerializer.SerializeToElement(6);
        config["relative_attention_num_buckets"] = JsonSerializer.SerializeToElement(64);
        other.Write("config.json", JsonSerializer.Serialize(config));
        (int exit, string output, string error) = EmbeddingsOutput.Run(EmbeddingModelSpec.All, "--model", other.Path);
        Assert.Equal(EmbeddingsApp.ExitWrongModel, exit);
        Assert.Equal("", output);
        Assert.Contains("describes another model than the one this program was compiled for (sentence-transformers/all-mpnet-base-v2)", error);
        Assert.Contains("num_hidden_layers: 6 in the folder, 12 compiled", error);
        Assert.Contains("relative_attention_num_buckets: 64 in the folder, 32 compiled", error);
        Assert.DoesNotContain("hidden_size", error);
        Assert.Contains("samples/Embeddings/models/all-mpnet-base-v2/config.json", error);
    }

    [Fact]
    public void Without_a_folder_names_all_mpnet_base_v2s_download_too()
    {
        (int exit, _, string error) = EmbeddingsOutput.Run(EmbeddingModelSpec.All);
        Assert.Equal(EmbeddingsApp.ExitMissingModel, exit);
        Assert.Contains("Or, for a folder whose config.json has model_type mpnet:", error);
        Assert.Contains("huggingface-cli download sentence-transformers/all-mpnet-base-v2 config.json model.safetensors vocab.txt tokenizer_config.json --local-dir models/all-mpnet-base-v2", error);
    }

    [Fact]
    public void The_embedded_config_is_the_one_all_mpnet_base_v2_was_compiled_from()
    {
        using JsonDocument config = JsonDocument.Parse(EmbeddingModelSpec.AllMpnetBaseV2.CompiledConfig);
        JsonElement root = config.RootElement;
        Assert.Equal("mpnet", root.GetProperty("model_type").GetString());
        Assert.Equal(AllMpnetBaseV2.DModel, root.GetProperty("hidden_size").GetInt32());
        Assert.Equal(AllMpnetBaseV2.Layers, root.GetProperty("num_hidden_layers").GetInt32());
        Assert.Equal(AllMpnetBaseV2.Heads, root.GetProperty("num_attention_heads").GetInt32());
        Assert.Equal(AllMpnetBaseV2.DFF, root.GetProperty("intermediate_size").GetInt32());
        Assert.Equal((30527, 768, 12, 12, 3072), (AllMpnetBaseV2.Vocab, AllMpnetBaseV2.DModel, AllMpnetBaseV2.Layers, AllMpnetBaseV2.Heads, AllMpnetBaseV2.DFF));
        // sentence-transformers cuts all-mpnet-base-v2's inputs at 384 tokens (its max_seq_length); the table has 514 − 2 rows.
        Assert.Equal(384, AllMpnetBaseV2.SeqLen);
        Assert.True(AllMpnetBaseV2.SeqLen + 2 <= root.GetProperty("max_position_embeddings").GetInt32());
    }

    private (int Exit, string Output, string Error) RunTiny() => EmbeddingsOutput.RunTiny(fixture.Folder, TinyMPNet.Spec);

    /// <summary>One text alone through the tiny model's own Predict, one row: &lt;s&gt; text &lt;/s&gt;, the two ids read from vocab.txt.</summary>
    private float[] Embed(string text)
    {
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(fixture.Path);
        List<int> ids = [Id("<s>"), .. tokenizer.Encode(text, addSpecialTokens: false), Id("</s>")];
        Assert.True(ids.Count <= TinyMPNetModel.SeqLen, text);
        Assert.DoesNotContain(tokenizer.UnkId ?? -1, ids);
        Assert.DoesNotContain(Id("<pad>"), ids);
        TinyMPNetModel model = TinyMPNetModel.ForInference(fixture.Path);
        return model.Predict(ids.ToArray(), [ids.Count]).ToArray();

        int Id(string piece) => fixture.VocabularyLines.ToList().IndexOf(piece) is int id and >= 0 ? id : throw new ArgumentException(piece);
    }
}
