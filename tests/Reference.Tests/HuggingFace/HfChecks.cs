using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TransformerGen.Model.Tests;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// The comparisons the Hugging Face model tests share: relative differences of outputs, gradients tensor by tensor (in
/// the files' layout: GPT-2's Conv1D weights [in, out]), cosines, and the encoder–decoders' cached and greedy decoding.
/// </summary>
internal static class HfChecks
{
    /// <summary>The largest absolute difference over the largest absolute expected value.</summary>
    public static double RelativeMax(float[] actual, float[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Max(Math.Abs), worst = 0;
        for (int i = 0; i < actual.Length; i++) worst = Math.Max(worst, Math.Abs((double)actual[i] - expected[i]));
        return worst / scale;
    }

    /// <summary>Where <c>[B·T·V]</c> logits differ most: sentence, position, token and both values.</summary>
    public static string WorstPosition(float[] actual, float[] expected, int vocab, int length)
    {
        int worst = 0;
        for (int i = 1; i < actual.Length; i++) if (Math.Abs(actual[i] - expected[i]) > Math.Abs(actual[worst] - expected[worst])) worst = i;
        int row = worst / vocab;
        return $"sentence {row / length}, position {row % length}, token {worst % vocab}: {actual[worst]} vs {expected[worst]}";
    }

    /// <summary>
    /// Over the parameter tensors, the largest 2-norm of the difference over the reference's 2-norm. Tensors whose reference
    /// gradient is rounding noise (the key biases: softmax ignores a per-row constant) must be as small in ours. With
    /// <paramref name="rowLog"/>, a shared embedding that differs has its differing rows named (a padding row, say).
    /// </summary>
    public static (double Error, string Worst) GradientError(TransformerModel model, Dictionary<string, float[]> expected, Action<string>? rowLog = null)
    {
        double worst = 0;
        string worstName = "";
        double largest = expected.Values.Max(Norm);
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            Assert.True(expected.TryGetValue(t.Name, out float[]? reference), $"the reference has no gradient for {t.Name}");
            float[] ours = InFileLayout(t, model.Gradients.Slice(t.Offset, t.Length).ToArray());
            double norm = Norm(reference!);
            if (norm < 1e-6 * largest)
            {
                Assert.True(Norm(ours) < 1e-4 * largest, $"{t.Name}: gradient norm {Norm(ours):E2}, the reference's is {norm:E2}");
                continue;
            }
            double error = Norm(ours.Zip(reference!, (a, b) => a - b).ToArray()) / norm;
            if (error > worst) (worst, worstName) = (error, t.Name);
            if (rowLog is not null && t.Name == "model.shared.weight" && error > 1e-4)
            {
                int width = t.Shape[1];
                for (int row = 0; row < t.Shape[0]; row++)
                {
                    double[] delta = ours.Skip(row * width).Take(width).Zip(reference!.Skip(row * width).Take(width), (a, b) => (double)a - b).ToArray();
                    double rowError = Math.Sqrt(delta.Sum(d => d * d));
                    if (rowError > 1e-4 * norm)
                        rowLog($"model.shared.weight row {row}: |Δ| {rowError:E2}, ours |g| {Norm(ours.Skip(row * width).Take(width).ToArray()):E2}, reference |g| {Norm(reference!.Skip(row * width).Take(width).ToArray()):E2}");
                }
            }
        }
        return (worst, worstName);
    }

    /// <summary>
    /// Cached decoding against libtorch's recomputation: <paramref name="sentence"/> encoded once, then the decoder input one
    /// token per <c>Append</c> (its positions continue from the cache), then its first five in one <c>Append</c>; each
    /// next-token logits within 1e-5 of the largest.
    /// </summary>
    /// <summary>
    /// Ten sources of 1 to 10 tokens, each <paramref name="first"/> then words, ended by <paramref name="eos"/>, every second
    /// one padded to <paramref name="sourceLength"/>.
    /// </summary>
    public static IEnumerable<int[]> Sources(Func<int, ulong, int[]> words, int first, int eos, int pad, int sourceLength)
    {
        for (int n = 0; n < 10; n++)
        {
            int length = n < 6 ? 3 + n : n - 5;
            int[] body = words(length, (ulong)(50 + n));
            body[0] = first;
            yield return n % 2 == 0 ? [.. body, eos] : [.. body, eos, .. Enumerable.Repeat(pad, sourceLength - length - 1)];
        }
    }

    public static void CheckCachedDecoding(Seq2SeqModel inference, HfReference reference, int[] sentence, int[] decoderInput, Action<string> log)
    {
        inference.Encode(sentence);
        double appendError = 0;
        for (int t = 0; t < decoderInput.Length; t++)
        {
            float[] next = inference.Append(decoderInput.AsSpan(t, 1)).ToArray();
            appendError = Math.Max(appendError, RelativeMax(next, reference.NextTokenLogits(sentence, decoderInput[..(t + 1)])));
        }
        inference.ResetDecoder();
        double blockError = RelativeMax(inference.Append(decoderInput.AsSpan(0, 5)).ToArray(), reference.NextTokenLogits(sentence, decoderInput[..5]));
        log($"Append one at a time {appendError:E2}, five at once {blockError:E2}");
        Assert.True(appendError < 1e-5, $"cached next-token logits differ by {appendError:E2}");
        Assert.True(blockError < 1e-5, $"the five-token Append differs by {blockError:E2}");
    }

    /// <summary>
    /// Greedy translations of the <paramref name="sources"/> after <paramref name="prefix"/>, ours through the caches and
    /// transformers' recomputed: identical, with at least 3 different ones, no choice decided by less than 1e-3, and (without
    /// a prefix) at least one ended by the end token.
    /// </summary>
    public static void CheckGreedyTranslations(Seq2SeqModel inference, HfReference reference, IEnumerable<int[]> sources, int[] prefix, int targetLength, Action<string> log)
    {
        int stopped = 0, padChosen = 0;
        double margin = double.PositiveInfinity;
        var translations = new HashSet<string>();
        foreach (int[] input in sources)
        {
            var produced = new int[targetLength];
            int count = inference.Translate(input, produced, prefix: prefix);
            int[] want = reference.GreedyTranslation(input, targetLength - prefix.Length, out double smallest, out bool padding, prefix);
            log($"prefix [{string.Join(' ', prefix)}] source [{string.Join(' ', input)}] → ours [{string.Join(' ', produced[..count])}], transformers [{string.Join(' ', want)}] (smallest margin {smallest:F4}{(padding ? ", unbanned argmax was <pad> once" : "")})");
            Assert.Equal(want, produced[..count]);
            translations.Add(string.Join(' ', want));
            if (want.Length < targetLength - prefix.Length) stopped++;
            if (padding) padChosen++;
            margin = Math.Min(margin, smallest);
        }
        log($"prefix [{string.Join(' ', prefix)}]: {translations.Count} different translations, {stopped} ended by eos, {padChosen} where transformers' unbanned argmax picked <pad>, smallest margin {margin:F4}");
        Assert.True(translations.Count >= 3, "the sources hardly change the translations: the comparison would prove little");
        Assert.True(margin > 1e-3, $"a greedy choice was decided by {margin:E2}: rounding could flip it");
        if (prefix.Length == 0) Assert.True(stopped > 0, "no translation ended at eos");
    }

    public static double Norm(float[] v) => Math.Sqrt(v.Sum(x => (double)x * x));

    /// <summary>max |a − b| over two float64 results of the same length.</summary>
    public static double MaxDifference(double[] a, double[] b)
    {
        Assert.Equal(a.Length, b.Length);
        return a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
    }

    /// <summary><paramref name="count"/> standard normal draws (Box–Muller over System.Random), seeded.</summary>
    public static double[] Normals(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble())).ToArray();
    }

    /// <summary>A new empty folder under the temporary path, named from <paramref name="prefix"/>; the caller deletes it.</summary>
    public static string TemporaryFolder(string prefix)
    {
        string folder = Path.Combine(Path.GetTempPath(), prefix + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        return folder;
    }

    /// <summary>The cosine of two vectors, in double.</summary>
    public static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { dot += a[i] * (double)b[i]; na += a[i] * (double)a[i]; nb += b[i] * (double)b[i]; }
        return dot / Math.Sqrt(na * nb);
    }

    /// <summary>A GPT-2 Conv1D tensor is [out, in] in memory and [in, out] in files (and in the reference's gradients).</summary>
    public static float[] InFileLayout(ParameterTensor t, float[] values)
    {
        if (!t.StoredTransposed) return values;
        int rows = t.Shape[0], cols = t.Shape[1];
        var result = new float[values.Length];
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < cols; k++) result[k * rows + r] = values[r * cols + k];
        return result;
    }
}
