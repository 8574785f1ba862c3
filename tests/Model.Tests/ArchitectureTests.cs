using System;
using System.Collections.Generic;
using System.Linq;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Model.Tests;

/// <summary>Encoder–decoder and encoder-only models: gradients, padding, cached decoding, beam search, training.</summary>
public class ArchitectureTests(ITestOutputHelper output)
{
    private const int Pad = 0, Bos = 1, Eos = 2;

    public static TheoryData<string> Models() => new(["PaperSeq2Seq", "LearnedSeq2Seq", "RotaryWindowSeq2Seq", "MeanClassifier", "FirstTokenClassifier", "Tagger"]);

    internal static TransformerModel Create(string name) => name switch
    {
        "PaperSeq2Seq" => new PaperSeq2Seq(3),
        "LearnedSeq2Seq" => new LearnedSeq2Seq(3),
        "RotaryWindowSeq2Seq" => new RotaryWindowSeq2Seq(3),
        "MeanClassifier" => new MeanClassifier(3),
        "FirstTokenClassifier" => new FirstTokenClassifier(3),
        "Tagger" => new Tagger(3),
        _ => throw new ArgumentException(name),
    };

    /// <summary>
    /// A batch with padding: row b of the input has SeqLen − 2·b real tokens (at least 2) then pads; targets are
    /// real ids, an end token, then pads (sequence targets), or a class per row or per token.
    /// </summary>
    internal static (int[] Tokens, int[] Targets) Batch(TransformerModel model, ulong seed)
    {
        ModelLayout l = model.Layout;
        var rng = new Rng(seed);
        var tokens = new int[l.TokensPerStep];
        for (int b = 0; b < l.Batch; b++)
        {
            int real = Math.Max(2, l.SeqLen - 2 * b);
            for (int t = 0; t < l.SeqLen; t++) tokens[b * l.SeqLen + t] = t < real ? 3 + rng.NextInt(l.Vocab - 3) : Pad;
        }
        var targets = new int[l.TargetLength];
        if (l.Architecture == Architecture.EncoderDecoder)
        {
            for (int b = 0; b < l.Batch; b++)
            {
                int real = Math.Max(1, l.DecoderSeqLen - 2 - b);
                for (int t = 0; t < l.DecoderSeqLen; t++)
                    targets[b * l.DecoderSeqLen + t] = t < real ? 3 + rng.NextInt(l.TargetVocab - 3) : t == real ? Eos : Pad;
            }
        }
        else
        {
            for (int i = 0; i < targets.Length; i++) targets[i] = rng.NextInt(l.TargetVocab);
        }
        return (tokens, targets);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Gradients_match_finite_differences_for_every_parameter_tensor(string name)
    {
        TransformerModel model = Create(name);
        TestData.Perturb(model, 11);
        (int[] tokens, int[] targets) = Batch(model, 5);
        model.Forward(tokens, targets);
        model.ZeroGrad();
        model.Backward();
        float[] analytic = model.Gradients.ToArray();
        (double worst, string where, int kinks) = FiniteDifferences.Check(model, analytic, () => model.Forward(tokens, targets));
        output.WriteLine($"{name}: worst relative error {worst:E2} in {where}; {kinks} elements skipped at ReLU kinks");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Padding_contributes_nothing_to_the_loss_or_the_gradients(string name)
    {
        TransformerModel model = Create(name);
        TestData.Perturb(model, 2);
        (int[] tokens, int[] targets) = Batch(model, 7);
        float loss = model.Forward(tokens, targets);
        model.ZeroGrad();
        model.Backward();

        // The padding id's embedding row: no gradient, and changing it changes nothing.
        foreach (ParameterTensor table in model.ParameterTensors.Where(t => t.Name.EndsWith("embedding.weight", StringComparison.Ordinal) && !t.Name.Contains("pos")))
        {
            if (table.Name == "target_embedding.weight" && !model.ParameterTensors.Any(t => t.Name == "lm_head.weight")) continue; // tied: the pad row is also an output class
            int width = table.Shape[1];
            Span<float> padRow = model.Parameters.Slice(table.Offset + Pad * width, width);
            Assert.All(model.Gradients.Slice(table.Offset + Pad * width, width).ToArray(), g => Assert.Equal(0f, g));
            for (int i = 0; i < width; i++) padRow[i] += 0.5f;
            Assert.Equal(loss, model.Forward(tokens, targets));
        }
    }

    [Theory]
    [InlineData("PaperSeq2Seq")]
    [InlineData("LearnedSeq2Seq")]
    [InlineData("RotaryWindowSeq2Seq")]
    public void Cached_decoding_of_an_unpadded_source_matches_the_padded_batch(string name)
    {
        var model = (Seq2SeqModel)Create(name);
        TestData.Perturb(model, 4);
        model.Training = false;
        (int[] tokens, int[] targets) = Batch(model, 9);
        // Row 1 of the batch has padding: the cached path encodes it without.
        int seqLen = model.Layout.SeqLen, targetLen = model.Layout.DecoderSeqLen, vocab = model.Layout.TargetVocab;
        model.Forward(tokens, targets);
        float[] full = model.Logits.ToArray();

        ReadOnlySpan<int> source = tokens.AsSpan(seqLen, seqLen);
        model.Encode(source);
        int[] decoderInput = [Bos, .. targets.AsSpan(targetLen, targetLen - 1).ToArray()];
        // Positions whose decoder input is padding are masked in the batch and their targets ignored: not compared.
        int real = Array.IndexOf(decoderInput, Pad) is int firstPad and >= 0 ? firstPad : targetLen;
        Assert.True(real >= 3, "the test needs at least three real decoder positions");
        for (int t = 0; t < real; t++)
        {
            ReadOnlySpan<float> step = model.Append(decoderInput.AsSpan(t, 1));
            AssertClose(full.AsSpan((targetLen + t) * vocab, vocab), step, $"{name}, target position {t}");
        }
        // The same positions as one chunk after re-encoding.
        model.Encode(source);
        ReadOnlySpan<float> chunk = model.Append(decoderInput.AsSpan(0, 3));
        AssertClose(full.AsSpan((targetLen + 2) * vocab, vocab), chunk, $"{name}, chunk of 3");
    }

    [Fact]
    public void Inference_rejects_a_bad_source_or_decoder_input_with_a_clear_message()
    {
        var model = new PaperSeq2Seq(seed: 3);
        var appendFirst = Assert.Throws<InvalidOperationException>(() => model.Append([Bos]));
        Assert.Contains("call Encode first", appendFirst.Message);
        Assert.Contains("not padding", Assert.Throws<ArgumentException>(() => model.Encode([Pad, Pad])).Message);
        Assert.Contains("only trailing padding", Assert.Throws<ArgumentException>(() => model.Encode([5, Pad, 6])).Message);
        Assert.Contains("at most SeqLen = 6", Assert.Throws<ArgumentException>(() => model.Encode([3, 4, 5, 6, 7, 8, 9])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Encode([3, PaperSeq2Seq.Vocab]));

        model.Encode([5, 6, 7, Pad, Pad]); // trailing padding is dropped
        float[] trimmed = model.Append([Bos]).ToArray();
        model.Encode([5, 6, 7]);
        Assert.Equal(trimmed, model.Append([Bos]).ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Append([PaperSeq2Seq.TargetVocab]));
        model.Append([3, 4, 5, 6]);
        Assert.Contains("exceed TargetSeqLen = 5", Assert.Throws<InvalidOperationException>(() => model.Append([3])).Message);
    }

    [Fact]
    public void Greedy_translation_follows_the_argmax_of_recomputation_and_beam_width_one_agrees()
    {
        var model = new LearnedSeq2Seq(8);
        TestData.Perturb(model, 6);
        model.Training = false;
        int[] source = [5, 7, 3, 9];
        var greedy = new int[5];
        int length = model.Translate(source, greedy);

        // Recompute every step from scratch with the batched forward pass (teacher forcing on the greedy prefix).
        var tokens = new int[LearnedSeq2Seq.TokensPerStep];
        source.CopyTo(tokens, 0);
        var prefix = new List<int>();
        for (int step = 0; step < 5; step++)
        {
            var targets = new int[LearnedSeq2Seq.TargetTokensPerStep];
            Array.Fill(targets, -1);
            for (int i = 0; i < prefix.Count; i++) targets[i] = prefix[i];
            model.Forward(tokens, targets);
            ReadOnlySpan<float> row = model.Logits.Slice(step * LearnedSeq2Seq.TargetVocab, LearnedSeq2Seq.TargetVocab);
            int argmax = -1; // decoding never emits padding or begin tokens; neither does the recomputation
            for (int v = 0; v < row.Length; v++) if (v != Pad && v != Bos && (argmax < 0 || row[v] > row[argmax])) argmax = v;
            if (argmax == Eos) break;
            prefix.Add(argmax);
        }
        Assert.Equal(prefix.ToArray(), greedy[..length]);

        var beam = new int[5];
        int beamLength = model.BeamSearch(source, beam, beamWidth: 1, lengthPenalty: 0f);
        Assert.Equal(greedy[..length], beam[..beamLength]);
    }

    /// <summary>
    /// Translation with a repetition penalty: each token is the argmax of recomputation after transformers' rule over the
    /// decoder's input so far (the forced prefix and the tokens generated), as a sampler at temperature 0 applies it.
    /// </summary>
    [Fact]
    public void Translation_with_a_repetition_penalty_follows_the_penalized_argmax_of_recomputation()
    {
        const float r = 3f;
        var model = new LearnedSeq2Seq(8);
        TestData.Perturb(model, 6);
        model.Training = false;
        int[] source = [5, 7, 3, 9];
        var tokens = new int[LearnedSeq2Seq.TokensPerStep];
        source.CopyTo(tokens, 0);
        float[] RowAfter(List<int> read)
        {
            var targets = new int[LearnedSeq2Seq.TargetTokensPerStep];
            Array.Fill(targets, -1);
            for (int i = 0; i < read.Count; i++) targets[i] = read[i];
            model.Forward(tokens, targets);
            float[] row = model.Logits.Slice(read.Count * LearnedSeq2Seq.TargetVocab, LearnedSeq2Seq.TargetVocab).ToArray();
            row[Pad] = row[Bos] = float.NegativeInfinity; // never produced
            return row;
        }

        // A forced prefix that the decoder, unpenalized, would repeat at once, so that the penalty has a choice to change.
        int repeated = Enumerable.Range(0, LearnedSeq2Seq.TargetVocab).First(f =>
            f != Pad && f != Bos && f != Eos && Array.IndexOf(RowAfter([f]), RowAfter([f]).Max()) == f);
        int[] forced = [repeated];
        var output = new int[5];
        int length = model.Translate(source, output, new Sampler(0) { Temperature = 0f, RepetitionPenalty = r }, forced);

        var read = new List<int>(forced);
        bool changed = false;
        while (read.Count < LearnedSeq2Seq.TargetSeqLen)
        {
            float[] row = RowAfter(read);
            int plain = Array.IndexOf(row, row.Max());
            foreach (int t in read.Prepend(Bos).Distinct()) row[t] = row[t] < 0 ? row[t] * r : row[t] / r; // the decoder's input: start token, prefix, output
            int argmax = Array.IndexOf(row, row.Max());
            changed |= argmax != plain;
            if (argmax == Eos) break;
            read.Add(argmax);
        }
        Assert.Equal(read.Skip(forced.Length).ToArray(), output[..length]);
        Assert.True(changed, "the penalty was to change a choice for this test to show it is applied");
    }

    /// <summary>
    /// A forced prefix (mBART's target language, BART's &lt;s&gt;): the decoder reads it after the begin token, the output
    /// starts after it, and each generated token is the argmax of recomputation over [prefix, generated so far].
    /// </summary>
    [Fact]
    public void Greedy_translation_after_a_forced_prefix_follows_recomputation_and_the_prefix_is_checked()
    {
        var model = new LearnedSeq2Seq(8);
        TestData.Perturb(model, 7);
        model.Training = false;
        int[] source = [5, 7, 3, 9], forced = [6, 4];
        var output = new int[5];
        int length = model.Translate(source, output, prefix: forced);
        Assert.InRange(length, 0, LearnedSeq2Seq.TargetSeqLen - forced.Length);

        var tokens = new int[LearnedSeq2Seq.TokensPerStep];
        source.CopyTo(tokens, 0);
        var read = new List<int>(forced);
        for (int step = forced.Length; step < LearnedSeq2Seq.TargetSeqLen; step++)
        {
            var targets = new int[LearnedSeq2Seq.TargetTokensPerStep];
            Array.Fill(targets, -1);
            for (int i = 0; i < read.Count; i++) targets[i] = read[i];
            model.Forward(tokens, targets);
            ReadOnlySpan<float> row = model.Logits.Slice(step * LearnedSeq2Seq.TargetVocab, LearnedSeq2Seq.TargetVocab);
            int argmax = -1;
            for (int v = 0; v < row.Length; v++) if (v != Pad && v != Bos && (argmax < 0 || row[v] > row[argmax])) argmax = v;
            if (argmax == Eos) break;
            read.Add(argmax);
        }
        Assert.Equal(read.Skip(forced.Length).ToArray(), output[..length]);

        Assert.Throws<ArgumentException>(() => model.Translate(source, output, prefix: new int[LearnedSeq2Seq.TargetSeqLen - 1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Translate(source, output, prefix: [LearnedSeq2Seq.TargetVocab]));
    }

    [Fact]
    public void Beam_search_finds_a_sequence_at_least_as_likely_as_greedy()
    {
        var model = new PaperSeq2Seq(8);
        TestData.Perturb(model, 3);
        model.Training = false;
        int[] source = [4, 6, 8, 10];
        var greedy = new int[5];
        int g = model.Translate(source, greedy);
        var beam = new int[5];
        int b = model.BeamSearch(source, beam, beamWidth: 4, lengthPenalty: 0f);
        Assert.True(LogProbability(model, source, beam[..b]) >= LogProbability(model, source, greedy[..g]) - 1e-4);
    }

    /// <summary>
    /// <see cref="TransformerModel.EncoderHiddenState"/> is what the cross-attention reads: the encoder's last layer (post-LN)
    /// or its final norm (pre-LN, zero mean and unit variance per row before its gain and bias of 1 and 0); the source moves
    /// it, the targets do not; other architectures have none.
    /// </summary>
    [Fact]
    public void The_encoder_hidden_state_depends_on_the_source_alone_and_is_the_final_norms_output_in_pre_ln()
    {
        foreach (Seq2SeqModel model in new Seq2SeqModel[] { new PaperSeq2Seq(3), new LearnedSeq2Seq(3) })
        {
            (int[] tokens, int[] targets) = Batch(model, 4);
            model.Forward(tokens, targets);
            float[] first = model.EncoderHiddenState.ToArray();
            Assert.Equal(model.Layout.TokensPerStep * 12, first.Length);
            (_, int[] otherTargets) = Batch(model, 5);
            model.Forward(tokens, otherTargets);
            Assert.Equal(first, model.EncoderHiddenState.ToArray());
            int[] otherTokens = (int[])tokens.Clone();
            otherTokens[0] = otherTokens[0] == 5 ? 6 : 5;
            model.Forward(otherTokens, targets);
            Assert.NotEqual(first, model.EncoderHiddenState.ToArray());
            if (model is LearnedSeq2Seq)
                for (int row = 0; row < first.Length / 12; row++)
                    Assert.Equal(0.0, first.Skip(row * 12).Take(12).Average(), 1e-5);
        }
        Assert.Throws<InvalidOperationException>(() => new PanelDecoder(1).EncoderHiddenState.Length);
    }

    /// <summary>
    /// Beam search keeps a copy of the decoder cache per beam and feeds each beam's newest token alone: it finds what the
    /// same search finds when every beam's prefix is recomputed from an empty cache at each step (written out here),
    /// for several sources, beam widths and length penalties.
    /// </summary>
    [Fact]
    public void Beam_search_through_cache_copies_equals_the_search_that_recomputes_each_prefix()
    {
        var model = new PaperSeq2Seq(8);
        TestData.Perturb(model, 5);
        model.Training = false;
        int differentFromGreedy = 0;
        foreach (int[] source in new[] { new[] { 4, 6, 8, 10 }, [3, 9, 5], [7, 7, 10, 3, 6] })
            foreach ((int width, float penalty, int[] prefix) in new[] { (2, 0.6f, Array.Empty<int>()), (3, 0f, []), (4, 1f, []), (3, 0.6f, [6, 4]) })
            {
                var got = new int[5];
                int length = model.BeamSearch(source, got, width, penalty, prefix);
                Assert.Equal(RecomputingBeamSearch(model, source, Math.Min(5, PaperSeq2Seq.TargetSeqLen - prefix.Length), width, penalty, prefix), got[..length]);
                if (prefix.Length > 0) continue;
                var greedy = new int[5];
                if (!greedy.AsSpan(0, model.Translate(source, greedy)).SequenceEqual(got.AsSpan(0, length))) differentFromGreedy++;
            }
        Assert.True(differentFromGreedy > 0, "every beam search found the greedy translation: the comparison would prove little");
    }

    /// <summary>The beam search of <see cref="Seq2SeqModel.BeamSearch"/>, each beam's logits recomputed from an empty cache over its whole prefix.</summary>
    private static int[] RecomputingBeamSearch(Seq2SeqModel model, int[] source, int maxLength, int width, float penalty, int[] prefix)
    {
        int vocab = model.Layout.TargetVocab;
        var beams = new List<(List<int> Tokens, double LogProb)> { ([Bos, .. prefix], 0.0) };
        (List<int> Tokens, double Score)? best = null;
        for (int step = 0; step < maxLength && beams.Count > 0; step++)
        {
            var candidates = new List<(int Beam, int Token, double LogProb)>();
            for (int b = 0; b < beams.Count; b++)
            {
                model.Encode(source);
                float[] logits = model.Append(beams[b].Tokens.ToArray()).ToArray();
                logits[Pad] = logits[Bos] = float.NegativeInfinity;
                double max = logits.Max(), z = logits.Sum(x => Math.Exp(x - max));
                double[] logProbs = logits.Select(x => x - max - Math.Log(z)).ToArray();
                foreach (int token in Enumerable.Range(0, vocab).OrderByDescending(t => logProbs[t]).ThenBy(t => t).Take(width))
                    candidates.Add((b, token, beams[b].LogProb + logProbs[token]));
            }
            var next = new List<(List<int> Tokens, double LogProb)>();
            foreach ((int b, int token, double logProb) in candidates.OrderByDescending(c => c.LogProb))
            {
                if (next.Count == width) break;
                List<int> tokens = token == Eos ? [.. beams[b].Tokens] : [.. beams[b].Tokens, token];
                int generated = tokens.Count - 1 - prefix.Length;
                if (token == Eos || generated == maxLength)
                {
                    double score = logProb / Math.Pow((5.0 + generated) / 6.0, penalty);
                    if (best is null || score > best.Value.Score) best = (tokens, score);
                    if (token == Eos) continue;
                }
                else next.Add((tokens, logProb));
            }
            beams = next;
        }
        return best is null ? [] : best.Value.Tokens.Skip(1 + prefix.Length).ToArray();
    }

    /// <summary>log P(target, then the end token if it fits | source), from cached decoding.</summary>
    private static double LogProbability(Seq2SeqModel model, int[] source, int[] target)
    {
        model.Encode(source);
        double sum = 0;
        int previous = Bos;
        int steps = Math.Min(target.Length + 1, model.Layout.DecoderSeqLen);
        for (int i = 0; i < steps; i++)
        {
            ReadOnlySpan<float> logits = model.Append([previous]);
            int next = i < target.Length ? target[i] : Eos;
            float max = float.NegativeInfinity;
            foreach (float x in logits) max = Math.Max(max, x);
            double z = 0;
            foreach (float x in logits) z += Math.Exp(x - max);
            sum += logits[next] - max - Math.Log(z);
            previous = next;
        }
        return sum;
    }

    [Fact]
    public void An_encoder_decoder_learns_to_copy()
    {
        var model = new LearnedSeq2Seq(1) { Training = false };
        var optimizer = new AdamW(model, learningRate: 1e-2f, weightDecay: 0f);
        (int[] tokens, int[] targets) = Batch(model, 12);
        float loss = 0;
        for (int step = 0; step < 300 && (step == 0 || loss > 0.02f); step++) loss = model.TrainStep(tokens, targets, optimizer);
        // Label smoothing ε puts a floor under the loss: the entropy of the smoothed target distribution.
        const double eps = 0.1;
        int vocab = LearnedSeq2Seq.TargetVocab;
        double top = 1 - eps + eps / vocab, rest = eps / vocab;
        double floor = -(top * Math.Log(top) + (vocab - 1) * rest * Math.Log(rest));
        output.WriteLine($"final loss {loss}, floor {floor}");
        Assert.True(loss < floor + 0.02, $"loss {loss}, floor {floor:F4}");
    }

    [Fact]
    public void The_classifier_predicts_classes_and_the_tagger_ignores_padding_targets()
    {
        var classifier = new MeanClassifier(1);
        (int[] tokens, _) = Batch(classifier, 3);
        ReadOnlySpan<float> logits = classifier.Predict(tokens);
        Assert.Equal(MeanClassifier.Batch * MeanClassifier.Classes, logits.Length);
        var classes = new int[MeanClassifier.Batch];
        EncoderModel.ArgMax(logits, MeanClassifier.Classes, classes);
        Assert.All(classes, c => Assert.InRange(c, 0, MeanClassifier.Classes - 1));

        var tagger = new Tagger(1);
        (int[] tagTokens, int[] tags) = Batch(tagger, 3);
        float loss = tagger.Forward(tagTokens, tags);
        int[] changed = (int[])tags.Clone();
        for (int i = 0; i < changed.Length; i++) if (tagTokens[i] == Pad) changed[i] = (changed[i] + 1) % Tagger.Classes;
        Assert.Equal(loss, tagger.Forward(tagTokens, changed)); // tags at padded positions are ignored
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5f * Math.Max(1f, Math.Abs(expected[i])),
                $"{what}: logit {i} is {actual[i]}, the batch gives {expected[i]}");
    }
}
