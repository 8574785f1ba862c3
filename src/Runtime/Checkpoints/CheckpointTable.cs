using System;
using System.Collections.Generic;

namespace TransformerGen;

/// <summary>
/// A model's tensor table seen through a family's <see cref="CheckpointFamilyRules"/>: each tensor found by its key
/// (its name without the family's optional prefix), which is how file names are matched to it.
/// </summary>
internal sealed class CheckpointTable
{
    private readonly Dictionary<string, int> _byKey = new(StringComparer.Ordinal);
    private readonly IReadOnlyList<ParameterTensor> _tensors;

    /// <summary>Indexes <paramref name="tensors"/> by key.</summary>
    /// <exception cref="ArgumentException">Two tensors have the same key (<c>model.norm.weight</c> and <c>norm.weight</c>, say): a file could not tell them apart.</exception>
    public CheckpointTable(IReadOnlyList<ParameterTensor> tensors, CheckpointFamilyRules rules, string path)
    {
        _tensors = tensors;
        for (int i = 0; i < tensors.Count; i++)
        {
            string key = rules.KeyOf(tensors[i].Name);
            if (!_byKey.TryAdd(key, i))
                throw new ArgumentException($"'{path}': tensors '{tensors[_byKey[key]].Name}' and '{tensors[i].Name}' are the same name once the {rules.Family} prefix '{rules.Prefix}' is optional", nameof(tensors));
        }
    }

    /// <summary>The index in the table of the tensor whose key is <paramref name="key"/>.</summary>
    public bool TryFind(string key, out int index) => _byKey.TryGetValue(key, out index);

    /// <summary>Size of dimension <paramref name="axis"/> of the tensor whose key is <paramref name="key"/>, or -1 when the table has no such tensor or axis.</summary>
    public int Dim(string key, int axis)
    {
        if (!_byKey.TryGetValue(key, out int index)) return -1;
        ReadOnlySpan<int> shape = _tensors[index].Shape;
        return axis < shape.Length ? shape[axis] : -1;
    }
}
