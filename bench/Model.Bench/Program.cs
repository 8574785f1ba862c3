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
// loadable (a separately built benchmark process would get an unpatched copy). One launch, 3 warm-up and 10 measured
// iterations: on a shared virtual machine single iterations vary by 10-20%, and the table reports each median.
IConfig config = DefaultConfig.Instance
    .AddJob(Job.ShortRun.WithIterationCount(10).WithToolchain(InProcessEmitToolchain.Instance).WithId("InProcess"));

Summary[] summaries = BenchmarkSwitcher.FromAssembly(typeof(PeakFlops).Assembly).Run(args, config).ToArray();
if (summaries.Length == 0) return;

string table = PerformanceTable.Build(summaries);
Console.WriteLine();
Console.WriteLine(table);
string path = Path.Combine(summaries[0].ResultsDirectoryPath, "Performance.md");
File.WriteAllText(path, table);
Console.WriteLine($"written to {path}");
