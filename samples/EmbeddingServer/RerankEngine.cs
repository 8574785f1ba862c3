using System;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using TransformerGen.Samples.Serving;
using TransformerGen.Serving;
using TransformerGen.Tokenizers;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// The cross-encoder folder of <c>--reranker</c> made ready to serve: its config.json checked against the compiled
/// reranker's, the tokenizer opened, the weights loaded once, and an <see cref="EncoderBatcher"/> of its own whose
/// sequences are query–passage pairs with their token types. Built by <see cref="EmbeddingEngine"/> when the server
/// starts; disposed with it.
/// </summary>
public sealed class RerankEngine : IAsyncDisposable
{
    private readonly PretrainedTokenizer _tokenizer;
    private readonly EncoderBatcher _batcher;
    // Whether the model reads token types (BERT's two segments); a model with one type takes every token as type 0.
    private readonly bool _typed;

    /// <summary>Refuses a folder that is missing, lacks files, or holds another model than <paramref name="served"/>, before any weights are read.</summary>
    /// <exception cref="StartupException">The folder cannot be served; the message says why.</exception>
    public static void Check(ServedModel served, string folder) =>
        ModelFolder.Check(folder, served.Repository, served.Files, served.CompiledConfig, served.SourceConfigPath);

    /// <summary>
    /// Checks and loads <paramref name="folder"/> with the workers and batch limits of <paramref name="o"/>
    /// (<c>--max-batch</c> capped at the reranker's Batch, <c>--max-batch-tokens</c> clamped to SeqLen to Batch·SeqLen).
    /// </summary>
    /// <exception cref="StartupException">The folder cannot be served, the compiled model is not a cross-encoder (one score per sequence), or a limit does not fit it.</exception>
    public RerankEngine(ServedModel served, string folder, ServerOptions o, ServerMetrics metrics, ILogger log)
    {
        Check(served, folder);
        ModelName = served.Repository;
        // --max-batch is the embedder's (up to its Batch, 16); the reranker's Batch (8) caps it here.
        (_tokenizer, WeightsBytes, Layout, _batcher) = EmbeddingEngine.Load(served, folder, o,
            layout => o.MaxBatch is int sequences ? Math.Min(sequences, layout.Batch) : null, metrics.ObserveRerankBatch,
            layout =>
            {
                if (layout.TargetVocab != 1 || layout.TargetLength != layout.Batch)
                    throw new StartupException($"{folder}: {served.Repository} was compiled as {layout.Name}, which does not give one score per sequence; a reranker is a classifier with one label (a cross-encoder).");
            });
        _typed = Layout.TokenTypes > 1;
        metrics.TrackRerankQueue(() => _batcher.Queued);

        log.LogInformation(
            "Reranking with {Repository} from {Folder}: {Workers} workers over one copy of the weights ({Bytes:N0} bytes); batches of up to {Sequences} pairs and {Tokens} tokens; SeqLen {SeqLen}",
            served.Repository, folder, o.Workers, WeightsBytes, _batcher.MaxSequences, _batcher.MaxTokens, Layout.SeqLen);
    }

    /// <summary>The Hub repository of the cross-encoder.</summary>
    public string ModelName { get; }

    /// <summary>Bytes of the one copy of the weights the workers share.</summary>
    public long WeightsBytes { get; }

    /// <summary>The compiled cross-encoder's sizes (SeqLen bounds a pair).</summary>
    public ModelLayout Layout { get; }

    /// <summary>Pairs waiting for a batch.</summary>
    public int Queued => _batcher.Queued;

    /// <summary>
    /// The ids and token types the model runs for the pair (<paramref name="query"/>, <paramref name="passage"/>), framed as
    /// Hugging Face frames it (BERT: <c>[CLS] query [SEP] passage [SEP]</c>, type 0 up to the first [SEP] and 1 after it),
    /// cut at SeqLen longest first as sentence-transformers' CrossEncoder cuts (<c>truncation=True</c>: the passage, usually
    /// the longer, loses ids first; <see cref="PretrainedTokenizer.EncodePair(string, string, Span{int}, out int, bool, int)"/>).
    /// <paramref name="fullLength"/> is the count before any cut.
    /// </summary>
    public Pair Tokenize(string query, string passage, out int fullLength)
    {
        int seqLen = Layout.SeqLen;
        var buffer = new int[seqLen];
        int length = _tokenizer.EncodePair(query, passage, buffer, out int secondStart, maxTokens: seqLen);
        // Only a pair that fills SeqLen may have been cut: count it whole.
        fullLength = length < seqLen ? length : _tokenizer.EncodePair(query, passage).Count;
        int[] ids = length == seqLen ? buffer : buffer[..length];
        int[]? types = null;
        if (_typed)
        {
            types = new int[length];
            types.AsSpan(secondStart).Fill(1);
        }
        return new Pair(ids, types);
    }

    /// <summary>The raw score (the logit) of one tokenized pair, batched with whatever else is being asked.</summary>
    public async Task<float> ScoreAsync(Pair pair, CancellationToken cancellationToken)
    {
        float[] row = pair.TokenTypes is null
            ? await _batcher.PredictAsync(pair.Ids, cancellationToken)
            : await _batcher.PredictAsync(pair.Ids, pair.TokenTypes, cancellationToken);
        return row[0];
    }

    /// <summary>Runs what is queued, then stops the workers.</summary>
    public ValueTask DisposeAsync() => _batcher.DisposeAsync();

    /// <summary>A pair's ids, and each id's token type (null when the model takes every token as type 0).</summary>
    public sealed record Pair(int[] Ids, int[]? TokenTypes);
}
