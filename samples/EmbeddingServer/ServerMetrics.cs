using Prometheus;
using TransformerGen.Serving;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// The counters <c>GET /metrics</c> shows (prometheus-net, in the Prometheus text format), in a registry of the server's
/// own, so two servers in one process (tests) count apart.
/// </summary>
public sealed class ServerMetrics
{
    private readonly Counter _requests;
    private readonly Counter _inputs;
    private readonly Counter _tokens;
    private readonly Counter _truncated;
    private readonly Histogram _batchSequences;
    private readonly Histogram _batchTokens;
    private readonly Histogram _batchSeconds;
    private readonly Gauge _queued;

    public ServerMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        MetricFactory factory = Metrics.WithCustomRegistry(Registry);
        _requests = factory.CreateCounter("embeddings_requests_total", "POST /v1/embeddings requests answered, by HTTP status code.", "code");
        _inputs = factory.CreateCounter("embeddings_inputs_total", "Sentences embedded.");
        _tokens = factory.CreateCounter("embeddings_tokens_total", "Tokens the model ran for embedded sentences, [CLS] and [SEP] included.");
        _truncated = factory.CreateCounter("embeddings_truncated_inputs_total", "Sentences cut at SeqLen tokens.");
        _batchSequences = factory.CreateHistogram("embeddings_batch_sequences", "Sentences per batch the model ran.",
            new HistogramConfiguration { Buckets = [1, 2, 4, 8, 16, 32, 64] });
        _batchTokens = factory.CreateHistogram("embeddings_batch_tokens", "Tokens per batch the model ran (laid end to end, no padding).",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(16, 2, 9) });
        _batchSeconds = factory.CreateHistogram("embeddings_batch_seconds", "The model's time per batch.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 12) });
        _queued = factory.CreateGauge("embeddings_queued_sentences", "Sentences waiting for a batch when the metrics were read.");
    }

    /// <summary>The registry <c>/metrics</c> exports.</summary>
    public CollectorRegistry Registry { get; }

    /// <summary>Reads the batcher's queue length each time the metrics are collected.</summary>
    public void TrackQueue(System.Func<int> queued) => Registry.AddBeforeCollectCallback(() => _queued.Set(queued()));

    /// <summary>Counts one answered request.</summary>
    public void ObserveRequest(int statusCode) => _requests.WithLabels(statusCode.ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();

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
