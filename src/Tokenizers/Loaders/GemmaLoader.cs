using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.ML.Tokenizers;
using TransformerGen.SentencePiece;
using TransformerGen.Tokenizers.Folder;
using TransformerGen.Tokenizers.PreTokenization;

namespace TransformerGen.Tokenizers.Loaders;

/// <summary>
/// Gemma's tokenizer (Gemma 3: gemma-3-270m, gemma-3-1b and their -it models; Gemma 1 and 2 have the same form):
/// <c>tokenizer.model</c>, a SentencePiece BPE model with byte fallback and without the dummy prefix, whose ids are used
/// as they are, read as transformers' <c>GemmaTokenizerFast</c> reads the folder's tokenizer.json.
/// </summary>
/// <remarks>
/// <para>
/// Gemma 3's ids: <c>&lt;pad&gt;</c> 0, <c>&lt;eos&gt;</c> 1, <c>&lt;bos&gt;</c> 2, <c>&lt;unk&gt;</c> 3, <c>&lt;mask&gt;</c> 4,
/// <c>&lt;start_of_turn&gt;</c> 105, <c>&lt;end_of_turn&gt;</c> 106, then the byte pieces and the 262,144 pieces' others; the
/// added token <c>&lt;image_soft_token&gt;</c> is 262144, one past the pieces (and past the text models' embedding). None of
/// these is assumed here: BOS, EOS, unknown and padding are the tokens tokenizer_config.json names, else the pieces the
/// model's trainer_spec numbers; the other special tokens are the model's control and user-defined pieces and the
/// folder's <c>added_tokens_decoder</c>.
/// </para>
/// <para>
/// The text: transformers' converter gives Gemma no pre-tokenizer and a normalizer that only writes each space as "▁",
/// which is SentencePiece's own normalization of a model whose <c>normalizer_spec</c> says <c>add_dummy_prefix: false</c>,
/// <c>remove_extra_whitespaces: false</c> and no character map: a text's leading, doubled and trailing spaces are kept
/// and no "▁" is put before it. A model that says otherwise under a Gemma tokenizer class is refused, since the
/// two would disagree. Added tokens are kept whole where they are written in the raw text (transformers'
/// <c>normalized=False</c>): the control pieces (<c>&lt;bos&gt;</c> …), the user-defined ones (<c>&lt;start_of_turn&gt;</c>,
/// <c>&lt;end_of_turn&gt;</c>) and the folder's added tokens, leftmost then longest first. Between them
/// <see cref="SentencePieceTokenizer"/> merges the pieces, and a character no piece holds becomes its UTF-8 bytes
/// (<c>&lt;0xF0&gt;</c> …). <c>&lt;bos&gt;</c> goes before the text when <c>add_bos_token</c> is true or absent (GemmaTokenizer's
/// default), <c>&lt;eos&gt;</c> after it when <c>add_eos_token</c> is true; a pair is <c>bos A bos B</c>.
/// </para>
/// <para>
/// Decoding is tokenizers' decoder for Gemma: each token's text with "▁" made a space, runs of byte pieces joined and
/// read as UTF-8 (a byte of a malformed run becomes U+FFFD), nothing stripped. The control pieces, the folder's
/// special added tokens and <c>&lt;start_of_turn&gt;</c>/<c>&lt;end_of_turn&gt;</c> (which transformers' Gemma converter makes
/// special) are what <c>skip_special_tokens</c> leaves out.
/// </para>
/// </remarks>
internal static class GemmaLoader
{
    private const string ModelFile = TokenizerFolder.SentencePieceModel;

    // GemmaConverter: "start and end of turn tokens must be marked as special" (they are user-defined pieces, which
    // transformers' converters otherwise add as added tokens that are not special).
    private static readonly HashSet<string> SpecialUserDefinedPieces = new(StringComparer.Ordinal) { "<start_of_turn>", "<end_of_turn>" };

    /// <summary>
    /// Whether a folder with <c>tokenizer.model</c> holds Gemma's tokenizer: tokenizer_config.json names
    /// <c>GemmaTokenizer</c> or <c>GemmaTokenizerFast</c>, or, naming no class, config.json's <c>model_type</c> is a Gemma one
    /// (<c>gemma</c>, <c>gemma2</c>, <c>gemma3</c>, <c>gemma3_text</c>, …) or the model's normalizer is Gemma's (no dummy
    /// prefix, whitespace kept, no character map). Other folders (Llama-2, TinyLlama) are read by <see cref="SentencePieceLoader"/>.
    /// </summary>
    public static bool Claims(TokenizerConfig config, SentencePieceModel proto) =>
        IsGemmaClass(config.TokenizerClass)
        || (config.TokenizerClass is null && (IsGemmaModelType(config.ModelType) || (proto.ModelType == SentencePieceModel.BpeModel && NormalizerDisagreement(proto) is null)));

    /// <exception cref="NotSupportedException">The model is not a BPE model, or its normalizer is not Gemma's.</exception>
    /// <exception cref="InvalidDataException">tokenizer_config.json names a special token the tokenizer does not have.</exception>
    public static TokenizerParts Load(byte[] model, SentencePieceModel proto, TokenizerConfig config)
    {
        if (proto.ModelType != SentencePieceModel.BpeModel)
        {
            throw new NotSupportedException($"{ModelFile} is a SentencePiece model of type {proto.ModelType}; Gemma's is a BPE model (type 2).");
        }

        if (NormalizerDisagreement(proto) is string disagreement)
        {
            throw new NotSupportedException(
                $"{ModelFile}'s normalizer_spec says {disagreement}, but Gemma's tokenizer (GemmaTokenizerFast) only writes each space as ▁, "
                + "with no dummy prefix, whitespace kept and no character map; a model and a tokenizer class that disagree are not read.");
        }

        SentencePieceTokenizer segmenter = SentencePieceFile.Open(model, ModelFile);
        IReadOnlyList<SentencePieceModel.Piece> pieces = proto.Pieces;

        // transformers' order: the model's control and user-defined pieces (its converter's added tokens), then the
        // folder's added_tokens_decoder, whose flags win; the unknown piece is the unk_token, special too.
        var addedTokens = new List<AddedToken>();
        for (int id = 0; id < pieces.Count; id++)
        {
            SentencePieceModel.Piece piece = pieces[id];
            if (piece.Type is SentencePieceModel.ControlType or SentencePieceModel.UnknownType)
            {
                addedTokens.Add(new AddedToken(piece.Text, id, Special: true));
            }
            else if (piece.Type == SentencePieceModel.UserDefinedType)
            {
                addedTokens.Add(new AddedToken(piece.Text, id, Special: SpecialUserDefinedPieces.Contains(piece.Text)));
            }
        }

        // One entry per id, the last, so that the folder's flags replace the model's (a piece it says is not special is not).
        var byId = new Dictionary<int, AddedToken>();
        foreach (AddedToken added in addedTokens.Concat(config.AddedTokens))
        {
            byId[added.Id] = added;
        }

        addedTokens = [.. byId.Values];
        Dictionary<string, int> pieceIds = PieceIds(pieces);

        // The named special tokens: tokenizer_config.json's, else the pieces trainer_spec numbers.
        var named = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (AddedToken added in addedTokens)
        {
            named[added.Content] = added.Id;
        }

        int? Named(string? token, int protoId, string key)
        {
            if (token is null)
            {
                return (uint)protoId < (uint)pieces.Count ? protoId : null;
            }

            return named.TryGetValue(token, out int id) || pieceIds.TryGetValue(token, out id)
                ? id
                : throw new InvalidDataException($"tokenizer_config.json's {key} '{token}' is neither an added token nor a piece of {ModelFile}.");
        }

        int? bos = Named(config.BosToken, proto.BosId, "bos_token");
        int? eos = Named(config.EosToken, proto.EosId, "eos_token");
        int? unk = Named(config.UnkToken, proto.UnkId, "unk_token");
        int? pad = Named(config.PadToken, proto.PadId, "pad_token");
        int? mask = config.MaskToken is null ? null : Named(config.MaskToken, -1, "mask_token");

        // transformers adds the special tokens it names to its added vocabulary: special, and kept whole in a text.
        foreach (int? id in new[] { bos, eos, unk, pad, mask })
        {
            if (id is int special && (uint)special < (uint)pieces.Count && !named.ContainsKey(pieces[special].Text))
            {
                addedTokens.Add(new AddedToken(pieces[special].Text, special, Special: true));
            }
        }

        (Dictionary<string, int> specialTokens, Dictionary<int, string> addedTokenText, HashSet<int> skipped, int highestId) =
            FairseqSentencePiece.AddedTokenTables(addedTokens, pieces.Count - 1);
        foreach (int? id in new[] { bos, eos, unk, pad, mask })
        {
            if (id is int special)
            {
                skipped.Add(special);
            }
        }

        bool addBos = config.AddBosToken ?? true;
        bool addEos = config.AddEosToken ?? false;
        if (addBos && bos is null)
        {
            throw new InvalidDataException($"The tokenizer adds a BOS token (add_bos_token), but neither tokenizer_config.json nor {ModelFile} names one.");
        }

        if (addEos && eos is null)
        {
            throw new InvalidDataException($"The tokenizer adds an EOS token (add_eos_token), but neither tokenizer_config.json nor {ModelFile} names one.");
        }

        var text = new FairseqSentencePiece(segmenter, new AddedTokenSplitter(addedTokens), unk ?? proto.UnkId, addedTokenText, offset: 0);
        var decoder = new GemmaDecoder(pieces, addedTokenText, highestId + 1, config.CleanUpTokenizationSpaces ?? false);
        int[] bosIds = addBos ? [bos!.Value] : [];
        return new TokenizerParts
        {
            Kind = PretrainedTokenizer.SentencePieceBpeKind,
            EncodeText = text.Encode,
            DecodeIds = decoder.Decode,
            Prefix = bosIds,
            Suffix = addEos ? [eos!.Value] : [],
            // GemmaTokenizerFast's post-processor: bos A eos bos B eos, each as add_bos_token/add_eos_token say.
            PairSeparator = bosIds,
            BosId = bos,
            EosId = eos,
            UnkId = unk,
            PadId = pad,
            BosToken = bos is int b ? TokenText(b, pieces, addedTokenText) : null,
            EosToken = eos is int e ? TokenText(e, pieces, addedTokenText) : null,
            VocabSize = highestId + 1,
            SpecialTokens = specialTokens,
            SkippedWhenDecoding = skipped,
        };
    }

    private static bool IsGemmaClass(string? tokenizerClass) => tokenizerClass is "GemmaTokenizer" or "GemmaTokenizerFast";

    private static bool IsGemmaModelType(string? modelType) => modelType is not null && modelType.StartsWith("gemma", StringComparison.Ordinal);

    // What in the normalizer_spec is not Gemma's form, or null when all of it is.
    private static string? NormalizerDisagreement(SentencePieceModel proto) =>
        proto.AddDummyPrefix ? "add_dummy_prefix: true"
        : proto.RemoveExtraWhitespaces ? "remove_extra_whitespaces: true"
        : !proto.EscapeWhitespaces ? "escape_whitespaces: false"
        : proto.TreatWhitespaceAsSuffix ? "treat_whitespace_as_suffix: true (in trainer_spec)"
        : proto.PrecompiledCharsMap.Length > 0 ? $"a precompiled character map ('{proto.NormalizerName}')"
        : null;

    // SentencePiece's piece_to_id: the first piece with the text.
    private static Dictionary<string, int> PieceIds(IReadOnlyList<SentencePieceModel.Piece> pieces)
    {
        var ids = new Dictionary<string, int>(pieces.Count, StringComparer.Ordinal);
        for (int id = 0; id < pieces.Count; id++)
        {
            ids.TryAdd(pieces[id].Text, id);
        }

        return ids;
    }

    private static string TokenText(int id, IReadOnlyList<SentencePieceModel.Piece> pieces, Dictionary<int, string> addedTokenText) =>
        addedTokenText.TryGetValue(id, out string? text) ? text : pieces[id].Text;

    /// <summary>
    /// tokenizers' decoder of Gemma's tokenizer.json: <c>Replace("▁", " ")</c>, <c>ByteFallback</c>, <c>Fuse</c>. Added tokens
    /// are written as their text, as every other token, through the same steps.
    /// </summary>
    private sealed class GemmaDecoder
    {
        private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

        private readonly string?[] _texts;
        private readonly int[] _bytes;   // the byte of a byte piece, −1 for the other ids
        private readonly int _pieceCount;
        private readonly int _vocabSize;
        private readonly bool _cleanUp;

        public GemmaDecoder(IReadOnlyList<SentencePieceModel.Piece> pieces, Dictionary<int, string> addedTokenText, int vocabSize, bool cleanUp)
        {
            _pieceCount = pieces.Count;
            _vocabSize = vocabSize;
            _cleanUp = cleanUp;
            _texts = new string?[vocabSize];
            _bytes = new int[vocabSize];
            Array.Fill(_bytes, -1);

            // transformers' Gemma converter names the piece <0x09> "\t" when the model has no "\t" piece: a plain token
            // then, not a byte, which matters only where it interrupts a run of bytes.
            bool tabIsText = !pieces.Any(piece => piece.Text == "\t");
            for (int id = 0; id < pieces.Count; id++)
            {
                SentencePieceModel.Piece piece = pieces[id];
                _texts[id] = piece.Text;
                if (piece.Type == SentencePieceModel.ByteType && ByteOf(piece.Text) is int value)
                {
                    if (value == '\t' && tabIsText)
                    {
                        _texts[id] = "\t";
                    }
                    else
                    {
                        _bytes[id] = value;
                    }
                }
            }

            foreach ((int id, string text) in addedTokenText)
            {
                _texts[id] = text;
                _bytes[id] = -1;
            }
        }

        public string Decode(IEnumerable<int> ids)
        {
            var text = new StringBuilder();
            var run = new List<byte>();
            foreach (int id in ids)
            {
                if ((uint)id >= (uint)_vocabSize || _texts[id] is not string token)
                {
                    throw new ArgumentOutOfRangeException(
                        nameof(ids), id,
                        $"Id {id} is not a token of this Gemma tokenizer, whose ids are the {_pieceCount} pieces of {ModelFile} and the added tokens up to "
                        + $"{_vocabSize - 1}. A model's embedding can have more rows than that (gemma-3-4b's 262,208): the rows past the tokenizer's ids are no token.");
                }

                if (_bytes[id] >= 0)
                {
                    run.Add((byte)_bytes[id]);
                    continue;
                }

                Flush(run, text);
                text.Append(token).Replace('▁', ' ', text.Length - token.Length, token.Length);
            }

            Flush(run, text);
            string decoded = text.ToString();
            return _cleanUp ? TokenizationSpaces.CleanUp(decoded) : decoded;
        }

        // ByteFallback: a run of byte pieces is UTF-8 text, or, malformed, one U+FFFD for each of its bytes.
        private static void Flush(List<byte> run, StringBuilder text)
        {
            if (run.Count == 0)
            {
                return;
            }

            try
            {
                text.Append(StrictUtf8.GetString([.. run]));
            }
            catch (DecoderFallbackException)
            {
                text.Append('\uFFFD', run.Count);
            }

            run.Clear();
        }

        // "<0x41>" → 0x41.
        private static int? ByteOf(string piece) =>
            piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
            && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out byte value)
                ? value
                : null;
    }
}
