using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using TransformerGen;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TransformerGen.ChatServer;
using TransformerGen.Samples.Serving;
using TransformerGen.Samples.Tests.Support;
using Xunit;

namespace TransformerGen.Samples.Tests.ChatServer;

/// <summary>What the chat server refuses at start: another model's folder, a tokenizer without a chat template, limits the model cannot hold.</summary>
public sealed class ChatServerStartupTests(TinyChatServerFolder folder) : IClassFixture<TinyChatServerFolder>
{
    /// <summary>The engine the server builds at start, from settings bound as the host binds the command line's.</summary>
    private static StartupException Refusal(string path, IReadOnlyDictionary<string, string>? settings = null, ServedChatModel? served = null) =>
        Assert.Throws<StartupException>(() => new ChatEngine(new ServedChatModels([served ?? ChatServerFactory.TinyModel]), Options.Create(ServerSettings.Bind<ServerOptions>(path, settings)),
                                                             new ServerMetrics(), NullLogger<ChatEngine>.Instance, []));

    [Fact]
    public void The_program_compiled_for_SmolLM2_refuses_another_Llama_before_reading_its_weights()
    {
        StartupException e = Refusal(folder.Path, served: ServedChatModel.SmolLm2);
        Assert.Contains("describes another model than the one this server was compiled for (HuggingFaceTB/SmolLM2-135M-Instruct)", e.Message);
        Assert.Contains("hidden_size: 48 in the folder, 576 compiled", e.Message);
        Assert.Contains("samples/Chat/models/SmolLM2-135M-Instruct/config.json", e.Message);
    }

    [Fact]
    public void The_program_picks_gemma_3_and_llama_3_2_by_the_folders_config_and_refuses_another_family_naming_them()
    {
        StartupException Start(string path) => Assert.Throws<StartupException>(() => new ChatEngine(ServedChatModels.All,
            Options.Create(ServerSettings.Bind<ServerOptions>(path, null)), new ServerMetrics(), NullLogger<ChatEngine>.Instance, []));

        using var gemma = new TempFolder();
        gemma.Write("config.json", ChatSample.ChatModelSpec.Gemma3_270mIt.CompiledConfig);
        Assert.Equal($"The model folder '{gemma.Path}' lacks model.safetensors, tokenizer.model, tokenizer_config.json (download them from https://huggingface.co/google/gemma-3-270m-it).",
                     Start(gemma.Path).Message);

        // Llama-3.2-1B-Instruct's and 3B-Instruct's configs pick them among the three llama models by their sizes.
        using var llama = new TempFolder();
        llama.Write("config.json", ChatSample.ChatModelSpec.Llama3_2_1BInstruct.CompiledConfig);
        Assert.Equal($"The model folder '{llama.Path}' lacks model.safetensors, tokenizer.json, tokenizer_config.json (download them from https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct).",
                     Start(llama.Path).Message);
        using var llama3B = new TempFolder();
        llama3B.Write("config.json", ChatSample.ChatModelSpec.Llama3_2_3BInstruct.CompiledConfig);
        Assert.Equal($"The model folder '{llama3B.Path}' lacks {string.Join(", ", ChatSample.ChatModelSpec.Llama3_2_3BInstruct.Files.Where(f => f != "config.json"))} (download them from https://huggingface.co/meta-llama/Llama-3.2-3B-Instruct).",
                     Start(llama3B.Path).Message);

        using var other = new TempFolder();
        other.Write("config.json", """{"model_type": "qwen3"}""");
        Assert.Contains("has model_type qwen3; this program runs llama (HuggingFaceTB/SmolLM2-135M-Instruct), gemma3_text (google/gemma-3-270m-it), llama (meta-llama/Llama-3.2-1B-Instruct), llama (meta-llama/Llama-3.2-3B-Instruct), qwen2 (Qwen/Qwen2.5-0.5B-Instruct).", Start(other.Path).Message);

        using var empty = new TempFolder();
        Assert.Equal($"The model folder '{empty.Path}' lacks config.json, which says which model it holds (HuggingFaceTB/SmolLM2-135M-Instruct or google/gemma-3-270m-it or meta-llama/Llama-3.2-1B-Instruct or meta-llama/Llama-3.2-3B-Instruct or Qwen/Qwen2.5-0.5B-Instruct).",
                     Start(empty.Path).Message);
    }

    [Fact]
    public async Task The_weights_are_the_models_default_unless_weights_names_a_type()
    {
        // Llama-3.2-3B-Instruct's default is 8 bits (its fp32 weights are 12.85 GB); the tiny model stands in for it.
        ServedChatModel eightBitByDefault = ChatServerFactory.TinyModel with { Spec = ChatServerFactory.TinyModel.Spec with { DefaultWeights = WeightType.Int8 } };
        Assert.Equal(WeightType.Int8, ServedChatModel.Llama32_3B.Spec.DefaultWeights);
        async Task<WeightType> Started(ServedChatModel served, string? weights)
        {
            await using var engine = new ChatEngine(new ServedChatModels([served]),
                Options.Create(ServerSettings.Bind<ServerOptions>(folder.Path, weights is null ? null : new Dictionary<string, string> { ["weights"] = weights })),
                new ServerMetrics(), NullLogger<ChatEngine>.Instance, []);
            return engine.WeightType;
        }
        Assert.Equal(WeightType.Float32, await Started(ChatServerFactory.TinyModel, null));
        Assert.Equal(WeightType.Int8, await Started(eightBitByDefault, null));
        Assert.Equal(WeightType.Float32, await Started(eightBitByDefault, "Float32"));
        Assert.Equal(WeightType.BFloat16, await Started(ChatServerFactory.TinyModel, "BFloat16"));
    }

    [Fact]
    public void A_tokenizer_without_a_chat_template_is_refused()
    {
        using TempFolder plain = TinyChat.Folder(TinyChat.Model(seed: 3), chatTemplate: false);
        StartupException e = Refusal(plain.Path);
        Assert.StartsWith($"{plain.Path}: The folder has no chat template", e.Message);
        Assert.EndsWith("This server writes conversations out with the model's chat template.", e.Message);
    }

    [Fact]
    public void A_generation_config_that_cannot_be_sampled_from_is_refused_naming_the_key()
    {
        using TempFolder broken = TinyChat.Folder(TinyChat.Model(seed: 3));
        File.WriteAllText(broken.File(GenerationConfig.FileName), """{ "do_sample": true, "repetition_penalty": -1 }""");
        StartupException e = Refusal(broken.Path);
        Assert.StartsWith($"{broken.Path}: {broken.File(GenerationConfig.FileName)}: \"repetition_penalty\" is -1; it must be a number above 0", e.Message);

        // An end id beyond the model's vocabulary would never be drawn: refused too.
        File.WriteAllText(broken.File(GenerationConfig.FileName), """{ "eos_token_id": [2, 99999] }""");
        Assert.Contains("end-of-sequence id 99999 is outside", Refusal(broken.Path).Message);
    }

    [Fact]
    public void Limits_the_model_cannot_hold_are_refused_naming_the_option()
    {
        Assert.Equal("--max-sequences 9: at most TinyServedChat's Sequences, 8 (its key/value cache slots).",
                     Refusal(folder.Path, new Dictionary<string, string> { ["max-sequences"] = "9" }).Message);
        Assert.Equal("--max-step-tokens 4: from --max-sequences (8, a token for each running reply) to 128 (what one pass of TinyServedChat takes).",
                     Refusal(folder.Path, new Dictionary<string, string> { ["max-step-tokens"] = "4" }).Message);
        Assert.Equal("--max-tokens 0: at least 1.", Refusal(folder.Path, new Dictionary<string, string> { ["max-tokens"] = "0" }).Message);
        Assert.StartsWith("No model folder given: start the server with --model <folder> (the files of tests/tiny-chat).", Refusal("").Message);
    }

    [Fact]
    public void The_program_started_on_another_models_folder_names_the_differing_keys_and_exits_3()
    {
        SampleRun run = SampleProcess.Run(Path.Combine(AppContext.BaseDirectory, "ChatServer.dll"), ["--model", folder.Path, "--urls", "http://127.0.0.1:0"]);
        Assert.Equal(ServerHost.ExitCannotServe, run.ExitCode);
        Assert.StartsWith($"{Path.Combine(folder.Path, "config.json")} describes another model than the one this server was compiled for (HuggingFaceTB/SmolLM2-135M-Instruct)", run.Error);
    }
}
