using System.Linq;
using Microsoft.CodeAnalysis;
using Xunit;

namespace TransformerGen.Generator.Tests;

/// <summary>One test per diagnostic: its id, severity, the exact text it underlines, and its message.</summary>
public class DiagnosticTests
{
    private const string Valid = "Vocab = 11, DModel = 12, Heads = 3, Layers = 2, DFF = 20, SeqLen = 5, Batch = 2";

    /// <summary>Runs the generator and returns its single non-summary diagnostic, checking it underlines <paramref name="underlined"/>.</summary>
    private static Diagnostic Single(string source, string id, string underlined)
    {
        var result = GeneratorHarness.Run(source);
        var problems = result.Problems.ToList();
        Assert.True(problems.Count == 1, "expected one diagnostic, got: " + string.Join("\n", problems));
        Diagnostic d = problems[0];
        Assert.Equal(id, d.Id);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal(underlined, source.Substring(d.Location.SourceSpan.Start, d.Location.SourceSpan.Length));
        Assert.Empty(result.Run.GeneratedTrees);
        return d;
    }

    private static string Model(string arguments, string declaration = "public partial class M { }") => $$"""
        using TransformerGen;
        namespace Demo;
        [TransformerModel({{arguments}})]
        {{declaration}}
        """;

    [Fact]
    public void TG0001_class_not_partial()
    {
        Diagnostic d = Single(Model(Valid, "public class M { }"), "TG0001", "M");
        Assert.Equal("Class 'M' has [TransformerModel] but is not partial: declare it 'partial class M' so the generated half can join it", d.GetMessage());
    }

    [Fact]
    public void TG0002_negative_size_is_located_on_its_argument()
    {
        Diagnostic d = Single(Model(Valid.Replace("DFF = 20", "DFF = -4")), "TG0002", "DFF = -4");
        Assert.Equal("DFF is -4, but it must be a positive integer", d.GetMessage());
    }

    [Fact]
    public void TG0002_missing_size_is_located_on_the_attribute()
    {
        string source = Model(Valid.Replace("Vocab = 11, ", ""));
        Diagnostic d = Single(source, "TG0002", "TransformerModel(DModel = 12, Heads = 3, Layers = 2, DFF = 20, SeqLen = 5, Batch = 2)");
        Assert.Equal("Vocab is 0, but it must be a positive integer (it was not given: add Vocab = … to the attribute)", d.GetMessage());
    }

    [Fact]
    public void TG0002_negative_cache_slots_are_located_on_their_argument()
    {
        Diagnostic d = Single(Model(Valid + ", Sequences = -3"), "TG0002", "Sequences = -3");
        Assert.Equal("Sequences is -3, but it must be a positive integer (or 0 for the default)", d.GetMessage());
    }

    [Theory]
    [InlineData("Architecture = Architecture.EncoderOnly, Classes = 3", "encoder-only")]
    [InlineData("Architecture = Architecture.EncoderDecoder, BosToken = 1, EosToken = 2", "an encoder–decoder")]
    public void TG0015_cache_slots_are_for_decoder_only_models(string architecture, string name)
    {
        Diagnostic d = Single(Model(Valid + ", " + architecture + ", Sequences = 4"), "TG0015", "Sequences = 4");
        Assert.Equal($"Sequences applies to decoder-only models only, but this model is {name}; remove it or change Architecture", d.GetMessage());
    }

    [Fact]
    public void TG0003_heads_must_divide_dmodel_and_the_valid_counts_are_listed()
    {
        Diagnostic d = Single(Model(Valid.Replace("Heads = 3", "Heads = 5")), "TG0003", "Heads = 5");
        Assert.Equal("DModel = 12 is not divisible by Heads = 5; head counts that divide 12: 1, 2, 3, 4, 6, 12", d.GetMessage());
    }

    [Fact]
    public void TG0004_rotary_needs_an_even_head_size()
    {
        string source = Model(Valid.Replace("Heads = 3", "Heads = 4") + ", Positional = Positional.Rotary");
        Diagnostic d = Single(source, "TG0004", "Positional = Positional.Rotary");
        Assert.Equal("Rotary positions rotate pairs of channels, but the head size DModel / Heads = 12 / 4 = 3 is odd; choose Heads so that the head size is even (Heads = 1, 2, 3, 6), or another Positional", d.GetMessage());
    }

    [Theory]
    [InlineData("Dropout = 1f", "Dropout = 1")]
    [InlineData("LabelSmoothing = -0.5f", "LabelSmoothing = -0.5")]
    public void TG0005_probabilities_must_lie_in_zero_one(string argument, string message)
    {
        Diagnostic d = Single(Model(Valid + ", " + argument), "TG0005", argument);
        Assert.Equal(message + " is outside [0, 1)", d.GetMessage());
    }

    [Fact]
    public void TG0006_generic_class()
    {
        Diagnostic d = Single(Model(Valid, "public partial class M<T> { }"), "TG0006", "M");
        Assert.Contains("'M' is generic or nested in a generic type", d.GetMessage());
    }

    [Fact]
    public void TG0007_base_class()
    {
        string source = Model(Valid, "public partial class M : Base { }\npublic class Base { }");
        Diagnostic d = Single(source, "TG0007", "M");
        Assert.Equal("Class 'M' derives from 'Demo.Base', but the generated half derives from TransformerGen.TransformerModel; remove the base class (interfaces are fine)", d.GetMessage());
    }

    [Fact]
    public void TG0008_a_tensor_beyond_32_bit_indexing()
    {
        string source = Model("Vocab = 1000000, DModel = 4096, Heads = 8, Layers = 2, DFF = 64, SeqLen = 8, Batch = 1");
        Diagnostic d = Single(source, "TG0008", "TransformerModel(Vocab = 1000000, DModel = 4096, Heads = 8, Layers = 2, DFF = 64, SeqLen = 8, Batch = 1)");
        Assert.Equal("token_embedding.weight needs 4,096,000,000 floats, more than the 2,147,483,647 a span can index; make the model or the batch smaller", d.GetMessage());
    }

    [Theory]
    [InlineData("public partial struct M { }", "struct")]
    [InlineData("public static partial class M { }", "static class")]
    [InlineData("public abstract partial class M { }", "abstract class")]
    [InlineData("public partial record M { }", "record")]
    public void TG0009_only_plain_classes(string declaration, string kind)
    {
        Diagnostic d = Single(Model(Valid, declaration), "TG0009", "M");
        Assert.Equal($"'M' is a {kind}; [TransformerModel] needs a non-static, non-abstract class (not a struct or record)", d.GetMessage());
    }

    [Theory]
    [InlineData("public void Forward() { }", "Forward")]
    [InlineData("public int DModel => 3;", "DModel")]
    [InlineData("private void Layer1Backward() { }", "Layer1Backward")]
    public void TG0010_user_member_collides_with_a_generated_member(string member, string name)
    {
        Diagnostic d = Single(Model(Valid, "public partial class M { " + member + " }"), "TG0010", name);
        Assert.Equal($"'M' declares a member named '{name}', which the generated model defines; rename it", d.GetMessage());
    }

    [Fact]
    public void A_member_named_like_a_layer_beyond_the_model_does_not_collide()
    {
        var result = GeneratorHarness.Run(Model(Valid, "public partial class M { private void Layer7Forward() { } }"));
        Assert.Empty(result.Problems);
    }

    [Fact]
    public void TG0011_too_many_layers()
    {
        Diagnostic d = Single(Model(Valid.Replace("Layers = 2", "Layers = 100000")), "TG0011", "Layers = 100000");
        Assert.Equal("Layers = 100000 exceeds 512, the most layers the generator unrolls into code", d.GetMessage());
    }

    [Fact]
    public void TG0012_undefined_enum_value()
    {
        Diagnostic d = Single(Model(Valid + ", Positional = (Positional)7"), "TG0012", "Positional = (Positional)7");
        Assert.Equal("Positional = 7 is not a defined value; use one of Positional.Sinusoidal, Positional.Learned, Positional.Rotary", d.GetMessage());
    }

    [Fact]
    public void TG0012_undefined_weight_type()
    {
        Diagnostic d = Single(Model(Valid + ", WeightType = (WeightType)3"), "TG0012", "WeightType = (WeightType)3");
        Assert.Equal("WeightType = 3 is not a defined value; use one of WeightType.Float32, WeightType.BFloat16, WeightType.Int8", d.GetMessage());
    }

    [Fact]
    public void A_declared_weight_type_is_the_default_of_the_inference_factories()
    {
        var result = GeneratorHarness.Run(Model(Valid + ", WeightType = WeightType.Int8"));
        Assert.Empty(result.Problems);
        Assert.Contains("public static M ForInference(ulong seed = 0) => ForInference(seed, global::TransformerGen.WeightType.Int8);", result.GeneratedSource);
        Assert.Contains("public static M ForInference(string checkpoint) => ForInference(checkpoint, global::TransformerGen.WeightType.Int8);", result.GeneratedSource);
    }

    [Fact]
    public void TG0013_containing_type_not_partial()
    {
        string source = $$"""
            using TransformerGen;
            namespace Demo;
            public class Outer
            {
                [TransformerModel({{Valid}})]
                public partial class M { }
            }
            """;
        Diagnostic d = Single(source, "TG0013", "M");
        Assert.Equal("Class 'M' is nested in a type that is not partial; make every containing type partial", d.GetMessage());
    }

    [Fact]
    public void TG0014_attribute_applied_twice()
    {
        // The compiler also reports CS0579 (AllowMultiple = false); the generator says what it means for a model.
        string source = Model(Valid, "[TransformerModel(" + Valid + ")]\npublic partial class M { }");
        var result = GeneratorHarness.Run(source);
        Diagnostic d = Assert.Single(result.Problems);
        Assert.Equal("TG0014", d.Id);
        Assert.Equal("Class 'M' carries [TransformerModel] 2 times; a class is one model, so keep one attribute", d.GetMessage());
    }

    [Fact]
    public void TG1000_summary_reports_the_sizes_computed_at_compile_time()
    {
        var result = GeneratorHarness.Run(Model(Valid));
        Diagnostic d = Assert.Single(result.GeneratorDiagnostics, x => x.Id == "TG1000");
        Assert.Equal(DiagnosticSeverity.Info, d.Severity);
        // token_embedding 11·12 + per layer (3·12·12+36 + 12·12+12 + 20·12+20 + 12·20+12 + 4·12) + norm_f 24
        long parameters = 132 + 2 * (468 + 156 + 260 + 252 + 48) + 24;
        Assert.StartsWith(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"M: {parameters:N0} parameters ({parameters * 4:N0} bytes of weights)"), d.GetMessage());
    }

    [Fact]
    public void Several_errors_are_all_reported_at_once()
    {
        var result = GeneratorHarness.Run(Model("Vocab = 0, DModel = 12, Heads = 5, Layers = 2, DFF = 20, SeqLen = -1, Dropout = 2f", "public class M { }"));
        Assert.Equal(new[] { "TG0001", "TG0002", "TG0002", "TG0003", "TG0005" }, result.Problems.Select(d => d.Id).OrderBy(x => x));
    }

    [Fact]
    public void Nested_models_in_partial_types_compile()
    {
        string source = $$"""
            using TransformerGen;
            namespace Demo;
            public partial class Outer
            {
                [TransformerModel({{Valid}})]
                internal partial class M { }
            }
            """;
        var result = GeneratorHarness.Run(source);
        Assert.Empty(result.Problems);
        Assert.Single(result.Run.GeneratedTrees);
    }
}
