using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Tokenizers;
using TransformerGen.Tokenizers.Folder;
using TransformerGen.Tokenizers.Normalization;
using TransformerGen.Tokenizers.PreTokenization;

namespace TransformerGen.Tokenizers.Loaders;

/// <summary>
/// The tokenizer of NLLB-200 (facebook/nllb-200-*, config.json <c>model_type: "m2m_100"</c>), as transformers'
/// <c>NllbTokenizer</c>/<c>NllbTokenizerFast</c>: <c>sentencepiece.bpe.model</c> (a SentencePiece BPE model) segments the
/// text, <see cref="FairseqSentencePiece"/> renumbers the pieces into fairseq's ids as XLM-R's are, and the language
/// codes and <c>&lt;mask&gt;</c> follow the pieces.
/// </summary>
/// <remarks>
/// <code>
/// id       0     1       2      3       4 … n          n+1        …  n+202      n+203
///          &lt;s&gt;   &lt;pad&gt;   &lt;/s&gt;   &lt;unk&gt;   pieces     ace_Arab   …  zul_Latn   &lt;mask&gt;      (n = len(sp_model))
/// </code>
/// A source text is framed by its <c>src_lang</c> code, a target text by its <c>tgt_lang</c> code:
/// <c>code text &lt;/s&gt;</c>, or with <c>legacy_behaviour</c> <c>text &lt;/s&gt; code</c>. BOS is never added.
/// Microsoft.ML.Tokenizers 3.0's SentencePiece BPE model does not apply the model's <c>precompiled_charsmap</c>
/// (nmt_nfkc: full-width forms, compatibility characters), so <see cref="PrecompiledCharsMap"/> applies it to each stretch
/// of text between added tokens, as SentencePiece does (longest match first).
/// </remarks>
internal static class NllbLoader
{
    public const string ModelFile = TokenizerFolder.XlmRobertaSentencePieceModel;

    // NllbTokenizer.__init__'s defaults.
    private const string DefaultSourceLanguage = "eng_Latn";
    private const string DefaultMask = "<mask>";

    // transformers' max_model_input_sizes for nllb-200, used when tokenizer_config.json gives no model_max_length.
    private const int DefaultModelMaxLength = 1024;

    // transformers' fairseq_tokens_to_ids, the first four ids whatever the model holds.
    private static readonly (string Token, int Id)[] FairseqSpecialTokens = [("<s>", 0), ("<pad>", 1), ("</s>", 2), ("<unk>", 3)];

    /// <summary>
    /// Whether a folder holds NLLB's tokenizer: tokenizer_config.json names <c>NllbTokenizer</c> or
    /// <c>NllbTokenizerFast</c>, or, naming no class, config.json says <c>m2m_100</c> and the folder has NLLB's
    /// SentencePiece model without M2M100's <c>vocab.json</c>.
    /// </summary>
    public static bool Claims(string folder, TokenizerConfig config) =>
        config.TokenizerClass is "NllbTokenizer" or "NllbTokenizerFast"
        || (config.TokenizerClass is null
            && config.ModelType == "m2m_100"
            && File.Exists(Path.Combine(folder, ModelFile))
            && !File.Exists(Path.Combine(folder, TokenizerFolder.VocabJson)));

    public static TokenizerParts Load(string folder, TokenizerConfig config)
    {
        string modelPath = Path.Combine(folder, ModelFile);
        if (!File.Exists(modelPath))
        {
            throw new FileNotFoundException(
                $"The NLLB tokenizer in '{folder}' has no {ModelFile} (the SentencePiece model whose pieces it numbers); "
                + "tokenizer.json alone is not read.",
                modelPath);
        }

        SentencePieceTokenizer model = SentencePieceFile.Open(modelPath);
        FairseqSentencePiece.RequireFairseqLayout(model, modelPath, "NLLB");
        int firstAddedId = FairseqSentencePiece.ModelPieceCount(model) + FairseqSentencePiece.Offset;

        // The codes are the folder's additional_special_tokens when it lists them (a fine-tuned model may add its own),
        // otherwise transformers' built-in list. An id the folder states (added_tokens_decoder) wins over the layout.
        IReadOnlyList<string> codes = config.AdditionalSpecialTokens
            ?? TokenizerConfig.ReadSpecialTokensMapAdditional(folder)
            ?? NllbLanguageCodes.Fairseq;
        var statedIds = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (AddedToken stated in config.AddedTokens)
        {
            statedIds[stated.Content] = stated.Id;
        }

        int IdOfAdded(string token, int layoutId) => statedIds.TryGetValue(token, out int id) ? id : layoutId;

        var languageCodeIds = new Dictionary<string, int>(StringComparer.Ordinal);
        var addedTokens = new List<AddedToken>();
        foreach ((string token, int id) in FairseqSpecialTokens)
        {
            addedTokens.Add(new AddedToken(token, id, Special: true));
        }

        for (int i = 0; i < codes.Count; i++)
        {
            int id = IdOfAdded(codes[i], firstAddedId + i);
            languageCodeIds[codes[i]] = id;
            addedTokens.Add(new AddedToken(codes[i], id, Special: true));
        }

        // NllbTokenizer makes <mask> lstrip ("Mask token behave like a normal word").
        string mask = config.MaskToken ?? DefaultMask;
        addedTokens.Add(new AddedToken(mask, IdOfAdded(mask, firstAddedId + codes.Count), Special: true, LStrip: true));
        addedTokens.AddRange(config.AddedTokens);

        (Dictionary<string, int> specialTokens, Dictionary<int, string> addedTokenText, HashSet<int> skipped, int highestId) =
            FairseqSentencePiece.AddedTokenTables(addedTokens, firstAddedId - 1);

        // NLLB's model is BPE, whose normalization (nmt_nfkc) Microsoft.ML.Tokenizers 3.0 leaves out: applied here.
        PrecompiledCharsMap? charsMap = PrecompiledCharsMap.FromModel(File.ReadAllBytes(modelPath));
        var fairseq = new FairseqSentencePiece(model, new AddedTokenSplitter(addedTokens), specialTokens["<unk>"], addedTokenText, charsMap);

        int? IdOf(string token) => specialTokens.TryGetValue(token, out int id) ? id : fairseq.PieceId(token);

        string eosToken = config.EosToken ?? "</s>";
        int eos = IdOf(eosToken)
            ?? throw new InvalidDataException($"tokenizer_config.json's eos_token '{eosToken}' is neither a special token nor a piece of {ModelFile}.");
        int? bos = IdOf(config.BosToken ?? "<s>");
        int? pad = IdOf(config.PadToken ?? "<pad>");
        int? unk = IdOf(config.UnkToken ?? "<unk>");
        foreach (int? named in new[] { bos, eos, pad, unk })
        {
            if (named is int id)
            {
                skipped.Add(id);
            }
        }

        var framing = new LanguageFraming(config.LegacyBehaviour ?? false, eos);
        string source = config.SrcLang ?? DefaultSourceLanguage;
        (int[] prefix, int[] suffix) = framing.Around(RequireCode(languageCodeIds, source, "src_lang"));
        string? target = config.TgtLang;
        (int[]? targetPrefix, int[]? targetSuffix) = target is null
            ? (null, null)
            : framing.Around(RequireCode(languageCodeIds, target, "tgt_lang"));

        bool cleanUp = config.CleanUpTokenizationSpaces ?? false;
        return new TokenizerParts
        {
            Kind = PretrainedTokenizer.NllbKind,
            EncodeText = fairseq.Encode,
            DecodeIds = cleanUp ? ids => TokenizationSpaces.CleanUp(fairseq.Decode(ids)) : fairseq.Decode,
            Prefix = prefix,
            Suffix = suffix,
            TargetPrefix = targetPrefix,
            TargetSuffix = targetSuffix,
            // build_inputs_with_special_tokens joins a pair as "prefix A B suffix", with no separator, which the
            // Prefix/Suffix/PairSeparator form cannot say; NLLB translates single texts.
            PairSeparator = null,
            BosId = bos,
            EosId = eos,
            PadId = pad,
            UnkId = unk,
            BosToken = config.BosToken ?? "<s>",
            EosToken = eosToken,
            VocabSize = highestId + 1,
            SpecialTokens = specialTokens,
            SkippedWhenDecoding = skipped,
            LanguageCodes = [.. codes],
            LanguageCodeIds = languageCodeIds,
            Framing = framing,
            SourceLanguage = source,
            TargetLanguage = target,
            DefaultModelMaxLength = DefaultModelMaxLength,
        };
    }

    private static int RequireCode(IReadOnlyDictionary<string, int> languageCodeIds, string code, string key) =>
        languageCodeIds.TryGetValue(code, out int id)
            ? id
            : throw new InvalidDataException(
                $"tokenizer_config.json's {key} '{code}' is not one of the tokenizer's language codes"
                + (languageCodeIds.Count == 0
                    ? " (additional_special_tokens lists none)."
                    : $" ({languageCodeIds.Count}: {string.Join(", ", languageCodeIds.Keys.Take(3))}, …)."));
}
