using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;

namespace TransformerGen.Generator
{
    /// <summary>What the pipeline produces for one model: its diagnostics and, when it is valid, its source.</summary>
    internal sealed record CompiledModel(string HintName, string? Source, EquatableArray<DiagnosticInfo> Diagnostics);

    /// <summary>
    /// Runs stages 3 to 5 (lower, plan, emit) for a declaration the validator accepted. Any exception becomes a
    /// TG9999 diagnostic naming the stage, so a generator bug never crashes the user's build.
    /// </summary>
    internal static class ModelCompiler
    {
        public static CompiledModel Compile(ModelSpec spec, EquatableArray<DiagnosticInfo> validation, CheckpointMatch weights, CancellationToken cancellationToken)
        {
            string hintName = HintName(spec.Type);
            if (validation.Any(d => d.Descriptor.DefaultSeverity == Microsoft.CodeAnalysis.DiagnosticSeverity.Error))
                return new CompiledModel(hintName, null, validation);

            string stage = "lowering the model to a graph";
            try
            {
                ModelGraph graph = Lowerer.Lower(spec, cancellationToken);
                stage = "planning memory";
                MemoryPlan plan = MemoryPlan.Create(graph);
                var found = new List<DiagnosticInfo>(validation);
                foreach ((string what, long floats) in plan.Buffers())
                    if (floats > int.MaxValue)
                        found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.TooLarge, spec.AttributeLocation, what, Grouped(floats)));
                stage = "checking the weights file";
                found.AddRange(weights.Check(spec, graph.Tensors.Where(t => t.Kind == TensorKind.Parameter).ToList()));
                if (found.Count > validation.Count)
                    return new CompiledModel(hintName, null, new EquatableArray<DiagnosticInfo>(found));

                stage = "emitting C#";
                string source = Emitter.Emit(plan, weights.Requested);
                long parameters = graph.Tensors.Where(t => t.Kind == TensorKind.Parameter).Sum(t => t.Elements);
                found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ModelSummary, spec.AttributeLocation,
                    spec.Type.Name, Grouped(parameters), Grouped(parameters * 4), Grouped(plan.ActivationCount * 2 * 4),
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
