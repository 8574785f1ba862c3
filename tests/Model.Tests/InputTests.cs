using System;
using Xunit;

namespace TransformerGen.Model.Tests;

public class InputTests
{
    [Fact]
    public void Wrong_lengths_are_rejected_with_both_numbers()
    {
        var model = new SinusoidalPre(1);
        // The call-site analyzer rejects these constant lengths at compile time (TG0020); this test is about the
        // run-time check that catches lengths known only at run time.
#pragma warning disable TG0020
        var error = Assert.Throws<ArgumentException>(() => model.Forward(new int[9], new int[10]));
        Assert.Contains("Batch·SeqLen = 2·5 = 10 tokens, got 9", error.Message);
        error = Assert.Throws<ArgumentException>(() => model.Forward(new int[10], new int[11]));
        Assert.Contains("10 targets, got 11", error.Message);
#pragma warning restore TG0020
    }

    [Fact]
    public void Token_ids_outside_the_vocabulary_name_their_position()
    {
        var model = new SinusoidalPre(1);
        int[] tokens = new int[10], targets = new int[10];
        tokens[7] = 11;
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => model.Forward(tokens, targets));
        Assert.Contains("tokens[7] = 11 is outside [0, 11)", error.Message);
        tokens[7] = -1;
        error = Assert.Throws<ArgumentOutOfRangeException>(() => model.Forward(tokens, targets));
        Assert.Contains("tokens[7] = -1", error.Message);
        tokens[7] = 0;
        targets[2] = 12;
        error = Assert.Throws<ArgumentOutOfRangeException>(() => model.Forward(tokens, targets));
        Assert.Contains("targets[2] = 12", error.Message);
    }

    [Fact]
    public void Ignored_targets_do_not_count_and_all_ignored_gives_zero()
    {
        var model = new SinusoidalPre(1);
        int[] tokens = TestData.Tokens(10, 11, 1);
        int[] targets = TestData.Tokens(10, 11, 2);
        float full = model.Forward(tokens, targets);
        int[] half = (int[])targets.Clone();
        for (int i = 5; i < 10; i++) half[i] = -100;
        float partial = model.Forward(tokens, half);
        Assert.NotEqual(full, partial);
        Assert.Equal(0f, model.Forward(tokens, new int[] { -1, -1, -1, -1, -1, -1, -1, -1, -1, -1 }));
    }

    [Fact]
    public void The_generated_constants_and_parameter_table_follow_the_declaration()
    {
        Assert.Equal(4, RotaryPre.HeadDim);
        Assert.Equal(10, RotaryPre.TokensPerStep);
        var model = new LearnedPre(0);
        Assert.Equal("token_embedding.weight", model.ParameterTensors[0].Name);
        Assert.Equal("pos_embedding.weight", model.ParameterTensors[1].Name);
        Assert.Equal("[5, 12]", model.ParameterTensors[1].ShapeText);
        Assert.Contains(model.ParameterTensors, t => t.Name == "decoder.layers.1.self_attn.in_proj_weight" && t.ShapeText == "[36, 12]");
        Assert.Contains(model.ParameterTensors, t => t.Name == "lm_head.weight");
        Assert.DoesNotContain(new SinusoidalPre(0).ParameterTensors, t => t.Name == "lm_head.weight"); // tied
        long count = 0;
        foreach (ParameterTensor t in model.ParameterTensors) count += t.Length;
        Assert.Equal(LearnedPre.ParameterCount, count);
        foreach (ParameterTensor t in model.ParameterTensors) Assert.Equal(0, t.Offset % 16); // 64-byte offsets
    }
}
