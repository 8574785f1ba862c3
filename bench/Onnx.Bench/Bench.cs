using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using Microsoft.ML.OnnxRuntime;

namespace TransformerGen.Onnx.Bench;

/// <summary>What the benchmarks share: seeded weights and tokens, the export, ONNX Runtime sessions, the checks, warm-up by time.</summary>
internal static class Bench
{
    public const ulong Seed = 20261206;

    /// <summary>Warm-up by time on each side: tiered compilation needs about a second of calls (ENVIRONMENT.md).</summary>
    public static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(2.5);

    public static string Config(string name) => Path.Combine(AppContext.BaseDirectory, "models", name, "config.json");

    public static void Repeat(Action action)
    {
        var clock = Stopwatch.StartNew();
        do action(); while (clock.Elapsed < WarmUp);
    }

    /// <summary>Moves norm gains and biases off their initial values (seeded), so that the check before timing covers them.</summary>
    public static void PerturbVectors(TransformerModel model)
    {
        var rng = new Rng(Seed + 1);
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            if (!t.IsVector) continue;
            Span<float> values = model.Parameters.Slice(t.Offset, t.Length);
            for (int i = 0; i < values.Length; i++) values[i] = (t.Init == WeightInit.Ones ? 1f : 0f) + 0.1f * rng.NextNormal();
        }
        model.PackWeights(); // reading Parameters unpacked the panels
    }

    /// <summary>Random ids in [1, vocab) other than <paramref name="padToken"/> (MPNet's is 1): no padding.</summary>
    public static int[] Tokens(int count, int vocab, int padToken = -1)
    {
        var rng = new Rng(Seed + 2);
        var ids = new int[count];
        for (int i = 0; i < ids.Length; i++)
            do ids[i] = 1 + rng.NextInt(vocab - 1); while (ids[i] == padToken);
        return ids;
    }

    /// <summary>Exports <paramref name="model"/> once per process and format, into the temporary folder.</summary>
    public static string Export(TransformerModel model, string config, OnnxWeightFormat format, bool lastPositionOnly = false)
    {
        string path = Path.Combine(Path.GetTempPath(), $"transformergen-bench-{model.Layout.Name}-{format}.onnx");
        OnnxExport.Save(model, path, new OnnxExportOptions { Config = config, Weights = format, LastPositionOnly = lastPositionOnly });
        return path;
    }

    /// <summary>Largest |ours − theirs| over the largest |ours|.</summary>
    public static double RelativeMax(ReadOnlySpan<float> ours, ReadOnlySpan<float> theirs)
    {
        if (ours.Length != theirs.Length) throw new InvalidOperationException($"{ours.Length} values here, {theirs.Length} from ONNX Runtime");
        double worst = 0, largest = 0;
        for (int i = 0; i < ours.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(ours[i] - theirs[i]));
            largest = Math.Max(largest, Math.Abs(ours[i]));
        }
        return worst / largest;
    }
}

/// <summary>
/// One ONNX Runtime session over an exported file: graph optimization level ALL, <c>threads</c> intra-op threads, sequential
/// execution, inputs and the one output wanted pre-allocated as OrtValues, so that a run allocates nothing of its own.
/// </summary>
internal sealed class OrtRunner : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly List<string> _inputNames = new();
    private readonly List<OrtValue> _inputs = new();
    private readonly string[] _outputNames;
    private readonly OrtValue[] _outputs;
    private readonly float[] _output;

    public OrtRunner(string path, int threads, int batch, int sequence, int[] tokens, string output, long[] outputShape)
    {
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        _session = new InferenceSession(path, options);
        long[] ids = Array.ConvertAll(tokens, t => (long)t);
        long[] mask = new long[ids.Length];
        mask.AsSpan().Fill(1);
        foreach (string name in _session.InputNames)
        {
            long[] data = name switch { "input_ids" => ids, "attention_mask" => mask, _ => new long[ids.Length] };
            _inputNames.Add(name);
            _inputs.Add(OrtValue.CreateTensorValueFromMemory(data, [batch, sequence]));
        }
        long count = 1;
        foreach (long d in outputShape) count *= d;
        _output = new float[count];
        _outputNames = [output];
        _outputs = [OrtValue.CreateTensorValueFromMemory(_output, outputShape)];
    }

    /// <summary>Runs the graph; the output's values stay in <see cref="Output"/> until the next run.</summary>
    public ReadOnlySpan<float> Run()
    {
        _session.Run(_runOptions, _inputNames, _inputs, _outputNames, _outputs);
        return _output;
    }

    public void Dispose()
    {
        foreach (OrtValue v in _inputs) v.Dispose();
        foreach (OrtValue v in _outputs) v.Dispose();
        _runOptions.Dispose();
        _session.Dispose();
    }
}
