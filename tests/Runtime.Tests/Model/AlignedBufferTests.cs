using System;
using Xunit;

namespace TransformerGen.Tests.Model;

public sealed unsafe class AlignedBufferTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(100_000)] // large enough for the large object heap
    [InlineData(3_000_001)] // long enough for WrittenOnce to clear on several threads
    public void Starts_on_a_64_byte_boundary_is_zeroed_and_has_the_length_asked(int length)
    {
        for (int i = 0; i < 20; i++)
        {
            // Every other one written once at allocation (AlignedBuffer.WrittenOnce, on several threads when long enough).
            AlignedBuffer buffer = i % 2 == 0 ? new AlignedBuffer(length) : AlignedBuffer.WrittenOnce(length);
            Span<float> span = buffer.Span;
            Assert.Equal(length, span.Length);
            fixed (float* p = span)
                Assert.True(length == 0 || (nint)p % 64 == 0, $"buffer of {length} starts at {(nint)p:X}");
            Assert.True(span.IndexOfAnyExcept(0f) < 0);
            GC.Collect(); // pinned: the address must not change
            fixed (float* p = buffer.Span)
                Assert.True(length == 0 || (nint)p % 64 == 0);
        }
    }
}
