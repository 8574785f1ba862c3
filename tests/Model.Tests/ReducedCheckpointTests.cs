using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Model.Tests;

/// <summary>A Llama with grouped-query attention and an untied head, at sizes whose matrices of 64 rows or more are packed.</summary>
[TransformerModel(Config = "Configs/llama-odd/config.json", SeqLen = 16)]
public partial class ReducedLlama { }

/// <summary>A GPT-2, whose Conv1D weights its files store transposed, [in, out].</summary>
[TransformerModel(Config = "Configs/gpt2-odd/config.json", SeqLen = 16)]
public partial class ReducedGpt2 { }

/// <summary>
/// Checkpoints whose weight matrices are stored in 8 bits or bf16 (<c>Save(path, WeightType)</c>): what the file holds,
/// that any instance loads it as the rounded weights, that an instance of the same weight type gets the bytes it would
/// have made from fp32 (so built-in 8-bit weights compute exactly what quantizing at load computes), and the errors.
/// </summary>
public sealed class ReducedCheckpointTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("transformergen-reduced-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string PathOf(string name) => Path.Combine(_folder, name);

    /// <summary>The header's tensor entries: name → (dtype, shape).</summary>
    private static Dictionary<string, (string Dtype, long[] Shape)> Entries(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        long length = BitConverter.ToInt64(bytes, 0);
        using JsonDocument header = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)length));
        var entries = new Dictionary<string, (string, long[])>();
        foreach (JsonProperty p in header.RootElement.EnumerateObject())
            if (p.Name != "__metadata__")
                entries[p.Name] = (p.Value.GetProperty("dtype").GetString()!, p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray());
        return entries;
    }

    /// <summary><paramref name="model"/>'s parameters with each weight matrix rounded to <paramref name="type"/> by the kernels' own conversions.</summary>
    private static float[] Rounded(TransformerModel model, WeightType type)
    {
        float[] p = model.Parameters.ToArray();
        foreach (WeightMatrix m in model.Layout.PackedMatrices)
        {
            Span<float> w = p.AsSpan(m.Offset, m.Rows * m.Columns);
            if (type == WeightType.Int8)
            {
                var q = new byte[QuantizedMatMul.ByteCount(m.Rows, m.Columns)];
                QuantizedMatMul.Quantize(w, m.Rows, m.Columns, q);
                QuantizedMatMul.Dequantize(q, m.Rows, m.Columns, w);
            }
            else
            {
                for (int i = 0; i < w.Length; i++) w[i] = BFloat16MatMul.ToSingle(BFloat16MatMul.RoundToBFloat16(w[i]));
            }
        }
        return p;
    }

    [Theory]
    [InlineData(WeightType.Int8, "I8")]
    [InlineData(WeightType.BFloat16, "BF16")]
    public void The_weight_matrices_are_stored_reduced_and_everything_else_in_fp32(WeightType type, string dtype)
    {
        var model = new Int8Decoder(3);
        model.Save(PathOf("fp32.safetensors"));
        model.Save(PathOf("reduced.safetensors"), type);

        Dictionary<string, (string Dtype, long[] Shape)> entries = Entries(PathOf("reduced.safetensors"));
        var matrices = new HashSet<int>(model.Layout.PackedMatrices.Select(m => m.Offset));
        Assert.NotEmpty(matrices);
        long expectedBytes = 0;
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            bool matrix = t.Shape.Length == 2 && matrices.Contains(t.Offset);
            Assert.Equal(matrix ? dtype : "F32", entries[t.Name].Dtype);
            Assert.Equal(t.Shape.ToArray().Select(d => (long)d), entries[t.Name].Shape);
            expectedBytes += !matrix ? 4L * t.Length : type == WeightType.BFloat16 ? 2L * t.Length : t.Length + 2L * t.Shape[0] * ((t.Shape[1] + 31) / 32);
            if (matrix && type == WeightType.Int8)
            {
                Assert.Equal("F16", entries[t.Name + "_scale"].Dtype);
                Assert.Equal(new long[] { t.Shape[0], (t.Shape[1] + 31) / 32 }, entries[t.Name + "_scale"].Shape);
            }
        }
        Assert.Equal(model.ParameterTensors.Count + (type == WeightType.Int8 ? matrices.Count : 0), entries.Count);
        long headerBytes = 8 + BitConverter.ToInt64(File.ReadAllBytes(PathOf("reduced.safetensors")), 0);
        Assert.Equal(expectedBytes, new FileInfo(PathOf("reduced.safetensors")).Length - headerBytes);
        Assert.Equal(type.ToString(), SafeTensors.ReadMetadata(PathOf("reduced.safetensors"))["weight_type"]);
    }

    [Theory]
    [InlineData(WeightType.Int8)]
    [InlineData(WeightType.BFloat16)]
    public void Any_instance_loads_the_rounded_weights_and_one_of_the_same_type_gets_the_bytes_quantizing_at_load_makes(WeightType type)
    {
        var trained = new Int8Decoder(5);
        trained.Save(PathOf("fp32.safetensors"));
        trained.Save(PathOf("reduced.safetensors"), type);
        float[] rounded = Rounded(trained, type);

        // fp32 instances, training or inference, hold the rounded weights exactly.
        var training = new Int8Decoder(0);
        training.Load(PathOf("reduced.safetensors"));
        Assert.True(training.Parameters.SequenceEqual(rounded));
        Int8Decoder exact = Int8Decoder.ForInference(PathOf("reduced.safetensors"), WeightType.Float32);
        var copy = new float[rounded.Length];
        exact.CopyParametersTo(copy);
        Assert.True(copy.AsSpan().SequenceEqual(rounded));

        // An instance of the checkpoint's own type computes, bit for bit, what one quantizing the fp32 weights at load does.
        Int8Decoder fromReduced = Int8Decoder.ForInference(PathOf("reduced.safetensors"), type);
        Int8Decoder fromFp32 = Int8Decoder.ForInference(PathOf("fp32.safetensors"), type);
        int[] prompt = [3, 70, 130, 5, 64, 127, 9];
        Assert.True(fromReduced.Append(prompt).SequenceEqual(fromFp32.Append(prompt)));

        // And saves the same file again.
        fromReduced.Save(PathOf("again.safetensors"), type);
        Assert.Equal(File.ReadAllBytes(PathOf("reduced.safetensors")), File.ReadAllBytes(PathOf("again.safetensors")));
    }

    /// <summary>Replaces text of the file's header in place with text of the same length, so the offsets stay valid.</summary>
    private static void EditHeader(string path, string from, string to)
    {
        Assert.Equal(from.Length, to.Length);
        byte[] bytes = File.ReadAllBytes(path);
        int length = (int)BitConverter.ToInt64(bytes, 0);
        string header = Encoding.UTF8.GetString(bytes, 8, length);
        Assert.Contains(from, header);
        Encoding.UTF8.GetBytes(header.Replace(from, to)).CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
    }

    [Fact]
    public void An_8_bit_matrix_without_its_scales_is_refused_with_the_parameters_unchanged()
    {
        var model = new Int8Decoder(6);
        model.Save(PathOf("int8.safetensors"), WeightType.Int8);
        string matrix = model.ParameterTensors.First(t => t.Shape.Length == 2 && model.Layout.PackedMatrices.Any(m => m.Offset == t.Offset)).Name;
        EditHeader(PathOf("int8.safetensors"), $"\"{matrix}_scale\"", $"\"{matrix}_scalx\"");

        var target = new Int8Decoder(7);
        float[] before = target.Parameters.ToArray();
        var e = Assert.Throws<InvalidDataException>(() => target.Load(PathOf("int8.safetensors")));
        Assert.Contains($"tensor '{matrix}': it is I8 in the file but its scales, F16 tensor '{matrix}_scale', are missing", e.Message);
        Assert.True(target.Parameters.SequenceEqual(before));
    }

    [Fact]
    public void A_vector_stored_as_I8_is_refused()
    {
        var model = new Int8Decoder(6);
        model.Save(PathOf("fp32.safetensors"));
        ParameterTensor vector = model.ParameterTensors.First(t => t.Shape.Length == 1);
        // "F32" and "I8" followed by a space have the same length, and JSON allows the space.
        EditHeader(PathOf("fp32.safetensors"), $"\"{vector.Name}\":{{\"dtype\":\"F32\"", $"\"{vector.Name}\":{{\"dtype\":\"I8\" ");
        var e = Assert.Throws<InvalidDataException>(() => new Int8Decoder(7).Load(PathOf("fp32.safetensors")));
        Assert.Contains($"tensor '{vector.Name}': it is I8 in the file, which only a matrix can be", e.Message);
    }

    [Fact]
    public void Weights_that_8_bits_cannot_hold_leave_no_file()
    {
        var model = new Int8Decoder(8);
        WeightMatrix m = model.Layout.PackedMatrices[0];
        model.Parameters[m.Offset + 1] = float.PositiveInfinity;
        var e = Assert.Throws<InvalidOperationException>(() => model.Save(PathOf("bad.safetensors"), WeightType.Int8));
        Assert.Contains("cannot be stored in 8 bits", e.Message);
        Assert.Empty(Directory.GetFiles(_folder));
    }

    [Theory]
    [InlineData(WeightType.Int8, "I8")]
    [InlineData(WeightType.BFloat16, "BF16")]
    public void A_Hugging_Face_layout_stores_its_matrices_reduced_under_its_own_names_and_loads_back_as_the_native_one_does(WeightType type, string dtype)
    {
        var trained = new ReducedLlama(5);
        trained.Save(PathOf("fp32.safetensors"));
        trained.Save(PathOf("reduced.safetensors"), type);

        Dictionary<string, (string Dtype, long[] Shape)> entries = Entries(PathOf("reduced.safetensors"));
        WeightMatrix[] packed = trained.Layout.PackedMatrices.ToArray();
        Assert.Contains(packed, m => m.Rows < 131); // the layer matrices, not only the head
        foreach (ParameterTensor t in trained.ParameterTensors)
        {
            // q, k and v (gate and up) are packed as one matrix: each is rows of it.
            bool matrix = t.Shape.Length == 2 && packed.Any(m => t.Offset >= m.Offset && t.Offset < m.Offset + m.Rows * m.Columns);
            Assert.Equal(matrix ? dtype : "F32", entries[t.Name].Dtype);
            if (matrix && type == WeightType.Int8) Assert.Equal("F16", entries[t.Name + "_scale"].Dtype);
        }
        Assert.Contains("model.layers.0.mlp.gate_proj.weight", entries.Keys);
        Assert.Contains("lm_head.weight", entries.Keys);

        // An fp32 instance holds the rounded weights; one of the file's type computes what quantizing at load computes.
        var exact = new ReducedLlama(0);
        exact.Load(PathOf("reduced.safetensors"));
        Assert.True(exact.Parameters.SequenceEqual(Rounded(trained, type)));
        ReducedLlama fromReduced = ReducedLlama.ForInference(PathOf("reduced.safetensors"), type);
        ReducedLlama fromFp32 = ReducedLlama.ForInference(PathOf("fp32.safetensors"), type);
        int[] prompt = [3, 70, 130, 5, 64, 127, 9];
        Assert.True(fromReduced.Append(prompt).SequenceEqual(fromFp32.Append(prompt)));
        fromReduced.Save(PathOf("again.safetensors"), type);
        Assert.Equal(File.ReadAllBytes(PathOf("reduced.safetensors")), File.ReadAllBytes(PathOf("again.safetensors")));
    }

    [Fact]
    public void GPT_2s_transposed_matrices_stay_fp32_and_its_embedding_table_takes_8_bits()
    {
        var trained = new ReducedGpt2(4);
        trained.Save(PathOf("int8.safetensors"), WeightType.Int8);
        Dictionary<string, (string Dtype, long[] Shape)> entries = Entries(PathOf("int8.safetensors"));
        Assert.Equal("I8", entries["wte.weight"].Dtype);
        Assert.Equal(new long[] { 131, 3 }, entries["wte.weight_scale"].Shape);
        Assert.Equal("F32", entries["h.0.attn.c_attn.weight"].Dtype);
        Assert.Equal(new long[] { 72, 216 }, entries["h.0.attn.c_attn.weight"].Shape);

        // Loaded into fp32, only the table is rounded; the int8 instance gives what one made from the fp32 weights gives.
        var exact = new ReducedGpt2(0);
        exact.Load(PathOf("int8.safetensors"));
        float[] expected = trained.Parameters.ToArray();
        ParameterTensor wte = trained.ParameterTensors.Single(t => t.Name == "wte.weight");
        float[] table = Rounded(trained, WeightType.Int8).AsSpan(wte.Offset, wte.Length).ToArray();
        table.CopyTo(expected.AsSpan(wte.Offset));
        Assert.True(exact.Parameters.SequenceEqual(expected));
        exact.Save(PathOf("rounded.safetensors"));
        int[] prompt = [1, 130, 17, 64];
        Assert.True(ReducedGpt2.ForInference(PathOf("int8.safetensors"), WeightType.Int8).Append(prompt)
            .SequenceEqual(ReducedGpt2.ForInference(PathOf("rounded.safetensors"), WeightType.Int8).Append(prompt)));
    }

    [Fact]
    public void A_Hugging_Face_layout_refuses_an_8_bit_matrix_without_its_scales_and_orphan_scales()
    {
        var model = new ReducedLlama(6);
        model.Save(PathOf("int8.safetensors"), WeightType.Int8);
        EditHeader(PathOf("int8.safetensors"), "\"model.layers.1.mlp.down_proj.weight_scale\"", "\"model.layers.1.mlp.down_proj.weight_scalx\"");
        var target = new ReducedLlama(7);
        float[] before = target.Parameters.ToArray();
        var e = Assert.Throws<InvalidDataException>(() => target.Load(PathOf("int8.safetensors")));
        Assert.Contains("tensor 'model.layers.1.mlp.down_proj.weight': it is I8 in the file but its scales, F16 tensor 'model.layers.1.mlp.down_proj.weight_scale', are missing", e.Message);
        Assert.True(target.Parameters.SequenceEqual(before));

        // Scales beside a matrix that is not I8 belong to nothing: an unexpected tensor, named as any other is.
        EditHeader(PathOf("int8.safetensors"), "\"model.layers.1.mlp.down_proj.weight_scalx\"", "\"model.layers.1.mlp.down_proj.weight_scale\"");
        EditHeader(PathOf("int8.safetensors"), "\"model.layers.1.mlp.down_proj.weight\":{\"dtype\":\"I8\"", "\"model.layers.1.mlp.down_proj.weight\":{\"dtype\":\"U8\"");
        e = Assert.Throws<InvalidDataException>(() => target.Load(PathOf("int8.safetensors")));
        Assert.Contains("Not in the model", e.Message);
        Assert.Contains("model.layers.1.mlp.down_proj.weight_scale [72, 4] F16", e.Message);
        Assert.True(target.Parameters.SequenceEqual(before));
    }

    [Fact]
    public void An_8_bit_instance_refuses_a_non_finite_scale_before_writing_its_weights()
    {
        var model = new Int8Decoder(9);
        string path = PathOf("int8.safetensors");
        model.Save(path, WeightType.Int8);
        string matrix = model.ParameterTensors.First(t => t.Shape.Length == 2 && model.Layout.PackedMatrices.Any(m => m.Offset == t.Offset)).Name;
        // The first scale of the matrix becomes +∞ (fp16 0x7C00).
        byte[] bytes = File.ReadAllBytes(path);
        long headerLength = BitConverter.ToInt64(bytes, 0);
        using (JsonDocument header = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)headerLength)))
        {
            long begin = header.RootElement.GetProperty(matrix + "_scale").GetProperty("data_offsets")[0].GetInt64();
            BitConverter.GetBytes((ushort)0x7C00).CopyTo(bytes, 8 + headerLength + begin);
        }
        File.WriteAllBytes(path, bytes);

        Int8Decoder target = Int8Decoder.ForInference(4);
        float[] before = new float[target.Layout.ParameterCount];
        target.CopyParametersTo(before);
        var e = Assert.Throws<InvalidDataException>(() => target.Load(path));
        Assert.Contains($"tensor '{matrix}_scale': the scale of row 0, block 0 is Infinity", e.Message);
        var after = new float[before.Length];
        target.CopyParametersTo(after);
        Assert.True(after.AsSpan().SequenceEqual(before));
        Assert.True(target.WeightsPacked);
    }

    [Fact]
    public void A_checkpoint_with_some_matrices_in_8_bits_loads_into_an_8_bit_instance_as_the_fp32_one_does()
    {
        var model = new Int8Decoder(10);
        model.Save(PathOf("fp32.safetensors"));
        // Only the first weight matrix in 8 bits: the load writes it packed and packs the others from fp32.
        var storage = new TensorStorage[model.ParameterTensors.Count];
        int first = Enumerable.Range(0, storage.Length).First(i => model.ParameterTensors[i].Shape.Length == 2
            && model.Layout.PackedMatrices.Any(m => m.Offset == model.ParameterTensors[i].Offset));
        storage[first] = TensorStorage.Int8;
        SafeTensors.Save(PathOf("mixed.safetensors"), model.Layout.Tensors, model.Parameters, values: null, metadata: null, beforeCommit: null, storage: storage);

        Int8Decoder mixed = Int8Decoder.ForInference(PathOf("mixed.safetensors"));
        Int8Decoder reference = Int8Decoder.ForInference(PathOf("fp32.safetensors"));
        Assert.True(mixed.WeightsPacked);
        int[] prompt = [1, 2, 3, 100, 130];
        Assert.True(reference.Append(prompt).SequenceEqual(mixed.Append(prompt)));
        var a = new float[model.Layout.ParameterCount];
        var b = new float[a.Length];
        mixed.CopyParametersTo(a);
        reference.CopyParametersTo(b);
        Assert.True(a.AsSpan().SequenceEqual(b));
    }
}
