using System;
using System.Diagnostics.CodeAnalysis;

namespace TransformerGen;

/// <summary>
/// A character-level tokenizer: token i is the i-th character of <see cref="Alphabet"/>. Works on UTF-16
/// code units (a character outside the Basic Multilingual Plane is two tokens, its surrogates).
/// </summary>
/// <remarks>Lookups go through a table indexed by the character, so encoding is one array read per character.</remarks>
public sealed class CharTokenizer
{
    private readonly string _alphabet;
    private readonly int[] _idByChar; // −1 for characters not in the alphabet; as long as the largest character + 1

    private CharTokenizer(string alphabet)
    {
        _alphabet = alphabet;
        int largest = 0;
        foreach (char c in alphabet) largest = Math.Max(largest, c);
        _idByChar = new int[largest + 1];
        Array.Fill(_idByChar, -1);
        for (int i = 0; i < alphabet.Length; i++)
        {
            char c = alphabet[i];
            if (_idByChar[c] >= 0)
                throw new ArgumentException($"the alphabet contains {Describe(c)} twice, at positions {_idByChar[c]} and {i}", nameof(alphabet));
            _idByChar[c] = i;
        }
    }

    /// <summary>
    /// A tokenizer whose alphabet is the distinct characters of <paramref name="text"/>, sorted by ordinal
    /// (code unit) value, as in Karpathy's char-level nanoGPT/makemore data preparation.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="text"/> is empty.</exception>
    public static CharTokenizer FromText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0) throw new ArgumentException("the text is empty: it gives no alphabet", nameof(text));
        var seen = new bool[char.MaxValue + 1];
        int distinct = 0;
        foreach (char c in text)
        {
            if (!seen[c]) { seen[c] = true; distinct++; }
        }
        var alphabet = new char[distinct];
        int next = 0;
        for (int c = 0; c <= char.MaxValue; c++)
            if (seen[c]) alphabet[next++] = (char)c;
        return new CharTokenizer(new string(alphabet));
    }

    /// <summary>A tokenizer with exactly this alphabet, in this order (token i is <c>alphabet[i]</c>).</summary>
    /// <exception cref="ArgumentException"><paramref name="alphabet"/> is empty or has a character twice.</exception>
    public static CharTokenizer FromAlphabet(string alphabet)
    {
        ArgumentNullException.ThrowIfNull(alphabet);
        if (alphabet.Length == 0) throw new ArgumentException("the alphabet is empty", nameof(alphabet));
        return new CharTokenizer(alphabet);
    }

    /// <summary>The number of tokens, <c>Alphabet.Length</c>.</summary>
    public int VocabSize => _alphabet.Length;

    /// <summary>The characters, in token order.</summary>
    public string Alphabet => _alphabet;

    /// <summary>Whether <paramref name="c"/> has a token.</summary>
    public bool Contains(char c) => c < _idByChar.Length && _idByChar[c] >= 0;

    /// <summary>The token of <paramref name="c"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="c"/> is not in the alphabet.</exception>
    public int Encode(char c)
    {
        int id = c < _idByChar.Length ? _idByChar[c] : -1;
        if (id < 0) ThrowUnknown(c, position: -1);
        return id;
    }

    /// <summary>Writes the token of each character of <paramref name="text"/> into <paramref name="tokens"/>. Allocates nothing.</summary>
    /// <param name="text">The characters to encode.</param>
    /// <param name="tokens">At least <c>text.Length</c> long; the first <c>text.Length</c> entries are written.</param>
    /// <exception cref="ArgumentException">A character is not in the alphabet (the message gives its position), or <paramref name="tokens"/> is too short.</exception>
    public void Encode(ReadOnlySpan<char> text, Span<int> tokens)
    {
        if (tokens.Length < text.Length)
            throw new ArgumentException($"the destination holds {tokens.Length} tokens but the text has {text.Length} characters", nameof(tokens));
        int[] idByChar = _idByChar;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            int id = c < idByChar.Length ? idByChar[c] : -1;
            if (id < 0) ThrowUnknown(c, i);
            tokens[i] = id;
        }
    }

    /// <summary>The character of token <paramref name="token"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="token"/> is not in [0, <see cref="VocabSize"/>).</exception>
    public char Decode(int token)
    {
        if ((uint)token >= (uint)_alphabet.Length) ThrowBadToken(token, position: -1);
        return _alphabet[token];
    }

    /// <summary>The text of <paramref name="tokens"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A token is not in [0, <see cref="VocabSize"/>) (the message gives its position).</exception>
    public string Decode(ReadOnlySpan<int> tokens)
    {
        Span<char> chars = tokens.Length <= 512 ? stackalloc char[tokens.Length] : new char[tokens.Length];
        for (int i = 0; i < tokens.Length; i++)
        {
            int token = tokens[i];
            if ((uint)token >= (uint)_alphabet.Length) ThrowBadToken(token, i);
            chars[i] = _alphabet[token];
        }
        return new string(chars);
    }

    private static string Describe(char c) =>
        char.IsControl(c) || char.IsWhiteSpace(c) || char.IsSurrogate(c) ? $"U+{(int)c:X4}" : $"'{c}' (U+{(int)c:X4})";

    [DoesNotReturn]
    private static void ThrowUnknown(char c, int position) =>
        throw new ArgumentException(position < 0
            ? $"character {Describe(c)} is not in the tokenizer's alphabet"
            : $"character {Describe(c)} at position {position} is not in the tokenizer's alphabet", position < 0 ? "c" : "text");

    [DoesNotReturn]
    private void ThrowBadToken(int token, int position) =>
        throw new ArgumentOutOfRangeException(position < 0 ? "token" : "tokens", token, position < 0
            ? $"token {token} is not in [0, {_alphabet.Length})"
            : $"token {token} at position {position} is not in [0, {_alphabet.Length})");
}
