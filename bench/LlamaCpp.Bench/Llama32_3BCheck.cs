using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
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
    /// <summary>
    /// <c>--load-llama32-3b int8|bf16</c>: writes a BF16 checkpoint of Llama-3.2-3B's shape (random N(0, 0.02²) weights,
    /// 6.43 GB, in its own names) to a temporary folder, loads it with <c>ForInference(checkpoint, type)</c> and prints the
    /// time and the process's peak resident size (VmHWM), then decodes a few tokens. Writing holds 8 MB at a time, so the
    /// peak is the load's.
    /// </summary>
    public static int Load(string type)
    {
        WeightType weights = type switch { "int8" => WeightType.Int8, "bf16" => WeightType.BFloat16, "fp32" => WeightType.Float32, _ => throw new ArgumentException($"'{type}': int8, bf16 or fp32") };
        string folder = Directory.CreateTempSubdirectory("safetensors-3b-").FullName;
        try
        {
            string checkpoint = Path.Combine(folder, "model.safetensors");
            var clock = Stopwatch.StartNew();
            WriteRandomBFloat16(checkpoint, Llama32_3B.CompiledLayout);
            Console.WriteLine($"wrote {new FileInfo(checkpoint).Length / 1e9:F2} GB of BF16 in {clock.Elapsed.TotalSeconds:F1} s; peak resident so far {Status("VmHWM")}");
            clock.Restart();
            Llama32_3B model = Llama32_3B.ForInference(checkpoint, weights);
            Console.WriteLine($"ForInference(checkpoint, {weights}) in {clock.Elapsed.TotalSeconds:F1} s: peak resident {Status("VmHWM")}, now {Status("VmRSS")}; " +
                $"matrices {model.WeightMatrixBytes / 1e9:F2} GB, pages given back {model.ReleasedWeightBytes / 1e9:F2} GB; " +
                $"in huge pages {Rollup("AnonHugePages")}");
            int[] tokens = [128000, 791, 4062, 315, 264, 2, 5, 77];
            clock.Restart();
            model.Append(tokens);
            for (int i = 0; i < 8; i++) model.Append(tokens.AsSpan(i, 1));
            Console.WriteLine($"a prompt of 8 and 8 steps in {clock.Elapsed.TotalSeconds:F1} s; peak resident {Status("VmHWM")}");
            return 0;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>A line of /proc/self/smaps_rollup (the process's mappings summed), as "AnonHugePages" for the memory in huge pages.</summary>
    private static string Rollup(string key) => File.ReadLines("/proc/self/smaps_rollup").First(l => l.StartsWith(key + ":", StringComparison.Ordinal))[(key.Length + 1)..].Trim();

    private static string Status(string key) => File.ReadLines("/proc/self/status").First(l => l.StartsWith(key + ":", StringComparison.Ordinal))[(key.Length + 1)..].Trim();

    /// <summary>A safetensors file of <paramref name="layout"/>'s tensors in BF16: matrices N(0, 0.02²), vectors 1.</summary>
    private static void WriteRandomBFloat16(string path, ModelLayout layout)
    {
        var header = new StringBuilder("{");
        long offset = 0;
        foreach (ParameterTensor t in layout.Tensors)
        {
            header.Append($"\"{t.Name}\":{{\"dtype\":\"BF16\",\"shape\":[{string.Join(",", t.Shape.ToArray())}],\"data_offsets\":[{offset},{offset + 2L * t.Length}]}},");
            offset += 2L * t.Length;
        }
        header[^1] = '}';
        while (header.Length % 8 != 0) header.Append(' ');
        byte[] json = Encoding.UTF8.GetBytes(header.ToString());
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        file.Write(BitConverter.GetBytes((long)json.Length));
        file.Write(json);
        var rng = new Rng(5);
        var chunk = new byte[8 << 20];
        foreach (ParameterTensor t in layout.Tensors)
            for (long done = 0; done < t.Length; done += chunk.Length / 2)
            {
                int n = (int)Math.Min(chunk.Length / 2, t.Length - done);
                for (int i = 0; i < n; i++)
                {
                    // Rounded to the nearest bf16 (ties to even).
                    uint bits = BitConverter.SingleToUInt32Bits(t.IsVector ? 1f : 0.02f * rng.NextNormal());
                    ushort b = (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
                    chunk[2 * i] = (byte)b;
                    chunk[2 * i + 1] = (byte)(b >> 8);
                }
                file.Write(chunk, 0, 2 * n);
            }
    }
}
