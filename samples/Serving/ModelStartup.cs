using System;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace TransformerGen.Samples.Serving;

/// <summary>
/// Builds the server's engine (<typeparamref name="TEngine"/>, a singleton that loads the model) when the host starts,
/// before Kestrel listens: a folder the server cannot serve stops the start with its <see cref="StartupException"/>, and
/// <c>/health</c> answers only once the model is ready.
/// </summary>
public sealed class ModelStartup<TEngine>(IServiceProvider services) : IHostedService
    where TEngine : notnull
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        services.GetRequiredService<TEngine>();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
