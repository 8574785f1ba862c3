using System;

namespace TransformerGen.Kernels;

/// <summary>
/// The argument checks every kernel runs once at entry: sizes must not be negative and each span must have
/// exactly the length its sizes imply (or at least that length, for caches and scratch). Nothing is checked per
/// element inside the loops.
/// </summary>
internal static class SpanChecks
{
    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> when a size is negative.</summary>
    public static void NonNegative(int size, string name)
    {
        if (size < 0) throw new ArgumentOutOfRangeException(name, size, $"{name} must not be negative.");
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> when a size is not positive.</summary>
    public static void Positive(int size, string name)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(name, size, $"{name} must be positive.");
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming <paramref name="name"/> unless <paramref name="actual"/> == <paramref name="expected"/>.</summary>
    public static void Length(int actual, long expected, string name)
    {
        if (actual != expected)
            throw new ArgumentException($"{name} has length {actual}, but the given sizes need length {expected}.", name);
    }

    /// <summary>Like <see cref="Length"/>, but an empty span is also accepted (an optional tensor that is absent).</summary>
    public static void LengthOrEmpty(int actual, long expected, string name)
    {
        if (actual != 0 && actual != expected)
            throw new ArgumentException($"{name} has length {actual}, but the given sizes need length {expected} (or 0 when absent).", name);
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming <paramref name="name"/> when <paramref name="actual"/> &lt; <paramref name="minimum"/>.</summary>
    public static void AtLeast(int actual, long minimum, string name)
    {
        if (actual < minimum)
            throw new ArgumentException($"{name} has length {actual}, but the given sizes need length at least {minimum}.", name);
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless two spans that are read and written element by element have the same length.</summary>
    public static void SameLength(int actual, int expected, string name, string otherName)
    {
        if (actual != expected)
            throw new ArgumentException($"{name} has length {actual}, but {otherName} has length {expected}; they must match.", name);
    }

    /// <summary>
    /// The tokens of sequences laid end to end, <c>Σ lengths</c>, and the longest; throws
    /// <see cref="ArgumentOutOfRangeException"/> naming the sequence when a length is below 1.
    /// </summary>
    public static long Sequences(ReadOnlySpan<int> lengths, string name, out int longest)
    {
        long total = 0;
        longest = 0;
        for (int s = 0; s < lengths.Length; s++)
        {
            if (lengths[s] < 1) throw new ArgumentOutOfRangeException(name, lengths[s], $"{name}[{s}] = {lengths[s]}: a sequence has at least one token.");
            total += lengths[s];
            longest = Math.Max(longest, lengths[s]);
        }
        return total;
    }
}
