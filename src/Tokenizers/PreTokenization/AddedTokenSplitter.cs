using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;
using TransformerGen.Tokenizers.Folder;

namespace TransformerGen.Tokenizers.PreTokenization;

/// <summary>A stretch of text between added tokens, or one added token (<see cref="TokenId"/> set).</summary>
internal readonly record struct TextSegment(int Start, int Length, int? TokenId);

/// <summary>
/// Cuts a text at its added tokens before the model sees it, as transformers' <c>tokenize</c> does: the leftmost
/// and then longest token wins, the text between tokens is tokenized on its own, and a token with <c>lstrip</c>
/// (<c>rstrip</c>) takes in the whitespace before (after) it. Used where the library tokenizer is given no
/// special tokens of its own (SentencePiece Unigram, whose ids are remapped after encoding; Gemma's BPE, whose added
/// tokens transformers matches in the raw text).
/// </summary>
internal sealed class AddedTokenSplitter
{
    private readonly Regex? _pattern;
    private readonly Dictionary<string, AddedToken> _tokens;

    /// <param name="tokens">The added tokens; a later entry with the same content replaces an earlier one.</param>
    public AddedTokenSplitter(IEnumerable<AddedToken> tokens)
    {
        _tokens = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        foreach (AddedToken token in tokens)
        {
            if (token.Content.Length > 0)
            {
                _tokens[token.Content] = token;
            }
        }

        if (_tokens.Count > 0)
        {
            // Longest first: .NET alternation takes the first alternative that matches, Hugging Face the longest.
            IEnumerable<string> alternatives = _tokens.Keys
                .OrderByDescending(token => token.Length)
                .ThenBy(token => token, StringComparer.Ordinal)
                .Select(Regex.Escape);
            RegexOptions options = RegexOptions.CultureInvariant | (_tokens.Count <= CompiledTokenLimit ? RegexOptions.Compiled : RegexOptions.None);
            _pattern = new Regex(string.Join("|", alternatives), options);
        }
    }

    // Compiled, an alternation of a few hundred tokens (NLLB's language codes) matches fastest. Gemma 3's ~6,400
    // (its <unusedN> pieces among them) compile to so much IL that the first match took 3 s and each later one
    // 300 ms over 150,000 characters, where the interpreter took 15–20 ms.
    private const int CompiledTokenLimit = 1000;

    /// <summary>The segments of <paramref name="text"/> in order; empty stretches of text are left out.</summary>
    public List<TextSegment> Split(string text)
    {
        var segments = new List<TextSegment>();
        int position = 0;
        bool stripNext = false;
        if (_pattern is not null)
        {
            foreach (ValueMatch match in _pattern.EnumerateMatches(text))
            {
                AddedToken token = _tokens[text.Substring(match.Index, match.Length)];
                AddText(text, position, match.Index, stripNext, token.LStrip, segments);
                segments.Add(new TextSegment(match.Index, match.Length, token.Id));
                position = match.Index + match.Length;
                stripNext = token.RStrip;
            }
        }

        AddText(text, position, text.Length, stripNext, stripEnd: false, segments);
        return segments;
    }

    // transformers strips with Python's str.lstrip()/rstrip(): every Unicode whitespace, as char.IsWhiteSpace.
    private static void AddText(string text, int start, int end, bool stripStart, bool stripEnd, List<TextSegment> segments)
    {
        while (stripStart && start < end && char.IsWhiteSpace(text[start]))
        {
            start++;
        }

        while (stripEnd && end > start && char.IsWhiteSpace(text[end - 1]))
        {
            end--;
        }

        if (end > start)
        {
            segments.Add(new TextSegment(start, end - start, null));
        }
    }
}
