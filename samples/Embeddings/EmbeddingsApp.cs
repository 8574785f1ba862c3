using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using TransformerGen;
using TransformerGen.Samples.Hub;
using TransformerGen.Tokenizers;

namespace EmbeddingsSample;

/// <summary>
/// The sample: loads all-MiniLM-L6-v2, all-mpnet-base-v2, nomic-embed-text-v1.5, embeddinggemma-300m or gte-modernbert-base
/// from a downloaded folder, prints the cosine similarities of a few sentences, and searches a list of sentences for the
/// ones closest in meaning to a few queries. The folder's config.json says which of the compiled models runs (its
/// model_type: bert is all-MiniLM-L6-v2, mpnet is all-mpnet-base-v2, nomic_bert is nomic-embed-text-v1.5 and gemma3_text
/// embeddinggemma-300m, whose texts take their task prefixes, and modernbert is gte-modernbert-base).
/// <see cref="Run(string[], TextWriter, TextWriter)"/> takes the writers so that tests read what it prints.
/// </summary>
public static class EmbeddingsApp
{
    /// <summary>Exit code when there is nothing to run: no folder, or files missing from it (what to download is printed).</summary>
    public const int ExitMissingModel = 2;

    /// <summary>Exit code when the folder holds another model than the ones compiled in.</summary>
    public const int ExitWrongModel = 3;

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

    /// <summary>Parses <paramref name="args"/> and runs the sample with the compiled models, writing results to <paramref name="output"/> and problems to <paramref name="error"/>.</summary>
    /// <returns>0, <see cref="ExitMissingModel"/>, <see cref="ExitWrongModel"/>, or 1 for a command line that does not parse.</returns>
    public static int Run(string[] args, TextWriter output, TextWriter error) => Run(args, output, error, EmbeddingModelSpec.All);

    /// <summary>Parses <paramref name="args"/> and runs the sample with the one of <paramref name="specs"/> whose model_type the folder's config.json has.</summary>
    /// <returns>0, <see cref="ExitMissingModel"/>, <see cref="ExitWrongModel"/>, or 1 for a command line that does not parse.</returns>
    public static int Run(string[] args, TextWriter output, TextWriter error, IReadOnlyList<EmbeddingModelSpec> specs)
    {
        ArgumentNullException.ThrowIfNull(specs);
        string repositories = string.Join(" or ", specs.Select(spec => spec.Repository));
        var model = new Option<string?>("--model") { Description = $"The folder of {repositories} (config.json, model.safetensors and its tokenizer's files; the download instructions list them); its config.json's model_type says which.", HelpName = "folder" };
        var sentences = new Option<string?>("--sentences") { Description = "A text file of sentences to search, one a line (default: data/sentences.txt beside the program).", HelpName = "file" };
        var queries = new Option<string[]>("--query") { Description = "A query to search for (repeat for more); three built-in queries when none is given.", HelpName = "text" };
        var top = new Option<int>("--top") { Description = "Results per query.", HelpName = "k", DefaultValueFactory = _ => 3 };
        var weights = new Option<string>("--weights") { Description = "How the weight matrices and the token table are held: fp32 as trained, bf16 (half the memory), int8 (about a quarter; embeddinggemma-300m is 1.2 GB in fp32).", HelpName = "type", DefaultValueFactory = _ => "fp32" };
        weights.AcceptOnlyFromAmong([.. WeightTypeNames.All.Keys]);
        top.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 1) result.AddError("--top must be at least 1.");
        });
        var command = new RootCommand("Sentence embeddings with all-MiniLM-L6-v2, all-mpnet-base-v2, nomic-embed-text-v1.5, embeddinggemma-300m or gte-modernbert-base compiled from their config.json: similarities and semantic search.")
        {
            model, sentences, queries, top, weights,
        };
        command.SetAction(parsed =>
        {
            string[] given = parsed.GetValue(queries) ?? [];
            return Execute(specs, parsed.GetValue(model), parsed.GetValue(sentences) ?? DefaultSentencesPath, given.Length > 0 ? given : DefaultQueries, parsed.GetValue(top),
                WeightTypeNames.All[parsed.GetValue(weights)!], output, error);
        });
        return command.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
    }

    private static int Execute(IReadOnlyList<EmbeddingModelSpec> specs, string? folder, string sentencesPath, IReadOnlyList<string> queries, int top, WeightType weightType,
        TextWriter output, TextWriter error)
    {
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        if (folder is null)
        {
            WriteDownloadInstructions(specs, error, "No model folder given (--model).");
            return ExitMissingModel;
        }

        if (!Directory.Exists(folder))
        {
            WriteDownloadInstructions(specs, error, $"The model folder '{folder}' does not exist.");
            return ExitMissingModel;
        }

        // The folder's model_type picks the model; a different model is told before any missing file: its other files do not matter.
        string configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath))
        {
            WriteDownloadInstructions(specs, error, $"The model folder '{folder}' lacks config.json, which says which model it holds.");
            return ExitMissingModel;
        }

        EmbeddingModelSpec? spec = Choose(specs, configPath, error);
        if (spec is null
            || !ArchitectureCheck.Accepts(spec.CompiledConfig, configPath, spec.Repository, spec.SourceConfigPath, error))
        {
            return ExitWrongModel;
        }

        HubModel hub = Hub(spec);
        IReadOnlyList<string> missing = hub.MissingFiles(folder);
        if (missing.Count > 0)
        {
            hub.WriteDownloadInstructions(error, $"The model folder '{folder}' lacks {string.Join(", ", missing)}.");
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
        EncoderModel model = spec.Load(folder, weightType);
        TimeSpan weightsTime = Stopwatch.GetElapsedTime(started);
        var embedder = new SentenceEmbedder(model, spec.Width, tokenizer);
        output.WriteLine($"model: {spec.Repository} from {folder}: {spec.Description}; compiled for {embedder.Batch} sentences of {embedder.SeqLen} tokens a batch");
        output.WriteLine($"loaded in {(tokenizerTime + weightsTime).TotalSeconds:F2} s (tokenizer {tokenizerTime.TotalSeconds:F2} s, {tokenizer.VocabSize:N0} ids; weights {weightsTime.TotalSeconds:F2} s, {WeightTypeNames.Name(weightType)}, {model.BufferBytes / 1e6:F0} MB of buffers)");
        TaskPrefixes prefixes = spec.Prefixes ?? new TaskPrefixes("", "");
        if (spec.Prefixes is TaskPrefixes given)
        {
            output.WriteLine($"task prefixes, as the model card asks: sentences embedded as \"{given.Document}…\", queries as \"{given.Query}…\"");
        }

        output.WriteLine();

        PrintSimilarities(embedder, embedder.Embed(Sentences, prefixes.Document), output);
        output.WriteLine();
        Search(embedder, prefixes, corpus, sentencesPath, queries, top, output);
        return 0;
    }

    /// <summary>The model whose compiled model_type the folder's config.json has; null (with the reason written) when none has it.</summary>
    private static EmbeddingModelSpec? Choose(IReadOnlyList<EmbeddingModelSpec> specs, string configPath, TextWriter error) =>
        ModelTypeChoice.Choose(specs, spec => spec.ModelType, spec => spec.Repository, configPath, "samples/Embeddings", error, spec => spec.CompiledConfig);

    private static HubModel Hub(EmbeddingModelSpec spec) =>
        new(spec.Repository, spec.Files, "dotnet run -c Release --project samples/Embeddings -- --model {folder}");

    /// <summary>Each model's instructions, the first after <paramref name="why"/>: without a config.json there is no telling which model the user wants.</summary>
    private static void WriteDownloadInstructions(IReadOnlyList<EmbeddingModelSpec> specs, TextWriter error, string why)
    {
        for (int i = 0; i < specs.Count; i++)
        {
            if (i > 0)
            {
                error.WriteLine();
            }

            string heading = i == 0 ? why : $"Or, for a folder whose config.json has model_type {specs[i].ModelType}:";
            Hub(specs[i]).WriteDownloadInstructions(error, heading);
        }
    }

    private static void PrintSimilarities(SentenceEmbedder embedder, SentenceEmbeddings embeddings, TextWriter output)
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
        WriteTiming(embedder, "embedded", embeddings, output);
    }

    private static void Search(SentenceEmbedder embedder, TaskPrefixes prefixes, string[] corpus, string corpusPath, IReadOnlyList<string> queries, int top, TextWriter output)
    {
        SentenceEmbeddings sentences = embedder.Embed(corpus, prefixes.Document);
        output.WriteLine($"semantic search over {corpus.Length} sentences of {corpusPath}");
        WriteTiming(embedder, "indexed", sentences, output);
        SentenceEmbeddings asked = embedder.Embed(queries, prefixes.Query);
        WriteTiming(embedder, "queries embedded", asked, output);
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

    private static void WriteTiming(SentenceEmbedder embedder, string what, SentenceEmbeddings e, TextWriter output)
    {
        string truncated = e.Truncated > 0 ? $"; {e.Truncated} cut at {embedder.SeqLen} tokens" : "";
        output.WriteLine($"{what} {e.Count} texts ({e.Tokens:N0} tokens, {e.Batches} batch{(e.Batches == 1 ? "" : "es")} of up to {embedder.Batch} at their own lengths) in {e.Elapsed.TotalSeconds:F2} s: "
                         + $"{e.TokensPerSecond:N0} tokens/s{truncated}");
    }
}
