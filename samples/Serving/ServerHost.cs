using System;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Prometheus;

namespace TransformerGen.Samples.Serving;

/// <summary>How the sample servers are put together and run.</summary>
public static class ServerHost
{
    /// <summary>
    /// A server with its options bound from ASP.NET Core's configuration (the command line, environment variables,
    /// appsettings.json), <paramref name="served"/>, its metrics and its engine as singletons, the engine built before
    /// Kestrel listens (<see cref="ModelStartup{TEngine}"/>), and <c>GET /metrics</c> with prometheus-net's HTTP metrics,
    /// all in the server's own registry. The caller maps its API and <c>/health</c>, then calls <see cref="Run"/>.
    /// </summary>
    /// <typeparam name="TOptions">The server's options.</typeparam>
    /// <typeparam name="TServed">What describes the compiled model (tests register another in its place).</typeparam>
    /// <typeparam name="TMetrics">The server's metrics.</typeparam>
    /// <typeparam name="TEngine">What loads the model at start and serves the requests.</typeparam>
    public static WebApplication Build<TOptions, TServed, TMetrics, TEngine>(string[] args, TServed served)
        where TOptions : ModelServerOptions
        where TServed : class
        where TMetrics : ServerMetricsBase
        where TEngine : class
    {
        WebApplicationBuilder builder = WebApplication.CreateBuilder(args);
        builder.Services.Configure<TOptions>(builder.Configuration);
        builder.Services.AddSingleton(served);
        builder.Services.AddSingleton<TMetrics>();
        builder.Services.AddSingleton<TEngine>();
        builder.Services.AddHostedService<ModelStartup<TEngine>>();

        WebApplication app = builder.Build();
        CollectorRegistry registry = app.Services.GetRequiredService<TMetrics>().Registry;
        app.UseHttpMetrics(options => options.SetMetricFactory(Metrics.WithCustomRegistry(registry)));
        app.MapMetrics("/metrics", registry);
        return app;
    }

    /// <summary>Exit code of a server that cannot serve what it was given (see <see cref="StartupException"/>).</summary>
    public const int ExitCannotServe = 3;

    /// <summary>Runs <paramref name="app"/> until it is stopped; a <see cref="StartupException"/> is printed to standard error instead of a stack trace.</summary>
    /// <returns>0, or <see cref="ExitCannotServe"/>.</returns>
    public static int Run(WebApplication app)
    {
        try
        {
            app.Run();
            return 0;
        }
        catch (StartupException e)
        {
            Console.Error.WriteLine(e.Message);
            return ExitCannotServe;
        }
    }
}
