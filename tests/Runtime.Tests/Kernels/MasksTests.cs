using System;
using TransformerGen.Kernels;
using Xunit;

namespace TransformerGen.Tests.Kernels;

public class MasksTests
{
    [Fact]
    public void KeyPadding_marks_the_pad_token_with_one()
    {
        int[] tokens = [5, 0, 3, 0, 0, 7];
        var padding = new byte[tokens.Length];
        Array.Fill(padding, (byte)9);
        Masks.KeyPadding(tokens, 0, padding);
        Assert.Equal(new byte[] { 0, 1, 0, 1, 1, 0 }, padding);

        Masks.KeyPadding(tokens, 7, padding);
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 1 }, padding);
        Assert.Equal("padding", Assert.Throws<ArgumentException>(() => Masks.KeyPadding(tokens, 0, new byte[5])).ParamName);
    }
}
