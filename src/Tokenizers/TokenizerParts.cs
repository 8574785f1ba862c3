using System;
using System.Collections.Generic;

namespace TransformerGen.Tokenizers;

/// <summary>
/// What a loader hands to <see cref="PretrainedTokenizer"/>: the library tokenizer wrapped as two functions,
/// and the special tokens Hugging Face adds around a text. Every kind encodes the text without special
/// tokens and <see cref="PretrainedTokenizer"/> adds <see cref="Prefix"/> and <see cref="Suffix"/> itself, so
/// truncation treats all kinds alike (the text is cut, the special tokens stay), as Hugging Face does.
/// </summary>
internal sealed class TokenizerParts
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

    /// <summary>The target-language codes (<c>&gt;&gt;fra&lt;&lt;</c>) of a multilingual Marian vocabulary, in file order.</summary>
    public IReadOnlyList<string> LanguageCodes { get; init; } = [];

    /// <summary>The family's <c>model_max_length</c> when tokenizer_config.json gives none (Marian 512), or null.</summary>
    public int? DefaultModelMaxLength { get; init; }

    /// <summary>The ids Hugging Face's <c>skip_special_tokens=True</c> removes when decoding.</summary>
    public required IReadOnlySet<int> SkippedWhenDecoding { get; init; }
}
