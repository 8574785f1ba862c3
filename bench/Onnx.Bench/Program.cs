using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using TransformerGen.Onnx.Bench;

// In process, as bench/Model.Bench and bench/LlamaCpp.Bench run: one launch, 3 warm-up and 10 measured iterations.
IConfig config = DefaultConfig.Instance
    .AddJob(Job.ShortRun.WithIterationCount(10).WithToolchain(InProcessEmitToolchain.Instance).WithId("InProcess"));
BenchmarkSwitcher.FromAssembly(typeof(MiniLmBatch1Encode).Assembly).Run(args, config);
