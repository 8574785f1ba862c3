using System;
using BenchmarkDotNet.Attributes;

namespace TransformerGen.Onnx.Bench;

/// <summary>
/// Sentence embeddings of a batch of 128-token sentences (all-MiniLM-L6-v2's shape, all-mpnet-base-v2's, embeddinggemma-300m's, gte-modernbert-base's): ours (<c>Predict</c> on an inference instance)
/// against ONNX Runtime 1.32.0 on our model's ONNX export (the same weights), fp32, and with 8-bit weights (our 8-bit
/// instance's export, <see cref="OnnxWeightFormat.Int8Blocks"/>, holding its blocks: MatMulNBits, blocks of 32, accuracy level 4, so ORT quantizes the activations
/// to int8 per block), and ours with 8-bit weights (<see cref="WeightType.Int8"/>: the same blocks of 32, the 128-row
/// products in integers over activations rounded per block, <see cref="TransformerModel.IntegerProducts"/>; and with that
/// turned off, fp32 products over the dequantized weights). The same thread count on both sides; the embeddings are
/// checked before timing.
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

    protected abstract TModel CreateModel(WeightType weights);

    /// <summary>The folder of the model's config under <c>models/</c>, which the export reads again.</summary>
    protected abstract string ConfigName { get; }

    private TModel Ours(out float[] embeddings, WeightType weights = WeightType.Float32)
    {
        TModel model = CreateModel(weights);
        Bench.PerturbVectors(model);
        _tokens = Bench.Tokens(model.Layout.TokensPerStep, model.Layout.Vocab, model.Layout.PadToken);
        embeddings = model.Predict(_tokens).ToArray();
        return model;
    }

    private void SetupOrt(OnnxWeightFormat format)
    {
        Parallelism.ThreadCount = Threads;
        // The 8-bit graph is exported from our 8-bit instance: each of its blocks (d·q with max|q| = 127) quantizes back to
        // the same scale and codes, so both engines multiply the same 8-bit weights, and ORT is checked against our int8.
        WeightType weights = format == OnnxWeightFormat.Int8Blocks ? WeightType.Int8 : WeightType.Float32;
        TModel model = Ours(out float[] ours, weights);
        ModelLayout layout = model.Layout;
        string path = Bench.Export(model, Bench.Config(ConfigName), format);
        _ort = new OrtRunner(path, Threads, layout.Batch, layout.SeqLen, _tokens, "sentence_embedding", [layout.Batch, ours.Length / layout.Batch]);
        double error = Bench.RelativeMax(ours, _ort.Run());
        Console.WriteLine($"// {typeof(TModel).Name} {format}: ONNX Runtime's embeddings differ from ours ({weights}, the same weights) by {error:E2} of the largest");
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

    [GlobalSetup(Target = nameof(OursInt8))]
    public void SetupOursInt8()
    {
        Parallelism.ThreadCount = Threads;
        _ = Ours(out float[] exact);
        _model = Ours(out float[] reduced, WeightType.Int8);
        Console.WriteLine($"// {typeof(TModel).Name} Int8: our 8-bit embeddings differ from our fp32 ones by {Bench.RelativeMax(reduced, exact):E2} of the largest");
        Bench.Repeat(() => OursInt8());
    }

    [GlobalSetup(Target = nameof(OursInt8FloatActivations))]
    public void SetupOursInt8FloatActivations()
    {
        SetupOursInt8();
        _model!.IntegerProducts = false;
        Bench.Repeat(() => OursInt8FloatActivations());
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

    [Benchmark]
    public float OursInt8() => _model!.Predict(_tokens)[0];

    [Benchmark]
    public float OursInt8FloatActivations() => _model!.Predict(_tokens)[0];

    [Benchmark(Baseline = true)]
    public float OnnxRuntime() => _ort!.Run()[0];

    [Benchmark]
    public float OnnxRuntimeInt8() => _ort!.Run()[0];
}

/// <summary>all-MiniLM-L6-v2, one sentence of 128 tokens.</summary>
public class MiniLmBatch1Encode : EncoderBenchmarks<MiniLmBatch1>
{
    protected override MiniLmBatch1 CreateModel(WeightType weights) => MiniLmBatch1.ForInference(Bench.Seed, weights);

    protected override string ConfigName => "all-MiniLM-L6-v2";
}

/// <summary>all-MiniLM-L6-v2, 8 sentences of 128 tokens.</summary>
public class MiniLmBatch8Encode : EncoderBenchmarks<MiniLmBatch8>
{
    protected override MiniLmBatch8 CreateModel(WeightType weights) => MiniLmBatch8.ForInference(Bench.Seed, weights);

    protected override string ConfigName => "all-MiniLM-L6-v2";
}

/// <summary>all-mpnet-base-v2, 8 sentences of 128 tokens (no padding; ids other than MPNet's padding id 1).</summary>
public class MPNetBatch8Encode : EncoderBenchmarks<MPNetBatch8>
{
    protected override MPNetBatch8 CreateModel(WeightType weights) => MPNetBatch8.ForInference(Bench.Seed, weights);

    protected override string ConfigName => "all-mpnet-base-v2";
}

/// <summary>embeddinggemma-300m, one sentence of 128 tokens (no padding).</summary>
public class EmbeddingGemmaBatch1Encode : EncoderBenchmarks<EmbeddingGemmaBatch1>
{
    protected override EmbeddingGemmaBatch1 CreateModel(WeightType weights) => EmbeddingGemmaBatch1.ForInference(Bench.Seed, weights);

    protected override string ConfigName => "embeddinggemma-300m";
}

/// <summary>
/// gte-modernbert-base, one sentence of 128 tokens (no padding: ids other than ModernBERT's padding id 50283). The ONNX
/// Runtime cases need <c>SaveOnnx</c> to export ModernBERT; where it does not, their setup fails with the export's
/// exception (BenchmarkDotNet reports NA) and only our three cases run.
/// </summary>
public class ModernBertBatch1Encode : EncoderBenchmarks<ModernBertBatch1>
{
    protected override ModernBertBatch1 CreateModel(WeightType weights) => ModernBertBatch1.ForInference(Bench.Seed, weights);

    protected override string ConfigName => "gte-modernbert-base";
}
