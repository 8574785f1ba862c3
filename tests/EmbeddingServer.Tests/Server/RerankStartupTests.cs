using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TransformerGen.EmbeddingServer.Tests.Support;
using TransformerGen.Samples.Serving;
using TransformerGen.Samples.Tests.Support;
using Xunit;

namespace TransformerGen.EmbeddingServer.Tests.Server;

/// <summary>
/// What the server refuses at start about <c>--reranker</c>: another cross-encoder's folder (naming the differing keys,
/// also for the program's own ms-marco-MiniLM-L-6-v2 and ms-marco-electra-base), a folder of a model_type no reranker has
/// or without config.json (naming the rerankers the server runs), a missing folder or files, an empty option, a program
/// without a reranker, and a compiled reranker that is not a cross-encoder.
/// </summary>
public sealed class RerankStartupTests(TinyBertFolder folder, TinyCrossEncoderFolder reranker, TinyElectraCrossEncoderFolder electra)
    : IClassFixture<TinyBertFolder>, IClassFixture<TinyCrossEncoderFolder>, IClassFixture<TinyElectraCrossEncoderFolder>
{
    private StartupException Refusal(string rerankerPath, ServedModel? served = null, IReadOnlyDictionary<string, string>? settings = null)
    {
        var all = new Dictionary<string, string> { ["reranker"] = rerankerPath };
        foreach ((string key, string value) in settings ?? new Dictionary<string, string>()) all[key] = value;
        return Assert.Throws<StartupException>(() => new EmbeddingEngine(new ServedModels([served ?? ServerFactory.TinyBertModel]), Options.Create(ServerSettings.Bind<ServerOptions>(folder.Path, all)),
                                                                         new ServerMetrics(), NullLogger<EmbeddingEngine>.Instance));
    }

    [Fact]
    public void A_cross_encoder_folder_whose_config_differs_from_the_compiled_one_is_refused_naming_the_key()
    {
        using var other = new TempFolder();
        other.CopyFrom(reranker.Folder, "model.safetensors", "vocab.txt", "tokenizer_config.json");
        var config = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(TinyCrossEncoderFolder.CompiledConfig)!;
        config["num_hidden_layers"] = JsonSerializer.SerializeToElement(3);
        other.Write("config.json", JsonSerializer.Serialize(config));

        StartupException e = Refusal(other.Path);
        Assert.Contains("describes another model than the one this server was compiled for (tests/tiny-cross-encoder)", e.Message);
        Assert.Contains("num_hidden_layers: 3 in the folder, 2 compiled", e.Message);
        Assert.Contains("tests/EmbeddingServer.Tests/Models/tiny-cross-encoder/config.json", e.Message);
    }

    [Fact]
    public void The_program_compiled_for_ms_marco_MiniLM_L_6_v2_refuses_another_cross_encoder_before_reading_its_weights()
    {
        // The program's rerankers pick ms-marco-MiniLM-L-6-v2 for this bert folder.
        StartupException e = Refusal(reranker.Path, ServerFactory.TinyBertModel with { Rerankers = ServedModel.AllMiniLmL6V2.Rerankers });
        Assert.Contains("(cross-encoder/ms-marco-MiniLM-L-6-v2)", e.Message);
        Assert.Contains("hidden_size: 48 in the folder, 384 compiled", e.Message);
        Assert.Contains("num_hidden_layers: 2 in the folder, 6 compiled", e.Message);
        Assert.Contains("samples/EmbeddingServer/models/ms-marco-MiniLM-L-6-v2/config.json", e.Message);
        // And the compiled tiny cross-encoder refuses ms-marco-MiniLM-L-6-v2's folder.
        using var msMarco = new TempFolder();
        msMarco.Write("config.json", ServedModel.MsMarcoMiniLmL6V2.CompiledConfig);
        Assert.Contains("hidden_size: 384 in the folder, 48 compiled", Refusal(msMarco.Path).Message);
    }

    [Fact]
    public void A_folder_that_lacks_files_or_does_not_exist_and_an_empty_option_are_refused()
    {
        using var partial = new TempFolder();
        partial.CopyFrom(reranker.Folder, "config.json", "vocab.txt");
        Assert.StartsWith($"The model folder '{partial.Path}' lacks model.safetensors, tokenizer_config.json", Refusal(partial.Path).Message);

        string missing = Path.Combine(Path.GetTempPath(), "no-such-reranker-" + Guid.NewGuid().ToString("N"));
        Assert.Equal($"The model folder '{missing}' does not exist.", Refusal(missing).Message);
        Assert.StartsWith("--reranker is empty: give a cross-encoder folder", Refusal("").Message);
    }

    [Fact]
    public void A_program_without_a_reranker_or_with_one_that_is_not_a_cross_encoder_is_refused()
    {
        Assert.Equal($"--reranker {reranker.Path}: this server was built without a reranker for tests/tiny-bert.",
                     Refusal(reranker.Path, ServerFactory.TinyBertModel with { Rerankers = [] }).Message);

        // TinyBert (a sentence embedder) registered as the reranker, on its own folder.
        StartupException e = Refusal(folder.Path, ServerFactory.TinyBertModel with { Rerankers = [ServerFactory.TinyBertModel with { Rerankers = [] }] });
        Assert.Contains("does not give one score per sequence; a reranker is a classifier with one label (a cross-encoder)", e.Message);
    }

    [Fact]
    public void The_program_compiled_for_ms_marco_electra_base_refuses_another_electra_cross_encoder_before_reading_its_weights()
    {
        // The program's rerankers pick ms-marco-electra-base for this electra folder, and name what differs.
        StartupException e = Refusal(electra.Path, ServerFactory.TinyBertModel with { Rerankers = ServedModel.AllMpnetBaseV2.Rerankers });
        Assert.Contains("(cross-encoder/ms-marco-electra-base)", e.Message);
        Assert.Contains("embedding_size: 32 in the folder, 768 compiled", e.Message);
        Assert.Contains("hidden_size: 48 in the folder, 768 compiled", e.Message);
        Assert.Contains("samples/EmbeddingServer/models/ms-marco-electra-base/config.json", e.Message);
        Assert.DoesNotContain("ms-marco-MiniLM", e.Message);
        // And the compiled tiny rerankers pick the tiny ELECTRA for ms-marco-electra-base's folder, and refuse it.
        using var msMarco = new TempFolder();
        msMarco.Write("config.json", ServedModel.MsMarcoElectraBase.CompiledConfig);
        string message = Refusal(msMarco.Path).Message;
        Assert.Contains("(tests/tiny-electra-cross-encoder)", message);
        Assert.Contains("hidden_size: 768 in the folder, 48 compiled", message);
    }

    [Fact]
    public void A_folder_of_a_model_type_no_reranker_has_or_without_config_json_is_refused_naming_the_rerankers()
    {
        using var other = new TempFolder();
        other.CopyFrom(reranker.Folder, "model.safetensors", "vocab.txt", "tokenizer_config.json");
        var config = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(TinyCrossEncoderFolder.CompiledConfig)!;
        config["model_type"] = JsonSerializer.SerializeToElement("roberta");
        other.Write("config.json", JsonSerializer.Serialize(config));
        string configPath = Path.Combine(other.Path, "config.json");
        Assert.StartsWith($"{configPath} has model_type roberta; this program runs bert (tests/tiny-cross-encoder), electra (tests/tiny-electra-cross-encoder).",
                          Refusal(other.Path).Message);
        // The program's own rerankers, named the same way.
        Assert.StartsWith($"{configPath} has model_type roberta; this program runs bert (cross-encoder/ms-marco-MiniLM-L-6-v2), electra (cross-encoder/ms-marco-electra-base).",
                          Refusal(other.Path, ServerFactory.TinyBertModel with { Rerankers = ServedModel.AllMiniLmL6V2.Rerankers }).Message);

        File.Delete(configPath);
        Assert.Equal($"The model folder '{other.Path}' lacks config.json, which says which model it holds (tests/tiny-cross-encoder or tests/tiny-electra-cross-encoder).",
                     Refusal(other.Path).Message);
    }

    [Fact]
    public void The_program_compiles_both_cross_encoders_beside_the_bert_and_mpnet_embedders_only()
    {
        Assert.Equal(["cross-encoder/ms-marco-MiniLM-L-6-v2", "cross-encoder/ms-marco-electra-base"], ServedModel.AllMiniLmL6V2.Rerankers.Select(r => r.Repository));
        Assert.Equal(["bert", "electra"], ServedModel.AllMpnetBaseV2.Rerankers.Select(r => r.ModelType));
        Assert.Empty(ServedModel.EmbeddingGemma300m.Rerankers);
        Assert.Empty(ServedModel.GteModernBertBase.Rerankers);
    }
}
