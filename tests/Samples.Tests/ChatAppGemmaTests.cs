using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using ChatSample;
using TransformerGen;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using TempFolder = TransformerGen.Samples.Tests.Support.TempFolder;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// The Chat sample's second model, google/gemma-3-270m-it: a tiny Gemma 3 folder chats through Gemma's template (its
/// reply the model's own greedy continuation of the prompt written out by hand), and the real model is picked by its
/// config.json's model_type, told its own files, refused when its sizes differ, and compiled from the config it embeds.
/// </summary>
public sealed class ChatAppGemmaTests(ITestOutputHelper log)
{
    private static string TinyConfigPath => Path.Combine(AppContext.BaseDirectory, "Models", "tiny-gemma", "config.json");

    private static ChatModelSpec TinySpec { get; } = new(
        "tests/tiny-gemma",
        ["config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json"],
        File.ReadAllText(TinyConfigPath),
        "tests/Samples.Tests/Models/tiny-gemma/config.json",
        (folder, weights) => TinyGemmaChatModel.ForInference(folder, weights));

    [Theory]
    [InlineData("fp32", WeightType.Float32)]
    [InlineData("bf16", WeightType.BFloat16)]
    [InlineData("int8", WeightType.Int8)]
    public void A_tiny_gemma_3_chats_through_gemmas_template_and_replies_with_its_own_greedy_continuation(string weights, WeightType type)
    {
        using TempFolder folder = TinyFolder();
        (int exit, string output, string error) = Run([TinyChat.Spec, TinySpec], "--model", folder.Path, "--system", "Be brief", "--prompt", "Hello world", "--max-tokens", "6", "--weights", weights);
        log.WriteLine(output);
        Assert.True(exit == 0, error);
        Assert.Equal("", error);
        Assert.Contains("chat template: Gemma; stops at 1 <eos>, 106 <end_of_turn>; greedy", output);
        Assert.Matches($@"weights \d+\.\d\d s, {weights}, ", output);

        // The prompt as Gemma 3's template writes it, by hand: the system message heads the first user turn.
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path);
        int[] prompt = [.. tokenizer.Encode("<bos><start_of_turn>user\nBe brief\n\nHello world<end_of_turn>\n<start_of_turn>model\n", addSpecialTokens: false)];
        Assert.Equal([GemmaFolder.Bos, GemmaFolder.StartOfTurn], prompt[..2]);
        Assert.Contains(GemmaFolder.EndOfTurn, prompt);
        Assert.Contains($"\nprompt: {prompt.Length} tokens", output);

        // The model's own greedy continuation with its matrices held the same way, until a stop id or 6 tokens.
        TinyGemmaChatModel model = TinyGemmaChatModel.ForInference(folder.Path, type);
        float[] logits = model.Append(prompt).ToArray();
        var reply = new List<int>();
        var next = new int[1];
        while (reply.Count < 6)
        {
            next[0] = Array.IndexOf(logits, logits.Max());
            if (next[0] is GemmaFolder.Eos or GemmaFolder.EndOfTurn) break;
            reply.Add(next[0]);
            logits = model.Append(next).ToArray();
        }

        Assert.Contains($"\nreply: {reply.Count} tokens", output);
        Assert.Contains("\nassistant: " + tokenizer.Decode(reply.ToArray()), output);
    }

    [Fact]
    public void A_prompt_holding_the_token_past_the_models_table_is_refused()
    {
        using TempFolder folder = TinyFolder();
        (int exit, _, string error) = Run([TinySpec], "--model", folder.Path, "--prompt", "a <image_soft_token> b", "--max-tokens", "2");
        Assert.Equal(1, exit);
        Assert.Contains($"the prompt holds <image_soft_token> (id {GemmaFolder.ImageSoftToken}), which TinyGemmaChatModel has no embedding row for: its vocabulary is {TinyGemmaChatModel.Vocab}", error);
    }

    // A folder as gemma-3-270m-it's at toy size: the tiny config, the tiny Gemma tokenizer, random weights.
    private static TempFolder TinyFolder()
    {
        var folder = new TempFolder();
        File.Copy(TinyConfigPath, folder.File("config.json"));
        GemmaFolder.Write(folder.Path);
        TinyGemmaChatModel.ForInference(5UL).Save(folder.File("model.safetensors"));
        return folder;
    }

    [Fact]
    public void Without_a_folder_names_what_to_download_for_each_model()
    {
        (int exit, string output, string error) = Run(ChatModelSpec.All);
        Assert.Equal(ChatApp.ExitMissingModel, exit);
        Assert.Equal("", output);
        Assert.StartsWith("No model folder given (--model).", error);
        Assert.Contains("huggingface-cli download HuggingFaceTB/SmolLM2-135M-Instruct ", error);
        Assert.Contains("Or, for a folder whose config.json has model_type gemma3_text:", error);
        Assert.Contains("huggingface-cli download google/gemma-3-270m-it config.json model.safetensors tokenizer.model tokenizer_config.json generation_config.json --local-dir models/gemma-3-270m-it", error);
        Assert.Contains("https://huggingface.co/google/gemma-3-270m-it/resolve/main/tokenizer.model", error);
    }

    [Fact]
    public void A_folder_of_gemma_3s_config_alone_is_told_its_own_files()
    {
        using var folder = new TempFolder();
        folder.Write("config.json", ChatModelSpec.Gemma3_270mIt.CompiledConfig);
        (int exit, string output, string error) = Run(ChatModelSpec.All, "--model", folder.Path);
        Assert.Equal(ChatApp.ExitMissingModel, exit);
        Assert.Equal("", output);
        Assert.StartsWith($"The model folder '{folder.Path}' lacks model.safetensors, tokenizer.model, tokenizer_config.json.", error);
        Assert.Contains("dotnet run -c Release --project samples/Chat -- --model models/gemma-3-270m-it", error);
        Assert.DoesNotContain("SmolLM2", error);
    }

    [Fact]
    public void A_folder_without_config_json_is_told_both_models_and_another_family_is_refused()
    {
        using var empty = new TempFolder();
        (int exit, _, string error) = Run(ChatModelSpec.All, "--model", empty.Path);
        Assert.Equal(ChatApp.ExitMissingModel, exit);
        Assert.StartsWith($"The model folder '{empty.Path}' lacks config.json, which says which model it holds.", error);
        Assert.Contains("google/gemma-3-270m-it", error);

        using var other = new TempFolder();
        other.Write("config.json", """{"model_type": "qwen3"}""");
        (exit, _, error) = Run(ChatModelSpec.All, "--model", other.Path);
        Assert.Equal(ChatApp.ExitWrongModel, exit);
        Assert.Contains("has model_type qwen3; this program runs llama (HuggingFaceTB/SmolLM2-135M-Instruct), gemma3_text (google/gemma-3-270m-it), llama (meta-llama/Llama-3.2-1B-Instruct), llama (meta-llama/Llama-3.2-3B-Instruct), qwen2 (Qwen/Qwen2.5-0.5B-Instruct).", error);
    }

    [Fact]
    public void A_gemma_3_folder_of_other_sizes_is_refused_against_the_compiled_config()
    {
        using var other = new TempFolder();
        var config = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(ChatModelSpec.Gemma3_270mIt.CompiledConfig)!;
        config["hidden_size"] = JsonSerializer.SerializeToElement(1152);
        config["num_hidden_layers"] = JsonSerializer.SerializeToElement(26);
        config.Remove("layer_types"); // gemma-3-1b's older files: every sixth layer full, from the pattern
        config["rope_scaling"] = JsonSerializer.SerializeToElement(new Dictionary<string, object> { ["factor"] = 8.0, ["rope_type"] = "linear" });
        other.Write("config.json", JsonSerializer.Serialize(config));
        (int exit, string output, string error) = Run(ChatModelSpec.All, "--model", other.Path);
        Assert.Equal(ChatApp.ExitWrongModel, exit);
        Assert.Equal("", output);
        Assert.Contains("describes another model than the one this program was compiled for (google/gemma-3-270m-it)", error);
        Assert.Contains("hidden_size: 1152 in the folder, 640 compiled", error);
        Assert.Contains("num_hidden_layers: 26 in the folder, 18 compiled", error);
        Assert.Contains("rope_scaling: {factor=8,rope_type=linear} in the folder, null compiled", error);
        Assert.Contains("layer_types: [sliding_attention,", error); // 26 layers from the pattern against the 18 listed
        Assert.DoesNotContain("num_attention_heads", error);
        Assert.Contains("samples/Chat/models/gemma-3-270m-it/config.json", error);
    }

    [Fact]
    public void A_gemma_3_config_written_by_transformers_5_is_the_same_model_and_its_rope_parameters_are_compared()
    {
        Dictionary<string, JsonElement> Transformers5(double slidingTheta)
        {
            var config = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(ChatModelSpec.Gemma3_270mIt.CompiledConfig)!;
            config.Remove("rope_theta");
            config.Remove("rope_local_base_freq");
            config.Remove("rope_scaling");
            config["rope_parameters"] = JsonSerializer.SerializeToElement(new Dictionary<string, object>
            {
                ["full_attention"] = new Dictionary<string, object> { ["rope_theta"] = 1000000.0, ["rope_type"] = "default" },
                ["sliding_attention"] = new Dictionary<string, object> { ["rope_theta"] = slidingTheta, ["rope_type"] = "default" },
            });
            return config;
        }

        using var same = new TempFolder();
        same.Write("config.json", JsonSerializer.Serialize(Transformers5(10000.0)));
        (int exit, _, string error) = Run(ChatModelSpec.All, "--model", same.Path);
        Assert.Equal(ChatApp.ExitMissingModel, exit);
        Assert.StartsWith($"The model folder '{same.Path}' lacks model.safetensors", error);

        using var other = new TempFolder();
        other.Write("config.json", JsonSerializer.Serialize(Transformers5(20000.0)));
        (exit, _, error) = Run(ChatModelSpec.All, "--model", other.Path);
        Assert.Equal(ChatApp.ExitWrongModel, exit);
        Assert.Contains("rope_local_base_freq: 20000 in the folder, 10000 compiled", error);
        Assert.DoesNotContain("rope_theta:", error);
    }

    [Fact]
    public void The_embedded_config_is_the_one_gemma_3_was_compiled_from()
    {
        JsonElement root = CompiledConfigSizes.Assert(ChatModelSpec.Gemma3_270mIt.CompiledConfig, "gemma3_text",
            (Gemma3Chat.Vocab, Gemma3Chat.DModel, Gemma3Chat.Layers, Gemma3Chat.Heads, Gemma3Chat.KvHeads, Gemma3Chat.DFF, Gemma3Chat.HeadDim));
        Assert.Equal((262144, 640, 18, 4, 1, 2048, 256, 1024), (Gemma3Chat.Vocab, Gemma3Chat.DModel, Gemma3Chat.Layers, Gemma3Chat.Heads, Gemma3Chat.KvHeads, Gemma3Chat.DFF, Gemma3Chat.HeadDim, Gemma3Chat.SeqLen));
        // The cache passes the 512-key sliding window.
        Assert.True(Gemma3Chat.SeqLen > root.GetProperty("sliding_window").GetInt32());
    }

    private static (int Exit, string Output, string Error) Run(IReadOnlyList<ChatModelSpec> specs, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = ChatApp.Run(args, output, error, specs);
        return (exit, output.ToString(), error.ToString());
    }
}
