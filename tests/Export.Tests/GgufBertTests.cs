using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using LLama.Native;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Export.Tests;

/// <summary>
/// BERT sentence embedders in the GGUF export, as llama.cpp's <c>bert</c> (LLamaSharp 0.30.0's build), run by llama.cpp in
/// embedding mode on the same ids ([CLS] … [SEP], token types all 0): its pooled sentence embeddings, L2-normalized as its
/// applications do, against ours.
/// </summary>
public sealed class GgufBertTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("tg-gguf-bert-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>The [CLS] and [SEP] ids fed to the fixtures (their vocabularies are synthetic: only ids matter).</summary>
    private const int Cls = 2, Sep = 3;

    private static EncoderModel Build(string fixture)
    {
        EncoderModel model = fixture switch
        {
            "bert" => new OnnxBert(1),
            "bert-cls" => new OnnxBertCls(1),
            "bert-blocks" => new GgufBertBlocks(1),
            "bert-dense" => new OnnxBertDense(1),
            "bert-dot" => new OnnxBertDot(1),
            "bert-classifier" => new OnnxBertClassifier(1),
            "roberta" => new OnnxRoberta(1),
            "distilbert" => new OnnxDistilBert(1),
            _ => throw new ArgumentException(fixture),
        };
        Weights.Randomize(model, seed: 13);
        model.Training = false;
        return model;
    }

    private static string Config(string fixture) => GgufLlamaCppTests.Config(fixture == "bert-cls" ? "bert" : fixture);

    /// <summary>Each fixture's padded batch: the first sequence fills SeqLen, the others are shorter.</summary>
    private static int[] Lengths(string fixture) => fixture switch
    {
        "bert" => [13, 9, 5],
        "bert-cls" => [13, 7, 4],
        "bert-blocks" => [16, 11],
        "bert-dot" => [12, 8, 5],
        _ => throw new ArgumentException(fixture),
    };

    private sealed record Run(float[][] Ours, float[][] Theirs, int[][] Sequences, LLamaPoolingType Pooling);

    private static Run Compare(EncoderModel model, string fixture, string path)
    {
        ModelLayout layout = model.Layout;
        GgufHyperparameters h = GgufHyperparameters.FromConfig(Config(fixture)) with { ClsToken = Cls, SepToken = Sep };
        int[] tokens = GgufModernBertTests.Tokens(model, h, Lengths(fixture));
        float[] embeddings = model.Predict(tokens).ToArray();
        int[][] sequences = Enumerable.Range(0, layout.Batch)
            .Select(b => tokens.AsSpan(b * layout.SeqLen, Lengths(fixture)[b]).ToArray()).ToArray();
        LLamaPoolingType used = LLamaPoolingType.Unspecified;
        float[][] theirs = GgufModernBertTests.Normalized(GgufModernBertTests.Embeddings(path, sequences, poolingUsed: p => used = p));
        return new Run(GgufModernBertTests.Rows(embeddings, embeddings.Length / layout.Batch), theirs, sequences, used);
    }

    private static float[][] Reference(EncoderModel model, string fixture, int[][] sequences, Func<double, double> gelu)
    {
        GgufHyperparameters h = GgufHyperparameters.FromConfig(Config(fixture));
        return sequences.Select(s => BertReference.Embedding(model, h.Heads, h.NormEpsilon, s, model.Layout.Pooling, gelu)).ToArray();
    }

    /// <summary>The file as llama.cpp's converter writes a BERT: its keys, tensor names and shapes, and the model's floats.</summary>
    [Fact]
    public void Gguf_holds_Bert_as_llama_cpps_converter_writes_it()
    {
        EncoderModel model = Build("bert-blocks");
        string path = Path.Combine(_folder, "bert-blocks.gguf");
        GgufExportReport report = model.SaveGguf(path, Config("bert-blocks"));
        GgufFile file = GgufFile.Read(path);
        Dictionary<string, object> m = file.Metadata;
        Assert.Equal("bert", report.Architecture);
        Assert.Equal("bert", m["general.architecture"]);
        Assert.Equal(53u, m["bert.vocab_size"]);
        Assert.Equal(24u, m["bert.context_length"]);          // the position table's rows
        Assert.Equal(64u, m["bert.embedding_length"]);
        Assert.Equal(96u, m["bert.feed_forward_length"]);
        Assert.Equal(3u, m["bert.block_count"]);
        Assert.Equal(4u, m["bert.attention.head_count"]);
        Assert.Equal(1e-12f, m["bert.attention.layer_norm_epsilon"]);
        Assert.Equal(false, m["bert.attention.causal"]);
        Assert.Equal(1u, m["bert.pooling_type"]);             // mean
        Assert.Equal(2u, m["tokenizer.ggml.token_type_count"]);
        Assert.Equal([64L, 53L], file.Tensor("token_embd.weight").Dimensions);
        Assert.Equal([64L, 24L], file.Tensor("position_embd.weight").Dimensions);
        Assert.Equal([64L, 2L], file.Tensor("token_types.weight").Dimensions);
        Assert.Equal([64L], file.Tensor("token_embd_norm.bias").Dimensions);
        Assert.Equal([64L, 64L], file.Tensor("blk.0.attn_q.weight").Dimensions);
        Assert.Equal([64L], file.Tensor("blk.1.attn_v.bias").Dimensions);
        Assert.Equal([64L], file.Tensor("blk.2.attn_output_norm.weight").Dimensions);
        Assert.Equal([64L, 96L], file.Tensor("blk.0.ffn_up.weight").Dimensions);
        Assert.Equal([96L, 64L], file.Tensor("blk.1.ffn_down.weight").Dimensions);
        Assert.Equal([64L], file.Tensor("blk.2.layer_output_norm.bias").Dimensions);
        Assert.Equal(5 + 3 * 16, file.Tensors.Count);
        file.AssertHoldsParametersUnchanged(report, model);
    }

    /// <summary>
    /// llama.cpp's sentence embeddings against ours, within 1e-3 of the largest component (measured 1.4e-4 to 2.7e-4), through ggml's GELU alone: its
    /// <c>bert</c> applies the tanh GELU read from an fp16 table indexed by the input rounded to fp16, where BERT's
    /// <c>hidden_act</c> "gelu" is the erf form. The double-precision BERT (<see cref="BertReference"/>) shows it: with the
    /// erf GELU it gives ours within 1e-5; with ggml's table, llama.cpp's within 1e-5 (both measured 1.2e-7 to 5.6e-7), so
    /// nothing but the GELU separates llama.cpp's run from ours. Mean and [CLS] pooling, odd sizes
    /// (3 heads of 10, inner size 37) and the Q8_0-shaped fixture.
    /// </summary>
    [Theory]
    [InlineData("bert")]
    [InlineData("bert-cls")]
    [InlineData("bert-blocks")]
    public void F32_sentence_embeddings_are_ours_but_for_ggmls_gelu(string fixture)
    {
        EncoderModel model = Build(fixture);
        string path = Path.Combine(_folder, $"{fixture}.gguf");
        model.SaveGguf(path, Config(fixture));
        Run run = Compare(model, fixture, path);
        Assert.Equal(model.Layout.Pooling == Pooling.Mean ? LLamaPoolingType.Mean : LLamaPoolingType.CLS, run.Pooling);
        double relative = GgufLlamaCppTests.Relative(run.Ours, run.Theirs);
        double erf = GgufLlamaCppTests.Relative(Reference(model, fixture, run.Sequences, BertReference.ErfGelu), run.Ours);
        double table = GgufLlamaCppTests.Relative(Reference(model, fixture, run.Sequences, Gpt2Reference.GgmlGelu), run.Theirs);
        output.WriteLine($"{model.Layout.Name} ({run.Pooling}): llama.cpp to ours {relative:G3}; reference with the erf GELU to ours {erf:G3}, " +
            $"with ggml's GELU table to llama.cpp {table:G3}");
        Assert.True(erf < 1e-5, $"the erf reference to ours: {erf}");
        Assert.True(table < 1e-5, $"the ggml-table reference to llama.cpp: {table}");
        Assert.True(relative < 1e-3, $"relative {relative}");
    }

    /// <summary>
    /// A dot-product embedder (no Normalize module: [CLS] pooling and nothing after it) exports as any BERT, and llama.cpp
    /// returns its pooled vectors as they are: equal to ours, which are not unit vectors, within ggml's GELU (the same 1e-3).
    /// Its applications L2-normalize unless told not to (llama-embedding's <c>--embd-normalize -1</c>, llama-server's
    /// <c>"embd_normalize": -1</c>), which the export cannot say in the file.
    /// </summary>
    [Fact]
    public void A_dot_product_embedders_file_gives_its_unnormalized_vectors()
    {
        EncoderModel model = Build("bert-dot");
        Assert.True(model.Layout.UnnormalizedEmbeddings);
        string path = Path.Combine(_folder, "bert-dot.gguf");
        model.SaveGguf(path, Config("bert-dot"));
        GgufHyperparameters h = GgufHyperparameters.FromConfig(Config("bert-dot")) with { ClsToken = Cls, SepToken = Sep };
        int[] tokens = GgufModernBertTests.Tokens(model, h, Lengths("bert-dot"));
        float[] embeddings = model.Predict(tokens).ToArray();
        float[][] ours = GgufModernBertTests.Rows(embeddings, embeddings.Length / model.Layout.Batch);
        int[][] sequences = Enumerable.Range(0, model.Layout.Batch).Select(b => tokens.AsSpan(b * model.Layout.SeqLen, Lengths("bert-dot")[b]).ToArray()).ToArray();
        LLamaPoolingType used = LLamaPoolingType.Unspecified;
        float[][] theirs = GgufModernBertTests.Embeddings(path, sequences, poolingUsed: p => used = p);

        Assert.Equal(LLamaPoolingType.CLS, used);
        double[] norms = ours.Select(r => Math.Sqrt(r.Sum(v => (double)v * v))).ToArray();
        Assert.All(norms, n => Assert.True(Math.Abs(n - 1) > 0.1, $"norm {n}: these embeddings were to be unnormalized"));
        double relative = GgufLlamaCppTests.Relative(ours, theirs);
        output.WriteLine($"{model.Layout.Name}: norms {string.Join(", ", norms.Select(n => n.ToString("F3")))}; llama.cpp to ours {relative:G3}");
        Assert.True(relative < 1e-3, $"relative {relative}");
    }

    /// <summary>
    /// BF16 and Q8_0 files: llama.cpp's sentence embeddings against ours in fp32 (within 8 × 2⁻⁹ and 16/254 of the largest
    /// component, as the decoders' logits), and against ours with the weights rounded as the file holds them, closer.
    /// </summary>
    [Theory]
    [InlineData("bert-blocks", GgufTensorType.BF16)]
    [InlineData("bert-blocks", GgufTensorType.Q8_0)]
    [InlineData("bert", GgufTensorType.BF16)]
    public void Reduced_precision_files_stay_near_ours(string fixture, GgufTensorType type)
    {
        EncoderModel model = Build(fixture);
        string path = Path.Combine(_folder, $"{fixture}-{type}.gguf");
        GgufExportReport report = model.SaveGguf(path, Config(fixture), type);
        Assert.Contains(report.Tensors, t => t.Type == type);
        Assert.Equal(GgufTensorType.F32, report.Tensors.Single(t => t.Name == "token_types.weight").Type);
        Run run = Compare(model, fixture, path);
        double relative = GgufLlamaCppTests.Relative(run.Ours, run.Theirs);
        int rounded = ReducedPrecision.Apply(model, report);
        double toRounded = GgufLlamaCppTests.Relative(Compare(model, fixture, path).Ours, run.Theirs);
        output.WriteLine($"{model.Layout.Name} {type} ({rounded} matrices {type}): {relative:G3}, to ours with the file's weights {toRounded:G3}; {report.Bytes} bytes");
        Assert.True(relative < (type == GgufTensorType.BF16 ? 8.0 / 512 : 16.0 / 254), $"relative {relative}");
        Assert.True(toRounded < relative, $"with the file's weights {toRounded}, without {relative}");
    }

    /// <summary>What llama.cpp's bert would compute otherwise is refused with the reason, and no file is left.</summary>
    [Fact]
    public void Gguf_refuses_what_llama_cpps_bert_would_compute_otherwise()
    {
        string path = Path.Combine(_folder, "refused.gguf");
        var bert = new GgufExportOptions { Hyperparameters = GgufHyperparameters.FromConfig(Config("bert")) };
        var e = Assert.Throws<NotSupportedException>(() => Build("bert-dense").SaveGguf(path, Config("bert-dense")));
        output.WriteLine(e.Message);
        Assert.Contains("the sentence-transformers module 2_Dense", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<NotSupportedException>(() => Build("bert-classifier").SaveGguf(path, Config("bert")));
        output.WriteLine(e.Message);
        Assert.Contains("has no place in llama.cpp's bert", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<NotSupportedException>(() => Build("roberta").SaveGguf(path, bert));
        output.WriteLine(e.Message);
        Assert.Contains("positions from the padding id + 1", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<NotSupportedException>(() => Build("distilbert").SaveGguf(path, bert));
        output.WriteLine(e.Message);
        Assert.Contains("covers BERT sentence embedders", e.Message, StringComparison.Ordinal);

        EncoderModel model = Build("bert");
        GgufHyperparameters h = GgufHyperparameters.FromConfig(Config("bert"));
        e = Assert.Throws<NotSupportedException>(() => model.SaveGguf(path, new GgufExportOptions { Hyperparameters = h with { FeedForwardActivation = "relu" } }));
        output.WriteLine(e.Message);
        Assert.Contains("with GELU only", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<NotSupportedException>(() => model.SaveGguf(path, new GgufExportOptions { Hyperparameters = h with { PositionEmbeddingType = "relative_key" } }));
        output.WriteLine(e.Message);
        Assert.Contains("absolute position rows only", e.Message, StringComparison.Ordinal);
        var a = Assert.Throws<ArgumentException>(() => model.SaveGguf(path, GgufLlamaCppTests.Config("modernbert-plain")));
        Assert.Contains("must come from a BERT config", a.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }

    /// <summary>
    /// A vocab.txt folder as llama.cpp's converter spells it (continuations without <c>##</c>, words after U+2581, special
    /// tokens as they are): llama.cpp's WordPiece tokenizer then splits text into the ids BERT's tokenizer gives, [CLS] first
    /// and [SEP] last.
    /// </summary>
    [Fact]
    public void WordPiece_vocabulary_tokenizes_as_bert()
    {
        string[] words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "play", "##ing", "##s", "dog", "on", "mat", ".", ",", "a"];
        string folder = Path.Combine(_folder, "wordpiece");
        Directory.CreateDirectory(folder);
        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), words);
        var vocabulary = GgufVocabulary.FromWordPieceFolder(folder, 53);
        Assert.Equal("bert", vocabulary.Model);
        Assert.Equal("\u2581cat", vocabulary.Tokens[6]);
        Assert.Equal("ing", vocabulary.Tokens[8]);
        Assert.Equal("[CLS]", vocabulary.Tokens[2]);
        Assert.Equal((Cls, Sep, 0, 1, 4), (vocabulary.ClsId, vocabulary.SepId, vocabulary.PadId, vocabulary.UnknownId, vocabulary.MaskId));
        Assert.Equal("[PAD40]", vocabulary.Tokens[40]);
        string path = Path.Combine(_folder, "bert-vocab.gguf");
        Build("bert-blocks").SaveGguf(path, Config("bert-blocks"), vocabulary: vocabulary);
        int[] ids = LlamaCpp.Tokenize(path, "the cats playing on a mat.", addSpecial: true);
        output.WriteLine(string.Join(' ', ids));
        Assert.Equal([2, 5, 6, 9, 7, 8, 11, 15, 12, 13, 3], ids);
    }
}

// BERT shaped for Q8_0 blocks (hidden 64, 4 heads of 16, inner size 96, three layers, 24 positions), mean pooling.
[TransformerModel(Config = "Export.Tests/Configs/bert-blocks/config.json", SeqLen = 16, Batch = 2, Head = EncoderHead.SentenceEmbedding)]
public partial class GgufBertBlocks { }
