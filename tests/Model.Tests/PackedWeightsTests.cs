using System;
using System.IO;
using System.Linq;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Model.Tests;

// Models whose matrices have whole 64-row panels and rows left over (Q|K|V 120 = 64 + 56 rows, feed-forward 100 = 64
// + 36, a tied head of 131 = 2·64 + 3 tokens), so that an inference instance packs them.

[TransformerModel(Vocab = 131, DModel = 40, Heads = 4, Layers = 2, DFF = 100, SeqLen = 9, Batch = 2,
    Positional = Positional.Rotary, Norm = NormPlacement.Pre)]
public partial class PanelDecoder { }

[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 70, Classes = 3, DModel = 40, Heads = 4, Layers = 2, DFF = 100,
    SeqLen = 7, Batch = 2)]
public partial class PanelClassifier { }

[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 70, TargetVocab = 67, DModel = 40, Heads = 4,
    Layers = 2, DFF = 100, SeqLen = 7, TargetSeqLen = 6, Batch = 2, BosToken = 1, EosToken = 2)]
public partial class PanelSeq2Seq { }

/// <summary>
/// Inference instances hold their weight matrices in the kernels' panel layout (on AVX-512): they compute what a
/// training instance with the same weights computes, and their checkpoints are PyTorch's layout, bit for bit.
/// </summary>
public sealed class PackedWeightsTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("transformergen-packed-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static bool Packs => Simd.IsSupported(SimdPath.Vector512);

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        float scale = 0f;
        foreach (float v in expected) scale = Math.Max(scale, Math.Abs(v));
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5f * scale, $"{what}[{i}]: {actual[i]}, training instance {expected[i]}");
    }

    [Fact]
    public void The_layout_lists_the_matrices_with_whole_panels_and_an_inference_instance_packs_them()
    {
        WeightMatrix[] matrices = new PanelDecoder(1).Layout.PackedMatrices;
        // Per layer Q|K|V (120 × 40) and the first feed-forward layer (100 × 40); the tied head (131 × 40) once. The
        // 40-row products have no whole panel.
        Assert.Equal(5, matrices.Length);
        Assert.Equal(2, matrices.Count(m => m.Rows == 120 && m.Columns == 40));
        Assert.Equal(2, matrices.Count(m => m.Rows == 100 && m.Columns == 40));
        Assert.Single(matrices, m => m.Rows == 131 && m.Columns == 40 && m.Offset == new PanelDecoder(1).ParameterTensors.Single(t => t.Name == "token_embedding.weight").Offset);

        Assert.False(new PanelDecoder(1).WeightsPacked);
        Assert.Throws<InvalidOperationException>(() => new PanelDecoder(1).PackWeights());
        PanelDecoder inference = PanelDecoder.ForInference(1);
        Assert.Equal(Packs, inference.WeightsPacked);
        var trained = new PanelDecoder(1);

        // CopyParametersTo gives PyTorch's layout without changing the instance.
        var copy = new float[inference.Layout.ParameterCount];
        inference.CopyParametersTo(copy);
        Assert.True(copy.AsSpan().SequenceEqual(trained.Parameters));
        Assert.Equal(Packs, inference.WeightsPacked);
        Assert.Throws<ArgumentException>(() => inference.CopyParametersTo(new float[3]));

        // Reading Parameters gives PyTorch's layout too, and leaves the instance unpacked (what is written there counts)
        // until PackWeights.
        int[] prompt = [3, 70, 130];
        float[] before = inference.Append(prompt).ToArray();
        Assert.True(inference.Parameters.SequenceEqual(trained.Parameters));
        Assert.False(inference.WeightsPacked);
        inference.ResetCache();
        AssertClose(before, inference.Append(prompt), "logits over rows");
        inference.PackWeights();
        Assert.Equal(Packs, inference.WeightsPacked);
        inference.ResetCache();
        Assert.Equal(before, inference.Append(prompt).ToArray());
    }

    [Fact]
    public void A_packed_decoder_decodes_as_the_training_instance_and_saves_the_same_file()
    {
        var trained = new PanelDecoder(7);
        TestData.Perturb(trained, 3);
        string path = Path.Combine(_folder, "decoder.safetensors");
        trained.Save(path);
        PanelDecoder inference = PanelDecoder.ForInference(path);
        Assert.Equal(Packs, inference.WeightsPacked);

        int[] prompt = [1, 130, 64, 9];
        AssertClose(trained.Append(prompt), inference.Append(prompt), "prompt logits");
        foreach (int token in new[] { 63, 128, 0 })
            AssertClose(trained.Append([token]), inference.Append([token]), $"logits after {token}");

        // Save writes PyTorch's layout, and leaves the instance packed and working.
        string again = Path.Combine(_folder, "decoder-again.safetensors");
        inference.Save(again);
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(again));
        Assert.Equal(Packs, inference.WeightsPacked);
        inference.ResetCache();
        trained.ResetCache();
        AssertClose(trained.Append(prompt), inference.Append(prompt), "logits after Save");

        // A failed load leaves the weights as they were, packed.
        string bad = Path.Combine(_folder, "bad.safetensors");
        File.WriteAllBytes(bad, [1, 2, 3]);
        Assert.Throws<InvalidDataException>(() => inference.Load(bad));
        Assert.Equal(Packs, inference.WeightsPacked);
        inference.ResetCache();
        trained.ResetCache();
        AssertClose(trained.Append(prompt), inference.Append(prompt), "logits after a failed load");
    }

    [Fact]
    public void Packed_encoder_only_and_encoder_decoder_instances_agree_with_training_instances()
    {
        var classifier = new PanelClassifier(2);
        TestData.Perturb(classifier, 5);
        classifier.Training = false;
        string path = Path.Combine(_folder, "classifier.safetensors");
        classifier.Save(path);
        int[] tokens = TestData.Tokens(PanelClassifier.TokensPerStep, PanelClassifier.Vocab, 9);
        PanelClassifier inference = PanelClassifier.ForInference(path);
        Assert.Equal(Packs, inference.WeightsPacked);
        AssertClose(classifier.Predict(tokens).ToArray(), inference.Predict(tokens), "class logits");

        var seq2seq = new PanelSeq2Seq(2);
        TestData.Perturb(seq2seq, 4);
        path = Path.Combine(_folder, "seq2seq.safetensors");
        seq2seq.Save(path);
        PanelSeq2Seq seq2seqInference = PanelSeq2Seq.ForInference(path);
        Assert.Equal(Packs, seq2seqInference.WeightsPacked);
        int[] source = [5, 66, 7, 64, 8];
        var expected = new int[PanelSeq2Seq.TargetSeqLen];
        var actual = new int[PanelSeq2Seq.TargetSeqLen];
        Assert.Equal(seq2seq.Translate(source, expected), seq2seqInference.Translate(source, actual));
        Assert.Equal(expected, actual);
    }
}
