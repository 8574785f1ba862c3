using System;
using System.Collections.Generic;

namespace TransformerGen.Tokenizers;

/// <summary>
/// What a loader hands to <see cref="PretrainedTokenizer"/>: the library tokenizer wrapped as two functions,
/// and the special tokens Hugging Face adds around a text. Every kind encodes the text without special
/// tokens and <see cref="PretrainedTokenizer"/> adds <see cref="Prefix"/> and <see cref="Suffix"/> itself, so
/// truncation treats all kinds alike (the text is cut, the special tokens stay), as Hugging Face does.
/// A record so that choosing a language (NLLB's <c>src_lang</c>, <c>tgt_lang</c>) is a copy with other framing ids.
/// </summary>
internal sealed record TokenizerParts
{
    /// <summary>One of the <c>PretrainedTokenizer.*Kind</c> constants.</summary>
    public required string Kind { get; init; }

    /// <summary>Encodes a text to ids with no special tokens added around it (added tokens inside the text are kept whole).</summary>
    public required Func<string, IReadOnlyList<int>> EncodeText { get; init; }

    /// <summary>
    /// Encodes a text of the target side of a sequence-to-sequence pair (transformers' <c>text_target=</c>), or null
    /// when the tokenizer has no target side of its own (everything but Marian) and encodes it as <see cref="EncodeText"/>.
    /// </summary>
    public Func<string, IReadOnlyList<int>>? EncodeTargetText { get; init; }

    /// <summary>Decodes ids to text, writing special tokens out as their text.</summary>
    public required Func<IEnumerable<int>, string> DecodeIds { get; init; }

    /// <summary>Ids put before the text when special tokens are added (BERT's [CLS], Llama's &lt;s&gt;).</summary>
    public int[] Prefix { get; init; } = [];

    /// <summary>Ids put after the text when special tokens are added (BERT's [SEP]).</summary>
    public int[] Suffix { get; init; } = [];

    /// <summary>Ids put before a target text (NLLB's <c>tgt_lang</c> code), or null for <see cref="Prefix"/>.</summary>
    public int[]? TargetPrefix { get; init; }

    /// <summary>Ids put after a target text (Marian's &lt;/s&gt; in the target vocabulary), or null for <see cref="Suffix"/>.</summary>
    public int[]? TargetSuffix { get; init; }

    /// <summary>
    /// Ids between the first text's <see cref="Suffix"/> and the second text of a pair, which Hugging Face frames as
    /// <c>Prefix A Suffix PairSeparator B Suffix</c> (BERT nothing, XLM-R &lt;/s&gt;, Llama its BOS); null when the
    /// loader does not know the pair form.
    /// </summary>
    public int[]? PairSeparator { get; init; }

    public int? BosId { get; init; }
    public int? EosId { get; init; }
    public int? PadId { get; init; }
    public int? UnkId { get; init; }
    public string? BosToken { get; init; }
    public string? EosToken { get; init; }

    /// <summary>One more than the highest id the tokenizer can produce.</summary>
    public required int VocabSize { get; init; }

    /// <summary>Added and named special tokens (content → id).</summary>
    public required IReadOnlyDictionary<string, int> SpecialTokens { get; init; }

    /// <summary>
    /// The language codes, in file order: the target-language codes (<c>&gt;&gt;fra&lt;&lt;</c>) of a multilingual Marian
    /// vocabulary, or NLLB's <c>eng_Latn</c>, <c>fra_Latn</c>, ….
    /// </summary>
    public IReadOnlyList<string> LanguageCodes { get; init; } = [];

    /// <summary>The id of each of <see cref="LanguageCodes"/>.</summary>
    public IReadOnlyDictionary<string, int> LanguageCodeIds { get; init; } = new Dictionary<string, int>();

    /// <summary>
    /// How a language code frames a text (NLLB), or null when the tokenizer has no source and target languages to choose
    /// (Marian's codes are written in the text).
    /// </summary>
    public LanguageFraming? Framing { get; init; }

    /// <summary>The language whose code <see cref="Prefix"/>/<see cref="Suffix"/> hold (NLLB's <c>src_lang</c>), or null.</summary>
    public string? SourceLanguage { get; init; }

    /// <summary>
    /// The language whose code <see cref="TargetPrefix"/>/<see cref="TargetSuffix"/> hold (NLLB's <c>tgt_lang</c>), or null:
    /// with <see cref="Framing"/> set, a target text then cannot be framed.
    /// </summary>
    public string? TargetLanguage { get; init; }

    /// <summary>
    /// T5's sentinels: entry n is the id of <c>&lt;extra_id_n&gt;</c> (t5-small: 32099, 32098, …); empty for the other
    /// families.
    /// </summary>
    public IReadOnlyList<int> SentinelIds { get; init; } = [];

    /// <summary>The family's <c>model_max_length</c> when tokenizer_config.json gives none (Marian 512), or null.</summary>
    public int? DefaultModelMaxLength { get; init; }

    /// <summary>The ids Hugging Face's <c>skip_special_tokens=True</c> removes when decoding.</summary>
    public required IReadOnlySet<int> SkippedWhenDecoding { get; init; }
}

/// <summary>
/// Where NLLB puts a language code around a text (transformers' <c>set_src_lang_special_tokens</c> and
/// <c>set_tgt_lang_special_tokens</c>, which frame both sides alike): <c>code text &lt;/s&gt;</c>, or with
/// <c>legacy_behaviour</c> <c>text &lt;/s&gt; code</c>.
/// </summary>
internal sealed record LanguageFraming(bool Legacy, int EosId)
{
    public (int[] Prefix, int[] Suffix) Around(int languageCodeId) =>
        Legacy ? ([], [EosId, languageCodeId]) : ([languageCodeId], [EosId]);
}
