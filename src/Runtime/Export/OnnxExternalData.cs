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
    /// one file, TinyLlama-1.1B or Qwen2.5-1.5B in fp32 a graph and its data file.
    /// </summary>
    Auto = 0,

    /// <summary>Never: every initializer is in the graph file, and a graph over 2 GiB is refused.</summary>
    Never = 1,

    /// <summary>Always: every initializer of <see cref="OnnxExportOptions.ExternalDataThreshold"/> bytes or more goes to the data file.</summary>
    Always = 2,
}

/// <summary>
/// The data file of an export with external data: initializers' raw little-endian bytes, each starting at a multiple of
/// 4096 (a page, so that ONNX Runtime can memory-map it, as onnx.proto's external data section asks), zeros between them.
/// Each tensor it takes refers to it as ONNX specifies: <c>data_location = EXTERNAL</c> and <c>external_data</c> entries
/// <c>location</c> (the file's path relative to the graph's folder, '/'-separated), <c>offset</c> and <c>length</c>.
/// </summary>
/// <remarks>
/// It decides too which tensors go there. With <see cref="OnnxExternalData.Always"/> it writes from the first tensor on;
/// with <see cref="OnnxExternalData.Auto"/> the tensors stay in the message until their bytes pass the message limit,
/// then every large one so far moves out and the rest follow as they come (the export calls <see cref="MoveOut"/> again at
/// the end when the whole message, nodes included, does not fit). The file is an <see cref="AtomicFile"/>, opened when
/// the first tensor is written and renamed only by <see cref="Commit"/>.
/// </remarks>
internal sealed class OnnxExternalDataFile : IDisposable
{
    /// <summary>The alignment of every tensor's offset in the file.</summary>
    public const int Alignment = 4096;

    private static readonly byte[] Zeros = new byte[Alignment];

    private readonly string _path;
    private readonly OnnxExternalData _mode;
    private readonly int _threshold;
    private readonly long _messageLimit;
    private AtomicFile? _file;
    private long _length, _heldBytes;

    public OnnxExternalDataFile(string graphPath, OnnxExportOptions options, long messageLimit)
    {
        (_path, Location) = Resolve(graphPath, options.ExternalDataFile);
        _mode = options.ExternalData;
        _threshold = options.ExternalDataThreshold;
        _messageLimit = messageLimit;
    }

    /// <summary>The data file's path relative to the graph's folder, as the tensors name it.</summary>
    public string Location { get; }

    /// <summary>The data file's full path.</summary>
    public string FullPath => _path;

    /// <summary>Whether large tensors go to the file now.</summary>
    public bool Writing { get; private set; }

    /// <summary>Whether a tensor went to the file: only then is there a file to commit.</summary>
    public bool Used => _file is not null;

    /// <summary>Bytes of the file so far, padding included.</summary>
    public long Length => _length;

    /// <summary>
    /// Places one initializer's data: in the file when it is being written and the tensor has the threshold's bytes, else
    /// in the message. Under <see cref="OnnxExternalData.Auto"/>, the first time the message's initializers pass the limit,
    /// every large one of <paramref name="initializers"/> moves out.
    /// </summary>
    public void Place(TensorProto tensor, ReadOnlySpan<byte> bytes, IEnumerable<TensorProto> initializers)
    {
        if (!Writing && _mode == OnnxExternalData.Always) Writing = true;
        if (Writing && Moves(tensor, bytes.Length))
        {
            Append(tensor, bytes);
            return;
        }
        tensor.RawData = UnsafeByteOperations.UnsafeWrap(bytes.ToArray());
        _heldBytes += bytes.Length;
        if (!Writing && _mode == OnnxExternalData.Auto && _heldBytes > _messageLimit) MoveOut(initializers);
    }

    /// <summary>Starts writing the file and moves there every initializer held in the message that has the threshold's bytes.</summary>
    public void MoveOut(IEnumerable<TensorProto> initializers)
    {
        Writing = true;
        foreach (TensorProto tensor in initializers)
        {
            if (tensor.DataLocation == TensorProto.Types.DataLocation.External || !Moves(tensor, tensor.RawData.Length)) continue;
            _heldBytes -= tensor.RawData.Length;
            Append(tensor, tensor.RawData.Span);
            tensor.RawData = ByteString.Empty;
        }
    }

    /// <summary>
    /// Whether a tensor stays in the graph whatever its size: int64 ones are shapes, axes and split sizes, which shape
    /// inference reads, and ONNX Runtime's refuses to read them from a data file ("Cannot parse data from external tensors").
    /// </summary>
    public static bool StaysInGraph(TensorProto tensor) => tensor.DataType == (int)TensorProto.Types.DataType.Int64;

    private bool Moves(TensorProto tensor, int bytes) => bytes >= _threshold && !StaysInGraph(tensor);

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
