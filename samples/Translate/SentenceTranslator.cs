using System;
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
/// <param name="SourceTokens">The ids the encoder ran: the text's, closed by &lt;/s&gt;, cut to SeqLen when longer.</param>
/// <param name="FullSourceLength">How many ids the whole text has, &lt;/s&gt; included (more than <see cref="SourceTokens"/> when it was cut).</param>
/// <param name="Tokens">The translation's ids, without &lt;/s&gt;.</param>
/// <param name="Text">The translation.</param>
/// <param name="Stop">Why it ended.</param>
/// <param name="Elapsed">Encoding the source and decoding the translation (tokenizing not included).</param>
public sealed record Translation(string Source, int[] SourceTokens, int FullSourceLength, int[] Tokens, string Text, TranslationStop Stop, TimeSpan Elapsed)
{
    /// <summary>Whether the source was cut to fit the model's SeqLen.</summary>
    public bool Truncated => FullSourceLength > SourceTokens.Length;

    /// <summary>Target tokens per second of <see cref="Elapsed"/>.</summary>
    public double TokensPerSecond => Tokens.Length / Elapsed.TotalSeconds;
}

/// <summary>
/// Translates texts with a Marian model and its tokenizer: the source text is encoded with source.spm and closed by
/// &lt;/s&gt; (cut at the model's SeqLen as Hugging Face's <c>truncation=True</c> cuts it, keeping &lt;/s&gt;), the model
/// encodes it once and decodes from its start token through the key/value cache (greedily or by beam search), and the
/// target ids are decoded to text.
/// </summary>
public sealed class SentenceTranslator
{
    private readonly Seq2SeqModel _model;
    private readonly PretrainedTokenizer _tokenizer;
    private readonly int[] _source;
    private readonly int[] _output;

    /// <summary>Pairs a model with its tokenizer.</summary>
    /// <exception cref="ArgumentException">The tokenizer has ids beyond the model's vocabulary, or ends a source with another id than the model ends a translation with.</exception>
    public SentenceTranslator(Seq2SeqModel model, PretrainedTokenizer tokenizer)
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

        _model = model;
        _tokenizer = tokenizer;
        _source = new int[layout.SeqLen];
        _output = new int[layout.DecoderSeqLen];
    }

    /// <summary>Translates <paramref name="text"/>.</summary>
    /// <exception cref="ArgumentException">The text holds the padding token written out (<c>&lt;pad&gt;</c>) before other tokens.</exception>
    public Translation Translate(string text, TranslationSettings settings)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.BeamWidth, 1, nameof(settings));
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.MaxTokens, 1, nameof(settings));
        int fullLength = _tokenizer.Encode(text).Count;
        int length = _tokenizer.Encode(text, _source, addSpecialTokens: true, maxTokens: _source.Length);
        ReadOnlySpan<int> source = _source.AsSpan(0, length);
        int limit = Math.Min(settings.MaxTokens, _output.Length);
        Span<int> output = _output.AsSpan(0, limit);

        long started = Stopwatch.GetTimestamp();
        int count = settings.BeamWidth == 1
            ? _model.Translate(source, output)
            : _model.BeamSearch(source, output, settings.BeamWidth, settings.LengthPenalty);
        TimeSpan elapsed = Stopwatch.GetElapsedTime(started);

        // Both stop at </s> without writing it, so a full output means a limit ended the translation.
        TranslationStop stop = count < limit ? TranslationStop.EndOfSentence
            : limit == settings.MaxTokens ? TranslationStop.MaxTokens
            : TranslationStop.TargetLength;
        int[] tokens = output[..count].ToArray();
        return new Translation(text, source.ToArray(), fullLength, tokens, _tokenizer.Decode(tokens), stop, elapsed);
    }
}
