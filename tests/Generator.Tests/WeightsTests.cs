using System.Linq;
using Microsoft.CodeAnalysis;
using Xunit;

namespace TransformerGen.Generator.Tests;

/// <summary>Checkpoints named in <c>Weights = "…"</c> are checked tensor by tensor against the model at compile time.</summary>
public class WeightsTests
{
    private const string Path = "/obj/transformergen/tiny.safetensors.header.json";

    private static string Model(string weights = "tiny.safetensors") => $$"""
        using TransformerGen;
        namespace Demo;
        [TransformerModel(Vocab = 5, DModel = 4, Heads = 2, Layers = 1, DFF = 6, SeqLen = 3, Norm = NormPlacement.Post, Weights = "{{weights}}")]
        public partial class M { }
        """;

    /// <summary>The header of a checkpoint of exactly that model (post-LN: no final norm; tied head).</summary>
    private static string Header(string replaceFrom = "", string replaceTo = "") => ("""
        {"__metadata__":{"format":"pt"},
         "token_embedding.weight":{"dtype":"F32","shape":[5,4],"data_offsets":[0,80]},
         "decoder.layers.0.self_attn.in_proj_weight":{"dtype":"F32","shape":[12,4],"data_offsets":[80,272]},
         "decoder.layers.0.self_attn.in_proj_bias":{"dtype":"F32","shape":[12],"data_offsets":[272,320]},
         "decoder.layers.0.self_attn.out_proj.weight":{"dtype":"F16","shape":[4,4],"data_offsets":[320,352]},
         "decoder.layers.0.self_attn.out_proj.bias":{"dtype":"F32","shape":[4],"data_offsets":[352,368]},
         "decoder.layers.0.linear1.weight":{"dtype":"BF16","shape":[6,4],"data_offsets":[368,416]},
         "decoder.layers.0.linear1.bias":{"dtype":"F32","shape":[6],"data_offsets":[416,440]},
         "decoder.layers.0.linear2.weight":{"dtype":"F32","shape":[4,6],"data_offsets":[440,536]},
         "decoder.layers.0.linear2.bias":{"dtype":"F32","shape":[4],"data_offsets":[536,552]},
         "decoder.layers.0.norm1.weight":{"dtype":"F32","shape":[4],"data_offsets":[552,568]},
         "decoder.layers.0.norm1.bias":{"dtype":"F32","shape":[4],"data_offsets":[568,584]},
         "decoder.layers.0.norm2.weight":{"dtype":"F32","shape":[4],"data_offsets":[584,600]},
         "decoder.layers.0.norm2.bias":{"dtype":"F32","shape":[4],"data_offsets":[600,616]}}
        """).Replace(replaceFrom.Length == 0 ? "\u0000" : replaceFrom, replaceTo);

    private static Diagnostic[] Problems(string header, string? model = null)
    {
        string source = model ?? Model();
        var result = GeneratorHarness.RunWith([(Path, header)], source);
        return result.Problems.ToArray();
    }

    private static void AtWeightsArgument(Diagnostic d, string source)
    {
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.StartsWith("Weights = ", source.Substring(d.Location.SourceSpan.Start, d.Location.SourceSpan.Length));
    }

    [Fact]
    public void A_matching_checkpoint_compiles_and_gets_a_factory()
    {
        var result = GeneratorHarness.RunWith([(Path, Header())], Model());
        Assert.Empty(result.Problems);
        Assert.Empty(result.CompilationDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
        Assert.Contains("public static M FromBuiltInWeights(global::TransformerGen.ModelUse use = global::TransformerGen.ModelUse.Inference, global::TransformerGen.WeightType? weights = null)", result.GeneratedSource);
        Assert.Contains("GetManifestResourceStream(\"tiny.safetensors\")", result.GeneratedSource);
    }

    [Fact]
    public void TG0030_a_checkpoint_that_is_not_in_the_build()
    {
        Diagnostic d = Assert.Single(Problems(Header(), Model("other.safetensors")));
        Assert.Equal("TG0030", d.Id);
        AtWeightsArgument(d, Model("other.safetensors"));
        Assert.Equal("Weights = \"other.safetensors\" names no checkpoint of this project; add <TransformerWeights Include=\"…/other.safetensors\" /> (checkpoints found: tiny.safetensors)", d.GetMessage());
    }

    [Fact]
    public void TG0031_an_unreadable_header()
    {
        Diagnostic d = Assert.Single(Problems("{\"a\": [1, 2"));
        Assert.Equal("TG0031", d.Id);
        AtWeightsArgument(d, Model());
        Assert.StartsWith("tiny.safetensors: the header is not valid JSON", d.GetMessage());
    }

    [Fact]
    public void TG0032_and_TG0033_a_renamed_tensor_is_both_missing_and_unexpected()
    {
        Diagnostic[] found = Problems(Header("linear2.bias", "linear3.bias"));
        Assert.Equal(new[] { "TG0032", "TG0033" }, found.Select(d => d.Id));
        Assert.Equal("tiny.safetensors has no tensor 'decoder.layers.0.linear2.bias' [4], which M needs", found[0].GetMessage());
        Assert.Equal("tiny.safetensors has a tensor 'decoder.layers.0.linear3.bias' [4] that M does not have", found[1].GetMessage());
        AtWeightsArgument(found[0], Model());
    }

    [Fact]
    public void TG0034_a_tensor_of_the_wrong_shape()
    {
        Diagnostic d = Assert.Single(Problems(Header("\"shape\":[6,4]", "\"shape\":[4,6]")));
        Assert.Equal("TG0034", d.Id);
        Assert.Equal("'decoder.layers.0.linear1.weight' is [4, 6] in tiny.safetensors, but M needs [6, 4]", d.GetMessage());
    }

    [Fact]
    public void TG0035_a_dtype_that_cannot_be_loaded()
    {
        Diagnostic d = Assert.Single(Problems(Header("\"dtype\":\"F16\"", "\"dtype\":\"I64\"")));
        Assert.Equal("TG0035", d.Id);
        Assert.Equal("'decoder.layers.0.self_attn.out_proj.weight' in tiny.safetensors is I64; F32, F16 and BF16 can be loaded", d.GetMessage());
    }

    [Fact]
    public void TG0046_a_checkpoint_too_large_for_an_assembly()
    {
        // The header says where the data ends; the file is 8 bytes, the header, then the data. The last tensor ending
        // 2 GiB − 8 KB − 8 − header bytes in makes a file of 2 GiB − 8 KB, which no assembly holds; a byte less may fit.
        string Ending(long end) => Header("[600,616]", $"[600,{end}]");
        long headerBytes = System.Text.Encoding.UTF8.GetByteCount(Ending(1_000_000_000L));
        long fits = int.MaxValue + 1L - 0x2000 - 8 - headerBytes - 1;
        Assert.DoesNotContain(Problems(Ending(fits)), p => p.Id == "TG0046");
        Diagnostic d = Assert.Single(Problems(Ending(fits + 1)), p => p.Id == "TG0046");
        AtWeightsArgument(d, Model());
        Assert.Equal("tiny.safetensors holds 2,147,475,456 bytes, and an assembly can hold less than 2,147,475,456 (its code, metadata and resources share one section of under 2 GiB); " +
            "load the weights at run time (M.ForInference(path)), or build in a smaller file: an instance's Save(path, WeightType.Int8) writes its matrices in 8 bits, about 27% of their fp32 bytes", d.GetMessage());
        // A Llama-3.2-1B-sized file (2.47 GB of BF16) is refused with the other problems it has, not instead of them.
        Assert.Contains("TG0034", Problems(Header("\"shape\":[6,4]", "\"shape\":[4,6]").Replace("[600,616]", "[600,2471000000]")).Select(p => p.Id));
    }

    // linear2.weight [4, 6] stored in 8 bits: I8 values and, after the last tensor, F16 scales [4, 1] (6 columns: one block).
    private static string Int8Header(string scales) => Header(
        "\"decoder.layers.0.linear2.weight\":{\"dtype\":\"F32\",\"shape\":[4,6],\"data_offsets\":[440,536]}",
        "\"decoder.layers.0.linear2.weight\":{\"dtype\":\"I8\",\"shape\":[4,6],\"data_offsets\":[440,464]}").Replace("}}", "}" + scales + "}");

    [Fact]
    public void An_8_bit_matrix_with_its_scales_compiles()
    {
        var result = GeneratorHarness.RunWith([(Path, Int8Header(",\"decoder.layers.0.linear2.weight_scale\":{\"dtype\":\"F16\",\"shape\":[4,1],\"data_offsets\":[616,624]}"))], Model());
        Assert.Empty(result.Problems);
        Assert.Contains("GetManifestResourceStream(\"tiny.safetensors\")", result.GeneratedSource);
    }

    [Theory]
    [InlineData("", "it is missing")]
    [InlineData(",\"decoder.layers.0.linear2.weight_scale\":{\"dtype\":\"F32\",\"shape\":[4,1],\"data_offsets\":[616,632]}", "the file's is F32 [4, 1]")]
    [InlineData(",\"decoder.layers.0.linear2.weight_scale\":{\"dtype\":\"F16\",\"shape\":[4,2],\"data_offsets\":[616,632]}", "the file's is F16 [4, 2]")]
    public void TG0036_an_8_bit_matrix_without_its_scales(string scales, string why)
    {
        Diagnostic d = Assert.Single(Problems(Int8Header(scales)));
        Assert.Equal("TG0036", d.Id);
        AtWeightsArgument(d, Model());
        Assert.Equal($"'decoder.layers.0.linear2.weight' in tiny.safetensors is I8, which needs its block scales beside it: an F16 tensor 'decoder.layers.0.linear2.weight_scale' [4, 1] ({why})", d.GetMessage());
    }

    [Fact]
    public void TG0035_8_bits_for_a_vector_is_a_dtype_that_cannot_be_loaded()
    {
        Diagnostic d = Assert.Single(Problems(Header("\"decoder.layers.0.linear2.bias\":{\"dtype\":\"F32\"", "\"decoder.layers.0.linear2.bias\":{\"dtype\":\"I8\"")));
        Assert.Equal("TG0035", d.Id);
        Assert.Equal("'decoder.layers.0.linear2.bias' in tiny.safetensors is I8; F32, F16 and BF16 can be loaded", d.GetMessage());
    }
}
