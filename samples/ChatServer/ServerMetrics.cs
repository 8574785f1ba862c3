using System;
using Prometheus;
using TransformerGen.Samples.Serving;
using TransformerGen.Serving;

namespace TransformerGen.ChatServer;

/// <summary>
/// The counters <c>GET /metrics</c> shows (prometheus-net, in the Prometheus text format), besides the requests by status
/// code that every sample server counts.
/// </summary>
public sealed class ServerMetrics : ServerMetricsBase
{
    /// <summary>The code counted for a request whose client went away before its answer was whole (nginx's "client closed request").</summary>
    public const int ClientClosedRequest = 499;

    private readonly Counter _promptTokens;
    private readonly Counter _completionTokens;
    private readonly Counter _cachedPromptTokens;
    private readonly Histogram _stepSequences;
    private readonly Histogram _stepTokens;
    private readonly Histogram _stepSeconds;
    private readonly Gauge _active;
    private readonly Gauge _queued;

    public ServerMetrics()
        : base("chat_requests_total", $"POST /v1/chat/completions requests, by HTTP status code ({ClientClosedRequest}: the client went away first).")
    {
        _promptTokens = Factory.CreateCounter("chat_prompt_tokens_total", "Prompt tokens of the generations run (the chat template's rendering of the messages).");
        _completionTokens = Factory.CreateCounter("chat_completion_tokens_total", "Tokens generated, stop ids not counted (also those of replies whose client went away).");
        _cachedPromptTokens = Factory.CreateCounter("chat_prompt_tokens_cached_total", "Prompt tokens taken from a free cache slot that held them (an earlier turn of the conversation) instead of being run.");
        _stepSequences = CreateHistogram("chat_step_sequences", "Conversations per step of the model.", [1, 2, 3, 4, 6, 8, 12, 16]);
        _stepTokens = CreateHistogram("chat_step_tokens", "Tokens per step of the model: one per decoding conversation, plus prompt chunks.", Histogram.ExponentialBuckets(1, 2, 12));
        _stepSeconds = CreateHistogram("chat_step_seconds", "The model's time per step.", Histogram.ExponentialBuckets(0.0005, 2, 12));
        _active = Factory.CreateGauge("chat_active_sequences", "Conversations holding a cache slot when the metrics were read.");
        _queued = Factory.CreateGauge("chat_queued_requests", "Requests waiting for a cache slot when the metrics were read.");
    }

    /// <summary>Reads the batcher's running and waiting counts each time the metrics are collected.</summary>
    public void TrackBatcher(Func<int> active, Func<int> queued) => Registry.AddBeforeCollectCallback(() =>
    {
        _active.Set(active());
        _queued.Set(queued());
    });

    /// <summary>Counts the tokens of one generation.</summary>
    public void ObserveTokens(int prompt, int completion)
    {
        _promptTokens.Inc(prompt);
        _completionTokens.Inc(completion);
    }

    /// <summary>Records one step (called by the batcher on its thread).</summary>
    public void ObserveStep(DecoderStep step)
    {
        _stepSequences.Observe(step.Sequences);
        _stepTokens.Observe(step.Tokens);
        _stepSeconds.Observe(step.Elapsed.TotalSeconds);
        _cachedPromptTokens.Inc(step.ReusedPromptTokens);
    }
}
