using System;
using System.Numerics.Tensors;

namespace TransformerGen.Kernels;

/// <summary>Token embedding lookup, PyTorch's <c>nn.Embedding</c>, with an optional scale (the paper's √d_model).</summary>
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
    /// Accumulates <c>dTable[tokens[i], :] += dOutput[i, :]·scale</c> (a token that appears twice gets both rows).
    /// The vocabulary size is <c>dTable.Length / c</c>.
    /// </summary>
    /// <param name="tokens">Token ids <c>[n]</c>.</param>
    /// <param name="dOutput">Gradient of the embeddings <c>[n, c]</c>.</param>
    /// <param name="dTable">Gradient of the table <c>[vocab, c]</c> (accumulated).</param>
    /// <param name="c">Embedding width.</param>
    /// <param name="scale">The forward scale.</param>
    public static void Backward(ReadOnlySpan<int> tokens, ReadOnlySpan<float> dOutput, Span<float> dTable, int c, float scale = 1f)
    {
        SpanChecks.Positive(c, nameof(c));
        if (dTable.Length % c != 0)
            throw new ArgumentException($"{nameof(dTable)} has length {dTable.Length}, which is not a multiple of c = {c}.", nameof(dTable));
        SpanChecks.Length(dOutput.Length, (long)tokens.Length * c, nameof(dOutput));
        CheckTokens(tokens, dTable.Length / c);
        for (int i = 0; i < tokens.Length; i++)
        {
            Span<float> row = dTable.Slice(tokens[i] * c, c);
            TensorPrimitives.MultiplyAdd(dOutput.Slice(i * c, c), scale, row, row);
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
