using System;
using System.Buffers.Binary;
using System.IO;
using System.IO.Compression;
using System.Text;
using Xunit;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>
/// Checks that a file is a whole PNG, as a decoder would read it: the signature, every chunk's CRC, the IHDR, and the
/// IDAT stream inflated to exactly the rows the header promises (8-bit RGB or RGBA, not interlaced).
/// </summary>
public static class PngFile
{
    private static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Decodes <paramref name="path"/> far enough to prove it whole; returns its width and height.</summary>
    public static (int Width, int Height) Check(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        Assert.True(bytes.AsSpan().StartsWith(Signature), $"{path} does not start with the PNG signature");
        int width = 0, height = 0, channels = 0, position = Signature.Length;
        bool ended = false;
        using var idat = new MemoryStream();
        while (position < bytes.Length)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(position));
            string type = Encoding.ASCII.GetString(bytes, position + 4, 4);
            ReadOnlySpan<byte> typeAndData = bytes.AsSpan(position + 4, 4 + length);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(position + 8 + length));
            Assert.True(Crc32(typeAndData) == crc, $"{path}: chunk {type} has a wrong CRC");
            ReadOnlySpan<byte> data = typeAndData[4..];
            switch (type)
            {
                case "IHDR":
                    width = BinaryPrimitives.ReadInt32BigEndian(data);
                    height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                    Assert.Equal(8, data[8]); // bit depth
                    channels = data[9] switch { 2 => 3, 6 => 4, _ => throw new Xunit.Sdk.XunitException($"{path}: colour type {data[9]}") };
                    Assert.Equal(0, data[12]); // not interlaced
                    break;
                case "IDAT":
                    idat.Write(data);
                    break;
                case "IEND":
                    ended = true;
                    break;
            }
            position += 12 + length;
        }
        Assert.True(ended, $"{path} has no IEND chunk");
        Assert.True(width > 0 && height > 0, $"{path} has no IHDR");
        idat.Position = 0;
        using var inflated = new MemoryStream();
        using (var zlib = new ZLibStream(idat, CompressionMode.Decompress)) zlib.CopyTo(inflated);
        Assert.Equal((long)height * (1 + width * channels), inflated.Length); // a filter byte and the pixels, each row
        return (width, height);
    }

    private static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }
}
