using System;
using System.IO;
using System.Linq;
using Xunit;

namespace TransformerGen.Model.Tests;

/// <summary>
/// Models built for inference hold only what inference needs, as many bytes as the generated constant says,
/// compute what a training instance computes, and refuse training with a message that says how to train.
/// </summary>
public sealed class InferenceOnlyTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("transformergen-inference-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Buffers_are_those_the_generated_constants_announce()
    {
        Assert.Equal(RotaryPre.TrainingBytes, new RotaryPre(1).BufferBytes);
        Assert.Equal(RotaryPre.InferenceBytes, RotaryPre.ForInference(1).BufferBytes);
        Assert.Equal(PaperSeq2Seq.TrainingBytes, new PaperSeq2Seq(1).BufferBytes);
        Assert.Equal(PaperSeq2Seq.InferenceBytes, PaperSeq2Seq.ForInference(1).BufferBytes);
        Assert.Equal(MeanClassifier.TrainingBytes, new MeanClassifier(1).BufferBytes);
        Assert.Equal(MeanClassifier.InferenceBytes, MeanClassifier.ForInference(1).BufferBytes);

        // No gradients and nothing kept for backward: at least the parameters' gradient and the activations go.
        long parameterBytes = 4L * RotaryPre.ParameterCount;
        Assert.True(RotaryPre.InferenceBytes < RotaryPre.TrainingBytes - parameterBytes,
            $"inference {RotaryPre.InferenceBytes} B, training {RotaryPre.TrainingBytes} B");
        Assert.True(MeanClassifier.InferenceBytes < MeanClassifier.TrainingBytes - 4L * MeanClassifier.ParameterCount);
    }

    [Fact]
    public void An_inference_instance_decodes_exactly_as_a_training_instance_with_the_same_weights()
    {
        var trained = new RotaryPre(7);
        TestData.Perturb(trained, 3);
        string path = Path.Combine(_folder, "rotary.safetensors");
        trained.Save(path);
        RotaryPre inference = RotaryPre.ForInference(path);
        Assert.Equal(ModelUse.Inference, inference.Use);
        Assert.False(inference.Training);

        int[] prompt = [1, 4, 9];
        float[] expected = trained.Append(prompt).ToArray();
        Assert.Equal(expected, inference.Append(prompt).ToArray());
        var a = new int[12];
        var b = new int[12];
        trained.Generate(prompt, a, new Sampler(seed: 5, RotaryPre.Vocab));
        inference.Generate(prompt, b, new Sampler(seed: 5, RotaryPre.Vocab));
        Assert.Equal(a, b);

        // The same seed gives the same initial parameters in both uses.
        Assert.True(RotaryPre.ForInference(11).Parameters.SequenceEqual(new RotaryPre(11).Parameters));
    }

    [Fact]
    public void Encoder_decoder_and_encoder_only_inference_instances_agree_with_training_instances()
    {
        var seq2seq = new PaperSeq2Seq(2);
        TestData.Perturb(seq2seq, 4);
        string path = Path.Combine(_folder, "seq2seq.safetensors");
        seq2seq.Save(path);
        PaperSeq2Seq seq2seqInference = PaperSeq2Seq.ForInference(path);
        int[] source = [5, 6, 7, 8];
        var expected = new int[PaperSeq2Seq.TargetSeqLen];
        var actual = new int[PaperSeq2Seq.TargetSeqLen];
        Assert.Equal(seq2seq.Translate(source, expected), seq2seqInference.Translate(source, actual));
        Assert.Equal(expected, actual);

        var classifier = new MeanClassifier(2);
        TestData.Perturb(classifier, 5);
        classifier.Training = false;
        path = Path.Combine(_folder, "classifier.safetensors");
        classifier.Save(path);
        int[] tokens = TestData.Tokens(MeanClassifier.TokensPerStep, MeanClassifier.Vocab, 9);
        float[] logits = classifier.Predict(tokens).ToArray();
        Assert.Equal(logits, MeanClassifier.ForInference(path).Predict(tokens).ToArray());
    }

    [Fact]
    public void Training_an_inference_instance_fails_with_a_message_that_says_how_to_train()
    {
        RotaryPre model = RotaryPre.ForInference(1);
        int[] tokens = new int[RotaryPre.TokensPerStep], targets = new int[RotaryPre.TokensPerStep];
        void Refused(Action action, string name = nameof(RotaryPre))
        {
            var error = Assert.Throws<InvalidOperationException>(action);
            Assert.Contains("built for inference", error.Message);
            Assert.Contains($"new {name}(seed)", error.Message);
        }
        Refused(() => model.Forward(tokens, targets));
        Refused(model.Backward);
        Refused(model.ZeroGrad);
        Refused(() => _ = new AdamW(model, learningRate: 1e-3f));
        Refused(() => _ = model.Logits.Length);
        Refused(() => _ = model.AttentionMap("layers.0.attention_probabilities").Length);

        // An encoder-only model predicts at exact lengths in its inference workspace: no batched pass, no backward.
        MeanClassifier classifier = MeanClassifier.ForInference(1);
        Refused(() => classifier.Forward(new int[MeanClassifier.TokensPerStep], new int[MeanClassifier.Batch]), nameof(MeanClassifier));
        Refused(classifier.Backward, nameof(MeanClassifier));
    }
}
