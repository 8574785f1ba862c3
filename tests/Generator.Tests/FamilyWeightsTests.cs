using System.Collections.Generic;
using System.Linq;
using System.Text;
using Microsoft.CodeAnalysis;
using Xunit;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// Built-in weights of a model compiled from a Hugging Face config: the compile-time check reads the checkpoint as the
/// family's loader does (optional prefix, Conv1D weights stored [in, out], buffers and tied copies skipped).
/// </summary>
public class FamilyWeightsTests
{
    private const string ConfigPath = "/src/models/tiny-gpt2/config.json";
    private const string HeaderPath = "/obj/transformergen/gpt2.safetensors.header.json";

    private const string Config = """
        {"model_type": "gpt2", "vocab_size": 5, "n_embd": 4, "n_head": 2, "n_layer": 1, "n_positions": 3, "n_inner": 6,
         "activation_function": "gelu_new", "layer_norm_epsilon": 1e-05}
        """;

    private const string Model = """
        using TransformerGen;
        namespace Demo;
        [TransformerModel(Config = "models/tiny-gpt2/config.json", SeqLen = 3, Weights = "gpt2.safetensors")]
        public partial class M { }
        """;

    /// <summary>The tensors of a GPT2LMHeadModel file of that config, in the file's orientation.</summary>
    private static List<(string Name, int[] Shape)> FileTensors(string prefix = "") =>
    [
        (prefix + "wte.weight", [5, 4]), (prefix + "wpe.weight", [3, 4]),
        (prefix + "h.0.ln_1.weight", [4]), (prefix + "h.0.ln_1.bias", [4]),
        (prefix + "h.0.attn.c_attn.weight", [4, 12]), (prefix + "h.0.attn.c_attn.bias", [12]),
        (prefix + "h.0.attn.c_proj.weight", [4, 4]), (prefix + "h.0.attn.c_proj.bias", [4]),
        (prefix + "h.0.ln_2.weight", [4]), (prefix + "h.0.ln_2.bias", [4]),
        (prefix + "h.0.mlp.c_fc.weight", [4, 6]), (prefix + "h.0.mlp.c_fc.bias", [6]),
        (prefix + "h.0.mlp.c_proj.weight", [6, 4]), (prefix + "h.0.mlp.c_proj.bias", [4]),
        (prefix + "ln_f.weight", [4]), (prefix + "ln_f.bias", [4]),
    ];

    private static string Header(IEnumerable<(string Name, int[] Shape)> tensors, IReadOnlyDictionary<string, string>? dtypes = null)
    {
        var json = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        long offset = 0;
        foreach ((string name, int[] shape) in tensors)
        {
            string dtype = dtypes is not null && dtypes.TryGetValue(name, out string? given) ? given : "F32";
            long bytes = (dtype switch { "I8" => 1L, "F16" => 2L, _ => 4L }) * shape.Aggregate(1, (a, b) => a * b);
            json.Append($",\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{offset},{offset + bytes}]}}");
            offset += bytes;
        }
        return json.Append('}').ToString();
    }

    private static GeneratorHarness.Result Run(string header) => GeneratorHarness.RunWith([(ConfigPath, Config), (HeaderPath, header)], Model);

    [Fact]
    public void A_prefixed_file_with_buffers_and_a_tied_copy_matches()
    {
        List<(string, int[])> tensors = FileTensors("transformer.");
        tensors.Add(("transformer.h.0.attn.bias", [1, 1, 3, 3]));
        tensors.Add(("transformer.h.0.attn.masked_bias", []));
        tensors.Add(("lm_head.weight", [5, 4]));
        var result = Run(Header(tensors));
        Assert.Empty(result.Problems);
        Assert.Empty(result.CompilationDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
        Assert.Contains("FromBuiltInWeights", result.GeneratedSource);
    }

    [Fact]
    public void A_conv1d_weight_in_the_model_orientation_is_refused()
    {
        List<(string Name, int[] Shape)> tensors = FileTensors();
        int i = tensors.FindIndex(t => t.Name == "h.0.attn.c_attn.weight");
        tensors[i] = ("h.0.attn.c_attn.weight", [12, 4]);
        Diagnostic d = Assert.Single(Run(Header(tensors)).Problems);
        Assert.Equal("TG0034", d.Id);
        Assert.Contains("'h.0.attn.c_attn.weight' is [12, 4] in gpt2.safetensors, but M needs [4, 12]", d.GetMessage());
    }

    [Fact]
    public void An_8_bit_matrix_in_the_family_layout_compiles_with_its_scales_and_a_transposed_one_is_refused()
    {
        // wte [5, 4] is kept as the model keeps it, so it may be I8 with F16 scales [5, 1] (TransformerModel.Save with WeightType.Int8).
        List<(string Name, int[] Shape)> tensors = FileTensors("transformer.");
        tensors.Add(("transformer.wte.weight_scale", [5, 1]));
        var dtypes = new Dictionary<string, string> { ["transformer.wte.weight"] = "I8", ["transformer.wte.weight_scale"] = "F16" };
        var result = Run(Header(tensors, dtypes));
        Assert.Empty(result.Problems);
        Assert.Contains("FromBuiltInWeights", result.GeneratedSource);

        tensors.RemoveAll(t => t.Name == "transformer.wte.weight_scale");
        Diagnostic missing = Assert.Single(Run(Header(tensors, dtypes)).Problems);
        Assert.Equal("TG0036", missing.Id);
        Assert.Contains("'wte.weight' in gpt2.safetensors is I8, which needs its block scales beside it: an F16 tensor 'wte.weight_scale' [5, 1] (it is missing)", missing.GetMessage());

        // c_attn is a Conv1D weight, stored [in, out]: its blocks of inputs would run down the file's columns.
        Diagnostic transposed = Assert.Single(Run(Header(FileTensors(), new Dictionary<string, string> { ["h.0.attn.c_attn.weight"] = "I8" })).Problems);
        Assert.Equal("TG0035", transposed.Id);
        Assert.Contains("'h.0.attn.c_attn.weight' in gpt2.safetensors is I8", transposed.GetMessage());
    }

    [Fact]
    public void An_unknown_tensor_is_refused_and_a_missing_one_named()
    {
        List<(string Name, int[] Shape)> tensors = FileTensors();
        tensors.RemoveAll(t => t.Name == "ln_f.bias");
        tensors.Add(("h.0.attn.rotary", [4]));
        Diagnostic[] problems = Run(Header(tensors)).Problems.ToArray();
        Assert.Contains(problems, d => d.Id == "TG0032" && d.GetMessage().Contains("'ln_f.bias'"));
        Assert.Contains(problems, d => d.Id == "TG0033" && d.GetMessage().Contains("'h.0.attn.rotary'"));
    }
}

/// <summary>A decoder's pad_token_id becomes PadToken unless it is also the end or begin of sequence (SmolLM2 pads with its end-of-turn token).</summary>
public class DecoderPaddingTests
{
    private static string Config(string pad) => $$"""
        {"model_type": "llama", "vocab_size": 11, "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 1,
         "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 16, "rms_norm_eps": 1e-05,
         "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2{{pad}}}
        """;

    private static string Generated(string pad)
    {
        var result = GeneratorHarness.RunWith([("/src/m/config.json", Config(pad))], """
            using TransformerGen;
            namespace Demo;
            [TransformerModel(Config = "m/config.json", SeqLen = 4)]
            public partial class M { }
            """);
        Assert.Empty(result.Problems);
        return result.GeneratedSource;
    }

    [Fact]
    public void A_pad_id_of_its_own_masks_padding() => Assert.Contains("PadToken = 5,", Generated(", \"pad_token_id\": 5"));

    [Fact]
    public void A_pad_id_equal_to_the_end_of_sequence_is_not_padding() => Assert.Contains("PadToken = -1,", Generated(", \"pad_token_id\": 2"));
}
