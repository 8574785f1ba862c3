using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using EmbeddingsSample;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>
/// A folder laid out as sentence-transformers/all-MiniLM-L6-v2 is on the Hub, with random weights of the real shape
/// (<see cref="MiniLm"/>, 22.6 M parameters, 90 MB), a vocab.txt of the real size (30,522 lines: [PAD] 0, [unused…],
/// [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103, then the characters and words of the sample's texts and filler), the
/// real tokenizer_config.json's settings and the compiled config.json; and one run of the sample on it, which the tests
/// read. Made once per test class (xunit class fixture).
/// </summary>
/// <remarks>
/// One batch of 8 × 128 positions at this size takes about 0.4 s in a Release build and about 4 s in the Debug build that
/// <c>dotnet test</c> makes (the runtime's kernels are not optimized there), so the sample runs once, on a list of
/// <see cref="SearchList"/>'s 7 sentences: three batches in all (the similarities, the list, the queries), each with
/// padded rows.
/// </remarks>
public sealed class MiniLmFolder : IDisposable
{
    public const ulong Seed = 2026;

    private const int VocabLines = 30522;

    public MiniLmFolder()
    {
        _run = new Lazy<(int, string, string)>(() =>
        {
            Folder.Write("search.txt", string.Join("\n", SearchList) + "\n");
            var output = new StringWriter();
            var error = new StringWriter();
            string[] args = ["--model", Path, "--sentences", Folder.File("search.txt"), .. Queries.SelectMany(q => new[] { "--query", q })];
            int exit = EmbeddingsApp.Run(args, output, error);
            return (exit, output.ToString(), error.ToString());
        });
        Folder.Write("config.json", CompiledConfig);
        MiniLm.ForInference(Seed).Save(Folder.File("model.safetensors"));
        Folder.Write("vocab.txt", string.Join("\n", TinyWordPieceVocabulary.Lines([], SampleTexts(), VocabLines)) + "\n");
        Folder.Write("tokenizer_config.json", new JsonObject
        {
            ["cls_token"] = "[CLS]", ["do_basic_tokenize"] = true, ["do_lower_case"] = true, ["mask_token"] = "[MASK]",
            ["model_max_length"] = 512, ["pad_token"] = "[PAD]", ["sep_token"] = "[SEP]", ["strip_accents"] = null,
            ["tokenize_chinese_chars"] = true, ["tokenizer_class"] = "BertTokenizer", ["unk_token"] = "[UNK]",
        }.ToJsonString());
    }

    public TempFolder Folder { get; } = new();

    /// <summary>The sentences searched in <see cref="SampleRun"/>: 7 lines of the bundled list, so one batch with a padded row.</summary>
    public static string[] SearchList => [.. new[] { 0, 4, 8, 13, 17, 21, 24 }.Select(i => File.ReadAllLines(EmbeddingsApp.DefaultSentencesPath)[i])];

    /// <summary>The queries of <see cref="SampleRun"/>: two of the defaults, and a sentence of the list (row 5 of its batch, row 2 of the queries').</summary>
    public static string[] Queries => [EmbeddingsApp.DefaultQueries[0], EmbeddingsApp.DefaultQueries[2], SearchList[5]];

    /// <summary>The sample run on this folder with <see cref="SearchList"/> and <see cref="Queries"/>: exit code, standard output and error.</summary>
    public (int Exit, string Output, string Error) SampleRun => _run.Value;

    private readonly Lazy<(int, string, string)> _run;

    public string Path => Folder.Path;

    /// <summary>The config.json the sample was compiled from (embedded in it).</summary>
    public static string CompiledConfig
    {
        get
        {
            using Stream stream = typeof(MiniLm).Assembly.GetManifestResourceStream("all-MiniLM-L6-v2.config.json")!;
            return new StreamReader(stream).ReadToEnd();
        }
    }

    /// <summary>The texts the sample embeds by default: its sentences, queries and search list.</summary>
    public static IEnumerable<string> SampleTexts() =>
        EmbeddingsApp.Sentences.Concat(EmbeddingsApp.DefaultQueries).Concat(File.ReadAllLines(EmbeddingsApp.DefaultSentencesPath));

    public void Dispose() => Folder.Dispose();
}
