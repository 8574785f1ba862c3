using System.Collections.Generic;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>
/// A sample server's own Program, started in process (Microsoft.AspNetCore.Mvc.Testing) on a model folder. Settings go in
/// as the command line gives them (<c>model</c>, <c>max-tokens</c>, …), through the host's configuration, so that the
/// option names are tested too; <see cref="ConfigureServices"/> registers what a test puts in the real model's place.
/// The chat server's tests and tests/EmbeddingServer.Tests (which links this file) derive from it.
/// </summary>
/// <typeparam name="TProgram">The server's entry point.</typeparam>
public abstract class InProcessServer<TProgram>(string folder, IReadOnlyDictionary<string, string>? settings) : WebApplicationFactory<TProgram>
    where TProgram : class
{
    /// <summary>Registers the test's services over the program's.</summary>
    protected abstract void ConfigureServices(IServiceCollection services);

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("model", folder);
        foreach ((string key, string value) in settings ?? new Dictionary<string, string>()) builder.UseSetting(key, value);
        builder.ConfigureTestServices(ConfigureServices);
    }
}
