using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;

namespace TransformerGen.Tokenizers.Tests.Support;

/// <summary>
/// Writes byte-level BPE files (vocab.json, merges.txt) as GPT-2 and Qwen2 have them: each byte is a printable
/// character (GPT-2's bytes_to_unicode, written out again here from its definition in openai/gpt-2 encoder.py),
/// the 256 byte symbols are ids 0–255 in that table's order, and each merge adds the next id.
/// </summary>
internal static class ByteLevelFiles
{
    private static readonly char[] ByteToChar = BuildByteToChar();

    // bytes_to_unicode(): printable Latin-1 bytes (! to ~, ¡ to ¬, ® to ÿ) stand for themselves; the other 68
    // bytes, in increasing order, become U+0100, U+0101, … so that none is whitespace or a control character.
    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)(256 + next++);
        }

        return map;
    }

    /// <summary>The byte symbols in id order: printable bytes first (33–126, 161–172, 174–255), then the others.</summary>
    public static IEnumerable<byte> BytesInIdOrder() =>
        Enumerable.Range(0, 256).Select(b => (byte)b)
            .OrderBy(b => ByteToChar[b] >= 256 ? 1 : 0)
            .ThenBy(b => b);

    /// <summary>A text as its byte-level symbol string: " world" → "Ġworld", "é" → "Ã©".</summary>
    public static string Symbols(string text) => Symbols(Encoding.UTF8.GetBytes(text));

    public static string Symbols(ReadOnlySpan<byte> bytes)
    {
        var symbols = new StringBuilder(bytes.Length);
        foreach (byte b in bytes)
        {
            symbols.Append(ByteToChar[b]);
        }

        return symbols.ToString();
    }

    /// <summary>
    /// Vocabulary of the 256 bytes plus one token per merge, in order. Merges are pairs of symbol strings
    /// (<see cref="Symbols(string)"/>), so that a pair can split a character's bytes: ("Ã", "©") joins "é".
    /// </summary>
    public static (Dictionary<string, int> Vocabulary, List<string> Merges) Build(params (string Left, string Right)[] merges)
    {
        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (byte b in BytesInIdOrder())
        {
            vocabulary.Add(ByteToChar[b].ToString(), vocabulary.Count);
        }

        var mergeLines = new List<string>();
        foreach ((string left, string right) in merges)
        {
            mergeLines.Add(left + " " + right);
            vocabulary.Add(left + right, vocabulary.Count);
        }

        return (vocabulary, mergeLines);
    }

    public static void Write(TempFolder folder, Dictionary<string, int> vocabulary, IEnumerable<string> merges)
    {
        folder.Write("vocab.json", JsonSerializer.Serialize(vocabulary));
        folder.Write("merges.txt", "#version: 0.2\n" + string.Join("\n", merges) + "\n");
    }
}
