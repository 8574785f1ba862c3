using System;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using TransformerGen.LlamaCpp.Bench;

// A correctness check at a size no benchmark holds twice (see Llama32_3BCheck), rather than a timing.
if (args is ["--check-llama32-3b"]) return Llama32_3BCheck.Run();
// What loading that model costs in memory and time, from a BF16 checkpoint written for it.
if (args is ["--load-llama32-3b", string type]) return Llama32_3BCheck.Load(type);

// In process, as bench/Model.Bench runs: one launch, 3 warm-up and 10 measured iterations, each reported as its median.
// A case may run for 30 minutes rather than the toolchain's default 5: Llama-3.2-3B's llama.cpp case makes 12.85 GB of
// fp32 weights and their GGUF export before its 13 iterations of 32 tokens, about 7 s each.
IConfig config = DefaultConfig.Instance
    .AddJob(Job.ShortRun.WithIterationCount(10).WithToolchain(new InProcessEmitToolchain(TimeSpan.FromMinutes(30), logOutput: true)).WithId("InProcess"));
BenchmarkSwitcher.FromAssembly(typeof(SmolLm2Decode).Assembly).Run(args, config);
return 0;
