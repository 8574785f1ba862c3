using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TransformerGen.Model.Tests;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <see cref="HfBartModel"/> and <see cref="HfMBartModel"/> (compiled from <c>Configs/bart</c> and <c>Configs/mbart</c>)
/// against the libtorch BartForConditionalGeneration and MBartForConditionalGeneration (<see cref="HfMarian"/> with learned
/// positions, <c>layernorm_embedding</c>, and mBART's pre-LN stacks with their final norms), with the weights read from the
/// files the reference wrote: the loaded values bit for bit, the teacher-forced logits to 1e-5 of the largest, the loss to
/// 1e-5 relative, every parameter's gradient (position tables, embedding norms and <c>final_logits_bias</c> included) to
/// 1e-4 of its norm, the cached decoder (<c>Encode</c> then <c>Append</c>) to 1e-5, and greedy translations identical,
/// with and without a forced prefix (BART's &lt;s&gt;, an mBART-50-style target language code).
/// </summary>
public sealed class HfBartModelTests(ITestOutputHelper output) : IDisposable
{
    private const long Seed = 20261207;
    private const int Batch = 2, SourceLength = 11, TargetLength = 9;
    // fairseq's ids: <s> 0, <pad> 1, </s> 2 (also the decoder start); the top ids stand for mBART-50's language codes.
    private const int Vocab = 41, Bos = 0, Pad = 1, Eos = 2, SourceLanguage = 40, TargetLanguage = 39, FirstWord = 3, Words = 36;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "tg-bart-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    public static TheoryData<string, string> Variants => new()
    {
        { HfFixtures.Bart, "F32" }, { HfFixtures.Bart, "BF16" }, { HfFixtures.Bart, "tied copies" }, { HfFixtures.Bart, "3 shards" },
        { HfFixtures.MBart, "F32" }, { HfFixtures.MBart, "BF16" }, { HfFixtures.MBart, "tied copies" }, { HfFixtures.MBart, "3 shards" },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Compiled_model_matches_transformers(string fixture, string variant)
    {
        var options = variant switch
        {
            "BF16" => new HfWriteOptions(Dtype: HfDtype.BF16),
            "tied copies" => new HfWriteOptions(KeepTiedCopy: true),
            "3 shards" => new HfWriteOptions(Shards: 3),
            _ => new HfWriteOptions(),
        };
        bool mbart = fixture == HfFixtures.MBart;
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
        reference.Save(_folder, options);
        Seq2SeqModel model = mbart ? new HfMBartModel(seed: 7) : new HfBartModel(seed: 7);
        model.Load(_folder);
        Assert.Equal((Vocab, Pad, Eos, Eos), (model.Layout.TargetVocab, model.Layout.PadToken, model.Layout.BosToken, model.Layout.EosToken));

        Assert.Equal(reference.ParameterNames.Order(StringComparer.Ordinal), model.ParameterTensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            float[] ours = model.Parameters.Slice(t.Offset, t.Length).ToArray(), theirs = reference.ParameterValues(t.Name);
            int differs = Enumerable.Range(0, ours.Length).FirstOrDefault(i => BitConverter.SingleToInt32Bits(ours[i]) != BitConverter.SingleToInt32Bits(theirs[i]), -1);
            Assert.True(differs < 0, $"{t.Name}[{differs}] loaded as {(differs < 0 ? 0 : ours[differs])}, the file holds {(differs < 0 ? 0 : theirs[differs])}");
        }

        // Sources as the tokenizers make them: BART "<s> words </s>", mBART-50 "src_lang words </s>"; sentence 0 fills the
        // source, sentence 1 is 7 long and padded. Targets: BART "<s> words </s>", mBART-50 "tgt_lang words </s>"; the second
        // is 6 long, its tail ignored once as the padding id and once as −1 (−100). Both end with </s>, so mBART's
        // shift_tokens_right (which starts the decoder from the last label before the padding) starts from </s> = 2 as well.
        int first = mbart ? SourceLanguage : Bos, targetFirst = mbart ? TargetLanguage : Bos;
        int[] source = new int[Batch * SourceLength], targets = new int[Batch * TargetLength], labels = new int[Batch * TargetLength];
        int[] words = WordIds(Batch * (SourceLength + TargetLength), 41);
        int[] sourceLengths = [SourceLength, 7], targetLengths = [TargetLength, 6];
        for (int b = 0; b < Batch; b++)
        {
            for (int t = 0; t < SourceLength; t++)
                source[b * SourceLength + t] = t == 0 ? first : t < sourceLengths[b] - 1 ? words[b * SourceLength + t] : t == sourceLengths[b] - 1 ? Eos : Pad;
            for (int t = 0; t < TargetLength; t++)
            {
                int i = b * TargetLength + t;
                targets[i] = t == 0 ? targetFirst : t < targetLengths[b] - 1 ? words[Batch * SourceLength + i] : t == targetLengths[b] - 1 ? Eos : t == TargetLength - 1 ? -1 : Pad;
                labels[i] = targets[i] == Pad ? -1 : targets[i];
            }
        }

        float loss = model.Forward(source, targets);
        float[] logits = model.Logits.ToArray(), expected = reference.TranslationLogits(source, labels, Batch, SourceLength, TargetLength);
        double logitError = Seq2SeqChecks.RelativeMax(logits, expected);
        double encoderError = Seq2SeqChecks.RelativeMax(model.EncoderHiddenState.ToArray(), reference.EncoderLastHiddenState(source, Batch, SourceLength));
        output.WriteLine($"encoder_last_hidden_state {encoderError:E2}");
        Assert.True(encoderError < 1e-5, $"the encoder's output differs by {encoderError:E2} of the largest");
        (float expectedLoss, Dictionary<string, float[]> gradients) = reference.TranslationLossAndGradients(source, labels, Batch, SourceLength, TargetLength);
        model.ZeroGrad();
        model.Backward();
        (double gradientError, string worst) = Seq2SeqChecks.GradientError(model, gradients);
        string where = Seq2SeqChecks.WorstPosition(logits, expected, Vocab, TargetLength);
        output.WriteLine($"{fixture}, {variant}: logits {logitError:E2} (worst at {where}), loss {loss} vs {expectedLoss} ({Math.Abs(loss - expectedLoss) / Math.Abs(expectedLoss):E2}), gradients {gradientError:E2} (worst {worst})");
        Assert.True(logitError < 1e-5, $"logits differ by {logitError:E2} of the largest ({where})");
        Assert.True(Math.Abs(loss - expectedLoss) < 1e-5 * Math.Abs(expectedLoss), $"loss {loss} vs {expectedLoss}");

        // Cached decoding (the decoder's positions continue from the cache: rows t + 2 of its table), then greedy translations
        // of sources of 1 to 10 tokens, without a prefix and with BART's forced <s> or mBART-50's target language code.
        Seq2SeqModel inference = mbart ? HfMBartModel.ForInference(_folder) : HfBartModel.ForInference(_folder);
        Seq2SeqChecks.CheckCachedDecoding(inference, reference, source[SourceLength..(2 * SourceLength)], [Eos, .. targets[..(TargetLength - 1)]], output.WriteLine);
        foreach (int[] prefix in new[] { Array.Empty<int>(), [targetFirst] })
            Seq2SeqChecks.CheckGreedyTranslations(inference, reference, Seq2SeqChecks.Sources(WordIds, first, Eos, Pad, SourceLength), prefix, TargetLength, output.WriteLine);

        // Last, so that the measurements above are made and printed whatever the gradients show.
        Assert.True(gradientError < 1e-4, $"gradient of {worst} differs by {gradientError:E2} of its norm");
    }

    /// <summary>
    /// mBART-cc25's targets end with the language code (<c>words &lt;/s&gt; lang</c>): mBART's shift_tokens_right starts the
    /// decoder from that last label, not from decoder_start_token_id, and so does <see cref="HfMBartModel"/>
    /// (<see cref="ModelLayout.DecoderStartsFromLastLabel"/>). The second target's tail is ignored.
    /// </summary>
    [Fact]
    public void Mbart_teacher_forcing_starts_from_the_last_label_as_mbart_shifts_it()
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.MBart), Seed);
        reference.Save(_folder, new HfWriteOptions());
        var model = new HfMBartModel(seed: 7);
        model.Load(_folder);
        Assert.True(model.Layout.DecoderStartsFromLastLabel);
        int[] words = WordIds(Batch * (SourceLength + TargetLength), 43);
        int[] source = new int[Batch * SourceLength], targets = new int[Batch * TargetLength];
        int[] targetLengths = [TargetLength, 6];
        for (int b = 0; b < Batch; b++)
        {
            for (int t = 0; t < SourceLength; t++) source[b * SourceLength + t] = t < SourceLength - 2 ? words[b * SourceLength + t] : t == SourceLength - 2 ? Eos : SourceLanguage;
            for (int t = 0; t < TargetLength; t++)
            {
                int i = b * TargetLength + t, end = targetLengths[b];
                targets[i] = t < end - 2 ? words[Batch * SourceLength + i] : t == end - 2 ? Eos : t == end - 1 ? TargetLanguage : -1;
            }
        }

        float loss = model.Forward(source, targets);
        float[] logits = model.Logits.ToArray(), expected = reference.TranslationLogits(source, targets, Batch, SourceLength, TargetLength);
        (float expectedLoss, Dictionary<string, float[]> gradients) = reference.TranslationLossAndGradients(source, targets, Batch, SourceLength, TargetLength);
        model.ZeroGrad();
        model.Backward();
        double logitError = Seq2SeqChecks.RelativeMax(logits, expected);
        (double gradientError, string worst) = Seq2SeqChecks.GradientError(model, gradients);
        output.WriteLine($"mBART-cc25 targets: logits {logitError:E2} (worst at {Seq2SeqChecks.WorstPosition(logits, expected, Vocab, TargetLength)}), loss {loss} vs {expectedLoss}, gradients {gradientError:E2} (worst {worst})");
        Assert.True(logitError < 1e-5, $"logits differ by {logitError:E2} of the largest");
        Assert.True(Math.Abs(loss - expectedLoss) < 1e-5 * Math.Abs(expectedLoss), $"loss {loss} vs {expectedLoss}");
        Assert.True(gradientError < 1e-4, $"gradient of {worst} differs by {gradientError:E2} of its norm");
    }

    // Ids FirstWord … FirstWord + Words − 1: neither <s>, <pad>, </s> nor the language codes.
    private static int[] WordIds(int count, ulong seed) => TestData.Tokens(count, Words, seed).Select(t => t + FirstWord).ToArray();
}

/// <summary>The comparisons the encoder–decoder model tests share.</summary>
internal static class Seq2SeqChecks
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
            float[] ours = model.Gradients.Slice(t.Offset, t.Length).ToArray();
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
}
