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
        double logitError = HfChecks.RelativeMax(logits, expected);
        double encoderError = HfChecks.RelativeMax(model.EncoderHiddenState.ToArray(), reference.EncoderLastHiddenState(source, Batch, SourceLength));
        output.WriteLine($"encoder_last_hidden_state {encoderError:E2}");
        Assert.True(encoderError < 1e-5, $"the encoder's output differs by {encoderError:E2} of the largest");
        (float expectedLoss, Dictionary<string, float[]> gradients) = reference.TranslationLossAndGradients(source, labels, Batch, SourceLength, TargetLength);
        model.ZeroGrad();
        model.Backward();
        (double gradientError, string worst) = HfChecks.GradientError(model, gradients);
        string where = HfChecks.WorstPosition(logits, expected, Vocab, TargetLength);
        output.WriteLine($"{fixture}, {variant}: logits {logitError:E2} (worst at {where}), loss {loss} vs {expectedLoss} ({Math.Abs(loss - expectedLoss) / Math.Abs(expectedLoss):E2}), gradients {gradientError:E2} (worst {worst})");
        Assert.True(logitError < 1e-5, $"logits differ by {logitError:E2} of the largest ({where})");
        Assert.True(Math.Abs(loss - expectedLoss) < 1e-5 * Math.Abs(expectedLoss), $"loss {loss} vs {expectedLoss}");

        // Cached decoding (the decoder's positions continue from the cache: rows t + 2 of its table), then greedy translations
        // of sources of 1 to 10 tokens, without a prefix and with BART's forced <s> or mBART-50's target language code.
        Seq2SeqModel inference = mbart ? HfMBartModel.ForInference(_folder) : HfBartModel.ForInference(_folder);
        HfChecks.CheckCachedDecoding(inference, reference, source[SourceLength..(2 * SourceLength)], [Eos, .. targets[..(TargetLength - 1)]], output.WriteLine);
        foreach (int[] prefix in new[] { Array.Empty<int>(), [targetFirst] })
            HfChecks.CheckGreedyTranslations(inference, reference, HfChecks.Sources(WordIds, first, Eos, Pad, SourceLength), prefix, TargetLength, output.WriteLine);

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
        double logitError = HfChecks.RelativeMax(logits, expected);
        (double gradientError, string worst) = HfChecks.GradientError(model, gradients);
        output.WriteLine($"mBART-cc25 targets: logits {logitError:E2} (worst at {HfChecks.WorstPosition(logits, expected, Vocab, TargetLength)}), loss {loss} vs {expectedLoss}, gradients {gradientError:E2} (worst {worst})");
        Assert.True(logitError < 1e-5, $"logits differ by {logitError:E2} of the largest");
        Assert.True(Math.Abs(loss - expectedLoss) < 1e-5 * Math.Abs(expectedLoss), $"loss {loss} vs {expectedLoss}");
        Assert.True(gradientError < 1e-4, $"gradient of {worst} differs by {gradientError:E2} of its norm");
    }

    // Ids FirstWord … FirstWord + Words − 1: neither <s>, <pad>, </s> nor the language codes.
    private static int[] WordIds(int count, ulong seed) => TestData.Tokens(count, Words, seed).Select(t => t + FirstWord).ToArray();
}
