using System;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace TransformerGen;

/// <summary>
/// A small deterministic random number generator (xoshiro128**, seeded through SplitMix64), so that the same
/// seed gives bit-identical initialization, dropout masks and sampling on every machine and runtime.
/// </summary>
/// <remarks>
/// Algorithms from Blackman and Vigna, "Scrambled linear pseudorandom number generators" (2018);
/// SplitMix64 from Steele, Lea and Flood (2014). <see cref="System.Random"/> is not used because its
/// sequence for a given seed is not a documented contract across .NET versions.
/// </remarks>
public sealed class Rng
{
    private uint _s0, _s1, _s2, _s3;

    /// <summary>Creates a generator whose whole sequence is fixed by <paramref name="seed"/>.</summary>
    public Rng(ulong seed) => Reseed(seed);

    /// <summary>Restarts the sequence from <paramref name="seed"/>.</summary>
    public void Reseed(ulong seed)
    {
        ulong x = seed;
        ulong a = SplitMix64(ref x), b = SplitMix64(ref x);
        _s0 = (uint)a; _s1 = (uint)(a >> 32); _s2 = (uint)b; _s3 = (uint)(b >> 32);
        if ((_s0 | _s1 | _s2 | _s3) == 0) _s0 = 1; // the all-zero state is the one xoshiro cannot leave
    }

    /// <summary>
    /// The generator's whole state: assigning a state read earlier continues the sequence from that point, bit for bit
    /// (a training checkpoint saves the states of dropout and of data sampling this way).
    /// </summary>
    /// <exception cref="ArgumentException">The assigned state is all zero, the one state xoshiro128** cannot leave (no seed produces it).</exception>
    public RngState State
    {
        get => new(_s0, _s1, _s2, _s3);
        set
        {
            if ((value.S0 | value.S1 | value.S2 | value.S3) == 0)
                throw new ArgumentException("the all-zero state is not a state of xoshiro128** (no seed produces it)", nameof(value));
            (_s0, _s1, _s2, _s3) = (value.S0, value.S1, value.S2, value.S3);
        }
    }

    private static ulong SplitMix64(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The next 32 random bits.</summary>
    public uint NextUInt32() => Advance(ref _s0, ref _s1, ref _s2, ref _s3);

    // One step of xoshiro128**: the output of the state, and the state moved on. Inlined over locals (FillNormal's
    // loop), the state stays in registers; over the fields, it is loaded and stored at every draw (3 times slower).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Advance(ref uint s0, ref uint s1, ref uint s2, ref uint s3)
    {
        uint result = RotateLeft(s1 * 5, 7) * 9;
        uint t = s1 << 9;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3;
        s2 ^= t;
        s3 = RotateLeft(s3, 11);
        return result;
    }

    private static uint RotateLeft(uint x, int k) => (x << k) | (x >> (32 - k));

    /// <summary>A float uniform in [0, 1), with 24 random bits.</summary>
    public float NextFloat() => (NextUInt32() >> 8) * (1.0f / 16777216.0f);

    /// <summary>An integer uniform in [0, <paramref name="maxExclusive"/>).</summary>
    public int NextInt(int maxExclusive)
    {
        if (maxExclusive <= 0) throw new ArgumentOutOfRangeException(nameof(maxExclusive), maxExclusive, "must be positive");
        // Lemire's multiply-shift; the bias is below 2^-32 · maxExclusive, negligible for the sizes used here.
        return (int)(((ulong)NextUInt32() * (ulong)maxExclusive) >> 32);
    }

    /// <summary>A standard normal sample (Box–Muller), computed in double for accuracy.</summary>
    public float NextNormal() => BoxMuller.Scalar(NextUInt32(), NextUInt32());

    /// <summary>
    /// <c>values[i] = NextNormal() · scale</c> for every i in order, the same values and the same state afterwards: the
    /// draws are taken in order, a chunk at a time, and their logarithms and cosines computed four at a time
    /// (<see cref="BoxMuller.Fill"/>, the same floats) on the kernels' threads.
    /// </summary>
    /// <remarks>
    /// Compiled optimized from the first call: a model's initialization is the one call, and its loops would otherwise
    /// start in unoptimized code.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void FillNormal(Span<float> values, float scale)
    {
        const int Chunk = 1 << 16;
        var draws = new ulong[Math.Min(Chunk, values.Length)];
        for (int start = 0; start < values.Length; start += Chunk)
        {
            int count = Math.Min(Chunk, values.Length - start);
            uint s0 = _s0, s1 = _s1, s2 = _s2, s3 = _s3;
            for (int i = 0; i < count; i++)
            {
                uint a = Advance(ref s0, ref s1, ref s2, ref s3);
                draws[i] = a | (ulong)Advance(ref s0, ref s1, ref s2, ref s3) << 32;
            }
            (_s0, _s1, _s2, _s3) = (s0, s1, s2, s3);
            unsafe
            {
                fixed (ulong* d = draws)
                fixed (float* v = values.Slice(start, count))
                {
                    var work = new NormalWork { Draws = d, Values = v, Scale = scale, Count = count };
                    int pieces = (count + NormalWork.Piece - 1) / NormalWork.Piece;
                    // Initialization writes a new model's weights for the first time.
                    Threading.WorkerPool.For(ref work, pieces, Parallelism.ThreadsFor(NormalWork.CostPerValue * count, pieces), writesFreshPages: true);
                }
            }
        }
    }

    private unsafe struct NormalWork : Threading.IParallelWork
    {
        public const int Piece = 4096;
        // About 2 ns a value on one core: some 300 operations in Parallelism.ThreadsFor's units (1 M in 7 µs).
        public const long CostPerValue = 300;
        public ulong* Draws;
        public float* Values;
        public float Scale;
        public int Count;

        public readonly void Execute(int item)
        {
            int start = item * Piece, length = Math.Min(Count, start + Piece) - start;
            BoxMuller.Fill(new ReadOnlySpan<ulong>(Draws + start, length), new Span<float>(Values + start, length), Scale);
        }
    }
}

/// <summary>The four 32-bit words of an <see cref="Rng"/>'s state; <see cref="ToString"/> and <see cref="Parse"/> give it as 32 hex digits.</summary>
public readonly record struct RngState(uint S0, uint S1, uint S2, uint S3)
{
    /// <summary>The state as 32 lowercase hex digits, <see cref="S0"/> first.</summary>
    public override string ToString() => $"{S0:x8}{S1:x8}{S2:x8}{S3:x8}";

    /// <summary>Reads the form <see cref="ToString"/> writes.</summary>
    /// <exception cref="FormatException"><paramref name="text"/> is not 32 hex digits.</exception>
    public static RngState Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length != 32) throw new FormatException($"an Rng state is 32 hex digits, got '{text}'");
        var words = new uint[4];
        for (int i = 0; i < 4; i++)
            if (!uint.TryParse(text.AsSpan(8 * i, 8), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out words[i]))
                throw new FormatException($"an Rng state is 32 hex digits, got '{text}'");
        return new RngState(words[0], words[1], words[2], words[3]);
    }
}
