using System.Text;

namespace TransformerGen.ByteLevel;

/// <summary>
/// GPT-2's byte-to-character table (<c>bytes_to_unicode</c> in its <c>encoder.py</c>), in which byte-level BPE
/// vocabularies spell their tokens: the printable Latin-1 bytes stand for themselves, the other 68 bytes for the
/// characters from U+0100 on, in byte order (a space is <c>Ġ</c>, a newline <c>Ċ</c>).
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>The character of each byte, by byte.</summary>
    public static readonly char[] Characters = Build();

    /// <summary>How a byte-level vocabulary spells <paramref name="text"/>: its UTF-8 bytes, each as its character.</summary>
    public static string Spell(string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        var spelled = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) spelled[i] = Characters[bytes[i]];
        return new string(spelled);
    }

    private static char[] Build()
    {
        var table = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? (char)b : (char)(256 + next++);
        }
        return table;
    }
}
