using System;
using System.Collections.Generic;
using System.Text;
using System.Text.RegularExpressions;

namespace TransformerGen.Tokenizers.PreTokenization;

/// <summary>One step of a Hugging Face pre-tokenizer sequence: splits one piece of the text into smaller pieces.</summary>
internal abstract class SplitStep
{
    /// <summary>Splits <c>text[offset..offset+length)</c>, appending the pieces (offsets into <paramref name="text"/>) in order.</summary>
    public abstract void Split(string text, int offset, int length, List<(int Offset, int Length)> pieces);
}

/// <summary>
/// tokenizers' <c>Split</c> with behavior <c>Isolated</c> (and ByteLevel's regex): each match is a piece, and so
/// is each stretch between matches. The regex sees only the piece, as in Hugging Face, where every step works on
/// the pieces the previous one made: a look-ahead at a piece's end sees the end of the text.
/// </summary>
internal sealed class RegexSplitStep(Regex regex) : SplitStep
{
    public Regex Regex { get; } = regex;

    public override void Split(string text, int offset, int length, List<(int Offset, int Length)> pieces)
    {
        int position = 0;
        foreach (ValueMatch match in Regex.EnumerateMatches(text.AsSpan(offset, length)))
        {
            if (match.Length == 0)
            {
                continue;
            }

            if (match.Index > position)
            {
                pieces.Add((offset + position, match.Index - position));
            }

            pieces.Add((offset + match.Index, match.Length));
            position = match.Index + match.Length;
        }

        if (position < length)
        {
            pieces.Add((offset + position, length - position));
        }
    }
}

/// <summary>
/// tokenizers' <c>Digits</c>: numeric characters (Rust <c>char::is_numeric</c>: categories Nd, Nl, No, the same
/// set as <see cref="Rune.IsNumber"/>) split from the rest, each one alone when <c>individual_digits</c> is true,
/// else in runs.
/// </summary>
internal sealed class DigitsSplitStep(bool individualDigits) : SplitStep
{
    public override void Split(string text, int offset, int length, List<(int Offset, int Length)> pieces)
    {
        int end = offset + length;
        int runStart = offset;
        bool runIsNumber = false;
        int i = offset;
        while (i < end)
        {
            Rune.DecodeFromUtf16(text.AsSpan(i, end - i), out Rune rune, out int width);
            bool isNumber = Rune.IsNumber(rune);
            if (i > runStart && (isNumber != runIsNumber || (isNumber && individualDigits)))
            {
                pieces.Add((runStart, i - runStart));
                runStart = i;
            }

            runIsNumber = isNumber;
            i += width;
        }

        if (end > runStart)
        {
            pieces.Add((runStart, end - runStart));
        }
    }
}
