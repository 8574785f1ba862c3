using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using BenchmarkDotNet.Reports;

namespace TransformerGen.Model.Bench;

/// <summary>
/// The README's table from a run's summaries: per configuration, operation and thread count, our time and libtorch's,
/// their ratio, our GFLOP/s and its fraction of the peak measured in the same run, and our bytes allocated.
/// </summary>
internal static class PerformanceTable
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static string Build(IReadOnlyList<Summary> summaries)
    {
        var results = new Dictionary<(string Type, string Method, int Threads, int Size), BenchmarkReport>();
        foreach (BenchmarkReport report in summaries.SelectMany(s => s.Reports))
        {
            if (report.ResultStatistics is null) continue;
            var descriptor = report.BenchmarkCase.Descriptor;
            var parameters = report.BenchmarkCase.Parameters;
            int threads = parameters.Items.Any(p => p.Name == "Threads") ? Convert.ToInt32(parameters["Threads"], Invariant) : 1;
            int depth = parameters.Items.Any(p => p.Name == "Depth") ? Convert.ToInt32(parameters["Depth"], Invariant) : 0;
            int size = parameters.Items.Any(p => p.Name == "Size") ? Convert.ToInt32(parameters["Size"], Invariant) : depth;
            results[(descriptor.Type.Name, descriptor.WorkloadMethod.Name, threads, size)] = report;
        }

        double? Nanoseconds(string type, string method, int threads, int size = 0) =>
            results.TryGetValue((type, method, threads, size), out BenchmarkReport? r) ? r.ResultStatistics!.Median : null;
        string Allocated(string type, string method, int threads, int size = 0) =>
            results.TryGetValue((type, method, threads, size), out BenchmarkReport? r)
                ? (r.GcStats.GetBytesAllocatedPerOperation(r.BenchmarkCase) is long bytes ? bytes.ToString("N0", Invariant) + " B" : "?")
                : "";
        var peak = new Dictionary<int, double>();
        foreach (int threads in new[] { 1, 2 })
            if (Nanoseconds(nameof(PeakFlops), nameof(PeakFlops.Fma), threads) is double ns)
                peak[threads] = PeakFlops.FlopsPerThread * threads / ns; // FLOP per ns = GFLOP/s

        var text = new StringBuilder();
        text.AppendLine("| config | operation | threads | ours | libtorch | libtorch / ours | GFLOP/s | % of peak | allocated |");
        text.AppendLine("|---|---|---|---|---|---|---|---|---|");
        void Row(string config, string operation, int threads, double? ours, double? theirs, double flops, string allocated)
        {
            string ratio = ours is double o && theirs is double t ? (t / o).ToString("F2", Invariant) + "×" : "—";
            string gflops = ours is double o2 ? (flops / o2).ToString("F1", Invariant) : "—";
            string ofPeak = ours is double o3 && peak.TryGetValue(threads, out double p) ? (100 * flops / o3 / p).ToString("F0", Invariant) + "%" : "—";
            text.AppendLine($"| {config} | {operation} | {threads} | {Time(ours)} | {Time(theirs)} | {ratio} | {gflops} | {ofPeak} | {allocated} |");
        }

        foreach ((string name, Type model) in new[] { ("Tiny", typeof(TinyGpt)), ("Small", typeof(SmallGpt)), ("Base", typeof(BaseGpt)) })
        {
            string config = name.ToLowerInvariant();
            foreach (int threads in new[] { 1, 2 })
            {
                if (Nanoseconds(name, "TrainingStep", threads) is null && Nanoseconds(name, "TorchTrainingStep", threads) is null) continue;
                Row(config, "training step", threads, Nanoseconds(name, "TrainingStep", threads), Nanoseconds(name, "TorchTrainingStep", threads),
                    FlopCounts.TrainingStep(model), Allocated(name, "TrainingStep", threads));
                Row(config, "forward", threads, Nanoseconds(name, "Forward", threads), Nanoseconds(name, "TorchForward", threads),
                    FlopCounts.Forward(model), Allocated(name, "Forward", threads));
                Row(config, "decode 1 token", threads, Nanoseconds(name, "DecodeToken", threads), null,
                    FlopCounts.DecodeToken(model), Allocated(name, "DecodeToken", threads));
            }
        }
        foreach (int size in new[] { 64, 256, 512 })
            foreach (int threads in new[] { 1, 2 })
                if (Nanoseconds(nameof(MatMul), nameof(MatMul.Ours), threads, size) is not null)
                    Row($"matmul {size}³", "y = x·Wᵀ", threads, Nanoseconds(nameof(MatMul), nameof(MatMul.Ours), threads, size),
                        Nanoseconds(nameof(MatMul), nameof(MatMul.Torch), threads, size), 2.0 * size * size * size,
                        Allocated(nameof(MatMul), nameof(MatMul.Ours), threads, size));
        foreach ((int threads, double gflops) in peak.OrderBy(p => p.Key))
            text.AppendLine($"| peak | Vector512 FMA loop | {threads} | | | | {gflops.ToString("F1", Invariant)} | 100% | |");

        HuggingFaceRows(text, Nanoseconds, Allocated);

        if (Nanoseconds(nameof(ShapeSpecialization), nameof(ShapeSpecialization.Plain), 1, 64) is not null)
        {
            text.AppendLine();
            text.AppendLine("Shape specialization (the backward's 6 × 64 kernel alone, one thread, operands in L1):");
            text.AppendLine();
            text.AppendLine("| depth | sizes as arguments | sizes as type constants | GFLOP/s, arguments | GFLOP/s, constants |");
            text.AppendLine("|---|---|---|---|---|");
            foreach (int depth in new[] { 64, 128 })
                if (Nanoseconds(nameof(ShapeSpecialization), nameof(ShapeSpecialization.Plain), 1, depth) is double plain
                    && Nanoseconds(nameof(ShapeSpecialization), nameof(ShapeSpecialization.Constant), 1, depth) is double constant)
                {
                    double flops = 2.0 * 6 * 64 * depth;
                    text.AppendLine($"| {depth} | {Time(plain)} | {Time(constant)} | {(flops / plain).ToString("F1", Invariant)} | {(flops / constant).ToString("F1", Invariant)} |");
                }
        }

        text.AppendLine();
        text.AppendLine("Two threads against one (time with 1 thread / time with 2):");
        text.AppendLine();
        text.AppendLine("| config | operation | ours | libtorch |");
        text.AppendLine("|---|---|---|---|");
        foreach (string name in new[] { "Tiny", "Small", "Base" })
            foreach ((string operation, string ours, string theirs) in new[] { ("training step", "TrainingStep", "TorchTrainingStep"), ("forward", "Forward", "TorchForward"), ("decode 1 token", "DecodeToken", "") })
                if (Nanoseconds(name, ours, 1) is double o1 && Nanoseconds(name, ours, 2) is double o2)
                {
                    string torch = Nanoseconds(name, theirs, 1) is double t1 && Nanoseconds(name, theirs, 2) is double t2 ? (t1 / t2).ToString("F2", Invariant) + "×" : "—";
                    text.AppendLine($"| {name.ToLowerInvariant()} | {operation} | {(o1 / o2).ToString("F2", Invariant)}× | {torch} |");
                }

        Summary first = summaries[0];
        text.AppendLine();
        text.AppendLine("```");
        foreach (string line in first.HostEnvironmentInfo.ToFormattedString()) text.AppendLine(line);
        text.AppendLine("```");
        return text.ToString();
    }

    /// <summary>The Hugging Face benchmarks (HuggingFaceBenchmarks.cs), ours and libtorch's at the same thread count.</summary>
    private static void HuggingFaceRows(StringBuilder text, Func<string, string, int, int, double?> nanoseconds, Func<string, string, int, int, string> allocated)
    {
        const double tokens = 1e9; // a token count over nanoseconds, as tokens/s
        var rows = new (string Type, string Model, string Operation, double Work, string Unit)[]
        {
            (nameof(HuggingFaceMiniLmBatch1), "all-MiniLM-L6-v2", "sentence embeddings, 1 × 128 tokens", MiniLmFlops(MiniLmBatch1.Batch), "GFLOP/s"),
            (nameof(HuggingFaceMiniLmBatch8), "all-MiniLM-L6-v2", "sentence embeddings, 8 × 128 tokens", MiniLmFlops(MiniLmBatch8.Batch), "GFLOP/s"),
            (nameof(HuggingFaceModernBert), "gte-modernbert-base", $"sentence embeddings, 1 × {ModernBertBatch1.SeqLen} tokens", ModernBertFlops(ModernBertBatch1.SeqLen), "GFLOP/s"),
            (nameof(HuggingFaceModernBertSeq512), "gte-modernbert-base", $"sentence embeddings, 1 × {ModernBertBatch1Seq512.SeqLen} tokens", ModernBertFlops(ModernBertBatch1Seq512.SeqLen), "GFLOP/s"),
            (nameof(HuggingFaceSmolLm2Decode), "SmolLM2-135M", $"decode 1 token after {HuggingFaceSmolLm2Decode.Prompt} (mean of {HuggingFaceSmolLm2Decode.NewTokens})",
                4.0 * SmolLm2.ParameterCount, "GB/s of weights"),
            (nameof(HuggingFaceTranslationEncode), "opus-mt-en-de", $"encode {TranslationCase.SourceTokens} tokens", TranslationCase.SourceTokens * tokens, "tokens/s"),
            (nameof(HuggingFaceTranslationDecode), "opus-mt-en-de", $"greedy decode, 1 token (mean of {TranslationCase.TargetTokens})", tokens, "tokens/s"),
            (nameof(HuggingFaceTranslationGreedy), "opus-mt-en-de", $"translate {TranslationCase.SourceTokens} → {TranslationCase.TargetTokens} tokens, greedy",
                TranslationCase.TargetTokens * tokens, "tokens/s"),
            (nameof(HuggingFaceT5Encode), "flan-t5-small", $"encode {TranslationCase.SourceTokens} tokens", TranslationCase.SourceTokens * tokens, "tokens/s"),
            (nameof(HuggingFaceT5Decode), "flan-t5-small", $"greedy decode, 1 token (mean of {TranslationCase.TargetTokens})", tokens, "tokens/s"),
            (nameof(HuggingFaceT5Greedy), "flan-t5-small", $"translate {TranslationCase.SourceTokens} → {TranslationCase.TargetTokens} tokens, greedy",
                TranslationCase.TargetTokens * tokens, "tokens/s"),
        };
        if (!rows.Any(r => nanoseconds(r.Type, "Ours", 1, 0) is not null || nanoseconds(r.Type, "Torch", 1, 0) is not null)) return;
        text.AppendLine();
        text.AppendLine("Hugging Face shapes (models compiled from the configs in bench/Model.Bench/models, random seeded weights copied into libtorch modules):");
        text.AppendLine();
        text.AppendLine("| model | operation | threads | ours | libtorch | libtorch / ours | ours: rate | allocated (ours) | allocated (libtorch) |");
        text.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach ((string type, string model, string operation, double work, string unit) in rows)
            foreach (int threads in new[] { 1, 2 })
            {
                double? ours = nanoseconds(type, "Ours", threads, 0), theirs = nanoseconds(type, "Torch", threads, 0);
                if (ours is null && theirs is null) continue;
                string ratio = ours is double o && theirs is double t ? (t / o).ToString("F2", Invariant) + "×" : "—";
                string rate = ours is double o2 ? (work / o2).ToString("F1", Invariant) + " " + unit : "—";
                text.AppendLine($"| {model} | {operation} | {threads} | {Time(ours)} | {Time(theirs)} | {ratio} | {rate} | {allocated(type, "Ours", threads, 0)} | {allocated(type, "Torch", threads, 0)} |");
                // The translation benchmarks' 8-bit instance, against libtorch's fp32 (libtorch has no int8 counterpart here).
                if (nanoseconds(type, nameof(TranslationBenchmarks.OursInt8), threads, 0) is double int8)
                {
                    string int8Ratio = theirs is double t8 ? (t8 / int8).ToString("F2", Invariant) + "×" : "—";
                    text.AppendLine($"| {model} int8 | {operation} | {threads} | {Time(int8)} | {Time(theirs)} (fp32) | {int8Ratio} | {(work / int8).ToString("F1", Invariant)} {unit} | {allocated(type, nameof(TranslationBenchmarks.OursInt8), threads, 0)} | |");
                }
            }

        // Multiply-adds of the linear layers and of attention's two products (two operations each), per sequence of 128.
        static double MiniLmFlops(int batch)
        {
            const double tokens = MiniLmBatch1.SeqLen, hidden = MiniLmBatch1.DModel, inner = MiniLmBatch1.DFF;
            double linear = 2 * tokens * (4 * hidden * hidden + 2 * hidden * inner);
            double attention = 2 * 2 * tokens * tokens * hidden;
            return batch * MiniLmBatch1.Layers * (linear + attention);
        }

        // One sentence of `tokens` through ModernBERT-base: per layer Wqkv, Wo, Wi (two halves) and the MLP's Wo, and the
        // two attention products over the pairs a layer lets through: all on the global layers (every third from 0), those
        // within ±local_attention // 2 = 64 positions on the local ones (the work the window leaves, not what libtorch does).
        static double ModernBertFlops(int tokens)
        {
            const double hidden = ModernBertBatch1.DModel, inner = ModernBertBatch1.DFF;
            const int layers = ModernBertBatch1.Layers, reach = 64;
            double linear = 2.0 * tokens * (4 * hidden * hidden + 3 * hidden * inner);
            double windowPairs = 0;
            for (int i = 0; i < tokens; i++) windowPairs += Math.Min(tokens - 1, i + reach) - Math.Max(0, i - reach) + 1;
            int global = (layers + 2) / 3;
            double attention = 2 * 2 * hidden * (global * (double)tokens * tokens + (layers - global) * windowPairs);
            return layers * linear + attention;
        }
    }

    private static string Time(double? nanoseconds) => nanoseconds switch
    {
        null => "—",
        >= 1e6 => (nanoseconds.Value / 1e6).ToString("F2", Invariant) + " ms",
        >= 1e3 => (nanoseconds.Value / 1e3).ToString("F1", Invariant) + " µs",
        _ => nanoseconds.Value.ToString("F0", Invariant) + " ns",
    };
}
