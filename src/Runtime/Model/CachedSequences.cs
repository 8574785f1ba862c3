using System;

namespace TransformerGen;

/// <summary>
/// The sequences of one call to a decoder-only model's cached inference pass: their new tokens lie end to end, sequence
/// s has <see cref="Lengths"/>[s] of them, continues at position <see cref="Positions"/>[s] (the length its cache held
/// before the call) and keeps its keys and values in cache slot <see cref="Slots"/>[s].
/// </summary>
public readonly ref struct CachedSequences
{
    /// <summary>Describes <paramref name="lengths"/>.Length sequences; the three spans have one entry per sequence.</summary>
    public CachedSequences(ReadOnlySpan<int> lengths, ReadOnlySpan<int> positions, ReadOnlySpan<int> slots)
    {
        if (positions.Length != lengths.Length || slots.Length != lengths.Length)
            throw new ArgumentException($"{lengths.Length} lengths need as many positions and slots (got {positions.Length} and {slots.Length})");
        Lengths = lengths;
        Positions = positions;
        Slots = slots;
    }

    /// <summary>New tokens of each sequence, each at least 1.</summary>
    public ReadOnlySpan<int> Lengths { get; }

    /// <summary>The position of each sequence's first new token: how many it had cached.</summary>
    public ReadOnlySpan<int> Positions { get; }

    /// <summary>The key/value cache slot of each sequence, 0 to Sequences − 1, no two alike.</summary>
    public ReadOnlySpan<int> Slots { get; }

    /// <summary>Sequences in the call.</summary>
    public int Count => Lengths.Length;
}
