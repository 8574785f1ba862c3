using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using EmbeddingsSample;
using Xunit;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>The Embeddings sample run in process, and its printed similarity matrix and search results read back.</summary>
internal static partial class EmbeddingsOutput
{
    /// <summary>Runs the sample with <paramref name="args"/>, compiled with <paramref name="specs"/> (its own models when null).</summary>
    public static (int Exit, string Output, string Error) Run(IReadOnlyList<EmbeddingModelSpec>? specs, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = specs is null ? EmbeddingsApp.Run(args, output, error) : EmbeddingsApp.Run(args, output, error, specs);
        return (exit, output.ToString(), error.ToString());
    }

    /// <summary>The rows of the printed similarity matrix, in order.</summary>
    public static float[][] Matrix(string output) =>
        [.. MatrixRow().Matches(output).Select(m => m.Groups["values"].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(Number).ToArray())];

    /// <summary>Each query's printed results, best first, their ranks checked to run 1, 2, ….</summary>
    public static Dictionary<string, List<(float Score, string Sentence)>> SearchResults(string output)
    {
        var results = new Dictionary<string, List<(float, string)>>();
        List<(float, string)>? current = null;
        foreach (string line in output.Split('\n').Select(l => l.TrimEnd('\r')))
        {
            if (line.StartsWith("query: ", StringComparison.Ordinal))
            {
                results[line["query: ".Length..]] = current = [];
            }
            else if (current is not null && ResultLine().Match(line) is { Success: true } hit)
            {
                Assert.Equal(current.Count + 1, int.Parse(hit.Groups["rank"].Value, CultureInfo.InvariantCulture));
                current.Add((Number(hit.Groups["score"].Value), hit.Groups["sentence"].Value));
            }
        }

        return results;
    }

    public static float Number(string text) => float.Parse(text, CultureInfo.InvariantCulture);

    /// <summary>How far a printed value may be from the model's own cosine: 4 decimals, computed in a batch instead of alone.</summary>
    public const float Printed = 5e-5f + 2e-6f;

    /// <summary>
    /// Runs the sample on a tiny model's folder with the search list of <see cref="MiniLmFolder"/> written beside it and its
    /// queries (and <paramref name="more"/> arguments), the program compiled with MiniLM and the tiny model.
    /// </summary>
    public static (int Exit, string Output, string Error) RunTiny(TempFolder folder, EmbeddingModelSpec tiny, params string[] more)
    {
        folder.Write("search.txt", string.Join("\n", MiniLmFolder.SearchList) + "\n");
        string[] args = ["--model", folder.Path, "--sentences", folder.File("search.txt"), .. MiniLmFolder.Queries.SelectMany(q => new[] { "--query", q }), .. more];
        return Run([EmbeddingModelSpec.MiniLm, tiny], args);
    }

    /// <summary>The printed similarity matrix is the cosines of <paramref name="expected"/>, one embedding per sentence, within <see cref="Printed"/>.</summary>
    public static void AssertMatrix(string output, float[][] expected)
    {
        float[][] matrix = Matrix(output);
        Assert.Equal(expected.Length, matrix.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected.Length, matrix[i].Length);
            for (int j = 0; j < expected.Length; j++)
            {
                float cosine = SentenceEmbeddings.Cosine(expected[i], expected[j]);
                Assert.True(Math.Abs(matrix[i][j] - cosine) <= Printed, $"[{i + 1}][{j + 1}]: printed {matrix[i][j]}, the model's own {cosine}");
            }
        }
    }

    /// <summary>
    /// The printed search results: for each of <see cref="MiniLmFolder.Queries"/>, the three best of the search list by the
    /// cosine of <paramref name="query"/>'s embedding with <paramref name="document"/>'s, best first, each score within
    /// <see cref="Printed"/>. Returns the results as printed.
    /// </summary>
    public static Dictionary<string, List<(float Score, string Sentence)>> AssertSearch(string output, Func<string, float[]> query, Func<string, float[]> document)
    {
        Dictionary<string, List<(float Score, string Sentence)>> results = SearchResults(output);
        string[] searchList = MiniLmFolder.SearchList;
        Assert.Equal(MiniLmFolder.Queries, results.Keys);
        float[][] documents = [.. searchList.Select(document)];
        foreach ((string asked, List<(float Score, string Sentence)> hits) in results)
        {
            float[] embedded = query(asked);
            float[] scores = [.. documents.Select(d => SentenceEmbeddings.Cosine(embedded, d))];
            int[] best = [.. Enumerable.Range(0, searchList.Length).OrderByDescending(i => scores[i]).Take(3)];
            Assert.Equal(3, hits.Count);
            for (int rank = 0; rank < 3; rank++)
            {
                Assert.Equal(searchList[best[rank]], hits[rank].Sentence);
                Assert.True(Math.Abs(hits[rank].Score - scores[best[rank]]) <= Printed, $"{asked} #{rank + 1}: printed {hits[rank].Score}, the model's own {scores[best[rank]]}");
            }
        }

        return results;
    }

    [GeneratedRegex(@"^  \[\d+\]\s+(?<values>(?:\s*-?\d\.\d{4})+)\r?$", RegexOptions.Multiline)]
    private static partial Regex MatrixRow();

    [GeneratedRegex(@"^  (?<rank>\d+)\.\s+(?<score>-?\d\.\d{4})  (?<sentence>.+)$")]
    private static partial Regex ResultLine();
}
