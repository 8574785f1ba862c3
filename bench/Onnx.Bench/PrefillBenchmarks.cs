using System;
using BenchmarkDotNet.Attributes;

namespace TransformerGen.Onnx.Bench;

/// <summary>
/// SmolLM2-135M's prefill of a 128-token prompt: ours (<c>ResetCache</c> then <c>Append</c> of the prompt, which fills the
/// key/value cache and gives the last position's logits) against ONNX Runtime on our export with
/// <see cref="OnnxExportOptions.LastPositionOnly"/> (the same full-sequence forward pass, with the LM head over the last
/// position only; no key/value cache is written), fp32 and 8-bit blocks, and ours with 8-bit weights
/// (<see cref="WeightType.Int8"/>). The logits are checked before timing.
/// </summary>
[MemoryDiagnoser]
public class SmolLm2PrefillBenchmarks
{
    private SmolLm2Prefill? _model;
    private int[] _prompt = null!;
    private OrtRunner? _ort;

    [Params(1, 2)]
    public int Threads { get; set; }

    private float[] CreateOurs(WeightType weights = WeightType.Float32)
    {
        _model = SmolLm2Prefill.ForInference(Bench.Seed, weights);
        Bench.PerturbVectors(_model);
        _prompt = Bench.Tokens(SmolLm2Prefill.SeqLen, SmolLm2Prefill.Vocab);
        _model.ResetCache();
        return _model.Append(_prompt).ToArray();
    }

    private void SetupOrt(OnnxWeightFormat format)
    {
        Parallelism.ThreadCount = Threads;
        // The 8-bit graph from our 8-bit instance: its blocks, unchanged (see EncoderBenchmarks).
        WeightType weights = format == OnnxWeightFormat.Int8Blocks ? WeightType.Int8 : WeightType.Float32;
        float[] ours = CreateOurs(weights);
        string path = Bench.Export(_model!, Bench.Config("SmolLM2-135M"), format, lastPositionOnly: true);
        _model = null;
        GC.Collect();
        _ort = new OrtRunner(path, Threads, 1, _prompt.Length, _prompt, "logits", [1, 1, ours.Length]);
        double error = Bench.RelativeMax(ours, _ort.Run());
        Console.WriteLine($"// SmolLM2 prefill {format}: ONNX Runtime's logits differ from ours ({weights}, the same weights) by {error:E2} of the largest");
        if (!(error <= (format == OnnxWeightFormat.Float32 ? 1e-4 : 1e-1))) throw new InvalidOperationException($"SmolLM2 prefill {format}: {error:E2}");
        Bench.Repeat(() => _ort.Run());
    }

    [GlobalSetup(Target = nameof(Ours))]
    public void SetupOurs()
    {
        Parallelism.ThreadCount = Threads;
        CreateOurs();
        Bench.Repeat(() => Ours());
    }

    [GlobalSetup(Target = nameof(OursInt8))]
    public void SetupOursInt8()
    {
        Parallelism.ThreadCount = Threads;
        float[] exact = CreateOurs();
        float[] reduced = CreateOurs(WeightType.Int8);
        Console.WriteLine($"// SmolLM2 prefill Int8: our 8-bit logits differ from our fp32 ones by {Bench.RelativeMax(reduced, exact):E2} of the largest");
        Bench.Repeat(() => OursInt8());
    }

    [GlobalSetup(Target = nameof(OnnxRuntime))]
    public void SetupOnnxRuntime() => SetupOrt(OnnxWeightFormat.Float32);

    [GlobalSetup(Target = nameof(OnnxRuntimeInt8))]
    public void SetupOnnxRuntimeInt8() => SetupOrt(OnnxWeightFormat.Int8Blocks);

    [GlobalCleanup]
    public void Cleanup()
    {
        _ort?.Dispose();
        (_ort, _model) = (null, null);
        GC.Collect();
    }

    [Benchmark]
    public float Ours()
    {
        _model!.ResetCache();
        return _model.Append(_prompt)[0];
    }

    [Benchmark]
    public float OursInt8()
    {
        _model!.ResetCache();
        return _model.Append(_prompt)[0];
    }

    [Benchmark(Baseline = true)]
    public float OnnxRuntime() => _ort!.Run()[0];

    [Benchmark]
    public float OnnxRuntimeInt8() => _ort!.Run()[0];
}
