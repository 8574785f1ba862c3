using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace TransformerGen.Generator.Tests;

/// <summary>The pipeline's values are equatable data, so edits that do not touch a model leave its steps cached.</summary>
public class IncrementalTests
{
    private const string ModelSource = """
        using TransformerGen;
        namespace Demo;
        [TransformerModel(Vocab = 11, DModel = 12, Heads = 3, Layers = 2, DFF = 20, SeqLen = 5, Batch = 2)]
        public partial class M
        {
            public int Helper() => 1;
            public int Other() => 2;
        }
        """;

    private const string OtherSource = """
        namespace Demo;
        public static class Other { public static int F() => 1; }
        """;

    private static (GeneratorDriver Driver, CSharpCompilation Compilation) FirstRun()
    {
        CSharpCompilation compilation = GeneratorHarness.CreateCompilation(ModelSource, OtherSource);
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);
        return (driver, compilation);
    }

    private static IEnumerable<IncrementalStepRunReason> Reasons(GeneratorDriver driver, string step) =>
        driver.GetRunResult().Results[0].TrackedSteps[step].SelectMany(s => s.Outputs).Select(o => o.Reason);

    [Fact]
    public void A_second_run_on_the_same_compilation_is_fully_cached()
    {
        (GeneratorDriver driver, CSharpCompilation compilation) = FirstRun();
        driver = driver.RunGenerators(compilation);
        foreach (string step in new[] { TrackingNames.Parse, TrackingNames.Validate, TrackingNames.Compile })
            Assert.All(Reasons(driver, step), r => Assert.Equal(IncrementalStepRunReason.Cached, r));

        // A new compilation with the same trees re-reads the attribute, finds an equal spec, and stops there.
        driver = driver.RunGenerators(compilation.Clone());
        Assert.All(Reasons(driver, TrackingNames.Parse), r => Assert.Equal(IncrementalStepRunReason.Unchanged, r));
        foreach (string step in new[] { TrackingNames.Validate, TrackingNames.Compile })
            Assert.All(Reasons(driver, step), r => Assert.Equal(IncrementalStepRunReason.Cached, r));
    }

    [Fact]
    public void Editing_another_file_reruns_no_emit_step()
    {
        (GeneratorDriver driver, CSharpCompilation compilation) = FirstRun();
        SyntaxTree old = compilation.SyntaxTrees.Single(t => t.ToString().Contains("class Other"));
        SyntaxTree edited = old.WithChangedText(Microsoft.CodeAnalysis.Text.SourceText.From(OtherSource.Replace("=> 1", "=> 2 /* edited */")));
        driver = driver.RunGenerators(compilation.ReplaceSyntaxTree(old, edited));
        Assert.All(Reasons(driver, TrackingNames.Compile), r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, r.ToString()));
    }

    [Fact]
    public void A_comment_in_the_model_file_leaves_the_output_unchanged()
    {
        (GeneratorDriver driver, CSharpCompilation compilation) = FirstRun();
        SyntaxTree old = compilation.SyntaxTrees.Single(t => t.ToString().Contains("partial class M"));
        // The comment goes after the class so no location inside the attribute moves.
        SyntaxTree edited = old.WithChangedText(Microsoft.CodeAnalysis.Text.SourceText.From(ModelSource + "\n// a comment\n"));
        driver = driver.RunGenerators(compilation.ReplaceSyntaxTree(old, edited));
        Assert.All(Reasons(driver, TrackingNames.Parse), r => Assert.Equal(IncrementalStepRunReason.Unchanged, r));
        Assert.All(Reasons(driver, TrackingNames.Compile), r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, r.ToString()));
    }

    [Fact]
    public void Editing_a_method_body_in_the_model_class_reruns_no_emit_step()
    {
        (GeneratorDriver driver, CSharpCompilation compilation) = FirstRun();
        SyntaxTree old = compilation.SyntaxTrees.Single(t => t.ToString().Contains("partial class M"));
        SyntaxTree edited = old.WithChangedText(Microsoft.CodeAnalysis.Text.SourceText.From(ModelSource.Replace("Helper() => 1;", "Helper() { int x = 40; return x + 2; }")));
        driver = driver.RunGenerators(compilation.ReplaceSyntaxTree(old, edited));
        Assert.All(Reasons(driver, TrackingNames.Parse), r => Assert.Equal(IncrementalStepRunReason.Unchanged, r));
        Assert.All(Reasons(driver, TrackingNames.Compile), r => Assert.Equal(IncrementalStepRunReason.Cached, r));
    }

    [Fact]
    public void An_unrelated_attribute_elsewhere_reruns_no_emit_step()
    {
        (GeneratorDriver driver, CSharpCompilation compilation) = FirstRun();
        SyntaxTree old = compilation.SyntaxTrees.Single(t => t.ToString().Contains("class Other"));
        SyntaxTree edited = old.WithChangedText(Microsoft.CodeAnalysis.Text.SourceText.From(OtherSource.Replace("public static class Other", "[System.Obsolete(\"x\")] public static class Other")));
        driver = driver.RunGenerators(compilation.ReplaceSyntaxTree(old, edited));
        Assert.All(Reasons(driver, TrackingNames.Compile), r => Assert.Equal(IncrementalStepRunReason.Cached, r));
    }

    [Fact]
    public void Changing_DModel_regenerates()
    {
        (GeneratorDriver driver, CSharpCompilation compilation) = FirstRun();
        SyntaxTree old = compilation.SyntaxTrees.Single(t => t.ToString().Contains("partial class M"));
        SyntaxTree edited = old.WithChangedText(Microsoft.CodeAnalysis.Text.SourceText.From(ModelSource.Replace("DModel = 12", "DModel = 24")));
        driver = driver.RunGenerators(compilation.ReplaceSyntaxTree(old, edited));
        Assert.Contains(IncrementalStepRunReason.Modified, Reasons(driver, TrackingNames.Compile));
    }

    [Fact]
    public void Pipeline_values_hold_no_compilation_symbol_or_syntax()
    {
        (GeneratorDriver driver, _) = FirstRun();
        var ours = new[] { TrackingNames.Parse, TrackingNames.Validate, TrackingNames.Compile };
        var steps = driver.GetRunResult().Results[0].TrackedSteps;
        foreach (var step in ours.SelectMany(name => steps[name]))
            foreach ((object value, _) in step.Outputs)
                AssertNoRoslynObjects(value, new HashSet<object>(ReferenceEqualityComparer.Instance), "output");
    }

    private static void AssertNoRoslynObjects(object? value, HashSet<object> seen, string path)
    {
        if (value is null || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum) return;
        if (!value.GetType().IsValueType && !seen.Add(value)) return;
        Assert.False(value is Compilation or ISymbol or SyntaxNode or SemanticModel or SyntaxTree, $"{path} holds a {value.GetType().Name}");
        if (value is DiagnosticDescriptor or LocalizableString) return; // immutable descriptors are fine to share
        if (value is IEnumerable items)
        {
            int i = 0;
            foreach (object? item in items) AssertNoRoslynObjects(item, seen, $"{path}[{i++}]");
            return;
        }
        foreach (FieldInfo field in value.GetType().GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
            AssertNoRoslynObjects(field.GetValue(value), seen, path + "." + field.Name);
    }
}
