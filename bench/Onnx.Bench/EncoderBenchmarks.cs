using System;
using BenchmarkDotNet.Attributes;

namespace TransformerGen.Onnx.Bench;

/// <summary>
/// all-MiniLM-L6-v2's sentence embeddings of a batch of 128-token sentences: ours (<c>Predict</c> on an inference instance)
/// against ONNX Runtime 1.32.0 on our model's ONNX export (the same weights), fp32, and with 8-bit weights (our export's
/// <see cref="OnnxWeightFormat.Int8Blocks"/>: MatMulNBits, blocks of 32, accuracy level 4, so ORT quantizes the activations
/// to int8 per block). The same thread count on both sides; the embeddings are checked before timing.
/// </summary>
/// <remarks>ONNX Runtime fp32 is the baseline: BenchmarkDotNet's Ratio column is each method's time over its.</remarks>
[MemoryDiagnoser]
public abstract class EncoderBenchmarks<TModel> where TModel : EncoderModel
{
    private TModel? _model;
    private int[] _tokens = null!;
    private OrtRunner? _ort;

    [Params(1, 2)]
    public int Threads { get; set; }

    protected abstract TModel CreateModel();

    private TModel Ours(out float[] embeddings)
    {
        TModel model = CreateModel();
        Bench.PerturbVectors(model);
        _tokens = Bench.Tokens(model.Layout.TokensPerStep, model.Layout.Vocab);
        embeddings = model.Predict(_tokens).ToArray();
        return model;
    }

    private void SetupOrt(OnnxWeightFormat format)
    {
        Parallelism.ThreadCount = Threads;
        TModel model = Ours(out float[] ours);
        ModelLayout layout = model.Layout;
        string path = Bench.Export(model, Bench.Config("all-MiniLM-L6-v2"), format);
        _ort = new OrtRunner(path, Threads, layout.Batch, layout.SeqLen, _tokens, "sentence_embedding", [layout.Batch, ours.Length / layout.Batch]);
        double error = Bench.RelativeMax(ours, _ort.Run());
        Console.WriteLine($"// {typeof(TModel).Name} {format}: ONNX Runtime's embeddings differ from ours by {error:E2} of the largest");
        if (!(error <= (format == OnnxWeightFormat.Float32 ? 1e-5 : 5e-2))) throw new InvalidOperationException($"{typeof(TModel).Name} {format}: {error:E2}");
        Bench.Repeat(() => _ort.Run());
    }

    [GlobalSetup(Target = nameof(Ours))]
    public void SetupOurs()
    {
        Parallelism.ThreadCount = Threads;
        _model = Ours(out _);
        Bench.Repeat(() => Ours());
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
    public float Ours() => _model!.Predict(_tokens)[0];

    [Benchmark(Baseline = true)]
    public float OnnxRuntime() => _ort!.Run()[0];

    [Benchmark]
    public float OnnxRuntimeInt8() => _ort!.Run()[0];
}

/// <summary>all-MiniLM-L6-v2, one sentence of 128 tokens.</summary>
public class MiniLmBatch1Encode : EncoderBenchmarks<MiniLmBatch1>
{
    protected override MiniLmBatch1 CreateModel() => MiniLmBatch1.ForInference(Bench.Seed);
}

/// <summary>all-MiniLM-L6-v2, 8 sentences of 128 tokens.</summary>
public class MiniLmBatch8Encode : EncoderBenchmarks<MiniLmBatch8>
{
    protected override MiniLmBatch8 CreateModel() => MiniLmBatch8.ForInference(Bench.Seed);
}
