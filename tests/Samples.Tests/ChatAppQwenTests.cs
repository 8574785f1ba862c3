using System;
using System.IO;
using System.Linq;
using ChatSample;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// The Chat sample's Qwen/Qwen2.5-0.5B-Instruct: a tiny Qwen2 folder (q/k/v biases, ChatML, Qwen's generation_config.json)
/// chats with the sampling its generation_config.json asks for; the real model is picked by its model_type, named in
/// the download instructions with generation_config.json, and compiled from the config it embeds.
/// </summary>
public sealed class ChatAppQwenTests(ITestOutputHelper log)
{
    private static string ConfigPath => Path.Combine(AppContext.BaseDirectory, "Models", "tiny-qwen2", "config.json");

    private static ChatModelSpec Spec { get; } = new(
        "tests/tiny-qwen2", ["config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json"],
        File.ReadAllText(ConfigPath), "tests/Samples.Tests/Models/tiny-qwen2/config.json",
        (folder, weights) => TinyQwenChatModel.ForInference(folder, weights));

    // Qwen2.5-0.5B-Instruct's generation_config.json, with the tiny tokenizer's ids and one more end id (300) that only it names.
    private const string GenerationConfig = """
        { "bos_token_id": 0, "pad_token_id": 0, "do_sample": true, "eos_token_id": [2, 0, 300], "repetition_penalty": 1.1,
          "temperature": 0.7, "top_p": 0.8, "top_k": 20, "transformers_version": "4.37.0" }
        """;

    [Fact]
    public void A_tiny_qwen2_chats_with_the_sampling_of_its_generation_config()
    {
        TinyQwenChatModel model = TinyQwenChatModel.ForInference(11);
        Assert.Contains(model.ParameterTensors, t => t.Name == "model.layers.0.self_attn.q_proj.bias");
        Assert.Contains(model.ParameterTensors, t => t.Name == "model.layers.1.self_attn.v_proj.bias");
        Assert.DoesNotContain(model.ParameterTensors, t => t.Name.EndsWith("o_proj.bias", StringComparison.Ordinal));

        using var folder = new TempFolder();
        File.Copy(ConfigPath, folder.File("config.json"));
        TinyByteLevelTokenizer.Write(folder, chatTemplate: true);
        model.Save(folder.File("model.safetensors"));
        File.WriteAllText(folder.File("generation_config.json"), GenerationConfig);

        var output = new StringWriter();
        var error = new StringWriter();
        int exit = ChatApp.Run(["--model", folder.Path, "--prompt", "Hello world", "--max-tokens", "12", "--seed", "5"], output, error, [TinyChat.Spec, Spec]);
        log.WriteLine(output.ToString());
        Assert.True(exit == 0, error.ToString());
        Assert.Contains($"model: tests/tiny-qwen2 from {folder.Path} as TinyQwenChatModel: ", output.ToString());
        Assert.Contains("; temperature 0.7, top-k 20, top-p 0.8, seed 5, repetition penalty 1.1 (generation_config.json: ", output.ToString());
        Assert.Matches(@"stops at 0 <\|endoftext\|>, 2 <\|im_end\|>, 300 [^;]*;", output.ToString());

        var session = new ChatSession(TinyQwenChatModel.ForInference(folder.File("model.safetensors")), PretrainedTokenizer.FromFolder(folder.Path), endOfSequence: [300]);
        ChatReply expected = session.Respond("Hello world", new ChatSettings(MaxTokens: 12, Temperature: 0.7f, TopK: 20, TopP: 0.8f, Seed: 5, RepetitionPenalty: 1.1f), TextWriter.Null);
        Assert.Contains("\nassistant: " + expected.Text + "\n", output.ToString());
    }

    [Fact]
    public void The_program_picks_qwen_2_5_by_its_model_type_and_names_what_to_download()
    {
        using var folder = new TempFolder();
        folder.Write("config.json", ChatModelSpec.Qwen2_5_05BInstruct.CompiledConfig);
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(ChatApp.ExitMissingModel, ChatApp.Run(["--model", folder.Path], output, error, ChatModelSpec.All));
        Assert.StartsWith($"The model folder '{folder.Path}' lacks model.safetensors, vocab.json, merges.txt, tokenizer.json, tokenizer_config.json.", error.ToString());
        Assert.Contains("huggingface-cli download Qwen/Qwen2.5-0.5B-Instruct config.json model.safetensors vocab.json merges.txt tokenizer.json tokenizer_config.json generation_config.json --local-dir models/Qwen2.5-0.5B-Instruct", error.ToString());
    }

    [Fact]
    public void The_embedded_config_is_the_one_Qwen25_was_compiled_from()
    {
        Assert.Equal((151936, 896, 24, 14, 2, 4864, 64, 2048), (Qwen25.Vocab, Qwen25.DModel, Qwen25.Layers, Qwen25.Heads, Qwen25.KvHeads, Qwen25.DFF, Qwen25.HeadDim, Qwen25.SeqLen));
        Assert.Contains("\"model_type\": \"qwen2\"", ChatModelSpec.Qwen2_5_05BInstruct.CompiledConfig);
        Assert.Equal("qwen2", ChatModelSpec.Qwen2_5_05BInstruct.ModelType);
        Assert.Same(ChatModelSpec.Qwen2_5_05BInstruct, ChatModelSpec.All[^1]);
    }
}
