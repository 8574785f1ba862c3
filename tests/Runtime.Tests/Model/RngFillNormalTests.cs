using System;
using TransformerGen.Tests.Threading;
using Xunit;

namespace TransformerGen.Tests.Model;

/// <summary>Rng.FillNormal, which models initialize their weights with, gives what NextNormal gives one at a time.</summary>
[Collection(ThreadSettingsCollection.Name)]
public class RngFillNormalTests
{
    [Theory]
    [InlineData(1, 0)]
    [InlineData(1, 7)]
    [InlineData(2, 4096)]
    [InlineData(2, 65536 + 4097)]   // past one chunk of draws, the last piece partial
    [InlineData(3, 150_001)]
    public void The_values_and_the_state_after_are_those_of_NextNormal_in_order_on_any_thread_count(int threads, int length)
    {
        var sequential = new Rng(42);
        var expected = new float[length];
        for (int i = 0; i < length; i++) expected[i] = sequential.NextNormal() * 0.02f;

        var filled = new Rng(42);
        var values = new float[length];
        using (new ThreadSettings(threads)) filled.FillNormal(values, 0.02f);
        ThreadSettings.AssertBitIdentical(expected, values, $"{length} values on {threads} threads");
        Assert.Equal(sequential.State, filled.State);
        Assert.Equal(sequential.NextUInt32(), filled.NextUInt32());
    }
}
