using System;
using System.Numerics.Tensors;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

/// <summary>
/// Token embedding lookup, PyTorch's <c>nn.Embedding</c>, with an optional scale (the paper's √d_model); and one row added
/// to every position (BERT's token-type embedding for a single segment).
/// </summary>
public static class Embedding
{
    /// <summary>
    /// <c>output[i, :] = table[tokens[i], :]·scale</c>. A token outside <c>[0, vocab)</c> throws
    /// <see cref="ArgumentOutOfRangeException"/> naming its position and id (before anything is written).
    /// </summary>
    /// <param name="tokens">Token ids <c>[n]</c>.</param>
    /// <param name="table">Embedding table <c>[vocab, c]</c>.</param>
    /// <param name="output">Embeddings <c>[n, c]</c>, overwritten.</param>
    /// <param name="vocab">Rows of the table.</param>
    /// <param name="c">Embedding width.</param>
    /// <param name="scale">Factor applied to every looked-up row.</param>
    public static void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<float> table, Span<float> output, int vocab, int c, float scale = 1f)
    {
        SpanChecks.NonNegative(vocab, nameof(vocab));
        SpanChecks.NonNegative(c, nameof(c));
        SpanChecks.Length(table.Length, (long)vocab * c, nameof(table));
        SpanChecks.Length(output.Length, (long)tokens.Length * c, nameof(output));
        CheckTokens(tokens, vocab);
        for (int i = 0; i < tokens.Length; i++)
            TensorPrimitives.Multiply(table.Slice(tokens[i] * c, c), scale, output.Slice(i * c, c));
    }

    /// <summary>
    /// <see cref="Forward(ReadOnlySpan{int}, ReadOnlySpan{float}, Span{float}, int, int, float)"/> over a table that may be
    /// in the panel layout of <see cref="MatMul.PackPanels"/> (<paramref name="packed"/>): an output head tied to the
    /// embedding keeps the table that way in an inference instance. Row <c>t</c> is then column <c>t mod 64</c> of panel
    /// <c>t / 64</c>, read with a stride of 64, and the rows past the last whole panel are rows.
    /// </summary>
    public static void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<float> table, Span<float> output, int vocab, int c, float scale, bool packed)
    {
        if (!packed)
        {
            Forward(tokens, table, output, vocab, c, scale);
            return;
        }
        SpanChecks.NonNegative(vocab, nameof(vocab));
        SpanChecks.NonNegative(c, nameof(c));
        SpanChecks.Length(table.Length, (long)vocab * c, nameof(table));
        SpanChecks.Length(output.Length, (long)tokens.Length * c, nameof(output));
        CheckTokens(tokens, vocab);
        const int width = MatMul.PanelWidth;
        int wide = vocab - vocab % width;
        for (int i = 0; i < tokens.Length; i++)
        {
            int t = tokens[i];
            Span<float> row = output.Slice(i * c, c);
            if (t >= wide)
            {
                TensorPrimitives.Multiply(table.Slice(t * c, c), scale, row);
                continue;
            }
            ReadOnlySpan<float> panel = table.Slice(t / width * width * c, width * c);
            for (int k = 0, at = t % width; k < c; k++, at += width) row[k] = panel[at] * scale;
        }
    }

    /// <summary>
    /// Accumulates <c>dTable[tokens[i], :] += dOutput[i, :]·scale</c> (a token that appears twice gets both rows), except for
    /// lookups of <paramref name="paddingRow"/>, which pass no gradient back, as PyTorch's <c>nn.Embedding(padding_idx)</c>.
    /// The vocabulary size is <c>dTable.Length / c</c>.
    /// </summary>
    /// <param name="tokens">Token ids <c>[n]</c>.</param>
    /// <param name="dOutput">Gradient of the embeddings <c>[n, c]</c>.</param>
    /// <param name="dTable">Gradient of the table <c>[vocab, c]</c> (accumulated).</param>
    /// <param name="c">Embedding width.</param>
    /// <param name="scale">The forward scale.</param>
    /// <param name="paddingRow">The row whose lookups get no gradient, or −1 for none.</param>
    public static void Backward(ReadOnlySpan<int> tokens, ReadOnlySpan<float> dOutput, Span<float> dTable, int c, float scale = 1f, int paddingRow = -1)
    {
        SpanChecks.Positive(c, nameof(c));
        if (dTable.Length % c != 0)
            throw new ArgumentException($"{nameof(dTable)} has length {dTable.Length}, which is not a multiple of c = {c}.", nameof(dTable));
        SpanChecks.Length(dOutput.Length, (long)tokens.Length * c, nameof(dOutput));
        CheckTokens(tokens, dTable.Length / c);
        for (int i = 0; i < tokens.Length; i++)
        {
            if (tokens[i] == paddingRow) continue;
            Span<float> row = dTable.Slice(tokens[i] * c, c);
            TensorPrimitives.MultiplyAdd(dOutput.Slice(i * c, c), scale, row, row);
        }
    }

    /// <summary>
    /// Effectively computes <c>x[i, :] += row</c> for every row i, in place: BERT's token-type embedding when every token
    /// is of type 0 (one segment), <c>row</c> being row 0 of <c>token_type_embeddings</c>. Long inputs are split between
    /// threads by blocks of rows.
    /// </summary>
    /// <param name="x">Embeddings <c>[n, c]</c>, updated in place.</param>
    /// <param name="row">The row added to each <c>[c]</c>; must not overlap <paramref name="x"/>.</param>
    /// <param name="n">Rows.</param>
    /// <param name="c">Embedding width.</param>
    public static void AddRow(Span<float> x, ReadOnlySpan<float> row, int n, int c)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.NonNegative(c, nameof(c));
        SpanChecks.Length(x.Length, (long)n * c, nameof(x));
        SpanChecks.Length(row.Length, c, nameof(row));
        if (c == 0) return;
        int rowsPerBlock = Math.Max(1, Elementwise.ChunkFloats / c), blocks = (n + rowsPerBlock - 1) / rowsPerBlock;
        unsafe
        {
            fixed (float* px = x, pRow = row)
            {
                var work = new AddRowWork { X = px, Row = pRow, N = n, C = c, RowsPerBlock = rowsPerBlock };
                WorkerPool.For(ref work, blocks, Parallelism.ThreadsFor((long)AddRowCost * n * c, blocks));
            }
        }
    }

    /// <summary>
    /// The gradient of <see cref="AddRow"/>'s row: effectively computes <c>dRow[j] += Σ_i dx[i, j]</c>, adding the rows
    /// in order. Long inputs are split between threads by blocks of columns, each column still summed in row order, so
    /// the result does not depend on the thread count.
    /// </summary>
    /// <param name="dx">Gradient of the embeddings <c>[n, c]</c>.</param>
    /// <param name="dRow">Gradient of the added row <c>[c]</c> (accumulated).</param>
    /// <param name="n">Rows.</param>
    /// <param name="c">Embedding width.</param>
    public static void AddRowBackward(ReadOnlySpan<float> dx, Span<float> dRow, int n, int c)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.NonNegative(c, nameof(c));
        SpanChecks.Length(dx.Length, (long)n * c, nameof(dx));
        SpanChecks.Length(dRow.Length, c, nameof(dRow));
        int blocks = (c + ColumnBlock - 1) / ColumnBlock;
        unsafe
        {
            fixed (float* pdx = dx, pdRow = dRow)
            {
                var work = new AddRowBackwardWork { Dx = pdx, DRow = pdRow, N = n, C = c };
                WorkerPool.For(ref work, blocks, Parallelism.ThreadsFor((long)AddRowCost * n * c, blocks));
            }
        }
    }

    /// <summary>
    /// Effectively computes <c>x[i, :] += table[types[i], :]</c> for every row i, in place: BERT's token-type embedding of
    /// each token's segment (0 for the first sentence of a pair, 1 for the second). An id outside the table throws
    /// <see cref="ArgumentOutOfRangeException"/> naming its position (before anything is written).
    /// </summary>
    /// <param name="x">Embeddings <c>[types.Length, c]</c>, updated in place.</param>
    /// <param name="table">The token-type table <c>[typeVocab, c]</c>; must not overlap <paramref name="x"/>.</param>
    /// <param name="types">Each row's token type.</param>
    /// <param name="c">Embedding width.</param>
    public static void AddTypeRows(Span<float> x, ReadOnlySpan<float> table, ReadOnlySpan<int> types, int c)
    {
        SpanChecks.Positive(c, nameof(c));
        SpanChecks.Length(x.Length, (long)types.Length * c, nameof(x));
        CheckTypes(types, table.Length, c, nameof(table));
        for (int i = 0; i < types.Length; i++)
        {
            Span<float> xRow = x.Slice(i * c, c);
            TensorPrimitives.Add(xRow, table.Slice(types[i] * c, c), xRow);
        }
    }

    /// <summary>
    /// The gradient of <see cref="AddTypeRows"/> with respect to the table: <c>dTable[types[i], :] += dx[i, :]</c>, rows
    /// in order (the same sums on any thread count). The gradient of x passes through unchanged and is not touched.
    /// </summary>
    public static void AddTypeRowsBackward(ReadOnlySpan<float> dx, Span<float> dTable, ReadOnlySpan<int> types, int c)
    {
        SpanChecks.Positive(c, nameof(c));
        SpanChecks.Length(dx.Length, (long)types.Length * c, nameof(dx));
        CheckTypes(types, dTable.Length, c, nameof(dTable));
        for (int i = 0; i < types.Length; i++)
        {
            Span<float> row = dTable.Slice(types[i] * c, c);
            TensorPrimitives.Add(row, dx.Slice(i * c, c), row);
        }
    }

    private static void CheckTypes(ReadOnlySpan<int> types, int tableLength, int c, string table)
    {
        if (tableLength % c != 0) throw new ArgumentException($"{tableLength} floats are not whole rows of {c}", table);
        int typeVocab = tableLength / c;
        for (int i = 0; i < types.Length; i++)
            if ((uint)types[i] >= (uint)typeVocab)
                throw new ArgumentOutOfRangeException(nameof(types), types[i], $"Token type at position {i} is {types[i]}, outside the token-type table [0, {typeVocab}).");
    }

    // Work per element in Parallelism's units: a memory-bound add, as the residual's.
    private const int AddRowCost = 8;

    // Columns per block of AddRowBackward's split (a multiple of every vector width).
    private const int ColumnBlock = 64;

    private unsafe struct AddRowWork : IParallelWork
    {
        public float* X, Row;
        public int N, C, RowsPerBlock;

        public readonly void Execute(int item)
        {
            ReadOnlySpan<float> row = new(Row, C);
            int end = Math.Min(N, (item + 1) * RowsPerBlock);
            for (int i = item * RowsPerBlock; i < end; i++)
            {
                Span<float> xRow = new(X + (nint)i * C, C);
                TensorPrimitives.Add(xRow, row, xRow);
            }
        }
    }

    // dRow[j] += dx[i, j] for columns [j0, j1) of one block, row after row.
    private unsafe struct AddRowBackwardWork : IParallelWork
    {
        public float* Dx, DRow;
        public int N, C;

        public readonly void Execute(int item)
        {
            int j0 = item * ColumnBlock, length = Math.Min(C - j0, ColumnBlock);
            Span<float> sum = new(DRow + j0, length);
            for (int i = 0; i < N; i++)
                TensorPrimitives.Add(sum, new ReadOnlySpan<float>(Dx + (nint)i * C + j0, length), sum);
        }
    }

    private static void CheckTokens(ReadOnlySpan<int> tokens, int vocab)
    {
        for (int i = 0; i < tokens.Length; i++)
        {
            int id = tokens[i];
            if ((uint)id >= (uint)vocab)
                throw new ArgumentOutOfRangeException(nameof(tokens), id, $"Token at position {i} is {id}, outside the vocabulary [0, {vocab}).");
        }
    }
}
