using System;
using System.IO;
using System.Linq;
using Xunit;

namespace TransformerGen.Model.Tests;

/// <summary>A decoder of 92 MB of fp32 parameters, loaded into reduced-precision instances by the tests below.</summary>
[TransformerModel(Vocab = 4000, DModel = 512, Heads = 8, Layers = 6, DFF = 2048, SeqLen = 8, Positional = Positional.Rotary,
    Norm = NormPlacement.Pre)]
public partial class StreamedDecoder
{
    /// <summary>An inference instance whose parameters are still to be loaded (as ForInference(checkpoint) makes one).</summary>
    internal static StreamedDecoder Unloaded(WeightType weights) => new(0, ModelUse.Inference, initialize: false, weights);

    /// <summary>The parameter buffer as it is, packed or not (Parameters would unpack it).</summary>
    internal Span<float> Buffer => ParameterBuffer;
}

public partial class ReducedLlama
{
    /// <summary>An inference instance whose parameters are still to be loaded (as ForInference(checkpoint) makes one).</summary>
    internal static ReducedLlama Unloaded(WeightType weights) => new(0, ModelUse.Inference, initialize: false, weights);
}

/// <summary>
/// A fresh bf16 or 8-bit inference instance packs each weight matrix as soon as a load has written it and gives its fp32
/// pages back then: the load never holds the whole model in fp32 (Llama-3.2-3B's 12.85 GB for 3.4 GB of 8-bit matrices),
/// and the bytes are those packing after the load gives.
/// </summary>
public sealed class PackWhileLoadingTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("transformergen-packing-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>Bytes of <paramref name="buffer"/>'s pages that are resident (Linux).</summary>
    private static unsafe long ResidentBytes(Span<float> buffer)
    {
        int page = Environment.SystemPageSize;
        fixed (float* p = buffer)
        {
            nint start = (nint)p & ~(nint)(page - 1);
            return ResidentMemoryTests.Resident(start, (nint)p + (long)buffer.Length * sizeof(float) - start).Count(r => r) * (long)page;
        }
    }

    /// <summary>A file's stream that measures, before every read, how much of a buffer is resident, and keeps the most.</summary>
    private sealed class ProbingStream(string path, Func<long> probe) : Stream
    {
        private readonly FileStream _file = File.OpenRead(path);

        public long Most { get; private set; }

        public override int Read(Span<byte> buffer)
        {
            Most = Math.Max(Most, probe());
            return _file.Read(buffer);
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override long Seek(long offset, SeekOrigin origin) => _file.Seek(offset, origin);
        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => _file.Length;
        public override long Position { get => _file.Position; set => _file.Position = value; }
        public override void Flush() { }
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) _file.Dispose();
            base.Dispose(disposing);
        }
    }

    [Theory]
    [InlineData(WeightType.Int8)]
    [InlineData(WeightType.BFloat16)]
    public void A_load_holds_the_reduced_matrices_and_the_one_being_read_not_the_fp32_model(WeightType weights)
    {
        if (!OperatingSystem.IsLinux()) return; // pages are given back on Linux only
        string checkpoint = Path.Combine(_folder, "decoder.safetensors");
        StreamedDecoder.ForInference(3, WeightType.Float32).Save(checkpoint);

        StreamedDecoder model = StreamedDecoder.Unloaded(weights);
        // The garbage collector may hand the new buffer memory that earlier tests used (and zero it, touching every page):
        // the buffer gives those pages back when it is made, so it starts as a fresh mapping does (at most the pages it
        // shares at its two ends), and only the load makes them resident.
        Assert.InRange(ResidentBytes(model.Buffer), 0, 2L * Environment.SystemPageSize);
        long fp32 = (long)model.Layout.ParameterCount * sizeof(float);
        long largest = model.Layout.PackedMatrices.Max(m => (long)m.Rows * m.Columns * sizeof(float));
        long most;
        using (var stream = new ProbingStream(checkpoint, () => ResidentBytes(model.Buffer)))
        {
            model.Load(stream, "decoder.safetensors");
            most = stream.Most;
        }
        model.PackWeights(); // as ForInference(checkpoint) does: nothing is left to pack
        Assert.True(model.WeightsPacked);
        // Every matrix in its reduced form, the vectors in fp32, the matrix being read in fp32, a page at each end of each.
        long bound = model.WeightMatrixBytes + 4L * (model.Layout.ParameterCount - model.Layout.PackedMatrices.Sum(m => (long)m.Rows * m.Columns))
            + largest + 2L * Environment.SystemPageSize * (model.Layout.PackedMatrices.Length + model.Layout.Tensors.Count);
        // Packing after the load would hold all of the fp32 bytes first; the bound is 61% of them for bf16, 36% for 8 bits.
        Assert.True(4 * bound < 3 * fp32, $"the bound ({bound} bytes) is no test against {fp32} bytes of fp32");
        Assert.InRange(most, largest, bound);

        // The same bytes as the instance that packs the same seeded values itself.
        StreamedDecoder reference = StreamedDecoder.ForInference(3, weights);
        long pages = (long)Environment.SystemPageSize * model.Layout.PackedMatrices.Length;
        Assert.InRange(model.ReleasedWeightBytes - reference.ReleasedWeightBytes, -pages, pages);
        int[] prompt = [5, 3999, 17, 256, 3];
        Assert.True(reference.Append(prompt).SequenceEqual(model.Append(prompt)));
    }
    [Theory]
    [InlineData(WeightType.Int8)]
    [InlineData(WeightType.BFloat16)]
    public void A_family_checkpoint_packed_while_loading_gives_the_bytes_packing_after_the_load_gives(WeightType weights)
    {
        string checkpoint = Path.Combine(_folder, "llama.safetensors");
        ReducedLlama.ForInference(7, WeightType.Float32).Save(checkpoint);
        ReducedLlama streamed = ReducedLlama.ForInference(checkpoint, weights); // fresh: each matrix packed once read
        ReducedLlama after = ReducedLlama.ForInference(1, weights);              // packed already: unpacks, reads, packs
        after.Load(checkpoint);
        // q, k and v (72, 24 and 24 rows) are read as one matrix of 120 rows, packed once its three tensors are in.
        Assert.Contains(streamed.Layout.PackedMatrices, m => m.Rows == 120);
        // The pages given back: as many, but for where each instance's buffer puts the page boundaries (a page a matrix).
        long pages = (long)Environment.SystemPageSize * streamed.Layout.PackedMatrices.Length;
        Assert.InRange(streamed.ReleasedWeightBytes - after.ReleasedWeightBytes, -pages, pages);
        Assert.Equal(OperatingSystem.IsLinux(), streamed.ReleasedWeightBytes > 0);
        Assert.Equal(after.WeightMatrixBytes, streamed.WeightMatrixBytes);
        int[] prompt = [1, 130, 17, 64, 3];
        Assert.True(after.Append(prompt).SequenceEqual(streamed.Append(prompt)));
    }

    [Fact]
    public void A_weight_8_bit_blocks_refuse_stops_the_packing_and_leaves_every_matrix_as_rows()
    {
        ReducedLlama source = ReducedLlama.ForInference(7, WeightType.Float32);
        WeightMatrix middle = source.Layout.PackedMatrices[source.Layout.PackedMatrices.Length / 2];
        source.Parameters[middle.Offset + 3] = float.NaN;
        string checkpoint = Path.Combine(_folder, "nan.safetensors");
        source.Save(checkpoint);

        ArgumentException refused = Assert.Throws<ArgumentException>(() => ReducedLlama.ForInference(checkpoint, WeightType.Int8));
        Assert.Contains("NaN", refused.Message);
        ReducedLlama model = ReducedLlama.Unloaded(WeightType.Int8);
        Assert.Throws<ArgumentException>(() => model.Load(checkpoint));
        // Rows throughout, each value as loaded or as its 8-bit block rounded it (the matrices packed before the refusal).
        Assert.False(model.WeightsPacked);
        Assert.Equal(0, model.ReleasedWeightBytes);
        float[] loaded = model.Parameters.ToArray(), exact = source.Parameters.ToArray();
        Assert.True(float.IsNaN(loaded[middle.Offset + 3]));
        for (int i = 0; i < exact.Length; i++)
            if (!float.IsNaN(exact[i])) Assert.InRange(loaded[i] - exact[i], -2e-3f, 2e-3f);
    }
}
