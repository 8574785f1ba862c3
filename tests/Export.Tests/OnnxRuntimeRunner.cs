using System;
using System.Collections.Generic;
using Microsoft.ML.OnnxRuntime;

namespace TransformerGen.Export.Tests;

/// <summary>Runs an exported file in ONNX Runtime (CPU, graph optimization level ALL) on int64 inputs <c>[batch, sequence]</c>.</summary>
internal sealed class OnnxRuntimeRunner : IDisposable
{
    private readonly InferenceSession _session;

    public OnnxRuntimeRunner(string path)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = 1 };
        _session = new InferenceSession(path, options);
    }

    public IReadOnlyList<string> InputNames => _session.InputNames;

    public IReadOnlyList<string> OutputNames => _session.OutputNames;

    /// <summary>Every output's values, by name, for the named inputs (each <c>[batch, sequence]</c>, row-major).</summary>
    public Dictionary<string, float[]> Run(int batch, int sequence, params (string Name, long[] Values)[] inputs)
    {
        var tensors = new OnnxInput[inputs.Length];
        for (int i = 0; i < inputs.Length; i++) tensors[i] = new OnnxInput(inputs[i].Name, inputs[i].Values, [batch, sequence]);
        return Run(tensors);
    }

    /// <summary>Every output's values, by name, for named tensors of their own shapes: int64 ids and masks, float hidden states.</summary>
    public Dictionary<string, float[]> Run(params OnnxInput[] inputs)
    {
        var values = new List<OrtValue>();
        try
        {
            var names = new List<string>();
            foreach (OnnxInput input in inputs)
            {
                long count = 1;
                foreach (long d in input.Shape) count *= d;
                if (input.Values.Length != count) throw new ArgumentException($"{input.Name}: {input.Values.Length} values for [{string.Join(", ", input.Shape)}]");
                names.Add(input.Name);
                values.Add(input.Values switch
                {
                    long[] ids => OrtValue.CreateTensorValueFromMemory(ids, input.Shape),
                    float[] floats => OrtValue.CreateTensorValueFromMemory(floats, input.Shape),
                    _ => throw new ArgumentException($"{input.Name}: int64 or float values"),
                });
            }
            using var runOptions = new RunOptions();
            using IDisposableReadOnlyCollection<OrtValue> results = _session.Run(runOptions, names, values, _session.OutputNames);
            var outputs = new Dictionary<string, float[]>(StringComparer.Ordinal);
            for (int i = 0; i < results.Count; i++) outputs[_session.OutputNames[i]] = results[i].GetTensorDataAsSpan<float>().ToArray();
            return outputs;
        }
        finally
        {
            foreach (OrtValue v in values) v.Dispose();
        }
    }

    public void Dispose() => _session.Dispose();
}

/// <summary>One input of a graph: its name, its values (<c>long[]</c> or <c>float[]</c>, row-major) and its shape.</summary>
internal sealed record OnnxInput(string Name, Array Values, long[] Shape);
