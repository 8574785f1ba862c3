using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace TransformerGen.Tokenizers.PreTokenization;

/// <summary>
/// A Hugging Face pre-tokenizer <c>Sequence</c> of more than one split (SmolLM2: <c>Digits</c>, then ByteLevel's
/// GPT-2 regex), which one regex cannot express: the second step runs on each piece of the first. Added tokens are
/// cut out first and never split, as tokenizers' AddedVocabulary does. A single regex needs none of this and uses
/// the library's <see cref="RegexPreTokenizer"/>.
/// </summary>
internal sealed class SplitPipelinePreTokenizer : PreTokenizer
{
    private readonly SplitStep[] _steps;
    private readonly Regex? _addedTokens;

    public SplitPipelinePreTokenizer(IReadOnlyList<SplitStep> steps, IReadOnlyDictionary<string, int>? addedTokens)
    {
        _steps = [.. steps];
        if (addedTokens is { Count: > 0 })
        {
            // Longest first: .NET alternation takes the first alternative that matches, Hugging Face the longest.
            IEnumerable<string> alternatives = addedTokens.Keys
                .OrderByDescending(token => token.Length)
                .ThenBy(token => token, StringComparer.Ordinal)
                .Select(Regex.Escape);
            _addedTokens = new Regex(string.Join("|", alternatives), RegexOptions.CultureInvariant | RegexOptions.Compiled);
        }
    }

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return [];
        }

        var pieces = new List<(int Offset, int Length)>();
        int position = 0;
        if (_addedTokens is not null)
        {
            foreach (ValueMatch match in _addedTokens.EnumerateMatches(text))
            {
                SplitText(text, position, match.Index - position, pieces);
                pieces.Add((match.Index, match.Length));
                position = match.Index + match.Length;
            }
        }

        SplitText(text, position, text.Length - position, pieces);
        return pieces;
    }

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => PreTokenize(text.ToString());

    private void SplitText(string text, int offset, int length, List<(int Offset, int Length)> output)
    {
        if (length == 0)
        {
            return;
        }

        List<(int Offset, int Length)> current = [(offset, length)];
        foreach (SplitStep step in _steps)
        {
            var next = new List<(int Offset, int Length)>(current.Count * 2);
            foreach ((int pieceOffset, int pieceLength) in current)
            {
                step.Split(text, pieceOffset, pieceLength, next);
            }

            current = next;
        }

        output.AddRange(current);
    }
}
