using System;
using System.Diagnostics;
using LLama.Native;

namespace TransformerGen.LlamaCpp.Bench;

/// <summary>What the benchmarks share.</summary>
internal static class Bench
{
    /// <summary>Warm-up by time: tiered compilation needs about a second of calls before the hot code is optimized (ENVIRONMENT.md).</summary>
    public static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(2.5);

    public static void Repeat(Action action)
    {
        var clock = Stopwatch.StartNew();
        do action(); while (clock.Elapsed < WarmUp);
    }

    public static void Check(DecodeResult result, string what = "decode")
    {
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp could not {what}: {result}");
    }

    /// <summary>Largest |ours − theirs| over the largest |ours|.</summary>
    public static double RelativeMax(ReadOnlySpan<float> ours, ReadOnlySpan<float> theirs)
    {
        double worst = 0, largest = 0;
        for (int i = 0; i < ours.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(ours[i] - theirs[i]));
            largest = Math.Max(largest, Math.Abs(ours[i]));
        }
        return worst / largest;
    }
}
