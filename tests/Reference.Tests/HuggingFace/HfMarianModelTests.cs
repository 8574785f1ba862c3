using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TransformerGen.Model.Tests;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <see cref="HfMarianModel"/> (compiled from the opus-mt-shaped <c>Configs/marian/config.json</c>) against the libtorch
/// MarianMTModel (<see cref="HfMarian"/>), with the weights read from the files the reference wrote: the loaded values,
/// the teacher-forced logits to 1e-5 of the largest, the loss (transformers' with <c>labels</c>) to 1e-5 relative, every
/// parameter's gradient (<c>final_logits_bias</c> included) to 1e-4 of its norm, the cached decoder's next-token logits
/// (<c>Encode</c> then <c>Append</c>) to 1e-5, and greedy translations identical. Each test reads another variant of
/// the files: the current layout, bfloat16, the old layout (tied copies, position tables), three shards.
/// </summary>
public sealed class HfMarianModelTests(ITestOutputHelper output) : IDisposable
{
    private const long Seed = 20261206;
    private const int Batch = HfMarianModel.Batch, SourceLength = HfMarianModel.SeqLen, TargetLength = HfMarianModel.TargetSeqLen;
    private const int Vocab = 37, Pad = 36, Eos = 0;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "tg-marian-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public void Current_layout_without_position_tables() => Compare(new HfWriteOptions(IncludeBuffers: false));

    [Fact]
    public void Bfloat16_file() => Compare(new HfWriteOptions(Dtype: HfDtype.BF16, IncludeBuffers: false));

    [Fact]
    public void Old_layout_with_tied_copies_and_position_tables() => Compare(new HfWriteOptions(KeepTiedCopy: true, IncludeBuffers: true));

    [Fact]
    public void Three_shards() => Compare(new HfWriteOptions(IncludeBuffers: false, Shards: 3));

    private void Compare(HfWriteOptions options)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.Marian), Seed);
        // final_logits_bias[eos] raised from −0.83 to 0.67, so that one of the greedy translations below ends at eos (after
        // one token, by a margin of 0.06 in the logits) instead of filling the output.
        using (TorchSharp.torch.no_grad()) reference.Model["final_logits_bias"][0, Eos].add_(1.5);
        reference.Save(_folder, options);
        var model = new HfMarianModel(seed: 7);
        model.Load(_folder);
        Assert.Equal(Vocab, model.Layout.TargetVocab);
        Assert.Equal(Pad, model.Layout.PadToken);
        Assert.Equal(Pad, model.Layout.BosToken);
        Assert.Equal(Eos, model.Layout.EosToken);

        // The same tensors under the same names, loaded bit for bit.
        Assert.Equal(reference.ParameterNames.Order(StringComparer.Ordinal), model.ParameterTensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            float[] ours = model.Parameters.Slice(t.Offset, t.Length).ToArray(), theirs = reference.ParameterValues(t.Name);
            int differs = Enumerable.Range(0, ours.Length).FirstOrDefault(i => BitConverter.SingleToInt32Bits(ours[i]) != BitConverter.SingleToInt32Bits(theirs[i]), -1);
            Assert.True(differs < 0, $"{t.Name}[{differs}] loaded as {(differs < 0 ? 0 : ours[differs])}, the file holds {(differs < 0 ? 0 : theirs[differs])}");
        }

        // Sentence 0 fills the source; sentence 1 ends after 7 tokens (eos last) and is padded. Labels end with eos; the
        // second's tail is ignored, once as the padding id and once as −1 (transformers' −100 for both).
        int[] source = new int[Batch * SourceLength], targets = new int[Batch * TargetLength], labels = new int[Batch * TargetLength];
        int[] words = TestData.Tokens(Batch * (SourceLength + TargetLength), Vocab - 2, 41).Select(t => t + 1).ToArray(); // 1 … 35
        int[] sourceLengths = [SourceLength, 7], targetLengths = [TargetLength, 6];
        for (int b = 0; b < Batch; b++)
        {
            for (int t = 0; t < SourceLength; t++)
                source[b * SourceLength + t] = t < sourceLengths[b] - 1 ? words[b * SourceLength + t] : t == sourceLengths[b] - 1 ? Eos : Pad;
            for (int t = 0; t < TargetLength; t++)
            {
                int i = b * TargetLength + t;
                targets[i] = t < targetLengths[b] - 1 ? words[Batch * SourceLength + i] : t == targetLengths[b] - 1 ? Eos : t == TargetLength - 1 ? -1 : Pad;
                labels[i] = targets[i] == Pad ? -1 : targets[i];
            }
        }

        float loss = model.Forward(source, targets);
        float[] logits = model.Logits.ToArray(), expected = reference.TranslationLogits(source, labels, Batch, SourceLength, TargetLength);
        double logitError = HfChecks.RelativeMax(logits, expected);
        double countedError = HfChecks.RelativeMax(Counted(logits, labels), Counted(expected, labels));
        double encoderError = HfChecks.RelativeMax(model.EncoderHiddenState.ToArray(), reference.EncoderLastHiddenState(source, Batch, SourceLength));
        output.WriteLine($"encoder_last_hidden_state {encoderError:E2}");
        Assert.True(encoderError < 1e-5, $"the encoder's output differs by {encoderError:E2} of the largest");
        (float expectedLoss, Dictionary<string, float[]> gradients) = reference.TranslationLossAndGradients(source, labels, Batch, SourceLength, TargetLength);
        model.ZeroGrad();
        model.Backward();
        (double gradientError, string worst) = GradientError(model, gradients);
        output.WriteLine($"{Describe(options)}: logits {logitError:E2} (at counted positions {countedError:E2}; worst at {HfChecks.WorstPosition(logits, expected, Vocab, TargetLength)}), loss {loss} vs {expectedLoss}, gradients {gradientError:E2} (worst {worst})");
        Assert.True(countedError < 1e-5, $"logits at counted positions differ by {countedError:E2} of the largest ({HfChecks.WorstPosition(logits, expected, Vocab, TargetLength)})");
        Assert.True(logitError < 1e-5, $"logits differ by {logitError:E2} of the largest ({HfChecks.WorstPosition(logits, expected, Vocab, TargetLength)})");
        Assert.True(Math.Abs(loss - expectedLoss) < 1e-5 * Math.Abs(expectedLoss), $"loss {loss} vs {expectedLoss}");

        // Diagnosis only: the same gradients with the padding row also learning from its lookups (no padding_idx).
        var marian = (HfMarian)reference.Model;
        marian.PaddingRowLearnsFromLookups = true;
        Dictionary<string, float[]> withoutPaddingIdx = reference.TranslationLossAndGradients(source, labels, Batch, SourceLength, TargetLength).Gradients;
        marian.PaddingRowLearnsFromLookups = false;
        (double errorWithoutPaddingIdx, string worstWithoutPaddingIdx) = GradientError(model, withoutPaddingIdx, rows: false);
        output.WriteLine($"against transformers without padding_idx: gradients {errorWithoutPaddingIdx:E2} (worst {worstWithoutPaddingIdx})");

        // Cached decoding of an inference instance: Encode once, then one token per Append, then several in one Append.
        var inference = HfMarianModel.ForInference(_folder);
        int[] sentence = source[SourceLength..(2 * SourceLength)];
        int[] decoderInput = new[] { Pad }.Concat(targets[..(TargetLength - 1)]).ToArray();
        inference.Encode(sentence);
        double appendError = 0;
        for (int t = 0; t < TargetLength; t++)
        {
            float[] next = inference.Append(decoderInput.AsSpan(t, 1)).ToArray();
            appendError = Math.Max(appendError, HfChecks.RelativeMax(next, reference.NextTokenLogits(sentence, decoderInput[..(t + 1)])));
        }
        inference.ResetDecoder();
        double blockError = HfChecks.RelativeMax(inference.Append(decoderInput.AsSpan(0, 5)).ToArray(), reference.NextTokenLogits(sentence, decoderInput[..5]));
        output.WriteLine($"Append one at a time {appendError:E2}, five at once {blockError:E2}");
        Assert.True(appendError < 1e-5, $"cached next-token logits differ by {appendError:E2}");
        Assert.True(blockError < 1e-5, $"the five-token Append differs by {blockError:E2}");

        // Greedy translations of sources of 1 to 10 words and eos (every other one with trailing pads).
        int distinct = 0, stopped = 0;
        double margin = double.PositiveInfinity;
        var translations = new HashSet<string>();
        for (int n = 0; n < 10; n++)
        {
            int length = n < 6 ? 3 + n : n - 5;
            int[] words2 = TestData.Tokens(length, Vocab - 2, (ulong)(50 + n)).Select(t => t + 1).ToArray();
            int[] input = n % 2 == 0 ? words2.Append(Eos).ToArray() : words2.Append(Eos).Concat(Enumerable.Repeat(Pad, SourceLength - length - 1)).ToArray();
            var produced = new int[TargetLength];
            int count = inference.Translate(input, produced);
            int[] want = reference.GreedyTranslation(input, TargetLength, out double smallest);
            output.WriteLine($"source [{string.Join(' ', input)}] → ours [{string.Join(' ', produced[..count])}], transformers [{string.Join(' ', want)}] (smallest margin {smallest:F4})");
            Assert.Equal(want, produced[..count]);
            distinct = Math.Max(distinct, want.Distinct().Count());
            translations.Add(string.Join(' ', want));
            if (want.Length < TargetLength) stopped++;
            margin = Math.Min(margin, smallest);
        }
        // Random weights tend to repeat one token; different sources must still translate differently.
        output.WriteLine($"{translations.Count} different translations, at most {distinct} different tokens in one, {stopped} ended by eos, smallest margin {margin:F4}");
        Assert.True(translations.Count >= 3, "the sources hardly change the translations: the comparison would prove little");
        Assert.True(stopped > 0, "no translation ended at eos");
        Assert.True(margin > 1e-3, $"a greedy choice was decided by {margin:E2}: rounding could flip it");

        // Last, so that the measurements above are made and printed whatever the gradients show.
        Assert.True(gradientError < 1e-4, $"gradient of {worst} differs by {gradientError:E2} of its norm");
    }

    private static string Describe(HfWriteOptions o) =>
        $"{o.Dtype}{(o.KeepTiedCopy ? ", tied copies" : "")}{(o.IncludeBuffers ? ", position tables" : "")}{(o.Shards > 1 ? $", {o.Shards} shards" : "")}";

    // The logits at the positions whose label counts.
    private static float[] Counted(float[] logits, int[] labels) =>
        Enumerable.Range(0, labels.Length).Where(i => labels[i] >= 0).SelectMany(i => logits.Skip(i * Vocab).Take(Vocab)).ToArray();

    /// <summary>
    /// <see cref="HfChecks.GradientError"/>, naming the rows of the shared embedding that differ when <paramref name="rows"/>
    /// (how the padding row's padding_idx rule was found).
    /// </summary>
    private (double Error, string Worst) GradientError(TransformerModel model, Dictionary<string, float[]> expected, bool rows = true) =>
        HfChecks.GradientError(model, expected, rows ? output.WriteLine : null);
}
