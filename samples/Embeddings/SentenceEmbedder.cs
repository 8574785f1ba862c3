using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Numerics.Tensors;
using TransformerGen;
using TransformerGen.Samples.Hub;
using TransformerGen.Tokenizers;

namespace EmbeddingsSample;

/// <summary>
/// Turns texts into sentence embeddings with a compiled encoder (<see cref="MiniLm"/>, <see cref="NomicEmbedTextV15"/>):
/// each text, after the prefix given, is tokenized as sentence-transformers does ([CLS] … [SEP], cut at the model's
/// SeqLen ids with [SEP] kept), and run a batch at a time laid end to end at their own lengths
/// (<c>Predict(tokens, lengths)</c>): no padding is computed.
/// </summary>
public sealed class SentenceEmbedder
{
    private readonly EncoderModel _model;
    private readonly PretrainedTokenizer _tokenizer;
    private readonly int _width;
    private readonly int[] _tokens;
    private readonly int[] _lengths;

    /// <summary>Pairs a model with its tokenizer.</summary>
    /// <param name="model">An encoder compiled with a sentence-embedding head.</param>
    /// <param name="width">Its embedding's width (the generated <c>EmbeddingWidth</c>).</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <exception cref="ArgumentException">The tokenizer has ids beyond the model's vocabulary that are not special tokens (<see cref="VocabularyFit"/>), or pads with another id than the model masks.</exception>
    public SentenceEmbedder(EncoderModel model, int width, PretrainedTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        VocabularyFit.Check(tokenizer, model.Layout.Vocab, model.Layout.Name, nameof(tokenizer));

        int masked = model.Layout.PadToken;
        if (tokenizer.PadId is int pad && pad != masked)
        {
            throw new ArgumentException($"the tokenizer pads with id {pad}, the model masks id {masked} (config.json pad_token_id)", nameof(tokenizer));
        }

        _model = model;
        _tokenizer = tokenizer;
        _width = width;
        _tokens = new int[model.Layout.TokensPerStep];
        _lengths = new int[model.Layout.Batch];
    }

    /// <summary>Texts run at once.</summary>
    public int Batch => _model.Layout.Batch;

    /// <summary>Ids a text is cut at.</summary>
    public int SeqLen => _model.Layout.SeqLen;

    /// <summary>Embeds <paramref name="texts"/> a batch at a time, each after <paramref name="prefix"/> (a task prefix; none when empty).</summary>
    public SentenceEmbeddings Embed(IReadOnlyList<string> texts, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(prefix);
        int batch = Batch, seqLen = SeqLen, width = _width;
        var vectors = new float[texts.Count * width];
        long tokens = 0;
        int batches = 0, truncated = 0;
        long started = Stopwatch.GetTimestamp();
        for (int first = 0; first < texts.Count; first += batch)
        {
            int rows = Math.Min(batch, texts.Count - first), used = 0;
            for (int row = 0; row < rows; row++)
            {
                string text = prefix + texts[first + row];
                int written = _tokenizer.Encode(text, _tokens.AsSpan(used, seqLen), addSpecialTokens: true, maxTokens: seqLen);
                if (written == seqLen && _tokenizer.Encode(text).Count > seqLen)
                {
                    truncated++;
                }

                _lengths[row] = written;
                used += written;
            }

            tokens += used;
            _model.Predict(_tokens.AsSpan(0, used), _lengths.AsSpan(0, rows)).CopyTo(vectors.AsSpan(first * width));
            batches++;
        }

        return new SentenceEmbeddings(vectors, width, texts.Count, tokens, batches, truncated, Stopwatch.GetElapsedTime(started));
    }
}

/// <summary>The embeddings of a list of texts and what computing them took.</summary>
/// <param name="Vectors">[Count, Width], each row of unit length (or zero for a text of no tokens).</param>
/// <param name="Width">The model's embedding width.</param>
/// <param name="Count">Texts embedded.</param>
/// <param name="Tokens">Ids the model ran, special tokens and prefixes included (there is no padding).</param>
/// <param name="Batches">Batches of the model's Batch run.</param>
/// <param name="Truncated">Texts cut at the model's SeqLen ids.</param>
/// <param name="Elapsed">Tokenizing and running the model.</param>
public sealed record SentenceEmbeddings(float[] Vectors, int Width, int Count, long Tokens, int Batches, int Truncated, TimeSpan Elapsed)
{
    /// <summary>The embedding of text <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> this[int index] => Vectors.AsSpan(index * Width, Width);

    /// <summary>Ids per second.</summary>
    public double TokensPerSecond => Tokens / Elapsed.TotalSeconds;

    /// <summary>The cosine similarity of two embeddings (their dot product, as both have unit length, but computed in full).</summary>
    public static float Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b) => TensorPrimitives.CosineSimilarity(a, b);
}
