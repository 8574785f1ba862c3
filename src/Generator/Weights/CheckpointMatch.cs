using System;
using System.Collections.Generic;
using System.Linq;

namespace TransformerGen.Generator
{
    /// <summary>
    /// The checkpoint a model names in <c>Weights = "…"</c>: the header found, or the names of the checkpoints
    /// there are (for the message when none matches). Empty when the model names none.
    /// </summary>
    internal sealed record CheckpointMatch(string? Requested, WeightsHeader? Header, string Available)
    {
        public static readonly CheckpointMatch None = new(null, null, "");

        public static CheckpointMatch Find(ModelSpec? spec, EquatableArray<WeightsHeader> headers)
        {
            string? requested = spec?.Weights.Value;
            if (string.IsNullOrEmpty(requested)) return None;
            string fileName = System.IO.Path.GetFileName(requested!.Replace('\\', '/'));
            WeightsHeader? header = headers.FirstOrDefault(h => string.Equals(h.FileName, fileName, StringComparison.OrdinalIgnoreCase));
            string available = headers.Count == 0 ? "none" : string.Join(", ", headers.Select(h => h.FileName).OrderBy(n => n, StringComparer.Ordinal));
            return new CheckpointMatch(fileName, header, available);
        }

        /// <summary>Every disagreement between the checkpoint and the model's parameter tensors, located at the Weights argument.</summary>
        public IEnumerable<DiagnosticInfo> Check(ModelSpec spec, IReadOnlyList<TensorDef> parameters)
        {
            LocationInfo? where = spec.Weights.Location ?? spec.AttributeLocation;
            if (Requested is null) yield break;
            if (Header is null)
            {
                yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsNotFound, where, Requested, Available);
                yield break;
            }
            if (Header.Error is not null)
            {
                yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsUnreadable, where, Header.FileName, Header.Error);
                yield break;
            }
            string model = spec.Type.Name;
            FamilyFileNames? family = spec.Family is { } f ? new FamilyFileNames(f.Kind, spec.TiedEmbeddings.Value) : null;
            var inFile = new Dictionary<string, WeightsTensor>(StringComparer.Ordinal);
            foreach (WeightsTensor t in Header.Tensors) inFile[family?.Key(t.Name) ?? t.Name] = t;
            foreach (TensorDef p in parameters)
            {
                // A family's file holds GPT-2's Conv1D weights [in, out]; the model keeps them [out, in].
                string expected = "[" + string.Join(", ", p.StoredTransposed ? Enumerable.Reverse(p.Shape) : p.Shape.AsEnumerable()) + "]";
                if (!inFile.TryGetValue(p.Name, out WeightsTensor? found))
                {
                    yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsMissingTensor, where, Header.FileName, p.Name, expected, model);
                    continue;
                }
                if (found.ShapeText != expected)
                    yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsShapeMismatch, where, Header.FileName, p.Name, found.ShapeText, expected, model);
                if (found.Dtype is not ("F32" or "F16" or "BF16"))
                    yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsDtype, where, Header.FileName, p.Name, found.Dtype);
            }
            var names = new HashSet<string>(parameters.Select(p => p.Name), StringComparer.Ordinal);
            foreach (WeightsTensor extra in Header.Tensors.Where(t => !names.Contains(family?.Key(t.Name) ?? t.Name) && !(family?.MaySkip(t.Name) ?? false)))
                yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsUnexpectedTensor, where, Header.FileName, extra.Name, extra.ShapeText, model);
        }
    }
}
