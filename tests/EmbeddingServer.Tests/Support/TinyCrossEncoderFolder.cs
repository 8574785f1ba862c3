using System;
using System.IO;
using System.Linq;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;

namespace TransformerGen.EmbeddingServer.Tests.Support;

/// <summary>
/// A cross-encoder folder laid out as the Hub has one (config.json, model.safetensors, vocab.txt, tokenizer_config.json)
/// for a compiled cross-encoder of SeqLen 32, with seeded random weights and <see cref="TinyBertFolder"/>'s vocabulary. The
/// matrices are scaled up from the initial 0.02: at that size attention barely moves [CLS], which the score is read
/// from, so every pair would score alike; scaled, scores spread over a few units, where the sigmoid is not flat, and the
/// token types move them. Made once per test class.
/// </summary>
public abstract class CrossEncoderFolder : IDisposable
{
    /// <summary>How much the random matrices of the layers, the pooler and the score head are scaled.</summary>
    private const float MatrixScale = 8, HeadScale = 3;

    /// <summary>The SeqLen both tiny cross-encoders are compiled with.</summary>
    public const int SeqLen = 32;

    /// <param name="compiledConfig">The config.json the model was compiled from, written into the folder.</param>
    /// <param name="init">The compiled model's <c>ForInference(seed)</c>.</param>
    /// <param name="load">The compiled model's <c>ForInference(path)</c>.</param>
    /// <param name="head">The name of the score head's matrix (<c>classifier.weight</c>, ELECTRA's <c>classifier.out_proj.weight</c>).</param>
    protected CrossEncoderFolder(string compiledConfig, ulong seed, Func<ulong, EncoderModel> init, Func<string, EncoderModel> load, string head)
    {
        Folder.Write("config.json", compiledConfig);
        EncoderModel random = init(seed);
        Span<float> parameters = random.Parameters;
        foreach (ParameterTensor t in random.ParameterTensors)
        {
            if (!t.Name.EndsWith(".weight", StringComparison.Ordinal) || t.Name.Contains("LayerNorm", StringComparison.Ordinal) || t.Name.Contains("embeddings", StringComparison.Ordinal)) continue;
            float scale = t.Name == head ? MatrixScale * HeadScale : MatrixScale;
            foreach (ref float w in parameters.Slice(t.Offset, t.Length)) w *= scale;
        }
        random.Save(Folder.File("model.safetensors"));
        TinyBertFolder.WriteTokenizerFiles(Folder);
        Tokenizer = PretrainedTokenizer.FromFolder(Path);
        Reference = load(Folder.File("model.safetensors"));
        if (Reference.Layout.SeqLen != SeqLen) throw new ArgumentException($"compiled with SeqLen {Reference.Layout.SeqLen}, not {SeqLen}", nameof(load));
    }

    public TempFolder Folder { get; } = new();

    public string Path => Folder.Path;

    /// <summary>The folder's tokenizer, for the references.</summary>
    public PretrainedTokenizer Tokenizer { get; }

    /// <summary>An instance of its own over the folder's weights: the pairs alone.</summary>
    private EncoderModel Reference { get; }

    /// <summary>
    /// The ids and token types the cross-encoder runs for a pair, <c>[CLS] query [SEP] text [SEP]</c> with type 1 from the
    /// text on, cut at SeqLen longest first.
    /// </summary>
    public (int[] Ids, int[] Types) Pair(string query, string text)
    {
        var ids = new int[SeqLen];
        int n = Tokenizer.EncodePair(query, text, ids, out int secondStart, maxTokens: SeqLen);
        int[] types = Enumerable.Range(0, n).Select(i => i < secondStart ? 0 : 1).ToArray();
        return (ids[..n], types);
    }

    /// <summary>The raw score of the pair computed alone, with its token types (thread-safe: one at a time).</summary>
    public float Alone(string query, string text)
    {
        (int[] ids, int[] types) = Pair(query, text);
        lock (Reference) return Reference.Predict(ids, [ids.Length], types)[0];
    }

    /// <summary>The raw score of the pair's ids alone with every token as type 0: what a server that dropped the types would give.</summary>
    public float AloneWithoutTypes(string query, string text)
    {
        (int[] ids, _) = Pair(query, text);
        lock (Reference) return Reference.Predict(ids, [ids.Length])[0];
    }

    public void Dispose() => Folder.Dispose();

    /// <summary>A config.json of the output's Models folder.</summary>
    protected static string ReadConfig(string model) => File.ReadAllText(System.IO.Path.Combine(AppContext.BaseDirectory, "Models", model, "config.json"));
}

/// <summary>A cross-encoder folder for <see cref="TinyCrossEncoder"/> (BERT).</summary>
public sealed class TinyCrossEncoderFolder() : CrossEncoderFolder(CompiledConfig, Seed, seed => TinyCrossEncoder.ForInference(seed), path => TinyCrossEncoder.ForInference(path), "classifier.weight")
{
    public const ulong Seed = 2027;

    /// <summary>The config.json TinyCrossEncoder was compiled from.</summary>
    public static string CompiledConfig => ReadConfig("tiny-cross-encoder");
}

/// <summary>
/// A cross-encoder folder for <see cref="TinyElectraCrossEncoder"/> (ELECTRA: its 32-wide embeddings projected to 48, and a
/// head of dense, GELU and out_proj on [CLS]), with BERT's WordPiece vocabulary as ms-marco-electra-base has.
/// </summary>
public sealed class TinyElectraCrossEncoderFolder() : CrossEncoderFolder(CompiledConfig, Seed, seed => TinyElectraCrossEncoder.ForInference(seed), path => TinyElectraCrossEncoder.ForInference(path), "classifier.out_proj.weight")
{
    public const ulong Seed = 2029;

    /// <summary>The config.json TinyElectraCrossEncoder was compiled from.</summary>
    public static string CompiledConfig => ReadConfig("tiny-electra-cross-encoder");
}
