using System;
using System.Collections.Generic;
using System.Globalization;
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

        /// <summary>
        /// The size no built-in checkpoint reaches: an assembly keeps its code, metadata and resources in one section
        /// whose addresses are 32-bit signed numbers, and that section starts 8 KB (0x2000) into the image, so a resource of
        /// 2 GiB − 8 KB or more never fits (the C# compiler then fails with CS1566, or crashes a little below that size:
        /// measured with the .NET 10.0.401 SDK, a resource of 2³¹ − 16,384 bytes built and one of 2³¹ − 4,096 bytes did not).
        /// </summary>
        internal const long BuiltInLimitBytes = int.MaxValue + 1L - 0x2000;

        /// <summary>The suffix of an 8-bit matrix's scales tensor (SafeTensors.Int8ScaleSuffix in the runtime).</summary>
        private const string ScaleSuffix = "_scale";

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
            if (Header.FileBytes >= BuiltInLimitBytes)
                yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsTooLarge, where, Header.FileName, Header.FileBytes.ToString("N0", CultureInfo.InvariantCulture),
                    BuiltInLimitBytes.ToString("N0", CultureInfo.InvariantCulture), spec.Type.Name);
            string model = spec.Type.Name;
            FamilyFileNames? family = spec.Family is { } f ? new FamilyFileNames(f.Kind, spec.TiedEmbeddings.Value) : null;
            var inFile = new Dictionary<string, WeightsTensor>(StringComparer.Ordinal);
            var scales = new List<string>();
            foreach (WeightsTensor t in Header.Tensors) inFile[family?.Key(t.Name) ?? t.Name] = t;
            foreach (TensorDef p in parameters)
            {
                // A family's file holds GPT-2's Conv1D weights [in, out]; the model keeps them [out, in].
                string expected = "[" + string.Join(", ", p.StoredTransposed ? Enumerable.Reverse(p.Shape) : p.Shape.AsEnumerable()) + "]";
                string key = family?.Key(p.Name) ?? p.Name;
                if (!inFile.TryGetValue(key, out WeightsTensor? found))
                {
                    yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsMissingTensor, where, Header.FileName, p.Name, expected, model);
                    continue;
                }
                if (found.ShapeText != expected)
                    yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsShapeMismatch, where, Header.FileName, p.Name, found.ShapeText, expected, model);
                // A matrix stored in its model's own layout may be in 8 bits (TransformerModel.Save with WeightType.Int8):
                // I8 values and, named after it, F16 scales per row and block of 32 columns. Not a transposed one.
                if (found.Dtype == "I8" && p.Shape.Length == 2 && !p.StoredTransposed)
                {
                    long rows = p.Shape[0], blocks = (p.Shape[1] + 31) / 32;
                    string scaleShape = "[" + rows + ", " + blocks + "]";
                    if (!inFile.TryGetValue(key + ScaleSuffix, out WeightsTensor? scale))
                        yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsInt8Scales, where, Header.FileName, p.Name, rows, blocks, "it is missing");
                    else if (scale.Dtype != "F16" || scale.ShapeText != scaleShape)
                        yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsInt8Scales, where, Header.FileName, p.Name, rows, blocks, "the file's is " + scale.Dtype + " " + scale.ShapeText);
                    scales.Add(key + ScaleSuffix); // the matrix's scales, right or wrong, are not an unexpected tensor
                }
                else if (found.Dtype is not ("F32" or "F16" or "BF16"))
                    yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsDtype, where, Header.FileName, p.Name, found.Dtype);
            }
            var names = new HashSet<string>(parameters.Select(p => family?.Key(p.Name) ?? p.Name).Concat(scales), StringComparer.Ordinal);
            foreach (WeightsTensor extra in Header.Tensors.Where(t => !names.Contains(family?.Key(t.Name) ?? t.Name) && !(family?.MaySkip(t.Name) ?? false)))
                yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsUnexpectedTensor, where, Header.FileName, extra.Name, extra.ShapeText, model);
        }
    }
}
