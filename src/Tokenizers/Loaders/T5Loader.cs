using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using TransformerGen.Tokenizers.Folder;
using TransformerGen.SentencePiece;
using TransformerGen.Tokenizers.PreTokenization;

namespace TransformerGen.Tokenizers.Loaders;

/// <summary>
/// The tokenizer of T5, flan-t5 and mT5 (<c>spiece.model</c>, a SentencePiece Unigram model), as transformers'
/// <c>T5Tokenizer</c>/<c>T5TokenizerFast</c>: the ids are the model's own, and the sentinels follow the pieces in
/// reverse order.
/// </summary>
/// <remarks>
/// <code>
/// id   0       1      2       3 … n−1     n              …  n+e−2          n+e−1
///      &lt;pad&gt;   &lt;/s&gt;   &lt;unk&gt;   pieces      &lt;extra_id_{e−1}&gt;  …  &lt;extra_id_1&gt;   &lt;extra_id_0&gt;     (n = len(sp_model), e = extra_ids)
/// </code>
/// t5-small: n = 32000, e = 100, so <c>&lt;extra_id_0&gt;</c> is 32099 and the tokenizer has 32100 ids; the model's
/// embedding table has 32128 rows, whose last 28 are no token. mT5's folders say <c>extra_ids: 0</c>: its sentinels
/// are pieces of the model (the last 100), kept whole in a text but not special (<c>skip_special_tokens</c> keeps them,
/// as transformers does with <c>additional_special_tokens</c> empty).
/// <para>
/// A text is closed by &lt;/s&gt; and has no BOS; a pair is <c>A &lt;/s&gt; B &lt;/s&gt;</c>. &lt;/s&gt; is appended
/// even when the text already ends with it, as T5TokenizerFast's post-processor (and transformers 5's T5Tokenizer)
/// does; the Python <c>T5Tokenizer</c> of transformers 4 warns and adds none then.
/// </para>
/// <para>
/// <c>legacy</c>: the segmentation is the legacy one, which is what current transformers gives a flan-t5 folder —
/// T5TokenizerFast reads the folder's tokenizer.json, whose Metaspace pre-tokenizer prepends "▁" to every stretch of
/// text (<c>prepend_scheme: always</c>), the Python T5Tokenizer takes <c>legacy=True</c> when tokenizer_config.json
/// says nothing, and transformers 5's T5Tokenizer has only this form. Each stretch of text between added tokens is
/// encoded on its own and so gets the dummy prefix: "&lt;extra_id_0&gt;." is the sentinel, "▁", ".". A folder whose
/// tokenizer_config.json says <c>legacy: false</c> is refused.
/// </para>
/// <para>
/// Decoding follows T5TokenizerFast: the pieces' texts and the added tokens' contents joined, "▁" made a space, the
/// ends stripped; <c>clean_up_tokenization_spaces</c> is honoured when tokenizer_config.json sets it.
/// </para>
/// </remarks>
internal static class T5Loader
{
    public const string ModelFile = "spiece.model";

    // T5Tokenizer.__init__'s defaults.
    private const string DefaultEosToken = "</s>", DefaultUnkToken = "<unk>", DefaultPadToken = "<pad>";
    private const int DefaultExtraIds = 100;

    private static readonly Regex SentinelPattern = new(@"^<extra_id_(\d+)>$", RegexOptions.CultureInvariant);

    /// <summary>
    /// Whether a folder holds T5's tokenizer whatever else it holds (flan-t5's has tokenizer.json too): it has
    /// <c>spiece.model</c>, and tokenizer_config.json names T5's tokenizer (<c>T5Tokenizer</c>, <c>T5TokenizerFast</c>, or
    /// mT5's aliases <c>MT5Tokenizer</c>, <c>MT5TokenizerFast</c>) or, naming no class, config.json's <c>model_type</c> is
    /// <c>t5</c>, <c>mt5</c> or <c>umt5</c>. Without <c>spiece.model</c> the other loaders are asked, and the folder's
    /// error lists the files looked for.
    /// </summary>
    public static bool Claims(string folder, TokenizerConfig config) =>
        File.Exists(Path.Combine(folder, ModelFile))
        && (IsT5Class(config.TokenizerClass) || (config.TokenizerClass is null && IsT5ModelType(config.ModelType)));

    public static TokenizerParts Load(string folder, TokenizerConfig config)
    {
        string modelPath = Path.Combine(folder, ModelFile);
        if (!File.Exists(modelPath))
        {
            throw new FileNotFoundException(
                $"The T5 tokenizer in '{folder}' needs {ModelFile} (the SentencePiece model); tokenizer.json alone is not read.", modelPath);
        }

        if (config.TokenizerClass is not null && !IsT5Class(config.TokenizerClass))
        {
            // ALBERT, XLNet, Pegasus and others ship spiece.model too, with other ids and framing.
            throw new NotSupportedException(
                $"{ModelFile} with tokenizer_class '{config.TokenizerClass}': only T5's layout (T5Tokenizer, T5TokenizerFast) is read.");
        }

        if (config.TokenizerClass is null && config.ModelType is not null && !IsT5ModelType(config.ModelType))
        {
            throw new NotSupportedException(
                $"{ModelFile} of a '{config.ModelType}' model without a tokenizer_class: only T5's tokenizer (model_type t5, mt5, umt5) is read.");
        }

        if (config.Legacy == false)
        {
            throw new NotSupportedException(
                "tokenizer_config.json sets legacy: false (no dummy prefix after an added token); only T5's legacy segmentation is "
                + "implemented, which is transformers' default and the one of the Hub's T5 and flan-t5 tokenizer.json.");
        }

        SentencePieceModel proto = SentencePieceModel.Read(modelPath);
        SentencePieceTokenizer model = Open(proto, modelPath);
        int pieceCount = proto.Pieces.Count;
        int extraIds = config.ExtraIds ?? DefaultExtraIds;
        if (extraIds < 0)
        {
            throw new InvalidDataException($"tokenizer_config.json's extra_ids is {extraIds}; it counts sentinels and cannot be negative.");
        }

        RequireSentinelCount(config.AdditionalSpecialTokens, extraIds);

        string eos = config.EosToken ?? DefaultEosToken, unk = config.UnkToken ?? DefaultUnkToken, pad = config.PadToken ?? DefaultPadToken;
        Dictionary<string, int> pieceIds = PieceIds(proto);
        int eosId = PieceId(pieceIds, eos, "eos_token", modelPath);
        int unkId = PieceId(pieceIds, unk, "unk_token", modelPath);
        int padId = PieceId(pieceIds, pad, "pad_token", modelPath);
        if (unkId != proto.UnkId)
        {
            throw new InvalidDataException(
                $"{ModelFile}'s unknown piece is id {proto.UnkId}, but tokenizer_config.json's unk_token '{unk}' is id {unkId}.");
        }

        // The special tokens are added tokens of transformers' T5Tokenizer, kept whole wherever they are written.
        var addedTokens = new List<AddedToken>
        {
            new(pad, padId, Special: true),
            new(eos, eosId, Special: true),
            new(unk, unkId, Special: true),
        };

        int[] sentinels = extraIds > 0
            ? [.. Enumerable.Range(0, extraIds).Select(n => pieceCount + extraIds - 1 - n)]
            : SentinelPieces(pieceIds);
        for (int n = 0; n < sentinels.Length; n++)
        {
            // Sentinels after the pieces are additional_special_tokens; mT5's, pieces of the model, are not special.
            addedTokens.Add(new AddedToken(SentinelToken(n), sentinels[n], Special: extraIds > 0));
        }

        addedTokens.AddRange(config.AddedTokens);
        (Dictionary<string, int> specialTokens, Dictionary<int, string> addedTokenText, HashSet<int> skipped, int highestId) =
            FairseqSentencePiece.AddedTokenTables(addedTokens, pieceCount + extraIds - 1);

        var pieces = new FairseqSentencePiece(model, new AddedTokenSplitter(addedTokens), unkId, addedTokenText, offset: 0);
        int vocabSize = highestId + 1;
        bool cleanUp = config.CleanUpTokenizationSpaces ?? false;
        string Decode(IEnumerable<int> ids)
        {
            foreach (int id in ids)
            {
                if ((uint)id >= (uint)vocabSize)
                {
                    throw OutOfRange(id, vocabSize, pieceCount, extraIds);
                }
            }

            string text = pieces.Decode(ids);
            return cleanUp ? TokenizationSpaces.CleanUp(text) : text;
        }

        return new TokenizerParts
        {
            Kind = PretrainedTokenizer.T5Kind,
            EncodeText = pieces.Encode,
            DecodeIds = Decode,
            Suffix = [eosId],
            PairSeparator = [],   // A </s> B </s>
            EosId = eosId,
            PadId = padId,
            UnkId = unkId,
            EosToken = eos,
            VocabSize = vocabSize,
            SpecialTokens = specialTokens,
            SkippedWhenDecoding = skipped,
            SentinelIds = sentinels,
        };
    }

    private static bool IsT5Class(string? tokenizerClass) =>
        tokenizerClass is "T5Tokenizer" or "T5TokenizerFast" or "MT5Tokenizer" or "MT5TokenizerFast";

    private static bool IsT5ModelType(string? modelType) => modelType is "t5" or "mt5" or "umt5";

    private static string SentinelToken(int n) => string.Create(CultureInfo.InvariantCulture, $"<extra_id_{n}>");

    // Microsoft.ML.Tokenizers 3.0's Create(Stream…) indexes its tables with trainer_spec.bos_id, which is -1 in T5's
    // models, and fails; the tokenizer is built from the pieces instead. That overload finds </s> and <pad> by their
    // text and keeps them out of the segmentation (SentencePiece's control pieces), and removes extra whitespace.
    private static SentencePieceTokenizer Open(SentencePieceModel proto, string modelPath)
    {
        string name = Path.GetFileName(modelPath);
        if (proto.ModelType != SentencePieceModel.UnigramModel)
        {
            throw new NotSupportedException($"{name} is a SentencePiece model of type {proto.ModelType}; T5's is a Unigram model (type 1).");
        }

        if (!proto.RemoveExtraWhitespaces)
        {
            throw new NotSupportedException($"{name} keeps extra whitespace (remove_extra_whitespaces: false), which T5's models do not and which is not reproduced.");
        }

        if ((uint)proto.UnkId >= (uint)proto.Pieces.Count || proto.Pieces[proto.UnkId].Type != SentencePieceModel.UnknownType)
        {
            throw new InvalidDataException($"{name}'s trainer_spec.unk_id {proto.UnkId} is not its unknown piece.");
        }

        try
        {
            return SentencePieceTokenizer.Create(
                proto.Pieces.Select(piece => (piece.Text, piece.Score)), proto.UnkId,
                addBeginningOfSentence: false, addEndOfSentence: false, proto.PrecompiledCharsMap,
                proto.AddDummyPrefix, proto.EscapeWhitespaces, proto.TreatWhitespaceAsSuffix, proto.ByteFallback, specialTokens: null);
        }
        catch (ArgumentException e)
        {
            throw new NotSupportedException($"{name} is not a SentencePiece model Microsoft.ML.Tokenizers reads: {e.Message}", e);
        }
    }

    // SentencePiece's piece_to_id: the first piece with the text.
    private static Dictionary<string, int> PieceIds(SentencePieceModel proto)
    {
        var ids = new Dictionary<string, int>(proto.Pieces.Count, StringComparer.Ordinal);
        for (int id = 0; id < proto.Pieces.Count; id++)
        {
            ids.TryAdd(proto.Pieces[id].Text, id);
        }

        return ids;
    }

    // mT5's sentinels: the model's pieces <extra_id_0>, <extra_id_1>, … as far as they go without a gap.
    private static int[] SentinelPieces(Dictionary<string, int> pieceIds)
    {
        var ids = new List<int>();
        while (pieceIds.TryGetValue(SentinelToken(ids.Count), out int id))
        {
            ids.Add(id);
        }

        return [.. ids];
    }

    // T5Tokenizer.__init__: additional_special_tokens that name sentinels must name extra_ids of them.
    private static void RequireSentinelCount(IReadOnlyList<string>? additionalSpecialTokens, int extraIds)
    {
        int named = additionalSpecialTokens?.Where(token => SentinelPattern.IsMatch(token)).Distinct(StringComparer.Ordinal).Count() ?? 0;
        if (named > 0 && extraIds > 0 && named != extraIds)
        {
            throw new InvalidDataException(
                $"tokenizer_config.json gives extra_ids {extraIds} but names {named} sentinels in additional_special_tokens; "
                + "transformers' T5Tokenizer refuses that too.");
        }
    }

    private static int PieceId(Dictionary<string, int> pieceIds, string token, string key, string modelPath) =>
        pieceIds.TryGetValue(token, out int id)
            ? id
            : throw new InvalidDataException($"{Path.GetFileName(modelPath)} has no piece for the {key} '{token}' (in {modelPath}).");

    private static ArgumentOutOfRangeException OutOfRange(int id, int vocabSize, int pieceCount, int extraIds) =>
        new("ids", id,
            $"Id {id} is not a token of this T5 tokenizer, whose ids are 0–{vocabSize - 1} ({pieceCount} SentencePiece pieces"
            + (extraIds > 0 ? $", then the sentinels <extra_id_{extraIds - 1}> … <extra_id_0>" : "")
            + "). A T5 model's embedding table can be larger (t5-small's has 32128 rows for 32100 ids): the rows past the "
            + "tokenizer's ids are no token and have no text.");
}
