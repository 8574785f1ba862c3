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
        var values = new List<OrtValue>();
        try
        {
            var names = new List<string>();
            foreach ((string name, long[] data) in inputs)
            {
                if (data.Length != batch * sequence) throw new ArgumentException($"{name}: {data.Length} values for [{batch}, {sequence}]");
                names.Add(name);
                values.Add(OrtValue.CreateTensorValueFromMemory(data, [batch, sequence]));
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
