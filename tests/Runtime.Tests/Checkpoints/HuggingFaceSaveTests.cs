using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using Xunit;
using static TransformerGen.Tests.Checkpoints.HuggingFaceTestFiles;

namespace TransformerGen.Tests.Checkpoints;

/// <summary>
/// Saving a model as a Hugging Face checkpoint: what the file holds (read back here with JSON and raw bytes, not with
/// the loader) and that loading it gives back the same bits.
/// </summary>
public sealed class HuggingFaceSaveTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("tg-hf-save-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string PathOf(string name) => Path.Combine(_directory, name);

    public static TheoryData<CheckpointFamily> Families => new() { CheckpointFamily.Gpt2, CheckpointFamily.Bert, CheckpointFamily.Llama, CheckpointFamily.Qwen2 };

    /// <summary>Random values with the awkward ones in front: −0, a subnormal, infinity, a NaN with a payload.</summary>
    private static float[] Values(int length, ulong seed)
    {
        float[] values = TensorTables.RandomBuffer(length, seed);
        values[0] = -0f;
        values[1] = float.Epsilon;
        values[2] = float.NegativeInfinity;
        values[3] = BitConverter.Int32BitsToSingle(0x7FC0_1234);
        return values;
    }

    private static void AssertTensorsBitEqual(FamilyModel model, float[] expected, float[] actual)
    {
        foreach (ParameterTensor t in model.Table)
            Assert.Equal(expected.AsSpan(t.Offset, t.Length).ToArray().Select(BitConverter.SingleToInt32Bits), actual.AsSpan(t.Offset, t.Length).ToArray().Select(BitConverter.SingleToInt32Bits));
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void SaveThenLoadIsBitIdentical(CheckpointFamily family)
    {
        FamilyModel model = ForFamily(family);
        float[] saved = Values(model.BufferLength, 3);
        string path = PathOf("model.safetensors");
        HuggingFaceCheckpoint.Save(path, model.Table, saved, family);

        float[] loaded = model.NewBuffer();
        SafeTensorsLoadReport report = HuggingFaceCheckpoint.Load(path, model.Table, loaded, family);
        AssertTensorsBitEqual(model, saved, loaded);
        Assert.Empty(report.Skipped);

        loaded = model.NewBuffer();
        using var stream = File.OpenRead(path);
        HuggingFaceCheckpoint.Load(stream, model.Table, loaded, family);
        AssertTensorsBitEqual(model, saved, loaded);
    }

    [Fact]
    public void LargeTransposedTensorsRoundTripThroughTheScratch()
    {
        FamilyModel model = Gpt2(e: 4, intermediate: 20_001, layers: 1);
        float[] saved = Values(model.BufferLength, 4);
        string path = PathOf("big.safetensors");
        HuggingFaceCheckpoint.Save(path, model.Table, saved, CheckpointFamily.Gpt2);
        float[] loaded = model.NewBuffer();
        HuggingFaceCheckpoint.Load(path, model.Table, loaded, CheckpointFamily.Gpt2);
        AssertTensorsBitEqual(model, saved, loaded);
    }

    [Fact]
    public void SaveWritesCanonicalF32NamesConvWeightsInOutAndFormatPt()
    {
        FamilyModel model = Gpt2();
        float[] buffer = model.Expected(); // identifying values
        string path = PathOf("gpt2.safetensors");
        HuggingFaceCheckpoint.Save(path, model.Table, buffer, CheckpointFamily.Gpt2, new Dictionary<string, string> { ["model"] = "TinyGpt2" });

        byte[] bytes = File.ReadAllBytes(path);
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        using JsonDocument header = JsonDocument.Parse(bytes.AsMemory(8, headerLength));
        JsonElement root = header.RootElement;
        Assert.Equal("pt", root.GetProperty("__metadata__").GetProperty("format").GetString());
        Assert.Equal("TinyGpt2", root.GetProperty("__metadata__").GetProperty("model").GetString());
        Assert.Equal(model.Table.Select(t => t.Name).Order(StringComparer.Ordinal), root.EnumerateObject().Select(p => p.Name).Where(n => n != "__metadata__").Order(StringComparer.Ordinal));

        foreach (ParameterTensor tensor in model.Table)
        {
            JsonElement entry = root.GetProperty(tensor.Name);
            Assert.Equal("F32", entry.GetProperty("dtype").GetString());
            int[] shape = entry.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();
            int begin = 8 + headerLength + entry.GetProperty("data_offsets")[0].GetInt32();
            float Stored(int i) => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(begin + 4 * i));
            if (tensor.StoredTransposed)
            {
                // [out, in] in memory, [in, out] in the file: stored (i, o) is the model's (o, i).
                int outFeatures = tensor.Shape[0], inFeatures = tensor.Shape[1];
                Assert.Equal([inFeatures, outFeatures], shape);
                for (int i = 0; i < inFeatures; i++)
                    for (int o = 0; o < outFeatures; o++)
                        Assert.Equal(buffer[tensor.Offset + o * inFeatures + i], Stored(i * outFeatures + o));
            }
            else
            {
                Assert.Equal(tensor.Shape.ToArray(), shape);
                for (int i = 0; i < tensor.Length; i++) Assert.Equal(buffer[tensor.Offset + i], Stored(i));
            }
        }
        Assert.Equal([E, 3 * E], root.GetProperty("h.0.attn.c_attn.weight").GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()));
        Assert.Equal([I, E], root.GetProperty("h.1.mlp.c_proj.weight").GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()));
    }

    [Fact]
    public void SaveReplacesAFileAtomicallyAndLeavesNoTemporaryFile()
    {
        FamilyModel model = Llama(tied: true);
        string path = PathOf("model.safetensors");
        HuggingFaceCheckpoint.Save(path, model.Table, Values(model.BufferLength, 5), CheckpointFamily.Llama);
        float[] second = Values(model.BufferLength, 6);
        HuggingFaceCheckpoint.Save(path, model.Table, second, CheckpointFamily.Llama);

        Assert.Equal([path], Directory.GetFiles(_directory));
        float[] loaded = model.NewBuffer();
        HuggingFaceCheckpoint.Load(_directory, model.Table, loaded, CheckpointFamily.Llama);
        AssertTensorsBitEqual(model, second, loaded);
        Assert.DoesNotContain("lm_head.weight", SafeTensorsNames(path)); // tied: one copy, as transformers writes it
    }

    [Fact]
    public void AFormatOtherThanPtIsRefusedAndNothingIsWritten()
    {
        FamilyModel model = Bert();
        string path = PathOf("bert.safetensors");
        var error = Assert.Throws<ArgumentException>(() => HuggingFaceCheckpoint.Save(path, model.Table, new float[model.BufferLength], CheckpointFamily.Bert, new Dictionary<string, string> { ["format"] = "tf" }));
        Assert.Contains("'tf'", error.Message);
        Assert.Empty(Directory.GetFiles(_directory));
    }

    [Fact]
    public void NativeSaveIsTheSafeTensorsSave()
    {
        FamilyModel model = Gpt2();
        float[] values = Values(model.BufferLength, 7);
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["model"] = "m" };
        HuggingFaceCheckpoint.Save(PathOf("a.safetensors"), model.Table, values, CheckpointFamily.Native, metadata);
        SafeTensors.Save(PathOf("b.safetensors"), model.Table, values, metadata);
        Assert.Equal(File.ReadAllBytes(PathOf("b.safetensors")), File.ReadAllBytes(PathOf("a.safetensors")));
    }

    private static IEnumerable<string> SafeTensorsNames(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        using JsonDocument header = JsonDocument.Parse(bytes.AsMemory(8, (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes)));
        return header.RootElement.EnumerateObject().Select(p => p.Name).ToList();
    }
}
