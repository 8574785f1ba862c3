using System;

namespace TransformerGen;

/// <summary>
/// Where the floats of each parameter tensor are: in one span (every model of at most 2³¹ − 1 parameter floats, and any
/// caller's buffer), or in the segments of a larger model (<see cref="ModelLayout.ParameterSegments"/>). Checkpoint
/// loading and weight packing address tensors through this, so that they serve both.
/// </summary>
internal readonly ref struct ParameterSpans
{
    private readonly Span<float> _first;
    private readonly AlignedBuffer[]? _more;

    /// <summary>Segment 0 is <paramref name="first"/>; segment k ≥ 1 is <paramref name="more"/>[k − 1].</summary>
    public ParameterSpans(Span<float> first, AlignedBuffer[]? more)
    {
        _first = first;
        _more = more is { Length: > 0 } ? more : null;
    }

    /// <summary>One span holding every tensor.</summary>
    public static implicit operator ParameterSpans(Span<float> buffer) => new(buffer, null);

    /// <summary>Number of segments (1 for one span).</summary>
    public int Count => 1 + (_more?.Length ?? 0);

    /// <summary>Floats of segment <paramref name="segment"/>.</summary>
    public int Length(int segment) => Segment(segment).Length;

    /// <summary>Segment <paramref name="segment"/> whole.</summary>
    public Span<float> Segment(int segment) => segment == 0 ? _first : _more![segment - 1].Span;

    /// <summary>The floats of <paramref name="tensor"/>.</summary>
    public Span<float> this[ParameterTensor tensor] => Segment(tensor.Segment).Slice(tensor.Offset, tensor.Length);

    /// <summary>The floats of weight matrix <paramref name="matrix"/>.</summary>
    public Span<float> this[WeightMatrix matrix] => Segment(matrix.Segment).Slice(matrix.Offset, matrix.Rows * matrix.Columns);
}
