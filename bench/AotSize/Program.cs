using System;
using System.Diagnostics;
using TransformerGen;

namespace AotSize;

// The models of measure.sh, one per publish (AotSize.csproj's AotModel property picks the symbol).
#if AOT_SMOLLM2
/// <summary>SmolLM2-135M's architecture from its config.json: 30 layers, hidden 576, 9 heads over 3 KV heads, SwiGLU, tied head.</summary>
[TransformerModel(Config = "../Model.Bench/models/SmolLM2-135M/config.json", SeqLen = 128)]
public partial class Model { }
#elif AOT_LAYERS2
[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 2, DFF = 1024, SeqLen = 128)]
public partial class Model { }
#elif AOT_LAYERS12
[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 12, DFF = 1024, SeqLen = 128)]
public partial class Model { }
#elif AOT_LAYERS24
[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 24, DFF = 1024, SeqLen = 128)]
public partial class Model { }
#elif AOT_LAYERS48
[TransformerModel(Vocab = 256, DModel = 256, Heads = 8, Layers = 48, DFF = 1024, SeqLen = 128)]
public partial class Model { }
#endif

/// <summary>
/// Builds the model with random weights (none are in the binary), reads a 3-token prompt and decodes one token, and
/// prints what it took: the code the model costs is then in the executable, and nothing else is. Built with
/// <c>-p:AotTrain=true</c> and run with <c>train</c> under the JIT (measure.sh does), it builds a training instance and
/// takes one AdamW step on a full batch instead, and prints the time from the process's start to the end of that step
/// (the training code is only compiled in then, so it never counts in the executable's size).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        // NativeAOT compiles nothing at run time (IsDynamicCodeSupported would not tell: PublishAot turns it off for the
        // JIT build too).
        string runtime = System.Runtime.JitInfo.GetCompiledMethodCount() > 0 ? "jit" : "nativeaot";
#if AOT_NONE
        Console.WriteLine($"runtime={runtime} model=none threads={Parallelism.ThreadCount}");
#else
#if AOT_TRAIN
        if (args is ["train"]) return FirstTrainingStep(runtime);
#endif
        long started = Stopwatch.GetTimestamp();
        Model model = Model.ForInference(1);
        int[] prompt = [1, 2, 3];
        ReadOnlySpan<float> logits = model.Append(prompt);
        int next = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[next]) next = i;
        model.Append(new[] { next });
        Console.WriteLine($"runtime={runtime} model={nameof(Model)} layers={Model.Layers} parameters={model.Parameters.Length} " +
            $"next={next} first tokens in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms");
#endif
        return 0;
    }
#if AOT_TRAIN && !AOT_NONE

    private static int FirstTrainingStep(string runtime)
    {
        long started = Stopwatch.GetTimestamp();
        var model = new Model(1);
        var optimizer = new AdamW(model, learningRate: 1e-3f);
        double built = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        var tokens = new int[Model.Batch * Model.SeqLen];
        var targets = new int[tokens.Length];
        for (int i = 0; i < tokens.Length; i++) (tokens[i], targets[i]) = (i * 7 % Model.Vocab, (i * 7 + 1) % Model.Vocab);
        float loss = model.TrainStep(tokens, targets, optimizer);
        // Process.StartTime comes from /proc/self/stat, in clock ticks of 10 ms.
        double fromStart = (DateTime.Now - Process.GetCurrentProcess().StartTime).TotalMilliseconds;
        double firstStep = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        // What the JIT had done by then (on every thread, the background tier-up included), then a second step for
        // what the same step costs once its code is compiled and its buffers touched.
        TimeSpan jitTime = System.Runtime.JitInfo.GetCompilationTime();
        long jitMethods = System.Runtime.JitInfo.GetCompiledMethodCount();
        long second = Stopwatch.GetTimestamp();
        model.TrainStep(tokens, targets, optimizer);
        Console.WriteLine($"runtime={runtime} layers={Model.Layers} loss={loss:F3} first step {firstStep:F0} ms after Main " +
            $"(model and optimizer built in {built:F0} ms), {fromStart:F0} ms after the process started; by then the JIT had compiled " +
            $"{jitMethods} methods in {jitTime.TotalMilliseconds:F0} ms; a second step {Stopwatch.GetElapsedTime(second).TotalMilliseconds:F0} ms");
        return 0;
    }
#endif
}
