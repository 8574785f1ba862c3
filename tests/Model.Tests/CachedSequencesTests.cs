using System;
using System.Collections.Generic;
using System.Linq;
using Xunit;

namespace TransformerGen.Model.Tests;

// Decoders with several key/value cache slots, odd sizes: the Hugging Face families (grouped-query attention and
// rotate_half; learned positions and Conv1D) and this project's own, with each positional encoding and a window. The
// slots are the Sequences option (the Llama: 4 on a training Batch of 1; the sinusoidal one: 3 on a Batch of 2) or, by
// default, Batch.

[TransformerModel(Config = "Configs/llama-odd/config.json", SeqLen = 19, Sequences = 4)]
public partial class LlamaSequences { }

[TransformerModel(Config = "Configs/gpt2-odd/config.json", SeqLen = 19, Batch = 4)]
public partial class Gpt2Sequences { }

[TransformerModel(Vocab = 23, DModel = 20, Heads = 5, Layers = 2, DFF = 36, SeqLen = 11, Batch = 2, Sequences = 3,
    Positional = Positional.Sinusoidal, Norm = NormPlacement.Post, Activation = Activation.Relu)]
public partial class SinusoidalSequences { }

[TransformerModel(Vocab = 23, DModel = 20, Heads = 5, Layers = 2, DFF = 36, SeqLen = 11, Batch = 3,
    Positional = Positional.Rotary, AttentionWindow = 3, TiedEmbeddings = false)]
public partial class RotaryWindowSequences { }

[TransformerModel(Vocab = 23, DModel = 20, Heads = 5, Layers = 2, DFF = 36, SeqLen = 11, Batch = 3, Positional = Positional.Learned)]
public partial class LearnedSequences { }

/// <summary>
/// A decoder's multi-sequence <c>Append(tokens, lengths, sequences)</c>: each row equals what a separate instance with the
/// same weights gives for that sequence alone (the single-sequence path the libtorch tests check), through prompts,
/// decoding steps of any subset of sequences, resets and <c>Generate</c>, and bad calls change nothing.
/// </summary>
public class CachedSequencesTests
{
    public static TheoryData<string> Models => new() { nameof(LlamaSequences), nameof(Gpt2Sequences), nameof(SinusoidalSequences), nameof(RotaryWindowSequences), nameof(LearnedSequences) };

    private static LanguageModel Make(string name, WeightType type = WeightType.Float32) => name switch
    {
        nameof(LlamaSequences) => LlamaSequences.ForInference(5, type),
        nameof(Gpt2Sequences) => Gpt2Sequences.ForInference(5, type),
        nameof(SinusoidalSequences) => SinusoidalSequences.ForInference(5, type),
        nameof(RotaryWindowSequences) => RotaryWindowSequences.ForInference(5, type),
        _ => LearnedSequences.ForInference(5, type),
    };

    /// <summary>One model with its cache slots beside one single-sequence reference instance per slot, fed the same tokens.</summary>
    private sealed class Pair
    {
        public readonly LanguageModel Model;
        public readonly LanguageModel[] Alone;

        public Pair(string name, WeightType type = WeightType.Float32)
        {
            Model = Make(name, type);
            Alone = Enumerable.Range(0, Model.Layout.Sequences).Select(_ => Make(name, type)).ToArray();
        }

        public int Vocab => Model.Layout.Vocab;

        /// <summary>Appends <paramref name="tokens"/> of each named sequence in one call and checks every row against the references.</summary>
        public void Step(params (int Sequence, int[] Tokens)[] parts)
        {
            int[] all = parts.SelectMany(p => p.Tokens).ToArray();
            ReadOnlySpan<float> rows = Model.Append(all, parts.Select(p => p.Tokens.Length).ToArray(), parts.Select(p => p.Sequence).ToArray());
            Assert.Equal(parts.Length * Vocab, rows.Length);
            float[] together = rows.ToArray();
            for (int i = 0; i < parts.Length; i++)
            {
                float[] alone = Alone[parts[i].Sequence].Append(parts[i].Tokens).ToArray();
                AssertClose(alone, together.AsSpan(i * Vocab, Vocab).ToArray(), $"sequence {parts[i].Sequence}");
                Assert.Equal(Alone[parts[i].Sequence].CacheLength, Model.CacheLengthOf(parts[i].Sequence));
            }
        }
    }

    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        float scale = expected.Max(MathF.Abs);
        float worst = expected.Zip(actual, (e, a) => MathF.Abs(e - a)).Max();
        Assert.True(worst <= 1e-5f * Math.Max(scale, 1f), $"{what}: max |difference| {worst} against max |logit| {scale}");
        Assert.NotEqual(0f, scale);
    }

    private static int[] Ids(int count, int seed, int vocab) => Enumerable.Range(0, count).Select(i => (seed * 7 + i * 5 + i * i) % vocab).ToArray();

    [Theory]
    [MemberData(nameof(Models))]
    public void Each_row_equals_the_sequence_run_alone_through_prompts_steps_and_resets(string name)
    {
        var pair = new Pair(name);
        int batch = pair.Model.Layout.Sequences, seqLen = pair.Model.Layout.SeqLen, vocab = pair.Vocab;
        // Prompts of different lengths in slots out of order, one slot left empty.
        pair.Step((2, Ids(5, 1, vocab)), (0, Ids(1, 2, vocab)), (1, Ids(3, 3, vocab)));
        // A step of every slot: three continue by one or two tokens, the empty one starts.
        var step = new List<(int, int[])> { (0, Ids(2, 4, vocab)), (1, Ids(1, 5, vocab)), (2, Ids(1, 6, vocab)) };
        if (batch > 3) step.Insert(1, (3, Ids(4, 7, vocab)));
        pair.Step(step.ToArray());
        // Decoding steps of one token each, in a different order each time, until a slot is nearly full.
        for (int round = 0; round < 3; round++)
            pair.Step(Enumerable.Range(0, batch).Select(i => ((batch - 1 - i + round) % batch, Ids(1, 10 + round * batch + i, vocab))).ToArray());
        // Slot 1 starts over while the others go on; then only slot 0 runs, up to SeqLen.
        pair.Model.ResetCache(1);
        pair.Alone[1].ResetCache();
        Assert.Equal(0, pair.Model.CacheLengthOf(1));
        pair.Step((1, Ids(6, 30, vocab)), (2, Ids(1, 31, vocab)));
        int room = seqLen - pair.Model.CacheLengthOf(0);
        pair.Step((0, Ids(room, 32, vocab)));
        Assert.Equal(seqLen, pair.Model.CacheLengthOf(0));
        // Append(tokens) is sequence 0's: the others are untouched.
        int other = pair.Model.CacheLengthOf(2);
        pair.Model.ResetCache(0);
        pair.Alone[0].ResetCache();
        AssertClose(pair.Alone[0].Append(Ids(4, 40, vocab)).ToArray(), pair.Model.Append(Ids(4, 40, vocab)).ToArray(), "Append(tokens)");
        Assert.Equal(4, pair.Model.CacheLength);
        Assert.Equal(other, pair.Model.CacheLengthOf(2));
        pair.Step((2, Ids(1, 41, vocab)), (0, Ids(1, 42, vocab)));
    }

    [Fact]
    public void The_slots_are_the_Sequences_option_or_Batch_and_only_the_caches_grow_with_them()
    {
        Assert.Equal((1, 4), (LlamaSequences.Batch, LlamaSequences.ForInference(1).Layout.Sequences));
        Assert.Equal((2, 3), (SinusoidalSequences.Batch, SinusoidalSequences.ForInference(1).Layout.Sequences));
        Assert.Equal((3, 3), (LearnedSequences.Batch, LearnedSequences.ForInference(1).Layout.Sequences));
        // Four Llama slots of 19 positions, 2 layers, keys and values of 2 key/value heads of 12 (config: 72 / 6 heads).
        ModelLayout layout = LlamaSequences.ForInference(1).Layout;
        Assert.Equal(4 * 2 * 2 * 19 * 2 * 12, layout.KeyValueCount);
        Assert.Equal(19, layout.InferenceTokens);
    }

    [Fact]
    public void Eight_bit_weights_give_each_sequence_what_it_gets_alone()
    {
        // Under 16 rows a call, so the same products (fp32 activations) run together and alone.
        var pair = new Pair(nameof(LlamaSequences), WeightType.Int8);
        pair.Step((3, Ids(6, 1, pair.Vocab)), (1, Ids(2, 2, pair.Vocab)), (0, Ids(5, 3, pair.Vocab)));
        pair.Step((0, Ids(1, 4, pair.Vocab)), (1, Ids(1, 5, pair.Vocab)), (2, Ids(3, 6, pair.Vocab)), (3, Ids(1, 7, pair.Vocab)));
    }

    [Fact]
    public void Generate_uses_sequence_0_and_leaves_the_others_cached()
    {
        var pair = new Pair(nameof(Gpt2Sequences));
        pair.Step((1, Ids(4, 1, pair.Vocab)), (3, Ids(2, 2, pair.Vocab)));
        var output = new int[30];
        pair.Model.Generate(Ids(3, 3, pair.Vocab), output, new Sampler(9));
        var alone = new int[30];
        pair.Alone[0].Generate(Ids(3, 3, pair.Vocab), alone, new Sampler(9));
        Assert.Equal(alone, output);
        Assert.Equal(4, pair.Model.CacheLengthOf(1));
        pair.Step((3, Ids(1, 4, pair.Vocab)), (1, Ids(1, 5, pair.Vocab)));
    }

    [Fact]
    public void Bad_calls_are_refused_with_the_reason_and_change_nothing()
    {
        var pair = new Pair(nameof(LlamaSequences));
        LanguageModel model = pair.Model;
        int vocab = pair.Vocab;
        pair.Step((0, Ids(3, 1, vocab)));
        pair.Step((2, Ids(18, 2, vocab)));
        pair.Step((1, Ids(1, 3, vocab)));

        void Refused<TException>(int[] tokens, int[] lengths, int[] sequences, string message) where TException : Exception
        {
            var e = Assert.Throws<TException>(() => model.Append(tokens, lengths, sequences));
            Assert.Contains(message, e.Message);
            Assert.Equal([3, 1, 18, 0], Enumerable.Range(0, 4).Select(model.CacheLengthOf).ToArray());
        }

        Refused<ArgumentException>([1, 2], [1, 1], [1, 1], "sequence 1 is named twice");
        Refused<ArgumentOutOfRangeException>([1], [1], [4], "sequences[0] = 4 is outside 0 to Sequences - 1 = 3");
        Refused<ArgumentOutOfRangeException>([1], [1], [-1], "sequences[0] = -1");
        Refused<ArgumentOutOfRangeException>([1], [0, 1], [0, 1], "lengths[0] = 0 is below 1");
        Refused<ArgumentException>([1, 2, 3], [1, 1], [0, 1], "the lengths add up to 2 tokens, but 3 were given");
        Refused<ArgumentException>([1], [1], [0, 1], "1 lengths need as many sequences, got 2");
        Refused<ArgumentException>([], [], [], "takes 1 to Sequences = 4 sequences, got 0");
        Refused<ArgumentException>(new int[5], [1, 1, 1, 1, 1], [0, 1, 2, 3, 0], "got 5 lengths");
        // One pass takes SeqLen tokens in all (the workspace is sized for that): two prompts of 10 go in separately.
        Assert.Equal(19, model.Layout.InferenceTokens);
        Refused<ArgumentException>(new int[20], [1, 19], [1, 3], "20 tokens exceed the 19 one pass takes");
        // Slot 2 holds 18 of 19: two more would overflow it, so slot 0's token is not appended either.
        Refused<InvalidOperationException>([1, 2, 3], [1, 2], [0, 2], "sequence 2 holds 18 cached positions; 2 more exceed SeqLen = 19");
        Refused<ArgumentOutOfRangeException>([1, vocab], [1, 1], [0, 1], "outside");
        Assert.Throws<ArgumentOutOfRangeException>(() => model.CacheLengthOf(4));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.ResetCache(-1));

        // The refused calls left every cache as it was: the sequences go on as they would have.
        pair.Step((2, Ids(1, 4, vocab)), (0, Ids(1, 5, vocab)), (1, Ids(1, 6, vocab)));
    }

    /// <summary>
    /// A cache cut back to a prefix continues as if only the prefix had been appended: the logits of a different
    /// continuation equal (within 1e-5) those of a fresh instance given the prefix and that continuation, in every slot,
    /// the other slots untouched; a cut beyond what a slot holds is refused.
    /// </summary>
    [Theory]
    [MemberData(nameof(Models))]
    public void A_truncated_cache_continues_from_its_prefix(string name)
    {
        LanguageModel model = Make(name);
        int vocab = model.Layout.Vocab, last = model.Layout.Sequences - 1;
        int[] prefix = Ids(5, 1, vocab), first = Ids(4, 2, vocab), second = Ids(3, 3, vocab);

        model.Append([.. prefix, .. first]);
        model.TruncateCache(prefix.Length);
        Assert.Equal(prefix.Length, model.CacheLength);
        float[] continued = model.Append(second).ToArray();

        LanguageModel fresh = Make(name);
        fresh.Append(prefix);
        AssertClose(fresh.Append(second).ToArray(), continued, "after the cut"); // the prefix's pass had other rows beside it: equal to rounding

        // Another slot: cut to 0 is a reset; cut to what it holds changes nothing; slot 0 keeps its positions.
        model.Append([.. first, .. second], [first.Length + second.Length], [last]);
        model.TruncateCache(last, first.Length);
        float[] slot = model.Append(prefix, [prefix.Length], [last]).ToArray();
        fresh.ResetCache();
        fresh.Append(first);
        AssertClose(fresh.Append(prefix).ToArray(), slot, "slot after the cut");
        Assert.Equal(prefix.Length + second.Length, model.CacheLength);
        model.TruncateCache(model.CacheLength);
        model.TruncateCache(last, 0);
        Assert.Equal(0, model.CacheLengthOf(last));

        Assert.Contains("holds 8 cached positions; a cache can be cut to 0..8", Assert.Throws<ArgumentOutOfRangeException>(() => model.TruncateCache(9)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.TruncateCache(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.TruncateCache(model.Layout.Sequences, 0));
    }
}
