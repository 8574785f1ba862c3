using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;

namespace TransformerGen.EmbeddingServer.Tests.Support;

/// <summary>
/// A model folder laid out as the Hub has a sentence-transformers BERT (config.json, model.safetensors, vocab.txt,
/// tokenizer_config.json) for <see cref="TinyBert"/>, with seeded random weights and a WordPiece vocabulary of 256 ids
/// ([PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103, letters with their ## forms, digits, some words), as
/// tests/Samples.Tests makes all-MiniLM-L6-v2's. Unknown words split into letters, so a text's length in tokens follows
/// its letters. Made once per test class.
/// </summary>
public sealed class TinyBertFolder : IDisposable
{
    public const ulong Seed = 2026;

    /// <summary>Words the vocabulary has whole.</summary>
    public static IReadOnlyList<string> Words { get; } =
        ["a", "man", "woman", "is", "eating", "food", "the", "dog", "runs", "in", "park", "plays", "violin", "cat", "sleeps", "on", "mat", "two", "men", "push", "carts", "through", "woods", "rain", "tomorrow"];

    public TinyBertFolder()
    {
        Folder.Write("config.json", CompiledConfig);
        TinyBert.ForInference(Seed).Save(Folder.File("model.safetensors"));
        WriteTokenizerFiles(Folder);
        Tokenizer = PretrainedTokenizer.FromFolder(Path);
        Reference = TinyBert.ForInference(Folder.File("model.safetensors"));
    }

    public TempFolder Folder { get; } = new();

    public string Path => Folder.Path;

    /// <summary>The folder's tokenizer, for the references.</summary>
    public PretrainedTokenizer Tokenizer { get; }

    /// <summary>An instance of its own over the folder's weights: the sentences alone.</summary>
    private TinyBert Reference { get; }

    /// <summary>The config.json TinyBert was compiled from.</summary>
    public static string CompiledConfig => File.ReadAllText(System.IO.Path.Combine(AppContext.BaseDirectory, "Models", "tiny-bert", "config.json"));

    /// <summary>The ids TinyBert runs for <paramref name="text"/>, cut at SeqLen as sentence-transformers cuts.</summary>
    public int[] Ids(string text)
    {
        var ids = new int[TinyBert.SeqLen];
        int n = Tokenizer.Encode(text, ids, addSpecialTokens: true, maxTokens: TinyBert.SeqLen);
        return ids[..n];
    }

    /// <summary>The embedding of <paramref name="text"/> computed alone, at its own length (thread-safe: one at a time).</summary>
    public float[] Alone(string text)
    {
        int[] ids = Ids(text);
        lock (Reference) return Reference.Predict(ids).ToArray();
    }

    /// <summary>Writes the vocabulary and tokenizer_config.json into <paramref name="folder"/> (the tiny cross-encoder's folder has the same).</summary>
    public static void WriteTokenizerFiles(TempFolder folder)
    {
        folder.Write("vocab.txt", string.Join("\n", VocabLines()) + "\n");
        folder.Write("tokenizer_config.json", new JsonObject
        {
            ["cls_token"] = "[CLS]", ["do_basic_tokenize"] = true, ["do_lower_case"] = true, ["mask_token"] = "[MASK]",
            ["model_max_length"] = 512, ["pad_token"] = "[PAD]", ["sep_token"] = "[SEP]", ["strip_accents"] = null,
            ["tokenize_chinese_chars"] = true, ["tokenizer_class"] = "BertTokenizer", ["unk_token"] = "[UNK]",
        }.ToJsonString());
    }

    private static List<string> VocabLines()
    {
        var lines = new List<string> { "[PAD]" };
        lines.AddRange(Enumerable.Range(0, 99).Select(i => $"[unused{i}]"));
        lines.AddRange(["[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
        IEnumerable<char> letters = Enumerable.Range('a', 26).Select(c => (char)c);
        lines.AddRange(letters.Select(c => c.ToString()));
        lines.AddRange(letters.Select(c => "##" + c));
        lines.AddRange(Enumerable.Range(0, 10).Select(d => d.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        lines.AddRange([".", ",", "!", "?", "'", "-"]);
        lines.AddRange(Words.Where(w => w.Length > 1));
        for (int filler = 99; lines.Count < TinyBert.Vocab; filler++) lines.Add($"[unused{filler}]");
        return lines;
    }

    public void Dispose() => Folder.Dispose();
}
