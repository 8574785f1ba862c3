using System;
using System.Buffers.Binary;
using System.IO;
using System.Linq;
using Xunit;

namespace TransformerGen.Tests.Data;

/// <summary>Token files (header, uint16/uint32 ids, atomic writing) and batches sampled from them through a memory map.</summary>
public sealed class TokenFileTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("transformergen-tokens-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string File(string name) => Path.Combine(_folder, name);

    [Theory]
    [InlineData(1000, 2)]
    [InlineData(65536, 2)]
    [InlineData(65537, 4)]
    [InlineData(100_000, 4)]
    public void Ids_round_trip_at_the_width_the_vocabulary_needs(int vocab, int width)
    {
        var rng = new Rng(7);
        int[] ids = Enumerable.Range(0, 10_001).Select(i => i < 2 ? (i == 0 ? 0 : vocab - 1) : rng.NextInt(vocab)).ToArray();
        string path = File("ids.tokens");
        TokenFileWriter.Write(path, ids, vocab);

        byte[] bytes = System.IO.File.ReadAllBytes(path);
        Assert.Equal(TokenFile.HeaderSize + ids.Length * width, bytes.Length);
        Assert.Equal("TGTOKENS"u8.ToArray(), bytes[..8]);
        Assert.Equal(width, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(12)));
        // Little-endian ids right after the header, as a reader in any language would take them.
        int third = width == 2 ? BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(32 + 2 * width)) : (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(32 + 2 * width));
        Assert.Equal(ids[2], third);

        // Allocations on this thread from opening to the last batch (the whole process's total would count the other
        // tests running beside this one).
        long opened = GC.GetAllocatedBytesForCurrentThread();
        using TokenFile file = TokenFile.Open(path);
        Assert.Equal((width, vocab, (long)ids.Length), (file.BytesPerToken, file.VocabSize, file.Count));
        var back = new int[ids.Length];
        file.CopyTo(0, back);
        Assert.Equal(ids, back);
        Assert.Equal(ids[^1], file[ids.Length - 1]);
        var middle = new int[100];
        file.CopyTo(4321, middle);
        Assert.Equal(ids.AsSpan(4321, 100).ToArray(), middle);
        Assert.Throws<ArgumentOutOfRangeException>(() => file.CopyTo(ids.Length - 99, middle));
        Assert.Throws<ArgumentOutOfRangeException>(() => file[ids.Length]);
    }

    [Fact]
    public void A_writer_appends_in_pieces_refuses_ids_outside_the_vocabulary_and_leaves_nothing_when_not_completed()
    {
        string path = File("pieces.tokens");
        using (var writer = new TokenFileWriter(path, 50))
        {
            writer.Append([1, 2, 3]);
            writer.Append(Enumerable.Range(0, 70_000).Select(i => i % 50).ToArray()); // more than the writer's buffer
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => writer.Append([4, 50]));
            Assert.Contains("id 50 at position 70,004 is outside the vocabulary [0, 50)", e.Message);
            Assert.False(System.IO.File.Exists(path)); // nothing at the target before Complete
        }
        Assert.False(System.IO.File.Exists(path));
        Assert.Empty(Directory.GetFiles(_folder)); // the temporary file is gone too

        System.IO.File.WriteAllText(path, "an older file");
        using (var writer = new TokenFileWriter(path, 50))
        {
            writer.Append([1, 2, 3]);
            writer.Append([49]);
            Assert.Equal("an older file", System.IO.File.ReadAllText(path)); // replaced only at Complete
            writer.Complete();
        }
        // Allocations on this thread from opening to the last batch (the whole process's total would count the other
        // tests running beside this one).
        long opened = GC.GetAllocatedBytesForCurrentThread();
        using TokenFile file = TokenFile.Open(path);
        var ids = new int[4];
        file.CopyTo(0, ids);
        Assert.Equal([1, 2, 3, 49], ids);
        Assert.Single(Directory.GetFiles(_folder));
    }

    [Fact]
    public void Damaged_files_are_refused_with_the_reason()
    {
        string path = File("ok.tokens");
        TokenFileWriter.Write(path, [1, 2, 3, 4, 5], 10);
        byte[] good = System.IO.File.ReadAllBytes(path);

        System.IO.File.WriteAllBytes(File("short.tokens"), good[..^1]);
        Assert.Contains("cut short", Assert.Throws<InvalidDataException>(() => TokenFile.Open(File("short.tokens"))).Message);

        byte[] magic = (byte[])good.Clone();
        magic[0] = (byte)'X';
        System.IO.File.WriteAllBytes(File("magic.tokens"), magic);
        Assert.Contains("not a token file", Assert.Throws<InvalidDataException>(() => TokenFile.Open(File("magic.tokens"))).Message);

        byte[] version = (byte[])good.Clone();
        version[8] = 9;
        System.IO.File.WriteAllBytes(File("version.tokens"), version);
        Assert.Contains("version 9", Assert.Throws<InvalidDataException>(() => TokenFile.Open(File("version.tokens"))).Message);

        System.IO.File.WriteAllBytes(File("header.tokens"), good[..20]);
        Assert.Contains("shorter than", Assert.Throws<InvalidDataException>(() => TokenFile.Open(File("header.tokens"))).Message);
    }

    [Fact]
    public void Batches_are_windows_of_the_range_with_targets_shifted_by_one_and_repeat_from_the_same_seed()
    {
        const int seqLen = 8, rows = 5;
        int[] ids = Enumerable.Range(0, 1000).ToArray(); // an id is its position, so every window shows where it came from
        string path = File("range.tokens");
        TokenFileWriter.Write(path, ids, 1000);
        // Allocations on this thread from opening to the last batch (the whole process's total would count the other
        // tests running beside this one).
        long opened = GC.GetAllocatedBytesForCurrentThread();
        using TokenFile file = TokenFile.Open(path);
        var sampler = new TokenBatchSampler(file, seqLen, start: 900, end: 1000);
        var tokens = new int[rows * seqLen];
        var targets = new int[rows * seqLen];
        var rng = new Rng(3);
        int lowest = int.MaxValue, highest = 0;
        for (int draw = 0; draw < 200; draw++)
        {
            sampler.Sample(rng, tokens, targets);
            for (int r = 0; r < rows; r++)
            {
                int first = tokens[r * seqLen];
                for (int i = 0; i < seqLen; i++)
                {
                    Assert.Equal(first + i, tokens[r * seqLen + i]);
                    Assert.Equal(first + i + 1, targets[r * seqLen + i]);
                }
                lowest = Math.Min(lowest, first);
                highest = Math.Max(highest, targets[r * seqLen + seqLen - 1]);
            }
        }
        Assert.Equal(900, lowest); // every start is drawn, the first and last window included
        Assert.Equal(999, highest);

        var again = new int[rows * seqLen];
        var againTargets = new int[rows * seqLen];
        new TokenBatchSampler(file, seqLen).Sample(new Rng(11), tokens, targets);
        new TokenBatchSampler(file, seqLen).Sample(new Rng(11), again, againTargets);
        Assert.Equal(tokens, again);
        Assert.Equal(targets, againTargets);

        Assert.Throws<ArgumentException>(() => new TokenBatchSampler(file, seqLen, start: 995));
        Assert.Throws<ArgumentException>(() => sampler.Sample(rng, tokens, new int[seqLen]));
    }

    /// <summary>
    /// A corpus of 2^31 + 2^20 uint16 ids (4 GiB, sparse on disk: zeros but for marked ids near the start, past 2^31 and at
    /// the end) is sampled through the memory map: ids past int.MaxValue are reached, and a thousand batches allocate
    /// nothing, and opening and sampling it allocate under a megabyte on the calling thread: the file is never read whole.
    /// </summary>
    [Fact]
    public void A_corpus_larger_than_what_the_process_allocates_is_sampled_with_constant_memory()
    {
        const long count = (1L << 31) + (1 << 20);
        string path = File("huge.tokens");
        using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            var header = new byte[TokenFile.HeaderSize];
            "TGTOKENS"u8.CopyTo(header);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), TokenFile.Version);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(12), 2);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(16), 50257);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(24), count);
            stream.Write(header);
            stream.SetLength(TokenFile.HeaderSize + 2 * count); // the rest is a hole: zeros that take no disk
            foreach (long at in new[] { 5L, (1L << 31) + 7, count - 3 })
            {
                stream.Position = TokenFile.HeaderSize + 2 * at;
                stream.Write([0x50, 0xC4]); // 50256 = 0xC450, GPT-2's <|endoftext|>, little-endian
            }
        }
        Assert.True(new FileInfo(path).Length > 4L << 30);

        // Allocations on this thread from opening to the last batch (the whole process's total would count the other
        // tests running beside this one).
        long opened = GC.GetAllocatedBytesForCurrentThread();
        using TokenFile file = TokenFile.Open(path);
        Assert.Equal(count, file.Count);
        Assert.Equal(0xC450, file[5]);
        Assert.Equal(0xC450, file[(1L << 31) + 7]); // an index past int.MaxValue
        Assert.Equal(0xC450, file[count - 3]);
        Assert.Equal(0, file[(1L << 31) + 8]);

        const int seqLen = 64, rows = 16;
        var sampler = new TokenBatchSampler(file, seqLen);
        var tokens = new int[rows * seqLen];
        var targets = new int[rows * seqLen];
        var rng = new Rng(1);
        sampler.Sample(rng, tokens, targets); // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int batch = 0; batch < 1000; batch++) sampler.Sample(rng, tokens, targets);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        long total = GC.GetAllocatedBytesForCurrentThread() - opened;
        Assert.True(total < 1 << 20, $"opening and sampling allocated {total:N0} bytes against a file of {new FileInfo(path).Length:N0}");
    }
}
