using Prometheus;
using TransformerGen.Samples.Serving;
using TransformerGen.Serving;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// The counters <c>GET /metrics</c> shows (prometheus-net, in the Prometheus text format), besides the requests by status
/// code that every sample server counts.
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
}
