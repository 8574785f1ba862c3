using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using Xunit;

namespace TransformerGen.Tests.Checkpoints;

public sealed class SafeTensorsTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "tg-safetensors-" + Guid.NewGuid().ToString("N"));

    public SafeTensorsTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string PathOf(string name) => Path.Combine(_directory, name);

    /// <summary>A table of tensors packed from offset 0, named as given.</summary>
    private static List<ParameterTensor> Table(params (string Name, int[] Shape)[] tensors)
    {
        var table = new List<ParameterTensor>();
        int offset = 0;
        foreach ((string name, int[] shape) in tensors)
        {
            table.Add(new ParameterTensor(name, shape, offset));
            offset += table[^1].Length;
        }
        return table;
    }

    private static int TotalLength(List<ParameterTensor> table) => table.Sum(t => t.Length);

    private static float[] RandomBuffer(int length, ulong seed)
    {
        var rng = new Rng(seed);
        var buffer = new float[length];
        for (int i = 0; i < length; i++) buffer[i] = rng.NextNormal();
        return buffer;
    }

    private static List<ParameterTensor> OddTable() =>
        Table(("decoder.embed.weight", [5, 3]), ("decoder.norm.bias", [22]), ("scale", [1]), ("decoder.layers.0.linear1.weight", [7, 11, 3]));

    [Fact]
    public void RoundTripIsBitExact()
    {
        List<ParameterTensor> table = OddTable();
        float[] saved = RandomBuffer(TotalLength(table), 1);
        saved[0] = -0f;
        saved[1] = float.Epsilon;                    // a subnormal
        saved[2] = float.PositiveInfinity;
        saved[3] = BitConverter.Int32BitsToSingle(0x7FC0_1234); // a NaN with a payload
        string path = PathOf("model.safetensors");

        SafeTensors.Save(path, table, saved);
        var loaded = new float[saved.Length];
        SafeTensors.Load(path, table, loaded);

        Assert.Equal(saved.Select(BitConverter.SingleToInt32Bits), loaded.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void WritesTheDocumentedLayout()
    {
        List<ParameterTensor> table = Table(("a", [2, 3]), ("b", [5]));
        float[] buffer = RandomBuffer(11, 2);
        string path = PathOf("layout.safetensors");
        SafeTensors.Save(path, table, buffer, new Dictionary<string, string> { ["format"] = "pt" });

        byte[] bytes = File.ReadAllBytes(path);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, headerLength % 8);
        Assert.Equal(8 + headerLength + 11 * 4, bytes.Length);

        using JsonDocument header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        JsonElement a = header.RootElement.GetProperty("a"), b = header.RootElement.GetProperty("b");
        Assert.Equal("F32", a.GetProperty("dtype").GetString());
        Assert.Equal([2, 3], a.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([0, 24], a.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([24, 44], b.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal("pt", header.RootElement.GetProperty("__metadata__").GetProperty("format").GetString());

        for (int i = 0; i < 11; i++)
            Assert.Equal(buffer[i], BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(8 + (int)headerLength + 4 * i)));
    }

    [Fact]
    public void MetadataIsKept()
    {
        List<ParameterTensor> table = Table(("w", [4]));
        string path = PathOf("meta.safetensors");
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["model"] = "TinyShakespeare", ["note"] = "naïve \"quoted\" ✓" };
        SafeTensors.Save(path, table, new float[4], metadata);

        IReadOnlyDictionary<string, string> read = SafeTensors.ReadMetadata(path);
        Assert.Equal(metadata.OrderBy(p => p.Key), read.OrderBy(p => p.Key));

        SafeTensors.Save(path, table, new float[4]);
        Assert.Empty(SafeTensors.ReadMetadata(path));
    }

    [Fact]
    public void MissingAndUnexpectedTensorsAreAllReportedInOneMessageAndTheBufferIsUntouched()
    {
        string path = PathOf("names.safetensors");
        List<ParameterTensor> saved = Table(("kept", [2]), ("old.weight", [3, 4]), ("old.bias", [4]));
        SafeTensors.Save(path, saved, new float[TotalLength(saved)]);

        List<ParameterTensor> model = Table(("kept", [2]), ("new.weight", [3, 4]), ("new.bias", [4]));
        float[] buffer = Enumerable.Repeat(42f, TotalLength(model)).ToArray();
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path, model, buffer));

        Assert.Contains(path, error.Message);
        Assert.Contains("new.weight [3, 4]", error.Message);
        Assert.Contains("new.bias [4]", error.Message);
        Assert.Contains("old.weight [3, 4]", error.Message);
        Assert.Contains("old.bias [4]", error.Message);
        Assert.DoesNotContain("kept", error.Message);
        Assert.All(buffer, x => Assert.Equal(42f, x));
    }

    [Fact]
    public void AMissingTensorAloneIsRejected()
    {
        string path = PathOf("missing.safetensors");
        SafeTensors.Save(path, Table(("a", [2])), new float[2]);
        float[] buffer = [7f, 7f, 7f];
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path, Table(("a", [2]), ("b", [1])), buffer));
        Assert.Contains("b [1]", error.Message);
        Assert.Equal([7f, 7f, 7f], buffer);
    }

    [Fact]
    public void AnUnexpectedTensorAloneIsRejected()
    {
        string path = PathOf("unexpected.safetensors");
        SafeTensors.Save(path, Table(("a", [2]), ("extra", [5])), new float[7]);
        float[] buffer = [7f, 7f];
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path, Table(("a", [2])), buffer));
        Assert.Contains("extra [5]", error.Message);
        Assert.Equal([7f, 7f], buffer);
    }

    [Fact]
    public void AWrongShapeIsRejectedWithBothShapes()
    {
        string path = PathOf("shape.safetensors");
        SafeTensors.Save(path, Table(("a", [4]), ("proj.weight", [5, 3])), new float[19]);
        float[] buffer = Enumerable.Repeat(1f, 19).ToArray();
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path, Table(("a", [4]), ("proj.weight", [3, 5])), buffer));
        Assert.Contains(path, error.Message);
        Assert.Contains("'proj.weight'", error.Message);
        Assert.Contains("[5, 3]", error.Message);
        Assert.Contains("[3, 5]", error.Message);
        Assert.All(buffer, x => Assert.Equal(1f, x));
    }

    [Theory]
    [InlineData(1)]      // the last tensor's data is short
    [InlineData(100)]    // the data section is gone
    public void ATruncatedFileIsRejectedBeforeTheBufferIsTouched(int bytesCut)
    {
        string path = PathOf("truncated.safetensors");
        List<ParameterTensor> table = OddTable();
        SafeTensors.Save(path, table, RandomBuffer(TotalLength(table), 3));
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^bytesCut]);

        float[] buffer = new float[TotalLength(table)];
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path, table, buffer));
        Assert.Contains(path, error.Message);
        Assert.Contains("truncated", error.Message);
        Assert.Contains("decoder.layers.0.linear1.weight", error.Message);
        Assert.All(buffer, x => Assert.Equal(0f, x));
    }

    [Theory]
    [InlineData(5)]      // shorter than the length prefix
    [InlineData(20)]     // inside the header
    public void AFileCutInItsHeaderIsRejected(int keep)
    {
        string path = PathOf("cut.safetensors");
        SafeTensors.Save(path, Table(("a", [2])), new float[2]);
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..keep]);
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path, Table(("a", [2])), new float[2]));
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void AnAbsurdHeaderLengthIsRejectedWithoutAllocatingIt()
    {
        string path = PathOf("absurd.safetensors");
        var bytes = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1UL << 60);
        File.WriteAllBytes(path, bytes);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path, Table(("a", [2])), new float[2]));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
        Assert.Contains(path, error.Message);
        Assert.Contains((1UL << 60).ToString(), error.Message);

        // Plausible but longer than the file.
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1000);
        File.WriteAllBytes(path, bytes);
        error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path, Table(("a", [2])), new float[2]));
        Assert.Contains("truncated", error.Message);
    }

    /// <summary>Writes a safetensors file by hand: length prefix, the JSON as given, then the data bytes.</summary>
    private string WriteRaw(string name, string json, byte[] data)
    {
        byte[] header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        string path = PathOf(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Theory]
    [InlineData("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}", "not valid JSON")]
    [InlineData("[1, 2]", "not an object")]
    [InlineData("{\"a\": {\"dtype\": \"F32\", \"shape\": [2]}}", "data_offsets")]
    [InlineData("{\"a\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", "dtype")]
    [InlineData("{\"a\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", "shape")]
    [InlineData("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", "end before")]
    [InlineData("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", "more than once")]
    [InlineData("{\"a\": {\"dtype\": \"I64\", \"shape\": [2], \"data_offsets\": [0, 16]}}", "I64")]
    [InlineData("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 12]}}", "needs 8")]
    [InlineData("{\"__metadata__\": {\"n\": 1}, \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", "metadata")]
    // A field twice in one entry is ambiguous (System.Text.Json would read the last, serde refuses): found by SafeTensorsFuzzTests.
    [InlineData("{\"a\": {\"dtype\": \"I64\", \"shape\": [2], \"dtype\": \"F32\", \"data_offsets\": [0, 8]}}", "\"dtype\" more than once")]
    [InlineData("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16], \"data_offsets\": [0, 8]}}", "\"data_offsets\" more than once")]
    public void MalformedHeadersAreRejected(string json, string expected)
    {
        string path = WriteRaw("bad.safetensors", json, new byte[16]);
        float[] buffer = [5f, 5f];
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path, Table(("a", [2])), buffer));
        Assert.Contains(path, error.Message);
        Assert.Contains(expected, error.Message);
        Assert.Equal([5f, 5f], buffer);
    }

    [Fact]
    public void InvalidUtf8InTheHeaderIsRejected()
    {
        byte[] json = Encoding.UTF8.GetBytes("{\"ab\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}");
        json[3] = 0xFF; // the 'b' of the name becomes a byte that is never valid UTF-8
        var bytes = new byte[8 + json.Length + 8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        string path = PathOf("utf8.safetensors");
        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path, Table(("a", [2])), new float[2]));
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void OverlappingTensorsAreRejected()
    {
        string path = WriteRaw("overlap.safetensors",
            "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
            new byte[12]);
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path, Table(("a", [2]), ("b", [2])), new float[4]));
        Assert.Contains("overlaps", error.Message);
        Assert.Contains("'b'", error.Message);
        Assert.Contains("'a'", error.Message);
    }

    [Fact]
    public void AHandWrittenFileWithF32F16AndBF16TensorsLoads()
    {
        // Built byte by byte, independently of the writer: tensors in a different order from the table, a gap,
        // an unpadded header, and half-precision encodings from IEEE 754 binary16 and bfloat16.
        const string json =
            "{\"__metadata__\":{\"format\":\"pt\"}," +
            "\"half\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[16,22]}," +
            "\"full\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}," +
            "\"brain\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[24,28]}}";
        var data = new List<byte>();
        foreach (float f in new[] { 1.5f, -2f, 0.25f, 1e-3f }) data.AddRange(BitConverter.GetBytes(f));
        data.AddRange([0x00, 0x3C]); // F16 1.0
        data.AddRange([0x00, 0xC0]); // F16 −2.0
        data.AddRange([0x55, 0x35]); // F16 0x3555 = 0.333251953125
        data.AddRange([0xEE, 0xEE]); // a gap between tensors
        data.AddRange([0x80, 0x3F]); // BF16 1.0
        data.AddRange([0x40, 0xC0]); // BF16 −3.0
        string path = WriteRaw("hand.safetensors", json, data.ToArray());

        List<ParameterTensor> table = Table(("brain", [2]), ("full", [2, 2]), ("half", [3]));
        var buffer = new float[9];
        SafeTensors.Load(path, table, buffer);
        Assert.Equal([1f, -3f, 1.5f, -2f, 0.25f, 1e-3f, 1f, -2f, 0.333251953125f], buffer);
        Assert.Equal("pt", SafeTensors.ReadMetadata(path)["format"]);
    }

    [Fact]
    public void ALargeHalfPrecisionTensorIsConvertedAcrossScratchChunks()
    {
        const int count = 40_000; // more than one 64 KiB scratch chunk of 2-byte values
        var data = new byte[count * 2];
        for (int i = 0; i < count; i++) BinaryPrimitives.WriteHalfLittleEndian(data.AsSpan(2 * i), (Half)(i % 2048));
        string path = WriteRaw("bigf16.safetensors", $"{{\"w\":{{\"dtype\":\"F16\",\"shape\":[{count}],\"data_offsets\":[0,{count * 2}]}}}}", data);
        var buffer = new float[count];
        SafeTensors.Load(path, Table(("w", [count])), buffer);
        for (int i = 0; i < count; i++) Assert.Equal(i % 2048, buffer[i]);
    }

    private string[] OtherFiles(string keep) =>
        Directory.GetFiles(_directory).Where(f => f != keep).ToArray();

    [Fact]
    public void AFailedSaveLeavesTheOldFileIntactAndNoTemporaryFile()
    {
        string path = PathOf("atomic.safetensors");
        List<ParameterTensor> table = OddTable();
        SafeTensors.Save(path, table, RandomBuffer(TotalLength(table), 4));
        byte[] original = File.ReadAllBytes(path);

        // The buffer is shorter than the table says.
        var error = Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, table, new float[TotalLength(table) - 1]));
        Assert.Contains("decoder.layers.0.linear1.weight", error.Message);
        Assert.Equal(original, File.ReadAllBytes(path));
        Assert.Empty(OtherFiles(path));

        // A failure after the temporary file is fully written, just before the rename.
        string? temporary = null;
        Assert.Throws<IOException>(() => SafeTensors.Save(path, table, RandomBuffer(TotalLength(table), 5), null, beforeCommit: t =>
        {
            temporary = t;
            Assert.True(File.Exists(t));
            Assert.Equal(Path.GetDirectoryName(path), Path.GetDirectoryName(t));
            throw new IOException("simulated crash");
        }));
        Assert.NotNull(temporary);
        Assert.False(File.Exists(temporary));
        Assert.Equal(original, File.ReadAllBytes(path));
        Assert.Empty(OtherFiles(path));

        // A successful save replaces the file.
        float[] replacement = RandomBuffer(TotalLength(table), 6);
        SafeTensors.Save(path, table, replacement);
        var loaded = new float[replacement.Length];
        SafeTensors.Load(path, table, loaded);
        Assert.Equal(replacement, loaded);
        Assert.Empty(OtherFiles(path));
    }

    [Fact]
    public void BadTablesAreRejected()
    {
        string path = PathOf("table.safetensors");
        Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, Table(("a", [2]), ("a", [2])), new float[4]));
        Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, Table(("__metadata__", [2])), new float[2]));
        Assert.False(File.Exists(path));
        SafeTensors.Save(path, Table(("a", [2])), new float[2]);
        Assert.Throws<ArgumentException>(() => SafeTensors.Load(path, Table(("a", [2])), new float[1]));
    }
}
