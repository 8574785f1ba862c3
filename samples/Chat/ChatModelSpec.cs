using System;
using System.Collections.Generic;
using System.IO;
using TransformerGen;
using TransformerGen.Samples.Hub;

namespace ChatSample;

/// <summary>
/// The model <see cref="ChatApp"/> runs: where to download it, the config.json it was compiled from (to compare a
/// folder's with), and how to load it. <see cref="SmolLm2"/> is the sample's; tests pass a tiny model of their own.
/// </summary>
/// <param name="Repository">The Hugging Face repository, <c>owner/name</c>.</param>
/// <param name="Files">The files the sample needs from it.</param>
/// <param name="CompiledConfig">The text of the config.json the model class was compiled from.</param>
/// <param name="SourceConfigPath">Where that config.json is in the repository (named when another model's folder is refused).</param>
/// <param name="Load">Builds the inference-only model from a folder (the generated <c>ForInference(string)</c>).</param>
public sealed record ChatModelSpec(string Repository, IReadOnlyList<string> Files, string CompiledConfig, string SourceConfigPath, Func<string, LanguageModel> Load)
{
    /// <summary>HuggingFaceTB/SmolLM2-135M-Instruct as <see cref="SmolLm"/>.</summary>
    public static ChatModelSpec SmolLm2 { get; } = new(
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        ["config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"],
        EmbeddedConfig.Read(typeof(ChatModelSpec).Assembly, "SmolLM2-135M-Instruct.config.json"),
        "samples/Chat/models/SmolLM2-135M-Instruct/config.json",
        folder => SmolLm.ForInference(folder));
}
