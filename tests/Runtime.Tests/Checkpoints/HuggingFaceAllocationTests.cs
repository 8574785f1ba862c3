using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Xunit;
using Xunit.Abstractions;
using static TransformerGen.Tests.Checkpoints.HuggingFaceTestFiles;

namespace TransformerGen.Tests.Checkpoints;

/// <summary>
/// Loading never holds a second copy of the weights: what a load allocates (headers, names, one fixed scratch) does
/// not grow with the tensors. Measured with the thread's allocation counter on two GPT-2-shaped checkpoints with the
/// same tensors at two sizes (about 30 and 80 MB), F32 and BF16, with transposed Conv1D weights in both, from a file, a
/// stream and three shards.
/// </summary>
public sealed class HuggingFaceAllocationTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("tg-hf-alloc-").FullName;
    private readonly ITestOutputHelper _output;

    public HuggingFaceAllocationTests(ITestOutputHelper output) => _output = output;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>Exact in F32 and BF16 (7 significant bits), so both dtypes load the values the expectation holds.</summary>
    private static float Value(int t, int i) => (i % 127 + 1) * MathF.Pow(2, -(t % 20));

    /// <summary>What loading a checkpoint of this size allocates: by path, from a stream, from three shards; the header size.</summary>
    private (long Path, long Stream, long Shards, long FileBytes, long HeaderBytes) Measure(int vocab, int intermediate, string name)
    {
        FamilyModel model = Gpt2(e: 512, intermediate: intermediate, vocab: vocab, positions: 512, layers: 3) with { Value = Value };
        List<FileTensor> files = model.FileTensors(name => "transformer." + name, dtypeOf: t => t % 3 == 0 ? "BF16" : "F32"); // BF16 among both the plain and the transposed tensors
        files.Add(Zeros("transformer.h.0.attn.bias", "F32", 1, 1, 512, 512));
        string directory = Directory.CreateDirectory(Path.Combine(_directory, name)).FullName;
        string path = Write(Path.Combine(directory, "model.safetensors"), files);
        long headerBytes = BitConverter.ToInt64(File.ReadAllBytes(path).AsSpan(0, 8));

        string shards = Directory.CreateDirectory(Path.Combine(directory, "shards")).FullName;
        var index = new List<(string, IEnumerable<string>)>();
        for (int k = 0; k < 3; k++)
        {
            string shard = $"model-{k + 1:00000}-of-00003.safetensors";
            List<FileTensor> part = files.Where((_, i) => i % 3 == k).ToList();
            Write(Path.Combine(shards, shard), part);
            index.Add((shard, part.Select(f => f.Name).ToList()));
        }
        WriteIndex(Path.Combine(shards, "model.safetensors.index.json"), index);
        files.Clear();

        float[] expected = model.Expected(0f);
        var buffer = new float[model.BufferLength];
        HuggingFaceCheckpoint.Load(path, model.Table, buffer, model.Family); // warm up: JIT, JSON and pools
        HuggingFaceCheckpoint.Load(shards, model.Table, buffer, model.Family);

        Array.Clear(buffer);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long before = GC.GetAllocatedBytesForCurrentThread();
        HuggingFaceCheckpoint.Load(path, model.Table, buffer, model.Family);
        long fromPath = GC.GetAllocatedBytesForCurrentThread() - before;
        _output.WriteLine($"{name}: loaded by path in {clock.Elapsed.TotalMilliseconds:F0} ms (from the page cache)");
        Assert.True(expected.AsSpan().SequenceEqual(buffer));

        Array.Clear(buffer);
        long fromStream;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1))
        {
            before = GC.GetAllocatedBytesForCurrentThread();
            HuggingFaceCheckpoint.Load(stream, model.Table, buffer, model.Family, "resource");
            fromStream = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Assert.True(expected.AsSpan().SequenceEqual(buffer));

        Array.Clear(buffer);
        before = GC.GetAllocatedBytesForCurrentThread();
        HuggingFaceCheckpoint.Load(shards, model.Table, buffer, model.Family);
        long fromShards = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(expected.AsSpan().SequenceEqual(buffer));

        return (fromPath, fromStream, fromShards, new FileInfo(path).Length, headerBytes);
    }

    [Fact]
    public void LoadingAllocatesTheSameSmallAmountWhateverTheSizeOfTheTensors()
    {
        var small = Measure(vocab: 2048, intermediate: 1024, "small");
        var large = Measure(vocab: 8192, intermediate: 4096, "large");
        _output.WriteLine($"small: {small.FileBytes / 1e6:F1} MB file, header {small.HeaderBytes} B; allocated {small.Path} B by path, {small.Stream} B from a stream, {small.Shards} B from 3 shards");
        _output.WriteLine($"large: {large.FileBytes / 1e6:F1} MB file, header {large.HeaderBytes} B; allocated {large.Path} B by path, {large.Stream} B from a stream, {large.Shards} B from 3 shards");
        Assert.True(small.FileBytes > 20_000_000 && large.FileBytes > 2 * small.FileBytes);

        foreach (var run in new[] { small, large })
            foreach (long allocated in new[] { run.Path, run.Stream, run.Shards })
                Assert.True(allocated < 1_000_000 + run.HeaderBytes, $"{allocated} bytes allocated for a {run.FileBytes}-byte file with a {run.HeaderBytes}-byte header");

        // The same tensors, 2.4 times the data: the same allocations, up to the digits of the header's offsets.
        Assert.True(Math.Abs(large.Path - small.Path) < 16_384, $"by path: {small.Path} and {large.Path} bytes");
        Assert.True(Math.Abs(large.Stream - small.Stream) < 16_384, $"from a stream: {small.Stream} and {large.Stream} bytes");
        Assert.True(Math.Abs(large.Shards - small.Shards) < 16_384, $"from shards: {small.Shards} and {large.Shards} bytes");
    }
}
