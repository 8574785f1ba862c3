using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using Google.Protobuf;
using Onnx;

namespace TransformerGen;

/// <summary>Whether <see cref="OnnxExport"/> writes the initializers' bytes to a data file beside the graph (ONNX's external data).</summary>
public enum OnnxExternalData
{
    /// <summary>
    /// Only when the graph would not fit one protobuf message (2 GiB): a model of a few hundred million parameters writes
    /// one file, TinyLlama-1.1B or Qwen2.5-1.5B in fp32 a graph and its data file. The large tensors are written to the
    /// data file as under <see cref="Always"/>, and read back into the graph when it fits after all (so that no export
    /// holds the weights in memory only to find them too large).
    /// </summary>
    Auto = 0,

    /// <summary>Never: every initializer is in the graph file, and a graph over 2 GiB is refused.</summary>
    Never = 1,

    /// <summary>Always: every initializer of <see cref="OnnxExportOptions.ExternalDataThreshold"/> bytes or more goes to the data file.</summary>
    Always = 2,
}

/// <summary>
/// The data file of an export with external data: initializers' raw little-endian bytes, each starting at a multiple of
/// 64 KiB, zeros between them. onnx.proto's external data section asks for offsets that are multiples of the page size
/// (4 KiB) and, on Windows, of the allocation granularity (64 KiB), so that a runtime can memory-map each tensor; 64 KiB
/// is both, and a multiple of the 16 and 64 KiB pages of some ARM systems (onnx_ir aligns large tensors to it too).
/// Each tensor it takes refers to it as ONNX specifies: <c>data_location = EXTERNAL</c> and <c>external_data</c> entries
/// <c>location</c> (the file's path relative to the graph's folder, '/'-separated), <c>offset</c> and <c>length</c>.
/// </summary>
/// <remarks>
/// Every tensor of the threshold's bytes or more is written to it as the graph is built, under <see cref="OnnxExternalData.Auto"/>
/// too, so that no export holds the tensors in memory only to find that they do not fit. When under Auto the whole graph
/// would fit one message after all (<see cref="SizeInOneMessage"/>), the export reads them back into it
/// (<see cref="MoveBack"/>) and the file, never committed, is deleted. It is an <see cref="AtomicFile"/>, opened when the
/// first tensor is written and renamed only by <see cref="Commit"/>.
/// </remarks>
internal sealed class OnnxExternalDataFile : IDisposable
{
    /// <summary>The alignment of every tensor's offset in the file.</summary>
    public const int Alignment = 65536;

    private static readonly byte[] Zeros = new byte[Alignment];

    private readonly string _path;
    private readonly int _threshold;
    private AtomicFile? _file;
    private long _length;

    public OnnxExternalDataFile(string graphPath, OnnxExportOptions options)
    {
        (_path, Location) = Resolve(graphPath, options.ExternalDataFile);
        _threshold = options.ExternalDataThreshold;
    }

    /// <summary>The data file's path relative to the graph's folder, as the tensors name it.</summary>
    public string Location { get; }

    /// <summary>The data file's full path.</summary>
    public string FullPath => _path;

    /// <summary>Whether a tensor is in the file: only then is there a file to commit.</summary>
    public bool Used => _file is not null;

    /// <summary>Bytes of the file so far, padding included.</summary>
    public long Length => _length;

    /// <summary>Places one initializer's data: in the file when it has the threshold's bytes (and may leave the graph), else in the message.</summary>
    public void Place(TensorProto tensor, ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length >= _threshold && !StaysInGraph(tensor)) Append(tensor, bytes);
        else tensor.RawData = UnsafeByteOperations.UnsafeWrap(bytes.ToArray());
    }

    /// <summary>
    /// Whether a tensor stays in the graph whatever its size: int64 ones are shapes, axes and split sizes, which shape
    /// inference reads, and ONNX Runtime's refuses to read them from a data file ("Cannot parse data from external tensors").
    /// </summary>
    public static bool StaysInGraph(TensorProto tensor) => tensor.DataType == (int)TensorProto.Types.DataType.Int64;

    /// <summary>
    /// The bytes <paramref name="model"/> would take with every tensor of this file back in it as raw data: its size now,
    /// less each such tensor's external entries and data location, plus its raw data field, with the length prefixes of
    /// the tensors and of the graph that contains them recomputed. Reads nothing from the file.
    /// </summary>
    public static long SizeInOneMessage(ModelProto model)
    {
        GraphProto graph = model.Graph;
        long graphSize = graph.CalculateSize();
        foreach (TensorProto tensor in graph.Initializer)
        {
            if (tensor.DataLocation != TensorProto.Types.DataLocation.External) continue;
            // The fields' tags are one byte each: data_location = 14, external_data = 13, raw_data = 9, initializer = 5, graph = 7.
            int external = tensor.CalculateSize();
            long length = ExternalLength(tensor);
            long inline = external - (1 + CodedOutputStream.ComputeEnumSize((int)tensor.DataLocation));
            foreach (StringStringEntryProto entry in tensor.ExternalData) inline -= 1 + CodedOutputStream.ComputeMessageSize(entry);
            inline += 1 + LengthPrefix(length) + length;
            graphSize += LengthPrefix(inline) + inline - (LengthPrefix(external) + external);
        }
        int graphNow = graph.CalculateSize();
        return model.CalculateSize() - (LengthPrefix(graphNow) + graphNow) + LengthPrefix(graphSize) + graphSize;
    }

    private static int LengthPrefix(long length) => length <= int.MaxValue ? CodedOutputStream.ComputeLengthSize((int)length) : CodedOutputStream.ComputeUInt64Size((ulong)length);

    private static long ExternalLength(TensorProto tensor)
    {
        foreach (StringStringEntryProto entry in tensor.ExternalData)
            if (entry.Key == "length") return long.Parse(entry.Value, CultureInfo.InvariantCulture);
        throw new InvalidOperationException($"{tensor.Name} has external data without a length");
    }

    /// <summary>Reads every tensor of this file back into <paramref name="initializers"/> as raw data, and deletes the file.</summary>
    public void MoveBack(IEnumerable<TensorProto> initializers)
    {
        if (_file is null) return;
        Stream stream = _file.Stream;
        foreach (TensorProto tensor in initializers)
        {
            if (tensor.DataLocation != TensorProto.Types.DataLocation.External) continue;
            long offset = 0;
            foreach (StringStringEntryProto entry in tensor.ExternalData)
                if (entry.Key == "offset") offset = long.Parse(entry.Value, CultureInfo.InvariantCulture);
            var bytes = new byte[ExternalLength(tensor)];
            stream.Position = offset;
            stream.ReadExactly(bytes);
            tensor.ExternalData.Clear();
            tensor.DataLocation = TensorProto.Types.DataLocation.Default;
            tensor.RawData = UnsafeByteOperations.UnsafeWrap(bytes);
        }
        _file.Dispose();
        _file = null;
        _length = 0;
    }

    private void Append(TensorProto tensor, ReadOnlySpan<byte> bytes)
    {
        _file ??= AtomicFile.Begin(_path);
        Stream stream = _file.Stream;
        int padding = (int)((Alignment - _length % Alignment) % Alignment);
        stream.Write(Zeros, 0, padding);
        long offset = _length + padding;
        stream.Write(bytes);
        _length = offset + bytes.Length;
        tensor.DataLocation = TensorProto.Types.DataLocation.External;
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = Location });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(CultureInfo.InvariantCulture) });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = bytes.Length.ToString(CultureInfo.InvariantCulture) });
    }

    /// <summary>Flushes the file to disk (when a tensor went to it: an export that writes none leaves no file).</summary>
    public void Finish() => _file?.Finish();

    /// <summary>Renames the finished file over its target.</summary>
    public void Commit() => _file?.Commit();

    /// <summary>Deletes the temporary file unless it was committed.</summary>
    public void Dispose() => _file?.Dispose();

    /// <summary>
    /// The data file's full path and its location relative to the graph's folder: <paramref name="name"/>, or by default the
    /// graph's file name with <c>.data</c> appended. A name that is absolute, leaves the graph's folder or is the graph
    /// itself is refused: ONNX resolves the location against the folder the graph is loaded from.
    /// </summary>
    public static (string FullPath, string Location) Resolve(string graphPath, string? name)
    {
        string graph = Path.GetFullPath(graphPath);
        string folder = Path.GetDirectoryName(graph) ?? throw new ArgumentException($"'{graphPath}' names no file in a directory", nameof(graphPath));
        name ??= Path.GetFileName(graph) + ".data";
        if (name.Length == 0 || Path.IsPathRooted(name) || name.Contains('\\', StringComparison.Ordinal))
            throw new ArgumentException($"the external data file '{name}' must be a path relative to the graph's folder, '/'-separated", nameof(name));
        string full = Path.GetFullPath(Path.Combine(folder, name));
        string inside = Path.TrimEndingDirectorySeparator(folder) + Path.DirectorySeparatorChar;
        if (!full.StartsWith(inside, StringComparison.Ordinal) || full.EndsWith(Path.DirectorySeparatorChar))
            throw new ArgumentException($"the external data file '{name}' leaves the graph's folder '{folder}'", nameof(name));
        if (full == graph) throw new ArgumentException($"the external data file '{name}' is the graph file itself", nameof(name));
        return (full, Path.GetRelativePath(folder, full).Replace(Path.DirectorySeparatorChar, '/'));
    }
}
