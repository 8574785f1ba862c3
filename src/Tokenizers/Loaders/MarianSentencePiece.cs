using System;
using System.Collections.Generic;
using System.Text;
using Microsoft.ML.Tokenizers;
using TransformerGen.Tokenizers.Folder;
using TransformerGen.Tokenizers.PreTokenization;

namespace TransformerGen.Tokenizers.Loaders;

/// <summary>
/// One side of transformers' <c>MarianTokenizer</c> (tokenization_marian.py): a SentencePiece model
/// (<c>source.spm</c> or <c>target.spm</c>) segments the text into pieces, and the pieces are looked up by their
/// text in a vocabulary of the model's own (<c>vocab.json</c> or <c>target_vocab.json</c>), whose ids have nothing
/// to do with the SentencePiece ids. The segmentation is <see cref="SentencePieceTokenizer"/>'s.
/// </summary>
/// <remarks>
/// A vocabulary is usually shared by both sides, so it holds pieces of both SentencePiece models: a piece that
/// one model does not know can still have an id. transformers looks pieces up as text (<c>encode(…, out_type=str)</c>),
/// so a character unknown to the source model whose text is a target piece gets that piece's id, not
/// <c>&lt;unk&gt;</c>; the same happens here.
/// </remarks>
internal sealed class MarianSentencePiece
{
    // SentencePiece writes the <unk> piece as " ⁇ " (kDefaultUnknownSymbol) when it decodes it.
    private const string UnknownSurface = " \u2047 ";

    private readonly SentencePieceTokenizer _model;
    private readonly IReadOnlyDictionary<string, int> _modelPieces;
    private readonly IReadOnlyDictionary<string, int> _vocabulary;
    private readonly Dictionary<int, string> _pieceOfId;
    private readonly AddedTokenSplitter _addedTokens;
    private readonly HashSet<string> _specialTokens;
    private readonly int _unknownId;

    /// <param name="model">The SentencePiece model, made without BOS/EOS and without special tokens.</param>
    /// <param name="vocabulary">Piece → id (vocab.json or target_vocab.json).</param>
    /// <param name="addedTokens">Tokens kept whole wherever they are written (&lt;unk&gt;, &lt;/s&gt;, &lt;pad&gt;, …), with this side's ids.</param>
    /// <param name="unknownId">The id pieces missing from <paramref name="vocabulary"/> get.</param>
    public MarianSentencePiece(SentencePieceTokenizer model, IReadOnlyDictionary<string, int> vocabulary, IReadOnlyList<AddedToken> addedTokens, int unknownId)
    {
        _model = model;
        _modelPieces = model.Vocabulary;
        _vocabulary = vocabulary;
        _addedTokens = new AddedTokenSplitter(addedTokens);
        _unknownId = unknownId;

        // As transformers' {v: k for k, v in encoder.items()}: a later piece with the same id wins.
        _pieceOfId = new Dictionary<int, string>(vocabulary.Count);
        foreach ((string piece, int id) in vocabulary)
        {
            _pieceOfId[id] = piece;
        }

        _specialTokens = new HashSet<string>(StringComparer.Ordinal);
        foreach (AddedToken token in addedTokens)
        {
            if (token.Special)
            {
                _specialTokens.Add(token.Content);
            }
        }
    }

    /// <summary>
    /// Encodes a text without the closing &lt;/s&gt;: added tokens are kept whole, and each stretch of text between
    /// them loses a language code written at its start (<c>&gt;&gt;fra&lt;&lt;</c>, one token) before SentencePiece
    /// segments the rest (transformers' <c>remove_language_code</c> and <c>_tokenize</c>).
    /// </summary>
    public List<int> Encode(string text)
    {
        var ids = new List<int>();
        foreach (TextSegment segment in _addedTokens.Split(text))
        {
            if (segment.TokenId is int token)
            {
                ids.Add(token);
                continue;
            }

            string stretch = text.Substring(segment.Start, segment.Length);
            if (LanguageCodeLength(stretch) is int codeLength)
            {
                ids.Add(IdOf(stretch[..codeLength]));
                stretch = stretch[codeLength..];
            }

            foreach (string piece in Pieces(stretch))
            {
                ids.Add(IdOf(piece));
            }
        }

        return ids;
    }

    /// <summary>
    /// Decodes as transformers' <c>convert_tokens_to_string</c>: the pieces between special tokens are decoded by
    /// the SentencePiece model, each special token is written as its text and a space, "▁" becomes a space and the
    /// ends are stripped.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is not in the vocabulary.</exception>
    public string Decode(IEnumerable<int> ids)
    {
        var text = new StringBuilder();
        var pieces = new List<string>();
        foreach (int id in ids)
        {
            if (!_pieceOfId.TryGetValue(id, out string? piece))
            {
                throw new ArgumentOutOfRangeException(nameof(ids), id, "The id is not in the vocabulary (vocab.json, or target_vocab.json when the vocabularies are separate).");
            }

            if (_specialTokens.Contains(piece))
            {
                AppendDecodedPieces(text, pieces);
                text.Append(piece).Append(' ');
                pieces.Clear();
            }
            else
            {
                pieces.Add(piece);
            }
        }

        AppendDecodedPieces(text, pieces);
        return text.Replace('▁', ' ').ToString().Trim();
    }

    // transformers' remove_language_code: a text that starts with ">>" loses everything up to the first "<<".
    private static int? LanguageCodeLength(string text)
    {
        if (!text.StartsWith(">>", StringComparison.Ordinal))
        {
            return null;
        }

        int end = text.IndexOf("<<", StringComparison.Ordinal);
        return end < 0 ? null : end + 2;
    }

    private int IdOf(string piece) => _vocabulary.TryGetValue(piece, out int id) ? id : _unknownId;

    // SentencePiece's pieces as text (EncodeAsPieces). The library gives an unknown piece per character, with the
    // character as its value; SentencePiece joins a run of them into one piece (PopulateSentencePieceText: "Merges
    // continuous run of unknown pieces"), whose text is then looked up as a whole.
    private List<string> Pieces(string text)
    {
        var pieces = new List<string>();
        var unknownRun = new StringBuilder();
        foreach (EncodedToken token in _model.EncodeToTokens(text, out _, addBeginningOfSentence: false, addEndOfSentence: false))
        {
            if (token.Id == _model.UnknownId)
            {
                unknownRun.Append(token.Value);
                continue;
            }

            if (unknownRun.Length > 0)
            {
                pieces.Add(unknownRun.ToString());
                unknownRun.Clear();
            }

            pieces.Add(token.Value);
        }

        if (unknownRun.Length > 0)
        {
            pieces.Add(unknownRun.ToString());
        }

        return pieces;
    }

    // SentencePiece's DecodePieces (sentencepiece_processor.cc, Decode): control pieces vanish, the <unk> piece is
    // " ⁇ ", a piece the model does not know is written as it is, and while nothing has been written yet a
    // piece's leading "▁" (the dummy prefix) is dropped.
    private void AppendDecodedPieces(StringBuilder text, List<string> pieces)
    {
        int start = text.Length;
        foreach (string piece in pieces)
        {
            if (!_modelPieces.TryGetValue(piece, out int id))
            {
                text.Append(piece);
            }
            else if (id == _model.UnknownId)
            {
                text.Append(UnknownSurface);
            }
            else if (id != _model.BeginningOfSentenceId && id != _model.EndOfSentenceId)
            {
                bool atStart = text.Length == start && _model.AddDummyPrefix && piece.StartsWith('▁');
                text.Append(piece, atStart ? 1 : 0, atStart ? piece.Length - 1 : piece.Length);
            }
        }
    }
}
