using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TransformerGen.EmbeddingServer.Tests.Support;
using TransformerGen.Samples.Serving;
using TransformerGen.Samples.Tests.Support;
using Xunit;

namespace TransformerGen.EmbeddingServer.Tests.Server;

/// <summary>What the server refuses at start: another model's folder (naming the differing keys), missing files, no folder, bad options.</summary>
public sealed class StartupTests(TinyBertFolder folder) : IClassFixture<TinyBertFolder>
{
    /// <summary>
    /// The engine the server builds at start, from settings bound as the host binds the command line's (the program itself
    /// prints the message and exits with 3: <see cref="ProgramTests"/>).
    /// </summary>
    private static StartupException Refusal(string path, IReadOnlyDictionary<string, string>? settings = null, ServedModel? served = null) =>
        Assert.Throws<StartupException>(() => new EmbeddingEngine(new ServedModels([served ?? ServerFactory.TinyBertModel]), Options.Create(ServerSettings.Bind<ServerOptions>(path, settings)),
                                                                  new ServerMetrics(), NullLogger<EmbeddingEngine>.Instance));

    [Fact]
    public void A_folder_whose_config_differs_from_the_compiled_one_is_refused_naming_the_key()
    {
        using var other = new TempFolder();
        other.CopyFrom(folder.Folder, "model.safetensors", "vocab.txt", "tokenizer_config.json");
        var config = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(TinyBertFolder.CompiledConfig)!;
        config["num_attention_heads"] = JsonSerializer.SerializeToElement(6);
        other.Write("config.json", JsonSerializer.Serialize(config));

        StartupException e = Refusal(other.Path);
        Assert.Contains("describes another model than the one this server was compiled for (tests/tiny-bert)", e.Message);
        Assert.Contains("num_attention_heads: 6 in the folder, 4 compiled", e.Message);
        Assert.DoesNotContain("hidden_size", e.Message);
        Assert.Contains("tests/EmbeddingServer.Tests/Models/tiny-bert/config.json", e.Message);
    }

    [Fact]
    public void The_program_compiled_for_all_MiniLM_L6_v2_refuses_another_BERT_before_reading_its_weights()
    {
        StartupException e = Refusal(folder.Path, served: ServedModel.AllMiniLmL6V2);
        Assert.Contains("(sentence-transformers/all-MiniLM-L6-v2)", e.Message);
        Assert.Contains("hidden_size: 48 in the folder, 384 compiled", e.Message);
        Assert.Contains("vocab_size: 256 in the folder, 30522 compiled", e.Message);
        Assert.Contains("samples/EmbeddingServer/models/all-MiniLM-L6-v2/config.json", e.Message);
    }

    [Fact]
    public void The_program_serves_all_mpnet_base_v2_by_the_folders_model_type_and_refuses_another_family_naming_both()
    {
        StartupException Start(string path) => Assert.Throws<StartupException>(() => new EmbeddingEngine(ServedModels.All,
            Options.Create(ServerSettings.Bind<ServerOptions>(path, null)), new ServerMetrics(), NullLogger<EmbeddingEngine>.Instance));

        using var mpnet = new TempFolder();
        mpnet.Write("config.json", ServedModel.AllMpnetBaseV2.CompiledConfig);
        Assert.StartsWith($"The model folder '{mpnet.Path}' lacks model.safetensors, vocab.txt, tokenizer_config.json (download them from https://huggingface.co/sentence-transformers/all-mpnet-base-v2)",
                          Start(mpnet.Path).Message);

        // The tiny BERT's folder is a bert: the program takes it for all-MiniLM-L6-v2 and names what differs.
        Assert.Contains("(sentence-transformers/all-MiniLM-L6-v2)", Start(folder.Path).Message);

        using var other = new TempFolder();
        other.Write("config.json", """{"model_type": "nomic_bert"}""");
        Assert.Contains("has model_type nomic_bert; this program runs bert (sentence-transformers/all-MiniLM-L6-v2), mpnet (sentence-transformers/all-mpnet-base-v2), gemma3_text (google/embeddinggemma-300m), modernbert (Alibaba-NLP/gte-modernbert-base).", Start(other.Path).Message);

        using var empty = new TempFolder();
        Assert.Equal($"The model folder '{empty.Path}' lacks config.json, which says which model it holds (sentence-transformers/all-MiniLM-L6-v2 or sentence-transformers/all-mpnet-base-v2 or google/embeddinggemma-300m or Alibaba-NLP/gte-modernbert-base).",
                     Start(empty.Path).Message);

        // EmbeddingGemma's folder is told its own files: the Gemma tokenizer's and the sentence-transformers modules'.
        using var gemma = new TempFolder();
        gemma.Write("config.json", ServedModel.EmbeddingGemma300m.CompiledConfig);
        Assert.StartsWith($"The model folder '{gemma.Path}' lacks model.safetensors, tokenizer.model, tokenizer_config.json, modules.json, 1_Pooling/config.json, 2_Dense/config.json, 2_Dense/model.safetensors, 3_Dense/config.json, 3_Dense/model.safetensors, config_sentence_transformers.json (download them from https://huggingface.co/google/embeddinggemma-300m)",
                          Start(gemma.Path).Message);
    }

    [Fact]
    public void A_folder_that_lacks_files_or_does_not_exist_is_refused_naming_them()
    {
        using var partial = new TempFolder();
        partial.CopyFrom(folder.Folder, "config.json", "vocab.txt");
        Assert.StartsWith($"The model folder '{partial.Path}' lacks model.safetensors, tokenizer_config.json", Refusal(partial.Path).Message);

        string missing = Path.Combine(Path.GetTempPath(), "no-such-model-" + Guid.NewGuid().ToString("N"));
        Assert.Equal($"The model folder '{missing}' does not exist.", Refusal(missing).Message);
        Assert.StartsWith("No model folder given: start the server with --model <folder>", Refusal("").Message);
    }

    [Fact]
    public void Options_out_of_range_are_refused_naming_the_option()
    {
        Assert.Equal("--workers 0: at least one worker is needed.", Refusal(folder.Path, new Dictionary<string, string> { ["workers"] = "0" }).Message);
        Assert.Equal("--max-inputs 0: at least 1.", Refusal(folder.Path, new Dictionary<string, string> { ["max-inputs"] = "0" }).Message);
        Assert.Contains("MaxSequences = 9 is outside 1 to the model's Batch = 8", Refusal(folder.Path, new Dictionary<string, string> { ["max-batch"] = "9" }).Message);
    }
}
