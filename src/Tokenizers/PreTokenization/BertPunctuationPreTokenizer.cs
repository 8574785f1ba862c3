using System;
using System.Collections.Generic;
using System.Globalization;
using Microsoft.ML.Tokenizers;

namespace TransformerGen.Tokenizers.PreTokenization;

/// <summary>
/// The words of transformers' <c>BasicTokenizer</c> (after its lower-casing, accent stripping and CJK spacing, which
/// Microsoft.ML.Tokenizers' BERT normalizer does): the text split at whitespace, and every punctuation character a word
/// of its own. Punctuation is BERT's <c>_is_punctuation</c>: the ASCII ranges 33–47, 58–64, 91–96 and 123–126 (which
/// hold symbols such as <c>$</c>, <c>+</c>, <c>=</c>, <c>^</c>, <c>|</c>) and every Unicode category P (<c>_</c> included).
/// Other symbols (<c>€</c>, <c>°</c>, <c>×</c>) stay inside their word. Microsoft.ML.Tokenizers' own BERT pre-tokenizer
/// drops the ASCII symbols and keeps <c>_</c> inside words; this one is given to it instead. The special tokens
/// (<c>[MASK]</c>, …) written in a text stay whole, whatever case the normalizer left them in.
/// </summary>
internal sealed class BertPunctuationPreTokenizer(IReadOnlyCollection<string> specialTokens) : PreTokenizer
{
    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text)
    {
        var words = new List<(int Offset, int Length)>();
        int start = -1;
        for (int i = 0; i < text.Length; i++)
        {
            if (SpecialTokenAt(text, i) is int special)
            {
                if (start >= 0) words.Add((start, i - start));
                start = -1;
                words.Add((i, special));
                i += special - 1;
                continue;
            }

            char c = text[i];
            if (char.IsWhiteSpace(c) || IsPunctuation(c))
            {
                if (start >= 0) words.Add((start, i - start));
                start = -1;
                if (!char.IsWhiteSpace(c)) words.Add((i, 1));
            }
            else if (start < 0)
            {
                start = i;
            }
        }

        if (start >= 0) words.Add((start, text.Length - start));
        return words;
    }

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => PreTokenize(text.ToString());

    // The length of the special token that starts at `at`, or null.
    private int? SpecialTokenAt(string text, int at)
    {
        foreach (string token in specialTokens)
            if (token.Length > 0 && string.Compare(text, at, token, 0, token.Length, StringComparison.OrdinalIgnoreCase) == 0 && at + token.Length <= text.Length)
                return token.Length;
        return null;
    }

    /// <summary>transformers' <c>_is_punctuation</c>.</summary>
    internal static bool IsPunctuation(char c) =>
        c is >= '!' and <= '/' or >= ':' and <= '@' or >= '[' and <= '`' or >= '{' and <= '~'
        || char.GetUnicodeCategory(c) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
}
