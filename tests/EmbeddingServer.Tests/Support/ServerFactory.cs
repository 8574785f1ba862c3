using System.Collections.Generic;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using TransformerGen.Samples.Tests.Support;

namespace TransformerGen.EmbeddingServer.Tests.Support;

/// <summary>
/// The server's own Program, started in process (Microsoft.AspNetCore.Mvc.Testing) on a model folder, with
/// <see cref="TinyBert"/> registered in place of all-MiniLM-L6-v2 (and <see cref="TinyCrossEncoder"/> and
/// <see cref="TinyElectraCrossEncoder"/> in place of ms-marco-MiniLM-L-6-v2 and ms-marco-electra-base, served with a
/// <c>reranker</c> setting) unless <paramref name="served"/> says otherwise.
/// Settings are given as the command line would give them (<c>model</c>, <c>max-inputs</c>, …), through the host's
/// configuration, so the option names are tested too.
/// </summary>
public sealed class ServerFactory(string folder, IReadOnlyDictionary<string, string>? settings = null, ServedModel? served = null)
    : InProcessServer<Program>(folder, settings)
{
    /// <summary>TinyCrossEncoder as a served reranker, checked against its own compiled config.json.</summary>
    public static ServedModel TinyCrossEncoderModel { get; } = new(
        "tests/tiny-cross-encoder", TinyCrossEncoderFolder.CompiledConfig, "tests/EmbeddingServer.Tests/Models/tiny-cross-encoder/config.json",
        TinyCrossEncoder.LoadWeights, weights => TinyCrossEncoder.ForInference(weights));

    /// <summary>TinyElectraCrossEncoder as a served reranker, checked against its own compiled config.json.</summary>
    public static ServedModel TinyElectraCrossEncoderModel { get; } = new(
        "tests/tiny-electra-cross-encoder", TinyElectraCrossEncoderFolder.CompiledConfig, "tests/EmbeddingServer.Tests/Models/tiny-electra-cross-encoder/config.json",
        TinyElectraCrossEncoder.LoadWeights, weights => TinyElectraCrossEncoder.ForInference(weights));

    /// <summary>
    /// TinyBert as a served model, checked against its own compiled config.json, with <see cref="TinyCrossEncoderModel"/>
    /// (bert) and <see cref="TinyElectraCrossEncoderModel"/> (electra) as its rerankers, as the program compiles two.
    /// </summary>
    public static ServedModel TinyBertModel { get; } = new(
        "tests/tiny-bert", TinyBertFolder.CompiledConfig, "tests/EmbeddingServer.Tests/Models/tiny-bert/config.json",
        TinyBert.LoadWeights, weights => TinyBert.ForInference(weights))
    {
        Rerankers = [TinyCrossEncoderModel, TinyElectraCrossEncoderModel],
    };

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("workers", "2"); // unless the test's settings say otherwise
        base.ConfigureWebHost(builder);
    }

    protected override void ConfigureServices(IServiceCollection services) => services.AddSingleton(new ServedModels([served ?? TinyBertModel]));
}
