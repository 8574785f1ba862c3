using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TransformerGen;

namespace EmbeddedSample;

/// <summary>
/// Generates text with TinyLm from the checkpoint built into the program (an embedded resource), and says how
/// long the first token took and how many tokens per second followed. Published with NativeAOT it is one
/// native file that needs nothing beside it.
/// </summary>
public static class Program
{
    private sealed record Options(string Prompt, int Length, float Temperature, int TopK, ulong Seed, string? SaveWeights, WeightType SaveAs);

    private const string Usage = "usage: Embedded [--prompt TEXT] [--length N] [--temperature T] [--top-k K] [--seed S]\n" +
        "       Embedded --save-weights FILE [--weight-type fp32|bf16|int8]   (writes the built-in checkpoint, its matrices as given; default int8)";

    public static int Main(string[] args)
    {
        long mainStarted = Stopwatch.GetTimestamp();
        if (args is ["--help"])
        {
            Console.WriteLine(Usage);
            return 0;
        }
        Options options;
        try
        {
            options = Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }

        if (options.SaveWeights is { } target) return SaveWeights(target, options.SaveAs);

        CharTokenizer tokenizer = CharTokenizer.FromAlphabet(BuiltInAlphabet());
        TinyLm model = TinyLm.FromBuiltInWeights();

        var prompt = new int[options.Prompt.Length];
        try
        {
            tokenizer.Encode(options.Prompt, prompt);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"--prompt: {e.Message}");
            return 2;
        }
        var output = new int[options.Length];

        // The first token alone (the prompt's prefill and one draw), then the whole continuation again from the
        // same seed: the same tokens, timed as a whole.
        model.Generate(prompt, output.AsSpan(0, 1), NewSampler(options));
        long firstToken = Stopwatch.GetTimestamp();
        DateTime firstTokenAt = DateTime.UtcNow;
        model.Generate(prompt, output, NewSampler(options));
        TimeSpan generation = Stopwatch.GetElapsedTime(firstToken);

        Console.WriteLine(options.Prompt + tokenizer.Decode(output));
        Console.WriteLine("---");
        // Process.StartTime comes from /proc/self/stat on Linux, in clock ticks (10 ms): a coarse figure.
        double fromProcessStart = (firstTokenAt - Process.GetCurrentProcess().StartTime.ToUniversalTime()).TotalMilliseconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"first_token_ms={Stopwatch.GetElapsedTime(mainStarted, firstToken).TotalMilliseconds:F2} (from Main; from process start ~{fromProcessStart:F0})"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"tokens_per_s={options.Length / generation.TotalSeconds:F0} ({options.Length} tokens after a {options.Prompt.Length}-character prompt in {generation.TotalMilliseconds:F1} ms)"));
        Console.WriteLine($"runtime={RuntimeText()} simd={SimdText()} weights={model.WeightType} built_in_bytes={BuiltInBytes()}");
        return 0;
    }

    /// <summary>
    /// Writes the built-in checkpoint to <paramref name="path"/> with its weight matrices as <paramref name="weights"/>
    /// says and its metadata (the alphabet) kept: how weights/int8/tinylm.safetensors is made from the fp32 build.
    /// </summary>
    private static int SaveWeights(string path, WeightType weights)
    {
        using Stream stream = typeof(TinyLm).Assembly.GetManifestResourceStream(TinyLm.Weights)
            ?? throw new InvalidOperationException($"the program was built without its resource {TinyLm.Weights}");
        var metadata = new Dictionary<string, string>(SafeTensors.ReadMetadata(stream, TinyLm.Weights));
        metadata.Remove("format");
        metadata.Remove("model");
        metadata.Remove("weight_type");
        TinyLm.FromBuiltInWeights(ModelUse.Training).Save(path, weights, metadata);
        Console.WriteLine($"{path}: {new FileInfo(path).Length} bytes, weight matrices {weights}");
        return 0;
    }

    /// <summary>The size of the checkpoint built into the program.</summary>
    private static long BuiltInBytes()
    {
        using Stream weights = typeof(TinyLm).Assembly.GetManifestResourceStream(TinyLm.Weights)
            ?? throw new InvalidOperationException($"the program was built without its resource {TinyLm.Weights}");
        return weights.Length;
    }

    /// <summary>The tokenizer's characters, which samples/TinyLm saved in the checkpoint's metadata.</summary>
    private static string BuiltInAlphabet()
    {
        using Stream weights = typeof(TinyLm).Assembly.GetManifestResourceStream(TinyLm.Weights)
            ?? throw new InvalidOperationException($"the program was built without its resource {TinyLm.Weights}");
        IReadOnlyDictionary<string, string> metadata = SafeTensors.ReadMetadata(weights, TinyLm.Weights);
        return metadata.TryGetValue("alphabet", out string? alphabet)
            ? alphabet
            : throw new InvalidDataException($"{TinyLm.Weights} has no 'alphabet' in its metadata");
    }

    private static Sampler NewSampler(Options options) =>
        new(options.Seed, TinyLm.Vocab) { Temperature = options.Temperature, TopK = options.TopK };

    /// <summary>NativeAOT compiles no method at run time. (RuntimeFeature.IsDynamicCodeSupported would not tell:
    /// PublishAot turns it off for the JIT build too, to make it behave as the published one.)</summary>
    private static string RuntimeText() => System.Runtime.JitInfo.GetCompiledMethodCount() > 0 ? "jit" : "nativeaot";

    /// <summary>The widest vectors the kernels can use here (the runtime's MatMul picks AVX-512, then AVX2+FMA).</summary>
    private static string SimdText() =>
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? "avx512" :
        Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported ? "avx2+fma" : "portable";

    private static Options Parse(string[] args)
    {
        var o = new Options(Prompt: "And God said", Length: 200, Temperature: 0.8f, TopK: 20, Seed: 2, SaveWeights: null, SaveAs: WeightType.Int8);
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--prompt": o = o with { Prompt = Value() }; break;
                case "--length": o = o with { Length = PositiveInt(Value(), "--length") }; break;
                case "--temperature": o = o with { Temperature = float.Parse(Value(), CultureInfo.InvariantCulture) }; break;
                case "--top-k": o = o with { TopK = int.Parse(Value(), NumberStyles.None, CultureInfo.InvariantCulture) }; break;
                case "--seed": o = o with { Seed = ulong.Parse(Value(), CultureInfo.InvariantCulture) }; break;
                case "--save-weights": o = o with { SaveWeights = Value() }; break;
                case "--weight-type":
                    string type = Value();
                    o = o with
                    {
                        SaveAs = type switch
                        {
                            "fp32" => WeightType.Float32,
                            "bf16" => WeightType.BFloat16,
                            "int8" => WeightType.Int8,
                            _ => throw new ArgumentException($"--weight-type must be fp32, bf16 or int8, not '{type}'"),
                        },
                    };
                    break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        if (o.Prompt.Length == 0) throw new ArgumentException("--prompt must not be empty");
        return o;
    }

    private static int PositiveInt(string text, string option) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0
            ? n
            : throw new ArgumentException($"{option} needs a positive integer, got '{text}'");
}
