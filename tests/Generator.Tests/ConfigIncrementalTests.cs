using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;
using static TransformerGen.Generator.Tests.ConfigFixtures;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// Caching with a config.json as an additional file: nothing reruns when nothing changed, editing another JSON file
/// leaves every model's output as it was, and editing the config regenerates only the model that reads it.
/// </summary>
public class ConfigIncrementalTests
{
    private const string ConfigPath = "/repo/models/llama/config.json";
    private const string OtherPath = "/repo/models/llama/tokenizer_config.json";
    private const string OtherJson = "{\"model_max_length\": 32, \"bos_token\": \"<s>\"}";

    private static readonly string FromConfig = Model("Config = \"models/llama/config.json\", SeqLen = 8, Batch = 2");

    private static readonly string FromAttribute = Model("Vocab = 11, DModel = 12, Heads = 3, Layers = 2, DFF = 20, SeqLen = 5, Batch = 2", "P");

    private sealed record Setup(GeneratorDriver Driver, CSharpCompilation Compilation, AdditionalText Config, AdditionalText Other);

    private static Setup FirstRun()
    {
        CSharpCompilation compilation = GeneratorHarness.CreateCompilation(FromConfig, FromAttribute);
        AdditionalText config = new Text(ConfigPath, LlamaGqa), other = new Text(OtherPath, OtherJson);
        GeneratorDriver driver = GeneratorHarness.CreateDriver(true, config, other).RunGenerators(compilation);
        GeneratorRunResult run = driver.GetRunResult().Results[0];
        Assert.Empty(run.Diagnostics.Where(d => d.Id != "TG1000"));
        Assert.Equal(2, run.GeneratedSources.Length);
        return new Setup(driver, compilation, config, other);
    }

    private static IEnumerable<IncrementalStepRunReason> Reasons(GeneratorDriver driver, string step) =>
        driver.GetRunResult().Results[0].TrackedSteps[step].SelectMany(s => s.Outputs).Select(o => o.Reason);

    /// <summary>The Compile step's reason for the model whose generated file is <paramref name="hintName"/>.</summary>
    private static IncrementalStepRunReason CompileReason(GeneratorDriver driver, string hintName) =>
        driver.GetRunResult().Results[0].TrackedSteps[TrackingNames.Compile]
            .SelectMany(s => s.Outputs)
            .Single(o => ((CompiledModel)o.Value).HintName == hintName).Reason;

    private static string Generated(GeneratorDriver driver, string type) =>
        driver.GetRunResult().Results[0].GeneratedSources.Single(s => s.HintName.StartsWith("Demo." + type + ".")).SourceText.ToString();

    private static string HintName(GeneratorDriver driver, string type) =>
        driver.GetRunResult().Results[0].GeneratedSources.Single(s => s.HintName.StartsWith("Demo." + type + ".")).HintName;

    [Fact]
    public void A_second_run_is_fully_cached()
    {
        Setup s = FirstRun();
        GeneratorDriver driver = s.Driver.RunGenerators(s.Compilation);
        foreach (string step in new[] { TrackingNames.Configs, TrackingNames.ApplyConfig, TrackingNames.Validate, TrackingNames.Compile })
        {
            Assert.NotEmpty(Reasons(driver, step));
            Assert.All(Reasons(driver, step), r => Assert.Equal(IncrementalStepRunReason.Cached, r));
        }
    }

    [Fact]
    public void Editing_another_json_file_leaves_every_model_unchanged()
    {
        Setup s = FirstRun();
        string before = Generated(s.Driver, "M");
        GeneratorDriver driver = s.Driver
            .ReplaceAdditionalText(s.Other, new Text(OtherPath, OtherJson.Replace("32", "64")))
            .RunGenerators(s.Compilation);

        Assert.Contains(IncrementalStepRunReason.Modified, Reasons(driver, TrackingNames.Configs)); // the edit was seen …
        Assert.All(Reasons(driver, TrackingNames.ApplyConfig), r => Assert.Equal(IncrementalStepRunReason.Unchanged, r)); // … and changed no spec
        Assert.All(Reasons(driver, TrackingNames.Compile), r => Assert.Equal(IncrementalStepRunReason.Cached, r));
        Assert.Equal(before, Generated(driver, "M"));
    }

    [Fact]
    public void Adding_a_checkpoint_header_does_not_touch_the_configs()
    {
        Setup s = FirstRun();
        GeneratorDriver driver = s.Driver
            .AddAdditionalTexts([new Text("/repo/obj/transformergen/llama.safetensors.header.json", "{\"__metadata__\":{}}")])
            .RunGenerators(s.Compilation);
        Assert.All(Reasons(driver, TrackingNames.Configs), r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, r.ToString()));
        Assert.All(Reasons(driver, TrackingNames.ApplyConfig), r => Assert.Equal(IncrementalStepRunReason.Cached, r));
    }

    [Fact]
    public void Editing_hidden_size_regenerates_only_the_model_that_reads_the_config()
    {
        Setup s = FirstRun();
        string m = HintName(s.Driver, "M"), p = HintName(s.Driver, "P");
        string attributeModel = Generated(s.Driver, "P");
        GeneratorDriver driver = s.Driver
            .ReplaceAdditionalText(s.Config, new Text(ConfigPath, Set(LlamaGqa, "hidden_size", "48")))
            .RunGenerators(s.Compilation);

        Assert.Contains(IncrementalStepRunReason.Modified, Reasons(driver, TrackingNames.ApplyConfig));
        Assert.Equal(IncrementalStepRunReason.Modified, CompileReason(driver, m));
        Assert.Equal(IncrementalStepRunReason.Cached, CompileReason(driver, p));
        Assert.Contains("public const int DModel = 48;", Generated(driver, "M"));
        Assert.Equal(attributeModel, Generated(driver, "P"));
        Assert.Empty(driver.GetRunResult().Results[0].Diagnostics.Where(d => d.Id != "TG1000"));
    }

    [Fact]
    public void Breaking_the_config_reports_and_fixing_it_regenerates()
    {
        Setup s = FirstRun();
        var broken = new Text(ConfigPath, Set(LlamaGqa, "num_key_value_heads", "3"));
        GeneratorDriver driver = s.Driver.ReplaceAdditionalText(s.Config, broken).RunGenerators(s.Compilation);
        GeneratorRunResult run = driver.GetRunResult().Results[0];
        Assert.Equal("TG0042", Assert.Single(run.Diagnostics, d => d.Id != "TG1000").Id);
        Assert.DoesNotContain(run.GeneratedSources, g => g.HintName.StartsWith("Demo.M."));

        driver = driver.ReplaceAdditionalText(broken, new Text(ConfigPath, LlamaGqa)).RunGenerators(s.Compilation);
        Assert.Empty(driver.GetRunResult().Results[0].Diagnostics.Where(d => d.Id != "TG1000"));
        Assert.Contains("public const int KvHeads = 2;", Generated(driver, "M"));
    }

    [Fact]
    public void A_comment_in_the_model_file_reads_no_config_again()
    {
        Setup s = FirstRun();
        SyntaxTree old = s.Compilation.SyntaxTrees.Single(t => t.ToString().Contains("partial class M"));
        SyntaxTree edited = old.WithChangedText(Microsoft.CodeAnalysis.Text.SourceText.From(FromConfig + "\n// a comment\n"));
        GeneratorDriver driver = s.Driver.RunGenerators(s.Compilation.ReplaceSyntaxTree(old, edited));
        Assert.All(Reasons(driver, TrackingNames.Configs), r => Assert.Equal(IncrementalStepRunReason.Cached, r));
        Assert.All(Reasons(driver, TrackingNames.ApplyConfig), r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, r.ToString()));
        Assert.All(Reasons(driver, TrackingNames.Compile), r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, r.ToString()));
    }

    [Fact]
    public void Config_step_values_hold_no_compilation_symbol_syntax_or_additional_text()
    {
        Setup s = FirstRun();
        var steps = s.Driver.GetRunResult().Results[0].TrackedSteps;
        foreach (string name in new[] { TrackingNames.Configs, TrackingNames.ApplyConfig })
            foreach (IncrementalGeneratorRunStep step in steps[name])
                foreach ((object value, _) in step.Outputs)
                    AssertPlainData(value, new HashSet<object>(ReferenceEqualityComparer.Instance), name);
    }

    // The same walk as IncrementalTests' (kept private there), plus AdditionalText, which the Configs step must not carry.
    private static void AssertPlainData(object? value, HashSet<object> seen, string path)
    {
        if (value is null || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum) return;
        if (!value.GetType().IsValueType && !seen.Add(value)) return;
        Assert.False(value is Compilation or ISymbol or SyntaxNode or SemanticModel or SyntaxTree or AdditionalText or Microsoft.CodeAnalysis.Text.SourceText,
            $"{path} holds a {value.GetType().Name}");
        if (value is DiagnosticDescriptor or LocalizableString) return;
        if (value is IEnumerable items)
        {
            int i = 0;
            foreach (object? item in items) AssertPlainData(item, seen, $"{path}[{i++}]");
            return;
        }
        foreach (FieldInfo field in value.GetType().GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
            AssertPlainData(field.GetValue(value), seen, path + "." + field.Name);
    }

    private sealed class Text(string path, string text) : AdditionalText
    {
        public override string Path => path;

        public override Microsoft.CodeAnalysis.Text.SourceText GetText(System.Threading.CancellationToken cancellationToken = default) =>
            Microsoft.CodeAnalysis.Text.SourceText.From(text, Encoding.UTF8);
    }
}
