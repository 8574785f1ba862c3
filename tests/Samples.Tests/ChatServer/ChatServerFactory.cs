using System;
using System.Collections.Generic;
using Microsoft.Extensions.DependencyInjection;
using TransformerGen.ChatServer;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Serving;

namespace TransformerGen.Samples.Tests.ChatServer;

/// <summary>
/// The chat server in process on a model folder, with <see cref="TinyServedChat"/> registered in place of SmolLM2, and a
/// <paramref name="gate"/> (when given) seeing every step of the batcher.
/// </summary>
public sealed class ChatServerFactory(string folder, IReadOnlyDictionary<string, string>? settings = null, IObserver<DecoderStep>? gate = null)
    : InProcessServer<global::Program>(folder, settings)
{
    /// <summary>The tiny model as the server takes one: the Chat sample's description of it, loaded as <see cref="TinyServedChat"/>.</summary>
    public static ServedChatModel TinyModel { get; } = new(TinyChat.Spec, TinyServedChat.LoadWeights, weights => TinyServedChat.ForInference(weights));

    protected override void ConfigureServices(IServiceCollection services)
    {
        services.AddSingleton(new ServedChatModels([TinyModel]));
        if (gate is not null) services.AddSingleton(gate);
    }
}
