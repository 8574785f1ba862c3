using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
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
/// prints what it took: the code the model costs is then in the executable, and nothing else is.
/// </summary>
public static class Program
{
    public static int Main()
    {
        string runtime = RuntimeFeature.IsDynamicCodeSupported ? "jit" : "nativeaot";
#if AOT_NONE
        Console.WriteLine($"runtime={runtime} model=none threads={Parallelism.ThreadCount}");
#else
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
}
