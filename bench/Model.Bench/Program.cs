using System;
using System.IO;
using System.Linq;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using TransformerGen.Model.Bench;

// In process: libtorch is loaded from this project's output folder, the one whose libLibTorchSharp.so the build made
// loadable (a separately built benchmark process would get an unpatched copy). A short job (1 launch, 3 warm-up and
// 3 measured iterations) keeps the whole run to a few minutes.
IConfig config = DefaultConfig.Instance
    .AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance).WithId("ShortInProcess"));

Summary[] summaries = BenchmarkSwitcher.FromAssembly(typeof(PeakFlops).Assembly).Run(args, config).ToArray();
if (summaries.Length == 0) return;

string table = PerformanceTable.Build(summaries);
Console.WriteLine();
Console.WriteLine(table);
string path = Path.Combine(summaries[0].ResultsDirectoryPath, "Performance.md");
File.WriteAllText(path, table);
Console.WriteLine($"written to {path}");
