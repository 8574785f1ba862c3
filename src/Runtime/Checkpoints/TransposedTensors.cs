using System;
using System.IO;
using System.Runtime.InteropServices;

namespace TransformerGen;

/// <summary>
/// Moves a 2-D tensor between the <c>[out, in]</c> layout a model computes with and the <c>[in, out]</c> layout a
/// checkpoint stores (GPT-2's <c>Conv1D</c> weights, <see cref="ParameterTensor.StoredTransposed"/>), through one
/// fixed-size scratch buffer: never a second copy of the tensor.
/// </summary>
/// <remarks>
/// The stored tensor is walked in blocks that are contiguous in the file: as many whole stored rows as fit in the
/// scratch, or, when one row does not fit, a piece of a single row. Each block is read (or written) with one call,
/// and scattered (or gathered) column by column, so the model-side accesses are runs of contiguous floats.
/// </remarks>
internal static class TransposedTensors
{
    /// <summary>Elements per block: 64 KB of floats, small enough to stay in cache while it is scattered.</summary>
    internal const int BlockElements = 16 * 1024;

    /// <summary>
    /// The scratch of a load, reused for every tensor: <see cref="Bytes"/> holds F16/BF16 bytes before conversion (also
    /// for <see cref="SafeTensors.ReadTensor"/>), <see cref="Values"/> a block of a transposed tensor. Each is allocated
    /// at its first use, 64 KB.
    /// </summary>
    internal sealed class Scratch
    {
        public byte[]? Bytes;
        public float[]? Values;
    }

    /// <summary>
    /// Reads the stored <c>[<paramref name="inFeatures"/>, <paramref name="outFeatures"/>]</c> tensor
    /// <paramref name="entry"/> (F32, F16 or BF16), whose data starts at <paramref name="position"/>, into
    /// <paramref name="destination"/> laid out <c>[<paramref name="outFeatures"/>, <paramref name="inFeatures"/>]</c>.
    /// </summary>
    public static void Read(SafeTensorsSource source, long position, SafeTensorsEntry entry, Span<float> destination,
        int outFeatures, int inFeatures, Scratch scratch)
    {
        scratch.Values ??= new float[BlockElements];
        int elementSize = SafeTensors.ElementSize(entry.DType);
        string what = $"tensor '{entry.Name}'";
        int rows = inFeatures, columns = outFeatures; // of the stored tensor
        for (Block block = Block.First(rows, columns); block.Row0 < rows; block = block.Next(rows, columns))
        {
            int width = block.Col1 - block.Col0, height = block.Row1 - block.Row0;
            Span<float> values = scratch.Values.AsSpan(0, width * height);
            long at = position + ((long)block.Row0 * columns + block.Col0) * elementSize;
            if (elementSize == sizeof(float))
            {
                SafeTensors.ReadExactly(source, MemoryMarshal.AsBytes(values), at, what);
            }
            else
            {
                scratch.Bytes ??= new byte[BlockElements * sizeof(float)];
                Span<byte> raw = scratch.Bytes.AsSpan(0, values.Length * 2);
                SafeTensors.ReadExactly(source, raw, at, what);
                SafeTensors.ConvertHalfToSingle(entry.DType, raw, values);
            }
            // Stored element (r, c) is the model's (c, r): column c of the block is a run of the model's row c.
            for (int c = 0; c < width; c++)
            {
                Span<float> run = destination.Slice((block.Col0 + c) * rows + block.Row0, height);
                for (int r = 0; r < height; r++) run[r] = values[r * width + c];
            }
        }
    }

    /// <summary>
    /// Writes <paramref name="values"/>, laid out <c>[<paramref name="outFeatures"/>, <paramref name="inFeatures"/>]</c>,
    /// to <paramref name="stream"/> as F32 <c>[<paramref name="inFeatures"/>, <paramref name="outFeatures"/>]</c>.
    /// </summary>
    public static void Write(Stream stream, ReadOnlySpan<float> values, int outFeatures, int inFeatures, ref float[]? scratch)
    {
        scratch ??= new float[BlockElements];
        int rows = inFeatures, columns = outFeatures; // of the stored tensor
        for (Block block = Block.First(rows, columns); block.Row0 < rows; block = block.Next(rows, columns))
        {
            int width = block.Col1 - block.Col0, height = block.Row1 - block.Row0;
            Span<float> stored = scratch.AsSpan(0, width * height);
            for (int c = 0; c < width; c++)
            {
                ReadOnlySpan<float> run = values.Slice((block.Col0 + c) * rows + block.Row0, height);
                for (int r = 0; r < height; r++) stored[r * width + c] = run[r];
            }
            stream.Write(MemoryMarshal.AsBytes(stored));
        }
    }

    /// <summary>Stored rows [Row0, Row1) × columns [Col0, Col1): whole rows, or a piece of one row; Row0 = rows past the end.</summary>
    private readonly record struct Block(int Row0, int Row1, int Col0, int Col1)
    {
        public static Block First(int rows, int columns) => At(0, 0, rows, columns);

        public Block Next(int rows, int columns) => Col1 < columns ? At(Row0, Col1, rows, columns) : At(Row1, 0, rows, columns);

        private static Block At(int row, int column, int rows, int columns)
        {
            if (row >= rows) return new Block(rows, rows, 0, 0);
            if (columns <= BlockElements) return new Block(row, Math.Min(rows, row + BlockElements / columns), 0, columns);
            return new Block(row, row + 1, column, Math.Min(columns, column + BlockElements));
        }
    }
}
