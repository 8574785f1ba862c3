using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.RegularExpressions;
using ChatSample;
using TransformerGen;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;
using TransformerGen.Tokenizers.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using SampleFolder = TransformerGen.Samples.Tests.Support.TempFolder;
using TokenizerFolder = TransformerGen.Tokenizers.Tests.Support.TempFolder;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// The Chat sample's third model, meta-llama/Llama-3.2-1B-Instruct, whose model_type is SmolLM2's (llama): a tiny Llama 3
/// folder (Llama 3's tokenizer from cl100k_base, Llama 3.2's chat template, llama3-scaled rotation) is told from a tiny
/// SmolLM2 one by its sizes, chats through the dated Llama 3.2 template (its reply the model's own greedy continuation
/// of the prompt written out by hand) and stops at &lt;|eot_id|&gt; or any id of its config.json's eos_token_id list; the
/// real model is named in the download instructions, chosen for its own config.json, compared with the closest
/// compiled llama when it differs, and compiled from the config it embeds.
/// </summary>
public sealed class ChatAppLlama3Tests(ITestOutputHelper log)
{
    /// <summary>The two tiny llama models, SmolLM2's form first: the folder's sizes pick one, not the order.</summary>
    private static IReadOnlyList<ChatModelSpec> TinyLlamas => [TinyChat.Spec, TinyLlama3.Spec];

    [Theory]
    [InlineData("fp32", WeightType.Float32)]
    [InlineData("bf16", WeightType.BFloat16)]
    [InlineData("int8", WeightType.Int8)]
    public void A_tiny_llama_3_is_chosen_for_its_folder_chats_through_llama_3_2s_template_and_replies_with_its_own_greedy_continuation(string weights, WeightType type)
    {
        using TokenizerFolder folder = TinyLlama3.Folder(TinyLlama3.Model(seed: 7)); // random: a stop id ends the reply if the model picks one
        // The template writes the day's date: a run that crosses midnight is run again, so the day is the one it wrote.
        string today;
        int exit;
        string output, error;
        do
        {
            today = DateTime.Today.ToString("dd MMM yyyy", CultureInfo.InvariantCulture);
            (exit, output, error) = Run(TinyLlamas, "--model", folder.Path, "--system", "Be brief", "--prompt", "Hello world", "--max-tokens", "6", "--weights", weights);
        }
        while (today != DateTime.Today.ToString("dd MMM yyyy", CultureInfo.InvariantCulture));
        log.WriteLine(output);
        Assert.True(exit == 0, error);
        Assert.Equal("", error);
        Assert.StartsWith($"model: tests/tiny-llama3 from {folder.Path} as TinyLlama3ChatModel: ", output);
        Assert.Contains("chat template: Llama3; stops at 128001 <|end_of_text|>, 128008 <|eom_id|>, 128009 <|eot_id|>; greedy", output);
        Assert.Matches($@"weights \d+\.\d\d s, {weights}, ", output);

        // The prompt as Llama 3.2's template writes it, by hand: a dated system turn holding the system message, the
        // user's turn, the opening of the assistant's.
        string rendering = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: " + today
            + "\n\nBe brief<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello world<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path);
        int[] prompt = [.. tokenizer.Encode(rendering, addSpecialTokens: false)];
        Assert.Equal([Llama3FolderFromCl100k.BeginOfText, Llama3FolderFromCl100k.StartHeader], prompt[..2]);
        Assert.Equal([Llama3FolderFromCl100k.StartHeader, 78191, Llama3FolderFromCl100k.EndHeader, 271], prompt[^4..]); // assistant, "\n\n"
        Assert.Contains($"\nprompt: {prompt.Length} tokens", output);

        // The model's own greedy continuation with its matrices held the same way, until a stop id or 6 tokens.
        TinyLlama3ChatModel model = TinyLlama3ChatModel.ForInference(folder.Path, type);
        float[] logits = model.Append(prompt).ToArray();
        var reply = new List<int>();
        var next = new int[1];
        while (reply.Count < 6)
        {
            next[0] = Array.IndexOf(logits, logits.Max());
            if (TinyLlama3.StopIds.Contains(next[0])) break;
            reply.Add(next[0]);
            logits = model.Append(next).ToArray();
        }

        Assert.True(reply.Distinct().Count() > 2, string.Join(", ", reply)); // the positions' tokens differ
        Assert.Contains($"\nreply: {reply.Count} tokens", output);
        Assert.Contains("\nassistant: " + tokenizer.Decode(reply.ToArray()) + "\n", output);

        // The session the program runs gives those very ids for the prompt.
        var session = new ChatSession(model, tokenizer);
        ChatReply again = session.Respond("Hello world", new ChatSettings(MaxTokens: 6, SystemPrompt: "Be brief"), TextWriter.Null);
        Assert.Equal(rendering, again.Prompt);
        Assert.Equal(prompt, again.PromptTokens);
        Assert.Equal(reply, again.Tokens);
    }

    [Fact]
    public void Without_weights_a_model_is_held_as_its_spec_says_and_the_help_names_those_not_in_fp32()
    {
        using TokenizerFolder folder = TinyLlama3.Folder(TinyLlama3.Model(seed: 7));
        ChatModelSpec eightBit = TinyLlama3.Spec with { DefaultWeights = WeightType.Int8 };
        (int exit, string output, string error) = Run([TinyChat.Spec, eightBit], "--model", folder.Path, "--prompt", "Hello world", "--max-tokens", "2");
        Assert.True(exit == 0, error);
        Assert.Matches(@"weights \d+\.\d\d s, int8, ", output);
        (exit, output, error) = Run([TinyChat.Spec, eightBit], "--model", folder.Path, "--prompt", "Hello world", "--max-tokens", "2", "--weights", "fp32");
        Assert.True(exit == 0, error);
        Assert.Matches(@"weights \d+\.\d\d s, fp32, ", output);
        (exit, output, error) = Run(TinyLlamas, "--model", folder.Path, "--prompt", "Hello world", "--max-tokens", "2");
        Assert.True(exit == 0, error);
        Assert.Matches(@"weights \d+\.\d\d s, fp32, ", output);

        // The sample's own: Llama-3.2-3B-Instruct in 8 bits unless asked otherwise (12.9 GB in fp32).
        Assert.Equal(WeightType.Int8, ChatModelSpec.Llama3_2_3BInstruct.DefaultWeights);
        Assert.All(ChatModelSpec.All.Where(spec => spec != ChatModelSpec.Llama3_2_3BInstruct), spec => Assert.Equal(WeightType.Float32, spec.DefaultWeights));
        (exit, output, _) = Run(ChatModelSpec.All, "--help");
        Assert.Equal(0, exit);
        Assert.Contains("Default: fp32, but int8 for meta-llama/Llama-3.2-3B-Instruct.", Regex.Replace(output, @"\s+", " "));
    }

    [Theory]
    [InlineData(Llama3FolderFromCl100k.EndOfTurn, "end of turn (<|eot_id|>)")]
    [InlineData(Llama3FolderFromCl100k.EndOfMessage, "end of sequence (<|eom_id|>)")]
    [InlineData(Llama3FolderFromCl100k.EndOfText, "end of sequence (<|end_of_text|>)")]
    public void The_reply_ends_at_eot_id_and_at_every_end_of_sequence_id_of_the_config(int stop, string reason)
    {
        using TokenizerFolder folder = TinyLlama3.Folder(TinyLlama3.Preferring(seed: 7, stop));
        (int exit, string output, string error) = Run(TinyLlamas, "--model", folder.Path, "--prompt", "Hello world");
        Assert.True(exit == 0, error);
        Assert.Contains("\nreply: 0 tokens", output);
        Assert.Contains($"stopped: {reason}", output);

        // 128008 is neither the layout's end of sequence (the list's first) nor the tokenizer's: it stops a reply because the
        // compiled layout holds the config's whole list.
        TinyLlama3ChatModel model = TinyLlama3ChatModel.ForInference(folder.Path);
        Assert.Equal(Llama3FolderFromCl100k.EndOfText, model.Layout.EosToken);
        Assert.Equal([Llama3FolderFromCl100k.EndOfText, Llama3FolderFromCl100k.EndOfMessage, Llama3FolderFromCl100k.EndOfTurn], model.Layout.EndTokens);
        var session = new ChatSession(model, PretrainedTokenizer.FromFolder(folder.Path));
        Assert.Contains(stop, session.StopTokens);
    }

    [Fact]
    public void Of_two_llama_models_each_folder_is_given_the_one_of_its_sizes_whatever_their_order()
    {
        using SampleFolder smol = TinyChat.Folder(TinyChat.Model(seed: 3));
        using TokenizerFolder llama3 = TinyLlama3.Folder(TinyLlama3.Model(seed: 7));
        foreach (IReadOnlyList<ChatModelSpec> specs in new[] { TinyLlamas, TinyLlamas.Reverse().ToArray() })
        {
            (int exit, string output, string error) = Run(specs, "--model", smol.Path, "--max-tokens", "2");
            Assert.True(exit == 0, error);
            Assert.StartsWith($"model: tests/tiny-chat from {smol.Path} as TinyChatModel: ", output);
            Assert.Contains("chat template: ChatMl; stops at 0 <|endoftext|>, 2 <|im_end|>; greedy", output);

            (exit, output, error) = Run(specs, "--model", llama3.Path, "--max-tokens", "2");
            Assert.True(exit == 0, error);
            Assert.StartsWith($"model: tests/tiny-llama3 from {llama3.Path} as TinyLlama3ChatModel: ", output);
        }
    }

    [Fact]
    public void Without_a_folder_names_what_to_download_for_llama_3_2()
    {
        (int exit, string output, string error) = Run(ChatModelSpec.All);
        Assert.Equal(ChatApp.ExitMissingModel, exit);
        Assert.Equal("", output);
        Assert.StartsWith("No model folder given (--model).", error);
        Assert.Contains("Or, for a folder whose config.json has model_type llama and meta-llama/Llama-3.2-1B-Instruct's sizes:", error);
        Assert.Contains("huggingface-cli download meta-llama/Llama-3.2-1B-Instruct config.json model.safetensors tokenizer.json tokenizer_config.json generation_config.json --local-dir models/Llama-3.2-1B-Instruct", error);
        Assert.Contains("https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct/resolve/main/tokenizer.json", error);
        Assert.Contains("dotnet run -c Release --project samples/Chat -- --model models/Llama-3.2-1B-Instruct", error);
        Assert.Contains("Or, for a folder whose config.json has model_type gemma3_text:", error); // one of its type: no sizes to tell
    }

    [Fact]
    public void A_folder_of_llama_3_2s_config_alone_is_told_its_own_files_and_smollm2s_its_own()
    {
        using var llama = new SampleFolder();
        llama.Write("config.json", ChatModelSpec.Llama3_2_1BInstruct.CompiledConfig);
        (int exit, string output, string error) = Run(ChatModelSpec.All, "--model", llama.Path);
        Assert.Equal(ChatApp.ExitMissingModel, exit);
        Assert.Equal("", output);
        Assert.StartsWith($"The model folder '{llama.Path}' lacks model.safetensors, tokenizer.json, tokenizer_config.json.", error);
        Assert.Contains("dotnet run -c Release --project samples/Chat -- --model models/Llama-3.2-1B-Instruct", error);
        Assert.DoesNotContain("SmolLM2", error);

        using var smol = new SampleFolder();
        smol.Write("config.json", ChatModelSpec.SmolLm2.CompiledConfig);
        (exit, _, error) = Run(ChatModelSpec.All, "--model", smol.Path);
        Assert.Equal(ChatApp.ExitMissingModel, exit);
        Assert.StartsWith($"The model folder '{smol.Path}' lacks model.safetensors, vocab.json, merges.txt, tokenizer.json, tokenizer_config.json.", error);
        Assert.DoesNotContain("Llama-3.2", error);
    }

    [Fact]
    public void A_llama_folder_of_neither_model_is_refused_against_the_closest()
    {
        // Llama-3.2-3B-Instruct's sizes are a model of the program (told its files: two shards and their index); one layer
        // more is none, and is refused against the 3B, one key away (four from the 1B, nine from SmolLM2-135M).
        using var larger = new SampleFolder();
        larger.Write("config.json", Edited(ChatModelSpec.Llama3_2_1BInstruct.CompiledConfig,
            ("hidden_size", 3072), ("num_hidden_layers", 28), ("num_attention_heads", 24), ("head_dim", 128)));
        (int exit, string output, string error) = Run(ChatModelSpec.All, "--model", larger.Path);
        Assert.Equal(ChatApp.ExitMissingModel, exit);
        Assert.Equal("", output);
        Assert.StartsWith($"The model folder '{larger.Path}' lacks model-00001-of-00002.safetensors, model-00002-of-00002.safetensors, model.safetensors.index.json, tokenizer.json, tokenizer_config.json.", error);
        Assert.Contains("dotnet run -c Release --project samples/Chat -- --model models/Llama-3.2-3B-Instruct", error);

        using var deeper = new SampleFolder();
        deeper.Write("config.json", Edited(ChatModelSpec.Llama3_2_3BInstruct.CompiledConfig, ("num_hidden_layers", 29)));
        (exit, output, error) = Run(ChatModelSpec.All, "--model", deeper.Path);
        Assert.Equal(ChatApp.ExitWrongModel, exit);
        Assert.Equal("", output);
        Assert.Contains("describes another model than the one this program was compiled for (meta-llama/Llama-3.2-3B-Instruct)", error);
        Assert.Contains("num_hidden_layers: 29 in the folder, 28 compiled", error);
        Assert.DoesNotContain("hidden_size", error);
        Assert.Contains("samples/Chat/models/Llama-3.2-3B-Instruct/config.json", error);

        // SmolLM2-360M-Instruct's sizes are SmolLM2-135M's at another width and depth.
        using var smol = new SampleFolder();
        smol.Write("config.json", Edited(ChatModelSpec.SmolLm2.CompiledConfig,
            ("hidden_size", 960), ("num_hidden_layers", 32), ("num_attention_heads", 15), ("num_key_value_heads", 5), ("intermediate_size", 2560)));
        (exit, _, error) = Run(ChatModelSpec.All, "--model", smol.Path);
        Assert.Equal(ChatApp.ExitWrongModel, exit);
        Assert.Contains("describes another model than the one this program was compiled for (HuggingFaceTB/SmolLM2-135M-Instruct)", error);
        Assert.Contains("hidden_size: 960 in the folder, 576 compiled", error);
        Assert.DoesNotContain("rope_theta", error);

        // A llama3 rotation of other numbers differs in rope_scaling alone.
        using var rotated = new SampleFolder();
        var config = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(ChatModelSpec.Llama3_2_1BInstruct.CompiledConfig)!;
        config["rope_scaling"] = JsonSerializer.SerializeToElement(new Dictionary<string, object>
        {
            ["factor"] = 8.0, ["high_freq_factor"] = 4.0, ["low_freq_factor"] = 1.0, ["original_max_position_embeddings"] = 8192, ["rope_type"] = "llama3",
        });
        rotated.Write("config.json", JsonSerializer.Serialize(config));
        (exit, _, error) = Run(ChatModelSpec.All, "--model", rotated.Path);
        Assert.Equal(ChatApp.ExitWrongModel, exit);
        Assert.Contains("rope_scaling: {factor=8,high_freq_factor=4,low_freq_factor=1,original_max_position_embeddings=8192,rope_type=llama3} in the folder, "
            + "{factor=32,high_freq_factor=4,low_freq_factor=1,original_max_position_embeddings=8192,rope_type=llama3} compiled", error);
        Assert.Contains("(meta-llama/Llama-3.2-1B-Instruct)", error);
    }

    [Fact]
    public void The_embedded_config_is_the_one_llama_3_2_3b_was_compiled_from_and_it_runs_for_inference_only()
    {
        CompiledConfigSizes.Assert(ChatModelSpec.Llama3_2_3BInstruct.CompiledConfig, "llama",
            (Llama32_3B.Vocab, Llama32_3B.DModel, Llama32_3B.Layers, Llama32_3B.Heads, Llama32_3B.KvHeads, Llama32_3B.DFF, Llama32_3B.HeadDim));
        Assert.Equal((128256, 3072, 28, 24, 8, 8192, 128, 1024), (Llama32_3B.Vocab, Llama32_3B.DModel, Llama32_3B.Layers, Llama32_3B.Heads, Llama32_3B.KvHeads, Llama32_3B.DFF, Llama32_3B.HeadDim, Llama32_3B.SeqLen));
        Assert.Equal(3_212_749_824L, Llama32_3B.ParameterCount);
        // More parameter floats than one array holds: two segments, and no training instance (refused before allocating).
        var refusal = Assert.Throws<NotSupportedException>(() => new Llama32_3B(1));
        Assert.StartsWith("Llama32_3B has 3,212,749,824 parameter floats, more than one span holds (2³¹ − 1), in 2 segments: it runs for inference only", refusal.Message);
    }

    [Fact]
    public void The_embedded_config_is_the_one_llama_3_2_was_compiled_from()
    {
        JsonElement root = CompiledConfigSizes.Assert(ChatModelSpec.Llama3_2_1BInstruct.CompiledConfig, "llama",
            (Llama32.Vocab, Llama32.DModel, Llama32.Layers, Llama32.Heads, Llama32.KvHeads, Llama32.DFF, Llama32.HeadDim));
        Assert.Equal((128256, 2048, 16, 32, 8, 8192, 64, 1024), (Llama32.Vocab, Llama32.DModel, Llama32.Layers, Llama32.Heads, Llama32.KvHeads, Llama32.DFF, Llama32.HeadDim, Llama32.SeqLen));
        Assert.Equal([128001, 128008, 128009], root.GetProperty("eos_token_id").EnumerateArray().Select(id => id.GetInt32()));
        Assert.Equal("llama3", root.GetProperty("rope_scaling").GetProperty("rope_type").GetString());
        Assert.Same(ChatModelSpec.Llama3_2_1BInstruct, ChatModelSpec.All[2]);
        Assert.Same(ChatModelSpec.Llama3_2_3BInstruct, ChatModelSpec.All[3]);
    }

    private static string Edited(string config, params (string Key, int Value)[] changes)
    {
        var keys = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(config)!;
        foreach ((string key, int value) in changes) keys[key] = JsonSerializer.SerializeToElement(value);
        return JsonSerializer.Serialize(keys);
    }

    private static (int Exit, string Output, string Error) Run(IReadOnlyList<ChatModelSpec> specs, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = ChatApp.Run(args, output, error, specs);
        return (exit, output.ToString(), error.ToString());
    }
}
