using System;
using System.Diagnostics;
using System.IO;
using LLama;
using LLama.Common;
using LLama.Native;

namespace TransformerGen.LlamaCpp.Bench;

/// <summary>
/// The model of more than 2³¹ − 1 parameter floats against llama.cpp's F32 on the same random weights, at its real size:
/// Llama-3.2-3B's shape in two parameter segments, a 16-token prompt and 8 cached steps, each step's logits compared over
/// the largest. Not a benchmark (<c>--check-llama32-3b</c>): the two fp32 copies take 25.7 GB, more than this machine's
/// 23 GB, so llama.cpp maps its GGUF file (clean pages the system may drop and read again) instead of loading it.
/// </summary>
internal static class Llama32_3BCheck
{
    public static int Run()
    {
        Parallelism.ThreadCount = 2;
        var clock = Stopwatch.StartNew();
        Llama32_3B model = Llama32_3B.ForInference(7, WeightType.Float32);
        Console.WriteLine($"Llama32_3B: {model.Layout.TotalParameterFloats:N0} parameter floats in segments of {string.Join(", ", model.Layout.ParameterSegments)} ({clock.Elapsed.TotalSeconds:F1} s)");
        string folder = Directory.CreateTempSubdirectory("gguf-3b-").FullName;
        try
        {
            string gguf = Path.Combine(folder, "Llama32_3B.F32.gguf");
            clock.Restart();
            model.SaveGguf(gguf, Path.Combine(AppContext.BaseDirectory, "models/Llama-3.2-3B/config.json"), GgufTensorType.F32);
            Console.WriteLine($"GGUF F32: {new FileInfo(gguf).Length / 1e9:F2} GB in {clock.Elapsed.TotalSeconds:F1} s");
            var rng = new Rng(11);
            int[] tokens = new int[24];
            for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.NextInt(model.Layout.Vocab);
            var parameters = new ModelParams(gguf)
            {
                ContextSize = 64, BatchSize = 16, UBatchSize = 16, Threads = 2, BatchThreads = 2, GpuLayerCount = 0,
                TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false, LoadMode = LLamaLoadMode.MemoryMap,
            };
            using LLamaWeights weights = LLamaWeights.LoadFromFile(parameters);
            using LLamaContext context = weights.CreateContext(parameters);
            var batch = new LLamaBatch();
            for (int i = 0; i < 16; i++) batch.Add(tokens[i], i, LLamaSeqId.Zero, i == 15);
            Bench.Check(context.NativeHandle.Decode(batch));
            double worst = Bench.RelativeMax(model.Append(tokens.AsSpan(0, 16)), context.NativeHandle.GetLogitsIth(15));
            Console.WriteLine($"prompt of 16 tokens: llama.cpp's F32 logits within {worst:E2} of the largest of ours");
            for (int i = 16; i < tokens.Length; i++)
            {
                batch.Clear();
                batch.Add(tokens[i], i, LLamaSeqId.Zero, true);
                Bench.Check(context.NativeHandle.Decode(batch));
                double step = Bench.RelativeMax(model.Append(tokens.AsSpan(i, 1)), context.NativeHandle.GetLogitsIth(0));
                Console.WriteLine($"position {i}: {step:E2}");
                worst = Math.Max(worst, step);
            }
            Console.WriteLine($"worst {worst:E2} (the check allows 1e-4)");
            return worst <= 1e-4 ? 0 : 1;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
