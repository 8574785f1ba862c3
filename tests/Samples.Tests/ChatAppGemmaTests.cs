using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using ChatSample;
using TransformerGen.Samples.Tests.Support;
using Xunit;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// The Chat sample's second model, google/gemma-3-270m-it: picked by its config.json's model_type, told its own files,
/// refused when its sizes differ, and compiled from the config it embeds.
/// </summary>
public sealed class ChatAppGemmaTests
{
    [Fact]
    public void Without_a_folder_names_what_to_download_for_each_model()
    {
        (int exit, string output, string error) = Run(ChatModelSpec.All);
        Assert.Equal(ChatApp.ExitMissingModel, exit);
        Assert.Equal("", output);
        Assert.StartsWith("No model folder given (--model).", error);
        Assert.Contains("huggingface-cli download HuggingFaceTB/SmolLM2-135M-Instruct ", error);
        Assert.Contains("Or, for a folder whose config.json has model_type gemma3_text:", error);
        Assert.Contains("huggingface-cli download google/gemma-3-270m-it config.json model.safetensors tokenizer.model tokenizer_config.json --local-dir models/gemma-3-270m-it", error);
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
        Assert.Contains("has model_type qwen3; this program runs llama (HuggingFaceTB/SmolLM2-135M-Instruct), gemma3_text (google/gemma-3-270m-it).", error);
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
        Assert.Contains("rope_scaling: {", error);
        Assert.Contains("layer_types: [sliding_attention,", error); // 26 layers from the pattern against the 18 listed
        Assert.DoesNotContain("num_attention_heads", error);
        Assert.Contains("samples/Chat/models/gemma-3-270m-it/config.json", error);
    }

    [Fact]
    public void The_embedded_config_is_the_one_gemma_3_was_compiled_from()
    {
        using JsonDocument config = JsonDocument.Parse(ChatModelSpec.Gemma3_270mIt.CompiledConfig);
        JsonElement root = config.RootElement;
        Assert.Equal("gemma3_text", root.GetProperty("model_type").GetString());
        Assert.Equal((Gemma3Chat.Vocab, Gemma3Chat.DModel, Gemma3Chat.Layers, Gemma3Chat.Heads, Gemma3Chat.KvHeads, Gemma3Chat.DFF, Gemma3Chat.HeadDim),
            (root.GetProperty("vocab_size").GetInt32(), root.GetProperty("hidden_size").GetInt32(), root.GetProperty("num_hidden_layers").GetInt32(),
             root.GetProperty("num_attention_heads").GetInt32(), root.GetProperty("num_key_value_heads").GetInt32(), root.GetProperty("intermediate_size").GetInt32(),
             root.GetProperty("head_dim").GetInt32()));
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
