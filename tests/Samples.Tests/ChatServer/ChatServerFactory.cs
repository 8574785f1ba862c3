using System;
using System.Collections.Generic;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using TransformerGen.ChatServer;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Serving;

namespace TransformerGen.Samples.Tests.ChatServer;

/// <summary>
/// The chat server's own Program, started in process (Microsoft.AspNetCore.Mvc.Testing) on a model folder, with
/// <see cref="TinyServedChat"/> registered in place of SmolLM2. Settings go in as the command line gives them
/// (<c>max-step-tokens</c>, …), through the host's configuration, so that the option names are tested too; a
/// <paramref name="gate"/> sees every step of the batcher.
/// </summary>
public sealed class ChatServerFactory(string folder, IReadOnlyDictionary<string, string>? settings = null, IObserver<DecoderStep>? gate = null)
    : WebApplicationFactory<global::Program>
{
    /// <summary>The tiny model as the server takes one: the Chat sample's description of it, loaded as <see cref="TinyServedChat"/>.</summary>
    public static ServedChatModel TinyModel { get; } = new(TinyChat.Spec, TinyServedChat.LoadWeights, weights => TinyServedChat.ForInference(weights));

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("model", folder);
        foreach ((string key, string value) in settings ?? new Dictionary<string, string>()) builder.UseSetting(key, value);
        builder.ConfigureTestServices(services =>
        {
            services.AddSingleton(TinyModel);
            if (gate is not null) services.AddSingleton(gate);
        });
    }
}
