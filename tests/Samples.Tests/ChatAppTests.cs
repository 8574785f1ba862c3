using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using ChatSample;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Samples.Tests;

/// <summary>The Chat sample's program (<see cref="ChatApp"/>): with the tiny model through a folder, and without a folder.</summary>
public sealed class ChatAppTests(ITestOutputHelper log)
{
    [Fact]
    public void Streams_a_reply_from_a_model_folder_and_prints_its_figures()
    {
        using TempFolder folder = TinyChat.Folder(TinyChat.Model(seed: 3));
        (int exit, string output, string error) = Run(TinyChat.Spec, "--model", folder.Path, "--prompt", "Hello world", "--max-tokens", "8");
        log.WriteLine(output);
        Assert.True(exit == 0, error);
        Assert.Equal("", error);
        Assert.Contains("chat template: ChatMl; stops at 0 <|endoftext|>, 2 <|im_end|>; greedy", output);
        Assert.Contains("\nuser: Hello world\nassistant: ", output);
        Assert.Matches(@"loaded in \d+\.\d\d s", output);
        Assert.Matches(@"\nprompt: \d+ tokens in \d+\.\d{3} s \([\d,.]+ tokens/s\)", output);
        Assert.Matches(@"\nreply: 8 tokens in \d+\.\d{3} s \([\d,.]+ tokens/s\)", output);
        Assert.Contains("stopped: --max-tokens 8", output);
    }

    [Fact]
    public void Ends_the_turn_where_the_model_does()
    {
        using TempFolder folder = TinyChat.Folder(TinyChat.Model(seed: 3, preferred: TinyByteLevelTokenizer.ImEnd));
        (int exit, string output, string error) = Run(TinyChat.Spec, "--model", folder.Path, "--temperature", "0.8", "--top-k", "20", "--seed", "4");
        Assert.True(exit == 0, error);
        Assert.Contains("temperature 0.8, top-k 20, top-p 1, seed 4", output);
        Assert.Contains("\nreply: 0 tokens", output);
        Assert.Contains("stopped: end of turn (<|im_end|>)", output);
    }

    [Fact]
    public void Samples_as_the_folders_generation_config_asks_unless_an_option_says_otherwise()
    {
        using TempFolder folder = TinyChat.Folder(TinyChat.Model(seed: 3));
        File.WriteAllText(folder.File(GenerationConfig.FileName), """{ "do_sample": true, "temperature": 0.7, "top_k": 5, "repetition_penalty": 1.3 }""");
        (int exit, string output, string error) = Run(TinyChat.Spec, "--model", folder.Path, "--prompt", "Hello world", "--max-tokens", "10", "--seed", "3");
        Assert.True(exit == 0, error);
        Assert.Contains("; temperature 0.7, top-k 5, top-p 1, seed 3, repetition penalty 1.3 (generation_config.json: temperature 0.7, top-k 5, top-p 1, repetition penalty 1.3)\n", output);

        // The reply is the one the session draws with those settings.
        var session = new ChatSession(TinyChatModel.ForInference(folder.File("model.safetensors")), PretrainedTokenizer.FromFolder(folder.Path));
        ChatReply expected = session.Respond("Hello world", new ChatSettings(MaxTokens: 10, Temperature: 0.7f, TopK: 5, Seed: 3, RepetitionPenalty: 1.3f), TextWriter.Null);
        Assert.Contains("\nassistant: " + expected.Text + "\n", output);

        // An option replaces its own default only: greedy, still penalized.
        (exit, output, error) = Run(TinyChat.Spec, "--model", folder.Path, "--prompt", "Hello world", "--max-tokens", "10", "--temperature", "0", "--min-p", "0.1");
        Assert.True(exit == 0, error);
        Assert.Contains("; greedy, repetition penalty 1.3 (generation_config.json: ", output);
        expected = session.Respond("Hello world", new ChatSettings(MaxTokens: 10, RepetitionPenalty: 1.3f), TextWriter.Null);
        Assert.Contains("\nassistant: " + expected.Text + "\n", output);

        // A file that says something impossible stops the run before the weights load, naming the key.
        File.WriteAllText(folder.File(GenerationConfig.FileName), """{ "do_sample": true, "top_p": 2 }""");
        (exit, output, error) = Run(TinyChat.Spec, "--model", folder.Path);
        Assert.Equal(1, exit);
        Assert.Contains("\"top_p\" is 2; it must be a number in [0, 1]", error);
        Assert.DoesNotContain("loaded in", output);
    }

    [Fact]
    public void Interactive_mode_reads_each_turn_from_the_input_and_keeps_the_conversation()
    {
        using TempFolder folder = TinyChat.Folder(TinyChat.Model(seed: 3));
        var input = new StringReader("Hello world\n\nAnd then?\n/reset\nHello world\n");
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = ChatApp.Run(["--model", folder.Path, "--interactive", "--max-tokens", "5"], output, error, TinyChat.Spec, input);
        string text = output.ToString();
        log.WriteLine(text);
        Assert.True(exit == 0, error.ToString());

        // Without --prompt the first message is read too; an empty line is skipped; /reset starts over.
        var session = new ChatSession(TinyChatModel.ForInference(folder.File("model.safetensors")), PretrainedTokenizer.FromFolder(folder.Path));
        var settings = new ChatSettings(MaxTokens: 5);
        ChatReply first = session.Respond("Hello world", settings, TextWriter.Null);
        ChatReply second = session.Continue("And then?", settings, TextWriter.Null);
        Assert.DoesNotContain(ChatApp.DefaultPrompt, text);
        Assert.Contains("\nuser: assistant: " + first.Text + "\n", text);
        Assert.Contains("\nuser: assistant: " + second.Text + "\n", text);
        Assert.Contains($"\nprompt: {second.NewPromptTokens} tokens in ", text);
        Assert.Matches($@"tokens/s\); {second.CachedPromptTokens} before them from the cache\n", text);
        Assert.Contains("(a new conversation)", text);
        Assert.Equal(3, text.Split("\nreply: 5 tokens in ").Length - 1);
        Assert.EndsWith("\nuser: ", text); // the end of input ends the chat

        // With --prompt the first message is that one; /exit ends before the input does.
        output = new StringWriter();
        exit = ChatApp.Run(["--model", folder.Path, "-i", "--prompt", "Hello world", "--max-tokens", "5"], output, error, TinyChat.Spec, new StringReader("/exit\nAnd then?\n"));
        Assert.Equal(0, exit);
        Assert.Contains("\nuser: Hello world\nassistant: " + first.Text + "\n", output.ToString());
        Assert.Single(output.ToString().Split("\nreply: ").Skip(1));
    }

    [Fact]
    public void Continues_plain_text_without_a_template()
    {
        using TempFolder folder = TinyChat.Folder(TinyChat.Model(seed: 3), chatTemplate: false);
        (int exit, string output, string error) = Run(TinyChat.Spec, "--model", folder.Path, "--prompt", "Hello", "--max-tokens", "3");
        Assert.True(exit == 0, error);
        Assert.Contains("no chat template, so the prompt is continued as plain text", output);
        Assert.Contains("\nHello", output);
        Assert.Contains("\nprompt: 1 tokens", output);
        Assert.Contains("\nreply: 3 tokens", output);
    }

    [Fact]
    public void Refuses_a_folder_of_another_model()
    {
        using TempFolder folder = TinyChat.Folder();
        JsonNode config = JsonNode.Parse(File.ReadAllText(folder.File("config.json")))!;
        config["num_key_value_heads"] = 4;
        config["rope_theta"] = 10000.0;
        folder.Write("config.json", config.ToJsonString());
        (int exit, string output, string error) = Run(TinyChat.Spec, "--model", folder.Path);
        Assert.Equal(ChatApp.ExitWrongModel, exit);
        Assert.Equal("", output);
        Assert.Contains("num_key_value_heads: 4 in the folder, 2 compiled", error);
        Assert.Contains("rope_theta: 10000 in the folder, 100000 compiled", error);
    }

    [Fact]
    public void Without_a_folder_says_what_to_download_and_exits_2()
    {
        (int exit, string output, string error) = Run(ChatModelSpec.SmolLm2);
        Assert.Equal(ChatApp.ExitMissingModel, exit);
        Assert.Equal("", output);
        Assert.StartsWith("No model folder given (--model).", error);
        Assert.Contains("huggingface-cli download HuggingFaceTB/SmolLM2-135M-Instruct config.json model.safetensors vocab.json merges.txt tokenizer.json tokenizer_config.json generation_config.json --local-dir models/SmolLM2-135M-Instruct", error);
        foreach (string file in new[] { "config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
        {
            Assert.Contains($"https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/resolve/main/{file}", error);
        }

        Assert.Contains("dotnet run -c Release --project samples/Chat -- --model models/SmolLM2-135M-Instruct", error);

        // The program's own entry takes the same path.
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(ChatApp.ExitMissingModel, ChatApp.Run(["--model", Path.Combine(Path.GetTempPath(), "no-such-model-" + Guid.NewGuid().ToString("N"))], stdout, stderr));
        Assert.Contains("does not exist", stderr.ToString());
    }

    [Fact]
    public void Names_the_files_a_folder_lacks()
    {
        using TempFolder folder = TinyChat.Folder(); // no weights
        (int exit, _, string error) = Run(ChatModelSpec.SmolLm2 with { CompiledConfig = File.ReadAllText(TinyChat.ConfigPath) }, "--model", folder.Path);
        Assert.Equal(ChatApp.ExitMissingModel, exit);
        Assert.StartsWith($"The model folder '{folder.Path}' lacks model.safetensors, tokenizer.json.", error);
    }

    [Fact]
    public void Rejects_bad_options()
    {
        (int exit, _, string error) = Run(TinyChat.Spec, "--max-tokens", "0", "--top-p", "2", "--min-p", "-1", "--repetition-penalty", "0");
        Assert.NotEqual(0, exit);
        Assert.Contains("--max-tokens must be at least 1.", error);
        Assert.Contains("--top-p must be in [0, 1].", error);
        Assert.Contains("--min-p must be in [0, 1].", error);
        Assert.Contains("--repetition-penalty must be positive and finite.", error);
    }

    [Fact]
    public void The_embedded_config_is_the_one_SmolLm_was_compiled_from()
    {
        using JsonDocument config = JsonDocument.Parse(ChatModelSpec.SmolLm2.CompiledConfig);
        JsonElement root = config.RootElement;
        Assert.Equal("llama", root.GetProperty("model_type").GetString());
        Assert.Equal((SmolLm.Vocab, SmolLm.DModel, SmolLm.Layers, SmolLm.Heads, SmolLm.KvHeads, SmolLm.DFF),
            (root.GetProperty("vocab_size").GetInt32(), root.GetProperty("hidden_size").GetInt32(), root.GetProperty("num_hidden_layers").GetInt32(),
             root.GetProperty("num_attention_heads").GetInt32(), root.GetProperty("num_key_value_heads").GetInt32(), root.GetProperty("intermediate_size").GetInt32()));
        Assert.Equal((49152, 576, 30, 9, 3, 1536, 64, 1024), (SmolLm.Vocab, SmolLm.DModel, SmolLm.Layers, SmolLm.Heads, SmolLm.KvHeads, SmolLm.DFF, SmolLm.HeadDim, SmolLm.SeqLen));
    }

    private static (int Exit, string Output, string Error) Run(ChatModelSpec spec, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = ChatApp.Run(args, output, error, spec);
        return (exit, output.ToString(), error.ToString());
    }
}
