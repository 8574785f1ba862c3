using System;
using System.Collections.Generic;
using System.Diagnostics;
using TransformerGen;
using TransformerGen.Tokenizers;

namespace TranslateSample;

/// <summary>How a translation is decoded.</summary>
/// <param name="BeamWidth">1 decodes greedily (<see cref="Seq2SeqModel.Translate"/>); more runs <see cref="Seq2SeqModel.BeamSearch"/> with that many beams.</param>
/// <param name="LengthPenalty">Beam search's α in GNMT's length penalty ((5 + length) / 6)^α; 0 ranks by log-probability alone.</param>
/// <param name="MaxTokens">The most target tokens to generate (the model's TargetSeqLen bounds it too).</param>
public sealed record TranslationSettings(int BeamWidth = 1, float LengthPenalty = 0.6f, int MaxTokens = int.MaxValue);

/// <summary>Why a translation ended.</summary>
public enum TranslationStop
{
    /// <summary>The model chose the end of sentence, &lt;/s&gt;.</summary>
    EndOfSentence,

    /// <summary>The translation reached <see cref="TranslationSettings.MaxTokens"/>.</summary>
    MaxTokens,

    /// <summary>The translation filled the model's TargetSeqLen.</summary>
    TargetLength,
}

/// <summary>One translated text.</summary>
/// <param name="Source">The text.</param>
/// <param name="SourceTokens">The ids the encoder ran: the text's (in the prompt, when the model takes one), framed as the tokenizer frames a source (closed by &lt;/s&gt;; NLLB's begin with the language code), cut to SeqLen when longer.</param>
/// <param name="FullSourceLength">How many ids the whole text has, its framing included (more than <see cref="SourceTokens"/> when it was cut).</param>
/// <param name="Tokens">The translation's ids, without the forced prefix and &lt;/s&gt;.</param>
/// <param name="Text">The translation.</param>
/// <param name="Stop">Why it ended.</param>
/// <param name="Elapsed">Encoding the source and decoding the translation (tokenizing not included).</param>
/// <param name="IdsWithoutText">
/// How many of <see cref="Tokens"/> are past the tokenizer's ids, rows of the model's table that are no token (t5-small's
/// 32128 rows for 32100 ids): left out of <see cref="Text"/>, as transformers' decode leaves them out.
/// </param>
public sealed record Translation(string Source, int[] SourceTokens, int FullSourceLength, int[] Tokens, string Text, TranslationStop Stop, TimeSpan Elapsed, int IdsWithoutText = 0)
{
    /// <summary>Whether the source was cut to fit the model's SeqLen.</summary>
    public bool Truncated => FullSourceLength > SourceTokens.Length;

    /// <summary>Target tokens per second of <see cref="Elapsed"/>.</summary>
    public double TokensPerSecond => Tokens.Length / Elapsed.TotalSeconds;
}

/// <summary>
/// Translates texts with an encoder–decoder and its tokenizer: the source text, written into the model's prompt when it
/// takes one (Flan-T5: <c>translate English to German: {text}</c>), is encoded as the tokenizer frames it (Marian: the
/// pieces of source.spm closed by &lt;/s&gt;; NLLB: the source language's code, the pieces, &lt;/s&gt;; T5: the pieces, &lt;/s&gt;), cut at
/// the model's SeqLen as Hugging Face's <c>truncation=True</c> cuts it (the framing tokens stay); the model encodes it once
/// and decodes from its start token through the key/value cache (greedily or by beam search), reading a forced prefix
/// first when one is given (NLLB's target language code, transformers' <c>forced_bos_token_id</c>); the target ids are
/// decoded to text (ids past the tokenizer's, which a model's padded table can have, are left out as transformers leaves them).
/// </summary>
public sealed class SentenceTranslator
{
    private readonly Seq2SeqModel _model;
    private readonly PretrainedTokenizer _tokenizer;
    private readonly int[] _source;
    private readonly int[] _output;
    private readonly int[] _prefix;
    private readonly string? _prompt;

    /// <summary>Stands for the text in a prompt.</summary>
    public const string TextPlaceholder = "{text}";

    /// <summary>Pairs a model with its tokenizer.</summary>
    /// <param name="model">The model.</param>
    /// <param name="tokenizer">Its tokenizer, with the source language chosen when it frames texts with one (NLLB's <see cref="PretrainedTokenizer.WithSourceLanguage"/>).</param>
    /// <param name="prefix">Ids the decoder reads after its start token before it generates: NLLB's target language code; none for Marian.</param>
    /// <param name="prompt">The source the encoder reads for a text, with <see cref="TextPlaceholder"/> where the text goes (Flan-T5's <c>translate English to German: {text}</c>); null for the text alone.</param>
    /// <exception cref="ArgumentException">The tokenizer has ids beyond the model's vocabulary, or ends a source with another id than the model ends a translation with; the prefix leaves no room to translate; or the prompt has no place for the text.</exception>
    public SentenceTranslator(Seq2SeqModel model, PretrainedTokenizer tokenizer, IReadOnlyList<int>? prefix = null, string? prompt = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ModelLayout layout = model.Layout;
        if (tokenizer.VocabSize > layout.Vocab)
        {
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} ids, {layout.Name}'s vocabulary {layout.Vocab}", nameof(tokenizer));
        }

        if (tokenizer.EosId != layout.EosToken)
        {
            throw new ArgumentException($"the tokenizer ends a text with id {tokenizer.EosId?.ToString() ?? "(none)"}, {layout.Name} ends a translation with {layout.EosToken}", nameof(tokenizer));
        }

        _prefix = [.. prefix ?? []];
        if (_prefix.Length + 1 >= layout.DecoderSeqLen)
        {
            throw new ArgumentException($"a forced prefix of {_prefix.Length} tokens leaves no room in {layout.Name}'s TargetSeqLen of {layout.DecoderSeqLen}", nameof(prefix));
        }

        if (prompt is not null && !prompt.Contains(TextPlaceholder, StringComparison.Ordinal))
        {
            throw new ArgumentException($"the prompt '{prompt}' has no {TextPlaceholder} for the text", nameof(prompt));
        }

        _prompt = prompt;
        _model = model;
        _tokenizer = tokenizer;
        _source = new int[layout.SeqLen];
        _output = new int[layout.DecoderSeqLen - _prefix.Length];
    }

    /// <summary>The ids the decoder reads before it generates (NLLB's target language code); empty for none.</summary>
    public IReadOnlyList<int> Prefix => _prefix;

    /// <summary>The source the encoder reads for a text, <see cref="TextPlaceholder"/> standing for it; null when it reads the text alone.</summary>
    public string? Prompt => _prompt;

    /// <summary>The source written for <paramref name="text"/>: the text in the prompt, or the text alone.</summary>
    public string SourceFor(string text) => _prompt?.Replace(TextPlaceholder, text, StringComparison.Ordinal) ?? text;

    /// <summary>The most tokens a translation can have: the model's TargetSeqLen, less the positions the prefix takes.</summary>
    public int MaxTranslationTokens => _output.Length;

    /// <summary>Translates <paramref name="text"/>.</summary>
    /// <exception cref="ArgumentException">The text holds the padding token written out (<c>&lt;pad&gt;</c>) before other tokens.</exception>
    public Translation Translate(string text, TranslationSettings settings)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.BeamWidth, 1, nameof(settings));
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.MaxTokens, 1, nameof(settings));
        string sourceText = SourceFor(text);
        int fullLength = _tokenizer.Encode(sourceText).Count;
        int length = _tokenizer.Encode(sourceText, _source, addSpecialTokens: true, maxTokens: _source.Length);
        ReadOnlySpan<int> source = _source.AsSpan(0, length);
        int limit = Math.Min(settings.MaxTokens, _output.Length);
        Span<int> output = _output.AsSpan(0, limit);

        long started = Stopwatch.GetTimestamp();
        int count = settings.BeamWidth == 1
            ? _model.Translate(source, output, sampler: null, prefix: _prefix)
            : _model.BeamSearch(source, output, settings.BeamWidth, settings.LengthPenalty, _prefix);
        TimeSpan elapsed = Stopwatch.GetElapsedTime(started);

        // Both stop at </s> without writing it, so a full output means a limit ended the translation.
        TranslationStop stop = count < limit ? TranslationStop.EndOfSentence
            : limit == settings.MaxTokens ? TranslationStop.MaxTokens
            : TranslationStop.TargetLength;
        int[] tokens = output[..count].ToArray();
        int[] known = Array.FindAll(tokens, id => id < _tokenizer.VocabSize);
        return new Translation(text, source.ToArray(), fullLength, tokens, _tokenizer.Decode(known), stop, elapsed, tokens.Length - known.Length);
    }
}
