using System;
using System.IO;
using System.Runtime.CompilerServices;
using Xunit;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// The generated source of three representative models, compared with checked-in files, so that every change
/// to the emitted code is reviewed as a diff. On a mismatch the new text is written beside the snapshot as
/// <c>.received.cs</c>; to accept it, move it over the <c>.verified.cs</c> file.
/// </summary>
public class SnapshotTests
{
    [Theory]
    [InlineData("PreRotaryGelu", "Positional = Positional.Rotary, Norm = NormPlacement.Pre, Activation = Activation.Gelu")]
    [InlineData("PostSinusoidalReluUntied", "Positional = Positional.Sinusoidal, Norm = NormPlacement.Post, Activation = Activation.Relu, TiedEmbeddings = false")]
    [InlineData("LearnedDropoutSmoothing", "Positional = Positional.Learned, Dropout = 0.1f, LabelSmoothing = 0.1f")]
    [InlineData("PaperEncoderDecoder", "Architecture = Architecture.EncoderDecoder, TargetVocab = 9, TargetSeqLen = 4, PadToken = 0, BosToken = 1, EosToken = 2, Norm = NormPlacement.Post, ScaleEmbeddings = true, Layers = 1")]
    [InlineData("MeanPoolingClassifier", "Architecture = Architecture.EncoderOnly, Classes = 3, PadToken = 0, Pooling = Pooling.Mean, AttentionWindow = 2")]
    [InlineData("TiledRotaryDecoder", "Positional = Positional.Rotary, AttentionKernel = AttentionKernel.Tiled")]
    [InlineData("TiledWindowClassifier", "Architecture = Architecture.EncoderOnly, Classes = 3, PadToken = 0, AttentionWindow = 2, AttentionKernel = AttentionKernel.Tiled")]
    public void Generated_source_matches_its_snapshot(string name, string options)
    {
        string layers = options.Contains("Layers = ") ? "" : "Layers = 2, ";
        var result = GeneratorHarness.RunClean($$"""
            using TransformerGen;
            namespace Snapshots;
            [TransformerModel(Vocab = 11, DModel = 12, Heads = 3, {{layers}}DFF = 20, SeqLen = 5, Batch = 2, {{options}})]
            public partial class {{name}} { }
            """);
        string text = result.GeneratedSource.Replace(Emitter.GeneratorVersion, "{version}");
        Match(name, text);
    }

    private static void Match(string name, string actual, [CallerFilePath] string here = "")
    {
        string folder = Path.Combine(Path.GetDirectoryName(here)!, "Snapshots");
        string verified = Path.Combine(folder, name + ".verified.cs");
        string received = Path.Combine(folder, name + ".received.cs");
        string? expected = File.Exists(verified) ? File.ReadAllText(verified).Replace("\r\n", "\n") : null;
        if (expected == actual)
        {
            File.Delete(received);
            return;
        }
        File.WriteAllText(received, actual);
        string where = expected is null ? "no snapshot exists yet" : $"first difference at line {FirstDifferentLine(expected, actual)}";
        Assert.Fail($"{name}: generated source differs from {verified} ({where}); the new text is in {received}");
    }

    private static int FirstDifferentLine(string a, string b)
    {
        string[] x = a.Split('\n'), y = b.Split('\n');
        int i = 0;
        while (i < x.Length && i < y.Length && x[i] == y[i]) i++;
        return i + 1;
    }
}
