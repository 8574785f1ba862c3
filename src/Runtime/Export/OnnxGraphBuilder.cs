using System;
using System.Collections.Generic;
using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace TransformerGen;

/// <summary>
/// Builds one ONNX graph node by node over the message types of <c>onnx.proto</c> as the OnnxSharp package compiles them
/// (<see cref="ModelProto"/>, <see cref="NodeProto"/>, …), written by Google.Protobuf. Every value gets a fresh name from
/// <c>Node</c>; weights become initializers with raw little-endian data, in the message or, with external data, in the
/// data file as they come (<see cref="OnnxExternalDataFile"/>).
/// </summary>
/// <remarks>
/// Why OnnxSharp: it ships the generated C# of the official schema, so neither a copy of onnx.proto nor a protobuf compiler
/// step is needed in this repository, and the wire format is written by the maintained protobuf runtime, not by hand.
/// </remarks>
internal sealed class OnnxGraphBuilder
{
    /// <summary>The standard operator set the graph is written against.</summary>
    public const long Opset = 17;

    /// <summary>IR version 8: the one that ONNX 1.12 (opset 17) writes.</summary>
    public const long IrVersion = 8;

    /// <summary>ONNX Runtime's contrib operator domain (<c>MatMulNBits</c>), imported only when a node uses it.</summary>
    public const string MicrosoftDomain = "com.microsoft";

    private readonly GraphProto _graph = new();
    private readonly Dictionary<string, int> _counters = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _constants = new(StringComparer.Ordinal);
    private readonly OnnxExternalDataFile? _external;
    private bool _usesMicrosoftDomain;

    public OnnxGraphBuilder(string name, OnnxExternalDataFile? external = null)
    {
        _graph.Name = name;
        _external = external;
    }

    /// <summary>Nodes so far.</summary>
    public int NodeCount => _graph.Node.Count;

    /// <summary>A name not used before, from a readable stem: <c>layers.0.q</c>, <c>layers.0.q_1</c>, …</summary>
    public string Fresh(string stem)
    {
        _counters.TryGetValue(stem, out int n);
        _counters[stem] = n + 1;
        return n == 0 ? stem : stem + "_" + n.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>A graph input of element type <paramref name="type"/> with named (dynamic) or fixed dimensions.</summary>
    public string Input(string name, TensorProto.Types.DataType type, params object[] dims)
    {
        _graph.Input.Add(ValueInfo(name, type, dims));
        return name;
    }

    /// <summary>Names <paramref name="value"/> as a graph output (through an Identity node when the output needs its own name).</summary>
    public void Output(string value, string name, TensorProto.Types.DataType type, params object[] dims)
    {
        if (value != name) Node("Identity", [value], name, output: name);
        _graph.Output.Add(ValueInfo(name, type, dims));
    }

    /// <summary>Adds a node of <paramref name="op"/> with one output, whose name it returns.</summary>
    public string Node(string op, string[] inputs, string? stem = null, Action<NodeProto>? attributes = null, string? output = null, string domain = "")
    {
        string result = output ?? Fresh(stem ?? op.ToLowerInvariant());
        NodeProto node = NewNode(op, inputs, domain);
        node.Output.Add(result);
        attributes?.Invoke(node);
        _graph.Node.Add(node);
        return result;
    }

    /// <summary>Adds a node of <paramref name="op"/> with several outputs (<c>Split</c>).</summary>
    public string[] Nodes(string op, string[] inputs, string stem, int outputs, Action<NodeProto>? attributes = null)
    {
        NodeProto node = NewNode(op, inputs, "");
        var names = new string[outputs];
        for (int i = 0; i < outputs; i++) node.Output.Add(names[i] = Fresh(stem));
        attributes?.Invoke(node);
        _graph.Node.Add(node);
        return names;
    }

    private NodeProto NewNode(string op, string[] inputs, string domain)
    {
        var node = new NodeProto { OpType = op, Name = Fresh("node_" + op) };
        if (domain.Length > 0)
        {
            node.Domain = domain;
            _usesMicrosoftDomain |= domain == MicrosoftDomain;
        }
        node.Input.AddRange(inputs);
        return node;
    }

    /// <summary>A float initializer of shape <paramref name="dims"/> holding <paramref name="values"/>.</summary>
    public string Floats(string name, long[] dims, ReadOnlySpan<float> values)
    {
        long count = 1;
        foreach (long d in dims) count *= d;
        if (count != values.Length) throw new ArgumentException($"initializer '{name}': {values.Length} values for the shape [{string.Join(", ", dims)}]", nameof(values));
        return Initializer(name, dims, TensorProto.Types.DataType.Float, MemoryMarshal.AsBytes(values));
    }

    /// <summary>An initializer of any element type from its raw little-endian bytes, in the message or in the external data file.</summary>
    public string Initializer(string name, long[] dims, TensorProto.Types.DataType type, ReadOnlySpan<byte> bytes)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw tensor data is little-endian; this writer runs on little-endian machines only");
        var tensor = new TensorProto { Name = name, DataType = (int)type };
        tensor.Dims.AddRange(dims);
        _graph.Initializer.Add(tensor);
        if (_external is null) tensor.RawData = UnsafeByteOperations.UnsafeWrap(bytes.ToArray());
        else _external.Place(tensor, bytes);
        return name;
    }

    /// <summary>
    /// A 1-D int64 constant (shapes, axes, split sizes), shared between the nodes that use the same values. It stays in the
    /// graph even with external data (<see cref="OnnxExternalDataFile.StaysInGraph"/>).
    /// </summary>
    public string Int64s(params long[] values)
    {
        string key = "i64:" + string.Join(",", values);
        if (_constants.TryGetValue(key, out string? existing)) return existing;
        string name = Fresh("const_i64");
        Initializer(name, [values.Length], TensorProto.Types.DataType.Int64, MemoryMarshal.AsBytes(values.AsSpan()));
        return _constants[key] = name;
    }

    /// <summary>A float scalar constant (shape []), shared between the nodes that use the same value.</summary>
    public string Scalar(float value)
    {
        string key = "f32:" + BitConverter.SingleToInt32Bits(value).ToString(CultureInfo.InvariantCulture);
        if (_constants.TryGetValue(key, out string? existing)) return existing;
        string name = Fresh("const_f32");
        Initializer(name, [], TensorProto.Types.DataType.Float, MemoryMarshal.AsBytes(new ReadOnlySpan<float>(in value)));
        return _constants[key] = name;
    }

    /// <summary>The model: the graph with its opset imports and the producer's name.</summary>
    public ModelProto Model(string producerVersion, string docString)
    {
        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "Transformer.Gen",
            ProducerVersion = producerVersion,
            DocString = docString,
            Graph = _graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        if (_usesMicrosoftDomain) model.OpsetImport.Add(new OperatorSetIdProto { Domain = MicrosoftDomain, Version = 1 });
        return model;
    }

    // ----- attributes -----

    public static void Int(NodeProto node, string name, long value) =>
        node.Attribute.Add(new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value });

    public static void Float(NodeProto node, string name, float value) =>
        node.Attribute.Add(new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value });

    public static void Ints(NodeProto node, string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        node.Attribute.Add(attribute);
    }

    private static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (object d in dims)
            shape.Dim.Add(d switch
            {
                string param => new TensorShapeProto.Types.Dimension { DimParam = param },
                int value => new TensorShapeProto.Types.Dimension { DimValue = value },
                long value => new TensorShapeProto.Types.Dimension { DimValue = value },
                _ => throw new ArgumentException($"dimension {d} of '{name}' is neither a name nor a size", nameof(dims)),
            });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }
}
