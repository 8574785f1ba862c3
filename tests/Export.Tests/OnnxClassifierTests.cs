using System;
using System.Linq;
using Xunit;

namespace TransformerGen.Export.Tests;

public sealed partial class OnnxExportTests
{
    /// <summary>
    /// Fine-tuned Hugging Face classifiers (BERT's pooler and classifier, BERT's token classifier, RoBERTa's classification
    /// head, MPNet's, which is RoBERTa's over MPNet's encoder; ELECTRA's with the erf GELU, over embeddings projected from 22
    /// to 34, and its token classifier): ORT's logits of a padded batch equal ours (real tokens only for the taggers).
    /// </summary>
    [Theory]
    [InlineData("bert-classifier")]
    [InlineData("bert-tagger")]
    [InlineData("roberta-classifier")]
    [InlineData("distilbert-classifier")]
    [InlineData("mpnet-classifier")]
    [InlineData("electra-classifier")]
    [InlineData("electra-tagger")]
    public void BertClassifiersMatchOurs(string name)
    {
        EncoderModel model = name switch
        {
            "bert-classifier" => new OnnxBertClassifier(1),
            "bert-tagger" => new OnnxBertTagger(1),
            "distilbert-classifier" => new OnnxDistilBertClassifier(1),
            "mpnet-classifier" => new OnnxMPNetClassifier(1),
            "electra-classifier" => new OnnxElectraClassifier(1),
            "electra-tagger" => new OnnxElectraTagger(1),
            _ => new OnnxRobertaClassifier(1),
        };
        Weights.Randomize(model, seed: 11);
        model.Training = false;
        ModelLayout layout = model.Layout;
        using var runner = new OnnxRuntimeRunner(Export(model, GgufLlamaCppTests.Config(name)));
        int s = layout.SeqLen, pad = layout.PadToken, classes = layout.TargetVocab;
        int[] tokens = Tokens(layout, seed: 9).Select(t => t == pad ? pad + 1 : t).ToArray();
        for (int t = s - 4; t < s; t++) tokens[s + t] = pad;      // sequence 1: four pads
        for (int t = 3; t < s; t++) tokens[2 * s + t] = pad;      // sequence 2: three tokens only
        float[] ours = model.Predict(tokens).ToArray();
        float[] theirs = runner.Run(layout.Batch, s, Inputs(runner, layout, tokens))["logits"];
        bool perToken = ours.Length == tokens.Length * classes;
        double relative = Relative(ours, theirs, classes, row => !perToken || tokens[row] != pad);
        output.WriteLine($"{layout.Name}: {classes} labels{(perToken ? " per token" : "")}, logits relative {relative:G3}");
        Assert.True(relative < Tolerance, $"relative {relative}");
    }

    /// <summary>DistilBERT's sentence embeddings: its own names, no token_type_ids input.</summary>
    [Fact]
    public void DistilBertSentenceEmbeddingsMatchOurs()
    {
        var model = new OnnxDistilBert(1);
        Weights.Randomize(model, seed: 11);
        model.Training = false;
        ModelLayout layout = model.Layout;
        using var runner = new OnnxRuntimeRunner(Export(model, GgufLlamaCppTests.Config("distilbert")));
        Assert.DoesNotContain("token_type_ids", runner.InputNames);
        int s = layout.SeqLen;
        int[] tokens = Tokens(layout, seed: 10);
        for (int t = s - 5; t < s; t++) tokens[s + t] = 0;
        float[] ours = model.Predict(tokens).ToArray();
        float[] theirs = runner.Run(layout.Batch, s, Inputs(runner, layout, tokens))["sentence_embedding"];
        double relative = Relative(ours, theirs, ours.Length / layout.Batch);
        output.WriteLine($"{layout.Name}: sentence embeddings relative {relative:G3}");
        Assert.True(relative < Tolerance, $"relative {relative}");
    }
}
