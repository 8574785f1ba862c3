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
}
