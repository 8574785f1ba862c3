using System;

namespace TransformerGen.Kernels;

/// <summary>
/// The masks attention and pooling take, as bytes with 1 = padding and 0 = a real token (PyTorch's boolean
/// <c>key_padding_mask</c>, where <c>True</c> marks a key that is not attended to).
/// </summary>
public static class Masks
{
    /// <summary>Effectively computes <c>padding[i] = tokens[i] == padToken ? 1 : 0</c>.</summary>
    /// <param name="tokens">Token ids, any shape (e.g. <c>[batch, seqLen]</c>).</param>
    /// <param name="padToken">The padding token id.</param>
    /// <param name="padding">The mask, the same length as <paramref name="tokens"/> (overwritten).</param>
    public static void KeyPadding(ReadOnlySpan<int> tokens, int padToken, Span<byte> padding)
    {
        SpanChecks.SameLength(padding.Length, tokens.Length, nameof(padding), nameof(tokens));
        for (int i = 0; i < tokens.Length; i++)
            padding[i] = tokens[i] == padToken ? (byte)1 : (byte)0;
    }
}
