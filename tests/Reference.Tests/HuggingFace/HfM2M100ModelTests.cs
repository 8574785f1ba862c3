using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TransformerGen.Model.Tests;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <see cref="HfM2M100Model"/> (compiled from the NLLB-shaped <c>Configs/m2m100</c>) against the libtorch
/// M2M100ForConditionalGeneration (<see cref="HfMarian"/> with fairseq's sinusoids numbered from the padding id, pre-LN
/// stacks with their final norms, no embedding norm, no logits bias), with the weights read from the files the reference
/// wrote: the loaded values bit for bit, the teacher-forced logits to 1e-5 of the largest at every position whose label
/// counts, the loss to 1e-5 relative, every parameter's gradient to 1e-4 of its norm, the cached decoder (<c>Encode</c>
/// then <c>Append</c>) to 1e-5, and greedy translations identical, without a prefix and with NLLB's forced target
/// language code; and the position table the compiled model computes against the one transformers computes.
/// </summary>
/// <remarks>
/// Where the two may differ by design: transformers gives a padding token the zero row of the position table and numbers
/// the tokens after it on from the last real one; the compiled model gives position t row pad + 1 + t whatever the token.
/// With padding only at the end, the encoder's pads are masked keys and the decoder's come after every counted position,
/// so only the logits at ignored labels can differ; they are measured and printed, not compared.
/// </remarks>
public sealed class HfM2M100ModelTests(ITestOutputHelper output) : IDisposable
{
    // A seed whose weights translate the sources below differently (4 and 3 distinct translations), 7 of 10 ending at eos
    // without a prefix, with no greedy choice closer than 0.01.
    private const long Seed = 20261210;
    private const int Batch = HfM2M100Model.Batch, SourceLength = HfM2M100Model.SeqLen, TargetLength = HfM2M100Model.TargetSeqLen;
    // fairseq's ids: <s> 0, <pad> 1, </s> 2 (the decoder start too), <unk> 3; the top ids stand for NLLB's language codes
    // (eng_Latn, fra_Latn), as they sit at the end of NLLB's vocabulary.
    private const int Vocab = 45, D = 22, Pad = 1, Eos = 2, SourceLanguage = 44, TargetLanguage = 43, FirstWord = 4, Words = 39;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "tg-m2m100-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    public static TheoryData<string> Variants => new() { "F32", "BF16", "tied copies", "3 shards" };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Compiled_model_matches_transformers(string variant)
    {
        var options = variant switch
        {
            "BF16" => new HfWriteOptions(Dtype: HfDtype.BF16),
            "tied copies" => new HfWriteOptions(KeepTiedCopy: true),
            "3 shards" => new HfWriteOptions(Shards: 3),
            _ => new HfWriteOptions(),
        };
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.M2M100), Seed);
        reference.Save(_folder, options);
        var model = new HfM2M100Model(seed: 7);
        model.Load(_folder);
        Assert.Equal((Vocab, Pad, Eos, Eos), (model.Layout.TargetVocab, model.Layout.PadToken, model.Layout.BosToken, model.Layout.EosToken));

        // The same tensors under the same names (no final_logits_bias, no position tables), loaded bit for bit.
        Assert.Equal(reference.ParameterNames.Order(StringComparer.Ordinal), model.ParameterTensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(model.ParameterTensors, t => t.Name == "final_logits_bias" || t.Name.Contains("embed_positions") || t.Name.Contains("layernorm_embedding"));
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            float[] ours = model.Parameters.Slice(t.Offset, t.Length).ToArray(), theirs = reference.ParameterValues(t.Name);
            int differs = Enumerable.Range(0, ours.Length).FirstOrDefault(i => BitConverter.SingleToInt32Bits(ours[i]) != BitConverter.SingleToInt32Bits(theirs[i]), -1);
            Assert.True(differs < 0, $"{t.Name}[{differs}] loaded as {(differs < 0 ? 0 : ours[differs])}, the file holds {(differs < 0 ? 0 : theirs[differs])}");
        }

        // As NllbTokenizer makes them: sources "src_lang words </s>", targets "tgt_lang words </s>". Sentence 0 fills both;
        // sentence 1's source is 7 long and padded, its target 6 long, its tail ignored once as the padding id and once as
        // −1 (−100).
        int[] source = new int[Batch * SourceLength], targets = new int[Batch * TargetLength], labels = new int[Batch * TargetLength];
        int[] words = WordIds(Batch * (SourceLength + TargetLength), 41);
        int[] sourceLengths = [SourceLength, 7], targetLengths = [TargetLength, 6];
        for (int b = 0; b < Batch; b++)
        {
            for (int t = 0; t < SourceLength; t++)
                source[b * SourceLength + t] = t == 0 ? SourceLanguage : t < sourceLengths[b] - 1 ? words[b * SourceLength + t] : t == sourceLengths[b] - 1 ? Eos : Pad;
            for (int t = 0; t < TargetLength; t++)
            {
                int i = b * TargetLength + t;
                targets[i] = t == 0 ? TargetLanguage : t < targetLengths[b] - 1 ? words[Batch * SourceLength + i] : t == targetLengths[b] - 1 ? Eos : t == TargetLength - 1 ? -1 : Pad;
                labels[i] = targets[i] == Pad ? -1 : targets[i];
            }
        }

        float loss = model.Forward(source, targets);
        float[] logits = model.Logits.ToArray(), expected = reference.TranslationLogits(source, labels, Batch, SourceLength, TargetLength);
        // The encoder's output at the source's real tokens (transformers gives padding the zero position row; ours another).
        int d = model.Layout.Tensors.Single(t => t.Name == "model.shared.weight").Shape[1];
        float[] RealRows(float[] states) => Enumerable.Range(0, source.Length).Where(i => source[i] != Pad).SelectMany(i => states.Skip(i * d).Take(d)).ToArray();
        double encoderError = HfChecks.RelativeMax(RealRows(model.EncoderHiddenState.ToArray()), RealRows(reference.EncoderLastHiddenState(source, Batch, SourceLength)));
        output.WriteLine($"encoder_last_hidden_state at real tokens {encoderError:E2}");
        Assert.True(encoderError < 1e-5, $"the encoder's output differs by {encoderError:E2} of the largest");
        double countedError = HfChecks.RelativeMax(Counted(logits, labels), Counted(expected, labels));
        int firstRow = TargetLength * Vocab;
        double fullSentenceError = HfChecks.RelativeMax(logits[..firstRow], expected[..firstRow]);
        double ignoredGap = Enumerable.Range(0, labels.Length).Where(i => labels[i] < 0)
            .Max(i => Enumerable.Range(i * Vocab, Vocab).Max(j => Math.Abs((double)logits[j] - expected[j]))) / expected.Max(Math.Abs);
        (float expectedLoss, Dictionary<string, float[]> gradients) = reference.TranslationLossAndGradients(source, labels, Batch, SourceLength, TargetLength);
        model.ZeroGrad();
        model.Backward();
        (double gradientError, string worst) = HfChecks.GradientError(model, gradients, output.WriteLine);
        output.WriteLine($"{variant}: logits at counted positions {countedError:E2} (sentence 0, no label ignored, all positions {fullSentenceError:E2}), "
            + $"at ignored positions {ignoredGap:E2} (their decoder input is <pad>: transformers' zero row, ours row pad + 1 + t), "
            + $"loss {loss} vs {expectedLoss} ({Math.Abs(loss - expectedLoss) / Math.Abs(expectedLoss):E2}), gradients {gradientError:E2} (worst {worst})");
        Assert.True(countedError < 1e-5, $"logits at counted positions differ by {countedError:E2} of the largest");
        Assert.True(fullSentenceError < 1e-5, $"sentence 0's logits differ by {fullSentenceError:E2} of the largest");
        Assert.True(Math.Abs(loss - expectedLoss) < 1e-5 * Math.Abs(expectedLoss), $"loss {loss} vs {expectedLoss}");

        // Cached decoding (the decoder's rows continue from the cache: pad + 1 + t), then greedy translations of sources of 1
        // to 10 tokens, without a prefix and with the target language code that NLLB's generate forces first.
        var inference = HfM2M100Model.ForInference(_folder);
        HfChecks.CheckCachedDecoding(inference, reference, source[SourceLength..(2 * SourceLength)], [Eos, .. targets[..(TargetLength - 1)]], output.WriteLine);
        foreach (int[] prefix in new[] { Array.Empty<int>(), [TargetLanguage] })
            HfChecks.CheckGreedyTranslations(inference, reference, HfChecks.Sources(WordIds, SourceLanguage, Eos, Pad, SourceLength), prefix, TargetLength, output.WriteLine);

        // Last, so that the measurements above are made and printed whatever the gradients show.
        Assert.True(gradientError < 1e-4, $"gradient of {worst} differs by {gradientError:E2} of its norm");
    }

    /// <summary>
    /// The table the compiled model fills (<see cref="Kernels.Positional.SinusoidalFairseqTable"/>, row r = position pad + 1 + r)
    /// against transformers' get_embedding computed by libtorch (<see cref="HfMarian.FairseqSinusoids"/>): the fixture's
    /// width, an odd one (the zero column), and NLLB-600M's 1024 over 200 positions. Not bit for bit: .NET's
    /// <c>MathF.Sin</c>/<c>Cos</c> (and, at 1024, <c>MathF.Exp</c> for a few frequencies) round some values to the float
    /// next to libtorch's, so each value is held to the gap between the two float32 angles (sine and cosine move no faster)
    /// plus 2^−23 (each side's sine within an ulp of a value below 1); how many values differ, and by how much, is printed,
    /// with the part each function has.
    /// </summary>
    [Theory]
    [InlineData(D, 16)]
    [InlineData(23, 16)]
    [InlineData(1024, 200)]
    public void Position_table_is_transformers_to_the_rounding_of_its_angles(int d, int maxPositions)
    {
        int rows = maxPositions + HfMarian.LearnedPositionOffset, first = Pad + 1, count = rows - first, half = d / 2;
        var ours = new float[count * d];
        Kernels.Positional.SinusoidalFairseqTable(ours, count, d, first);
        float[] theirs, frequencies, angles, sines, cosines;
        using (NewDisposeScope())
        {
            theirs = HfMarian.FairseqSinusoids(rows, d, Pad).data<float>().ToArray();
            // get_embedding's steps, to see where the two part: the frequencies (exp), or the sines and cosines of equal angles.
            Tensor f = (arange(half, ScalarType.Int64).to(ScalarType.Float32) * -(Math.Log(10000.0) / (half - 1))).exp();
            Tensor a = arange(rows, ScalarType.Int64).to(ScalarType.Float32).unsqueeze(1) * f.unsqueeze(0);
            (frequencies, angles, sines, cosines) = (f.data<float>().ToArray(), a.data<float>().ToArray(), a.sin().data<float>().ToArray(), a.cos().data<float>().ToArray());
        }
        int differing = 0, worstUlps = 0;
        double worst = 0, worstOverBound = 0;
        float step = (float)-(Math.Log(10000.0) / (half - 1));
        for (int r = 0; r < count; r++)
            for (int j = 0; j < d; j++)
            {
                float a = ours[r * d + j], b = theirs[(first + r) * d + j];
                if (BitConverter.SingleToInt32Bits(a) == BitConverter.SingleToInt32Bits(b)) continue;
                differing++;
                worst = Math.Max(worst, Math.Abs((double)a - b));
                worstUlps = Math.Max(worstUlps, Math.Abs(BitConverter.SingleToInt32Bits(a) - BitConverter.SingleToInt32Bits(b)));
                int i = j % half;
                float ourAngle = (first + r) * MathF.Exp(i * step), theirAngle = angles[(first + r) * half + i];
                double bound = Math.Abs((double)ourAngle - theirAngle) + Math.Pow(2, -23);
                worstOverBound = Math.Max(worstOverBound, Math.Abs((double)a - b) / bound);
            }
        int expDiffers = Enumerable.Range(0, half).Count(i => MathF.Exp(i * step) != frequencies[i]);
        int sinDiffers = Enumerable.Range(0, angles.Length).Count(i => MathF.Sin(angles[i]) != sines[i]);
        int cosDiffers = Enumerable.Range(0, angles.Length).Count(i => MathF.Cos(angles[i]) != cosines[i]);
        output.WriteLine($"d {d}, positions {first}…{rows - 1}: {differing} of {ours.Length} values differ from libtorch's, by at most {worst:E2} ({worstUlps} ulps; {worstOverBound:F3} of the bound). "
            + $"MathF.Exp vs torch.exp: {expDiffers} of {half} frequencies; on equal angles MathF.Sin vs torch.sin {sinDiffers}, MathF.Cos vs torch.cos {cosDiffers} of {angles.Length}");
        Assert.True(worstOverBound <= 1, $"a value differs from transformers' by {worstOverBound:F2} times its angles' gap + 2^-23");
    }

    // The logits at the positions whose label counts.
    private static float[] Counted(float[] logits, int[] labels) =>
        Enumerable.Range(0, labels.Length).Where(i => labels[i] >= 0).SelectMany(i => logits.Skip(i * Vocab).Take(Vocab)).ToArray();

    // Ids FirstWord … FirstWord + Words − 1: neither <s>, <pad>, </s>, <unk> nor the language codes.
    private static int[] WordIds(int count, ulong seed) => TestData.Tokens(count, Words, seed).Select(t => t + FirstWord).ToArray();
}
