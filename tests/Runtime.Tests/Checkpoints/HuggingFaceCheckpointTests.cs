using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Xunit;
using static TransformerGen.Tests.Checkpoints.HuggingFaceTestFiles;

namespace TransformerGen.Tests.Checkpoints;

/// <summary>
/// Loading single-file Hugging Face checkpoints of GPT-2, BERT, Llama and Qwen2 written by the test's own writer:
/// names (canonical, prefixed, legacy), buffers, unused heads, tied copies, dtypes, transposed tensors, and every
/// refusal, after which the buffer must be untouched.
/// </summary>
public sealed class HuggingFaceCheckpointTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("tg-hf-checkpoint-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string PathOf(string name) => Path.Combine(_directory, name);

    public static TheoryData<CheckpointFamily> Families => new() { CheckpointFamily.Gpt2, CheckpointFamily.Bert, CheckpointFamily.Llama, CheckpointFamily.Qwen2 };

    private static void AssertBitEqual(float[] expected, float[] actual) =>
        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), actual.Select(BitConverter.SingleToInt32Bits));

    /// <summary>Loads <paramref name="files"/> written as one file into a fresh buffer of <paramref name="model"/>.</summary>
    private (SafeTensorsLoadReport Report, float[] Buffer) Load(FamilyModel model, IEnumerable<FileTensor> files, string name = "model.safetensors")
    {
        string path = Write(PathOf(name), files, new Dictionary<string, string> { ["format"] = "pt" });
        float[] buffer = model.NewBuffer();
        SafeTensorsLoadReport report = HuggingFaceCheckpoint.Load(path, model.Table, buffer, model.Family);
        return (report, buffer);
    }

    /// <summary>Asserts that loading <paramref name="files"/> is refused, with every fragment in the message, and leaves the buffer as it was.</summary>
    private InvalidDataException Refused(FamilyModel model, IEnumerable<FileTensor> files, params string[] fragments)
    {
        string path = Write(PathOf("refused.safetensors"), files);
        float[] buffer = model.NewBuffer();
        var error = Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(path, model.Table, buffer, model.Family));
        Assert.Contains(path, error.Message);
        foreach (string fragment in fragments) Assert.Contains(fragment, error.Message);
        Assert.All(buffer, x => Assert.Equal(Sentinel, x));
        return error;
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void CanonicalNamesLoadEveryElementInPlace(CheckpointFamily family)
    {
        FamilyModel model = ForFamily(family);
        (SafeTensorsLoadReport report, float[] buffer) = Load(model, model.FileTensors());

        AssertBitEqual(model.Expected(), buffer);
        Assert.Equal(model.Table.Select(t => t.Name), report.Loaded);
        Assert.Empty(report.Skipped);
        Assert.True(report.IsExactMatch);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void TheOtherPrefixFormLoadsTheSame(CheckpointFamily family)
    {
        FamilyModel model = ForFamily(family);
        (SafeTensorsLoadReport report, float[] buffer) = Load(model, model.FileTensors(name => OtherForm(family, name)));

        AssertBitEqual(model.Expected(), buffer);
        Assert.Equal(model.Table.Select(t => t.Name), report.Loaded); // reported with the model's names
    }

    [Fact]
    public void Gpt2ConvWeightsAreTransposedFromInOut()
    {
        FamilyModel model = Gpt2();
        (_, float[] buffer) = Load(model, model.FileTensors());

        // c_attn: model [3E, E] = [out, in], file [E, 3E]; element (o, i) of the model is (i, o) of the file.
        int t = model.Table.FindIndex(x => x.Name == "h.1.attn.c_attn.weight");
        ParameterTensor cAttn = model.Table[t];
        Assert.Equal([3 * E, E], cAttn.Shape.ToArray());
        FileTensor stored = model.FileTensors().Single(f => f.Name == cAttn.Name);
        Assert.Equal([E, 3L * E], stored.Shape);
        for (int o = 0; o < 3 * E; o++)
            for (int i = 0; i < E; i++)
                Assert.Equal(BitConverter.ToSingle(stored.Data, 4 * (i * 3 * E + o)), buffer[cAttn.Offset + o * E + i]);
    }

    [Theory]
    [InlineData("F16")]
    [InlineData("BF16")]
    public void HalfPrecisionFilesLoadTheSameValuesExactly(string dtype)
    {
        foreach (CheckpointFamily family in new[] { CheckpointFamily.Gpt2, CheckpointFamily.Bert, CheckpointFamily.Qwen2 })
        {
            FamilyModel model = ForFamily(family);
            (_, float[] buffer) = Load(model, model.FileTensors(dtype: dtype));
            AssertBitEqual(model.Expected(), buffer);

            // Mixed: every third tensor F32, the next F16, the next BF16.
            (_, buffer) = Load(model, model.FileTensors(dtypeOf: t => (t % 3) switch { 0 => "F32", 1 => "F16", _ => "BF16" }));
            AssertBitEqual(model.Expected(), buffer);
        }
    }

    [Theory]
    [InlineData("BF16")]
    [InlineData("F16")]
    public void EveryHalfBitPatternConvertsExactly(string dtype)
    {
        // Two [256, 256] tensors hold every 16-bit pattern in order: one read as stored, one transposed.
        FamilyModel model = Table(CheckpointFamily.Gpt2, [("wte.weight", [256, 256], false), ("h.0.mlp.c_fc.weight", [256, 256], true)]);
        var bits = new byte[2 << 16];
        for (int b = 0; b < 1 << 16; b++) BitConverter.TryWriteBytes(bits.AsSpan(2 * b), (ushort)b);
        FileTensor[] files = [new("wte.weight", dtype, [256, 256], bits), new("h.0.mlp.c_fc.weight", dtype, [256, 256], bits)];

        (_, float[] buffer) = Load(model, files);

        ParameterTensor plain = model.Table[0], transposed = model.Table[1];
        for (int b = 0; b < 1 << 16; b++)
        {
            float expected = dtype == "BF16" ? BitConverter.Int32BitsToSingle(b << 16) : (float)BitConverter.UInt16BitsToHalf((ushort)b);
            int r = b / 256, c = b % 256; // the stored element (r, c) is the model's (c, r)
            foreach (float loaded in new[] { buffer[plain.Offset + b], buffer[transposed.Offset + c * 256 + r] })
            {
                if (dtype == "BF16") Assert.Equal(b << 16, BitConverter.SingleToInt32Bits(loaded)); // bits << 16, NaN payloads too
                else if (float.IsNaN(expected)) Assert.True(float.IsNaN(loaded));
                else Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(loaded));
            }
        }
    }

    [Fact]
    public void TransposedTensorsCrossTheScratchInBlocksAndRowPieces()
    {
        // c_fc is stored [E, I] with I = 20001 > the 16384-float scratch: rows are read in pieces. c_proj is stored
        // [I, E]: many blocks of whole rows. Values t·2^17 + i are exact in F32 and distinct.
        FamilyModel model = Gpt2(e: 4, intermediate: 20_001, layers: 1) with { Value = static (t, i) => t * 131072f + i };
        (_, float[] buffer) = Load(model, model.FileTensors());
        AssertBitEqual(model.Expected(), buffer);
    }

    [Fact]
    public void BertBaseUncasedStyleFileLoads()
    {
        // bert-base-uncased: "bert." prefix, LayerNorm gamma/beta, position_ids buffer, pooler, MLM and NSP heads.
        FamilyModel model = Bert();
        var files = model.FileTensors(name => "bert." + name.Replace("LayerNorm.weight", "LayerNorm.gamma").Replace("LayerNorm.bias", "LayerNorm.beta"));
        Assert.Contains(files, f => f.Name == "bert.encoder.layer.1.output.LayerNorm.gamma");
        files.Insert(3, Zeros("bert.embeddings.position_ids", "I64", 1, P));
        files.AddRange(
        [
            Zeros("bert.pooler.dense.weight", "F32", E, E), Zeros("bert.pooler.dense.bias", "F32", E),
            Zeros("cls.predictions.bias", "F32", V), Zeros("cls.predictions.transform.dense.weight", "F32", E, E),
            Zeros("cls.predictions.transform.LayerNorm.gamma", "F32", E), Zeros("cls.predictions.decoder.weight", "F32", V, E),
            Zeros("cls.seq_relationship.weight", "F32", 2, E), Zeros("cls.seq_relationship.bias", "F32", 2),
        ]);

        (SafeTensorsLoadReport report, float[] buffer) = Load(model, files);

        AssertBitEqual(model.Expected(), buffer);
        Assert.Equal(
            [("bert.embeddings.position_ids", SafeTensorsSkipReason.Buffer), ("bert.pooler.dense.weight", SafeTensorsSkipReason.UnusedHead),
             ("bert.pooler.dense.bias", SafeTensorsSkipReason.UnusedHead), ("cls.predictions.bias", SafeTensorsSkipReason.UnusedHead),
             ("cls.predictions.transform.dense.weight", SafeTensorsSkipReason.UnusedHead), ("cls.predictions.transform.LayerNorm.gamma", SafeTensorsSkipReason.UnusedHead),
             ("cls.predictions.decoder.weight", SafeTensorsSkipReason.UnusedHead), ("cls.seq_relationship.weight", SafeTensorsSkipReason.UnusedHead),
             ("cls.seq_relationship.bias", SafeTensorsSkipReason.UnusedHead)],
            report.Skipped.Select(s => (s.Name, s.Reason)));
        Assert.Equal([1L, P], report.Skipped[0].Shape);
        Assert.Equal("I64", report.Skipped[0].DType);
        Assert.Contains("position_ids", report.ToString());
    }

    [Fact]
    public void LegacyAndCurrentNamesOfOneTensorTogetherAreRefused()
    {
        FamilyModel model = Bert();
        var files = model.FileTensors();
        files.Add(Zeros("embeddings.LayerNorm.gamma", "F32", E));
        Refused(model, files, "embeddings.LayerNorm.gamma", "embeddings.LayerNorm.weight", "same tensor");
    }

    [Fact]
    public void PrefixedAndBareNamesOfOneTensorTogetherAreRefused()
    {
        FamilyModel model = Gpt2();
        var files = model.FileTensors();
        files.Add(files[0] with { Name = "transformer.wte.weight" });
        Refused(model, files, "transformer.wte.weight", "'wte.weight'", "same tensor");
    }

    [Fact]
    public void Gpt2BuffersAreSkippedByNameAndShape()
    {
        FamilyModel model = Gpt2();
        var files = model.FileTensors(name => "transformer." + name);
        files.Add(Zeros("transformer.h.0.attn.bias", "F32", 1, 1, P, P));
        files.Add(Zeros("transformer.h.1.attn.bias", "BOOL", 1, 1, P, P));
        files.Add(Zeros("transformer.h.0.attn.masked_bias", "F32"));        // shape []
        files.Add(Zeros("transformer.h.1.attn.masked_bias", "F32", 1));     // shape [1]
        files.Add(Zeros("lm_head.weight", "F32", V, E));                    // GPT2LMHeadModel keeps the tied copy

        (SafeTensorsLoadReport report, float[] buffer) = Load(model, files);

        AssertBitEqual(model.Expected(), buffer);
        Assert.Equal(
            [SafeTensorsSkipReason.Buffer, SafeTensorsSkipReason.Buffer, SafeTensorsSkipReason.Buffer, SafeTensorsSkipReason.Buffer, SafeTensorsSkipReason.TiedCopy],
            report.Skipped.Select(s => s.Reason));
        Assert.Equal("lm_head.weight", report.Skipped[^1].Name);
        Assert.Empty(report.Skipped[2].Shape);
    }

    [Theory]
    [InlineData(CheckpointFamily.Llama)]
    [InlineData(CheckpointFamily.Qwen2)]
    public void RotaryFrequenciesAreSkippedAndATiedCopyOfTheEmbeddingIsReported(CheckpointFamily family)
    {
        FamilyModel model = Llama(family, tied: true);
        var files = model.FileTensors();
        files.Add(Zeros("model.layers.0.self_attn.rotary_emb.inv_freq", "F32", HeadDim / 2));
        files.Add(Zeros("model.layers.1.self_attn.rotary_emb.inv_freq", "BF16", HeadDim / 2));
        files.Add(Zeros("lm_head.weight", "BF16", V, E));

        (SafeTensorsLoadReport report, float[] buffer) = Load(model, files);

        AssertBitEqual(model.Expected(), buffer);
        Assert.Equal([SafeTensorsSkipReason.Buffer, SafeTensorsSkipReason.Buffer, SafeTensorsSkipReason.TiedCopy], report.Skipped.Select(s => s.Reason));
        Assert.DoesNotContain("lm_head.weight", report.Loaded);
    }

    [Fact]
    public void AnUntiedModelLoadsItsOwnHeadAndATiedOneLoadsWithoutIt()
    {
        FamilyModel untied = Llama(tied: false);
        (SafeTensorsLoadReport report, float[] buffer) = Load(untied, untied.FileTensors());
        Assert.Contains("lm_head.weight", report.Loaded);
        AssertBitEqual(untied.Expected(), buffer);

        FamilyModel tied = Llama(tied: true);
        (report, buffer) = Load(tied, tied.FileTensors());
        AssertBitEqual(tied.Expected(), buffer);
        Assert.Empty(report.Skipped);
    }

    [Fact]
    public void ATiedCopyOfAnotherShapeIsRefused()
    {
        FamilyModel model = Llama(tied: true);
        var files = model.FileTensors();
        files.Add(Zeros("lm_head.weight", "F32", V + 1, E));
        Refused(model, files, "lm_head.weight", $"[{V + 1}, {E}]", $"[{V}, {E}]", "model.embed_tokens.weight");
    }

    public static TheoryData<CheckpointFamily, string, string, long[]> WrongBuffers => new()
    {
        { CheckpointFamily.Gpt2, "h.0.attn.bias", "F32", [1, 1, P + 1, P + 1] },  // the mask of another context length
        { CheckpointFamily.Gpt2, "h.0.attn.bias", "F32", [P, P] },
        { CheckpointFamily.Gpt2, "h.0.attn.bias", "I64", [1, 1, P, P] },
        { CheckpointFamily.Gpt2, "transformer.h.1.attn.masked_bias", "F32", [2] },
        { CheckpointFamily.Bert, "embeddings.position_ids", "I64", [1, P + 3] },
        { CheckpointFamily.Bert, "bert.embeddings.position_ids", "F32", [1, P] },
        { CheckpointFamily.Llama, "model.layers.0.self_attn.rotary_emb.inv_freq", "F32", [4] },  // D = 8 divides neither 6 nor 2
        { CheckpointFamily.Qwen2, "layers.1.self_attn.rotary_emb.inv_freq", "F32", [1, 1] },
    };

    [Theory]
    [MemberData(nameof(WrongBuffers))]
    public void ABufferNameWithTheWrongShapeOrDtypeIsRefused(CheckpointFamily family, string name, string dtype, long[] shape)
    {
        FamilyModel model = ForFamily(family);
        var files = model.FileTensors();
        files.Add(Zeros(name, dtype, shape));
        Refused(model, files, name, "[" + string.Join(", ", shape) + "]", dtype, "buffer");
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void AnUnknownTensorIsRefused(CheckpointFamily family)
    {
        FamilyModel model = ForFamily(family);
        var files = model.FileTensors();
        files.Insert(4, Zeros("h.0.attn.rotary.weight", "F32", 2, 3));
        Refused(model, files, "Not in the model (1)", "h.0.attn.rotary.weight [2, 3] F32");
    }

    [Fact]
    public void UnusedHeadsOfOneFamilyAreUnknownToAnother()
    {
        FamilyModel model = Gpt2();
        var files = model.FileTensors();
        files.Add(Zeros("pooler.dense.weight", "F32", E, E));
        Refused(model, files, "Not in the model (1)", "pooler.dense.weight");
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void AMissingTensorIsRefused(CheckpointFamily family)
    {
        FamilyModel model = ForFamily(family);
        var files = model.FileTensors();
        string name = files[^2].Name;
        files.RemoveAt(files.Count - 2);
        Refused(model, files, "Missing from the checkpoint (1)", name);
    }

    [Fact]
    public void AMissingTransposedTensorIsNamedWithTheShapeTheFileWouldHave()
    {
        FamilyModel model = Gpt2();
        var files = model.FileTensors().Where(f => f.Name != "h.0.mlp.c_fc.weight").ToList();
        Refused(model, files, $"h.0.mlp.c_fc.weight [{E}, {I}]");
    }

    [Fact]
    public void AFileOfAnotherFamilyIsRefusedWithAHint()
    {
        FamilyModel gpt2 = Gpt2();
        FamilyModel bert = Bert();
        InvalidDataException error = Refused(gpt2, bert.FileTensors(), "is it a Gpt2 checkpoint?", "embeddings.word_embeddings.weight", "wte.weight");
        Assert.Contains("Missing from the checkpoint (28)", error.Message);
    }

    [Fact]
    public void AShapeMismatchIsRefusedWithBothShapes()
    {
        FamilyModel model = Bert();
        var files = model.FileTensors();
        int t = files.FindIndex(f => f.Name == "encoder.layer.1.intermediate.dense.weight");
        files[t] = Zeros(files[t].Name, "F32", I - 1, E);
        Refused(model, files, "encoder.layer.1.intermediate.dense.weight", $"[{I - 1}, {E}]", $"[{I}, {E}]");
    }

    [Fact]
    public void AConvWeightStoredInTheModelsOrientationIsRefused()
    {
        FamilyModel model = Gpt2();
        var files = model.FileTensors();
        int t = files.FindIndex(f => f.Name == "h.0.mlp.c_fc.weight");
        files[t] = files[t] with { Shape = [I, E] };
        Refused(model, files, "h.0.mlp.c_fc.weight", $"is [{I}, {E}] in the file", $"needs [{E}, {I}]", "transposed");
    }

    [Fact]
    public void AnIntegerWeightIsRefused()
    {
        FamilyModel model = Llama();
        var files = model.FileTensors();
        files[^1] = Zeros("lm_head.weight", "I64", V, E);
        Refused(model, files, "lm_head.weight", "I64");
    }

    [Fact]
    public void ATruncatedFileIsRefusedEvenWhenTheCutTensorIsSkipped()
    {
        FamilyModel model = Gpt2();
        var files = model.FileTensors();
        files.Add(Zeros("h.1.attn.bias", "F32", 1, 1, P, P)); // last in the data
        string path = Write(PathOf("cut.safetensors"), files);
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..^4]);
        float[] buffer = model.NewBuffer();
        var error = Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(path, model.Table, buffer, model.Family));
        Assert.Contains("h.1.attn.bias", error.Message);
        Assert.Contains("truncated", error.Message);
        Assert.All(buffer, x => Assert.Equal(Sentinel, x));
    }

    [Fact]
    public void ADirectoryWithModelSafetensorsLoads()
    {
        FamilyModel model = Qwen2Tied();
        string directory = Directory.CreateDirectory(PathOf("qwen")).FullName;
        Write(Path.Combine(directory, "model.safetensors"), model.FileTensors(name => OtherForm(model.Family, name), "BF16"));
        float[] buffer = model.NewBuffer();
        HuggingFaceCheckpoint.Load(directory, model.Table, buffer, model.Family);
        AssertBitEqual(model.Expected(), buffer);
    }

    private static FamilyModel Qwen2Tied() => Llama(CheckpointFamily.Qwen2, tied: true);

    [Fact]
    public void ADirectoryWithoutACheckpointNamesWhatWasLookedFor()
    {
        FamilyModel model = Gpt2();
        string directory = Directory.CreateDirectory(PathOf("empty")).FullName;
        File.WriteAllText(Path.Combine(directory, "pytorch_model.bin"), "not read");
        var error = Assert.Throws<FileNotFoundException>(() => HuggingFaceCheckpoint.Load(directory, model.Table, model.NewBuffer(), model.Family));
        Assert.Contains(Path.Combine(directory, "model.safetensors"), error.Message);
        Assert.Contains(Path.Combine(directory, "model.safetensors.index.json"), error.Message);
    }

    [Fact]
    public void AStreamLoadsAsAFileDoesAndNamesItselfInErrors()
    {
        FamilyModel model = Gpt2();
        var files = model.FileTensors(name => "transformer." + name, "BF16");
        files.Add(Zeros("transformer.h.0.attn.bias", "F32", 1, 1, P, P));
        float[] buffer = model.NewBuffer();
        SafeTensorsLoadReport report = HuggingFaceCheckpoint.Load(new MemoryStream(Bytes(files)), model.Table, buffer, model.Family, "gpt2.safetensors");
        AssertBitEqual(model.Expected(), buffer);
        Assert.Equal("gpt2.safetensors", Assert.Single(report.Skipped).File);

        files.RemoveAt(3);
        buffer = model.NewBuffer();
        var error = Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(new MemoryStream(Bytes(files)), model.Table, buffer, model.Family, "gpt2.safetensors"));
        Assert.Contains("'gpt2.safetensors'", error.Message);
        Assert.All(buffer, x => Assert.Equal(Sentinel, x));
    }

    [Fact]
    public void NativeIsTheStrictLoaderUnchanged()
    {
        FamilyModel gpt2 = Gpt2();
        List<ParameterTensor> table = gpt2.Table; // StoredTransposed means nothing to a native file
        float[] saved = TensorTables.RandomBuffer(gpt2.BufferLength, 5);
        string path = PathOf("native.safetensors");
        SafeTensors.Save(path, table, saved);

        float[] buffer = gpt2.NewBuffer();
        SafeTensorsLoadReport report = HuggingFaceCheckpoint.Load(path, table, buffer, CheckpointFamily.Native);
        Assert.True(report.IsExactMatch);
        foreach (ParameterTensor t in table)
            Assert.True(saved.AsSpan(t.Offset, t.Length).SequenceEqual(buffer.AsSpan(t.Offset, t.Length)));

        // No prefix, no buffers: a Hugging Face spelling is a mismatch, exactly as SafeTensors.Load says.
        Write(path, gpt2.FileTensors(name => "transformer." + name));
        var native = Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(path, table, gpt2.NewBuffer(), CheckpointFamily.Native));
        var strict = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path, table, gpt2.NewBuffer()));
        Assert.Equal(strict.Message, native.Message);
        using var stream = new MemoryStream(File.ReadAllBytes(path));
        Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(stream, table, gpt2.NewBuffer(), CheckpointFamily.Native));
    }

    [Fact]
    public void ATableWhoseNamesCollideWithoutThePrefixIsRejected()
    {
        FamilyModel model = Table(CheckpointFamily.Llama, [("model.norm.weight", [E], false), ("norm.weight", [E], false)]);
        var error = Assert.Throws<ArgumentException>(() => HuggingFaceCheckpoint.Load(new MemoryStream(Bytes([])), model.Table, model.NewBuffer(), model.Family));
        Assert.Contains("model.norm.weight", error.Message);
        Assert.Contains("'norm.weight'", error.Message);
    }

    [Fact]
    public void ATransposedTensorThatIsNot2DIsRejected()
    {
        FamilyModel model = Table(CheckpointFamily.Gpt2, [("wte.weight", [2, 3, 4], true)]);
        var error = Assert.Throws<ArgumentException>(() => HuggingFaceCheckpoint.Load(new MemoryStream(Bytes([])), model.Table, model.NewBuffer(), model.Family));
        Assert.Contains("StoredTransposed", error.Message);
    }
}
