using System;
using System.Buffers.Binary;
using System.IO;
using System.Text;

using TransformerGen.SentencePiece;

namespace TransformerGen.Tokenizers.Normalization;

/// <summary>
/// A SentencePiece model's own normalization rules (<c>normalizer_spec.precompiled_charsmap</c>, nmt_nfkc in NLLB's model),
/// applied as SentencePiece's <c>Normalizer::NormalizePrefix</c> applies them: at each position of the UTF-8 text the
/// longest key of the map that starts there is replaced by its value, and where no key starts the character is kept.
/// Microsoft.ML.Tokenizers 3.0 applies the map for Unigram models only; NLLB's is a BPE model, so its texts go through
/// this first.
/// </summary>
/// <remarks>
/// The blob is a little-endian uint32 with the trie's size in bytes, a darts-clone double-array trie over the UTF-8 keys
/// whose values are offsets into the replacement pool, then the pool of NUL-terminated replacements. Hugging Face's fast
/// tokenizers read the same blob per grapheme cluster instead, which differs only for keys inside combining sequences.
/// </remarks>
internal sealed class PrecompiledCharsMap
{
    private readonly uint[] _units;
    private readonly byte[] _pool;

    private PrecompiledCharsMap(uint[] units, byte[] pool)
    {
        _units = units;
        _pool = pool;
    }

    /// <summary>The map of a serialized SentencePiece model (<c>ModelProto</c>), or null when it has none.</summary>
    /// <exception cref="InvalidDataException">The model's map is malformed.</exception>
    public static PrecompiledCharsMap? FromModel(byte[] model)
    {
        byte[] blob = SentencePieceModel.Read(model).PrecompiledCharsMap;
        return blob.Length == 0 ? null : Parse(blob);
    }

    /// <summary>Reads a <c>precompiled_charsmap</c> blob.</summary>
    /// <exception cref="InvalidDataException">The blob is shorter than the trie it announces, or the trie is not whole units.</exception>
    public static PrecompiledCharsMap Parse(ReadOnlySpan<byte> blob)
    {
        if (blob.Length < 4) throw new InvalidDataException($"a precompiled_charsmap of {blob.Length} bytes has no trie size");
        uint trieBytes = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (trieBytes == 0 || trieBytes % 4 != 0 || trieBytes > blob.Length - 4)
            throw new InvalidDataException($"a precompiled_charsmap announces a trie of {trieBytes} bytes in a blob of {blob.Length}");
        var units = new uint[trieBytes / 4];
        for (int i = 0; i < units.Length; i++) units[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob.Slice(4 + 4 * i));
        return new PrecompiledCharsMap(units, blob.Slice(4 + (int)trieBytes).ToArray());
    }

    /// <summary>The text with every longest match replaced.</summary>
    public string Normalize(string text)
    {
        byte[] input = Encoding.UTF8.GetBytes(text);
        var output = new MemoryStream(input.Length);
        bool changed = false;
        for (int at = 0; at < input.Length;)
        {
            (int length, int value) = LongestMatch(input.AsSpan(at));
            if (length == 0)
            {
                int character = CharacterLength(input[at]);
                character = Math.Min(character, input.Length - at);
                output.Write(input, at, character);
                at += character;
                continue;
            }

            int end = Array.IndexOf(_pool, (byte)0, value);
            if (value >= _pool.Length || end < 0) throw new InvalidDataException($"a precompiled_charsmap value {value} points outside its pool of {_pool.Length} bytes");
            output.Write(_pool, value, end - value);
            changed = true;
            at += length;
        }

        return changed ? Encoding.UTF8.GetString(output.GetBuffer(), 0, (int)output.Length) : text;
    }

    // darts-clone's commonPrefixSearch, keeping the longest key: a unit holds its label in bits 0–7, "has a leaf" in bit
    // 8 and the offset to its children in bits 10–30 (scaled by 256 when bit 9 is set); a leaf unit holds the value.
    private (int Length, int Value) LongestMatch(ReadOnlySpan<byte> key)
    {
        int longest = 0, value = 0;
        uint position = Offset(_units[0]);
        for (int i = 0; i < key.Length; i++)
        {
            position ^= key[i];
            if (position >= _units.Length) break;
            uint unit = _units[position];
            if ((unit & ((1u << 31) | 0xFF)) != key[i]) break;
            position ^= Offset(unit);
            if ((unit & (1u << 8)) != 0 && position < _units.Length)
            {
                longest = i + 1;
                value = (int)(_units[position] & ((1u << 31) - 1));
            }
        }

        return (longest, value);
    }

    private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);

    // The bytes of the UTF-8 sequence a lead byte starts (1 for a stray continuation byte, as SentencePiece copies it).
    private static int CharacterLength(byte lead) => lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
}
