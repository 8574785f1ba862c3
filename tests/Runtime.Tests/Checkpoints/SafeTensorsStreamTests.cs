using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Xunit;
using static TransformerGen.Tests.Checkpoints.TensorTables;

namespace TransformerGen.Tests.Checkpoints;

/// <summary>
/// Loading from a stream (weights built into a program as a resource) runs the same checks as loading from a
/// path; these tests cover what differs: the start at the stream's position, the stream's own name in
/// messages, and streams that cannot seek.
/// </summary>
public sealed class SafeTensorsStreamTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("tg-safetensors-stream-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static List<ParameterTensor> OddTable() => Table(("embed.weight", [5, 3]), ("norm.bias", [22]), ("linear1.weight", [7, 11, 3]));

    /// <summary>The bytes of a file saved by the path-based writer.</summary>
    private byte[] Saved(List<ParameterTensor> table, float[] buffer, IReadOnlyDictionary<string, string>? metadata = null)
    {
        string path = Path.Combine(_directory, Guid.NewGuid().ToString("N") + ".safetensors");
        SafeTensors.Save(path, table, buffer, metadata);
        return File.ReadAllBytes(path);
    }

    [Fact]
    public void AStreamLoadsBitExactlyWhatAFileHolds()
    {
        List<ParameterTensor> table = OddTable();
        float[] saved = RandomBuffer(table.Sum(t => t.Length), 1);
        saved[3] = BitConverter.Int32BitsToSingle(0x7FC0_1234); // a NaN with a payload
        var loaded = new float[saved.Length];

        SafeTensors.Load(new MemoryStream(Saved(table, saved)), table, loaded);

        Assert.Equal(saved.Select(BitConverter.SingleToInt32Bits), loaded.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void TheFileStartsAtTheStreamsPositionAndMetadataThenWeightsComeFromOneStream()
    {
        List<ParameterTensor> table = OddTable();
        float[] saved = RandomBuffer(table.Sum(t => t.Length), 2);
        byte[] file = Saved(table, saved, new Dictionary<string, string> { ["alphabet"] = "\n !abc" });
        byte[] prefix = Encoding.ASCII.GetBytes("something before the checkpoint");
        var stream = new MemoryStream([.. prefix, .. file]) { Position = prefix.Length };

        IReadOnlyDictionary<string, string> metadata = SafeTensors.ReadMetadata(stream);
        Assert.Equal("\n !abc", metadata["alphabet"]);
        Assert.Equal(prefix.Length, stream.Position); // restored, so loading can follow

        var loaded = new float[saved.Length];
        SafeTensors.Load(stream, table, loaded);
        Assert.Equal(saved, loaded);
    }

    [Fact]
    public void ATruncatedStreamIsRejectedByItsNameBeforeTheBufferIsTouched()
    {
        List<ParameterTensor> table = OddTable();
        byte[] file = Saved(table, RandomBuffer(table.Sum(t => t.Length), 3));
        float[] buffer = new float[table.Sum(t => t.Length)];

        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(new MemoryStream(file[..^1]), table, buffer, "Model.weights.safetensors"));

        Assert.Contains("'Model.weights.safetensors'", error.Message);
        Assert.Contains("truncated", error.Message);
        Assert.Contains("linear1.weight", error.Message);
        Assert.All(buffer, x => Assert.Equal(0f, x));
    }

    [Fact]
    public void MismatchedNamesAndShapesAreRejectedAsForAFile()
    {
        byte[] file = Saved(Table(("kept", [2]), ("old.weight", [3, 4])), new float[14]);
        float[] buffer = Enumerable.Repeat(42f, 14).ToArray();

        var names = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(new MemoryStream(file), Table(("kept", [2]), ("new.weight", [3, 4])), buffer));
        Assert.Contains("'stream'", names.Message);
        Assert.Contains("new.weight [3, 4]", names.Message);
        Assert.Contains("old.weight [3, 4]", names.Message);

        var shape = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(new MemoryStream(file), Table(("kept", [2]), ("old.weight", [4, 3])), buffer));
        Assert.Contains("'old.weight'", shape.Message);
        Assert.All(buffer, x => Assert.Equal(42f, x));
    }

    [Fact]
    public void AnAbsurdHeaderLengthIsRejected()
    {
        var bytes = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1UL << 60);
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.ReadMetadata(new MemoryStream(bytes), "absurd"));
        Assert.Contains("'absurd'", error.Message);
        Assert.Contains((1UL << 60).ToString(), error.Message);
    }

    [Fact]
    public void AStreamThatCannotSeekOrReadIsRefused()
    {
        byte[] file = Saved(Table(("a", [2])), new float[2]);
        var forwardOnly = new ForwardOnlyStream(file);
        var error = Assert.Throws<ArgumentException>(() => SafeTensors.Load(forwardOnly, Table(("a", [2])), new float[2]));
        Assert.Contains("seek", error.Message);
        Assert.Throws<ArgumentException>(() => SafeTensors.ReadMetadata(forwardOnly));

        var closed = new MemoryStream(file);
        closed.Dispose(); // a closed stream can no longer read
        error = Assert.Throws<ArgumentException>(() => SafeTensors.Load(closed, Table(("a", [2])), new float[2]));
        Assert.Contains("cannot be read", error.Message);
    }

    /// <summary>A stream that reads forward only, like a network or a decompression stream.</summary>
    private sealed class ForwardOnlyStream(byte[] bytes) : Stream
    {
        private readonly MemoryStream _inner = new(bytes);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
