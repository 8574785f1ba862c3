using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using TransformerGen.Samples.Hub;
using TransformerGen.Tokenizers;

namespace EmbeddingsSample;

/// <summary>
/// The sample: loads all-MiniLM-L6-v2 from a downloaded folder, prints the cosine similarities of a few sentences, and
/// searches a list of sentences for the ones closest in meaning to a few queries. <see cref="Run"/> takes the writers
/// so that tests read what it prints.
/// </summary>
public static class EmbeddingsApp
{
    /// <summary>Exit code when there is nothing to run: no folder, or files missing from it (what to download is printed).</summary>
    public const int ExitMissingModel = 2;

    /// <summary>Exit code when the folder holds another model than the one compiled in.</summary>
    public const int ExitWrongModel = 3;

    /// <summary>The repository and files the sample reads.</summary>
    internal static readonly HubModel Hub = new(
        "sentence-transformers/all-MiniLM-L6-v2",
        ["config.json", HubModel.Weights, "vocab.txt", "tokenizer_config.json"],
        "dotnet run -c Release --project samples/Embeddings -- --model {folder}");

    /// <summary>The sentences whose pairwise similarities are printed (sentence-transformers' own examples), one batch.</summary>
    public static IReadOnlyList<string> Sentences { get; } =
    [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "A man is riding a horse.",
        "A man is riding a white horse on an enclosed ground.",
        "A woman is playing violin.",
        "Two men pushed carts through the woods.",
    ];

    /// <summary>The queries searched for when no --query is given.</summary>
    public static IReadOnlyList<string> DefaultQueries { get; } =
    [
        "How do I cook spaghetti?",
        "Will it rain tomorrow?",
        "Which animals live in the ocean?",
    ];

    /// <summary>The sentence list searched when no --sentences is given: data/sentences.txt beside the program.</summary>
    public static string DefaultSentencesPath => Path.Combine(AppContext.BaseDirectory, "data", "sentences.txt");

    private const string CompiledConfigResource = "all-MiniLM-L6-v2.config.json";

    /// <summary>Parses <paramref name="args"/> and runs the sample, writing results to <paramref name="output"/> and problems to <paramref name="error"/>.</summary>
    /// <returns>0, <see cref="ExitMissingModel"/>, <see cref="ExitWrongModel"/>, or 1 for a command line that does not parse.</returns>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var model = new Option<string?>("--model") { Description = "The folder of sentence-transformers/all-MiniLM-L6-v2 (config.json, model.safetensors, vocab.txt, tokenizer_config.json).", HelpName = "folder" };
        var sentences = new Option<string?>("--sentences") { Description = "A text file of sentences to search, one a line (default: data/sentences.txt beside the program).", HelpName = "file" };
        var queries = new Option<string[]>("--query") { Description = "A query to search for (repeat for more); three built-in queries when none is given.", HelpName = "text" };
        var top = new Option<int>("--top") { Description = "Results per query.", HelpName = "k", DefaultValueFactory = _ => 3 };
        top.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 1) result.AddError("--top must be at least 1.");
        });
        var command = new RootCommand("Sentence embeddings with all-MiniLM-L6-v2 compiled from its config.json: similarities and semantic search.")
        {
            model, sentences, queries, top,
        };
        command.SetAction(parsed =>
        {
            string[] given = parsed.GetValue(queries) ?? [];
            return Execute(parsed.GetValue(model), parsed.GetValue(sentences) ?? DefaultSentencesPath, given.Length > 0 ? given : DefaultQueries, parsed.GetValue(top), output, error);
        });
        return command.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
    }

    private static int Execute(string? folder, string sentencesPath, IReadOnlyList<string> queries, int top, TextWriter output, TextWriter error)
    {
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        if (folder is null)
        {
            Hub.WriteDownloadInstructions(error, "No model folder given (--model).");
            return ExitMissingModel;
        }

        if (!Directory.Exists(folder))
        {
            Hub.WriteDownloadInstructions(error, $"The model folder '{folder}' does not exist.");
            return ExitMissingModel;
        }

        // A different model is told first, before any missing file: its other files do not matter.
        string configPath = Path.Combine(folder, "config.json");
        if (File.Exists(configPath) && !SameArchitecture(configPath, error))
        {
            return ExitWrongModel;
        }

        IReadOnlyList<string> missing = Hub.MissingFiles(folder);
        if (missing.Count > 0)
        {
            Hub.WriteDownloadInstructions(error, $"The model folder '{folder}' lacks {string.Join(", ", missing)}.");
            return ExitMissingModel;
        }

        if (!File.Exists(sentencesPath))
        {
            error.WriteLine($"The sentence file '{sentencesPath}' does not exist (--sentences).");
            return 1;
        }

        string[] corpus = File.ReadAllLines(sentencesPath).Select(line => line.Trim()).Where(line => line.Length > 0).ToArray();

        long started = Stopwatch.GetTimestamp();
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder);
        TimeSpan tokenizerTime = Stopwatch.GetElapsedTime(started);
        started = Stopwatch.GetTimestamp();
        MiniLm model = MiniLm.ForInference(folder);
        TimeSpan weightsTime = Stopwatch.GetElapsedTime(started);
        var embedder = new SentenceEmbedder(model, tokenizer);
        output.WriteLine($"model: {Hub.Repository} from {folder}: BERT, {MiniLm.Layers} layers, {MiniLm.DModel} wide, {MiniLm.Heads} heads, {MiniLm.ParameterCount:N0} parameters; compiled for {MiniLm.Batch} sentences of {MiniLm.SeqLen} tokens a batch");
        output.WriteLine($"loaded in {(tokenizerTime + weightsTime).TotalSeconds:F2} s (tokenizer {tokenizerTime.TotalSeconds:F2} s, {tokenizer.VocabSize:N0} ids; weights {weightsTime.TotalSeconds:F2} s, {MiniLm.InferenceBytes / 1e6:F0} MB of buffers)");
        output.WriteLine();

        PrintSimilarities(embedder.Embed(Sentences), output);
        output.WriteLine();
        Search(embedder, corpus, sentencesPath, queries, top, output);
        return 0;
    }

    private static bool SameArchitecture(string configPath, TextWriter error)
    {
        using Stream stream = typeof(EmbeddingsApp).Assembly.GetManifestResourceStream(CompiledConfigResource)
            ?? throw new InvalidOperationException($"{CompiledConfigResource} is not embedded in the program");
        using var reader = new StreamReader(stream);
        return ArchitectureCheck.Accepts(reader.ReadToEnd(), configPath, Hub.Repository, "samples/Embeddings/models/all-MiniLM-L6-v2/config.json", error);
    }

    private static void PrintSimilarities(SentenceEmbeddings embeddings, TextWriter output)
    {
        int n = embeddings.Count;
        output.WriteLine($"cosine similarity of {n} sentences:");
        for (int i = 0; i < n; i++)
        {
            output.WriteLine($"  [{i + 1}] {Sentences[i]}");
        }

        output.WriteLine();
        output.WriteLine("      " + string.Concat(Enumerable.Range(1, n).Select(j => $"{"[" + j + "]",8}")));
        for (int i = 0; i < n; i++)
        {
            output.WriteLine($"  {"[" + (i + 1) + "]",-4}" + string.Concat(Enumerable.Range(0, n).Select(j => $"{SentenceEmbeddings.Cosine(embeddings[i], embeddings[j]),8:F4}")));
        }

        output.WriteLine();
        output.WriteLine("pairs, most similar first:");
        var pairs = new List<(float Cosine, int A, int B)>();
        for (int i = 0; i < n; i++)
        {
            for (int j = i + 1; j < n; j++)
            {
                pairs.Add((SentenceEmbeddings.Cosine(embeddings[i], embeddings[j]), i, j));
            }
        }

        foreach ((float cosine, int a, int b) in pairs.OrderByDescending(pair => pair.Cosine))
        {
            output.WriteLine($"  {cosine,7:F4}  [{a + 1}] {Sentences[a]}  ~  [{b + 1}] {Sentences[b]}");
        }

        output.WriteLine();
        WriteTiming("embedded", embeddings, output);
    }

    private static void Search(SentenceEmbedder embedder, string[] corpus, string corpusPath, IReadOnlyList<string> queries, int top, TextWriter output)
    {
        SentenceEmbeddings sentences = embedder.Embed(corpus);
        output.WriteLine($"semantic search over {corpus.Length} sentences of {corpusPath}");
        WriteTiming("indexed", sentences, output);
        SentenceEmbeddings asked = embedder.Embed(queries);
        WriteTiming("queries embedded", asked, output);
        for (int q = 0; q < queries.Count; q++)
        {
            output.WriteLine();
            output.WriteLine($"query: {queries[q]}");
            IEnumerable<(float Score, int Index)> best = Enumerable.Range(0, corpus.Length)
                .Select(i => (Score: SentenceEmbeddings.Cosine(asked[q], sentences[i]), Index: i))
                .OrderByDescending(hit => hit.Score)
                .ThenBy(hit => hit.Index)
                .Take(top);
            int rank = 1;
            foreach ((float score, int index) in best)
            {
                output.WriteLine($"  {rank++}. {score,7:F4}  {corpus[index]}");
            }
        }
    }

    private static void WriteTiming(string what, SentenceEmbeddings e, TextWriter output)
    {
        string truncated = e.Truncated > 0 ? $"; {e.Truncated} cut at {MiniLm.SeqLen} tokens" : "";
        output.WriteLine($"{what} {e.Count} texts ({e.Tokens:N0} tokens, {e.Batches} batch{(e.Batches == 1 ? "" : "es")} of up to {MiniLm.Batch} at their own lengths) in {e.Elapsed.TotalSeconds:F2} s: "
                         + $"{e.TokensPerSecond:N0} tokens/s{truncated}");
    }
}
