using System;
using System.Collections.Generic;
using System.Text;

namespace TransformerGen;

/// <summary>One tensor named in a comparison of a checkpoint with a tensor table: its name, shape and dtype.</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="Shape">Its shape (in the file for an unexpected tensor, in the table for a missing one).</param>
/// <param name="DType">Its safetensors dtype (<c>F32</c> for a table tensor).</param>
public sealed record SafeTensorsTensorInfo(string Name, IReadOnlyList<long> Shape, string DType)
{
    /// <summary><c>name [d0, d1, …] dtype</c>.</summary>
    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}] {DType}";
}

/// <summary>Why a Hugging Face checkpoint's tensor was skipped instead of loaded (see <see cref="SafeTensorsLoadReport.Skipped"/>).</summary>
public enum SafeTensorsSkipReason
{
    /// <summary>A buffer saved beside the parameters, not a parameter: GPT-2's causal mask, BERT's position ids, Llama's rotary frequencies.</summary>
    Buffer,
    /// <summary>A head the model does not have: BERT's pooler, its pre-training heads (<c>cls.*</c>).</summary>
    UnusedHead,
    /// <summary>A copy of the embedding as the output head (<c>lm_head.weight</c>) in a model that ties the two.</summary>
    TiedCopy,
    /// <summary>Optimizer state of a training checkpoint (<see cref="TrainingCheckpoint"/>), which only <see cref="TrainingCheckpoint.Load"/> reads.</summary>
    TrainingState,
}

/// <summary>A checkpoint tensor that was recognised and skipped: its name and shape in the file, its dtype, why, and which file holds it.</summary>
/// <param name="Name">The tensor's name as the file spells it.</param>
/// <param name="Shape">Its shape in the file.</param>
/// <param name="DType">Its safetensors dtype.</param>
/// <param name="Reason">Why it was not loaded.</param>
/// <param name="File">The file (or stream name) that holds it.</param>
public sealed record SafeTensorsSkippedTensor(string Name, IReadOnlyList<long> Shape, string DType, SafeTensorsSkipReason Reason, string File)
{
    /// <summary><c>name [d0, d1, …] dtype (reason)</c>.</summary>
    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}] {DType} ({Reason switch
    {
        SafeTensorsSkipReason.Buffer => "a buffer, not a parameter",
        SafeTensorsSkipReason.UnusedHead => "a head the model does not have",
        SafeTensorsSkipReason.TrainingState => "training state",
        _ => "a copy of the tied embedding",
    }})";
}

/// <summary>
/// What a non-strict <see cref="SafeTensors"/> load found, as PyTorch's <c>load_state_dict(strict=False)</c> reports it:
/// the table's tensors that the file lacks (left as they were in the buffer) and the file's tensors that the table
/// lacks (not read), each with its shape. A <see cref="HuggingFaceCheckpoint"/> load also lists the tensors it recognised
/// and skipped in <see cref="Skipped"/>.
/// </summary>
public sealed class SafeTensorsLoadReport
{
    internal SafeTensorsLoadReport(IReadOnlyList<string> loaded, IReadOnlyList<SafeTensorsTensorInfo> missing, IReadOnlyList<SafeTensorsTensorInfo> unexpected,
        IReadOnlyList<SafeTensorsSkippedTensor>? skipped = null)
    {
        Loaded = loaded;
        Missing = missing;
        Unexpected = unexpected;
        Skipped = skipped ?? [];
    }

    /// <summary>Names of the table's tensors that were read from the file, in table order.</summary>
    public IReadOnlyList<string> Loaded { get; }

    /// <summary>The table's tensors that the file does not have, in table order; their part of the buffer is untouched.</summary>
    public IReadOnlyList<SafeTensorsTensorInfo> Missing { get; }

    /// <summary>The file's tensors that the table does not have, in header order; they were checked but not read.</summary>
    public IReadOnlyList<SafeTensorsTensorInfo> Unexpected { get; }

    /// <summary>
    /// The checkpoint's tensors that a load recognised and did not read, in file order: a training checkpoint's optimizer
    /// state, and in a <see cref="HuggingFaceCheckpoint"/> load also buffers, unused heads and tied copies.
    /// </summary>
    public IReadOnlyList<SafeTensorsSkippedTensor> Skipped { get; }

    /// <summary>True when the file and the table name exactly the same tensors (apart from the <see cref="Skipped"/> ones).</summary>
    public bool IsExactMatch => Missing.Count == 0 && Unexpected.Count == 0;

    /// <summary>
    /// <c>Missing from the file (n): …. Not in the model (m): ….</c> for the non-empty lists, or a line saying that the
    /// names match.
    /// </summary>
    public override string ToString()
    {
        if (IsExactMatch && Skipped.Count > 0)
            return $"all {Loaded.Count} tensors loaded. Skipped ({Skipped.Count}): {string.Join("; ", Skipped)}.";
        if (IsExactMatch) return $"all {Loaded.Count} tensors loaded; the file and the table name the same tensors.";
        var text = new StringBuilder();
        if (Missing.Count > 0) text.Append($"Missing from the file ({Missing.Count}): {string.Join("; ", Missing)}.");
        if (Unexpected.Count > 0) text.Append(text.Length > 0 ? " " : "").Append($"Not in the model ({Unexpected.Count}): {string.Join("; ", Unexpected)}.");
        return text.ToString();
    }
}
