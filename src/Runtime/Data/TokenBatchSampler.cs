using System;

namespace TransformerGen;

/// <summary>
/// Draws training batches from a range of a <see cref="TokenFile"/>: windows of <c>SeqLen + 1</c> ids at uniformly random
/// starts, the first <c>SeqLen</c> as the model's input and the last <c>SeqLen</c> as its targets (nanoGPT's
/// <c>get_batch</c>). The ids are copied out of the memory map into the caller's buffers, so sampling allocates nothing
/// and a corpus of any size is sampled with constant memory. The draws come from the caller's <see cref="Rng"/>, whose
/// state a training checkpoint saves, so a resumed run draws the batches it would have drawn.
/// </summary>
public sealed class TokenBatchSampler
{
    private readonly TokenFile _file;
    private readonly long _start, _windows;

    /// <summary>Samples windows of <paramref name="seqLen"/> + 1 ids lying wholly in ids <c>[start, end)</c> of <paramref name="file"/>.</summary>
    /// <exception cref="ArgumentException">The range is outside the file or shorter than one window.</exception>
    public TokenBatchSampler(TokenFile file, int seqLen, long start = 0, long end = -1)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentOutOfRangeException.ThrowIfLessThan(seqLen, 1);
        if (end < 0) end = file.Count;
        if (start < 0 || end > file.Count || start > end)
            throw new ArgumentException($"ids [{start:N0}, {end:N0}) are not a range of {file.Path} ({file.Count:N0} ids)");
        if (end - start < seqLen + 1)
            throw new ArgumentException($"ids [{start:N0}, {end:N0}) of {file.Path} are {end - start:N0}, fewer than one window of SeqLen + 1 = {seqLen + 1}");
        _file = file;
        SeqLen = seqLen;
        _start = start;
        _windows = end - start - seqLen; // starts s with s + seqLen + 1 <= end
    }

    /// <summary>The window's length (the model's SeqLen).</summary>
    public int SeqLen { get; }

    /// <summary>Fills <paramref name="tokens"/> and <paramref name="targets"/> (equal lengths, a multiple of <see cref="SeqLen"/>) with one random window per row.</summary>
    public void Sample(Rng rng, Span<int> tokens, Span<int> targets)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (tokens.Length != targets.Length || tokens.Length % SeqLen != 0)
            throw new ArgumentException($"tokens ({tokens.Length}) and targets ({targets.Length}) must be equally long, a multiple of SeqLen = {SeqLen}");
        for (int row = 0; row < tokens.Length / SeqLen; row++)
        {
            long at = _start + NextLong(rng, _windows);
            Span<int> input = tokens.Slice(row * SeqLen, SeqLen);
            _file.CopyTo(at, input);
            input[1..].CopyTo(targets.Slice(row * SeqLen, SeqLen - 1));
            targets[row * SeqLen + SeqLen - 1] = _file[at + SeqLen];
        }
    }

    /// <summary>A long uniform in [0, <paramref name="maxExclusive"/>): 64 random bits scaled by a multiply-high (bias below 2^-64 · max).</summary>
    private static long NextLong(Rng rng, long maxExclusive)
    {
        ulong bits = ((ulong)rng.NextUInt32() << 32) | rng.NextUInt32();
        return (long)Math.BigMul(bits, (ulong)maxExclusive, out _);
    }
}
