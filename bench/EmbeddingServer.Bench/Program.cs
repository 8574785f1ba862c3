using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Threading.Tasks;
using TransformerGen;
using TransformerGen.EmbeddingServer;
using TransformerGen.EmbeddingServer.Bench;

// Requests/s and p50/p99 latency of one-sentence requests (8 to 128 tokens) from 1, 4, 16 and 64 closed-loop clients:
// ours through the server's batcher (in process, fp32 and int8 weights) and through the server itself over loopback
// HTTP, beside one ONNX Runtime session shared by the same clients (fp32 and 8-bit) on the same weights, at 1 and 2 threads.
var seconds = new Option<double>("--seconds") { Description = "Measured seconds per case.", DefaultValueFactory = _ => 8 };
var warmUp = new Option<double>("--warmup") { Description = "Seconds of warm-up per engine (tiered JIT, ORT's arenas).", DefaultValueFactory = _ => 3 };
var clientCounts = new Option<int[]>("--clients") { Description = "Concurrent clients.", DefaultValueFactory = _ => [1, 4, 16, 64], AllowMultipleArgumentsPerToken = true };
var threadCounts = new Option<int[]>("--threads") { Description = "Threads (our workers; ORT's concurrent runs).", DefaultValueFactory = _ => [1, 2], AllowMultipleArgumentsPerToken = true };
var engineNames = new Option<string[]>("--engines") { Description = "ours, ort, ours-int8, ort-int8, http.", DefaultValueFactory = _ => ["ours", "ort", "ours-int8", "ort-int8", "http"], AllowMultipleArgumentsPerToken = true };
var maxWait = new Option<double>("--max-wait-ms") { Description = "The batcher's wait to fill a batch.", DefaultValueFactory = _ => 1 };
var maxTokens = new Option<int>("--max-batch-tokens") { Description = "The batcher's token budget.", DefaultValueFactory = _ => 2048 };
var kernelThreads = new Option<int>("--kernel-threads") { Description = "Threads each of our batches may use (Parallelism.ThreadCount); 1 by default: one worker per thread instead.", DefaultValueFactory = _ => 1 };
var lengths = new Option<int[]>("--lengths") { Description = "Instead of the clients: each engine's time for one sentence of each of these lengths, alone (one thread, medians).", AllowMultipleArgumentsPerToken = true };
var writeFolder = new Option<string?>("--write-folder") { Description = "Only write the random-weight model folder (all-MiniLM-L6-v2's shape and file layout) to this path, to start the server on it by hand.", HelpName = "path" };
var command = new RootCommand("EmbeddingServer against ONNX Runtime under concurrent clients.") { seconds, warmUp, clientCounts, threadCounts, engineNames, maxWait, maxTokens, kernelThreads, lengths, writeFolder };
command.SetAction(parsed => parsed.GetValue(writeFolder) is string path ? Task.FromResult(ModelFolder.WriteTo(path)) : Bench.RunAsync(new Bench.Settings(
    TimeSpan.FromSeconds(parsed.GetValue(seconds)), TimeSpan.FromSeconds(parsed.GetValue(warmUp)), parsed.GetValue(clientCounts)!,
    parsed.GetValue(threadCounts)!, parsed.GetValue(engineNames)!, TimeSpan.FromMilliseconds(parsed.GetValue(maxWait)), parsed.GetValue(maxTokens), parsed.GetValue(kernelThreads),
    parsed.GetValue(lengths) ?? [])));
return await command.Parse(args).InvokeAsync();

namespace TransformerGen.EmbeddingServer.Bench
{
    internal static class Bench
    {
        public sealed record Settings(TimeSpan Duration, TimeSpan WarmUp, int[] Clients, int[] Threads, string[] Engines, TimeSpan MaxWait, int MaxTokens, int KernelThreads, int[] Lengths);

        public static async Task<int> RunAsync(Settings s)
        {
            CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
            // By default each worker runs its batches on its own thread, one core each: T threads = T workers. With
            // --kernel-threads K, one worker per K threads, each batch split over K.
            Parallelism.ThreadCount = s.KernelThreads;
            Console.WriteLine($"# {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, load average {LoadAverage()}, {Environment.ProcessorCount} cores, .NET {Environment.Version}; kernel threads per batch {s.KernelThreads}, wait {s.MaxWait.TotalMilliseconds} ms, {s.MaxTokens} tokens a batch at most");
            using var folder = new ModelFolder();
            var stream = new SentenceStream(4096, ServedMiniLm.Vocab);
            Console.WriteLine($"# all-MiniLM-L6-v2 shape (SeqLen 256), random weights; sentences of 8-128 tokens, mean {stream.MeanLength:F1}");
            ModelWeights fp32 = ServedMiniLm.LoadWeights(folder.Path, WeightType.Float32);
            ModelWeights int8 = ServedMiniLm.LoadWeights(folder.Path, WeightType.Int8);
            await CheckAsync(fp32, int8, folder, stream);
            if (s.Lengths.Length > 0) return await LengthsAsync(s, fp32, int8, folder);

            var rows = new List<(int Threads, string Engine, LoadResult Result)>();
            foreach (int threads in s.Threads)
            {
                // Every engine is made and warmed up first; then each client count runs on each engine in turn, so that a
                // change in the neighbours' load over the run falls on all engines alike.
                var engines = new List<IEngine>();
                var servers = new List<(Process Server, HttpClient Client)>();
                try
                {
                    foreach (string name in s.Engines)
                    {
                        switch (name)
                        {
                            case "ours": engines.Add(BatcherEngine.Create(name, fp32, Math.Max(1, threads / s.KernelThreads), s.MaxWait, s.MaxTokens)); break;
                            case "ours-int8": engines.Add(BatcherEngine.Create(name, int8, Math.Max(1, threads / s.KernelThreads), s.MaxWait, s.MaxTokens)); break;
                            case "ort": engines.Add(new OrtEngine(name, folder.OnnxFloat32, threads)); break;
                            case "ort-int8": engines.Add(new OrtEngine(name, folder.OnnxInt8, threads)); break;
                            case "http":
                                (Process server, HttpClient http) = await StartServerAsync(folder, threads, s);
                                servers.Add((server, http));
                                engines.Add(new HttpEngine(name, http, ModelFolder.Text, server));
                                break;
                            default: throw new ArgumentException($"unknown engine {name}");
                        }
                        await Load.RunAsync(engines[^1], stream, 4, s.WarmUp);
                    }
                    foreach (int clients in s.Clients)
                    {
                        foreach (IEngine engine in engines)
                        {
                            LoadResult r = await Load.RunAsync(engine, stream, clients, s.Duration);
                            rows.Add((threads, engine.Name, r));
                            Console.WriteLine($"threads {threads}, {engine.Name,-9}, {clients,2} clients: {r.RequestsPerSecond,7:F1} req/s, {r.TokensPerSecond,7:F0} tokens/s, p50 {r.P50Ms,7:F1} ms, p99 {r.P99Ms,7:F1} ms, {r.RequestsPerCpuSecond,6:F1} req per CPU-s (load {LoadAverage()})");
                        }
                    }
                }
                finally
                {
                    foreach (IEngine engine in engines) await engine.DisposeAsync();
                    foreach ((Process server, HttpClient http) in servers)
                    {
                        http.Dispose();
                        server.Kill();
                        await server.WaitForExitAsync();
                        server.Dispose();
                    }
                }
            }

            Console.WriteLine();
            Console.WriteLine("| threads | clients | engine | requests/s | tokens/s | p50 | p99 | requests per CPU-second |");
            Console.WriteLine("|---|---|---|---|---|---|---|---|");
            foreach ((int threads, string engine, LoadResult r) in rows)
                Console.WriteLine($"| {threads} | {r.Clients} | {engine} | {r.RequestsPerSecond:F1} | {r.TokensPerSecond:N0} | {r.P50Ms:F1} ms | {r.P99Ms:F1} ms | {r.RequestsPerCpuSecond:F1} |");
            Console.WriteLine();
            Console.WriteLine("| threads | clients | ours / ORT fp32 | ours int8 / ORT 8-bit | HTTP server / ORT fp32 | the same per CPU-second |");
            Console.WriteLine("|---|---|---|---|---|---|");
            foreach (var group in rows.GroupBy(r => (r.Threads, r.Result.Clients)))
            {
                double Rate(string engine) => group.Where(r => r.Engine == engine).Select(r => r.Result.RequestsPerSecond).DefaultIfEmpty(double.NaN).First();
                double Cpu(string engine) => group.Where(r => r.Engine == engine).Select(r => r.Result.RequestsPerCpuSecond).DefaultIfEmpty(double.NaN).First();
                Console.WriteLine($"| {group.Key.Threads} | {group.Key.Clients} | {Rate("ours") / Rate("ort"):F2}× | {Rate("ours-int8") / Rate("ort-int8"):F2}× | {Rate("http") / Rate("ort"):F2}× | "
                                  + $"{Cpu("ours") / Cpu("ort"):F2}×, {Cpu("ours-int8") / Cpu("ort-int8"):F2}×, {Cpu("http") / Cpu("ort"):F2}× |");
            }
            return 0;
        }

        /// <summary>
        /// One sentence at a time, one thread: each engine's median time per call at each length, over rounds that
        /// alternate the engines (a round is 0.5 s of calls per engine), the fastest round's median kept. This splits the
        /// one-client rate of the load test by length.
        /// </summary>
        private static async Task<int> LengthsAsync(Settings s, ModelWeights fp32, ModelWeights int8, ModelFolder folder)
        {
            var engines = new List<IEngine>();
            foreach (string name in s.Engines)
                engines.Add(name switch
                {
                    "ours" => BatcherEngine.Create(name, fp32, 1, s.MaxWait, s.MaxTokens),
                    "ours-int8" => BatcherEngine.Create(name, int8, 1, s.MaxWait, s.MaxTokens),
                    "ort" => new OrtEngine(name, folder.OnnxFloat32, 1),
                    "ort-int8" => new OrtEngine(name, folder.OnnxInt8, 1),
                    _ => throw new ArgumentException($"--lengths times ours, ours-int8, ort and ort-int8, not {name}"),
                });
            try
            {
                var rng = new Random(7);
                Console.WriteLine();
                Console.WriteLine("| tokens | " + string.Join(" | ", engines.Select(e => e.Name + " (ms)")) + " |");
                Console.WriteLine("|---|" + string.Concat(engines.Select(_ => "---|")));
                foreach (int length in s.Lengths)
                {
                    var ids = new int[length];
                    ids[0] = SentenceStream.Cls;
                    ids[^1] = SentenceStream.Sep;
                    for (int i = 1; i < length - 1; i++) ids[i] = SentenceStream.FirstWord + rng.Next(ServedMiniLm.Vocab - SentenceStream.FirstWord);
                    var best = engines.Select(_ => double.MaxValue).ToArray();
                    for (int round = 0; round < 4; round++)
                        for (int e = 0; e < engines.Count; e++)
                        {
                            var times = new List<double>();
                            long end = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 2;
                            while (Stopwatch.GetTimestamp() < end || times.Count < 5)
                            {
                                long t0 = Stopwatch.GetTimestamp();
                                await engines[e].EmbedAsync(ids);
                                times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                            }
                            times.Sort();
                            if (round > 0) best[e] = Math.Min(best[e], times[times.Count / 2]); // round 0 warms up
                        }
                    Console.WriteLine($"| {length} | " + string.Join(" | ", best.Select(t => t.ToString("F3", CultureInfo.InvariantCulture))) + " |");
                }
            }
            finally
            {
                foreach (IEngine engine in engines) await engine.DisposeAsync();
            }
            return 0;
        }

        /// <summary>Before timing: ORT's embeddings against ours alone, and ours batched against ours alone.</summary>
        private static async Task CheckAsync(ModelWeights fp32, ModelWeights int8, ModelFolder folder, SentenceStream stream)
        {
            ServedMiniLm alone = ServedMiniLm.ForInference(fp32), aloneInt8 = ServedMiniLm.ForInference(int8);
            await using IEngine ort = new OrtEngine("ort", folder.OnnxFloat32, 1), ortInt8 = new OrtEngine("ort-int8", folder.OnnxInt8, 1);
            await using IEngine batched = BatcherEngine.Create("ours", fp32, 2, TimeSpan.FromMilliseconds(5), 2048);
            double ortError = 0, ortInt8Error = 0, batchError = 0;
            int[][] sample = Enumerable.Range(0, 16).Select(i => stream[i]).ToArray();
            float[][] together = await Task.WhenAll(sample.Select(batched.EmbedAsync));
            for (int i = 0; i < sample.Length; i++)
            {
                float[] ours = alone.Predict(sample[i]).ToArray(), oursInt8 = aloneInt8.Predict(sample[i]).ToArray();
                ortError = Math.Max(ortError, RelativeMax(ours, await ort.EmbedAsync(sample[i])));
                ortInt8Error = Math.Max(ortInt8Error, RelativeMax(oursInt8, await ortInt8.EmbedAsync(sample[i])));
                batchError = Math.Max(batchError, RelativeMax(ours, together[i]));
            }
            Console.WriteLine($"# checked on 16 sentences: ORT fp32 vs ours {ortError:E1}, ORT 8-bit vs our int8 {ortInt8Error:E1}, ours batched vs alone {batchError:E1} (of the largest value)");
            if (!(ortError <= 1e-4 && batchError <= 1e-5)) throw new InvalidOperationException("the engines disagree; not timing");
        }

        private static double RelativeMax(float[] a, float[] b)
        {
            double worst = 0, largest = 0;
            for (int i = 0; i < a.Length; i++)
            {
                worst = Math.Max(worst, Math.Abs(a[i] - b[i]));
                largest = Math.Max(largest, Math.Abs(a[i]));
            }
            return worst / largest;
        }

        /// <summary>Starts the server program (built beside this one) on the folder and waits for /health.</summary>
        private static async Task<(Process, HttpClient)> StartServerAsync(ModelFolder folder, int threads, Settings s)
        {
            int port;
            using (var probe = new TcpListener(IPAddress.Loopback, 0))
            {
                probe.Start();
                port = ((IPEndPoint)probe.LocalEndpoint).Port;
            }
            var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string arg in new[]
            {
                Path.Combine(AppContext.BaseDirectory, "EmbeddingServer.dll"), "--model", folder.Path, "--urls", $"http://127.0.0.1:{port}",
                "--workers", Math.Max(1, threads / s.KernelThreads).ToString(CultureInfo.InvariantCulture), "--threads", s.KernelThreads.ToString(CultureInfo.InvariantCulture),
                "--max-wait-ms", s.MaxWait.TotalMilliseconds.ToString(CultureInfo.InvariantCulture), "--max-batch-tokens", s.MaxTokens.ToString(CultureInfo.InvariantCulture),
                "--Logging:LogLevel:Default", "Warning",
            }) start.ArgumentList.Add(arg);
            Process server = Process.Start(start)!;
            server.OutputDataReceived += (_, _) => { };
            server.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine("server: " + e.Data); };
            server.BeginOutputReadLine();
            server.BeginErrorReadLine();
            var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var clock = Stopwatch.StartNew();
            while (true)
            {
                if (server.HasExited) throw new InvalidOperationException($"the server exited with {server.ExitCode}");
                try
                {
                    using HttpResponseMessage health = await client.GetAsync("/health");
                    if (health.IsSuccessStatusCode) return (server, client);
                }
                catch (HttpRequestException) when (clock.Elapsed < TimeSpan.FromSeconds(60))
                {
                    // not listening yet
                }
                await Task.Delay(200);
            }
        }

        private static string LoadAverage()
        {
            try
            {
                return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
            }
            catch (IOException)
            {
                return "?";
            }
        }
    }
}
