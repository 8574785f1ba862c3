using System;
using System.Collections.Generic;
using System.Text;
using Microsoft.ML.Tokenizers;
using TransformerGen.Tokenizers.PreTokenization;

namespace TransformerGen.Tokenizers.Loaders;

/// <summary>
/// A SentencePiece model whose ids are renumbered into fairseq's dictionary, as transformers'
/// <c>XLMRobertaTokenizer</c> does (<c>_convert_token_to_id</c>, <c>_convert_id_to_token</c>,
/// <c>convert_tokens_to_string</c>). The segmentation itself is <see cref="SentencePieceTokenizer"/>'s.
/// </summary>
/// <remarks>
/// <code>
/// id        0      1       2       3       4     5     …
/// fairseq   &lt;s&gt;    &lt;pad&gt;   &lt;/s&gt;    &lt;unk&gt;   ","   "."   …   &lt;mask&gt; = pieces + 1
/// spm       &lt;unk&gt;  &lt;s&gt;     &lt;/s&gt;    ","     "."   "▁"   …
/// </code>
/// A piece p ≥ 3 is p + 1, SentencePiece's unknown is fairseq's <c>&lt;unk&gt;</c>.
/// </remarks>
internal sealed class FairseqSentencePiece
{
    /// <summary>transformers' <c>fairseq_offset</c>: the first real piece is 3 in the model and 4 in fairseq's dictionary.</summary>
    public const int Offset = 1;

    private readonly SentencePieceTokenizer _model;
    private readonly AddedTokenSplitter _addedTokens;
    private readonly int _unknownId;
    private readonly IReadOnlyDictionary<int, string> _addedTokenText;
    private readonly string?[] _pieces;

    /// <param name="model">The SentencePiece model, made without BOS/EOS and without special tokens (the ids it returns are its own).</param>
    /// <param name="addedTokens">Splits the text at the added tokens, whose ids are already fairseq's.</param>
    /// <param name="unknownId">The fairseq id of <c>&lt;unk&gt;</c> (3).</param>
    /// <param name="addedTokenText">Fairseq id → text of every added token, for decoding.</param>
    public FairseqSentencePiece(SentencePieceTokenizer model, AddedTokenSplitter addedTokens, int unknownId, IReadOnlyDictionary<int, string> addedTokenText)
    {
        _model = model;
        _addedTokens = addedTokens;
        _unknownId = unknownId;
        _addedTokenText = addedTokenText;

        _pieces = new string?[ModelPieceCount(model)];
        foreach ((string piece, int id) in model.Vocabulary)
        {
            _pieces[id] = piece;
        }
    }

    /// <summary>
    /// The number of pieces in the model (<c>len(sp_model)</c>). The library's vocabulary leaves out byte pieces,
    /// which SentencePiece numbers before the normal ones, so the highest id it lists is the model's last piece.
    /// </summary>
    public static int ModelPieceCount(SentencePieceTokenizer model)
    {
        int highest = -1;
        foreach (int id in model.Vocabulary.Values)
        {
            highest = Math.Max(highest, id);
        }

        return highest + 1;
    }

    /// <summary>The fairseq id of a piece of the model, or null when the model has no such piece.</summary>
    public int? PieceId(string piece) =>
        _model.Vocabulary.TryGetValue(piece, out int id) && id != _model.UnknownId ? id + Offset : null;

    /// <summary>Encodes a text without special tokens around it; added tokens written in it are kept whole.</summary>
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

            // SentencePiece joins a run of unknown characters into one unknown piece (PopulateSentencePieceText:
            // "Merges continuous run of unknown pieces"), so transformers sees one <unk>; the library gives one
            // per character.
            bool previousUnknown = false;
            foreach (int piece in _model.EncodeToIds(text.Substring(segment.Start, segment.Length), addBeginningOfSentence: false, addEndOfSentence: false))
            {
                bool unknown = piece == _model.UnknownId;
                if (!(unknown && previousUnknown))
                {
                    ids.Add(unknown ? _unknownId : piece + Offset);
                }

                previousUnknown = unknown;
            }
        }

        return ids;
    }

    /// <summary>
    /// Decodes as <c>convert_tokens_to_string</c>: the tokens' texts joined, "▁" made a space, the ends stripped.
    /// Added tokens are written as their text.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is neither an added token nor a piece of the model.</exception>
    public string Decode(IEnumerable<int> ids)
    {
        var text = new StringBuilder();
        foreach (int id in ids)
        {
            if (_addedTokenText.TryGetValue(id, out string? added))
            {
                text.Append(added);
            }
            else if (id - Offset is int piece && piece >= 0 && piece < _pieces.Length && _pieces[piece] is string pieceText)
            {
                text.Append(pieceText);
            }
            else
            {
                throw new ArgumentOutOfRangeException(nameof(ids), id, "The id is neither an added token nor a piece of the SentencePiece model.");
            }
        }

        return text.Replace('▁', ' ').ToString().Trim();
    }
}
