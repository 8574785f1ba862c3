using System.Globalization;
using Prometheus;

namespace TransformerGen.Samples.Serving;

/// <summary>
/// What the metrics of every sample server start from: a registry of the server's own, so that two servers in one
/// process (tests) count apart, which <c>GET /metrics</c> exports with prometheus-net's HTTP metrics, and the count of
/// the server's API requests by HTTP status code. Each server adds its own counters through <see cref="Factory"/>.
/// </summary>
public abstract class ServerMetricsBase
{
    private readonly Counter _requests;

    /// <param name="requestsName">The name of the requests counter (<c>embeddings_requests_total</c>).</param>
    /// <param name="requestsHelp">What it counts.</param>
    protected ServerMetricsBase(string requestsName, string requestsHelp)
    {
        Registry = Metrics.NewCustomRegistry();
        Factory = Metrics.WithCustomRegistry(Registry);
        _requests = Factory.CreateCounter(requestsName, requestsHelp, "code");
    }

    /// <summary>The registry <c>/metrics</c> exports.</summary>
    public CollectorRegistry Registry { get; }

    /// <summary>Creates the server's metrics in <see cref="Registry"/>.</summary>
    protected MetricFactory Factory { get; }

    /// <summary>Counts one answered request.</summary>
    public void ObserveRequest(int statusCode) => _requests.WithLabels(statusCode.ToString(CultureInfo.InvariantCulture)).Inc();

    /// <summary>A histogram of <see cref="Registry"/> with the given bucket bounds.</summary>
    protected Histogram CreateHistogram(string name, string help, double[] buckets) =>
        Factory.CreateHistogram(name, help, new HistogramConfiguration { Buckets = buckets });
}
