using System;

namespace TransformerGen;

/// <summary>
/// A named activation of the training workspace that a user may want to look at after a forward pass, such as
/// a layer's attention probabilities <c>[batch, heads, queries, keys]</c>.
/// </summary>
public sealed class ActivationTensor
{
    private readonly int[] _shape;

    /// <summary>Describes a tensor at <paramref name="offset"/> of the workspace; <paramref name="shape"/> is copied.</summary>
    public ActivationTensor(string name, int[] shape, int offset)
    {
        Name = name ?? throw new ArgumentNullException(nameof(name));
        _shape = (int[])shape.Clone();
        long length = 1;
        foreach (int d in _shape) length *= d;
        Offset = offset;
        Length = checked((int)length);
    }

    /// <summary>The tensor's name in the generated code, e.g. <c>decoder.layers.0.cross_attention_probabilities</c>.</summary>
    public string Name { get; }

    /// <summary>The shape, outermost dimension first.</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>Offset in the training workspace, in floats.</summary>
    public int Offset { get; }

    /// <summary>Number of elements.</summary>
    public int Length { get; }
}
