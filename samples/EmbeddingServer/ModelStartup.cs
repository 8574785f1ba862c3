using System;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// Loads the model when the host starts, before Kestrel listens: a folder the server cannot serve stops the start with
/// its <see cref="StartupException"/>, and <c>/health</c> answers only once the model is ready.
/// </summary>
public sealed class ModelStartup(IServiceProvider services) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        services.GetRequiredService<EmbeddingEngine>();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
