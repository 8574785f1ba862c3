using System;
using System.Collections.Generic;
using System.Text;
using Microsoft.ML.Tokenizers;
using TransformerGen.Tokenizers.Folder;
using TransformerGen.Tokenizers.Normalization;
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
/// A piece p ≥ 3 is p + 1, SentencePiece's unknown is fairseq's <c>&lt;unk&gt;</c>. With an offset of 0 the ids are
/// the model's own, as T5's and Gemma's are (<see cref="T5Loader"/>, <see cref="GemmaLoader"/>): the class then only keeps
/// the added tokens whole, joins runs of unknown characters and decodes (Gemma decodes with its own decoder).
/// </remarks>
internal sealed class FairseqSentencePiece
{
    /// <summary>transformers' <c>fairseq_offset</c>: the first real piece is 3 in the model and 4 in fairseq's dictionary.</summary>
    public const int Offset = 1;

    private readonly SentencePieceTokenizer _model;
    private readonly AddedTokenSplitter _addedTokens;
    private readonly int _unknownId;
    private readonly int _offset;
    private readonly IReadOnlyDictionary<int, string> _addedTokenText;
    private readonly string?[] _pieces;
    private readonly bool _dropsSingleCharacters;
    private readonly PrecompiledCharsMap? _charsMap;

    /// <param name="model">The SentencePiece model, made without BOS/EOS and without special tokens (the ids it returns are its own).</param>
    /// <param name="addedTokens">Splits the text at the added tokens, whose ids are already fairseq's.</param>
    /// <param name="unknownId">The fairseq id of <c>&lt;unk&gt;</c> (3).</param>
    /// <param name="addedTokenText">Fairseq id → text of every added token, for decoding.</param>
    /// <param name="charsMap">
    /// The model's own normalization, for a model whose map the library does not apply (a BPE model: NLLB's); null when
    /// the library applies it (Unigram: XLM-R's) or there is none.
    /// </param>
    /// <param name="offset">What is added to a piece's id (<see cref="Offset"/> for fairseq, 0 for T5).</param>
    public FairseqSentencePiece(SentencePieceTokenizer model, AddedTokenSplitter addedTokens, int unknownId, IReadOnlyDictionary<int, string> addedTokenText,
        PrecompiledCharsMap? charsMap = null, int offset = Offset)
    {
        _model = model;
        _offset = offset;
        _charsMap = charsMap;
        _addedTokens = addedTokens;
        _unknownId = unknownId;
        _addedTokenText = addedTokenText;

        // Microsoft.ML.Tokenizers 3.0's SentencePieceNormalizer.Normalize(ReadOnlySpan<char>), which its BPE model
        // uses, returns "" for a text of one character once spaces are trimmed when remove_extra_whitespaces is set
        // ("if (startIndex == endIndex) return string.Empty;"), so NLLB's model encodes "a" or " ." as nothing.
        // SentencePiece never encodes a non-space character as nothing, so an empty answer for "a" shows the bug.
        _dropsSingleCharacters = model.EncodeToIds("a", addBeginningOfSentence: false, addEndOfSentence: false).Count == 0;

        _pieces = new string?[ModelPieceCount(model)];
        foreach ((string piece, int id) in model.Vocabulary)
        {
            _pieces[id] = piece;
        }
    }

    /// <summary>
    /// The tables a fairseq tokenizer keeps of its added tokens: text → id, id → text (for decoding), the special ids
    /// decoding skips, and the highest id (at least <paramref name="highestSoFar"/>).
    /// </summary>
    public static (Dictionary<string, int> Ids, Dictionary<int, string> Texts, HashSet<int> Skipped, int HighestId) AddedTokenTables(
        IEnumerable<AddedToken> addedTokens, int highestSoFar)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        var texts = new Dictionary<int, string>();
        var skipped = new HashSet<int>();
        int highest = highestSoFar;
        foreach (AddedToken added in addedTokens)
        {
            ids[added.Content] = added.Id;
            texts[added.Id] = added.Content;
            highest = Math.Max(highest, added.Id);
            if (added.Special)
            {
                skipped.Add(added.Id);
            }
        }

        return (ids, texts, skipped, highest);
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

    // The SentencePiece ids the fairseq layout assumes (<unk>=0, <s>=1, </s>=2), which XLM-R's and NLLB's models have.
    private const int ModelUnknownId = 0, ModelBosId = 1, ModelEosId = 2;

    /// <summary>Refuses a model whose &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt; are not the pieces fairseq's renumbering assumes.</summary>
    /// <param name="model">The model.</param>
    /// <param name="modelPath">Its file, for the message.</param>
    /// <param name="family">The tokenizer whose ids would be wrong ("XLM-RoBERTa", "NLLB"), for the message.</param>
    /// <exception cref="NotSupportedException">The model numbers them otherwise.</exception>
    public static void RequireFairseqLayout(SentencePieceTokenizer model, string modelPath, string family)
    {
        if (model.UnknownId != ModelUnknownId || model.BeginningOfSentenceId != ModelBosId || model.EndOfSentenceId != ModelEosId)
        {
            throw new NotSupportedException(
                $"{System.IO.Path.GetFileName(modelPath)} numbers <unk>, <s>, </s> as {model.UnknownId}, {model.BeginningOfSentenceId}, {model.EndOfSentenceId}; "
                + $"{family}'s fairseq ids assume {ModelUnknownId}, {ModelBosId}, {ModelEosId}.");
        }
    }

    /// <summary>The fairseq id of a piece of the model, or null when the model has no such piece.</summary>
    public int? PieceId(string piece) =>
        _model.Vocabulary.TryGetValue(piece, out int id) && id != _model.UnknownId ? id + _offset : null;

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
            string stretch = text.Substring(segment.Start, segment.Length);
            foreach (int piece in EncodeWithModel(_charsMap?.Normalize(stretch) ?? stretch))
            {
                bool unknown = piece == _model.UnknownId;
                if (!(unknown && previousUnknown))
                {
                    ids.Add(unknown ? _unknownId : piece + _offset);
                }

                previousUnknown = unknown;
            }
        }

        return ids;
    }

    private IReadOnlyList<int> EncodeWithModel(string text)
    {
        if (!_dropsSingleCharacters || text.AsSpan().Trim(' ').Length != 1)
        {
            return _model.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false);
        }

        // Around the bug: "c c" is two words, each encoded as "c" alone is (no piece spans "▁"), so the first half of its
        // ids is the answer. Should a piece span the space after all, the character is encoded without the normalizer.
        string character = text.Trim(' ');
        IReadOnlyList<int> twice = _model.EncodeToIds(character + " " + character, addBeginningOfSentence: false, addEndOfSentence: false);
        int half = twice.Count / 2;
        bool halvesAgree = twice.Count % 2 == 0;
        for (int i = 0; halvesAgree && i < half; i++)
        {
            halvesAgree = twice[i] == twice[half + i];
        }

        if (halvesAgree)
        {
            return [.. System.Linq.Enumerable.Take(twice, half)];
        }

        return _model.EncodeToIds("\u2581" + character, addBeginningOfSentence: false, addEndOfSentence: false, considerPreTokenization: false, considerNormalization: false);
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
            else if (id - _offset is int piece && piece >= 0 && piece < _pieces.Length && _pieces[piece] is string pieceText)
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
