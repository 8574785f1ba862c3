using System;
using System.IO;
using System.Linq;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;

namespace TransformerGen.EmbeddingServer.Tests.Support;

/// <summary>
/// A cross-encoder folder laid out as the Hub has one (config.json, model.safetensors, vocab.txt, tokenizer_config.json)
/// for <see cref="TinyCrossEncoder"/>, with seeded random weights and <see cref="TinyBertFolder"/>'s vocabulary. The
/// matrices are scaled up from BERT's initial 0.02: at that size attention barely moves [CLS], which the score is read
/// from, so every pair would score alike; scaled, scores spread over a few units, where the sigmoid is not flat, and the
/// token types move them. Made once per test class.
/// </summary>
public sealed class TinyCrossEncoderFolder : IDisposable
{
    public const ulong Seed = 2027;

    /// <summary>How much the random matrices of the layers, the pooler and the score head are scaled.</summary>
    private const float MatrixScale = 8, HeadScale = 3;

    public TinyCrossEncoderFolder()
    {
        Folder.Write("config.json", CompiledConfig);
        TinyCrossEncoder init = TinyCrossEncoder.ForInference(Seed);
        Span<float> parameters = init.Parameters;
        foreach (ParameterTensor t in init.ParameterTensors)
        {
            if (!t.Name.EndsWith(".weight", StringComparison.Ordinal) || t.Name.Contains("LayerNorm", StringComparison.Ordinal) || t.Name.Contains("embeddings", StringComparison.Ordinal)) continue;
            float scale = t.Name == "classifier.weight" ? MatrixScale * HeadScale : MatrixScale;
            foreach (ref float w in parameters.Slice(t.Offset, t.Length)) w *= scale;
        }
        init.Save(Folder.File("model.safetensors"));
        TinyBertFolder.WriteTokenizerFiles(Folder);
        Tokenizer = PretrainedTokenizer.FromFolder(Path);
        Reference = TinyCrossEncoder.ForInference(Folder.File("model.safetensors"));
    }

    public TempFolder Folder { get; } = new();

    public string Path => Folder.Path;

    /// <summary>The folder's tokenizer, for the references.</summary>
    public PretrainedTokenizer Tokenizer { get; }

    /// <summary>An instance of its own over the folder's weights: the pairs alone.</summary>
    private TinyCrossEncoder Reference { get; }

    /// <summary>The config.json TinyCrossEncoder was compiled from.</summary>
    public static string CompiledConfig => File.ReadAllText(System.IO.Path.Combine(AppContext.BaseDirectory, "Models", "tiny-cross-encoder", "config.json"));

    /// <summary>
    /// The ids and token types the cross-encoder runs for a pair, <c>[CLS] query [SEP] text [SEP]</c> with type 1 from the
    /// text on, cut at SeqLen longest first.
    /// </summary>
    public (int[] Ids, int[] Types) Pair(string query, string text)
    {
        var ids = new int[TinyCrossEncoder.SeqLen];
        int n = Tokenizer.EncodePair(query, text, ids, out int secondStart, maxTokens: TinyCrossEncoder.SeqLen);
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
}
