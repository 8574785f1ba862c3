using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using TransformerGen.Model.Tests;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Export.Tests;

/// <summary>
/// Phi-3's fused projections in the GGUF export: llama.cpp's <c>phi3</c> holds <c>qkv_proj</c> and <c>gate_up_proj</c> as
/// they are (<c>attn_qkv</c>, and <c>ffn_up</c> with the gate rows first), rows in Hugging Face's order. What llama.cpp
/// and ONNX Runtime compute from the exports is checked with the other families (GgufLlamaCppTests, OnnxExportTests,
/// OnnxKeyValueCacheTests); here the file itself, the evidence for leaving the rows unpaired, and the shape <c>phi3</c>
/// cannot hold.
/// </summary>
public sealed class Phi3ExportTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("tg-phi3-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Gguf_holds_the_fused_projections_as_llama_cpps_phi3_reads_them()
    {
        LanguageModel model = GgufLlamaCppTests.Build("phi3");
        string path = Path.Combine(_folder, "phi3.gguf");
        GgufExportReport report = GgufLlamaCppTests.Save(model, path, "phi3");
        GgufFile file = GgufFile.Read(path);
        Dictionary<string, object> m = file.Metadata;
        Assert.Equal("phi3", report.Architecture);
        Assert.Equal("phi3", m["general.architecture"]);
        Assert.Equal(37u, m["phi3.vocab_size"]);
        Assert.Equal(32u, m["phi3.context_length"]);
        Assert.Equal(30u, m["phi3.embedding_length"]);
        Assert.Equal(2u, m["phi3.block_count"]);
        Assert.Equal(43u, m["phi3.feed_forward_length"]); // intermediate_size; ffn_up has twice as many rows
        Assert.Equal(5u, m["phi3.attention.head_count"]);
        Assert.Equal(5u, m["phi3.attention.head_count_kv"]);
        Assert.Equal(6u, m["phi3.rope.dimension_count"]);
        Assert.Equal(10000f, m["phi3.rope.freq_base"]);
        Assert.Equal(1e-5f, m["phi3.attention.layer_norm_rms_epsilon"]);
        Assert.Equal(15u, m["phi3.attention.sliding_window"]);
        Assert.DoesNotContain(m.Keys, k => k.StartsWith("llama.", StringComparison.Ordinal));
        // ne[0] is the row length: attn_qkv [30 → 3·30], ffn_up [30 → 2·43], as llama.cpp's phi3 creates them.
        Assert.Equal([30L, 90L], file.Tensor("blk.0.attn_qkv.weight").Dimensions);
        Assert.Equal([30L, 30L], file.Tensor("blk.0.attn_output.weight").Dimensions);
        Assert.Equal([30L, 86L], file.Tensor("blk.1.ffn_up.weight").Dimensions);
        Assert.Equal([43L, 30L], file.Tensor("blk.1.ffn_down.weight").Dimensions);
        Assert.Equal([30L, 37L], file.Tensor("output.weight").Dimensions); // untied
        Assert.DoesNotContain(file.Tensors, t => t.Name.Contains(".attn_q.", StringComparison.Ordinal) || t.Name.Contains(".ffn_gate.", StringComparison.Ordinal));
        Assert.Equal(3 + 2 * 6, file.Tensors.Count);
        // Every tensor holds the model's floats in the model's order: nothing split, nothing paired.
        foreach (GgufTensorInfo info in report.Tensors)
            Assert.True(MemoryMarshal.Cast<byte, float>(file.Data(info.Name)).SequenceEqual(Values(model, info.ModelName)), info.Name);
    }

    /// <summary>
    /// llama.cpp's phi3 rotates (i, i + D/2), as Hugging Face does (LLAMA_ROPE_TYPE_NEOX), so the query and key rows of
    /// qkv_proj are written unpaired, as llama.cpp's converter writes them. Put in adjacent pairs, as the llama export
    /// pairs them, llama.cpp agrees with us at position 0 only.
    /// </summary>
    [Fact]
    public void Gguf_rows_paired_as_for_llama_disagree_after_position_zero()
    {
        LanguageModel model = GgufLlamaCppTests.Build("phi3-blocks");
        int[] tokens = TestData.Tokens(model.Layout.SeqLen, model.Layout.Vocab, seed: 7);
        float[][] ours = GgufLlamaCppTests.Ours(model, tokens);
        const int heads = 4, keyValueHeads = 2, headDim = 32;
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            if (!t.Name.Contains("qkv_proj", StringComparison.Ordinal)) continue;
            // Rows Q | K | V: the llama pairing on the query rows and on the key rows, head by head; V as it is.
            Span<float> w = model.Parameters.Slice(t.Offset, t.Length);
            int row = t.Shape[1], queryValues = heads * headDim * row, keyValues = keyValueHeads * headDim * row;
            GgufExport.RotaryPairRows(w[..queryValues], heads, headDim, row).CopyTo(w);
            GgufExport.RotaryPairRows(w.Slice(queryValues, keyValues), keyValueHeads, headDim, row).CopyTo(w[queryValues..]);
        }
        string path = Path.Combine(_folder, "paired.gguf");
        GgufLlamaCppTests.Save(model, path, "phi3-blocks");
        float[][] theirs = LlamaCpp.Logits(path, tokens);
        double first = GgufLlamaCppTests.Relative(ours[..1], theirs[..1]), all = GgufLlamaCppTests.Relative(ours, theirs);
        output.WriteLine($"phi3 rows in adjacent pairs: relative {first:G3} at position 0, {all:G3} over all positions");
        Assert.True(first < 1e-5, $"position 0: {first}");
        Assert.True(all > 1e-2, $"all positions: {all}");
    }

    /// <summary>
    /// llama.cpp's phi3 creates attn_output as [hidden, hidden] and splits attn_qkv at the hidden size, so a Phi-3 whose
    /// heads × head_dim is not the hidden size (possible in Hugging Face since head_dim became a config key; no released
    /// Phi-3 is shaped so) cannot be held: the export refuses it, saying why, and writes nothing.
    /// </summary>
    [Fact]
    public void Gguf_refuses_a_Phi3_whose_heads_do_not_span_the_hidden_size()
    {
        LanguageModel model = GgufLlamaCppTests.Build("phi3-head-dim");
        string path = Path.Combine(_folder, "head-dim.gguf");
        var e = Assert.Throws<NotSupportedException>(() => GgufLlamaCppTests.Save(model, path, "phi3-head-dim"));
        Assert.Contains("2 heads of 8 are 16 channels wide, not the hidden size 32", e.Message, StringComparison.Ordinal);
        Assert.Contains("llama.cpp's phi3", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }

    /// <summary>
    /// llama.cpp sets Phi-3's token attributes by the model's name: for a general.name containing "phi3" or "phi-3" it looks
    /// up &lt;/s&gt;, &lt;unk&gt;, &lt;s&gt; and &lt;|endoftext|&gt; by text and refuses a file whose vocabulary lacks one
    /// ("_Map_base::at"; first met here with the synthetic vocabulary). The export refuses that pair, saying why; with
    /// the four tokens in the vocabulary the same name loads, and llama.cpp gives our logits.
    /// </summary>
    [Fact]
    public void Gguf_named_as_a_Phi3_needs_Phi3s_tokens()
    {
        LanguageModel model = GgufLlamaCppTests.Build("phi3");
        string refused = Path.Combine(_folder, "refused.gguf");
        var e = Assert.Throws<ArgumentException>(() => model.SaveGguf(refused, GgufLlamaCppTests.Config("phi3"))); // named Phi3Model
        Assert.Contains("general.name 'Phi3Model'", e.Message, StringComparison.Ordinal);
        Assert.Contains("has no </s>, <unk>, <s>, <|endoftext|>", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(refused));

        // A byte-level folder with Phi-3's four tokens at Phi-3's ids (<|endoftext|> an added special token) and a newline.
        File.WriteAllText(Path.Combine(_folder, "vocab.json"), """{ "<unk>": 0, "<s>": 1, "</s>": 2, "Ċ": 3 }""");
        File.WriteAllText(Path.Combine(_folder, "merges.txt"), "#version: 0.2\n");
        File.WriteAllText(Path.Combine(_folder, "tokenizer.json"), """{ "added_tokens": [ { "id": 32, "content": "<|endoftext|>", "special": true } ] }""");
        GgufVocabulary vocabulary = GgufVocabulary.FromTokenizerFolder(_folder, model.Layout.Vocab);
        string path = Path.Combine(_folder, "named.gguf");
        model.SaveGguf(path, GgufLlamaCppTests.Config("phi3"), GgufTensorType.F32, vocabulary);
        Assert.Equal("Phi3Model", GgufFile.Read(path).Metadata["general.name"]);
        int[] tokens = TestData.Tokens(model.Layout.SeqLen, model.Layout.Vocab, seed: 7);
        double relative = GgufLlamaCppTests.Relative(GgufLlamaCppTests.Ours(model, tokens), LlamaCpp.Logits(path, tokens));
        output.WriteLine($"phi3 named Phi3Model with Phi-3's tokens: relative {relative:G3}");
        Assert.True(relative < 1e-4, $"relative {relative}");
    }

    private static ReadOnlySpan<float> Values(LanguageModel model, string name)
    {
        foreach (ParameterTensor t in model.ParameterTensors)
            if (t.Name == name) return model.Parameters.Slice(t.Offset, t.Length);
        throw new KeyNotFoundException(name);
    }
}
