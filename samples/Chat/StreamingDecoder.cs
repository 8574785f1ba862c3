using System.Collections.Generic;
using System.Runtime.InteropServices;
using TransformerGen.Tokenizers;

namespace ChatSample;

/// <summary>
/// Turns tokens into text as they are generated. A token can end in the middle of a character (byte-level BPE splits
/// "é" into two byte tokens, an emoji into up to four), and a token's text can depend on the one before it
/// (SentencePiece drops the leading space only at the start), so each step decodes the whole reply and hands out
/// what was not handed out before, holding it back while the text ends in U+FFFD (bytes that do not yet make a
/// character), as transformers' <c>TextStreamer</c> does.
/// </summary>
public sealed class StreamingDecoder(PretrainedTokenizer tokenizer)
{
    private const char Incomplete = '\uFFFD';

    private readonly List<int> _ids = [];
    private int _written;

    /// <summary>Adds a token and returns the text it completes (empty while a character is unfinished).</summary>
    public string Push(int id)
    {
        _ids.Add(id);
        string text = tokenizer.Decode(CollectionsMarshal.AsSpan(_ids));
        return text.Length > 0 && text[^1] == Incomplete ? "" : Take(text);
    }

    /// <summary>The text still held back at the end of a reply (bytes that never became a character, as U+FFFD).</summary>
    public string Flush() => Take(tokenizer.Decode(CollectionsMarshal.AsSpan(_ids)));

    private string Take(string text)
    {
        if (text.Length <= _written)
        {
            return "";
        }

        string added = text[_written..];
        _written = text.Length;
        return added;
    }
}
