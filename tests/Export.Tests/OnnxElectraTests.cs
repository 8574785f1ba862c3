using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Onnx;
using Xunit;

namespace TransformerGen.Export.Tests;

/// <summary>
/// ELECTRA's ONNX graph: BERT's, with the embeddings (token, position and type tables and their LayerNorm) embedding_size
/// wide and <c>embeddings_project</c> to the layers' width after the LayerNorm where the two differ, and the classifier's
/// erf GELU between classifier.dense and classifier.out_proj. Its sentence embeddings are checked with BERT's
/// (<c>BertSentenceEmbeddingsMatchOurs</c>), its classifier and tagger with the other BERT-like ones (<c>OnnxClassifierTests.cs</c>).
/// </summary>
public sealed partial class OnnxExportTests
{
    /// <summary>
    /// A one-label ELECTRA cross-encoder whose embeddings are as wide as its layers (no projection): ORT's scores of three
    /// padded query–passage pairs (token type 1 on the passage) equal ours of the same pairs unpadded, and the types count.
    /// </summary>
    [Fact]
    public void ElectraRerankerScoresPairsAsOurs()
    {
        var model = new OnnxElectraReranker(1);
        Weights.Randomize(model, seed: 11);
        model.Training = false;
        ModelLayout layout = model.Layout;
        string path = Export(model, GgufLlamaCppTests.Config("electra-reranker"));
        ModelProto graph = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        Assert.DoesNotContain(graph.Graph.Initializer, i => i.Name.StartsWith("embeddings_project", StringComparison.Ordinal));
        using var runner = new OnnxRuntimeRunner(path);
        Assert.Contains("token_type_ids", runner.InputNames);
        int s = layout.SeqLen, pad = layout.PadToken;
        int[] lengths = [s, 9, 5], queries = [6, 4, 2];
        int[] padded = Tokens(layout, seed: 12).Select(t => t == pad ? pad + 1 : t).ToArray();
        var types = new long[padded.Length];
        var real = new List<int>();
        var realTypes = new List<int>();
        for (int b = 0; b < layout.Batch; b++)
            for (int t = 0; t < s; t++)
            {
                if (t >= lengths[b]) { padded[b * s + t] = pad; continue; }
                types[b * s + t] = t < queries[b] ? 0 : 1;
                real.Add(padded[b * s + t]);
                realTypes.Add((int)types[b * s + t]);
            }
        float[] ours = model.Predict(real.ToArray(), lengths, realTypes.ToArray()).ToArray();
        float[] theirs = runner.Run(layout.Batch, s, Inputs(runner, layout, padded, types))["logits"];
        float[] theirsOneSegment = runner.Run(layout.Batch, s, Inputs(runner, layout, padded))["logits"];
        Assert.Equal(layout.Batch, ours.Length);
        double relative = Relative(ours, theirs, 1);
        double oneSegment = Relative(ours, theirsOneSegment, 1);
        output.WriteLine($"{layout.Name}: scores [{string.Join(", ", ours.Select(v => v.ToString("G4")))}], relative {relative:G3}; all types 0 instead: {oneSegment:G3}");
        Assert.True(relative < Tolerance, $"relative {relative}");
        Assert.True(oneSegment > 1e-3, $"the passages' type 1 moved the scores by {oneSegment} only");
    }

    /// <summary>
    /// The graph projects the normalized embeddings (LayerNorm over 22 channels) to 34 with embeddings_project and its bias,
    /// and activates classifier.dense with the erf GELU. Changed so that it would not (the projection's bias left out, tanh
    /// in the head as RoBERTa's), ORT misses ours by far more than the tolerance; without the projection at all the export
    /// is refused, since the embeddings do not fit the layers.
    /// </summary>
    [Fact]
    public void ElectraGraphProjectsEmbeddingsAndActivatesItsHeadWithGelu()
    {
        var model = new OnnxElectraClassifier(1);
        Weights.Randomize(model, seed: 11);
        model.Training = false;
        ModelLayout layout = model.Layout;
        string config = GgufLlamaCppTests.Config("electra-classifier");
        string path = Export(model, config);
        ModelProto graph = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        NodeProto[] nodes = graph.Graph.Node.ToArray();
        NodeProto product = nodes.Single(n => n.Output[0] == "embeddings_project_product");
        Assert.Equal("MatMul", product.OpType);
        Assert.Equal("LayerNormalization", nodes.Single(n => n.Output[0] == product.Input[0]).OpType);
        Assert.Equal(new long[] { 22, 34 }, graph.Graph.Initializer.Single(i => i.Name == "embeddings_project.weight").Dims.ToArray());
        Assert.Equal(new long[] { 22 }, graph.Graph.Initializer.Single(i => i.Name == "embeddings.LayerNorm.weight").Dims.ToArray());
        Assert.Contains(nodes, n => n.OpType == "Erf" && n.Output[0].StartsWith("pooler_", StringComparison.Ordinal));
        Assert.DoesNotContain(nodes, n => n.OpType == "Tanh");

        int s = layout.SeqLen, pad = layout.PadToken;
        int[] tokens = Tokens(layout, seed: 9).Select(t => t == pad ? pad + 1 : t).ToArray();
        for (int t = s - 4; t < s; t++) tokens[s + t] = pad;
        float[] ours = model.Predict(tokens).ToArray();
        int classes = layout.TargetVocab;
        double exported = Run(path);
        double withoutBias = Run(Changed("no-projection-bias", "embeddings_project", n => Node("Identity", "embeddings_project_product", n.Output[0])));
        double tanh = Run(Changed("tanh-head", "pooler_output", n => Node("Tanh", "pooler", n.Output[0])));
        output.WriteLine($"{layout.Name}: logits relative {exported:G3}; without the projection's bias {withoutBias:G3}; tanh in the head {tanh:G3}");
        Assert.True(exported < Tolerance, $"relative {exported}");
        Assert.True(withoutBias > 1e-3, $"leaving out the projection's bias moved the logits by {withoutBias} only");
        Assert.True(tanh > 1e-3, $"tanh in the head moved the logits by {tanh} only");

        OnnxArchitecture architecture = OnnxArchitecture.Of(model, config);
        architecture.Check();
        var e = Assert.Throws<ArgumentException>(() => (architecture with { EmbeddingProjection = null, EmbeddingProjectionBias = null }).Check());
        Assert.Contains("without an embedding projection", e.Message, StringComparison.Ordinal);

        double Run(string file)
        {
            using var runner = new OnnxRuntimeRunner(file);
            return Relative(ours, runner.Run(layout.Batch, s, Inputs(runner, layout, tokens))["logits"], classes);
        }

        // The exported graph with the node that outputs `output` replaced.
        string Changed(string name, string output, Func<NodeProto, NodeProto> replace)
        {
            ModelProto changed = graph.Clone();
            int at = changed.Graph.Node.IndexOf(changed.Graph.Node.Single(n => n.Output[0] == output));
            changed.Graph.Node[at] = replace(changed.Graph.Node[at]);
            string file = Path.Combine(_folder, $"electra-{name}.onnx");
            File.WriteAllBytes(file, Google.Protobuf.MessageExtensions.ToByteArray(changed));
            return file;
        }

        static NodeProto Node(string op, string input, string output) => new() { OpType = op, Input = { input }, Output = { output } };
    }
}
