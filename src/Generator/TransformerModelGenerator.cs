using System;
using Microsoft.CodeAnalysis;

namespace TransformerGen.Generator
{
    /// <summary>
    /// The Transformer.Gen compiler: for each class with <c>[TransformerModel]</c>, writes the model's forward
    /// pass, backward pass and cached inference into the class, or reports why the declaration is invalid.
    /// </summary>
    [Generator(LanguageNames.CSharp)]
    public sealed class TransformerModelGenerator : IIncrementalGenerator
    {
        /// <inheritdoc />
        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
            // 1. Parse: each annotated type becomes an equatable ModelSpec (no symbols or syntax kept), so an
            //    edit anywhere else leaves the step cached.
            IncrementalValuesProvider<ParseResult> specs = context.SyntaxProvider
                .ForAttributeWithMetadataName(
                    Parser.AttributeFullName,
                    predicate: static (node, _) => node is Microsoft.CodeAnalysis.CSharp.Syntax.TypeDeclarationSyntax,
                    transform: static (ctx, ct) => SafeParse(ctx, ct))
                .WithTrackingName(TrackingNames.Parse);

            // 1b. A declaration with Config = "…/config.json" takes its architecture and sizes from that file (a
            //     TransformerConfig item, seen as an additional file); the others pass through unchanged.
            IncrementalValueProvider<EquatableArray<ConfigText>> configs = context.AdditionalTextsProvider
                .Where(static file => file.Path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && !file.Path.EndsWith(WeightsHeader.Suffix, StringComparison.OrdinalIgnoreCase))
                .Select(static (file, ct) => new ConfigText(file.Path, file.GetText(ct)?.ToString()))
                .Collect()
                .Select(static (files, _) => new EquatableArray<ConfigText>(files))
                .WithTrackingName(TrackingNames.Configs);
            IncrementalValuesProvider<ParseResult> resolved = specs
                .Combine(configs)
                .Select(static (pair, _) => ApplyConfig(pair.Left, pair.Right))
                .WithTrackingName(TrackingNames.ApplyConfig);

            // 2. Validate: the declaration's own errors, each on the argument that causes it.
            IncrementalValuesProvider<(ParseResult Parsed, EquatableArray<DiagnosticInfo> Diagnostics)> validated = resolved
                .Select(static (parsed, _) => (parsed, parsed.Spec is null ? parsed.Failure : Validator.SafeValidate(parsed.Spec)))
                .WithTrackingName(TrackingNames.Validate);

            // Checkpoints to build in: their headers, extracted to text by TransformerGen.Weights.targets.
            IncrementalValueProvider<EquatableArray<WeightsHeader>> checkpoints = context.AdditionalTextsProvider
                .Where(static file => file.Path.EndsWith(WeightsHeader.Suffix, StringComparison.OrdinalIgnoreCase))
                .Select(static (file, ct) => WeightsHeader.Read(file.Path, file.GetText(ct)?.ToString()))
                .Collect()
                .Select(static (headers, _) => new EquatableArray<WeightsHeader>(headers))
                .WithTrackingName(TrackingNames.Checkpoints);

            // Each model picks the checkpoint it names (if any), so a change to another checkpoint leaves it cached.
            IncrementalValuesProvider<(ParseResult Parsed, EquatableArray<DiagnosticInfo> Diagnostics, CheckpointMatch Weights)> matched = validated
                .Combine(checkpoints)
                .Select(static (pair, _) => (pair.Left.Parsed, pair.Left.Diagnostics, CheckpointMatch.Find(pair.Left.Parsed.Spec, pair.Right)))
                .WithTrackingName(TrackingNames.MatchWeights);

            // The most floats of one parameter segment: the largest array unless the project sets a lower limit (tests do,
            // to split small models the way the largest are split).
            IncrementalValueProvider<SegmentLimit> segments = context.AnalyzerConfigOptionsProvider
                .Select(static (options, _) => ModelCompiler.ReadSegmentLimit(
                    options.GlobalOptions.TryGetValue("build_property.TransformerGenParameterSegmentFloats", out string? value) ? value : null))
                .WithTrackingName(TrackingNames.SegmentLimit);

            // 3–5. Lower to a graph, plan memory, emit C#; only valid declarations get this far.
            IncrementalValuesProvider<CompiledModel> compiled = matched
                .Combine(segments)
                .Select(static (pair, ct) => pair.Left.Parsed.Spec is null
                    ? new CompiledModel(pair.Left.Parsed.HintName, null, pair.Left.Diagnostics)
                    : ModelCompiler.Compile(pair.Left.Parsed.Spec, pair.Left.Diagnostics, pair.Left.Weights, pair.Right, ct))
                .WithTrackingName(TrackingNames.Compile);

            context.RegisterSourceOutput(compiled, static (spc, model) =>
            {
                foreach (DiagnosticInfo diagnostic in model.Diagnostics) spc.ReportDiagnostic(diagnostic.ToDiagnostic());
                if (model.Source is not null) spc.AddSource(model.HintName, model.Source);
            });
        }

        /// <summary>Applies the named config, if any; its diagnostics stop the model as a parse failure would.</summary>
        private static ParseResult ApplyConfig(ParseResult parsed, EquatableArray<ConfigText> configs)
        {
            if (parsed.Spec is null || string.IsNullOrEmpty(parsed.Spec.Config.Value)) return parsed;
            try
            {
                (ModelSpec? spec, EquatableArray<DiagnosticInfo> diagnostics) = ConfigReader.Apply(parsed.Spec, configs);
                return parsed with { Spec = spec, Failure = diagnostics };
            }
            catch (Exception e)
            {
                DiagnosticInfo failure = DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, parsed.Spec.Config.Location ?? parsed.Spec.AttributeLocation,
                    "reading the config file", parsed.Spec.Type.Name, e.GetType().Name + ": " + e.Message);
                return parsed with { Spec = null, Failure = new EquatableArray<DiagnosticInfo>([failure]) };
            }
        }

        /// <summary>Parsing should not fail, but if it does the failure is a TG9999 on the class, never a crashed build.</summary>
        private static ParseResult SafeParse(GeneratorAttributeSyntaxContext context, System.Threading.CancellationToken cancellationToken)
        {
            try
            {
                ModelSpec spec = Parser.Parse(context, cancellationToken);
                return new ParseResult(spec, ModelCompiler.HintName(spec.Type), EquatableArray<DiagnosticInfo>.Empty);
            }
            catch (OperationCanceledException)
            {
                throw;
            }
            catch (Exception e)
            {
                string name = context.TargetSymbol.Name;
                DiagnosticInfo failure = DiagnosticInfo.Create(DiagnosticDescriptors.InternalError,
                    LocationInfo.From(context.TargetNode), "reading the [TransformerModel] attribute", name, e.GetType().Name + ": " + e.Message);
                return new ParseResult(null, name + ".TransformerModel.g.cs", new EquatableArray<DiagnosticInfo>([failure]));
            }
        }
    }

    /// <summary>The parse step's value: the spec, or the failure that prevented reading it.</summary>
    internal sealed record ParseResult(ModelSpec? Spec, string HintName, EquatableArray<DiagnosticInfo> Failure);
}
