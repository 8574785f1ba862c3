using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;

namespace TransformerGen.Generator
{
    /// <summary>What the pipeline produces for one model: its diagnostics and, when it is valid, its source.</summary>
    internal sealed record CompiledModel(string HintName, string? Source, EquatableArray<DiagnosticInfo> Diagnostics);

    /// <summary>The most floats of one parameter segment, and the project's setting when it was not a valid number.</summary>
    internal readonly record struct SegmentLimit(long Floats, string? Invalid);

    /// <summary>
    /// Runs stages 3 to 5 (lower, plan, emit) for a declaration the validator accepted. Any exception becomes a
    /// TG9999 diagnostic naming the stage, so a generator bug never crashes the user's build.
    /// </summary>
    internal static class ModelCompiler
    {
        public static CompiledModel Compile(ModelSpec spec, EquatableArray<DiagnosticInfo> validation, CheckpointMatch weights, SegmentLimit segments, CancellationToken cancellationToken)
        {
            string hintName = HintName(spec.Type);
            if (segments.Invalid is { } text)
                validation = new EquatableArray<DiagnosticInfo>([.. validation, DiagnosticInfo.Create(DiagnosticDescriptors.SegmentOption, spec.AttributeLocation,
                    text, Grouped(MemoryPlan.Alignment), Grouped(MemoryPlan.SegmentLimit))]);
            if (validation.Any(d => d.Descriptor.DefaultSeverity == Microsoft.CodeAnalysis.DiagnosticSeverity.Error))
                return new CompiledModel(hintName, null, validation);

            string stage = "lowering the model to a graph";
            try
            {
                ModelGraph graph = Lowerer.Lower(spec, cancellationToken);
                stage = "planning memory";
                MemoryPlan plan = MemoryPlan.Create(graph, segments.Floats);
                var found = new List<DiagnosticInfo>(validation);
                foreach ((string what, long floats) in plan.Buffers())
                    if (floats > int.MaxValue)
                        found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.TooLarge, spec.AttributeLocation, what, Grouped(floats)));
                stage = "checking the weights file";
                found.AddRange(weights.Check(spec, graph.Tensors.Where(t => t.Kind == TensorKind.Parameter).ToList()));
                if (found.Count > validation.Count)
                    return new CompiledModel(hintName, null, new EquatableArray<DiagnosticInfo>(found));

                stage = "emitting C#";
                string source = Emitter.Emit(plan, weights.Requested, out long activations, out long activationGradients);
                long parameters = graph.Tensors.Where(t => t.Kind == TensorKind.Parameter).Sum(t => t.Elements);
                found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ModelSummary, spec.AttributeLocation,
                    spec.Type.Name, Grouped(parameters), Grouped(parameters * 4), Grouped((activations + activationGradients) * 4),
                    Grouped((plan.InferenceCount + plan.KeyValueCount) * 4), Grouped(plan.FlopsPerToken)));
                return new CompiledModel(hintName, source, new EquatableArray<DiagnosticInfo>(found));
            }
            catch (OperationCanceledException)
            {
                throw;
            }
            catch (Exception e)
            {
                return new CompiledModel(hintName, null, new EquatableArray<DiagnosticInfo>(
                    [DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, spec.AttributeLocation, stage, spec.Type.Name, e.GetType().Name + ": " + e.Message)]));
            }
        }

        /// <summary>
        /// The most floats of a parameter segment, from the project's <c>TransformerGenParameterSegmentFloats</c>
        /// (<see cref="MemoryPlan.SegmentLimit"/> when it is not set).
        /// </summary>
        public static SegmentLimit ReadSegmentLimit(string? value)
        {
            if (string.IsNullOrWhiteSpace(value)) return new SegmentLimit(MemoryPlan.SegmentLimit, null);
            return long.TryParse(value!.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long floats)
                && floats >= MemoryPlan.Alignment && floats <= MemoryPlan.SegmentLimit
                ? new SegmentLimit(floats / MemoryPlan.Alignment * MemoryPlan.Alignment, null)
                : new SegmentLimit(MemoryPlan.SegmentLimit, value);
        }

        private static string Grouped(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

        /// <summary>A file name unique per model: namespace, containing types and name.</summary>
        public static string HintName(TypeShape type)
        {
            var parts = new List<string>();
            if (type.Namespace is not null) parts.Add(type.Namespace);
            parts.AddRange(type.ContainingTypes.Select(c => c.Substring(c.LastIndexOf(' ') + 1)));
            parts.Add(type.Name);
            return string.Join(".", parts) + ".TransformerModel.g.cs";
        }
    }
}
