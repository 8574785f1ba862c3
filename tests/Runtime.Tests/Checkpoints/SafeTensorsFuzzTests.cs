using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Tests.Checkpoints;

/// <summary>
/// Hostile safetensors files: thousands of mutations of one valid checkpoint, each loaded into a buffer. Every attempt
/// must either load, and then hold exactly the values that the mutated bytes describe (decoded here independently of
/// the loader), or be rejected with <see cref="InvalidDataException"/> naming the file, the buffer untouched, and no
/// large allocation on the way. Nothing else may escape: no IndexOutOfRange, NullReference, Overflow, OutOfMemory or
/// JSON exception. Each file is also loaded with <c>strict: false</c> (then tensors may be missing or unexpected, and
/// the report must name them) and through the header-only metadata reader, and every 16th from a file on disk too.
/// </summary>
/// <remarks>
/// The mutations are deterministic (one seed) and grouped by what they attack: truncation at every length, byte flips
/// anywhere, the header length field, edits of the JSON header (offsets swapped, overlapping, out of range, leaving
/// gaps; shapes disagreeing with offsets; unknown and half-precision dtypes; duplicate names and fields; deep nesting;
/// huge numbers; names, fields and metadata removed, renamed or retyped; invalid UTF-8; random character edits), and
/// stacks of several. Where the outcome is known (a flip inside the tensor data must still load; a truncated file
/// must not), it is asserted; elsewhere either outcome is fine, as long as it is one of the two above.
/// </remarks>
public sealed class SafeTensorsFuzzTests(ITestOutputHelper output) : IDisposable
{
    private const ulong Seed = 0x5AFE_7E45_0F_F11E5UL;
    private const string StreamName = "fuzzed.safetensors";

    /// <summary>No attempt may allocate more than this (the files are under 1 KB; the half-precision scratch is 64 KiB).</summary>
    private const long AllocationLimit = 512 * 1024;

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "tg-safetensors-fuzz-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    /// <summary>Odd shapes, none a multiple of a vector width; 53 floats in all.</summary>
    private static readonly List<ParameterTensor> Table = TensorTables.Table(("embed.weight", [5, 3]), ("norm.bias", [7]), ("scale", [1]), ("block.0.w", [3, 1, 4]), ("head", [2, 9]));

    private static readonly int BufferLength = Table.Sum(t => t.Length);

    private enum Expect { Load, Reject, Either }

    private sealed record Mutation(string Category, string What, byte[] Bytes, Expect Expect);

    [Fact]
    public void EveryMutatedFileLoadsExactlyWhatItSaysOrIsRejectedWithTheBufferUntouched()
    {
        byte[] original = SaveOriginal();
        var attempts = new Dictionary<string, int>();
        var outcomes = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var failures = new List<string>();
        long largestAllocation = 0;
        int index = 0;

        foreach (Mutation mutation in Mutations(original, new Rng(Seed)))
        {
            attempts[mutation.Category] = attempts.GetValueOrDefault(mutation.Category) + 1;
            string? failure = Attempt(mutation, crossCheckWithFile: index++ % 16 == 0, out string outcome, out long allocated);
            largestAllocation = Math.Max(largestAllocation, allocated);
            string key = $"{mutation.Category,-14} {outcome}";
            outcomes[key] = outcomes.GetValueOrDefault(key) + 1;
            if (failure is not null) failures.Add($"[{mutation.Category}] {mutation.What}: {failure}");
        }

        int total = attempts.Values.Sum();
        output.WriteLine($"{total} mutated files from a {original.Length}-byte checkpoint (seed {Seed:X}); largest allocation of one attempt {largestAllocation:N0} bytes");
        foreach ((string category, int count) in attempts) output.WriteLine($"  {category,-14} {count,6} attempts");
        output.WriteLine("Outcomes (category; loaded, rejected with the reason the message gives, or rejected but loaded with strict: false):");
        foreach ((string key, int count) in outcomes) output.WriteLine($"  {key,-52} {count,6}");

        Assert.True(failures.Count == 0, $"{failures.Count} of {total} attempts misbehaved:{Environment.NewLine}" + string.Join(Environment.NewLine, failures.Take(20)));
        Assert.True(total >= 6000, $"only {total} mutations were tried");
        Assert.All(attempts.Where(a => a.Key != "unchanged"), a => Assert.True(a.Value >= 100, $"only {a.Value} mutations of kind {a.Key}"));
        Assert.Contains(outcomes.Keys, k => k.EndsWith("loaded", StringComparison.Ordinal));
        Assert.True(largestAllocation < AllocationLimit);
    }

    /// <summary>A valid checkpoint written by <see cref="SafeTensors.Save(string, IReadOnlyList{ParameterTensor}, ReadOnlySpan{float}, IReadOnlyDictionary{string, string}?)"/>.</summary>
    private byte[] SaveOriginal()
    {
        Directory.CreateDirectory(_directory);
        string path = Path.Combine(_directory, "original.safetensors");
        float[] values = TensorTables.RandomBuffer(BufferLength, Seed ^ 1);
        SafeTensors.Save(path, Table, values, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "naïve ✓" });
        byte[] bytes = File.ReadAllBytes(path);
        var loaded = new float[BufferLength];
        SafeTensors.Load(path, Table, loaded);
        Assert.Equal(values, loaded);
        return bytes;
    }

    // ---------------------------------------------------------------- one attempt

    /// <summary>Loads one mutated file from a stream (and, when asked, from a file too); returns what went wrong, or null.</summary>
    private string? Attempt(Mutation mutation, bool crossCheckWithFile, out string outcome, out long allocated)
    {
        float[] sentinel = Sentinel();
        float[] buffer = (float[])sentinel.Clone();
        Exception? error = null;
        long before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            using var stream = new MemoryStream(mutation.Bytes, writable: false);
            SafeTensors.Load(stream, Table, buffer, StreamName);
        }
        catch (Exception e)
        {
            error = e;
        }
        allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        outcome = error is null ? "loaded" : "rejected: " + Reason(error.Message);
        string? problem = Judge(mutation, error, buffer, sentinel, StreamName);
        if (problem is not null) return problem;
        if (allocated > AllocationLimit) return $"allocated {allocated:N0} bytes";

        problem = CheckNonStrict(mutation, error is null ? buffer : null, out bool loadedNonStrictly);
        if (problem is not null) return "non-strict: " + problem;
        if (error is not null && loadedNonStrictly) outcome = "loaded non-strictly only";

        problem = CheckMetadataReader(mutation.Bytes);
        if (problem is not null) return problem;

        if (crossCheckWithFile)
        {
            // The path-based loader reads the same bytes through another source: same outcome, same message.
            string path = Path.Combine(_directory, "mutated.safetensors");
            File.WriteAllBytes(path, mutation.Bytes);
            float[] fromFile = (float[])sentinel.Clone();
            Exception? fileError = null;
            try
            {
                SafeTensors.Load(path, Table, fromFile);
            }
            catch (Exception e)
            {
                fileError = e;
            }
            problem = Judge(mutation, fileError, fromFile, sentinel, path);
            if (problem is not null) return "from a file: " + problem;
            if (!fromFile.Select(BitConverter.SingleToInt32Bits).SequenceEqual(buffer.Select(BitConverter.SingleToInt32Bits)))
                return "a file and a stream of the same bytes loaded different values";
            if ((error is null) != (fileError is null) || (error is not null && error.Message.Replace(StreamName, "") != fileError!.Message.Replace(path, "")))
                return $"a file and a stream of the same bytes gave different outcomes: '{error?.Message}' vs '{fileError?.Message}'";
        }
        return null;
    }

    /// <summary>
    /// Checks one outcome against the rules in the class summary; null when it keeps them. A non-strict load (with its
    /// <paramref name="report"/>) may also leave out tensors the file lacks and skip those the table lacks: then the
    /// loaded ones must hold what the bytes say, the others their sentinels, and the report must name both.
    /// </summary>
    private static string? Judge(Mutation mutation, Exception? error, float[] buffer, float[] sentinel, string name, bool strict = true, SafeTensorsLoadReport? report = null)
    {
        if (error is null)
        {
            if (strict && mutation.Expect == Expect.Reject) return "loaded a file that must be rejected";
            string? problem = Decode(mutation.Bytes, strict, out float[] expected, out List<string> fileNames);
            if (problem is not null) return $"loaded{(strict ? "" : " non-strictly")}, but {problem}";
            for (int i = 0; i < expected.Length; i++)
                if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(buffer[i]))
                    return $"loaded {buffer[i]} at {i}, but the bytes say {expected[i]}";
            if (report is not null)
            {
                string[] tableNames = Table.Select(t => t.Name).ToArray();
                if (!report.Loaded.SequenceEqual(tableNames.Where(fileNames.Contains))
                    || !report.Missing.Select(t => t.Name).SequenceEqual(tableNames.Where(n => !fileNames.Contains(n)))
                    || !report.Unexpected.Select(t => t.Name).SequenceEqual(fileNames.Where(n => !tableNames.Contains(n))))
                    return $"the report '{report}' does not match the file's tensors {string.Join(", ", fileNames)}";
            }
            return null;
        }
        if (error.GetType() != typeof(InvalidDataException)) return $"threw {error.GetType().Name}: {error.Message}";
        if (mutation.Expect == Expect.Load) return $"rejected a valid file: {error.Message}";
        if (!error.Message.Contains(name, StringComparison.Ordinal) || error.Message.Length < name.Length + 30)
            return $"the message does not name the file or say what is wrong: '{error.Message}'";
        for (int i = 0; i < buffer.Length; i++)
            if (BitConverter.SingleToInt32Bits(buffer[i]) != BitConverter.SingleToInt32Bits(sentinel[i]))
                return $"rejected ({error.Message}) but wrote into the buffer at {i}";
        return null;
    }

    /// <summary>
    /// Loads the same bytes with <c>strict: false</c>: a file the strict loader accepted (<paramref name="strictValues"/>)
    /// loads the same values with an exact report; any other either loads what matches (judged as above) or is rejected.
    /// </summary>
    private static string? CheckNonStrict(Mutation mutation, float[]? strictValues, out bool loaded)
    {
        float[] sentinel = Sentinel();
        float[] buffer = (float[])sentinel.Clone();
        Exception? error = null;
        SafeTensorsLoadReport? report = null;
        try
        {
            using var stream = new MemoryStream(mutation.Bytes, writable: false);
            report = SafeTensors.Load(stream, Table, buffer, strict: false, StreamName);
        }
        catch (Exception e)
        {
            error = e;
        }
        loaded = error is null;
        if (strictValues is not null)
        {
            if (error is not null) return $"rejected a file that loads strictly: {error.Message}";
            if (!report!.IsExactMatch) return $"reported '{report}' for a file that loads strictly";
            if (!buffer.Select(BitConverter.SingleToInt32Bits).SequenceEqual(strictValues.Select(BitConverter.SingleToInt32Bits)))
                return "loaded other values than the strict loader";
        }
        return Judge(mutation, error, buffer, sentinel, StreamName, strict: false, report);
    }

    /// <summary>The header-only reader faces the same files: it returns or throws InvalidDataException, and restores the position.</summary>
    private static string? CheckMetadataReader(byte[] bytes)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        try
        {
            SafeTensors.ReadMetadata(stream, StreamName);
        }
        catch (Exception e) when (e.GetType() == typeof(InvalidDataException))
        {
        }
        catch (Exception e)
        {
            return $"ReadMetadata threw {e.GetType().Name}: {e.Message}";
        }
        return stream.Position == 0 ? null : "ReadMetadata moved the stream";
    }

    /// <summary>A buffer of distinct NaN payloads, so that any write shows.</summary>
    private static float[] Sentinel() => Enumerable.Range(0, BufferLength).Select(i => BitConverter.Int32BitsToSingle(0x7FA0_0000 | i)).ToArray();

    /// <summary>The kind of rejection, from the message (for the printed distribution only).</summary>
    private static string Reason(string message)
    {
        (string Phrase, string Reason)[] reasons =
        [
            ("header length field", "header length"),
            ("not valid JSON", "invalid JSON"),
            ("more than once", "duplicate"),
            ("overlaps", "overlapping data"),
            ("do not match the model", "names"),
            ("cannot be loaded", "dtype"),
            ("its shape is", "shape"),
            ("shape entry", "shape"),
            ("needs", "size"),
            ("run past the end", "offsets past the end"),
            ("data offset", "offsets"),
            ("data_offsets", "offsets"),
            ("metadata", "metadata"),
            ("truncated", "truncated"),
            ("dtype", "dtype"),
            ("is a JSON", "structure"),
            ("has no", "structure"),
        ];
        foreach ((string phrase, string reason) in reasons)
            if (message.Contains(phrase, StringComparison.Ordinal)) return reason;
        return "other";
    }

    // ---------------------------------------------------------------- the independent decoder

    /// <summary>
    /// What a correct reader must load from <paramref name="file"/>, decoded directly from the format's description:
    /// each table tensor's bytes at its data_offsets, F32, F16 or BF16 little-endian; the sentinel where the file lacks
    /// a tensor (allowed only when not <paramref name="strict"/>). Returns why the file cannot be loaded when it finds a
    /// reason (a loader that accepted it is then wrong).
    /// </summary>
    private static string? Decode(byte[] file, bool strict, out float[] values, out List<string> fileNames)
    {
        values = Sentinel();
        fileNames = [];
        if (file.Length < 8) return "the file is shorter than its length prefix";
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(file);
        if (headerLength > (ulong)(file.Length - 8)) return "the header runs past the end";
        long dataStart = 8 + (long)headerLength, dataLength = file.Length - dataStart;
        using JsonDocument document = JsonDocument.Parse(file.AsMemory(8, (int)headerLength));
        fileNames = document.RootElement.EnumerateObject().Select(p => p.Name).Where(n => n != "__metadata__").ToList();
        if (fileNames.Distinct().Count() != fileNames.Count) return $"the header names a tensor twice: {string.Join(", ", fileNames)}";
        if (strict && (fileNames.Count != Table.Count || fileNames.Except(Table.Select(t => t.Name)).Any()))
            return $"the header's tensors are {string.Join(", ", fileNames)}";
        foreach (JsonProperty other in document.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__" && Table.All(t => t.Name != p.Name)))
            if (other.Value.GetProperty("data_offsets")[1].GetInt64() > dataLength) return $"{other.Name} runs past the end of the data";
        var ranges = new List<(long Begin, long End)>();
        foreach (ParameterTensor t in Table)
        {
            if (!document.RootElement.TryGetProperty(t.Name, out JsonElement entry)) continue;
            string dtype = entry.GetProperty("dtype").GetString()!;
            long[] shape = entry.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            if (!shape.SequenceEqual(t.Shape.ToArray().Select(d => (long)d))) return $"{t.Name} has shape [{string.Join(", ", shape)}]";
            long begin = entry.GetProperty("data_offsets")[0].GetInt64(), end = entry.GetProperty("data_offsets")[1].GetInt64();
            int size = dtype switch { "F32" => 4, "F16" or "BF16" => 2, _ => 0 };
            if (size == 0) return $"{t.Name} is {dtype}";
            if (begin < 0 || end - begin != (long)t.Length * size || end > dataLength) return $"{t.Name} has data_offsets [{begin}, {end}] in {dataLength} bytes";
            if (ranges.Any(r => begin < r.End && r.Begin < end)) return $"{t.Name} overlaps another tensor";
            ranges.Add((begin, end));
            for (int i = 0; i < t.Length; i++)
            {
                ReadOnlySpan<byte> at = file.AsSpan((int)(dataStart + begin + (long)i * size));
                values[t.Offset + i] = dtype switch
                {
                    "F32" => BinaryPrimitives.ReadSingleLittleEndian(at),
                    "F16" => (float)BinaryPrimitives.ReadHalfLittleEndian(at),
                    _ => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(at) << 16),
                };
            }
        }
        return null;
    }

    // ---------------------------------------------------------------- the mutations

    /// <summary>The original file taken apart: its header as editable items, and its data.</summary>
    private sealed class Parts
    {
        public required List<Item> Items { get; init; }
        public required byte[] Data { get; init; }

        public Parts Clone() => new() { Items = Items.Select(i => i.Clone()).ToList(), Data = (byte[])Data.Clone() };

        public string RenderHeader() => "{" + string.Join(",", Items.Select(i => i.Render())) + "}";

        public byte[] ToFile() => Assemble(Encoding.UTF8.GetBytes(RenderHeader()), Data);

        /// <summary>The tensor items (not <c>__metadata__</c>).</summary>
        public List<Item> Tensors => Items.Where(i => i.Fields is not null && i.Key != "\"__metadata__\"").ToList();
    }

    /// <summary>One top-level header item: a raw JSON key and either fields (a tensor entry) or a raw JSON value.</summary>
    private sealed class Item
    {
        public required string Key { get; set; }
        public List<(string Name, string Value)>? Fields { get; set; }
        public string? Raw { get; set; }

        public Item Clone() => new() { Key = Key, Fields = Fields?.ToList(), Raw = Raw };

        public string Render() => Key + ":" + (Raw ?? "{" + string.Join(",", Fields!.Select(f => f.Name + ":" + f.Value)) + "}");

        public string Get(string field) => Fields!.First(f => f.Name == $"\"{field}\"").Value;

        public void Set(string field, string value)
        {
            int at = Fields!.FindIndex(f => f.Name == $"\"{field}\"");
            Fields[at] = (Fields[at].Name, value);
        }

        public (long Begin, long End) Offsets
        {
            get
            {
                long[] o = JsonSerializerLite.Longs(Get("data_offsets"));
                return (o[0], o[1]);
            }
        }
    }

    /// <summary>Reads the numbers of a JSON array of integers (written by the original header or by an edit here).</summary>
    private static class JsonSerializerLite
    {
        public static long[] Longs(string array) =>
            array.Trim('[', ']').Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => long.Parse(s.Trim(), System.Globalization.CultureInfo.InvariantCulture)).ToArray();
    }

    private static Parts Split(byte[] file)
    {
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        using JsonDocument document = JsonDocument.Parse(file.AsMemory(8, headerLength));
        var items = new List<Item>();
        foreach (JsonProperty property in document.RootElement.EnumerateObject())
        {
            string key = JsonSerializer.Serialize(property.Name);
            items.Add(property.Name == "__metadata__"
                ? new Item { Key = key, Raw = property.Value.GetRawText() }
                : new Item { Key = key, Fields = property.Value.EnumerateObject().Select(f => (JsonSerializer.Serialize(f.Name), f.Value.GetRawText())).ToList() });
        }
        return new Parts { Items = items, Data = file[(8 + headerLength)..] };
    }

    private static byte[] Assemble(byte[] header, byte[] data, ulong? lengthField = null)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, lengthField ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    private static IEnumerable<Mutation> Mutations(byte[] original, Rng rng)
    {
        Parts parts = Split(original);
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(original);
        int dataStart = 8 + headerLength;
        Assert.Equal(Table.Sum(t => t.Length) * 4, parts.Data.Length);

        // The whole file, unchanged, and re-rendered from its parts: both load.
        yield return new Mutation("unchanged", "the original", original, Expect.Load);
        yield return new Mutation("unchanged", "the header re-rendered without padding", parts.ToFile(), Expect.Load);

        // Truncation at every length: the last tensor ends at the end of the file, so every cut loses something.
        for (int length = 0; length < original.Length; length++)
            yield return new Mutation("truncate", $"cut to {length} bytes", original[..length], Expect.Reject);

        // Byte flips anywhere; inside the tensor data the file stays valid and must load the changed values.
        for (int i = 0; i < 2500; i++)
        {
            byte[] bytes = (byte[])original.Clone();
            int count = 1 + rng.NextInt(3);
            bool dataOnly = true;
            var where = new List<int>();
            for (int k = 0; k < count; k++)
            {
                int at = i % 4 == 0 ? dataStart + rng.NextInt(original.Length - dataStart) : rng.NextInt(original.Length);
                bytes[at] ^= (byte)(1 + rng.NextInt(255));
                dataOnly &= at >= dataStart;
                where.Add(at);
            }
            yield return new Mutation("byte flip", $"bytes {string.Join(", ", where)} changed", bytes, dataOnly ? Expect.Load : Expect.Either);
        }

        // The header length field.
        var lengths = new List<ulong> { 0, 1, 2, 7, 8, (ulong)(original.Length - 8), (ulong)(original.Length - 7), (ulong)original.Length,
            SafeTensors.MaxHeaderBytes, SafeTensors.MaxHeaderBytes + 1, int.MaxValue, 1UL << 31, 1UL << 32, (1UL << 32) + (ulong)headerLength,
            long.MaxValue, 1UL << 63, ulong.MaxValue, ulong.MaxValue - 7, unchecked((ulong)-(long)headerLength) };
        for (int delta = -24; delta <= 24; delta++) lengths.Add((ulong)(headerLength + delta));
        for (int i = 0; i < 150; i++) lengths.Add(((ulong)rng.NextUInt32() << 32) | rng.NextUInt32());
        for (int i = 0; i < 150; i++) lengths.Add((ulong)rng.NextInt(original.Length + 64));
        foreach (ulong length in lengths)
        {
            byte[] bytes = (byte[])original.Clone();
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, length);
            Expect expect = length == (ulong)headerLength ? Expect.Load : length > (ulong)(original.Length - 8) ? Expect.Reject : Expect.Either;
            yield return new Mutation("length field", $"header length {length}", bytes, expect);
        }

        // Structured edits of the JSON header, in turn, with random choices inside each.
        JsonEdit[] edits = JsonEdits();
        for (int i = 0; i < 3300; i++)
        {
            JsonEdit edit = edits[i % edits.Length];
            Parts copy = parts.Clone();
            (string what, Expect expect, byte[]? bytes) = edit(copy, rng);
            yield return new Mutation("json edit", what, bytes ?? copy.ToFile(), expect);
        }

        // Invalid UTF-8 inside strings of the header (names, dtypes, metadata), or between tokens.
        byte[][] invalidSequences = [[0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0x80], [0xF0, 0x9F, 0x98]];
        byte[] header = Encoding.UTF8.GetBytes(parts.RenderHeader());
        int[] quotes = Enumerable.Range(0, header.Length).Where(k => header[k] == (byte)'"').ToArray();
        for (int i = 0; i < 400; i++)
        {
            byte[] sequence = invalidSequences[i % invalidSequences.Length];
            // Right after an opening or closing quote: inside a string, or just outside it.
            int at = quotes[rng.NextInt(quotes.Length)] + 1;
            byte[] mutated = [.. header[..at], .. sequence, .. header[at..]];
            yield return new Mutation("non-UTF-8", $"{Convert.ToHexString(sequence)} inserted at {at} of the header", Assemble(mutated, parts.Data), Expect.Reject);
        }

        // Random character edits of the header text: delete, insert or replace one or a few characters.
        const string alphabet = "{}[]\",:0123456789-.eE \\u\"ab";
        string text = parts.RenderHeader();
        for (int i = 0; i < 800; i++)
        {
            var builder = new StringBuilder(text);
            int edits2 = 1 + rng.NextInt(3);
            for (int k = 0; k < edits2; k++)
            {
                int at = rng.NextInt(builder.Length);
                switch (rng.NextInt(3))
                {
                    case 0: builder.Remove(at, 1); break;
                    case 1: builder.Insert(at, alphabet[rng.NextInt(alphabet.Length)]); break;
                    default: builder[at] = alphabet[rng.NextInt(alphabet.Length)]; break;
                }
            }
            yield return new Mutation("char edit", $"header '{builder}'", Assemble(Encoding.UTF8.GetBytes(builder.ToString()), parts.Data), Expect.Either);
        }

        // Several of the above stacked: a structured edit, then flips and a length change.
        for (int i = 0; i < 600; i++)
        {
            Parts copy = parts.Clone();
            (string what, _, byte[]? bytes) = edits[rng.NextInt(edits.Length)](copy, rng);
            bytes ??= copy.ToFile();
            int flips = rng.NextInt(3);
            for (int k = 0; k < flips; k++) bytes[rng.NextInt(bytes.Length)] ^= (byte)(1 + rng.NextInt(255));
            if (rng.NextInt(4) == 0) BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)Math.Max(0, (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes) + rng.NextInt(17) - 8));
            if (rng.NextInt(4) == 0) bytes = bytes[..rng.NextInt(bytes.Length)];
            yield return new Mutation("stacked", $"{what}, then {flips} flips and maybe a new length or a cut", bytes, Expect.Either);
        }
    }

    /// <summary>One structured edit: changes <c>parts</c> in place (or returns the file's bytes itself), says what it did and what must happen.</summary>
    private delegate (string What, Expect Expect, byte[]? Bytes) JsonEdit(Parts parts, Rng rng);

    private static JsonEdit[] JsonEdits()
    {
        string[] hugeNumbers = ["9223372036854775807", "9223372036854775808", "18446744073709551616", "1e30", "1e999", "-1e999",
            new string('9', 1000), "-1", "-9223372036854775808", "1.5", "1e2", "0.0", "-0.5", "\"8\"", "null", "true", "[]", "{}", "NaN", "Infinity", "0x10", "+4"];
        string[] badDTypes = ["\"F64\"", "\"I32\"", "\"f32\"", "\"F32 \"", "\"\"", "\"BOOL\"", "\"U8\"", "\"F8_E4M3\"", "\"I64\"", "32", "null", "[\"F32\"]", "{}", "\"F\\u0033\\u0032\"" /* "F32", escaped */];

        Item RandomTensor(Parts p, Rng rng) => p.Tensors[rng.NextInt(p.Tensors.Count)];
        static string Offsets(long begin, long end) => $"[{begin},{end}]";
        static string Nest(string value, int depth, bool arrays) =>
            arrays ? new string('[', depth) + value + new string(']', depth) : string.Concat(Enumerable.Repeat("{\"x\":", depth)) + value + new string('}', depth);

        return
        [
            // Offsets of two tensors swapped: same sizes load swapped values, different sizes are rejected.
            (p, rng) =>
            {
                List<Item> t = p.Tensors;
                int a = rng.NextInt(t.Count), b = (a + 1 + rng.NextInt(t.Count - 1)) % t.Count;
                string oa = t[a].Get("data_offsets"), ob = t[b].Get("data_offsets");
                t[a].Set("data_offsets", ob);
                t[b].Set("data_offsets", oa);
                return ($"offsets of {t[a].Key} and {t[b].Key} swapped", Expect.Either, null);
            },
            // One tensor moved onto (part of) another's bytes, with its own size.
            (p, rng) =>
            {
                List<Item> t = p.Tensors;
                Item moved = t[rng.NextInt(t.Count)], onto = t[rng.NextInt(t.Count)];
                (long begin, long end) = moved.Offsets;
                long start = onto.Offsets.Begin + rng.NextInt((int)(onto.Offsets.End - onto.Offsets.Begin));
                moved.Set("data_offsets", Offsets(start, start + end - begin));
                // Anywhere else than where it was, it overlaps a neighbour or runs past the end of the data.
                return ($"{moved.Key} moved to {start}, over {onto.Key}", start == begin ? Expect.Load : Expect.Reject, null);
            },
            // An offset replaced by a number out of range or not a non-negative integer.
            (p, rng) =>
            {
                Item t = RandomTensor(p, rng);
                (long begin, long end) = t.Offsets;
                string value = rng.NextInt(3) == 0 ? (p.Data.Length + 1 + rng.NextInt(100)).ToString() : hugeNumbers[rng.NextInt(hugeNumbers.Length)];
                bool first = rng.NextInt(2) == 0;
                t.Set("data_offsets", first ? $"[{value},{end}]" : $"[{begin},{value}]");
                return ($"{t.Key} data_offsets {t.Get("data_offsets")}", Expect.Either, null);
            },
            // Data_offsets of the wrong arity or type.
            (p, rng) =>
            {
                Item t = RandomTensor(p, rng);
                (long begin, long end) = t.Offsets;
                string[] shapes = [$"[{begin}]", $"[{begin},{end},{end}]", "[]", $"{begin}", $"\"{begin},{end}\"", "null", $"{{\"0\":{begin},\"1\":{end}}}", $"[[{begin}],[{end}]]"];
                t.Set("data_offsets", shapes[rng.NextInt(shapes.Length)]);
                return ($"{t.Key} data_offsets {t.Get("data_offsets")}", Expect.Reject, null);
            },
            // Offsets that leave the data partly uncovered: gaps, padding before, bytes after; still loadable here.
            (p, rng) =>
            {
                int shift = 1 + rng.NextInt(40), gap = rng.NextInt(9), trailing = rng.NextInt(9);
                var data = new List<byte>(Enumerable.Repeat((byte)0xAB, shift));
                long position = shift;
                foreach (Item t in p.Tensors.OrderBy(t => t.Offsets.Begin))
                {
                    (long begin, long end) = t.Offsets;
                    data.AddRange(p.Data[(int)begin..(int)end]);
                    t.Set("data_offsets", Offsets(position, position + end - begin));
                    position += end - begin + gap;
                    data.AddRange(Enumerable.Repeat((byte)0xCD, gap));
                }
                data.AddRange(Enumerable.Repeat((byte)0xEF, trailing));
                var shifted = new Parts { Items = p.Items, Data = data.ToArray() };
                return ($"data shifted by {shift}, gaps of {gap}, {trailing} trailing bytes", Expect.Load, shifted.ToFile());
            },
            // The data section shortened below the last tensor's end.
            (p, rng) =>
            {
                int cut = 1 + rng.NextInt(p.Data.Length);
                var cutParts = new Parts { Items = p.Items, Data = p.Data[..^cut] };
                return ($"data shortened by {cut}", Expect.Reject, cutParts.ToFile());
            },
            // A shape that disagrees with the offsets (and with the model).
            (p, rng) =>
            {
                Item t = RandomTensor(p, rng);
                long[] shape = JsonSerializerLite.Longs(t.Get("shape"));
                int axis = rng.NextInt(shape.Length);
                string[] replacements = [(shape[axis] + 1).ToString(), (shape[axis] - 1).ToString(), "0", "4611686018427387904", "4294967296", hugeNumbers[rng.NextInt(hugeNumbers.Length)]];
                string dims = string.Join(",", shape.Select((d, k) => k == axis ? replacements[rng.NextInt(replacements.Length)] : d.ToString()));
                string[] shapes = [$"[{dims}]", $"[{string.Join(",", shape)},1]", $"[1,{string.Join(",", shape)}]", "[]", $"[{string.Join(",", shape.Skip(1))}]", $"[[{string.Join(",", shape)}]]", "\"[5, 3]\"", "null"];
                t.Set("shape", shapes[rng.NextInt(shapes.Length)]);
                return ($"{t.Key} shape {t.Get("shape")}", Expect.Reject, null);
            },
            // Shape dims whose product overflows 64 bits while each fits.
            (p, rng) =>
            {
                Item t = RandomTensor(p, rng);
                t.Set("shape", rng.NextInt(2) == 0 ? "[4294967296,4294967296]" : "[9223372036854775807,9223372036854775807,2]");
                return ($"{t.Key} shape {t.Get("shape")}", Expect.Reject, null);
            },
            // An unknown or malformed dtype (an escaped "F32" is F32 and loads).
            (p, rng) =>
            {
                Item t = RandomTensor(p, rng);
                string dtype = badDTypes[rng.NextInt(badDTypes.Length)];
                t.Set("dtype", dtype);
                return ($"{t.Key} dtype {dtype}", dtype.Contains("\\u0033", StringComparison.Ordinal) ? Expect.Load : Expect.Reject, null);
            },
            // A half-precision dtype: with offsets of the right size it loads converted; without, it is rejected.
            (p, rng) =>
            {
                Item t = RandomTensor(p, rng);
                string dtype = rng.NextInt(2) == 0 ? "\"F16\"" : "\"BF16\"";
                t.Set("dtype", dtype);
                bool resize = rng.NextInt(3) != 0;
                if (resize)
                {
                    (long begin, long end) = t.Offsets;
                    t.Set("data_offsets", Offsets(begin, begin + (end - begin) / 2));
                }
                return ($"{t.Key} dtype {dtype}{(resize ? ", offsets halved" : "")}", resize ? Expect.Load : Expect.Reject, null);
            },
            // A duplicate tensor name (same or changed content), a duplicate metadata key, or __metadata__ twice.
            (p, rng) =>
            {
                switch (rng.NextInt(3))
                {
                    case 0:
                        Item t = RandomTensor(p, rng).Clone();
                        if (rng.NextInt(2) == 0) t.Set("dtype", "\"F16\"");
                        p.Items.Insert(rng.NextInt(p.Items.Count + 1), t);
                        return ($"{t.Key} twice", Expect.Reject, null);
                    case 1:
                        Item metadata = p.Items.First(i => i.Key == "\"__metadata__\"");
                        metadata.Raw = metadata.Raw!.TrimEnd('}') + ",\"format\":\"np\"}";
                        return ("metadata key 'format' twice", Expect.Reject, null);
                    default:
                        p.Items.Add(new Item { Key = "\"__metadata__\"", Raw = "{}" });
                        return ("__metadata__ twice", Expect.Reject, null);
                }
            },
            // A field twice inside one tensor's entry: readers disagree on which one counts, so the file is ambiguous.
            (p, rng) =>
            {
                Item t = RandomTensor(p, rng);
                (string Name, string Value) field = t.Fields![rng.NextInt(t.Fields.Count)];
                string[] other = field.Name switch
                {
                    "\"dtype\"" => ["\"F16\"", "\"I64\"", field.Value],
                    "\"shape\"" => ["[1]", field.Value],
                    _ => ["[0,4]", field.Value],
                };
                t.Fields.Insert(rng.NextInt(t.Fields.Count + 1), (field.Name, other[rng.NextInt(other.Length)]));
                return ($"{t.Key} has {field.Name} twice", Expect.Reject, null);
            },
            // Deep nesting: as a field's value, as an extra top-level item, or inside the metadata.
            (p, rng) =>
            {
                int depth = 1 + rng.NextInt(300);
                bool arrays = rng.NextInt(2) == 0;
                switch (rng.NextInt(3))
                {
                    case 0:
                        Item t = RandomTensor(p, rng);
                        string field = new[] { "dtype", "shape", "data_offsets" }[rng.NextInt(3)];
                        t.Set(field, Nest(t.Get(field), depth, arrays));
                        return ($"{t.Key} {field} nested {depth} deep", Expect.Reject, null);
                    case 1:
                        p.Items.Insert(rng.NextInt(p.Items.Count + 1), new Item { Key = "\"deep\"", Raw = Nest("1", depth, arrays) });
                        return ($"an extra item nested {depth} deep", Expect.Reject, null);
                    default:
                        Item metadata = p.Items.First(i => i.Key == "\"__metadata__\"");
                        metadata.Raw = "{\"deep\":" + Nest("\"x\"", depth, arrays) + "}";
                        return ($"metadata nested {depth} deep", Expect.Reject, null);
                }
            },
            // Names: renamed, removed, added, reordered, escaped, empty.
            (p, rng) =>
            {
                Item t = RandomTensor(p, rng);
                switch (rng.NextInt(6))
                {
                    case 0:
                        t.Key = t.Key.Insert(1, "x");
                        return ($"{t.Key} renamed", Expect.Reject, null);
                    case 1:
                        p.Items.Remove(t);
                        return ($"{t.Key} removed", Expect.Reject, null);
                    case 2:
                        Item extra = t.Clone();
                        extra.Key = "\"unexpected.weight\"";
                        p.Items.Add(extra);
                        return ("an unexpected tensor added", Expect.Reject, null);
                    case 3:
                        List<Item> shuffled = p.Items.OrderBy(_ => rng.NextUInt32()).ToList();
                        p.Items.Clear();
                        p.Items.AddRange(shuffled);
                        return ("items reordered", Expect.Load, null);
                    case 4:
                        // The same name with its first letter as a \u escape: JSON says it is the same string.
                        char c = t.Key[1];
                        t.Key = $"\"\\u{(int)c:x4}{t.Key[2..]}";
                        return ($"{t.Key} escaped", Expect.Load, null);
                    default:
                        t.Key = "\"\"";
                        return ("a tensor named ''", Expect.Reject, null);
                }
            },
            // Fields removed, unknown fields added, entries of the wrong JSON type.
            (p, rng) =>
            {
                Item t = RandomTensor(p, rng);
                switch (rng.NextInt(3))
                {
                    case 0:
                        (string name, _) = t.Fields![rng.NextInt(t.Fields.Count)];
                        t.Fields.RemoveAll(f => f.Name == name);
                        return ($"{t.Key} without {name}", Expect.Reject, null);
                    case 1:
                        t.Fields!.Insert(rng.NextInt(t.Fields.Count + 1), ("\"extra\"", "{\"a\":[1,2,3]}"));
                        return ($"{t.Key} with an unknown field", Expect.Either, null);
                    default:
                        string[] values = ["1", "\"F32\"", "[]", "null", "true", "[\"F32\",[5,3],[0,60]]"];
                        t.Fields = null;
                        t.Raw = values[rng.NextInt(values.Length)];
                        return ($"{t.Key} is {t.Raw}", Expect.Reject, null);
                }
            },
            // The metadata retyped, removed, or given unusual but valid strings.
            (p, rng) =>
            {
                Item metadata = p.Items.First(i => i.Key == "\"__metadata__\"");
                string[] invalid = ["{\"n\":1}", "{\"n\":null}", "{\"n\":{}}", "{\"n\":[\"a\"]}", "[]", "\"pt\"", "null", "{\"n\":\"\\ud800\"}"];
                string[] valid = ["{}", "{\"\":\"\"}", "{\"n\":\"\\u00e9\\ud83d\\ude00\"}", "{\"a\":\"1\",\"b\":\"2\",\"c\":\"" + new string('z', 300) + "\"}"];
                switch (rng.NextInt(3))
                {
                    case 0:
                        metadata.Raw = invalid[rng.NextInt(invalid.Length)];
                        return ($"metadata {metadata.Raw}", Expect.Reject, null);
                    case 1:
                        p.Items.Remove(metadata);
                        return ("no metadata", Expect.Load, null);
                    default:
                        metadata.Raw = valid[rng.NextInt(valid.Length)];
                        return ($"metadata {metadata.Raw}", Expect.Load, null);
                }
            },
            // The whole header replaced, wrapped or padded.
            (p, rng) =>
            {
                string header = p.RenderHeader();
                (string Header, Expect Expect)[] choices =
                [
                    ("", Expect.Reject), (" ", Expect.Reject), ("null", Expect.Reject), ("[]", Expect.Reject), ("\"x\"", Expect.Reject), ("{}", Expect.Reject),
                    ("{", Expect.Reject), (header + "x", Expect.Reject), (header[..^1] + ",}", Expect.Reject), (header + "//c", Expect.Reject),
                    ("\uFEFF" + header, Expect.Reject), (header + "\0", Expect.Reject), ("[" + header + "]", Expect.Reject), (header + header, Expect.Reject),
                    (" \t\r\n" + header + new string(' ', rng.NextInt(20)), Expect.Load), (header.Replace(",", " , "), Expect.Load),
                ];
                (string replaced, Expect expect) = choices[rng.NextInt(choices.Length)];
                return ($"header '{replaced}'", expect, Assemble(Encoding.UTF8.GetBytes(replaced), p.Data));
            },
        ];
    }
}
