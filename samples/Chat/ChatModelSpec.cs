using System;
using System.Collections.Generic;
using System.IO;
using TransformerGen;
using TransformerGen.Samples.Hub;

namespace ChatSample;

/// <summary>
/// A model <see cref="ChatApp"/> runs: where to download it, the config.json it was compiled from (its model_type picks
/// it for a folder, with its sizes among models of one model_type, and the folder's is compared with it), and how to load it. <see cref="All"/> are the sample's; tests
/// pass tiny models of their own.
/// </summary>
/// <param name="Repository">The Hugging Face repository, <c>owner/name</c>.</param>
/// <param name="Files">The files the sample needs from it.</param>
/// <param name="CompiledConfig">The text of the config.json the model class was compiled from.</param>
/// <param name="SourceConfigPath">Where that config.json is in the repository (named when another model's folder is refused).</param>
/// <param name="Load">Builds the inference-only model from a folder with its matrices held as the <see cref="WeightType"/> given (the generated <c>ForInference(string, WeightType)</c>).</param>
public sealed record ChatModelSpec(string Repository, IReadOnlyList<string> Files, string CompiledConfig, string SourceConfigPath, Func<string, WeightType, LanguageModel> Load)
{
    /// <summary>How the weight matrices are held when the command line does not say (<c>--weights</c>): fp32, or 8 bits for a model whose fp32 weights would not fit a laptop.</summary>
    public WeightType DefaultWeights { get; init; } = WeightType.Float32;

    /// <summary>HuggingFaceTB/SmolLM2-135M-Instruct as <see cref="SmolLm"/>.</summary>
    public static ChatModelSpec SmolLm2 { get; } = new(
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        ["config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"],
        EmbeddedConfig.Read(typeof(ChatModelSpec).Assembly, "SmolLM2-135M-Instruct.config.json"),
        "samples/Chat/models/SmolLM2-135M-Instruct/config.json",
        (folder, weights) => SmolLm.ForInference(folder, weights));

    /// <summary>google/gemma-3-270m-it as <see cref="Gemma3Chat"/> (a gated repository: accept its license on the Hub first).</summary>
    public static ChatModelSpec Gemma3_270mIt { get; } = new(
        "google/gemma-3-270m-it",
        ["config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json"],
        EmbeddedConfig.Read(typeof(ChatModelSpec).Assembly, "gemma-3-270m-it.config.json"),
        "samples/Chat/models/gemma-3-270m-it/config.json",
        (folder, weights) => Gemma3Chat.ForInference(folder, weights));

    /// <summary>
    /// meta-llama/Llama-3.2-1B-Instruct as <see cref="Llama32"/> (a gated repository: accept its license on the Hub first).
    /// Its model_type is SmolLM2's, llama: the folder's config.json is told from SmolLM2's by its sizes.
    /// </summary>
    public static ChatModelSpec Llama3_2_1BInstruct { get; } = new(
        "meta-llama/Llama-3.2-1B-Instruct",
        ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"],
        EmbeddedConfig.Read(typeof(ChatModelSpec).Assembly, "Llama-3.2-1B-Instruct.config.json"),
        "samples/Chat/models/Llama-3.2-1B-Instruct/config.json",
        (folder, weights) => Llama32.ForInference(folder, weights));

    /// <summary>
    /// meta-llama/Llama-3.2-3B-Instruct as <see cref="Llama32_3B"/> (gated as the 1B): its weights come in two shards with
    /// their index. Told from the 1B and SmolLM2 (model_type llama too) by its sizes.
    /// </summary>
    public static ChatModelSpec Llama3_2_3BInstruct { get; } = new(
        "meta-llama/Llama-3.2-3B-Instruct",
        ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json"],
        EmbeddedConfig.Read(typeof(ChatModelSpec).Assembly, "Llama-3.2-3B-Instruct.config.json"),
        "samples/Chat/models/Llama-3.2-3B-Instruct/config.json",
        (folder, weights) => Llama32_3B.ForInference(folder, weights))
    {
        // 12.9 GB in fp32; 3.4 GB of 8-bit matrices, which its load never exceeds by more than a matrix.
        DefaultWeights = WeightType.Int8,
    };

    /// <summary>
    /// Qwen/Qwen2.5-0.5B-Instruct as <see cref="Qwen25"/>: ChatML, with its authors' sampling in generation_config.json
    /// (temperature 0.7, top-p 0.8, top-k 20, repetition penalty 1.1).
    /// </summary>
    public static ChatModelSpec Qwen2_5_05BInstruct { get; } = new(
        "Qwen/Qwen2.5-0.5B-Instruct",
        ["config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"],
        EmbeddedConfig.Read(typeof(ChatModelSpec).Assembly, "Qwen2.5-0.5B-Instruct.config.json"),
        "samples/Chat/models/Qwen2.5-0.5B-Instruct/config.json",
        (folder, weights) => Qwen25.ForInference(folder, weights));

    /// <summary>The models the sample's program is compiled with.</summary>
    public static IReadOnlyList<ChatModelSpec> All { get; } = [SmolLm2, Gemma3_270mIt, Llama3_2_1BInstruct, Llama3_2_3BInstruct, Qwen2_5_05BInstruct];

    /// <summary>The compiled config.json's model_type (<c>llama</c>, <c>gemma3_text</c>), which a folder's must equal for this model to run it.</summary>
    public string ModelType { get; } = ModelTypeChoice.Of(CompiledConfig);
}
