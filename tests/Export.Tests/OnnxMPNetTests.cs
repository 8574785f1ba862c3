using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using Onnx;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Export.Tests;

/// <summary>
/// MPNet's ONNX graph (sentence-transformers' all-mpnet-base-v2 in small, <see cref="OnnxMPNet"/>): BERT's post-LN layers,
/// learned positions after the padding id 1, no token types, and the encoder's one relative-position table whose bias is
/// added to every layer's scores after the 1/√headDim. Its classifier (RoBERTa's head) is checked with the other BERT-like
/// classifiers in <c>OnnxClassifierTests.cs</c>.
/// </summary>
public sealed partial class OnnxExportTests
{
    private const string MPNetBiasTable = "encoder.relative_attention_bias.weight";

    /// <summary>
    /// A padded batch of three lengths (40 tokens, 23, 9: distances up to 39, past the 8 exact buckets of each direction):
    /// ONNX Runtime's sentence embeddings and last hidden states (real tokens) equal ours within 1e-5 of the largest value
    /// in fp32, and within the weights' rounding with 8-bit blocks.
    /// </summary>
    [Theory]
    [InlineData(OnnxWeightFormat.Float32)]
    [InlineData(OnnxWeightFormat.Int8Blocks)]
    public void MPNetSentenceEmbeddingsMatchOurs(OnnxWeightFormat weights)
    {
        OnnxMPNet model = MPNet();
        ModelLayout layout = model.Layout;
        using var runner = new OnnxRuntimeRunner(Export(model, GgufLlamaCppTests.Config("mpnet"), weights));
        Assert.Equal(new[] { "input_ids", "attention_mask" }, runner.InputNames);
        int[] tokens = MPNetTokens(layout);
        float[] ours = model.Predict(tokens).ToArray();
        float[] oursHidden = model.LastHiddenState.ToArray();
        Dictionary<string, float[]> theirs = runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens));
        double embeddings = Relative(ours, theirs["sentence_embedding"], OnnxMPNet.DModel);
        double hidden = Relative(oursHidden, theirs["last_hidden_state"], OnnxMPNet.DModel, row => tokens[row] != layout.PadToken);
        output.WriteLine($"{layout.Name} {weights}, lengths {string.Join(", ", Lengths(layout, tokens))}: sentence embeddings relative {embeddings:G3}, last hidden state (real tokens) {hidden:G3}");
        double bound = weights == OnnxWeightFormat.Float32 ? Tolerance : 3e-2;
        Assert.True(embeddings < bound, $"sentence embeddings: relative {embeddings}");
        Assert.True(hidden < bound, $"last hidden state: relative {hidden}");
        if (weights == OnnxWeightFormat.Int8Blocks) Assert.True(embeddings > 1e-6, "the weights were not quantized");
    }

    /// <summary>
    /// The graph looks distances up in MPNet's own buckets (RelativePosition.Bucket's, bidirectional, 32 up to 128: exact ones
    /// and logarithmic ones on both sides), builds the bias once, and adds it in every layer to the scaled scores.
    /// </summary>
    [Fact]
    public void MPNetGraphAddsOneBiasToEveryLayersScaledScores()
    {
        OnnxMPNet model = MPNet();
        ModelLayout layout = model.Layout;
        ModelProto graph = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Export(model, GgufLlamaCppTests.Config("mpnet"))));
        int span = layout.SeqLen;
        long[] theirs = Int64Initializer(graph, "relative_position_buckets");
        long[] ours = Enumerable.Range(-(span - 1), 2 * span - 1).Select(d => (long)RelativePosition.Bucket(d, bidirectional: true, 32, 128)).ToArray();
        Assert.Equal(ours, theirs);
        // Distances of 8 and more fall in logarithmic buckets: 8… before the query, 24… after it.
        Assert.Contains(8L, theirs);
        Assert.Contains(24L, theirs);
        output.WriteLine($"{layout.Name}: {theirs.Length} distances, buckets [{string.Join(" ", theirs)}]");

        NodeProto[] nodes = graph.Graph.Node.ToArray();
        NodeProto[] biased = nodes.Where(n => n.Output[0].EndsWith("scores_biased", StringComparison.Ordinal)).ToArray();
        Assert.Equal(2, biased.Length); // the config's num_hidden_layers
        string bias = nodes.Single(n => n.Output[0].EndsWith("relative_position_bias", StringComparison.Ordinal)).Output[0];
        foreach (NodeProto add in biased)
        {
            Assert.Equal("Add", add.OpType);
            Assert.Equal(bias, add.Input[1]);
            Assert.EndsWith("scores_scaled", add.Input[0], StringComparison.Ordinal);
        }
        Assert.Single(graph.Graph.Initializer, i => i.Name == MPNetBiasTable);
        Assert.DoesNotContain(graph.Graph.Initializer, i => i.Name.Contains("token_type", StringComparison.Ordinal));
    }

    /// <summary>
    /// The bias changes the graph's output as it changes ours: ONNX Runtime's embeddings of the exported model are far from
    /// ours once our table is zeroed, and a second export of the zeroed model equals ours again. Raising only the logarithmic
    /// buckets' rows (distances of 8 and more) moves both alike too, so the long distances are looked up where we look them up.
    /// </summary>
    [Fact]
    public void MPNetRelativeBiasIsInTheGraph()
    {
        OnnxMPNet model = MPNet();
        ModelLayout layout = model.Layout;
        string config = GgufLlamaCppTests.Config("mpnet");
        int[] tokens = MPNetTokens(layout);
        float[] withBias;
        using (var runner = new OnnxRuntimeRunner(Export(model, config)))
            withBias = runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens))["sentence_embedding"];

        ParameterTensor table = model.ParameterTensors.Single(t => t.Name == MPNetBiasTable);
        Span<float> rows = model.Parameters.Slice(table.Offset, table.Length);
        int heads = table.Shape[1];
        float[] saved = rows.ToArray();
        rows.Clear();
        (double zeroedAgainstExported, double zeroedAgainstReexported) = Reexport("zeroed");
        saved.CopyTo(rows);
        foreach (int bucket in new[] { 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31 })
            for (int h = 0; h < heads; h++) rows[bucket * heads + h] += 1f;
        (double raisedAgainstExported, double raisedAgainstReexported) = Reexport("raised");
        output.WriteLine($"{layout.Name}: table zeroed: ours against the first export {zeroedAgainstExported:G3}, against its own {zeroedAgainstReexported:G3}; " +
            $"logarithmic rows raised: {raisedAgainstExported:G3}, {raisedAgainstReexported:G3}");
        Assert.True(zeroedAgainstExported > 1e-3, $"zeroing the table moved ours by {zeroedAgainstExported} only");
        Assert.True(raisedAgainstExported > 1e-3, $"raising the logarithmic buckets moved ours by {raisedAgainstExported} only");
        Assert.True(zeroedAgainstReexported < Tolerance, $"zeroed: relative {zeroedAgainstReexported}");
        Assert.True(raisedAgainstReexported < Tolerance, $"raised: relative {raisedAgainstReexported}");

        // Ours after the change against the first export's output and against a new export of the changed weights.
        (double, double) Reexport(string name)
        {
            float[] ours = model.Predict(tokens).ToArray();
            string path = Path.Combine(_folder, $"mpnet-{name}.onnx");
            OnnxExport.Save(model, path, new OnnxExportOptions { Config = config });
            using var runner = new OnnxRuntimeRunner(path);
            float[] theirs = runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens))["sentence_embedding"];
            return (Relative(ours, withBias, OnnxMPNet.DModel), Relative(ours, theirs, OnnxMPNet.DModel));
        }
    }

    /// <summary>MPNet's config is read for what the tensors do not say, and one of another family or other buckets is refused.</summary>
    [Fact]
    public void MPNetExportRefusesAConfigThatContradictsIt()
    {
        OnnxMPNet model = MPNet();
        string refused = Path.Combine(_folder, "refused.onnx");
        var e = Assert.Throws<ArgumentException>(() => model.SaveOnnx(refused, new OnnxExportOptions { Config = GgufLlamaCppTests.Config("roberta") }));
        Assert.Contains("is a roberta config", e.Message, StringComparison.Ordinal);
        string sixteen = Path.Combine(_folder, "mpnet-16-buckets.json");
        JsonObject json = JsonNode.Parse(File.ReadAllText(GgufLlamaCppTests.Config("mpnet")))!.AsObject();
        json["relative_attention_num_buckets"] = 16;
        File.WriteAllText(sixteen, json.ToJsonString());
        e = Assert.Throws<ArgumentException>(() => model.SaveOnnx(refused, new OnnxExportOptions { Config = sixteen }));
        Assert.Contains("relative_attention_num_buckets = 16", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(refused));
    }

    /// <summary>NomicBERT's graph is not built: the export says so rather than write another model.</summary>
    [Fact]
    public void NomicBertExportIsRefused()
    {
        var model = new OnnxNomicBert(1);
        string path = Path.Combine(_folder, "nomic.onnx");
        var e = Assert.Throws<NotSupportedException>(() => model.SaveOnnx(path, new OnnxExportOptions { Config = GgufLlamaCppTests.Config("nomic-bert") }));
        Assert.Equal("OnnxNomicBert: the ONNX export of NomicBert models is not built", e.Message);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Gemma3GgufRefusesAFixtureLlamaCppCannotCompute()
    {
        var model = new ExportGemma3(1);
        string gguf = Path.Combine(_folder, "gemma3.gguf");
        // The GGUF export writes Gemma 3 as llama.cpp's gemma3 (Gemma3ExportTests), but not this fixture: its layers slide
        // two in three (_sliding_window_pattern 3), where llama.cpp's gemma3 slides five in six. Its ONNX export is
        // DecoderLogitsMatchOurs's and the cached graph's.
        var e = Assert.Throws<NotSupportedException>(() => model.SaveGguf(gguf, GgufLlamaCppTests.Config("gemma3")));
        Assert.StartsWith("ExportGemma3: layer_types (or sliding_window_pattern) make layer 2 full (SSF", e.Message);
        Assert.False(File.Exists(gguf));
    }

    /// <summary>
    /// EmbeddingGemma's graph (bidirectional Gemma 3 layers, the two-sided window on the sliding layers, the final norm,
    /// mean pooling and both Dense layers) run by ONNX Runtime on a padded batch: sentence embeddings and the last hidden
    /// states of the real tokens equal ours within 1e-5 of the largest value.
    /// </summary>
    [Fact]
    public void EmbeddingGemmaSentenceEmbeddingsMatchOurs()
    {
        var model = new OnnxEmbeddingGemma(1);
        Weights.Randomize(model, seed: 11);
        model.Training = false;
        ModelLayout layout = model.Layout;
        using var runner = new OnnxRuntimeRunner(Export(model, GgufLlamaCppTests.Config("embeddinggemma")));
        int s = layout.SeqLen, pad = layout.PadToken;
        int[] tokens = Tokens(layout, seed: 23);
        for (int t = s - 3; t < s; t++) tokens[s + t] = pad;      // sequence 1: three pads
        for (int t = 4; t < s; t++) tokens[2 * s + t] = pad;      // sequence 2: four tokens
        float[] ours = model.Predict(tokens).ToArray();
        float[] oursHidden = model.LastHiddenState.ToArray();
        Dictionary<string, float[]> theirs = runner.Run(layout.Batch, s, Inputs(runner, layout, tokens));
        double embeddings = Relative(ours, theirs["sentence_embedding"], OnnxEmbeddingGemma.EmbeddingWidth);
        double hidden = Relative(oursHidden, theirs["last_hidden_state"], OnnxEmbeddingGemma.DModel, row => tokens[row] != pad);
        output.WriteLine($"{layout.Name}: sentence embeddings relative {embeddings:G3}, last hidden state (real tokens) {hidden:G3}");
        Assert.True(embeddings < Tolerance, $"sentence embeddings: relative {embeddings}");
        Assert.True(hidden < Tolerance, $"last hidden state: relative {hidden}");
    }

    /// <summary>
    /// A sentence embedder with a Dense layer after the pooling (LaBSE's form): ONNX Runtime's sentence embeddings of a padded
    /// batch equal ours within 1e-5, the graph holding the layer's product, bias and tanh between the pooling and the norm.
    /// </summary>
    [Fact]
    public void DenseLayersAfterThePoolingMatchOurs()
    {
        var model = new OnnxBertDense(1);
        Weights.Randomize(model, seed: 13);
        model.Training = false;
        ModelLayout layout = model.Layout;
        Assert.Equal(Pooling.FirstToken, layout.Pooling);
        string path = Export(model, GgufLlamaCppTests.Config("bert-dense"));
        using var runner = new OnnxRuntimeRunner(path);
        int s = layout.SeqLen;
        int[] tokens = Tokens(layout, seed: 19).Select(t => t == layout.PadToken ? 1 : t).ToArray();
        for (int t = 7; t < s; t++) tokens[s + t] = layout.PadToken;
        float[] ours = model.Predict(tokens).ToArray();
        Dictionary<string, float[]> theirs = runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens));
        double embeddings = Relative(ours, theirs["sentence_embedding"], OnnxBertDense.EmbeddingWidth);
        output.WriteLine($"{layout.Name}: sentence embeddings relative {embeddings:G3}");
        Assert.True(embeddings < Tolerance, $"sentence embeddings: relative {embeddings}");
        ModelProto graph = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        Assert.Contains(graph.Graph.Node, n => n.OpType == "Tanh" && n.Output[0] == "2_Dense_output");
        Assert.Contains(graph.Graph.Initializer, i => i.Name.StartsWith("2_Dense", StringComparison.Ordinal));
    }

    /// <summary>
    /// A sentence embedder whose folder has no Normalize module (the dot-product retrieval models): ONNX Runtime's embeddings
    /// equal ours within 1e-5 and are not normalized either, the graph ending at the pooled vector.
    /// </summary>
    [Fact]
    public void EmbeddingsWithoutANormalizeModuleStayUnnormalizedInTheGraph()
    {
        var model = new OnnxBertDot(1);
        Weights.Randomize(model, seed: 17);
        model.Training = false;
        ModelLayout layout = model.Layout;
        Assert.True(layout.UnnormalizedEmbeddings);
        Assert.Equal(Pooling.FirstToken, layout.Pooling);
        string path = Export(model, GgufLlamaCppTests.Config("bert-dot"));
        using var runner = new OnnxRuntimeRunner(path);
        int s = layout.SeqLen, width = OnnxBertDot.EmbeddingWidth;
        int[] tokens = Tokens(layout, seed: 23).Select(t => t == layout.PadToken ? 1 : t).ToArray();
        for (int t = 5; t < s; t++) tokens[s + t] = layout.PadToken;
        float[] ours = model.Predict(tokens).ToArray();
        Dictionary<string, float[]> theirs = runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens));
        double embeddings = Relative(ours, theirs["sentence_embedding"], width);
        output.WriteLine($"{layout.Name}: sentence embeddings relative {embeddings:G3}");
        Assert.True(embeddings < Tolerance, $"sentence embeddings: relative {embeddings}");
        for (int row = 0; row < layout.Batch; row++)
        {
            double norm = Math.Sqrt(ours.AsSpan(row * width, width).ToArray().Sum(v => (double)v * v));
            Assert.True(Math.Abs(norm - 1) > 0.1, $"row {row} has norm {norm}");
        }
        ModelProto graph = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        Assert.DoesNotContain(graph.Graph.Node, n => n.OpType == "ReduceL2");
    }

    /// <summary>
    /// Loading from a sentence-transformers folder checks its modules.json against the compiled normalization: a dot-product
    /// model refuses a folder with a Normalize module, a normalizing one a folder without; each loads its own kind.
    /// </summary>
    [Fact]
    public void AFolderWhoseModulesDisagreeOnTheNormalizationIsRefused()
    {
        string folder = Directory.CreateTempSubdirectory("tg-normalize-").FullName;
        try
        {
            var dot = new OnnxBertDot(1);
            Weights.Randomize(dot, seed: 29);
            dot.Save(Path.Combine(folder, "model.safetensors"));
            File.Copy(GgufLlamaCppTests.Config("bert-dot"), Path.Combine(folder, "config.json"));
            Directory.CreateDirectory(Path.Combine(folder, "1_Pooling"));
            File.Copy(Path.Combine(Path.GetDirectoryName(GgufLlamaCppTests.Config("bert-dot"))!, "1_Pooling", "config.json"), Path.Combine(folder, "1_Pooling", "config.json"));
            const string transformer = """{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}""";
            const string pooling = """{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}""";
            const string normalize = """{"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}""";

            File.WriteAllText(Path.Combine(folder, "modules.json"), $"[{transformer}, {pooling}]");
            OnnxBertDot loaded = OnnxBertDot.ForInference(folder);
            int[] tokens = Tokens(loaded.Layout, seed: 31);
            Assert.True(Relative(dot.Predict(tokens).ToArray(), loaded.Predict(tokens).ToArray(), OnnxBertDot.EmbeddingWidth) < Tolerance); // packed kernels: not the same bits

            File.WriteAllText(Path.Combine(folder, "modules.json"), $"[{transformer}, {pooling}, {normalize}]");
            InvalidDataException e = Assert.Throws<InvalidDataException>(() => OnnxBertDot.ForInference(folder));
            Assert.Equal($"'{folder}': modules.json has a Normalize module, but OnnxBertDot was compiled without one, so its embeddings would not be the unit vectors the folder's are; " +
                "compile the model from this folder's config.json with its modules.json beside it (the build reads it)", e.Message);

            // A normalizing model (Normalize in the modules it was compiled with) and a folder without one.
            const string dense = """{"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}""";
            File.WriteAllText(Path.Combine(folder, "modules.json"), $"[{transformer}, {pooling}, {dense}]");
            e = Assert.Throws<InvalidDataException>(() => OnnxBertDense.ForInference(folder));
            Assert.StartsWith($"'{folder}': modules.json lists no Normalize module (its embeddings are the pooled vectors as they are, for dot-product scores), but OnnxBertDense was compiled to normalize them", e.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static OnnxMPNet MPNet()
    {
        var model = new OnnxMPNet(1);
        Weights.Randomize(model, seed: 11);
        model.Training = false;
        return model;
    }

    /// <summary>
    /// Three sequences of 40, 23 and 9 tokens, padded after their tokens with MPNet's padding id 1 (which no real token is):
    /// the first reaches every distance the model allows.
    /// </summary>
    private static int[] MPNetTokens(ModelLayout layout)
    {
        int s = layout.SeqLen, pad = layout.PadToken;
        Assert.Equal(1, pad);
        int[] tokens = Tokens(layout, seed: 17).Select(t => t == pad ? pad + 1 : t).ToArray();
        for (int t = 23; t < s; t++) tokens[s + t] = pad;
        for (int t = 9; t < s; t++) tokens[2 * s + t] = pad;
        return tokens;
    }

    private static IEnumerable<int> Lengths(ModelLayout layout, int[] tokens) =>
        Enumerable.Range(0, layout.Batch).Select(b => tokens.Skip(b * layout.SeqLen).Take(layout.SeqLen).Count(t => t != layout.PadToken));
}
