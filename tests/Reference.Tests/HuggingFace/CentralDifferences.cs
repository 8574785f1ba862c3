using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// The encoder–decoder references' own gradient check (Marian, BART, mBART): for each named parameter, one entry among
/// its larger ones (never in the padding row of <c>model.shared.weight</c>, whose finite difference also counts the
/// lookups that <c>padding_idx</c> keeps out of the gradient) against a central difference of the loss in float64.
/// </summary>
internal static class CentralDifferences
{
    public static void Check(HfReference precise, Dictionary<string, float[]> gradients, IEnumerable<string> names, int seed, int pad, int width,
        Func<double> loss, Action<string> log)
    {
        var rng = new Random(seed);
        foreach (string parameter in names)
        {
            float[] g = gradients[parameter];
            double largest = g.Max(v => Math.Abs(v));
            int[] candidates = Enumerable.Range(0, g.Length).Where(i => Math.Abs(g[i]) >= 0.1 * largest && !(parameter == "model.shared.weight" && i / width == pad)).ToArray();
            CheckEntry(precise, parameter, candidates[rng.Next(candidates.Length)], g, loss, log);
        }
    }

    /// <summary>
    /// As above, one entry among the larger ones (at least a tenth of the largest) of each range [From, To) of a
    /// parameter's flat values: the query, key and value rows of a fused projection, say, each checked on its own.
    /// </summary>
    public static void Check(HfReference precise, Dictionary<string, float[]> gradients, IEnumerable<(string Name, int From, int To)> ranges, int seed,
        Func<double> loss, Action<string> log)
    {
        var rng = new Random(seed);
        foreach ((string parameter, int from, int to) in ranges)
        {
            float[] g = gradients[parameter];
            double largest = g[from..to].Max(v => Math.Abs(v));
            int[] candidates = Enumerable.Range(from, to - from).Where(i => Math.Abs(g[i]) >= 0.1 * largest).ToArray();
            CheckEntry(precise, parameter, candidates[rng.Next(candidates.Length)], g, loss, log);
        }
    }

    // The central difference of the loss in one entry, with a step of 1e-5, against its analytic gradient.
    private static void CheckEntry(HfReference precise, string parameter, int index, float[] g, Func<double> loss, Action<string> log)
    {
        const double h = 1e-5;
        Tensor values = precise.Model[parameter];
        double original = Evaluate(() => values.view(-1)[index]);
        double Shifted(double by)
        {
            Evaluate(() => values.view(-1)[index].fill_(original + by));
            return loss();
        }
        double difference = (Shifted(h) - Shifted(-h)) / (2 * h);
        Shifted(0);
        double error = Math.Abs(difference - g[index]);
        log($"{parameter}[{index}]: analytic {g[index]:E6}, central difference {difference:E6}, error {error / Math.Abs(g[index]):E2} relative");
        Assert.True(error <= 1e-6 * Math.Abs(g[index]) + 1e-9, $"{parameter}[{index}]: analytic {g[index]} vs central difference {difference}");
    }

    /// <summary>A scalar of the reference, computed without building a graph.</summary>
    public static double Evaluate(Func<Tensor> objective)
    {
        using DisposeScope scope = NewDisposeScope();
        using (no_grad()) return objective().item<double>();
    }
}
