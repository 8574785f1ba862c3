using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;

namespace TransformerGen;

/// <summary>How <see cref="SafeTensors"/> writes one tensor.</summary>
internal enum TensorStorage
{
    /// <summary>F32, as the model holds it.</summary>
    F32,
    /// <summary>BF16, each value rounded to nearest, ties to even.</summary>
    BF16,
    /// <summary>
    /// A 2-D tensor in 8 bits: the tensor itself as I8 <c>[rows, cols]</c> and beside it the tensor named with
    /// <see cref="SafeTensors.Int8ScaleSuffix"/>, F16 <c>[rows, ⌈cols/32⌉]</c>, one scale per row and block of 32
    /// columns (the arithmetic of <see cref="Kernels.QuantizedMatMul"/>, GGUF's Q8_0).
    /// </summary>
    Int8,
}

// Checkpoints whose weight matrices are stored in bf16 or in 8-bit blocks: a model's weights built into a program take a
// half or about a quarter of the bytes (issue 14). The format stays plain safetensors that any reader opens: an 8-bit
// matrix is an I8 tensor of the matrix's own name and shape, with its scales in an F16 tensor named after it plus
// "_scale" (the name compressed-tensors gives group scales: "…weight" and "…weight_scale"), so that
// w[r, c] = q[r, c]·scale[r, c / 32]. Loading converts both forms to fp32 exactly (a bf16 or q·d value is a float), and
// an 8-bit instance quantizing those values again gets the stored bytes back: d is the smallest fp16 at or above
// max|q·d|/127 = d, and round(q·d/d) = q.
public static partial class SafeTensors
{
    /// <summary>The suffix of the F16 tensor that holds the block scales of an I8 tensor of the same name.</summary>
    public const string Int8ScaleSuffix = "_scale";

    /// <summary>Refuses storage forms a tensor cannot take: 8 bits for anything but a matrix stored in its own layout.</summary>
    private static void CheckStorage(string path, IReadOnlyList<ParameterTensor> tensors, TensorStorage[]? storage, bool storedLayout)
    {
        if (storage is null) return;
        if (storage.Length != tensors.Count)
            throw new ArgumentException($"'{path}': {storage.Length} storage forms for {tensors.Count} tensors", nameof(storage));
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (ParameterTensor tensor in tensors) names.Add(tensor.Name);
        for (int i = 0; i < tensors.Count; i++)
        {
            if (storage[i] == TensorStorage.F32) continue;
            ParameterTensor tensor = tensors[i];
            if (storedLayout && tensor.StoredTransposed)
                throw new ArgumentException($"'{path}': tensor '{tensor.Name}' is stored transposed and can only be written as F32", nameof(storage));
            if (storage[i] != TensorStorage.Int8) continue;
            if (tensor.Shape.Length != 2)
                throw new ArgumentException($"'{path}': tensor '{tensor.Name}' {tensor.ShapeText} is not a matrix and cannot be stored in 8 bits", nameof(storage));
            if (names.Contains(tensor.Name + Int8ScaleSuffix))
                throw new ArgumentException($"'{path}': the scales of '{tensor.Name}' would take the name of tensor '{tensor.Name + Int8ScaleSuffix}'", nameof(storage));
        }
    }

    /// <summary>Writes one tensor's data as <paramref name="form"/> says (BF16, or I8 followed by its F16 scales).</summary>
    private static void WriteReduced(Stream stream, ParameterTensor tensor, ReadOnlySpan<float> data, TensorStorage form)
    {
        if (form == TensorStorage.BF16)
        {
            var words = new ushort[Math.Min(data.Length, 1 << 15)];
            for (int start = 0; start < data.Length; start += words.Length)
            {
                int count = Math.Min(words.Length, data.Length - start);
                for (int i = 0; i < count; i++) words[i] = Kernels.BFloat16MatMul.RoundToBFloat16(data[start + i]);
                stream.Write(MemoryMarshal.AsBytes(words.AsSpan(0, count)));
            }
            return;
        }
        int rows = tensor.Shape[0], cols = tensor.Shape[1];
        var q = new sbyte[data.Length];
        var scales = new Half[rows * Kernels.QuantizedMatMul.BlocksPerRow(cols)];
        try
        {
            Kernels.QuantizedMatMul.QuantizeRows(data, rows, cols, q, scales);
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException($"tensor '{tensor.Name}' cannot be stored in 8 bits: {e.Message}", e);
        }
        stream.Write(MemoryMarshal.AsBytes(q.AsSpan()));
        stream.Write(MemoryMarshal.AsBytes(scales.AsSpan()));
    }

    /// <summary>The scales entry of an I8 <paramref name="entry"/>, checked: the tensor is a matrix, the scales F16 and shaped <c>[rows, ⌈cols/32⌉]</c>.</summary>
    private static SafeTensorsEntry MatchInt8(string path, ParameterTensor tensor, SafeTensorsEntry entry, Dictionary<string, SafeTensorsEntry> byName)
    {
        if (tensor.Shape.Length != 2)
            throw Invalid(path, tensor.Name, $"it is I8 in the file, which only a matrix can be, but {tensor.ShapeText} in the model");
        string scaleName = tensor.Name + Int8ScaleSuffix;
        if (!byName.TryGetValue(scaleName, out SafeTensorsEntry? scale))
            throw Invalid(path, tensor.Name, $"it is I8 in the file but its scales, F16 tensor '{scaleName}', are missing");
        long rows = tensor.Shape[0], blocks = Kernels.QuantizedMatMul.BlocksPerRow(tensor.Shape[1]);
        if (scale.DType != "F16" || scale.Shape.Length != 2 || scale.Shape[0] != rows || scale.Shape[1] != blocks)
            throw Invalid(path, scaleName, $"the scales of I8 tensor '{tensor.Name}' {tensor.ShapeText} must be F16 [{rows}, {blocks}], but are {scale.DType} {scale.ShapeText}");
        if (scale.End - scale.Begin != rows * blocks * sizeof(ushort))
            throw Invalid(path, scaleName, $"data_offsets [{scale.Begin}, {scale.End}] hold {scale.End - scale.Begin} bytes, but shape {scale.ShapeText} of F16 needs {rows * blocks * sizeof(ushort)}");
        return scale;
    }

    /// <summary>
    /// Reads an I8 matrix and its scales into <paramref name="destination"/> as the fp32 values <c>q·d</c>, a slab of
    /// rows at a time (about 64 KB of bytes), so loading allocates a bounded scratch whatever the matrix's size. Like
    /// F32 data, the values are not checked: a non-finite scale gives non-finite weights.
    /// </summary>
    private static void ReadInt8(SafeTensorsSource source, SafeTensorsHeader header, SafeTensorsEntry entry, SafeTensorsEntry scale, ParameterTensor tensor, Span<float> destination) =>
        ReadInt8(source, header, entry, source, header, scale, tensor, destination);

    /// <summary>As the overload above, with the scales in another file (a shard of a Hugging Face-layout checkpoint).</summary>
    internal static void ReadInt8(SafeTensorsSource source, SafeTensorsHeader header, SafeTensorsEntry entry,
        SafeTensorsSource scaleSource, SafeTensorsHeader scaleHeader, SafeTensorsEntry scale, ParameterTensor tensor, Span<float> destination)
    {
        int rows = tensor.Shape[0], cols = tensor.Shape[1], blocks = Kernels.QuantizedMatMul.BlocksPerRow(cols);
        int slab = Math.Max(1, Math.Min(rows, (1 << 16) / cols));
        var q = new sbyte[slab * cols];
        var scales = new Half[slab * blocks];
        for (int r0 = 0; r0 < rows; r0 += slab)
        {
            int count = Math.Min(slab, rows - r0);
            Span<sbyte> values = q.AsSpan(0, count * cols);
            Span<Half> steps = scales.AsSpan(0, count * blocks);
            ReadExactly(source, MemoryMarshal.AsBytes(values), header.DataStart + entry.Begin + (long)r0 * cols, $"tensor '{entry.Name}'");
            ReadExactly(scaleSource, MemoryMarshal.AsBytes(steps), scaleHeader.DataStart + scale.Begin + (long)r0 * blocks * sizeof(ushort), $"tensor '{scale.Name}'");
            Kernels.QuantizedMatMul.DequantizeRows(values, steps, count, cols, destination.Slice(r0 * cols, count * cols));
        }
    }

    /// <summary>
    /// The scales of the 8-bit tensors to be written packed (those <paramref name="packInt8"/> marks that the file holds
    /// in 8 bits), read and checked before anything is written: a packed matrix is used as it is, so a non-finite scale
    /// is refused here, as quantizing the fp32 values it stands for would refuse them. Null entries for the rest.
    /// </summary>
    private static Half[]?[] ReadScalesToPack(SafeTensorsSource source, SafeTensorsHeader header, IReadOnlyList<ParameterTensor> tensors,
        SafeTensorsEntry?[] scales, bool[]? packInt8)
    {
        var result = new Half[]?[tensors.Count];
        if (packInt8 is null) return result;
        if (packInt8.Length != tensors.Count) throw new ArgumentException($"{packInt8.Length} flags for {tensors.Count} tensors", nameof(packInt8));
        for (int i = 0; i < tensors.Count; i++)
        {
            if (!packInt8[i] || scales[i] is not { } scale) continue;
            var values = new Half[(scale.End - scale.Begin) / sizeof(ushort)];
            ReadExactly(source, MemoryMarshal.AsBytes(values.AsSpan()), header.DataStart + scale.Begin, $"tensor '{scale.Name}'");
            int blocks = Kernels.QuantizedMatMul.BlocksPerRow(tensors[i].Shape[1]);
            for (int j = 0; j < values.Length; j++)
                if (!Half.IsFinite(values[j]))
                    throw Invalid(source.Name, scale.Name, $"the scale of row {j / blocks}, block {j % blocks} is {values[j]}: 8-bit weights need finite scales");
            result[i] = values;
        }
        return result;
    }

    /// <summary>
    /// Reads an I8 matrix into <paramref name="destination"/> in the packed 8-bit form (<see cref="Kernels.QuantizedMatMul"/>),
    /// a panel of 64 rows at a time, with its <paramref name="scales"/> read already: the bytes quantizing its fp32 values
    /// q·d would give, without computing them.
    /// </summary>
    private static void ReadInt8Panels(SafeTensorsSource source, SafeTensorsHeader header, SafeTensorsEntry entry, Half[] scales, ParameterTensor tensor, Span<float> destination)
    {
        const int panelRows = Kernels.QuantizedMatMul.PanelWidth;
        int rows = tensor.Shape[0], cols = tensor.Shape[1], blocks = Kernels.QuantizedMatMul.BlocksPerRow(cols);
        int panelBytes = (int)Kernels.QuantizedMatMul.ByteCount(panelRows, cols);
        Span<byte> packed = MemoryMarshal.AsBytes(destination);
        var q = new sbyte[panelRows * cols];
        for (int r0 = 0, p = 0; r0 < rows; r0 += panelRows, p++)
        {
            int count = Math.Min(panelRows, rows - r0);
            Span<sbyte> values = q.AsSpan(0, count * cols);
            ReadExactly(source, MemoryMarshal.AsBytes(values), header.DataStart + entry.Begin + (long)r0 * cols, $"tensor '{entry.Name}'");
            Kernels.QuantizedMatMul.WritePanel(values, scales.AsSpan(r0 * blocks, count * blocks), count, cols, packed.Slice(p * panelBytes, panelBytes));
        }
    }
}
