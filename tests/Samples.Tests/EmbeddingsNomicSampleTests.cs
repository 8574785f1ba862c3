using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.RegularExpressions;
using EmbeddingsSample;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// The Embeddings sample's nomic-embed-text path: a tiny NomicBERT folder (<see cref="TinyNomic"/>) picked by its
/// model_type among the sample's MiniLM and the tiny model, its texts given nomic-embed-text's task prefixes, and every
/// printed cosine checked against the model's own <c>Predict</c> on the prefixed texts one at a time; and the real
/// nomic-embed-text-v1.5 picked, checked and told what to download from its config.json alone.
/// </summary>
public sealed partial class EmbeddingsNomicSampleTests(TinyNomic fixture, ITestOutputHelper log) : IClassFixture<TinyNomic>
{
    [Fact]
    public void The_similarities_are_cosines_of_the_models_own_embeddings_of_the_document_prefixed_sentences()
    {
        (int exit, string output, string error) = RunTiny();
        Assert.True(exit == 0, error);
        Assert.Equal("", error);
        log.WriteLine(output);
        Assert.Contains("model: tests/tiny-nomic from " + fixture.Path + ": NomicBERT (rotary), 2 layers, 16 wide; compiled for 8 sentences of 32 tokens a batch", output);
        Assert.Contains("task prefixes, as the model card asks: sentences embedded as \"search_document: …\", queries as \"search_query: …\"", output);

        int n = EmbeddingsApp.Sentences.Count;
        float[][] expected = [.. EmbeddingsApp.Sentences.Select(s => Embed("search_document: " + s))];
        EmbeddingsOutput.AssertMatrix(output, expected);
        float[][] bare = [.. EmbeddingsApp.Sentences.Select(s => Embed(s))];
        float largestPrefixEffect = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                largestPrefixEffect = Math.Max(largestPrefixEffect, Math.Abs(SentenceEmbeddings.Cosine(expected[i], expected[j]) - SentenceEmbeddings.Cosine(bare[i], bare[j])));

        // Without the prefix the cosines are others: the sample did embed "search_document: …".
        Assert.True(largestPrefixEffect > 1e-2f, $"the prefix moved no cosine by more than {largestPrefixEffect}");
        Assert.Matches(@"embedded 6 texts \(\d+ tokens, 1 batch of up to 8 at their own lengths\)", output);
    }

    [Fact]
    public void Search_scores_are_cosines_of_query_prefixed_queries_and_document_prefixed_sentences_best_first()
    {
        (int exit, string output, string error) = RunTiny();
        Assert.True(exit == 0, error);
        Dictionary<string, List<(float Score, string Sentence)>> results =
            EmbeddingsOutput.AssertSearch(output, query => Embed("search_query: " + query), sentence => Embed("search_document: " + sentence));

        // A listed sentence asked as a query is no longer its own copy: "search_query: " differs from "search_document: ".
        string listed = MiniLmFolder.SearchList[5];
        float self = results[listed].Single(hit => hit.Sentence == listed).Score;
        Assert.True(self < 0.9999f, $"the listed sentence scored {self} against itself");
    }

    [Fact]
    public void MiniLm_takes_its_texts_without_prefixes()
    {
        Assert.Null(EmbeddingModelSpec.MiniLm.Prefixes);
        Assert.Equal(TaskPrefixes.Nomic, EmbeddingModelSpec.NomicEmbedTextV15.Prefixes);
        Assert.Equal(("search_document: ", "search_query: "), (TaskPrefixes.Nomic.Document, TaskPrefixes.Nomic.Query));
        Assert.Equal(["bert", "nomic_bert", "mpnet", "gemma3_text", "modernbert"], EmbeddingModelSpec.All.Select(spec => spec.ModelType));
    }

    [Fact]
    public void The_model_type_picks_the_model_before_its_files_are_looked_for()
    {
        // The real sample's two models: a folder of nomic-embed-text-v1.5's config.json alone is told its own files.
        using var nomic = new TempFolder();
        nomic.Write("config.json", EmbeddingModelSpec.NomicEmbedTextV15.CompiledConfig);
        (int exit, string output, string error) = EmbeddingsOutput.Run(EmbeddingModelSpec.All, "--model", nomic.Path);
        Assert.Equal(EmbeddingsApp.ExitMissingModel, exit);
        Assert.Equal("", output);
        Assert.StartsWith($"The model folder '{nomic.Path}' lacks model.safetensors, vocab.txt, tokenizer_config.json.", error);
        Assert.Contains("huggingface-cli download nomic-ai/nomic-embed-text-v1.5 config.json model.safetensors vocab.txt tokenizer_config.json --local-dir models/nomic-embed-text-v1.5", error);
        Assert.Contains("dotnet run -c Release --project samples/Embeddings -- --model models/nomic-embed-text-v1.5", error);
        Assert.DoesNotContain("all-MiniLM", error);

        // And a folder of MiniLM's config is told MiniLM's.
        using var bert = new TempFolder();
        bert.Write("config.json", MiniLmFolder.CompiledConfig);
        (exit, _, error) = EmbeddingsOutput.Run(EmbeddingModelSpec.All, "--model", bert.Path);
        Assert.Equal(EmbeddingsApp.ExitMissingModel, exit);
        Assert.Contains("huggingface-cli download sentence-transformers/all-MiniLM-L6-v2 ", error);
        Assert.DoesNotContain("nomic", error);
    }

    [Fact]
    public void A_nomic_bert_folder_of_other_sizes_is_refused_against_nomic_embed_texts_config()
    {
        using var other = new TempFolder();
        var config = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(EmbeddingModelSpec.NomicEmbedTextV15.CompiledConfig)!;
        config["n_layer"] = JsonSerializer.SerializeToElement(6);
        config["rotary_emb_base"] = JsonSerializer.SerializeToElement(10000);
        config.Remove("qkv_proj_bias");
        other.Write("config.json", JsonSerializer.Serialize(config));
        (int exit, string output, string error) = EmbeddingsOutput.Run(EmbeddingModelSpec.All, "--model", other.Path);
        Assert.Equal(EmbeddingsApp.ExitWrongModel, exit);
        Assert.Equal("", output);
        Assert.Contains("describes another model than the one this program was compiled for (nomic-ai/nomic-embed-text-v1.5)", error);
        Assert.Contains("n_layer: 6 in the folder, 12 compiled", error);
        Assert.Contains("rotary_emb_base: 10000 in the folder, 1000 compiled", error);
        Assert.Contains("qkv_proj_bias: true in the folder, false compiled", error);
        Assert.DoesNotContain("n_embd", error);
        Assert.Contains("samples/Embeddings/models/nomic-embed-text-v1.5/config.json", error);
    }

    [Fact]
    public void Without_a_folder_names_what_to_download_for_each_model()
    {
        (int exit, string output, string error) = EmbeddingsOutput.Run(EmbeddingModelSpec.All);
        Assert.Equal(EmbeddingsApp.ExitMissingModel, exit);
        Assert.Equal("", output);
        Assert.StartsWith("No model folder given (--model).", error);
        Assert.Contains("huggingface-cli download sentence-transformers/all-MiniLM-L6-v2 config.json model.safetensors vocab.txt tokenizer_config.json --local-dir models/all-MiniLM-L6-v2", error);
        Assert.Contains("Or, for a folder whose config.json has model_type nomic_bert:", error);
        Assert.Contains("huggingface-cli download nomic-ai/nomic-embed-text-v1.5 config.json model.safetensors vocab.txt tokenizer_config.json --local-dir models/nomic-embed-text-v1.5", error);
        Assert.Contains("https://huggingface.co/nomic-ai/nomic-embed-text-v1.5/resolve/main/model.safetensors", error);
    }

    [Fact]
    public void The_embedded_config_is_the_one_nomic_embed_text_was_compiled_from()
    {
        using JsonDocument config = JsonDocument.Parse(EmbeddingModelSpec.NomicEmbedTextV15.CompiledConfig);
        JsonElement root = config.RootElement;
        Assert.Equal("nomic_bert", root.GetProperty("model_type").GetString());
        Assert.Equal(NomicEmbedTextV15.DModel, root.GetProperty("n_embd").GetInt32());
        Assert.Equal(NomicEmbedTextV15.Layers, root.GetProperty("n_layer").GetInt32());
        Assert.Equal(NomicEmbedTextV15.Heads, root.GetProperty("n_head").GetInt32());
        Assert.Equal(NomicEmbedTextV15.DFF, root.GetProperty("n_inner").GetInt32());
        Assert.Equal((30528, 768, 12, 12, 3072), (NomicEmbedTextV15.Vocab, NomicEmbedTextV15.DModel, NomicEmbedTextV15.Layers, NomicEmbedTextV15.Heads, NomicEmbedTextV15.DFF));
        // Within max_trained_positions, where the rotation is the trained one (no dynamic NTK scaling).
        Assert.Equal(512, NomicEmbedTextV15.SeqLen);
        Assert.True(NomicEmbedTextV15.SeqLen <= root.GetProperty("max_trained_positions").GetInt32());
    }

    private (int Exit, string Output, string Error) RunTiny() => EmbeddingsOutput.RunTiny(fixture.Folder, TinyNomic.Spec);

    /// <summary>
    /// One text alone through the tiny model's own Predict, one row: [CLS] text [SEP], a task prefix as transformers'
    /// BertTokenizer splits it (search _ document :, the ids read from vocab.txt).
    /// </summary>
    private float[] Embed(string text)
    {
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(fixture.Path);
        string[] vocab = File.ReadAllLines(fixture.Folder.File("vocab.txt"));
        int Id(string piece) => Array.IndexOf(vocab, piece) is int id and >= 0 ? id : throw new ArgumentException(piece);
        List<int> ids = [101];
        foreach ((string prefix, string[] pieces) in new[] { ("search_document: ", new[] { "search", "_", "document", ":" }), ("search_query: ", ["search", "_", "query", ":"]) })
        {
            if (text.StartsWith(prefix, StringComparison.Ordinal))
            {
                ids.AddRange(pieces.Select(Id));
                text = text[prefix.Length..];
            }
        }

        ids.AddRange(tokenizer.Encode(text, addSpecialTokens: false));
        ids.Add(102);
        Assert.True(ids.Count <= TinyNomicModel.SeqLen, text);
        Assert.DoesNotContain(tokenizer.UnkId ?? -1, ids);
        TinyNomicModel model = TinyNomicModel.ForInference(fixture.Path);
        return model.Predict(ids.ToArray(), [ids.Count]).ToArray();
    }
}
