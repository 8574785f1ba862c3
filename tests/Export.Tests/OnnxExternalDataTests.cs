using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using Onnx;
using Xunit;

namespace TransformerGen.Export.Tests;

/// <summary>
/// External data (issue 14): the initializers' bytes in a data file beside the graph. ONNX Runtime runs the pair as it
/// runs the one-file export, the data file holds exactly the bytes the one-file export holds at 64 KiB offsets, the
/// <c>Auto</c> decision follows the size of the message (tested with a lowered limit, not with a 2 GiB model), and a name
/// that leaves the graph's folder or an export that fails leaves no file.
/// </summary>
public sealed partial class OnnxExportTests
{
    private const int DefaultThreshold = 1024;

    /// <summary>Exports to <c>model.onnx</c> in a subfolder of its own (created), so that exports with the default data file name do not meet.</summary>
    private (OnnxExportReport Report, string Path) SaveIn(string folder, TransformerModel model, string? config, OnnxExternalData mode,
        long? limit = null, string? dataFile = null, OnnxWeightFormat weights = OnnxWeightFormat.Float32, int threshold = DefaultThreshold)
    {
        string path = Path.Combine(Directory.CreateDirectory(Path.Combine(_folder, folder)).FullName, "model.onnx");
        var options = new OnnxExportOptions
        {
            Config = config, Weights = weights, ExternalData = mode, ExternalDataFile = dataFile, ExternalDataThreshold = threshold,
            MessageLimit = limit ?? OnnxExport.MaxMessageBytes,
        };
        OnnxExportReport report = OnnxExport.Save(model, path, options);
        Assert.Equal(new FileInfo(path).Length, report.Bytes);
        if (report.DataFile is not null) Assert.Equal(new FileInfo(report.DataFile).Length, report.DataBytes);
        return (report, path);
    }

    /// <summary>The output ONNX Runtime and the model both give (logits, a sentence embedding or class logits) on one batch.</summary>
    private static (float[] Ours, float[] Theirs) OursAndTheirs(TransformerModel model, string path, ulong seed)
    {
        ModelLayout layout = model.Layout;
        using var runner = new OnnxRuntimeRunner(path);
        int[] tokens = Tokens(layout, seed);
        float[] ours = model is EncoderModel encoder ? encoder.Predict(tokens).ToArray() : OurLogits(model, tokens);
        Dictionary<string, float[]> theirs = runner.Run(layout.Batch, layout.SeqLen, Inputs(runner, layout, tokens));
        return (ours, theirs[theirs.ContainsKey("sentence_embedding") ? "sentence_embedding" : "logits"]);
    }

    /// <summary>
    /// Reads the graph and its data file back and checks them against the one-file export of the same model: the same
    /// initializers in the same order; each of <paramref name="threshold"/> bytes or more but the int64 shape constants external, naming
    /// <paramref name="location"/>, at an offset that is a multiple of 64 KiB after the previous one's end (zeros between),
    /// with exactly the one-file export's bytes; the others in the graph as before; the data file ending at the last
    /// tensor; and the graph file no larger than the one-file export less the moved bytes plus the entries that name them.
    /// Returns how many tensors are external and their bytes.
    /// </summary>
    private static (int Tensors, long Bytes) CheckAgainstOneFile(string oneFile, string graphFile, string dataFile, string location, int threshold = DefaultThreshold)
    {
        ModelProto whole = ModelProto.Parser.ParseFrom(File.ReadAllBytes(oneFile));
        ModelProto graph = ModelProto.Parser.ParseFrom(File.ReadAllBytes(graphFile));
        byte[] data = File.ReadAllBytes(dataFile);
        Assert.Equal(whole.Graph.Initializer.Select(t => t.Name), graph.Graph.Initializer.Select(t => t.Name));
        long end = 0, moved = 0;
        int tensors = 0;
        for (int i = 0; i < graph.Graph.Initializer.Count; i++)
        {
            TensorProto tensor = graph.Graph.Initializer[i];
            byte[] expected = whole.Graph.Initializer[i].RawData.ToByteArray();
            Assert.Equal(whole.Graph.Initializer[i].Dims, tensor.Dims);
            if (expected.Length < threshold || tensor.DataType == (int)TensorProto.Types.DataType.Int64) // shapes and axes stay for shape inference
            {
                Assert.Equal(TensorProto.Types.DataLocation.Default, tensor.DataLocation);
                Assert.Equal(expected, tensor.RawData.ToByteArray());
                continue;
            }
            Assert.Equal(TensorProto.Types.DataLocation.External, tensor.DataLocation);
            Assert.True(tensor.RawData.IsEmpty, $"{tensor.Name} keeps raw data beside its external data");
            Dictionary<string, string> entries = tensor.ExternalData.ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);
            Assert.Equal(["length", "location", "offset"], entries.Keys.Order(StringComparer.Ordinal));
            Assert.Equal(location, entries["location"]);
            long offset = long.Parse(entries["offset"], CultureInfo.InvariantCulture), length = long.Parse(entries["length"], CultureInfo.InvariantCulture);
            Assert.True(offset % 65536 == 0, $"{tensor.Name} at offset {offset}");
            Assert.True(offset >= end, $"{tensor.Name} at {offset} overlaps the tensor ending at {end}");
            Assert.True(data.AsSpan((int)end, (int)(offset - end)).IndexOfAnyExcept((byte)0) < 0, $"the padding before {tensor.Name} is not zeros");
            Assert.Equal(expected.Length, length);
            Assert.True(data.AsSpan((int)offset, (int)length).SequenceEqual(expected), $"{tensor.Name}'s bytes differ from the one-file export's");
            end = offset + length;
            moved += length;
            tensors++;
        }
        Assert.Equal(data.Length, end);
        long graphBytes = new FileInfo(graphFile).Length, wholeBytes = new FileInfo(oneFile).Length;
        long bound = wholeBytes - moved + tensors * (3L * 16 + location.Length + 2 * 20); // per tensor: three entries, the location, two numbers
        Assert.True(graphBytes <= bound, $"graph {graphBytes} bytes, above {bound} (one file {wholeBytes}, {moved} bytes moved)");
        return (tensors, moved);
    }

    /// <summary>
    /// Every initializer of 1 KiB or more in the data file: ONNX Runtime loads the pair and gives our outputs within 1e-5
    /// (8-bit blocks: ORT's outputs of the one-file export within 1e-5, both within the rounding of the weights of ours), and
    /// the files hold what the one-file export holds.
    /// </summary>
    [Theory]
    [InlineData("gpt2", OnnxWeightFormat.Float32)]
    [InlineData("bert", OnnxWeightFormat.Float32)]
    [InlineData("llama-gqa", OnnxWeightFormat.Float32)]
    [InlineData("qwen2", OnnxWeightFormat.Float32)]
    [InlineData("native-rotary", OnnxWeightFormat.Float32)]
    [InlineData("native-mean-classifier", OnnxWeightFormat.Float32)]
    [InlineData("llama-gqa", OnnxWeightFormat.Int8Blocks)]
    [InlineData("bert", OnnxWeightFormat.Int8Blocks)]
    public void ExternalDataGivesTheOneFileExportsOutputs(string name, OnnxWeightFormat weights)
    {
        (TransformerModel model, string? config) = Build(name);
        (OnnxExportReport one, string oneFile) = SaveIn("one-file", model, config, OnnxExternalData.Never, weights: weights);
        (OnnxExportReport two, string graphFile) = SaveIn("external", model, config, OnnxExternalData.Always, weights: weights);
        Assert.Null(one.DataFile);
        Assert.Equal(graphFile + ".data", two.DataFile);
        (int tensors, long moved) = CheckAgainstOneFile(oneFile, graphFile, two.DataFile!, "model.onnx.data");
        Assert.Equal(one.Bytes, OnnxExternalDataFile.SizeInOneMessage(ModelProto.Parser.ParseFrom(File.ReadAllBytes(graphFile)))); // what Auto decides by
        Assert.True(moved > one.Bytes / 2, $"{tensors} tensors of {moved} bytes in the data file, against a one-file export of {one.Bytes}");

        (float[] ours, float[] theirs) = OursAndTheirs(model, graphFile, seed: 21);
        (_, float[] theirsOneFile) = OursAndTheirs(model, oneFile, seed: 21);
        int width = ours.Length / model.Layout.Batch;
        double relative = Relative(ours, theirs, width), againstOneFile = Relative(theirsOneFile, theirs, width);
        output.WriteLine($"{model.Layout.Name} {weights}: graph {two.Bytes} bytes + data {two.DataBytes} ({tensors} tensors, {moved} bytes) against one file of {one.Bytes}; " +
            $"relative to ours {relative:G3}, to the one-file export in ORT {againstOneFile:G3}");
        Assert.True(againstOneFile < Tolerance, $"against the one-file export: relative {againstOneFile}");
        Assert.True(relative < (weights == OnnxWeightFormat.Float32 ? Tolerance : 3e-2), $"relative {relative}");
    }

    /// <summary>
    /// Auto decides by the size the message would have with the data in it: at the limit one file, byte for byte the
    /// one-file export (the tensors written to the data file while the graph was built came back, and the data file is
    /// gone); one byte over it, or a quarter of it, the same two files as Always.
    /// </summary>
    [Fact]
    public void AutoWritesADataFileOnlyWhenTheMessagePassesTheLimit()
    {
        (TransformerModel model, string? config) = Build("qwen2");
        (OnnxExportReport one, string oneFile) = SaveIn("never", model, config, OnnxExternalData.Never);
        (OnnxExportReport always, string alwaysFile) = SaveIn("always", model, config, OnnxExternalData.Always);
        long size = one.Bytes;

        (OnnxExportReport byDefault, string defaultFile) = SaveIn("default", model, config, OnnxExternalData.Auto);
        (OnnxExportReport atLimit, string atLimitFile) = SaveIn("at-limit", model, config, OnnxExternalData.Auto, limit: size);
        foreach ((OnnxExportReport report, string file) in new[] { (byDefault, defaultFile), (atLimit, atLimitFile) })
        {
            Assert.Null(report.DataFile);
            Assert.Equal(0, report.DataBytes);
            Assert.Equal(["model.onnx"], Directory.GetFiles(Path.GetDirectoryName(file)!).Select(Path.GetFileName)); // no data file, no temporary one
            Assert.Equal(File.ReadAllBytes(oneFile), File.ReadAllBytes(file));
        }

        foreach (long limit in new[] { size - 1, size / 4 })
        {
            (OnnxExportReport report, string file) = SaveIn($"limit-{limit}", model, config, OnnxExternalData.Auto, limit: limit);
            Assert.Equal(file + ".data", report.DataFile);
            Assert.Equal(File.ReadAllBytes(alwaysFile), File.ReadAllBytes(file));
            Assert.Equal(File.ReadAllBytes(alwaysFile + ".data"), File.ReadAllBytes(report.DataFile!));
            Assert.True(report.Bytes <= limit, $"the graph of {report.Bytes} bytes is over the limit {limit}");
        }
        (float[] ours, float[] theirs) = OursAndTheirs(model, Path.Combine(_folder, $"limit-{size - 1}", "model.onnx"), seed: 22);
        double relative = Relative(ours, theirs, model.Layout.Vocab);
        output.WriteLine($"{model.Layout.Name}: one file {size} bytes; over the limit, graph {always.Bytes} + data {always.DataBytes}; relative {relative:G3}");
        Assert.True(relative < Tolerance, $"relative {relative}");
    }

    /// <summary>
    /// A graph that does not fit even with its weights moved out (a limit below its nodes), or one that must not use external
    /// data, is refused; the files already there stay as they were and no temporary file is left.
    /// </summary>
    [Fact]
    public void AGraphThatDoesNotFitIsRefusedAndLeavesTheFilesAsTheyWere()
    {
        (TransformerModel model, string? config) = Build("llama-gqa");
        (OnnxExportReport first, string path) = SaveIn("target", model, config, OnnxExternalData.Always);
        byte[] graph = File.ReadAllBytes(path), data = File.ReadAllBytes(first.DataFile!);
        string folder = Path.GetDirectoryName(path)!;

        var tooSmall = Assert.Throws<NotSupportedException>(() => SaveIn("target", model, config, OnnxExternalData.Auto, limit: 1000));
        Assert.Contains("even with its initializers", tooSmall.Message, StringComparison.Ordinal);
        var never = Assert.Throws<NotSupportedException>(() => SaveIn("target", model, config, OnnxExternalData.Never, limit: first.Bytes));
        Assert.Contains("ExternalData = Auto or Always", never.Message, StringComparison.Ordinal);

        Assert.Equal(["model.onnx", "model.onnx.data"], Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(graph, File.ReadAllBytes(path));
        Assert.Equal(data, File.ReadAllBytes(first.DataFile!));
    }

    /// <summary>
    /// The graph cannot be written (its path is a folder) after the data file was: the data file is not renamed into place
    /// and its temporary file is deleted, so the folder holds what it held before.
    /// </summary>
    [Fact]
    public void AGraphThatCannotBeWrittenLeavesNoDataFile()
    {
        (TransformerModel model, string? config) = Build("gpt2");
        string folder = Path.Combine(_folder, "blocked");
        Directory.CreateDirectory(Path.Combine(folder, "model.onnx"));
        Assert.Throws<IOException>(() => SaveIn("blocked", model, config, OnnxExternalData.Always));
        Assert.Empty(Directory.GetFiles(folder));
        Assert.Equal([Path.Combine(folder, "model.onnx")], Directory.GetDirectories(folder));
    }

    /// <summary>
    /// The location is relative to the graph: a data file in a subfolder, the whole folder then moved elsewhere (the files
    /// where they were written are gone, and the process's working directory is neither folder), loads and runs in ORT.
    /// </summary>
    [Fact]
    public void TheDataFileIsFoundBesideTheGraphWhereverTheFolderMoves()
    {
        (TransformerModel model, string? config) = Build("llama-gqa");
        Directory.CreateDirectory(Path.Combine(_folder, "written", "weights"));
        (OnnxExportReport report, string path) = SaveIn("written", model, config, OnnxExternalData.Always, dataFile: "weights/llama.bin");
        Assert.Equal(Path.Combine(_folder, "written", "weights", "llama.bin"), report.DataFile);
        (OnnxExportReport one, string oneFile) = SaveIn("one-file", model, config, OnnxExternalData.Never);
        CheckAgainstOneFile(oneFile, path, report.DataFile!, "weights/llama.bin");

        string moved = Path.Combine(_folder, "moved");
        Directory.Move(Path.GetDirectoryName(path)!, moved);
        Assert.False(File.Exists(report.DataFile));
        Assert.NotEqual(Path.GetFullPath(moved), Path.GetFullPath(Environment.CurrentDirectory));
        (float[] ours, float[] theirs) = OursAndTheirs(model, Path.Combine(moved, "model.onnx"), seed: 23);
        double relative = Relative(ours, theirs, model.Layout.Vocab);
        output.WriteLine($"{model.Layout.Name}, moved with weights/llama.bin: relative {relative:G3} (one file {one.Bytes} bytes)");
        Assert.True(relative < Tolerance, $"relative {relative}");
    }

    /// <summary>A data file name that is absolute, leaves the graph's folder, is empty or is the graph itself is refused before anything is written.</summary>
    [Theory]
    [InlineData("/tmp/weights.data")]
    [InlineData("../weights.data")]
    [InlineData("sub/../../weights.data")]
    [InlineData("sub/")]
    [InlineData(".")]
    [InlineData("")]
    [InlineData("model.onnx")]
    [InlineData("./model.onnx")]
    public void ADataFileOutsideTheGraphsFolderIsRefused(string name)
    {
        (TransformerModel model, _) = Build("native-learned");
        Assert.Throws<ArgumentException>(() => SaveIn("refused", model, null, OnnxExternalData.Always, dataFile: name));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(_folder, "refused")));
    }

    /// <summary>
    /// The threshold decides which initializers move: 0 moves every one but the int64 shape constants (ORT's shape
    /// inference refuses those in a data file), a threshold above the largest none (and then no data file is written).
    /// </summary>
    [Fact]
    public void TheThresholdDecidesWhichInitializersMove()
    {
        (TransformerModel model, _) = Build("native-windowed");
        (_, string oneFile) = SaveIn("one-file", model, null, OnnxExternalData.Never);
        int initializers = ModelProto.Parser.ParseFrom(File.ReadAllBytes(oneFile)).Graph.Initializer.Count(t => t.DataType != (int)TensorProto.Types.DataType.Int64);

        (OnnxExportReport all, string allFile) = SaveIn("all", model, null, OnnxExternalData.Always, threshold: 0);
        Assert.Equal(initializers, CheckAgainstOneFile(oneFile, allFile, all.DataFile!, "model.onnx.data", threshold: 0).Tensors);
        (float[] ours, float[] theirs) = OursAndTheirs(model, allFile, seed: 24);
        Assert.True(Relative(ours, theirs, model.Layout.Vocab) < Tolerance);

        (OnnxExportReport none, string noneFile) = SaveIn("none", model, null, OnnxExternalData.Always, threshold: int.MaxValue);
        Assert.Null(none.DataFile);
        Assert.False(File.Exists(noneFile + ".data"));
        Assert.Equal(File.ReadAllBytes(oneFile), File.ReadAllBytes(noneFile));
    }
}
