using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace TransformerGen.Tokenizers.Tests.Support;

/// <summary>
/// Writes a SentencePiece <c>precompiled_charsmap</c> (normalizer.cc <c>EncodePrecompiledCharsMap</c>): a
/// little-endian uint32 with the trie's size in bytes, a darts-clone double-array trie over the UTF-8 keys whose
/// values are offsets into the replacement pool, then the pool of NUL-terminated replacements. A real model's map
/// (nmt_nfkc) has every NFKC change of Unicode; the tests write the few they use.
/// </summary>
/// <remarks>
/// The trie is laid out simply, not compactly: each node with children gets a block of 256 units of its own, so a
/// child with byte label c sits at block + c. A unit is darts-clone's: label in bits 0–7, "has a leaf" in bit 8,
/// the offset to the node's block in bits 10–30; a leaf (value) unit has bit 31 set and the value in bits 0–30.
/// </remarks>
internal static class PrecompiledCharsMapWriter
{
    private const int BlockSize = 256;
    private const uint HasLeafBit = 1u << 8;
    private const uint ValueBit = 1u << 31;
    private const int OffsetShift = 10;

    /// <summary>A map from each of <paramref name="keys"/> to its NFKC form, as nmt_nfkc maps them.</summary>
    public static byte[] Nfkc(params string[] keys)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string key in keys)
        {
            map[key] = key.Normalize(NormalizationForm.FormKC);
        }

        return Write(map);
    }

    public static byte[] Write(IReadOnlyDictionary<string, string> map)
    {
        var root = new Node();
        var pool = new MemoryStream();
        foreach ((string key, string replacement) in map)
        {
            Node node = root;
            foreach (byte b in Encoding.UTF8.GetBytes(key))
            {
                if (!node.Children.TryGetValue(b, out Node? child))
                {
                    child = new Node();
                    node.Children.Add(b, child);
                }

                node = child;
            }

            node.Value = (int)pool.Length;
            pool.Write(Encoding.UTF8.GetBytes(replacement));
            pool.WriteByte(0);
        }

        // The root is unit 0, alone in the first block; every block starts at a multiple of 256, so block ^ c = block + c.
        var units = new List<uint>(new uint[BlockSize]);
        Place(root, position: 0, units);

        var blob = new MemoryStream();
        Span<byte> word = stackalloc byte[4];
        BitConverterLittleEndian(word, (uint)(units.Count * 4));
        blob.Write(word);
        foreach (uint unit in units)
        {
            BitConverterLittleEndian(word, unit);
            blob.Write(word);
        }

        blob.Write(pool.ToArray());
        return blob.ToArray();
    }

    // Gives the node at `position` a block for its children (slot 0 holds its value, if any) and places them.
    private static void Place(Node node, int position, List<uint> units)
    {
        if (node.Children.Count == 0 && node.Value is null)
        {
            return;
        }

        int block = units.Count;
        for (int slot = 0; slot < BlockSize; slot++)
        {
            // Empty slots get a label other than their own byte, so no key byte ever matches them.
            units.Add(slot == 0 ? 1u : 0u);
        }

        uint offset = (uint)(position ^ block);
        if (offset >= 1u << 21)
        {
            throw new InvalidOperationException("The test's charsmap grew past darts-clone's short offsets.");
        }

        units[position] |= offset << OffsetShift;
        if (node.Value is int value)
        {
            units[position] |= HasLeafBit;
            units[block] = ValueBit | (uint)value;
        }

        foreach ((byte label, Node child) in node.Children)
        {
            units[block + label] = label;
            Place(child, block + label, units);
        }
    }

    private static void BitConverterLittleEndian(Span<byte> destination, uint value) =>
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(destination, value);

    private sealed class Node
    {
        public SortedDictionary<byte, Node> Children { get; } = [];
        public int? Value { get; set; }
    }
}
