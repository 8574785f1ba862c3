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

    [GeneratedRegex(@"^  \[\d+\]\s+(?<values>(?:\s*-?\d\.\d{4})+)\r?$", RegexOptions.Multiline)]
    private static partial Regex MatrixRow();

    [GeneratedRegex(@"^  (?<rank>\d+)\.\s+(?<score>-?\d\.\d{4})  (?<sentence>.+)$")]
    private static partial Regex ResultLine();
}
