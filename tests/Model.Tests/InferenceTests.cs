using System;
using System.Linq;
using Xunit;

namespace TransformerGen.Model.Tests;

/// <summary>Cached decoding must give what the full forward pass gives for the same prefix.</summary>
public class InferenceTests
{
    public static TheoryData<string> Models() => new(GradientTests.Models().Select(m => (string)m[0]));

    [Theory]
    [MemberData(nameof(Models))]
    public void Cached_decoding_matches_the_full_forward_pass(string name)
    {
        LanguageModel model = GradientTests.Create(name);
        TestData.Perturb(model, 4);
        model.Training = false;
        int seqLen = model.Layout.SeqLen, vocab = model.Layout.Vocab;
        int[] tokens = TestData.Tokens(model.Layout.TokensPerStep, vocab, 8);
        model.Forward(tokens, tokens);
        float[] full = model.Logits.ToArray(); // row t of batch 0 = logits after tokens[0..t]

        // One token at a time.
        model.ResetCache();
        for (int t = 0; t < seqLen; t++)
        {
            ReadOnlySpan<float> step = model.Append(tokens.AsSpan(t, 1));
            AssertClose(full.AsSpan(t * vocab, vocab), step, $"{name}, position {t}, one at a time");
        }

        // A prompt of three, then the rest one by one.
        model.ResetCache();
        ReadOnlySpan<float> logits = model.Append(tokens.AsSpan(0, 3));
        AssertClose(full.AsSpan(2 * vocab, vocab), logits, $"{name}, prompt of 3");
        logits = model.Append(tokens.AsSpan(3, seqLen - 3));
        AssertClose(full.AsSpan((seqLen - 1) * vocab, vocab), logits, $"{name}, rest as a chunk");

        Assert.Throws<InvalidOperationException>(() => model.Append(tokens.AsSpan(0, 1))); // window full
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5f * Math.Max(1f, Math.Abs(expected[i])),
                $"{what}: logit {i} is {actual[i]}, full forward gives {expected[i]}");
    }

    [Fact]
    public void Generation_is_deterministic_slides_past_the_window_and_allocates_nothing()
    {
        var model = new Medium(2);
        int[] prompt = [1, 2, 3];
        var first = new int[40]; // longer than SeqLen = 13: the window slides
        model.Generate(prompt, first, new Sampler(5, Medium.Vocab) { Temperature = 0.9f, TopK = 10 });
        var second = new int[40];
        var sampler = new Sampler(5, Medium.Vocab) { Temperature = 0.9f, TopK = 10 };
        model.Generate(prompt, second, sampler);
        Assert.Equal(first, second);
        Assert.All(first, id => Assert.InRange(id, 0, Medium.Vocab - 1));

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 5; i++) model.Generate(prompt, second, sampler);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Generation_ends_at_the_first_stop_token_drawn_which_is_not_written()
    {
        var model = new Medium(2);
        int[] prompt = [1, 2, 3];
        var all = new int[30]; // past SeqLen = 13: the window slides
        model.Generate(prompt, all, new Sampler(5, Medium.Vocab) { Temperature = 0.9f, TopK = 10 });

        // The first token drawn at 20 or later that was not drawn before it: a stop there ends the generation there.
        int at = Enumerable.Range(20, 10).First(i => !all[..i].Contains(all[i]));
        var output = new int[30];
        Array.Fill(output, -1);
        int written = model.Generate(prompt, output, new Sampler(5, Medium.Vocab) { Temperature = 0.9f, TopK = 10 }, [Medium.Vocab - 1, all[at]]);
        Assert.Equal(at, written);
        Assert.Equal(all[..at], output[..at]);
        Assert.All(output[at..], t => Assert.Equal(-1, t));

        // No stop token drawn: all of the output, as without stops.
        int[] never = Enumerable.Range(0, Medium.Vocab).Where(t => !all.Contains(t)).Take(1).ToArray();
        Assert.Equal(30, model.Generate(prompt, output, new Sampler(5, Medium.Vocab) { Temperature = 0.9f, TopK = 10 }, never));
        Assert.Equal(all, output);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Generate(prompt, output, new Sampler(5), [Medium.Vocab]));
    }

    [Fact]
    public void Greedy_generation_follows_the_argmax_of_the_full_forward_pass()
    {
        var model = new RotaryPre(9);
        TestData.Perturb(model, 1);
        int[] prompt = [4, 7];
        var generated = new int[3];
        model.Generate(prompt, generated, new Sampler(0, RotaryPre.Vocab) { Temperature = 0 });

        // Recompute each step without the cache: batch row 0 holds the sequence so far.
        int[] sequence = [4, 7, 0, 0, 0];
        for (int step = 0; step < 3; step++)
        {
            var tokens = new int[RotaryPre.TokensPerStep];
            sequence.CopyTo(tokens, 0);
            model.Training = false;
            model.Forward(tokens, tokens);
            ReadOnlySpan<float> row = model.Logits.Slice((prompt.Length + step - 1) * RotaryPre.Vocab, RotaryPre.Vocab);
            int argmax = 0;
            for (int v = 1; v < row.Length; v++) if (row[v] > row[argmax]) argmax = v;
            Assert.Equal(argmax, generated[step]);
            sequence[prompt.Length + step] = argmax;
        }
    }

    [Fact]
    public void Greedy_generation_with_a_repetition_penalty_follows_the_penalized_argmax_of_the_full_forward_pass()
    {
        // transformers' rule written out: each distinct token of the sequence so far (prompt and generated), l/r where
        // l ≥ 0 and l·r below, before the argmax.
        const float r = 1.6f;
        var model = new RotaryPre(9);
        TestData.Perturb(model, 1);
        model.Training = false;
        float[] RowAfter(int[] sequence, int length)
        {
            var tokens = new int[RotaryPre.TokensPerStep];
            sequence.AsSpan(0, length).CopyTo(tokens);
            model.Forward(tokens, tokens);
            return model.Logits.Slice((length - 1) * RotaryPre.Vocab, RotaryPre.Vocab).ToArray();
        }

        // A prompt whose own next token, unpenalized, is one of its tokens, so that the penalty has a choice to change.
        int third = Enumerable.Range(0, RotaryPre.Vocab).First(a =>
        {
            float[] row = RowAfter([4, 7, a], 3);
            return new[] { 4, 7, a }.Contains(Array.IndexOf(row, row.Max()));
        });
        int[] prompt = [4, 7, third];
        var generated = new int[RotaryPre.SeqLen - prompt.Length];
        var sampler = new Sampler(0, RotaryPre.Vocab) { Temperature = 0, RepetitionPenalty = r };
        model.Generate(prompt, generated, sampler);

        int[] sequence = new int[RotaryPre.SeqLen];
        prompt.CopyTo(sequence, 0);
        bool changed = false;
        for (int step = 0; step < generated.Length; step++)
        {
            int length = prompt.Length + step;
            float[] row = RowAfter(sequence, length);
            int plain = Array.IndexOf(row, row.Max());
            foreach (int t in sequence[..length].Distinct()) row[t] = row[t] < 0 ? row[t] * r : row[t] / r;
            int argmax = Array.IndexOf(row, row.Max());
            changed |= argmax != plain;
            Assert.Equal(argmax, generated[step]);
            sequence[length] = argmax;
        }
        Assert.True(changed, "the penalty was to change a choice for this test to show it is applied");

        long before = GC.GetAllocatedBytesForCurrentThread();
        model.Generate(prompt, generated, sampler);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
