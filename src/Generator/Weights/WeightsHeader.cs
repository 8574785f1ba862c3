using System;
using System.Collections.Generic;
using System.Linq;

namespace TransformerGen.Generator
{
    /// <summary>One tensor of a checkpoint's header: its name, dtype and shape.</summary>
    internal sealed record WeightsTensor(string Name, string Dtype, EquatableArray<long> Shape)
    {
        public string ShapeText => "[" + string.Join(", ", Shape) + "]";
    }

    /// <summary>
    /// The header of a safetensors checkpoint as the generator sees it (from the <c>.header.json</c> file that
    /// TransformerGen.Weights.targets extracts before compiling), or why it could not be read.
    /// </summary>
    internal sealed record WeightsHeader(string FileName, EquatableArray<WeightsTensor> Tensors, string? Error)
    {
        public const string Suffix = ".header.json";

        /// <summary>
        /// The checkpoint's size in bytes: the 8-byte header length, the header (the extracted file's bytes: the task copies
        /// them unchanged) and the data, which ends where the last tensor's <c>data_offsets</c> end; 0 when unknown.
        /// </summary>
        public long FileBytes { get; init; }

        /// <summary>Reads an extracted header; <paramref name="path"/> ends with <see cref="Suffix"/>.</summary>
        public static WeightsHeader Read(string path, string? text)
        {
            string file = System.IO.Path.GetFileName(path);
            string fileName = file.Substring(0, file.Length - Suffix.Length);
            if (text is null) return new WeightsHeader(fileName, EquatableArray<WeightsTensor>.Empty, "the header could not be read");
            try
            {
                if (MiniJson.Parse(text) is not List<KeyValuePair<string, object?>> members)
                    return new WeightsHeader(fileName, EquatableArray<WeightsTensor>.Empty, "the header is not a JSON object");
                var tensors = new List<WeightsTensor>();
                var names = new HashSet<string>(StringComparer.Ordinal);
                double dataEnd = 0;
                foreach (KeyValuePair<string, object?> member in members)
                {
                    if (member.Key == "__metadata__") continue;
                    if (!names.Add(member.Key)) return new WeightsHeader(fileName, EquatableArray<WeightsTensor>.Empty, $"tensor '{member.Key}' appears twice");
                    if (member.Value is not List<KeyValuePair<string, object?>> fields)
                        return new WeightsHeader(fileName, EquatableArray<WeightsTensor>.Empty, $"tensor '{member.Key}' is not an object");
                    string? dtype = fields.FirstOrDefault(f => f.Key == "dtype").Value as string;
                    var shape = fields.FirstOrDefault(f => f.Key == "shape").Value as List<object?>;
                    if (dtype is null || shape is null || shape.Any(d => d is not double value || value < 0 || value != Math.Floor(value)))
                        return new WeightsHeader(fileName, EquatableArray<WeightsTensor>.Empty, $"tensor '{member.Key}' lacks a dtype or a shape of whole numbers");
                    tensors.Add(new WeightsTensor(member.Key, dtype, new EquatableArray<long>(shape.Select(d => (long)(double)d!))));
                    if (fields.FirstOrDefault(f => f.Key == "data_offsets").Value is List<object?> { Count: 2 } offsets && offsets[1] is double end && end > dataEnd)
                        dataEnd = end;
                }
                return new WeightsHeader(fileName, new EquatableArray<WeightsTensor>(tensors), null)
                {
                    FileBytes = 8 + System.Text.Encoding.UTF8.GetByteCount(text) + (long)dataEnd,
                };
            }
            catch (FormatException e)
            {
                return new WeightsHeader(fileName, EquatableArray<WeightsTensor>.Empty, "the header is not valid JSON: " + e.Message);
            }
        }
    }
}
