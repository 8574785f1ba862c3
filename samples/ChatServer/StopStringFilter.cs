using System;
using System.Collections.Generic;
using ChatSample;

namespace TransformerGen.ChatServer;

/// <summary>
/// A reply's text as its tokens come, cut at the first of the request's <c>stop</c> strings. The text is the Chat
/// sample's <see cref="StreamingDecoder"/>'s (whole characters: a token that ends inside one waits for the next), so a stop
/// string is found in decoded text wherever it falls: across tokens, inside one, or ending in the middle of one. What is
/// handed out never includes text that may still turn out to belong to a stop string: a tail of the text that is the
/// beginning of a stop string is held back until the text goes on differently (or the reply ends).
/// </summary>
/// <remarks>Without stop strings it hands out exactly what the decoder does.</remarks>
internal sealed class StopStringFilter(StreamingDecoder decoder, IReadOnlyList<string> stops)
{
    private readonly int _longest = Longest(stops);
    private string _text = "";
    private int _released;
    private int _stopAt = -1;

    /// <summary>Whether a stop string has appeared: the reply ends, and no more tokens are taken.</summary>
    public bool Stopped => _stopAt >= 0;

    /// <summary>The reply so far: the text before the stop string once one has appeared (held-back text included otherwise).</summary>
    public string Reply => Stopped ? _text[.._stopAt] : _text;

    /// <summary>Adds a token and returns the text that can go out now (empty while a character is unfinished or the text might begin a stop string).</summary>
    /// <exception cref="InvalidOperationException">A stop string has already appeared.</exception>
    public string Push(int token)
    {
        if (Stopped) throw new InvalidOperationException("The reply has ended at a stop string.");
        return Add(decoder.Push(token), end: false);
    }

    /// <summary>At the end of the reply: the text still held back (up to a stop string if the last characters complete one).</summary>
    public string Flush() => Stopped ? "" : Add(decoder.Flush(), end: true);

    private string Add(string piece, bool end)
    {
        // A stop string not found before must end in the new piece, so it starts at most _longest − 1 characters before it.
        int searchFrom = Math.Max(0, _text.Length - _longest + 1);
        _text += piece;
        if (piece.Length > 0)
        {
            foreach (string stop in stops)
            {
                int at = _text.IndexOf(stop, searchFrom, StringComparison.Ordinal);
                if (at >= 0 && (_stopAt < 0 || at < _stopAt)) _stopAt = at;
            }
        }
        return Release(Stopped ? _stopAt : end ? _text.Length : _text.Length - HeldBack());
    }

    /// <summary>The length of the longest end of the text that is the beginning of a stop string (shorter than the stop string).</summary>
    private int HeldBack()
    {
        ReadOnlySpan<char> text = _text;
        for (int length = Math.Min(_longest - 1, text.Length); length > 0; length--)
        {
            ReadOnlySpan<char> tail = text[^length..];
            foreach (string stop in stops)
                if (stop.Length > length && stop.AsSpan().StartsWith(tail, StringComparison.Ordinal)) return length;
        }
        return 0;
    }

    /// <summary>Hands out the text up to <paramref name="end"/> not handed out before.</summary>
    private string Release(int end)
    {
        if (end <= _released) return "";
        string released = _text[_released..end];
        _released = end;
        return released;
    }

    private static int Longest(IReadOnlyList<string> stops)
    {
        int longest = 0;
        foreach (string stop in stops) longest = Math.Max(longest, stop.Length);
        return longest;
    }
}
