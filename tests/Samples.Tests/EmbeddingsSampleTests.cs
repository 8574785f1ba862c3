using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.RegularExpressions;
using EmbeddingsSample;
using TransformerGen.Samples.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// The Embeddings sample end to end on a folder with random weights of all-MiniLM-L6-v2's real shape
/// (<see cref="MiniLmFolder"/>): what it prints, how it refuses another model, and what it says without one.
/// </summary>
public sealed partial class EmbeddingsSampleTests(MiniLmFolder fixture, ITestOutputHelper log) : IClassFixture<MiniLmFolder>
{
    [Fact]
    public void Prints_the_similarity_of_every_pair_with_one_on_the_diagonal()
    {
        (int exit, string output, string error) = fixture.SampleRun;
        Assert.True(exit == 0, error);
        Assert.Equal("", error);

        // The matrix: a row per sentence, every value a cosine, 1 on the diagonal, symmetric.
        int n = EmbeddingsApp.Sentences.Count;
        float[][] matrix = EmbeddingsOutput.Matrix(output);
        Assert.Equal(n, matrix.Length);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(n, matrix[i].Length);
            Assert.Equal(1f, matrix[i][i]);
            for (int j = 0; j < n; j++)
            {
                Assert.InRange(matrix[i][j], -1f, 1f);
                Assert.Equal(matrix[i][j], matrix[j][i]);
            }
        }

        // Every pair once, most similar first, with the matrix's value.
        var pairs = PairLine().Matches(output).Select(m => (Cosine: EmbeddingsOutput.Number(m.Groups["cosine"].Value), A: int.Parse(m.Groups["a"].Value, CultureInfo.InvariantCulture) - 1, B: int.Parse(m.Groups["b"].Value, CultureInfo.InvariantCulture) - 1)).ToList();
        Assert.Equal(n * (n - 1) / 2, pairs.Count);
        Assert.Equal(n * (n - 1) / 2, pairs.Select(p => (p.A, p.B)).Distinct().Count());
        Assert.All(pairs, p => Assert.True(p.A < p.B && p.Cosine == matrix[p.A][p.B]));
        Assert.Equal(pairs.Select(p => p.Cosine).OrderDescending(), pairs.Select(p => p.Cosine));

        // The folder's model_type (bert) picked MiniLM, whose texts take no prefix.
        Assert.Matches($@"^model: sentence-transformers/all-MiniLM-L6-v2 from {Regex.Escape(fixture.Path)}: BERT, 6 layers, 384 wide, 12 heads, [\d,]+ parameters; compiled for 8 sentences of 128 tokens a batch", output);
        Assert.DoesNotContain("prefix", output);
        Assert.DoesNotContain("search_", output);
        Assert.Matches(@"loaded in \d+\.\d\d s \(tokenizer \d+\.\d\d s, 30,522 ids; weights \d+\.\d\d s", output);
        Assert.Matches(@"embedded 6 texts \(\d+ tokens, 1 batch of up to 8 at their own lengths\) in \d+\.\d\d s: [\d,]+ tokens/s", output);
        log.WriteLine(output);
    }

    [Fact]
    public void Search_prints_three_results_per_query_and_finds_a_listed_sentence_with_cosine_one()
    {
        (int exit, string output, string error) = fixture.SampleRun;
        Assert.True(exit == 0, error);
        Dictionary<string, List<(float Score, string Sentence)>> results = EmbeddingsOutput.SearchResults(output);
        Assert.Equal(MiniLmFolder.Queries, results.Keys);
        foreach ((string query, List<(float Score, string Sentence)> hits) in results)
        {
            Assert.Equal(3, hits.Count);
            Assert.All(hits, hit => Assert.Contains(hit.Sentence, MiniLmFolder.SearchList));
            Assert.All(hits, hit => Assert.InRange(hit.Score, -1f, 1f));
            Assert.Equal(hits.Select(h => h.Score).OrderDescending(), hits.Select(h => h.Score));
            Assert.Equal(3, hits.Select(h => h.Sentence).Distinct().Count());
        }

        // The listed sentence, embedded in row 5 of the list's batch and in row 2 of the queries' batch, is its own best match.
        List<(float Score, string Sentence)> self = results[MiniLmFolder.SearchList[5]];
        Assert.Equal((1f, MiniLmFolder.SearchList[5]), self[0]);
        Assert.True(self[1].Score < 1f);
        Assert.Matches(@"indexed 7 texts \(\d+ tokens, 1 batch of up to 8 at their own lengths\) in \d+\.\d\d s: [\d,]+ tokens/s", output);
    }

    [Fact]
    public void Bundles_a_list_of_thirty_sentences_and_three_queries()
    {
        string[] lines = File.ReadAllLines(EmbeddingsApp.DefaultSentencesPath);
        Assert.Equal(30, lines.Length);
        Assert.Equal(30, lines.Distinct().Count());
        Assert.All(lines, line => Assert.False(string.IsNullOrWhiteSpace(line)));
        Assert.Equal(3, EmbeddingsApp.DefaultQueries.Count);
        Assert.True(EmbeddingsApp.Sentences.Count <= MiniLm.Batch);
    }

    [Fact]
    public void Refuses_a_folder_of_another_model_before_reading_weights()
    {
        using var other = new TempFolder();
        var config = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(MiniLmFolder.CompiledConfig)!;
        config["hidden_size"] = JsonSerializer.SerializeToElement(768);
        config["num_hidden_layers"] = JsonSerializer.SerializeToElement(12);
        config["layer_norm_eps"] = JsonSerializer.SerializeToElement(1e-5);
        other.Write("config.json", JsonSerializer.Serialize(config));

        (int exit, string output, string error) = EmbeddingsOutput.Run(null, "--model", other.Path);
        Assert.Equal(EmbeddingsApp.ExitWrongModel, exit);
        Assert.Equal("", output);
        Assert.Contains("describes another model than the one this program was compiled for (sentence-transformers/all-MiniLM-L6-v2)", error);
        Assert.Contains("hidden_size: 768 in the folder, 384 compiled", error);
        Assert.Contains("num_hidden_layers: 12 in the folder, 6 compiled", error);
        Assert.Contains("layer_norm_eps: 1E-05 in the folder, 1E-12 compiled", error);
        Assert.DoesNotContain("num_attention_heads", error);
        Assert.Contains("samples/Embeddings/models/all-MiniLM-L6-v2/config.json", error);
    }

    [Fact]
    public void Refuses_another_family()
    {
        using var other = new TempFolder();
        File.Copy(TinyChat.ConfigPath, other.File("config.json"));
        (int exit, _, string error) = EmbeddingsOutput.Run(null, "--model", other.Path);
        Assert.Equal(EmbeddingsApp.ExitWrongModel, exit);
        Assert.Contains($"{other.File("config.json")} has model_type llama; this program runs bert (sentence-transformers/all-MiniLM-L6-v2), nomic_bert (nomic-ai/nomic-embed-text-v1.5), mpnet (sentence-transformers/all-mpnet-base-v2), gemma3_text (google/embeddinggemma-300m), modernbert (Alibaba-NLP/gte-modernbert-base).", error);
    }

    [Fact]
    public void Without_a_folder_says_what_to_download_and_exits_2()
    {
        (int exit, string output, string error) = EmbeddingsOutput.Run(null);
        Assert.Equal(EmbeddingsApp.ExitMissingModel, exit);
        Assert.Equal("", output);
        Assert.StartsWith("No model folder given (--model).", error);
        Assert.Contains("huggingface-cli download sentence-transformers/all-MiniLM-L6-v2 config.json model.safetensors vocab.txt tokenizer_config.json --local-dir models/all-MiniLM-L6-v2", error);
        foreach (string file in new[] { "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json" })
        {
            Assert.Contains($"https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main/{file}", error);
        }

        Assert.Contains("dotnet run -c Release --project samples/Embeddings -- --model models/all-MiniLM-L6-v2", error);

        string missing = Path.Combine(Path.GetTempPath(), "no-such-model-" + Guid.NewGuid().ToString("N"));
        (exit, _, error) = EmbeddingsOutput.Run(null, "--model", missing);
        Assert.Equal(EmbeddingsApp.ExitMissingModel, exit);
        Assert.StartsWith($"The model folder '{missing}' does not exist.", error);
        Assert.Contains("https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main/model.safetensors", error);
    }

    [Fact]
    public void Names_the_files_a_folder_lacks()
    {
        using var partial = new TempFolder();
        partial.CopyFrom(fixture.Folder, "config.json", "vocab.txt");
        (int exit, _, string error) = EmbeddingsOutput.Run(null, "--model", partial.Path);
        Assert.Equal(EmbeddingsApp.ExitMissingModel, exit);
        Assert.StartsWith($"The model folder '{partial.Path}' lacks model.safetensors, tokenizer_config.json.", error);
    }

    [Fact]
    public void The_embedded_config_is_the_one_the_model_was_compiled_from()
    {
        using JsonDocument config = JsonDocument.Parse(MiniLmFolder.CompiledConfig);
        JsonElement root = config.RootElement;
        Assert.Equal("bert", root.GetProperty("model_type").GetString());
        Assert.Equal(MiniLm.Vocab, root.GetProperty("vocab_size").GetInt32());
        Assert.Equal(MiniLm.DModel, root.GetProperty("hidden_size").GetInt32());
        Assert.Equal(MiniLm.Layers, root.GetProperty("num_hidden_layers").GetInt32());
        Assert.Equal(MiniLm.Heads, root.GetProperty("num_attention_heads").GetInt32());
        Assert.Equal(MiniLm.DFF, root.GetProperty("intermediate_size").GetInt32());
        Assert.Equal((30522, 384, 6, 12, 1536), (MiniLm.Vocab, MiniLm.DModel, MiniLm.Layers, MiniLm.Heads, MiniLm.DFF));
    }

    [GeneratedRegex(@"^\s+(?<cosine>-?\d\.\d{4})  \[(?<a>\d+)\] .+  ~  \[(?<b>\d+)\] .+$", RegexOptions.Multiline)]
    private static partial Regex PairLine();
}
