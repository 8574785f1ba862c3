using System;
using System.Collections.Generic;
using System.IO;
using TransformerGen.Tokenizers.Normalization;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;

namespace TransformerGen.Tokenizers.Tests;

/// <summary>
/// The reader of SentencePiece's precompiled_charsmap, against maps written by the tests' own darts-clone writer: the
/// longest key wins at each position, unmatched characters (of any UTF-8 length) are copied, replacements may be longer,
/// shorter or empty, and a malformed blob is refused.
/// </summary>
public class PrecompiledCharsMapTests
{
    private static PrecompiledCharsMap Map(Dictionary<string, string> rules) => PrecompiledCharsMap.Parse(PrecompiledCharsMapWriter.Write(rules));

    [Fact]
    public void The_longest_key_starting_at_each_position_is_replaced_and_other_characters_are_copied()
    {
        PrecompiledCharsMap map = Map(new() { ["Ａ"] = "A", ["ｆｉ"] = "fi", ["ｆ"] = "f", ["…"] = "...", ["\u200B"] = "" });
        Assert.Equal("A fine...word", map.Normalize("Ａ ｆｉne…\u200Bword"));
        Assert.Equal("f", map.Normalize("ｆ"));
        Assert.Equal("é😀中", map.Normalize("é😀中")); // 2-, 4- and 3-byte characters without a rule stay
        string same = "no rule applies";
        Assert.Same(same, map.Normalize(same));
    }

    [Fact]
    public void The_nfkc_maps_of_the_tests_agree_with_dotnets_nfkc_on_their_keys()
    {
        string[] keys = ["Ｈ", "，", "。", "①", "ﬁ", "Å"];
        PrecompiledCharsMap map = PrecompiledCharsMap.Parse(PrecompiledCharsMapWriter.Nfkc(keys));
        foreach (string key in keys) Assert.Equal(key.Normalize(System.Text.NormalizationForm.FormKC), map.Normalize(key));
    }

    [Fact]
    public void A_blob_shorter_than_its_trie_is_refused()
    {
        byte[] blob = PrecompiledCharsMapWriter.Write(new Dictionary<string, string> { ["Ａ"] = "A" });
        Assert.Throws<InvalidDataException>(() => PrecompiledCharsMap.Parse(blob.AsSpan(0, 8)));
        Assert.Throws<InvalidDataException>(() => PrecompiledCharsMap.Parse(new byte[3]));
    }
}
