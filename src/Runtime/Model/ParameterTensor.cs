using System;
using System.Collections.Generic;

namespace TransformerGen;

/// <summary>
/// One named parameter tensor inside a model's flat parameter buffer: its PyTorch <c>state_dict</c> name,
/// its shape, and where it lives (<see cref="Offset"/> and <see cref="Length"/> in floats). Gradients and
/// optimizer moments use the same offsets in buffers of the same size.
/// </summary>
public sealed class ParameterTensor
{
    /// <summary>Describes a tensor; <paramref name="shape"/> is copied.</summary>
    public ParameterTensor(string name, int[] shape, int offset, WeightInit init = WeightInit.Zeros, float initScale = 0f)
    {
        Name = name ?? throw new ArgumentNullException(nameof(name));
        if (shape is null || shape.Length == 0) throw new ArgumentException("a tensor needs at least one dimension", nameof(shape));
        long length = 1;
        foreach (int d in shape)
        {
            if (d <= 0) throw new ArgumentException($"tensor '{name}' has a non-positive dimension {d}", nameof(shape));
            length *= d;
        }
        if (length > int.MaxValue) throw new ArgumentException($"tensor '{name}' has {length} elements, more than 32-bit indexing allows", nameof(shape));
        if (offset < 0) throw new ArgumentOutOfRangeException(nameof(offset), offset, "must not be negative");
        _shape = (int[])shape.Clone();
        Offset = offset;
        Length = (int)length;
        Init = init;
        InitScale = initScale;
    }

    private readonly int[] _shape;

    /// <summary>The PyTorch <c>state_dict</c> name, e.g. <c>decoder.layers.0.self_attn.in_proj_weight</c>.</summary>
    public string Name { get; }

    /// <summary>The shape, outermost dimension first (row-major, as PyTorch stores it).</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>Offset of the first element in the flat buffer (in its <see cref="Segment"/>), in floats.</summary>
    public int Offset { get; }

    /// <summary>
    /// Which segment of the parameters holds this tensor: always 0 for a model of at most 2³¹ − 1 parameter floats, whose
    /// parameters are one buffer. A larger model's are several (see <see cref="ModelLayout.ParameterSegments"/>), each at
    /// most one array long, and <see cref="Offset"/> counts from the start of this tensor's.
    /// </summary>
    public int Segment
    {
        get => _segment;
        init => _segment = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(Segment), value, "must not be negative");
    }

    private readonly int _segment;

    /// <summary>Number of elements (the product of <see cref="Shape"/>).</summary>
    public int Length { get; }

    /// <summary>How a freshly built model fills this tensor.</summary>
    public WeightInit Init { get; }

    /// <summary>The standard deviation for <see cref="WeightInit.Normal"/>; unused otherwise.</summary>
    public float InitScale { get; }

    /// <summary>
    /// True when checkpoint files hold this 2-D tensor transposed, <c>[in, out]</c>, while the model computes with
    /// <see cref="Shape"/> = <c>[out, in]</c>: GPT-2's <c>Conv1D</c> weights. Loading transposes, saving transposes back.
    /// </summary>
    public bool StoredTransposed { get; init; }

    /// <summary>The shape written as PyTorch prints it, e.g. <c>[384, 128]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", _shape) + "]";

    /// <summary>True for a tensor with one dimension (biases, LayerNorm gains): weight decay usually skips these.</summary>
    public bool IsVector => _shape.Length == 1;

    /// <inheritdoc />
    public override string ToString() => $"{Name} {ShapeText} @ {(Segment == 0 ? "" : Segment + ":")}{Offset}";
}

/// <summary>How a parameter tensor is initialized when a model is built.</summary>
public enum WeightInit
{
    /// <summary>All zeros (biases, LayerNorm shifts).</summary>
    Zeros,
    /// <summary>All ones (LayerNorm gains).</summary>
    Ones,
    /// <summary>Normal with mean 0 and standard deviation <see cref="ParameterTensor.InitScale"/>.</summary>
    Normal,
}

/// <summary>
/// What an optimizer needs from a model: the flat parameter and gradient buffers and the table of tensors
/// inside them.
/// </summary>
public interface ITrainableParameters
{
    /// <summary>All parameters, one contiguous buffer laid out as <see cref="ParameterTensors"/> says.</summary>
    Span<float> Parameters { get; }

    /// <summary>The gradients, with the same layout as <see cref="Parameters"/>.</summary>
    Span<float> Gradients { get; }

    /// <summary>Every parameter tensor, in buffer order.</summary>
    IReadOnlyList<ParameterTensor> ParameterTensors { get; }
}
