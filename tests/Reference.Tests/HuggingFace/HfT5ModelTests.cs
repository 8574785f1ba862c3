using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TransformerGen.Kernels;
using TransformerGen.Model.Tests;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <see cref="HfT5Model"/> (t5-small-shaped: relu, tied head) and <see cref="HfFlanT5Model"/> (flan-t5-small-shaped: gated
/// tanh GELU, untied lm_head), compiled from their config.json, against the libtorch T5ForConditionalGeneration
/// (<see cref="HfT5"/>) whose files they load: the loaded values bit for bit, the encoder's output, the teacher-forced
/// logits to 1e-5 of the largest, the loss to 1e-5 relative, every gradient (the relative-position tables included) to
/// 1e-4 of its norm, the cached decoder step by step and several tokens at once, and greedy translations identical. Each
/// case reads another layout of the files: today's, bfloat16, the old one (tied copies, block 0's unused cross-attention
/// table), three shards.
/// </summary>
public sealed class HfT5ModelTests(ITestOutputHelper output) : IDisposable
{
    private const long Seed = 20261207;
    private const int Batch = 2, SourceLength = 11, TargetLength = 9, Pad = 0, Eos = 1;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "tg-t5-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public void T5_current_layout() => Compare(HfFixtures.T5, new HfWriteOptions(IncludeBuffers: false));

    [Fact]
    public void T5_old_layout_with_tied_copies_and_the_unused_cross_attention_table() =>
        Compare(HfFixtures.T5, new HfWriteOptions(KeepTiedCopy: true, IncludeUnusedHeads: true));

    [Fact]
    public void Flan_T5_current_layout() => Compare(HfFixtures.FlanT5, new HfWriteOptions(IncludeBuffers: false));

    [Fact]
    public void Flan_T5_bfloat16_file() => Compare(HfFixtures.FlanT5, new HfWriteOptions(Dtype: HfDtype.BF16, IncludeBuffers: false));

    [Fact]
    public void Flan_T5_three_shards() => Compare(HfFixtures.FlanT5, new HfWriteOptions(IncludeBuffers: false, Shards: 3));

    [Fact]
    public void Our_buckets_equal_libtorchs_for_every_distance_to_4096()
    {
        int[] distances = Enumerable.Range(-4096, 2 * 4096 + 1).ToArray();
        foreach (bool bidirectional in new[] { true, false })
            foreach ((int buckets, int maxDistance) in new[] { (32, 128), (8, 20), (10, 24), (64, 256), (16, 1000) })
            {
                int[] theirs = HfReference.T5RelativePositionBuckets(distances, bidirectional, buckets, maxDistance);
                for (int i = 0; i < distances.Length; i++)
                    Assert.True(theirs[i] == RelativePosition.Bucket(distances[i], bidirectional, buckets, maxDistance),
                        $"distance {distances[i]} ({(bidirectional ? "bidirectional" : "causal")}, {buckets} buckets to {maxDistance}): libtorch {theirs[i]}, ours {RelativePosition.Bucket(distances[i], bidirectional, buckets, maxDistance)}");
            }
    }

    [Fact]
    public void A_file_holding_the_shared_table_only_under_its_users_names_loads_it_from_there()
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.T5), Seed);
        reference.Save(_folder, new HfWriteOptions(IncludeBuffers: false));
        var model = new HfT5Model(seed: 7);
        model.Load(_folder);
        // As a deduplicating converter may keep it: the table under the encoder's and the decoder's names, "shared" absent.
        byte[] Bytes(ParameterTensor t) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(model.Parameters.Slice(t.Offset, t.Length)).ToArray();
        long[] Shape(ParameterTensor t) => t.Shape.ToArray().Select(d => (long)d).ToArray();
        var tensors = new List<SafeTensor>();
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            if (t.Name != "shared.weight")
            {
                tensors.Add(new SafeTensor(t.Name, "F32", Shape(t), Bytes(t)));
                continue;
            }
            tensors.Add(new SafeTensor("decoder.embed_tokens.weight", "F32", Shape(t), Bytes(t)));
            tensors.Add(new SafeTensor("encoder.embed_tokens.weight", "F32", Shape(t), Bytes(t)));
        }
        string path = Path.Combine(_folder, "renamed.safetensors");
        SafeTensorsWriter.Write(path, tensors);
        var other = new HfT5Model(seed: 8);
        other.Load(path);
        foreach (ParameterTensor t in model.ParameterTensors)
            Assert.True(model.Parameters.Slice(t.Offset, t.Length).SequenceEqual(other.Parameters.Slice(t.Offset, t.Length)), $"{t.Name} differs");
        // A copy whose shape is not the table's is still refused by name.
        tensors[tensors.FindIndex(t => t.Name == "encoder.embed_tokens.weight")] = new SafeTensor("encoder.embed_tokens.weight", "F32", [40, 44], new byte[40 * 44 * 4]);
        SafeTensorsWriter.Write(path, tensors);
        var e = Assert.Throws<InvalidDataException>(() => new HfT5Model(seed: 9).Load(path));
        Assert.Contains("encoder.embed_tokens.weight", e.Message);
    }

    [Fact]
    public void Training_steps_and_cached_decoding_allocate_nothing_once_warm()
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(HfFixtures.FlanT5), Seed);
        reference.Save(_folder, new HfWriteOptions(IncludeBuffers: false));
        var model = new HfFlanT5Model(seed: 7);
        model.Load(_folder);
        Seq2SeqModel inference = HfFlanT5Model.ForInference(_folder);
        int vocab = model.Layout.TargetVocab;
        int[] source = TestData.Tokens(Batch * SourceLength, vocab - 2, 71).Select(t => t + 2).ToArray();
        int[] targets = TestData.Tokens(Batch * TargetLength, vocab - 2, 72).Select(t => t + 2).ToArray();
        int[] sentence = source[..SourceLength];
        void Step()
        {
            model.ZeroGrad();
            model.Forward(source, targets);
            model.Backward();
            inference.Encode(sentence);
            for (int t = 0; t < TargetLength; t++) inference.Append(targets.AsSpan(t, 1));
        }
        for (int i = 0; i < 20; i++) Step();
        // Up to three windows, as the other allocation tests: the runtime may allocate once on this thread (tiering), a step never.
        long bytes = 0;
        for (int window = 0; window < 3; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 30; i++) Step();
            bytes = GC.GetAllocatedBytesForCurrentThread() - before;
            if (bytes == 0) break;
        }
        Assert.Equal(0, bytes);
    }

    // 8-bit and bf16 inference instances: what fp32 computes over the matrices rounded to the format, and about the format's
    // precision from fp32 itself, through the encoder, the relative-position bias and a cached decoding step.
    [Theory]
    [InlineData(HfFixtures.T5, WeightType.Int8)]
    [InlineData(HfFixtures.FlanT5, WeightType.Int8)]
    [InlineData(HfFixtures.FlanT5, WeightType.BFloat16)]
    public void Reduced_weights_compute_what_fp32_computes_over_the_rounded_matrices(string fixture, WeightType type)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
        reference.Save(_folder, new HfWriteOptions(IncludeBuffers: false));
        Func<WeightType, Seq2SeqModel> open = fixture == HfFixtures.FlanT5 ? w => HfFlanT5Model.ForInference(_folder, w) : w => HfT5Model.ForInference(_folder, w);
        Seq2SeqModel reduced = open(type), exact = open(WeightType.Float32), rounded = open(WeightType.Float32);
        ReducedWeights.RoundMatrices(rounded, type); // reading Parameters unpacks the fp32 panels
        rounded.PackWeights();
        int[] source = TestData.Tokens(8, reduced.Layout.Vocab - 2, 33).Select(t => t + 2).Append(Eos).ToArray();
        int[] prefix = [Pad, 5, 9, 4];
        float[] Run(Seq2SeqModel m)
        {
            m.Encode(source);
            return m.Append(prefix).ToArray();
        }
        float[] r = Run(reduced), f = Run(rounded), e = Run(exact);
        double sameArithmetic = HfChecks.RelativeMax(r, f), gap = HfChecks.RelativeMax(r, e);
        output.WriteLine($"{fixture} {type}: against fp32 over the rounded weights {sameArithmetic:E2}, against fp32 {gap:E2}");
        Assert.True(sameArithmetic < 1e-5, $"{sameArithmetic:E2} from fp32 over the rounded weights");
        Assert.InRange(gap, 1e-7, type == WeightType.Int8 ? 5e-2 : 3e-2);
    }

    private void Compare(string fixture, HfWriteOptions options)
    {
        using HfReference reference = HfReference.Create(HfFixtures.ConfigPath(fixture), Seed);
        reference.Save(_folder, options);
        bool flan = fixture == HfFixtures.FlanT5;
        Seq2SeqModel model = flan ? new HfFlanT5Model(seed: 7) : new HfT5Model(seed: 7);
        model.Load(_folder);
        int vocab = model.Layout.TargetVocab;
        Assert.Equal(Pad, model.Layout.PadToken);
        Assert.Equal(Pad, model.Layout.BosToken);
        Assert.Equal(Eos, model.Layout.EosToken);

        // The same tensors under the same names, loaded bit for bit (bfloat16 widened alike on both sides).
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
        int[] words = TestData.Tokens(Batch * (SourceLength + TargetLength), vocab - 2, 43).Select(t => t + 2).ToArray();
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
        double encoderError = HfChecks.RelativeMax(model.EncoderHiddenState.ToArray(), reference.EncoderLastHiddenState(source, Batch, SourceLength));
        (float expectedLoss, Dictionary<string, float[]> gradients) = reference.TranslationLossAndGradients(source, labels, Batch, SourceLength, TargetLength);
        model.ZeroGrad();
        model.Backward();
        (double gradientError, string worst) = HfChecks.GradientError(model, gradients, null);
        output.WriteLine($"{fixture}, {Describe(options)}: encoder_last_hidden_state {encoderError:E2}, logits {logitError:E2} " +
                         $"(worst at {HfChecks.WorstPosition(logits, expected, vocab, TargetLength)}), loss {loss} vs {expectedLoss}, gradients {gradientError:E2} (worst {worst})");
        Assert.True(encoderError < 1e-5, $"the encoder's output differs by {encoderError:E2} of the largest");
        Assert.True(logitError < 1e-5, $"logits differ by {logitError:E2} of the largest ({HfChecks.WorstPosition(logits, expected, vocab, TargetLength)})");
        Assert.True(Math.Abs(loss - expectedLoss) < 1e-5 * Math.Abs(expectedLoss), $"loss {loss} vs {expectedLoss}");
        Assert.True(gradientError < 1e-4, $"gradient of {worst} differs by {gradientError:E2} of its norm");

        // Cached decoding of an inference instance: Encode once, then one token per Append, then several in one Append.
        Seq2SeqModel inference = flan ? HfFlanT5Model.ForInference(_folder) : HfT5Model.ForInference(_folder);
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

        // Greedy translations of sources of 1 to 9 words and eos (every other one with trailing pads).
        var translations = new HashSet<string>();
        double margin = double.PositiveInfinity;
        for (int n = 0; n < 8; n++)
        {
            int length = n < 5 ? 4 + n : n - 4;
            int[] words2 = TestData.Tokens(length, vocab - 2, (ulong)(60 + n)).Select(t => t + 2).ToArray();
            int[] input = n % 2 == 0 ? words2.Append(Eos).ToArray() : words2.Append(Eos).Concat(Enumerable.Repeat(Pad, SourceLength - length - 1)).ToArray();
            var produced = new int[TargetLength];
            int count = inference.Translate(input, produced);
            int[] want = reference.GreedyTranslation(input, TargetLength, out double smallest);
            output.WriteLine($"source [{string.Join(' ', input)}] → ours [{string.Join(' ', produced[..count])}], transformers [{string.Join(' ', want)}] (smallest margin {smallest:F4})");
            if (smallest > 1e-3) Assert.Equal(want, produced[..count]);
            translations.Add(string.Join(' ', want));
            margin = Math.Min(margin, smallest);
        }
        output.WriteLine($"{translations.Count} different translations, smallest margin {margin:F4}");
        Assert.True(translations.Count >= 3, "the sources hardly change the translations: the comparison would prove little");
    }

    private static string Describe(HfWriteOptions o) =>
        $"{o.Dtype}{(o.KeepTiedCopy ? ", tied copies" : "")}{(o.IncludeUnusedHeads ? ", block 0's old cross-attention table" : "")}{(o.Shards > 1 ? $", {o.Shards} shards" : "")}";
}
