using System;

namespace TransformerGen;

/// <summary>
/// The parameters of one model, loaded once and read-only, for any number of inference instances: the generated
/// <c>M.LoadWeights(checkpoint)</c> (or <c>M.LoadBuiltInWeights()</c>) makes one, and each <c>M.ForInference(weights)</c>
/// builds an instance that reads it and owns only its own workspace and key/value cache. The matrices are already in
/// the instances' form (<see cref="WeightType"/>: fp32 panels, bf16 or 8-bit), so instances cost no conversion.
/// </summary>
/// <remarks>
/// Nothing writes to it after it is made: instances that share it refuse <c>Parameters</c>, <c>Load</c>,
/// <c>Save</c> and <c>SaveOnnx</c> (which would unpack the matrices in place); <c>CopyParametersTo</c> and <c>SaveGguf</c>
/// (a copy of one matrix at a time) read it. Any
/// number of threads may run instances over it at once, each thread its own instance.
/// </remarks>
public sealed class ModelWeights
{
    internal ModelWeights(ModelLayout layout, AlignedBuffer parameters, AlignedBuffer[] moreSegments, WeightType type, bool packed)
    {
        Layout = layout;
        Buffer = parameters;
        MoreSegments = moreSegments;
        WeightType = type;
        Packed = packed;
    }

    /// <summary>The layout of the model these weights are for (an instance of another model refuses them).</summary>
    public ModelLayout Layout { get; }

    /// <summary>How the weight matrices are held.</summary>
    public WeightType WeightType { get; }

    /// <summary>Bytes of the parameter buffer (allocated once, whatever the number of instances).</summary>
    public long Bytes => sizeof(float) * Layout.TotalParameterFloats;

    internal AlignedBuffer Buffer { get; }

    /// <summary>The parameter segments after the first (<see cref="ModelLayout.ParameterSegments"/>); usually none.</summary>
    internal AlignedBuffer[] MoreSegments { get; }

    internal bool Packed { get; }
}
