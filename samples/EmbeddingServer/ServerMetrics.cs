using Prometheus;
using TransformerGen.Samples.Serving;
using TransformerGen.Serving;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// The counters <c>GET /metrics</c> shows (prometheus-net, in the Prometheus text format), besides the requests by status
/// code that every sample server counts: the embeddings' and, under <c>rerank_</c>, the reranker's.
/// </summary>
public sealed class ServerMetrics : ServerMetricsBase
{
    private readonly Counter _inputs;
    private readonly Counter _tokens;
    private readonly Counter _truncated;
    private readonly Histogram _batchSequences;
    private readonly Histogram _batchTokens;
    private readonly Histogram _batchSeconds;
    private readonly Gauge _queued;
    private readonly Counter _rerankRequests;
    private readonly Counter _rerankPairs;
    private readonly Counter _rerankTokens;
    private readonly Counter _rerankTruncated;
    private readonly Histogram _rerankBatchSequences;
    private readonly Histogram _rerankBatchTokens;
    private readonly Histogram _rerankBatchSeconds;
    private readonly Gauge _rerankQueued;

    public ServerMetrics()
        : base("embeddings_requests_total", "POST /v1/embeddings requests answered, by HTTP status code.")
    {
        _inputs = Factory.CreateCounter("embeddings_inputs_total", "Sentences embedded.");
        _tokens = Factory.CreateCounter("embeddings_tokens_total", "Tokens the model ran for embedded sentences, [CLS] and [SEP] included.");
        _truncated = Factory.CreateCounter("embeddings_truncated_inputs_total", "Sentences cut at SeqLen tokens.");
        _batchSequences = CreateHistogram("embeddings_batch_sequences", "Sentences per batch the model ran.", [1, 2, 4, 8, 16, 32, 64]);
        _batchTokens = CreateHistogram("embeddings_batch_tokens", "Tokens per batch the model ran (laid end to end, no padding).", Histogram.ExponentialBuckets(16, 2, 9));
        _batchSeconds = CreateHistogram("embeddings_batch_seconds", "The model's time per batch.", Histogram.ExponentialBuckets(0.001, 2, 12));
        _queued = Factory.CreateGauge("embeddings_queued_sentences", "Sentences waiting for a batch when the metrics were read.");

        _rerankRequests = Factory.CreateCounter("rerank_requests_total", "POST /rerank requests answered, by HTTP status code.", "code");
        _rerankPairs = Factory.CreateCounter("rerank_pairs_total", "Query–passage pairs scored.");
        _rerankTokens = Factory.CreateCounter("rerank_tokens_total", "Tokens the model ran for scored pairs, special tokens included.");
        _rerankTruncated = Factory.CreateCounter("rerank_truncated_pairs_total", "Pairs cut at SeqLen tokens.");
        _rerankBatchSequences = CreateHistogram("rerank_batch_sequences", "Pairs per batch the reranker ran.", [1, 2, 4, 8, 16, 32, 64]);
        _rerankBatchTokens = CreateHistogram("rerank_batch_tokens", "Tokens per batch the reranker ran (laid end to end, no padding).", Histogram.ExponentialBuckets(16, 2, 10));
        _rerankBatchSeconds = CreateHistogram("rerank_batch_seconds", "The reranker's time per batch.", Histogram.ExponentialBuckets(0.001, 2, 12));
        _rerankQueued = Factory.CreateGauge("rerank_queued_pairs", "Pairs waiting for a batch when the metrics were read.");
    }

    /// <summary>Reads the batcher's queue length each time the metrics are collected.</summary>
    public void TrackQueue(System.Func<int> queued) => Registry.AddBeforeCollectCallback(() => _queued.Set(queued()));

    /// <summary>Counts the sentences and tokens of one successful request.</summary>
    public void ObserveInputs(int inputs, long tokens, int truncated)
    {
        _inputs.Inc(inputs);
        _tokens.Inc(tokens);
        if (truncated > 0) _truncated.Inc(truncated);
    }

    /// <summary>Records one batch (called by the batcher on the worker's thread).</summary>
    public void ObserveBatch(EncoderBatch batch)
    {
        _batchSequences.Observe(batch.Sequences);
        _batchTokens.Observe(batch.Tokens);
        _batchSeconds.Observe(batch.Elapsed.TotalSeconds);
    }

    /// <summary>Reads the reranker's queue length each time the metrics are collected.</summary>
    public void TrackRerankQueue(System.Func<int> queued) => Registry.AddBeforeCollectCallback(() => _rerankQueued.Set(queued()));

    /// <summary>Counts one answered rerank request.</summary>
    public void ObserveRerankRequest(int statusCode) => _rerankRequests.WithLabels(statusCode.ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();

    /// <summary>Counts the pairs and tokens of one successful rerank request.</summary>
    public void ObserveRerankPairs(int pairs, long tokens, int truncated)
    {
        _rerankPairs.Inc(pairs);
        _rerankTokens.Inc(tokens);
        if (truncated > 0) _rerankTruncated.Inc(truncated);
    }

    /// <summary>Records one batch of the reranker (called by its batcher on the worker's thread).</summary>
    public void ObserveRerankBatch(EncoderBatch batch)
    {
        _rerankBatchSequences.Observe(batch.Sequences);
        _rerankBatchTokens.Observe(batch.Tokens);
        _rerankBatchSeconds.Observe(batch.Elapsed.TotalSeconds);
    }
}
