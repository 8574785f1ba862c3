using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace TransformerGen;

/// <summary>
/// Reads and writes model parameters as safetensors files (https://github.com/huggingface/safetensors), the
/// format PyTorch users load with <c>safetensors.torch.load_file</c>.
/// </summary>
/// <remarks>
/// <para>Layout: an 8-byte little-endian unsigned header length N; N bytes of UTF-8 JSON mapping each tensor
/// name to <c>{"dtype", "shape", "data_offsets": [begin, end]}</c> (offsets relative to the first byte after the
/// header), plus an optional <c>"__metadata__"</c> map of strings; then the raw little-endian tensor data.</para>
/// <para>Files are written as F32, tensors packed in table order, the header padded with spaces to a multiple
/// of 8. Loading accepts F32, F16 and BF16 and converts to float.</para>
/// <para>Only little-endian machines are supported (every platform .NET ships for today is one).</para>
/// </remarks>
public static partial class SafeTensors
{
    /// <summary>The largest header accepted when loading, in bytes (100 MB, as the reference implementation's limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>
    /// Writes the tensors of <paramref name="tensors"/>, taken from <paramref name="buffer"/>, to
    /// <paramref name="path"/> as F32. The write is atomic: the file is written and flushed under a unique
    /// temporary name in the same directory, then renamed over <paramref name="path"/>; if anything fails the
    /// temporary file is deleted and an existing file at <paramref name="path"/> is left as it was.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="tensors">The tensor table: names (unique, not <c>__metadata__</c>), shapes and offsets into <paramref name="buffer"/>.</param>
    /// <param name="buffer">The flat parameter buffer.</param>
    /// <param name="metadata">Optional string metadata, stored under <c>__metadata__</c> with its keys sorted.
    /// (Hugging Face <c>transformers</c> expects <c>"format": "pt"</c> there when the map is present.)</param>
    /// <exception cref="ArgumentException">The table has a duplicate or reserved name, or a tensor lies outside <paramref name="buffer"/>.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder of <paramref name="path"/> does not exist; nothing was written.</exception>
    /// <exception cref="IOException"><paramref name="path"/> is a directory, or no file can be created in its folder (nothing was
    /// written); or the rename failed, and the message names the temporary file, which is then kept with the data.</exception>
    public static void Save(string path, IReadOnlyList<ParameterTensor> tensors, ReadOnlySpan<float> buffer, IReadOnlyDictionary<string, string>? metadata = null) =>
        Save(path, tensors, buffer, metadata, beforeCommit: null);

    /// <summary>
    /// As the public overload; <paramref name="beforeCommit"/> runs with the temporary file's path after it is written
    /// and before the rename, and <paramref name="output"/> may wrap the temporary file's stream (tests use them to
    /// simulate a failure at the last moment and in the middle of the write). With <paramref name="storedLayout"/>, a
    /// <see cref="ParameterTensor.StoredTransposed"/> tensor is written as checkpoint files hold it, <c>[in, out]</c>
    /// (<see cref="HuggingFaceCheckpoint"/>); otherwise every tensor is written with its in-memory shape.
    /// </summary>
    internal static void Save(string path, IReadOnlyList<ParameterTensor> tensors, ReadOnlySpan<float> buffer,
        IReadOnlyDictionary<string, string>? metadata, Action<string>? beforeCommit, Func<Stream, Stream>? output = null, bool storedLayout = false) =>
        Save(path, tensors, buffer, values: null, metadata, beforeCommit, output, storedLayout);

    /// <summary>
    /// The values of tensor <paramref name="index"/> of a table whose tensors come from several buffers (a training
    /// checkpoint: parameters and optimizer state), exactly as long as the tensor.
    /// </summary>
    internal delegate ReadOnlySpan<float> TensorValues(int index);

    /// <summary>
    /// As the other overloads; with <paramref name="values"/>, each tensor's data comes from it instead of from a slice
    /// of <paramref name="buffer"/>, whose length then only bounds the table's offsets.
    /// </summary>
    internal static void Save(string path, IReadOnlyList<ParameterTensor> tensors, ReadOnlySpan<float> buffer, TensorValues? values,
        IReadOnlyDictionary<string, string>? metadata, Action<string>? beforeCommit, Func<Stream, Stream>? output = null, bool storedLayout = false,
        TensorStorage[]? storage = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        RequireLittleEndian();
        CheckTable(path, tensors, buffer.Length, nameof(buffer), storedLayout, allowState: values is not null);
        CheckStorage(path, tensors, storage, storedLayout);
        byte[] header = SafeTensorsHeader.Write(tensors, metadata, storedLayout, storage);

        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath) ?? throw new ArgumentException($"'{path}' names no file in a directory", nameof(path));
        CheckTarget(path, fullPath, directory);
        string temporaryPath = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        Span<byte> headerLength = stackalloc byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64LittleEndian(headerLength, (ulong)header.Length);
        FileStream created;
        try
        {
            created = new FileStream(temporaryPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"cannot save '{path}': no file can be created in the folder '{directory}' ({e.Message})", e);
        }
        try
        {
            using (FileStream file = created)
            {
                Stream stream = output?.Invoke(file) ?? file;
                stream.Write(headerLength);
                stream.Write(header);
                float[]? scratch = null;
                for (int i = 0; i < tensors.Count; i++)
                {
                    ParameterTensor tensor = tensors[i];
                    ReadOnlySpan<float> data = values is null ? buffer.Slice(tensor.Offset, tensor.Length) : values(i);
                    if (data.Length != tensor.Length)
                        throw new InvalidOperationException($"'{path}': tensor '{tensor.Name}' {tensor.ShapeText} needs {tensor.Length} floats, but {data.Length} were given");
                    TensorStorage form = storage?[i] ?? TensorStorage.F32;
                    if (form != TensorStorage.F32) WriteReduced(stream, tensor, data, form);
                    else if (storedLayout && tensor.StoredTransposed) TransposedTensors.Write(stream, data, tensor.Shape[0], tensor.Shape[1], ref scratch);
                    else stream.Write(MemoryMarshal.AsBytes(data));
                }
                stream.Flush();
                file.Flush(flushToDisk: true);
            }
            beforeCommit?.Invoke(temporaryPath);
        }
        catch
        {
            try { File.Delete(temporaryPath); }
            catch (IOException) { } // the original error matters more than a leftover temporary file
            catch (UnauthorizedAccessException) { }
            throw;
        }
        try
        {
            File.Move(temporaryPath, fullPath, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The data is written and flushed: keep it where it is, rather than lose what may be hours of training.
            string reason = Directory.Exists(fullPath) ? "it is a directory" : e.Message;
            throw new IOException($"cannot save '{path}': {reason}. The data was written to '{temporaryPath}', which is kept; rename it, or save to another path", e);
        }
    }

    /// <summary>Refuses, before anything is written, a target that cannot become a file: a directory, or a file in a folder that does not exist.</summary>
    private static void CheckTarget(string path, string fullPath, string directory)
    {
        if (Directory.Exists(fullPath))
            throw new IOException($"cannot save '{path}': it is a directory; name a file inside it, such as '{Path.Combine(path, "model.safetensors")}'");
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"cannot save '{path}': the folder '{directory}' does not exist{(File.Exists(directory) ? " (a file has its name)" : "")}");
    }

    /// <summary>
    /// Reads every tensor of <paramref name="tensors"/> from the safetensors file at <paramref name="path"/>
    /// into <paramref name="buffer"/>.
    /// </summary>
    /// <remarks>
    /// The whole header is read and checked before anything is written into <paramref name="buffer"/>: the
    /// header length (within the file and <see cref="MaxHeaderBytes"/>), the JSON, each entry's dtype (F32, F16
    /// or BF16), shape (equal to the model's) and data offsets (inside the file, of the size the shape and dtype
    /// need, not overlapping), and the names (no duplicates; all missing and unexpected names are listed in one
    /// message; the overload with <c>strict</c> loads what matches and reports the rest instead). Gaps between tensors in the data are allowed. Data is then read straight into the buffer's
    /// slices (F16/BF16 through a small scratch buffer), never as a copy of the whole file. Only an I/O error
    /// during that last phase (the file changing underneath) can leave the buffer partly overwritten.
    /// </remarks>
    /// <param name="path">The file to read.</param>
    /// <param name="tensors">The tensor table: what the file must contain, and where each tensor goes in <paramref name="buffer"/>.</param>
    /// <param name="buffer">The flat parameter buffer to fill.</param>
    /// <exception cref="InvalidDataException">The file is malformed or does not match the table; the message names the file and the tensor.</exception>
    /// <exception cref="ArgumentException">The table has a duplicate or reserved name, or a tensor lies outside <paramref name="buffer"/>.</exception>
    public static void Load(string path, IReadOnlyList<ParameterTensor> tensors, Span<float> buffer)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        RequireLittleEndian();
        CheckTable(path, tensors, buffer, nameof(buffer));
        using SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        Load(new SafeTensorsSource(file, path), tensors, buffer, strict: true);
    }

    /// <summary>
    /// Reads the tensors of <paramref name="tensors"/> from the safetensors file at <paramref name="path"/> into
    /// <paramref name="buffer"/>; with <paramref name="strict"/> false, tolerates names that differ, as PyTorch's
    /// <c>load_state_dict(strict=False)</c> does, and reports them.
    /// </summary>
    /// <remarks>
    /// Non-strict: a table tensor that the file lacks keeps its values in <paramref name="buffer"/>, and a file tensor
    /// that the table lacks is not read (its header entry must still be well-formed and its data inside the file: a
    /// damaged or truncated file is rejected either way). Every tensor that both name is checked and read as in
    /// <see cref="Load(string, IReadOnlyList{ParameterTensor}, Span{float})"/>: a wrong shape or dtype is an error, not
    /// a difference to report. Strict: exactly that method, which throws on any difference in names.
    /// </remarks>
    /// <returns>The tensors read, and the missing and unexpected ones with their shapes (both empty when strict).</returns>
    /// <exception cref="InvalidDataException">The file is malformed, or a tensor both name does not match (or, when strict, the names differ); the buffer is then untouched.</exception>
    /// <exception cref="ArgumentException">The table has a duplicate or reserved name, or a tensor lies outside <paramref name="buffer"/>.</exception>
    public static SafeTensorsLoadReport Load(string path, IReadOnlyList<ParameterTensor> tensors, Span<float> buffer, bool strict) =>
        LoadInto(path, tensors, buffer, strict);

    /// <summary>
    /// As <see cref="Load(string, IReadOnlyList{ParameterTensor}, Span{float}, bool)"/>, into each tensor's segment of
    /// <paramref name="buffer"/>; <paramref name="written"/> is told the index of each tensor once its values are in.
    /// </summary>
    internal static SafeTensorsLoadReport LoadInto(string path, IReadOnlyList<ParameterTensor> tensors, ParameterSpans buffer, bool strict, Action<int>? written = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        RequireLittleEndian();
        CheckTable(path, tensors, buffer, nameof(buffer));
        using SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return Load(new SafeTensorsSource(file, path), tensors, buffer, strict, written: written);
    }

    /// <summary>
    /// Reads every tensor of <paramref name="tensors"/> from a safetensors file held in <paramref name="stream"/>
    /// (from its current position to its end) into <paramref name="buffer"/>, with every check of
    /// <see cref="Load(string, IReadOnlyList{ParameterTensor}, Span{float})"/>, all made before the buffer is written.
    /// </summary>
    /// <remarks>
    /// For weights built into the program: <c>Assembly.GetManifestResourceStream</c> gives a seekable stream
    /// over the resource's bytes in the mapped image, and the tensors are copied from there straight into the
    /// buffer. The stream stays open; its position afterwards is unspecified.
    /// </remarks>
    /// <param name="stream">A readable, seekable stream.</param>
    /// <param name="tensors">The tensor table: what the file must contain, and where each tensor goes in <paramref name="buffer"/>.</param>
    /// <param name="buffer">The flat parameter buffer to fill.</param>
    /// <param name="name">What error messages call the file (the resource name, say); <c>"stream"</c> when omitted.</param>
    /// <exception cref="InvalidDataException">The data is malformed or does not match the table; the message names the file and the tensor.</exception>
    /// <exception cref="ArgumentException">The stream cannot read or seek, or the table has a duplicate or reserved name, or a tensor lies outside <paramref name="buffer"/>.</exception>
    public static void Load(Stream stream, IReadOnlyList<ParameterTensor> tensors, Span<float> buffer, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(tensors);
        name ??= "stream";
        RequireLittleEndian();
        CheckTable(name, tensors, buffer, nameof(buffer));
        Load(new SafeTensorsSource(stream, name), tensors, buffer, strict: true);
    }

    /// <summary>
    /// As <see cref="Load(string, IReadOnlyList{ParameterTensor}, Span{float}, bool)"/>, from a safetensors file held
    /// in <paramref name="stream"/> (from its current position to its end; see
    /// <see cref="Load(Stream, IReadOnlyList{ParameterTensor}, Span{float}, string?)"/>).
    /// </summary>
    /// <returns>The tensors read, and the missing and unexpected ones with their shapes (both empty when strict).</returns>
    /// <exception cref="InvalidDataException">The data is malformed, or a tensor both name does not match (or, when strict, the names differ); the buffer is then untouched.</exception>
    /// <exception cref="ArgumentException">The stream cannot read or seek, or the table has a duplicate or reserved name, or a tensor lies outside <paramref name="buffer"/>.</exception>
    public static SafeTensorsLoadReport Load(Stream stream, IReadOnlyList<ParameterTensor> tensors, Span<float> buffer, bool strict, string? name = null) =>
        LoadInto(stream, tensors, buffer, strict, name);

    /// <summary>As <see cref="LoadInto(string, IReadOnlyList{ParameterTensor}, ParameterSpans, bool, Action{int}?)"/>, from a stream.</summary>
    internal static SafeTensorsLoadReport LoadInto(Stream stream, IReadOnlyList<ParameterTensor> tensors, ParameterSpans buffer, bool strict, string? name = null, Action<int>? written = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(tensors);
        name ??= "stream";
        RequireLittleEndian();
        CheckTable(name, tensors, buffer, nameof(buffer));
        return Load(new SafeTensorsSource(stream, name), tensors, buffer, strict, written: written);
    }

    private static SafeTensorsLoadReport Load(SafeTensorsSource source, IReadOnlyList<ParameterTensor> tensors, ParameterSpans buffer, bool strict,
        bool[]? packInt8 = null, Action<int>? written = null)
    {
        SafeTensorsHeader header = SafeTensorsHeader.Read(source);
        (SafeTensorsEntry?[] entries, SafeTensorsEntry?[] scales, SafeTensorsLoadReport report) = MatchTable(header, tensors, source.Name, strict);
        Half[]?[] packedScales = ReadScalesToPack(source, header, tensors, scales, packInt8);

        byte[]? scratch = null;
        for (int i = 0; i < tensors.Count; i++)
        {
            ParameterTensor tensor = tensors[i];
            if (entries[i] is not { } entry) continue; // missing, non-strict: left as it is
            Span<float> destination = buffer[tensor];
            if (packedScales[i] is { } known) ReadInt8Panels(source, header, entry, known, tensor, destination);
            else if (scales[i] is { } scale) ReadInt8(source, header, entry, scale, tensor, destination);
            else ReadTensor(source, header.DataStart + entry.Begin, entry, destination, ref scratch);
            if (packedScales[i] is null) written?.Invoke(i); // a tensor written packed is in its final form already
        }
        if (packInt8 is not null)
            for (int i = 0; i < tensors.Count; i++) packInt8[i] = packedScales[i] is not null;
        return report;
    }

    /// <summary>
    /// Reads <paramref name="tensors"/> from the safetensors file at <paramref name="path"/> as the strict
    /// <see cref="Load(string, IReadOnlyList{ParameterTensor}, Span{float})"/> does, except that each tensor
    /// <paramref name="packInt8"/> marks which the file holds in 8 bits is written in <see cref="Kernels.QuantizedMatMul"/>'s
    /// packed form rather than as fp32; on return <paramref name="packInt8"/> marks the tensors so written.
    /// </summary>
    internal static void LoadPackingInt8(string path, IReadOnlyList<ParameterTensor> tensors, ParameterSpans buffer, bool[] packInt8, Action<int>? written = null)
    {
        RequireLittleEndian();
        CheckTable(path, tensors, buffer, nameof(buffer));
        using SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        Load(new SafeTensorsSource(file, path), tensors, buffer, strict: true, packInt8, written);
    }

    /// <summary>As <see cref="LoadPackingInt8(string, IReadOnlyList{ParameterTensor}, ParameterSpans, bool[], Action{int}?)"/>, from a stream (built-in weights).</summary>
    internal static void LoadPackingInt8(Stream stream, IReadOnlyList<ParameterTensor> tensors, ParameterSpans buffer, string name, bool[] packInt8, Action<int>? written = null)
    {
        RequireLittleEndian();
        CheckTable(name, tensors, buffer, nameof(buffer));
        Load(new SafeTensorsSource(stream, name), tensors, buffer, strict: true, packInt8, written);
    }

    /// <summary>The <c>__metadata__</c> map of the file at <paramref name="path"/> (empty when it has none). Reads only the header.</summary>
    /// <exception cref="InvalidDataException">The header is malformed; the message names the file.</exception>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return SafeTensorsHeader.Read(new SafeTensorsSource(file, path)).Metadata;
    }

    /// <summary>
    /// The <c>__metadata__</c> map of a safetensors file held in <paramref name="stream"/> from its current
    /// position (empty when it has none). Reads only the header; the stream's position is then restored, so
    /// the same stream can be passed to <see cref="Load(Stream, IReadOnlyList{ParameterTensor}, Span{float}, string?)"/> next.
    /// </summary>
    /// <param name="stream">A readable, seekable stream.</param>
    /// <param name="name">What error messages call the file; <c>"stream"</c> when omitted.</param>
    /// <exception cref="InvalidDataException">The header is malformed; the message names the file.</exception>
    /// <exception cref="ArgumentException">The stream cannot read or seek.</exception>
    public static IReadOnlyDictionary<string, string> ReadMetadata(Stream stream, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var source = new SafeTensorsSource(stream, name ?? "stream");
        long start = stream.Position;
        try
        {
            return SafeTensorsHeader.Read(source).Metadata;
        }
        finally
        {
            stream.Position = start;
        }
    }

    /// <summary>
    /// Pairs each table tensor with its header entry (the result is in table order; null for a tensor the file lacks)
    /// and checks names, dtypes, shapes, sizes, ranges and overlaps. Strict, any difference in names is an error;
    /// otherwise it is reported, and the file's other entries need only lie inside the data.
    /// </summary>
    private static (SafeTensorsEntry?[] Entries, SafeTensorsEntry?[] Scales, SafeTensorsLoadReport Report) MatchTable(SafeTensorsHeader header, IReadOnlyList<ParameterTensor> tensors, string path, bool strict)
    {
        var byName = new Dictionary<string, SafeTensorsEntry>(StringComparer.Ordinal);
        foreach (SafeTensorsEntry entry in header.Entries) byName.Add(entry.Name, entry);

        // The scales of a tensor stored in 8 bits belong to it: they are neither a parameter nor unexpected. A matrix
        // without them is an error of its own, before names are compared.
        var modelNames = new HashSet<string>(StringComparer.Ordinal);
        var scales = new SafeTensorsEntry?[tensors.Count];
        for (int i = 0; i < tensors.Count; i++)
            if (byName.TryGetValue(tensors[i].Name, out SafeTensorsEntry? stored) && stored.DType == "I8")
            {
                scales[i] = MatchInt8(path, tensors[i], stored, byName);
                modelNames.Add(scales[i]!.Name);
            }
        var loaded = new List<string>();
        var missing = new List<SafeTensorsTensorInfo>();
        foreach (ParameterTensor tensor in tensors)
        {
            modelNames.Add(tensor.Name);
            if (byName.ContainsKey(tensor.Name)) loaded.Add(tensor.Name);
            else missing.Add(new SafeTensorsTensorInfo(tensor.Name, ToLongs(tensor.Shape), "F32"));
        }
        var unexpected = new List<SafeTensorsTensorInfo>();
        var skipped = new List<SafeTensorsSkippedTensor>();
        foreach (SafeTensorsEntry entry in header.Entries)
        {
            if (modelNames.Contains(entry.Name)) continue;
            // A training checkpoint's optimizer state is not a parameter: loading the parameters ignores it.
            if (TrainingCheckpoint.IsStateName(entry.Name)) skipped.Add(new SafeTensorsSkippedTensor(entry.Name, entry.Shape, entry.DType, SafeTensorsSkipReason.TrainingState, path));
            else unexpected.Add(new SafeTensorsTensorInfo(entry.Name, entry.Shape, entry.DType));
        }
        var report = new SafeTensorsLoadReport(loaded, missing, unexpected, skipped);
        if (strict && !report.IsExactMatch)
            throw Invalid(path, "the tensors do not match the model. " + report);
        // Entries that are skipped must still lie inside the file: a truncated file is refused whatever is read from it.
        foreach (SafeTensorsEntry entry in header.Entries)
            if (!modelNames.Contains(entry.Name)) CheckInsideData(entry);

        var entries = new SafeTensorsEntry?[tensors.Count];
        var matched = new List<SafeTensorsEntry>(loaded.Count);
        for (int i = 0; i < tensors.Count; i++)
        {
            ParameterTensor tensor = tensors[i];
            if (!byName.TryGetValue(tensor.Name, out SafeTensorsEntry? entry)) continue;
            if (scales[i] is { } scale)
            {
                CheckInsideData(scale);
                matched.Add(scale);
            }
            int elementSize = entry.DType == "I8" ? sizeof(sbyte) : ElementSize(entry.DType);
            if (elementSize == 0)
                throw Invalid(path, tensor.Name, $"dtype {entry.DType} cannot be loaded (only F32, F16, BF16, and I8 with its {Int8ScaleSuffix} tensor, can)");
            if (!ShapeEquals(entry.Shape, tensor.Shape))
                throw Invalid(path, tensor.Name, $"its shape is {entry.ShapeText} in the file but {tensor.ShapeText} in the model");
            long expectedBytes = (long)tensor.Length * elementSize;
            if (entry.End - entry.Begin != expectedBytes)
                throw Invalid(path, tensor.Name, $"data_offsets [{entry.Begin}, {entry.End}] hold {entry.End - entry.Begin} bytes, but shape {entry.ShapeText} of {entry.DType} needs {expectedBytes}");
            CheckInsideData(entry);
            entries[i] = entry;
            matched.Add(entry);
        }

        SafeTensorsEntry[] byBegin = matched.ToArray();
        Array.Sort(byBegin, static (a, b) => a.Begin.CompareTo(b.Begin));
        for (int i = 1; i < byBegin.Length; i++)
        {
            if (byBegin[i].Begin < byBegin[i - 1].End)
                throw Invalid(path, byBegin[i].Name, $"its data [{byBegin[i].Begin}, {byBegin[i].End}] overlaps tensor '{byBegin[i - 1].Name}' [{byBegin[i - 1].Begin}, {byBegin[i - 1].End}]");
        }
        return (entries, scales, report);

        void CheckInsideData(SafeTensorsEntry entry)
        {
            if (entry.End > header.DataLength)
                throw Invalid(path, entry.Name, $"data_offsets [{entry.Begin}, {entry.End}] run past the end of the data ({header.DataLength} bytes); the file is truncated");
        }
    }

    private static long[] ToLongs(ReadOnlySpan<int> shape)
    {
        var result = new long[shape.Length];
        for (int i = 0; i < shape.Length; i++) result[i] = shape[i];
        return result;
    }

    /// <summary>Reads the tensor <paramref name="entry"/>, whose data starts at <paramref name="position"/>, into <paramref name="destination"/> in file order.</summary>
    internal static void ReadTensor(SafeTensorsSource source, long position, SafeTensorsEntry entry, Span<float> destination, ref byte[]? scratch)
    {
        string what = $"tensor '{entry.Name}'";
        if (entry.DType == "F32")
        {
            ReadExactly(source, MemoryMarshal.AsBytes(destination), position, what);
            return;
        }

        // F16 and BF16: two bytes per element, converted chunk by chunk.
        scratch ??= new byte[64 * 1024];
        while (!destination.IsEmpty)
        {
            int count = Math.Min(destination.Length, scratch.Length / 2);
            Span<byte> chunk = scratch.AsSpan(0, count * 2);
            ReadExactly(source, chunk, position, what);
            ConvertHalfToSingle(entry.DType, chunk, destination[..count]);
            destination = destination[count..];
            position += chunk.Length;
        }
    }

    /// <summary>Converts F16 or BF16 (<paramref name="dtype"/>) little-endian values to float, exactly.</summary>
    internal static void ConvertHalfToSingle(string dtype, ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (dtype == "F16")
        {
            TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(source), destination);
        }
        else
        {
            // bfloat16 is the upper half of a float32 (same sign and exponent, 7 mantissa bits).
            ReadOnlySpan<ushort> bits = MemoryMarshal.Cast<byte, ushort>(source);
            for (int i = 0; i < bits.Length; i++) destination[i] = BitConverter.Int32BitsToSingle(bits[i] << 16);
        }
    }

    /// <summary>Bytes per element of a dtype that loads into a float buffer (F32, F16, BF16), or 0 for any other.</summary>
    internal static int ElementSize(string dtype) => dtype switch
    {
        "F32" => 4,
        "F16" or "BF16" => 2,
        _ => 0,
    };

    internal static bool ShapeEquals(long[] fileShape, ReadOnlySpan<int> modelShape)
    {
        if (fileShape.Length != modelShape.Length) return false;
        for (int i = 0; i < fileShape.Length; i++)
            if (fileShape[i] != modelShape[i]) return false;
        return true;
    }

    /// <summary>
    /// Checks the table itself: unique, unreserved names, and every tensor inside the buffer; with
    /// <paramref name="storedLayout"/>, also that every <see cref="ParameterTensor.StoredTransposed"/> tensor is 2-D.
    /// </summary>
    internal static void CheckTable(string path, IReadOnlyList<ParameterTensor> tensors, int bufferLength, string bufferName, bool storedLayout = false, bool allowState = false) =>
        CheckTable(path, tensors, [bufferLength], bufferName, storedLayout, allowState);

    /// <summary>As <see cref="CheckTable(string, IReadOnlyList{ParameterTensor}, int, string, bool, bool)"/>, each tensor inside its segment of <paramref name="buffer"/>.</summary>
    internal static void CheckTable(string path, IReadOnlyList<ParameterTensor> tensors, ParameterSpans buffer, string bufferName, bool storedLayout = false)
    {
        Span<int> lengths = stackalloc int[buffer.Count];
        for (int s = 0; s < lengths.Length; s++) lengths[s] = buffer.Length(s);
        CheckTable(path, tensors, lengths, bufferName, storedLayout, allowState: false);
    }

    private static void CheckTable(string path, IReadOnlyList<ParameterTensor> tensors, ReadOnlySpan<int> segments, string bufferName, bool storedLayout, bool allowState)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (ParameterTensor tensor in tensors)
        {
            if (tensor is null) throw new ArgumentException($"'{path}': the tensor table contains null", nameof(tensors));
            if (tensor.Name == SafeTensorsHeader.MetadataKey)
                throw new ArgumentException($"'{path}': tensor name '{tensor.Name}' is reserved by the safetensors format", nameof(tensors));
            if (TrainingCheckpoint.IsStateName(tensor.Name) && !allowState)
                throw new ArgumentException($"'{path}': tensor name '{tensor.Name}' starts with '{TrainingCheckpoint.StatePrefix}', which is reserved for a training checkpoint's optimizer state", nameof(tensors));
            if (!names.Add(tensor.Name))
                throw new ArgumentException($"'{path}': tensor '{tensor.Name}' appears twice in the tensor table", nameof(tensors));
            if (tensor.Segment >= segments.Length)
                throw new ArgumentException($"'{path}': tensor '{tensor.Name}' {tensor.ShapeText} lies in parameter segment {tensor.Segment}, but the buffer has {(segments.Length == 1 ? "one" : segments.Length.ToString(System.Globalization.CultureInfo.InvariantCulture))}", bufferName);
            int bufferLength = segments[tensor.Segment];
            if ((long)tensor.Offset + tensor.Length > bufferLength)
                throw new ArgumentException($"'{path}': tensor '{tensor.Name}' {tensor.ShapeText} at offset {tensor.Offset} ends at {(long)tensor.Offset + tensor.Length}, past the end of the buffer ({bufferLength} floats)", bufferName);
            if (storedLayout && tensor.StoredTransposed && tensor.Shape.Length != 2)
                throw new ArgumentException($"'{path}': tensor '{tensor.Name}' {tensor.ShapeText} is marked StoredTransposed but is not 2-D", nameof(tensors));
        }
    }

    /// <summary>Fills <paramref name="destination"/> from <paramref name="position"/>, or throws if the file ends first.</summary>
    internal static void ReadExactly(SafeTensorsSource source, Span<byte> destination, long position, string what)
    {
        while (!destination.IsEmpty)
        {
            int read = source.Read(destination, position);
            if (read == 0) throw Invalid(source.Name, $"the file ended while reading {what}; it is truncated");
            destination = destination[read..];
            position += read;
        }
    }

    internal static InvalidDataException Invalid(string path, string message, Exception? inner = null) =>
        new($"safetensors file '{path}': {message}", inner);

    internal static InvalidDataException Invalid(string path, string tensorName, string message) =>
        new($"safetensors file '{path}', tensor '{tensorName}': {message}");

    internal static void RequireLittleEndian()
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors reading and writing is implemented for little-endian machines only");
    }
}
