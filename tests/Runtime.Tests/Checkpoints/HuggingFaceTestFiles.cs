using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace TransformerGen.Tests.Checkpoints;

/// <summary>One tensor of a test checkpoint, as the file holds it: name, dtype, shape and raw little-endian bytes.</summary>
internal sealed record FileTensor(string Name, string DType, long[] Shape, byte[] Data);

/// <summary>
/// A hand-made model of one family: its tensor table (canonical names, offsets aligned to 16 floats as the generator
/// lays them out) and, for every table tensor, values that identify the tensor and the element.
/// </summary>
internal sealed record FamilyModel
{
    public required CheckpointFamily Family { get; init; }
    public required List<ParameterTensor> Table { get; init; }
    public required int BufferLength { get; init; }

    /// <summary>The value a loaded buffer holds at <paramref name="t"/>'s element <paramref name="i"/> (in-memory order).</summary>
    public Func<int, int, float> Value { get; init; } = HuggingFaceTestFiles.IdentifyingValue;

    /// <summary>What a correct load leaves in a buffer first filled with <paramref name="fill"/> (padding keeps it).</summary>
    public float[] Expected(float fill = HuggingFaceTestFiles.Sentinel)
    {
        float[] expected = Enumerable.Repeat(fill, BufferLength).ToArray();
        for (int t = 0; t < Table.Count; t++)
            for (int i = 0; i < Table[t].Length; i++) expected[Table[t].Offset + i] = Value(t, i);
        return expected;
    }

    /// <summary>A buffer filled with <paramref name="fill"/>.</summary>
    public float[] NewBuffer(float fill = HuggingFaceTestFiles.Sentinel) => Enumerable.Repeat(fill, BufferLength).ToArray();

    /// <summary>
    /// The file tensors of this model as Hugging Face would store them: names through <paramref name="rename"/> (canonical
    /// when null), shapes reversed and data transposed for <see cref="ParameterTensor.StoredTransposed"/>, in
    /// <paramref name="dtype"/> (or the dtype <paramref name="dtypeOf"/> gives per tensor).
    /// </summary>
    public List<FileTensor> FileTensors(Func<string, string>? rename = null, string dtype = "F32", Func<int, string>? dtypeOf = null)
    {
        var files = new List<FileTensor>();
        for (int t = 0; t < Table.Count; t++)
        {
            ParameterTensor tensor = Table[t];
            var values = new float[tensor.Length];
            long[] shape;
            if (tensor.StoredTransposed)
            {
                int outFeatures = tensor.Shape[0], inFeatures = tensor.Shape[1];
                shape = [inFeatures, outFeatures];
                // file[r, c] = model[c, r]
                for (int r = 0; r < inFeatures; r++)
                    for (int c = 0; c < outFeatures; c++) values[r * outFeatures + c] = Value(t, c * inFeatures + r);
            }
            else
            {
                shape = tensor.Shape.ToArray().Select(d => (long)d).ToArray();
                for (int i = 0; i < values.Length; i++) values[i] = Value(t, i);
            }
            string type = dtypeOf?.Invoke(t) ?? dtype;
            files.Add(new FileTensor(rename?.Invoke(tensor.Name) ?? tensor.Name, type, shape, HuggingFaceTestFiles.Encode(values, type)));
        }
        return files;
    }
}

/// <summary>
/// Test checkpoints written without the code under test: a minimal safetensors writer (length, JSON header, raw
/// bytes) and family tables at odd sizes.
/// </summary>
internal static class HuggingFaceTestFiles
{
    /// <summary>What test buffers hold before a load; a failed load must leave it everywhere.</summary>
    public const float Sentinel = -777.25f;

    /// <summary>Odd sizes: hidden E, intermediate I, vocabulary V, positions P, layers.</summary>
    public const int E = 6, I = 10, V = 7, P = 5, Layers = 2;

    /// <summary>Llama/Qwen2: heads, key/value heads, head size (H·D = E).</summary>
    public const int Heads = 3, KvHeads = 1, HeadDim = 2;

    /// <summary>
    /// ±(2i+1)·2^-(t mod 24 + 1), the sign set for t ≥ 24: distinct for every tensor t &lt; 48 and element i &lt; 128, and
    /// exact in F32, F16 and BF16 (at most 8 significant bits, exponents F16 reaches), so every dtype must load the very
    /// same values and a misplaced element is caught.
    /// </summary>
    public static float IdentifyingValue(int t, int i)
    {
        if (t >= 48 || i >= 128) throw new ArgumentOutOfRangeException(nameof(i), $"tensor {t}, element {i}: outside what the identifying values cover");
        float value = (2 * i + 1) * MathF.Pow(2, -(t % 24 + 1));
        return t < 24 ? value : -value;
    }

    /// <summary>Values as the little-endian bytes of F32, F16 or BF16 (BF16 by truncation: exact for the identifying values).</summary>
    public static byte[] Encode(float[] values, string dtype)
    {
        byte[] bytes;
        switch (dtype)
        {
            case "F32":
                bytes = new byte[values.Length * 4];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
                return bytes;
            case "F16":
                bytes = new byte[values.Length * 2];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(2 * i), (Half)values[i]);
                return bytes;
            case "BF16":
                bytes = new byte[values.Length * 2];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), (ushort)(BitConverter.SingleToUInt32Bits(values[i]) >> 16));
                return bytes;
            default:
                throw new ArgumentException(dtype);
        }
    }

    /// <summary>A tensor of <paramref name="dtype"/> with zero bytes, for buffers and heads.</summary>
    public static FileTensor Zeros(string name, string dtype, params long[] shape)
    {
        int size = dtype switch { "BOOL" or "U8" => 1, "F16" or "BF16" => 2, "F32" => 4, "I64" => 8, _ => throw new ArgumentException(dtype) };
        long count = shape.Aggregate(1L, (a, b) => a * b);
        return new FileTensor(name, dtype, shape, new byte[count * size]);
    }

    /// <summary>The bytes of a safetensors file holding <paramref name="tensors"/> packed in order, with optional metadata.</summary>
    public static byte[] Bytes(IEnumerable<FileTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var bytes = new MemoryStream();
        WriteTo(bytes, tensors.ToList(), metadata);
        return bytes.ToArray();
    }

    /// <summary>Writes <paramref name="tensors"/> as a safetensors file at <paramref name="path"/>; returns the path.</summary>
    public static string Write(string path, IEnumerable<FileTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using (var file = new FileStream(path, FileMode.Create, FileAccess.Write))
            WriteTo(file, tensors.ToList(), metadata);
        return path;
    }

    /// <summary>The length of the JSON header, the header, then each tensor's bytes in order.</summary>
    private static void WriteTo(Stream output, List<FileTensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var json = new StringBuilder("{");
        if (metadata is not null)
            json.Append("\"__metadata__\":{").AppendJoin(",", metadata.Select(p => $"\"{p.Key}\":\"{p.Value}\"")).Append("},");
        long offset = 0;
        foreach (FileTensor tensor in tensors)
        {
            json.Append($"\"{tensor.Name}\":{{\"dtype\":\"{tensor.DType}\",\"shape\":[{string.Join(",", tensor.Shape)}],\"data_offsets\":[{offset},{offset + tensor.Data.Length}]}},");
            offset += tensor.Data.Length;
        }
        if (json[^1] == ',') json.Length--;
        json.Append('}');
        byte[] header = Encoding.UTF8.GetBytes(json.ToString());
        var length = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        output.Write(length);
        output.Write(header);
        foreach (FileTensor tensor in tensors) output.Write(tensor.Data);
    }

    /// <summary>A <c>model.safetensors.index.json</c> for shards given as (file name, tensors).</summary>
    public static string WriteIndex(string path, IEnumerable<(string Shard, IEnumerable<string> Names)> shards)
    {
        IEnumerable<string> entries = shards.SelectMany(s => s.Names.Select(name => $"\"{name}\": \"{s.Shard}\""));
        File.WriteAllText(path, "{\"metadata\": {\"total_size\": 1234}, \"weight_map\": {" + string.Join(", ", entries) + "}}");
        return path;
    }

    /// <summary>Builds a table from (name, shape, stored transposed), offsets aligned to 16 floats (64 bytes).</summary>
    public static FamilyModel Table(CheckpointFamily family, IEnumerable<(string Name, int[] Shape, bool Transposed)> tensors)
    {
        var table = new List<ParameterTensor>();
        int offset = 0;
        foreach ((string name, int[] shape, bool transposed) in tensors)
        {
            var tensor = new ParameterTensor(name, shape, offset) { StoredTransposed = transposed };
            table.Add(tensor);
            offset = (offset + tensor.Length + 15) & ~15;
        }
        return new FamilyModel { Family = family, Table = table, BufferLength = offset };
    }

    public static FamilyModel Gpt2(int e = E, int intermediate = I, int vocab = V, int positions = P, int layers = Layers)
    {
        var tensors = new List<(string, int[], bool)> { ("wte.weight", [vocab, e], false), ("wpe.weight", [positions, e], false) };
        for (int l = 0; l < layers; l++)
        {
            string h = $"h.{l}.";
            tensors.AddRange(
            [
                (h + "ln_1.weight", [e], false), (h + "ln_1.bias", [e], false),
                (h + "attn.c_attn.weight", [3 * e, e], true), (h + "attn.c_attn.bias", [3 * e], false),
                (h + "attn.c_proj.weight", [e, e], true), (h + "attn.c_proj.bias", [e], false),
                (h + "ln_2.weight", [e], false), (h + "ln_2.bias", [e], false),
                (h + "mlp.c_fc.weight", [intermediate, e], true), (h + "mlp.c_fc.bias", [intermediate], false),
                (h + "mlp.c_proj.weight", [e, intermediate], true), (h + "mlp.c_proj.bias", [e], false),
            ]);
        }
        tensors.AddRange([("ln_f.weight", [e], false), ("ln_f.bias", [e], false)]);
        return Table(CheckpointFamily.Gpt2, tensors);
    }

    public static FamilyModel Bert()
    {
        var tensors = new List<(string, int[], bool)>
        {
            ("embeddings.word_embeddings.weight", [V, E], false), ("embeddings.position_embeddings.weight", [P, E], false),
            ("embeddings.token_type_embeddings.weight", [2, E], false),
            ("embeddings.LayerNorm.weight", [E], false), ("embeddings.LayerNorm.bias", [E], false),
        };
        for (int l = 0; l < Layers; l++)
        {
            string layer = $"encoder.layer.{l}.";
            foreach (string projection in new[] { "query", "key", "value" })
                tensors.AddRange([(layer + $"attention.self.{projection}.weight", [E, E], false), (layer + $"attention.self.{projection}.bias", [E], false)]);
            tensors.AddRange(
            [
                (layer + "attention.output.dense.weight", [E, E], false), (layer + "attention.output.dense.bias", [E], false),
                (layer + "attention.output.LayerNorm.weight", [E], false), (layer + "attention.output.LayerNorm.bias", [E], false),
                (layer + "intermediate.dense.weight", [I, E], false), (layer + "intermediate.dense.bias", [I], false),
                (layer + "output.dense.weight", [E, I], false), (layer + "output.dense.bias", [E], false),
                (layer + "output.LayerNorm.weight", [E], false), (layer + "output.LayerNorm.bias", [E], false),
            ]);
        }
        return Table(CheckpointFamily.Bert, tensors);
    }

    /// <summary>Llama (no biases) or Qwen2 (Q, K, V biases); <paramref name="tied"/> leaves out <c>lm_head.weight</c>.</summary>
    public static FamilyModel Llama(CheckpointFamily family = CheckpointFamily.Llama, bool tied = false)
    {
        bool biases = family == CheckpointFamily.Qwen2;
        var tensors = new List<(string, int[], bool)> { ("model.embed_tokens.weight", [V, E], false) };
        for (int l = 0; l < Layers; l++)
        {
            string layer = $"model.layers.{l}.";
            tensors.Add((layer + "input_layernorm.weight", [E], false));
            tensors.Add((layer + "self_attn.q_proj.weight", [Heads * HeadDim, E], false));
            if (biases) tensors.Add((layer + "self_attn.q_proj.bias", [Heads * HeadDim], false));
            tensors.Add((layer + "self_attn.k_proj.weight", [KvHeads * HeadDim, E], false));
            if (biases) tensors.Add((layer + "self_attn.k_proj.bias", [KvHeads * HeadDim], false));
            tensors.Add((layer + "self_attn.v_proj.weight", [KvHeads * HeadDim, E], false));
            if (biases) tensors.Add((layer + "self_attn.v_proj.bias", [KvHeads * HeadDim], false));
            tensors.Add((layer + "self_attn.o_proj.weight", [E, Heads * HeadDim], false));
            tensors.Add((layer + "post_attention_layernorm.weight", [E], false));
            tensors.AddRange([(layer + "mlp.gate_proj.weight", [I, E], false), (layer + "mlp.up_proj.weight", [I, E], false), (layer + "mlp.down_proj.weight", [E, I], false)]);
        }
        tensors.Add(("model.norm.weight", [E], false));
        if (!tied) tensors.Add(("lm_head.weight", [V, E], false));
        return Table(family, tensors);
    }

    public static FamilyModel ForFamily(CheckpointFamily family) => family switch
    {
        CheckpointFamily.Gpt2 => Gpt2(),
        CheckpointFamily.Bert => Bert(),
        _ => Llama(family),
    };

    /// <summary>The other accepted spelling of a canonical name: GPT-2 and BERT files with the prefix, Llama/Qwen2 files of a bare base model without it.</summary>
    public static string OtherForm(CheckpointFamily family, string name) => family switch
    {
        CheckpointFamily.Gpt2 => "transformer." + name,
        CheckpointFamily.Bert => "bert." + name,
        _ => name.StartsWith("model.", StringComparison.Ordinal) ? name["model.".Length..] : name,
    };
}
