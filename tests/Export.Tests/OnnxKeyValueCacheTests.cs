using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Export.Tests;

/// <summary>
/// The decoder graph with a key/value cache (<see cref="OnnxExportOptions.KeyValueCache"/>), run by ONNX Runtime as a
/// generation loop runs it: a prompt with an empty past, then one token at a time with the previous step's present as the
/// past. Two rows of different lengths, the shorter padded on the left; every step's logits equal our cached decoding of
/// each row alone (the rows in two cache slots, each step one <c>Append(tokens, lengths, sequences)</c> over both) within 1e-5 of the largest.
/// </summary>
public sealed class OnnxKeyValueCacheTests(ITestOutputHelper output) : IDisposable
{
    private const double Tolerance = 1e-5;
    private readonly string _folder = Directory.CreateTempSubdirectory("onnx-cache-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static (LanguageModel Model, string? Config) Build(string name)
    {
        LanguageModel model = name switch
        {
            "gpt2" => new OnnxGpt2(1),
            "llama-gqa" => new OnnxLlamaGqa(1),
            "qwen2" => new OnnxQwen2(1),
            "qwen3" => new OnnxQwen3(1),
            "phi3" => new OnnxPhi3(1),
            "gemma3" => new ExportGemma3(1),
            "native-rotary" => new OnnxNativeRotary(1),
            "native-windowed" => new OnnxNativeWindowed(1),
            _ => new OnnxNativeLearned(1),
        };
        Weights.Randomize(model, seed: 17);
        model.Training = false;
        return (model, name.StartsWith("native-", StringComparison.Ordinal) ? null : GgufLlamaCppTests.Config(name));
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama-gqa")]
    [InlineData("qwen2")]
    [InlineData("qwen3")]
    [InlineData("phi3")]
    [InlineData("gemma3")]
    [InlineData("native-rotary")]
    [InlineData("native-windowed")]
    [InlineData("native-learned")]
    public void A_prompt_then_one_token_at_a_time_gives_our_cached_logits(string name)
    {
        (LanguageModel model, string? config) = Build(name);
        ModelLayout layout = model.Layout;
        string path = Path.Combine(_folder, name + ".onnx");
        OnnxExportReport report = OnnxExport.Save(model, path, new OnnxExportOptions { Config = config, KeyValueCache = true });
        int layers = report.Inputs.Count(i => i.Name.EndsWith(".key", StringComparison.Ordinal));
        Assert.Equal(["input_ids", "attention_mask", "position_ids"], report.Inputs.Take(3).Select(i => i.Name));
        Assert.Equal(["logits"], report.Outputs.Take(1).Select(o => o.Name));
        Assert.Equal(2 * layers, report.Outputs.Count(o => o.Name.StartsWith("present.", StringComparison.Ordinal)));
        IReadOnlyList<string> keyShape = report.Inputs.Single(i => i.Name == "past_key_values.0.key").Shape;
        int kvHeads = int.Parse(keyShape[1], CultureInfo.InvariantCulture), headDim = int.Parse(keyShape[3], CultureInfo.InvariantCulture);

        // Row 0 has a prompt of SeqLen − 4 tokens, row 1 two fewer, padded on the left; three steps follow.
        const int rows = 2, steps = 3;
        int longest = layout.SeqLen - 4, vocab = layout.Vocab;
        int[] lengths = [longest, longest - 2];
        var rng = new Rng(5);
        int[][] prompts = lengths.Select(n => Enumerable.Range(0, n).Select(_ => 1 + rng.NextInt(vocab - 1)).ToArray()).ToArray();

        using var runner = new OnnxRuntimeRunner(path);
        var ids = new long[rows * longest];
        var mask = new List<long>[rows];
        var positions = new long[rows * longest];
        for (int r = 0; r < rows; r++)
        {
            int pad = longest - lengths[r];
            mask[r] = [.. Enumerable.Repeat(0L, pad), .. Enumerable.Repeat(1L, lengths[r])];
            for (int i = 0; i < lengths[r]; i++)
            {
                ids[r * longest + pad + i] = prompts[r][i];
                positions[r * longest + pad + i] = i;
            }
        }
        var past = new Dictionary<string, float[]>();
        for (int l = 0; l < layers; l++)
        {
            past[$"past_key_values.{l}.key"] = [];
            past[$"past_key_values.{l}.value"] = [];
        }
        model.ResetCache();
        // The prompts go in one call each (one call takes SeqLen tokens in all), the steps in one call for both rows.
        float[] first = model.Append(prompts[0], [lengths[0]], [0]).ToArray();
        float[] ours = [.. first, .. model.Append(prompts[1], [lengths[1]], [1]).ToArray()];
        int pastLength = 0, sequence = longest;
        for (int step = 0; step <= steps; step++)
        {
            var inputs = new List<OnnxInput>
            {
                new("input_ids", ids, [rows, sequence]),
                new("attention_mask", mask.SelectMany(m => m).ToArray(), [rows, pastLength + sequence]),
                new("position_ids", positions, [rows, sequence]),
            };
            inputs.AddRange(past.Select(p => new OnnxInput(p.Key, p.Value, [rows, kvHeads, pastLength, headDim])));
            Dictionary<string, float[]> results = runner.Run([.. inputs]);

            // The logits of each row's last position against ours.
            float[] theirs = new float[rows * vocab];
            for (int r = 0; r < rows; r++) results["logits"].AsSpan(((r + 1) * sequence - 1) * vocab, vocab).CopyTo(theirs.AsSpan(r * vocab));
            double relative = Relative(ours, theirs);
            output.WriteLine($"{name} step {step} (past {pastLength}): logits relative {relative:G3}");
            Assert.True(relative < Tolerance, $"step {step}: relative {relative}");
            if (step == steps) break;

            // The next token of each row is the argmax of our logits; the presents become the past.
            pastLength += sequence;
            sequence = 1;
            var next = new int[rows];
            for (int r = 0; r < rows; r++)
            {
                ReadOnlySpan<float> row = ours.AsSpan(r * vocab, vocab);
                next[r] = row.IndexOf(TensorPrimitivesMax(row));
                mask[r].Add(1);
            }
            ids = next.Select(t => (long)t).ToArray();
            positions = Enumerable.Range(0, rows).Select(r => (long)(lengths[r] + step)).ToArray();
            foreach (string key in past.Keys.ToArray())
            {
                float[] present = results[key.Replace("past_key_values.", "present.", StringComparison.Ordinal)];
                Assert.Equal(rows * kvHeads * pastLength * headDim, present.Length);
                past[key] = present;
            }
            ours = model.Append(next, [1, 1], [0, 1]).ToArray();
        }
    }

    [Fact]
    public void Encoders_have_no_cached_graph()
    {
        var bert = new OnnxBert(1);
        Assert.Throws<NotSupportedException>(() => OnnxExport.Save(bert, Path.Combine(_folder, "bert.onnx"),
            new OnnxExportOptions { Config = GgufLlamaCppTests.Config("bert"), KeyValueCache = true }));
        Assert.False(File.Exists(Path.Combine(_folder, "bert.onnx")));
    }

    private static float TensorPrimitivesMax(ReadOnlySpan<float> row) => System.Numerics.Tensors.TensorPrimitives.Max(row);

    private static double Relative(float[] ours, float[] theirs)
    {
        double worst = 0, largest = 0;
        for (int i = 0; i < ours.Length; i++)
        {
            Assert.True(float.IsFinite(theirs[i]), $"ONNX Runtime gave {theirs[i]} at {i}");
            worst = Math.Max(worst, Math.Abs(ours[i] - theirs[i]));
            largest = Math.Max(largest, Math.Abs(ours[i]));
        }
        Assert.True(largest > 0);
        return worst / largest;
    }
}
