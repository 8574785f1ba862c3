using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using LLama.Native;
using TransformerGen.Model.Tests;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Export.Tests;

/// <summary>What the exporter writes, read back with the test's own GGUF reader: metadata, layout, every tensor's bytes.</summary>
public sealed class GgufFileTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("gguf-file-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private (GgufFile File, GgufExportReport Report, LanguageModel Model) Export(string config, GgufTensorType type)
    {
        LanguageModel model = GgufLlamaCppTests.Build(config);
        string path = Path.Combine(_folder, $"{config}.{type}.gguf");
        GgufExportReport report = model.SaveGguf(path, GgufLlamaCppTests.Config(config), type);
        return (GgufFile.Read(path), report, model);
    }

    private static ReadOnlySpan<float> Values(LanguageModel model, string name)
    {
        foreach (ParameterTensor t in model.ParameterTensors)
            if (t.Name == name) return model.Parameters.Slice(t.Offset, t.Length);
        throw new KeyNotFoundException(name);
    }

    [Fact]
    public void LlamaMetadataIsWhatLlamaCppReads()
    {
        (GgufFile file, _, _) = Export("llama-gqa", GgufTensorType.F32);
        Dictionary<string, object> m = file.Metadata;
        Assert.Equal(3u, file.Version);
        Assert.Equal("llama", m["general.architecture"]);
        Assert.Equal("LlamaGqaModel", m["general.name"]);
        Assert.Equal(0u, m["general.file_type"]);
        Assert.Equal(32u, m["llama.context_length"]);      // max_position_embeddings
        Assert.Equal(40u, m["llama.embedding_length"]);
        Assert.Equal(2u, m["llama.block_count"]);
        Assert.Equal(52u, m["llama.feed_forward_length"]);
        Assert.Equal(4u, m["llama.attention.head_count"]);
        Assert.Equal(2u, m["llama.attention.head_count_kv"]);
        Assert.Equal(12u, m["llama.attention.key_length"]); // head_dim 12, not 40 / 4
        Assert.Equal(12u, m["llama.attention.value_length"]);
        Assert.Equal(12u, m["llama.rope.dimension_count"]);
        Assert.Equal(10000f, m["llama.rope.freq_base"]);
        Assert.Equal(1e-5f, m["llama.attention.layer_norm_rms_epsilon"]);
        Assert.Equal(47u, m["llama.vocab_size"]);
        Assert.Equal("gpt2", m["tokenizer.ggml.model"]);
        Assert.Equal(47, ((List<object>)m["tokenizer.ggml.tokens"]).Count);
        Assert.Equal(47, ((List<object>)m["tokenizer.ggml.token_type"]).Count);
        Assert.Equal(1u, m["tokenizer.ggml.bos_token_id"]);
        Assert.Equal(2u, m["tokenizer.ggml.eos_token_id"]);
        Assert.Equal(47, new HashSet<object>((List<object>)m["tokenizer.ggml.tokens"]).Count); // distinct
        // Untied: the head is its own tensor; dimensions are the model's shape reversed (ne[0] = the row length).
        Assert.Equal([40L, 47L], file.Tensor("output.weight").Dimensions);
        Assert.Equal([40L, 48L], file.Tensor("blk.1.attn_q.weight").Dimensions);
        Assert.Equal([40L, 24L], file.Tensor("blk.1.attn_k.weight").Dimensions);
        Assert.Equal([52L, 40L], file.Tensor("blk.0.ffn_down.weight").Dimensions);
        Assert.Equal(2 + 2 * 9 + 1, file.Tensors.Count);
        Assert.Equal(0, file.DataStart % 32);
        foreach (GgufFile.TensorEntry t in file.Tensors) Assert.Equal(0, t.Offset % 32);
    }

    [Fact]
    public void TiedModelsHaveNoOutputTensor()
    {
        (GgufFile file, _, _) = Export("llama-mqa", GgufTensorType.F32);
        Assert.DoesNotContain(file.Tensors, t => t.Name == "output.weight");
        Assert.Equal(100000f, file.Metadata["llama.rope.freq_base"]);
        Assert.Equal(1u, file.Metadata["llama.attention.head_count_kv"]);
    }

    /// <summary>Every F32 tensor holds the model's floats; query and key rows (and Qwen2's biases) paired per head.</summary>
    [Theory]
    [InlineData("llama-gqa", 4, 2, 12)]
    [InlineData("qwen2", 6, 2, 6)]
    public void F32DataIsTheModelsWithRotaryRowsPaired(string config, int heads, int kvHeads, int headDim)
    {
        (GgufFile file, GgufExportReport report, LanguageModel model) = Export(config, GgufTensorType.F32);
        int checkedRows = 0;
        foreach (GgufTensorInfo info in report.Tensors)
        {
            ReadOnlySpan<float> stored = MemoryMarshal.Cast<byte, float>(file.Data(info.Name));
            ReadOnlySpan<float> ours = Values(model, info.ModelName);
            bool query = info.Name.Contains("attn_q", StringComparison.Ordinal), key = info.Name.Contains("attn_k", StringComparison.Ordinal);
            if (!query && !key)
            {
                Assert.True(stored.SequenceEqual(ours), info.Name);
                continue;
            }
            int rowLength = (int)info.Dimensions[0] == ours.Length / ((query ? heads : kvHeads) * headDim) ? (int)info.Dimensions[0] : 1;
            int n = query ? heads : kvHeads, half = headDim / 2;
            for (int h = 0; h < n; h++)
                for (int i = 0; i < half; i++)
                    for (int j = 0; j < 2; j++)
                    {
                        // file row 2i + j of a head is the model's row j·D/2 + i: (x_i, x_{i+D/2}) become neighbours.
                        Assert.True(stored.Slice((h * headDim + 2 * i + j) * rowLength, rowLength)
                            .SequenceEqual(ours.Slice((h * headDim + j * half + i) * rowLength, rowLength)), $"{info.Name} head {h} pair {i}");
                        checkedRows++;
                    }
        }
        Assert.True(checkedRows > 0);
    }

    [Fact]
    public void Gpt2MetadataAndTensors()
    {
        (GgufFile file, GgufExportReport report, LanguageModel model) = Export("gpt2", GgufTensorType.F32);
        Dictionary<string, object> m = file.Metadata;
        Assert.Equal("gpt2", m["general.architecture"]);
        Assert.Equal(24u, m["gpt2.context_length"]); // the rows of wpe, which llama.cpp sizes by it
        Assert.Equal(36u, m["gpt2.embedding_length"]);
        Assert.Equal(144u, m["gpt2.feed_forward_length"]);
        Assert.Equal(3u, m["gpt2.attention.head_count"]);
        Assert.Equal(1e-5f, m["gpt2.attention.layer_norm_epsilon"]);
        Assert.False(m.ContainsKey("gpt2.rope.freq_base"));
        Assert.Equal([36L, 108L], file.Tensor("blk.0.attn_qkv.weight").Dimensions); // Conv1D held [out, in] by the model
        Assert.Equal([36L, 24L], file.Tensor("position_embd.weight").Dimensions);
        Assert.DoesNotContain(file.Tensors, t => t.Name == "output.weight");
        foreach (GgufTensorInfo info in report.Tensors)
            Assert.True(MemoryMarshal.Cast<byte, float>(file.Data(info.Name)).SequenceEqual(Values(model, info.ModelName)), info.Name);
    }

    /// <summary>BF16 and Q8_0 bytes are exactly ggml's encodings of the (permuted) floats; vectors stay F32.</summary>
    [Theory]
    [InlineData("llama-blocks", GgufTensorType.BF16)]
    [InlineData("qwen2-blocks", GgufTensorType.Q8_0)]
    [InlineData("gpt2-blocks", GgufTensorType.Q8_0)]
    public void ReducedPrecisionBytesAreGgmlsEncoding(string config, GgufTensorType type)
    {
        (GgufFile file, GgufExportReport report, LanguageModel model) = Export(config, type);
        Assert.Equal(type == GgufTensorType.BF16 ? 32u : 7u, file.Metadata["general.file_type"]);
        Assert.Equal(2u, file.Metadata["general.quantization_version"]);
        // The file's F32 copy, to compare the encodings of the same (permuted) floats.
        string f32Path = Path.Combine(_folder, "f32.gguf");
        model.SaveGguf(f32Path, GgufLlamaCppTests.Config(config));
        GgufFile f32 = GgufFile.Read(f32Path);
        int blocks = 0;
        Span<float> block = stackalloc float[32];
        foreach (GgufTensorInfo info in report.Tensors)
        {
            ReadOnlySpan<float> values = MemoryMarshal.Cast<byte, float>(f32.Data(info.Name));
            ReadOnlySpan<byte> stored = file.Data(info.Name);
            GgufFile.TensorEntry entry = file.Tensor(info.Name);
            if (info.Dimensions.Count == 1)
            {
                Assert.Equal(0u, entry.Type);
                Assert.True(stored.SequenceEqual(MemoryMarshal.AsBytes(values)), info.Name);
                continue;
            }
            Assert.Equal(type, info.Type);
            if (type == GgufTensorType.BF16)
            {
                Assert.Equal(30u, entry.Type);
                for (int i = 0; i < values.Length; i++)
                    Assert.Equal(BitConverter.SingleToUInt32Bits(ReducedPrecision.BFloat16(values[i])) >> 16, BinaryPrimitives.ReadUInt16LittleEndian(stored[(2 * i)..]));
                continue;
            }
            Assert.Equal(8u, entry.Type);
            for (int b = 0; b < values.Length / 32; b++, blocks++)
            {
                ReadOnlySpan<byte> y = stored.Slice(34 * b, 34);
                float scale = (float)BinaryPrimitives.ReadHalfLittleEndian(y);
                values.Slice(32 * b, 32).CopyTo(block);
                ReducedPrecision.Q8Block(block);
                for (int j = 0; j < 32; j++) Assert.Equal(block[j], scale * (sbyte)y[2 + j]);
            }
        }
        output.WriteLine($"{config} {type}: {report.Tensors.Count} tensors, {blocks} Q8_0 blocks, {report.Bytes} bytes");
    }

    /// <summary>
    /// An 8-bit instance's Q8_0 export holds the instance's own weights: every block, dequantized, is bit for bit the value
    /// the same instance's F32 export holds (a block of d·q with max|q| = 127 quantizes back to d and q under ggml's rule),
    /// so llama.cpp multiplies exactly the weights ours does, not a second rounding of the fp32 ones.
    /// </summary>
    [Theory]
    [InlineData("qwen2-blocks")]
    [InlineData("llama-blocks")]
    [InlineData("gpt2-blocks")]
    public void AnInt8InstancesQ8ExportHoldsItsOwnWeights(string config)
    {
        LanguageModel trained = GgufLlamaCppTests.Build(config);
        string checkpoint = Path.Combine(_folder, config + ".safetensors");
        trained.Save(checkpoint);
        var model = (LanguageModel)trained.GetType().GetMethod("ForInference", [typeof(string), typeof(WeightType)])!.Invoke(null, [checkpoint, WeightType.Int8])!;
        string f32Path = Path.Combine(_folder, config + ".int8-f32.gguf"), q8Path = Path.Combine(_folder, config + ".int8-q8.gguf");
        model.SaveGguf(f32Path, GgufLlamaCppTests.Config(config));
        GgufExportReport report = model.SaveGguf(q8Path, GgufLlamaCppTests.Config(config), GgufTensorType.Q8_0);
        GgufFile f32 = GgufFile.Read(f32Path), q8 = GgufFile.Read(q8Path);
        int blocks = 0, differFromFp32 = 0, heldInFp32 = 0;
        foreach (GgufTensorInfo info in report.Tensors.Where(t => t.Type == GgufTensorType.Q8_0))
        {
            // A matrix of fewer than 64 rows (gpt2-blocks' 61-token table) is not packed: the instance holds it in fp32,
            // and the export rounds it into Q8_0 as it does an fp32 instance's.
            ParameterTensor tensor = model.ParameterTensors.Single(p => p.Name == info.ModelName);
            if (!model.Layout.PackedMatrices.Any(m => m.Segment == tensor.Segment && tensor.Offset >= m.Offset
                    && tensor.Offset + (long)tensor.Length <= m.Offset + (long)m.Rows * m.Columns && Kernels.QuantizedMatMul.FitsInPlace(m.Rows, m.Columns)))
            {
                heldInFp32++;
                continue;
            }
            ReadOnlySpan<float> values = MemoryMarshal.Cast<byte, float>(f32.Data(info.Name));
            ReadOnlySpan<byte> stored = q8.Data(info.Name);
            for (int b = 0; b < values.Length / 32; b++, blocks++)
            {
                ReadOnlySpan<byte> y = stored.Slice(34 * b, 34);
                float scale = (float)BinaryPrimitives.ReadHalfLittleEndian(y);
                for (int j = 0; j < 32; j++)
                    Assert.True(BitConverter.SingleToUInt32Bits(values[32 * b + j]) == BitConverter.SingleToUInt32Bits(scale * (sbyte)y[2 + j]),
                        $"{info.Name} ({info.ModelName}) block {b}, weight {j}: {scale * (sbyte)y[2 + j]} in Q8_0, {values[32 * b + j]} in the instance");
            }
            if (!values.SequenceEqual(Values(trained, info.ModelName))) differFromFp32++;
        }
        Assert.True(blocks > 100, $"{blocks} blocks");
        Assert.True(differFromFp32 > 0, "the 8-bit instance's weights are the fp32 ones: the test would not tell a second rounding apart");
        output.WriteLine($"{config}: {blocks} Q8_0 blocks equal to the 8-bit instance's weights; {heldInFp32} tensors held in fp32");
    }

    [Fact]
    public void Q8RowsThatAreNotBlocksStayF32()
    {
        (GgufFile file, GgufExportReport report, _) = Export("llama-gqa", GgufTensorType.Q8_0);
        // Rows of 40 and 52 floats: no tensor can be cut into blocks of 32.
        Assert.All(report.Tensors, t => Assert.Equal(GgufTensorType.F32, t.Type));
        Assert.All(file.Tensors, t => Assert.Equal(0u, t.Type));
        Assert.Equal(7u, file.Metadata["general.file_type"]);
    }

    [Fact]
    public void NativeModelsAreRefusedWithTheReason()
    {
        var model = new NativeModel(1);
        string path = Path.Combine(_folder, "native.gguf");
        var e = Assert.Throws<NotSupportedException>(() => model.SaveGguf(path, new GgufExportOptions
        {
            Hyperparameters = new GgufHyperparameters { Heads = 2, KeyValueHeads = 2, HeadDim = 16, NormEpsilon = 1e-5f },
        }));
        Assert.Contains("erf GELU", e.Message);
        Assert.False(File.Exists(path));
    }

    /// <summary>
    /// Qwen3 as llama.cpp's qwen3: its keys under the architecture's prefix (head size 14 as key_length, not 34 / 4), each
    /// layer's q_norm and k_norm as attn_q_norm and attn_k_norm [head_dim], every tensor the model's floats in the model's
    /// order (qwen3's rope pairs (i, i + D/2) as Hugging Face does, so no row moves), no output tensor (tied).
    /// </summary>
    [Fact]
    public void Qwen3IsLlamaCppsQwen3WithItsHeadNorms()
    {
        (GgufFile file, GgufExportReport report, LanguageModel model) = Export("qwen3", GgufTensorType.F32);
        Dictionary<string, object> m = file.Metadata;
        Assert.Equal("qwen3", report.Architecture);
        Assert.Equal("qwen3", m["general.architecture"]);
        Assert.Equal(40u, m["qwen3.context_length"]);
        Assert.Equal(34u, m["qwen3.embedding_length"]);
        Assert.Equal(2u, m["qwen3.block_count"]);
        Assert.Equal(53u, m["qwen3.feed_forward_length"]);
        Assert.Equal(4u, m["qwen3.attention.head_count"]);
        Assert.Equal(2u, m["qwen3.attention.head_count_kv"]);
        Assert.Equal(14u, m["qwen3.attention.key_length"]);
        Assert.Equal(14u, m["qwen3.attention.value_length"]);
        Assert.Equal(14u, m["qwen3.rope.dimension_count"]);
        Assert.Equal(1e6f, m["qwen3.rope.freq_base"]);
        Assert.Equal(1e-6f, m["qwen3.attention.layer_norm_rms_epsilon"]);
        Assert.Equal(51u, m["qwen3.vocab_size"]);
        Assert.DoesNotContain(m.Keys, k => k.StartsWith("llama.", StringComparison.Ordinal));
        Assert.Equal([14L], file.Tensor("blk.1.attn_q_norm.weight").Dimensions);
        Assert.Equal([14L], file.Tensor("blk.1.attn_k_norm.weight").Dimensions);
        Assert.Equal([34L, 56L], file.Tensor("blk.0.attn_q.weight").Dimensions);
        Assert.Equal([34L, 28L], file.Tensor("blk.0.attn_k.weight").Dimensions);
        Assert.Equal([56L, 34L], file.Tensor("blk.0.attn_output.weight").Dimensions);
        Assert.DoesNotContain(file.Tensors, t => t.Name == "output.weight");
        Assert.Equal(2 + 2 * 11, file.Tensors.Count);
        foreach (GgufTensorInfo info in report.Tensors)
            Assert.True(MemoryMarshal.Cast<byte, float>(file.Data(info.Name)).SequenceEqual(Values(model, info.ModelName)), info.Name);
    }

    /// <summary>
    /// A Qwen3 with attention_bias has an o_proj bias, which llama.cpp's qwen3 does not read (once, with the export made to
    /// write the biases, llama.cpp refused this model's file: "wrong number of tensors; expected 33, got 31", the two o_proj
    /// biases): the export refuses it, saying why, and writes nothing.
    /// </summary>
    [Fact]
    public void Qwen3WithAttentionBiasIsRefusedWithTheReason()
    {
        LanguageModel model = GgufLlamaCppTests.Build("qwen3-bias");
        string path = Path.Combine(_folder, "qwen3-bias.gguf");
        var e = Assert.Throws<NotSupportedException>(() => model.SaveGguf(path, GgufLlamaCppTests.Config("qwen3-bias")));
        Assert.Contains("self_attn.q_proj.bias", e.Message);
        Assert.Contains("reads none on o_proj", e.Message);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void ContradictingHyperparametersAreRefusedBeforeWriting()
    {
        LanguageModel model = GgufLlamaCppTests.Build("llama-gqa");
        string path = Path.Combine(_folder, "wrong.gguf");
        GgufHyperparameters right = GgufHyperparameters.FromConfig(GgufLlamaCppTests.Config("llama-gqa"));
        var e = Assert.Throws<ArgumentException>(() => model.SaveGguf(path, new GgufExportOptions { Hyperparameters = right with { HeadDim = 10 } }));
        Assert.Contains("q_proj has 48 rows", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.SaveGguf(path, new GgufExportOptions { Hyperparameters = right, Vocabulary = GgufVocabulary.Synthetic(46) }));
        Assert.Contains("46 tokens", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(_folder));
    }

    [Fact]
    public void SaveReplacesTheTargetAtomically()
    {
        LanguageModel model = GgufLlamaCppTests.Build("llama-mqa");
        string path = Path.Combine(_folder, "model.gguf");
        File.WriteAllText(path, "an older file");
        GgufExportReport report = model.SaveGguf(path, GgufLlamaCppTests.Config("llama-mqa"));
        Assert.Equal(report.Bytes, new FileInfo(path).Length);
        Assert.Equal(3u, GgufFile.Read(path).Version);
        Assert.Equal([path], Directory.GetFileSystemEntries(_folder));
        string directory = Path.Combine(_folder, "a-directory");
        Directory.CreateDirectory(directory);
        Assert.Throws<IOException>(() => model.SaveGguf(directory, GgufLlamaCppTests.Config("llama-mqa")));
        Assert.Equal(2, Directory.GetFileSystemEntries(_folder).Length); // no temporary file left
    }

    /// <summary>An inference instance loaded from the training instance's checkpoint writes the same file, byte for byte.</summary>
    [Theory]
    [InlineData("qwen2-blocks", GgufTensorType.Q8_0)]
    [InlineData("gpt2-blocks", GgufTensorType.F32)]
    [InlineData("qwen3-blocks", GgufTensorType.Q8_0)]
    [InlineData("phi3-blocks", GgufTensorType.Q8_0)]
    [InlineData("gemma3-blocks", GgufTensorType.Q8_0)]
    public void InferenceInstancesExportTheSameFile(string config, GgufTensorType type)
    {
        LanguageModel training = GgufLlamaCppTests.Build(config);
        string checkpoint = Path.Combine(_folder, "model.safetensors");
        training.Save(checkpoint);
        LanguageModel inference = config switch
        {
            "qwen2-blocks" => Qwen2BlocksModel.ForInference(checkpoint),
            "qwen3-blocks" => Qwen3BlocksModel.ForInference(checkpoint),
            "phi3-blocks" => Phi3BlocksModel.ForInference(checkpoint),
            "gemma3-blocks" => Gemma3BlocksModel.ForInference(checkpoint),
            _ => Gpt2BlocksModel.ForInference(checkpoint),
        };
        string fromTraining = Path.Combine(_folder, "training.gguf"), fromInference = Path.Combine(_folder, "inference.gguf");
        GgufLlamaCppTests.Save(training, fromTraining, config, type);
        GgufLlamaCppTests.Save(inference, fromInference, config, type);
        Assert.Equal(File.ReadAllBytes(fromTraining), File.ReadAllBytes(fromInference));
    }

    [Fact]
    public void LlamaCppsAvx512BuildIsTheOneLoaded()
    {
        // Loading a model loads the native library; LLamaSharp picks the build for the CPU's vector width.
        string path = Path.Combine(_folder, "m.gguf");
        GgufLlamaCppTests.Build("llama-mqa").SaveGguf(path, GgufLlamaCppTests.Config("llama-mqa"));
        float[][] logits = LlamaCpp.Logits(path, [1, 2]);
        Assert.Equal(2, logits.Length);
        var library = NativeApi.GetLoadedNativeLibrary(NativeLibraryName.LLama);
        Assert.NotNull(library);
        output.WriteLine($"loaded: {library.Metadata}");
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
            Assert.Equal(AvxLevel.Avx512, library.Metadata!.AvxLevel);
    }
}
