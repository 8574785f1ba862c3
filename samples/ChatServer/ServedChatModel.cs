using System;
using System.Collections.Generic;
using System.Linq;
using ChatSample;
using TransformerGen.Samples.Serving;
using TransformerGen;

namespace TransformerGen.ChatServer;

/// <summary>
/// A compiled model the server runs: the Chat sample's description of it (Hub repository, files, the config.json it was
/// compiled from) and how to load a folder's weights and make the instance the batcher drives. The program serves
/// <see cref="SmolLm2"/>, <see cref="Gemma3"/>, <see cref="Llama32"/>, <see cref="Llama32_3B"/> or <see cref="Qwen25"/> (<see cref="ServedChatModels"/>); tests register a tiny Llama in their place.
/// </summary>
/// <param name="Spec">The repository, its files and the compiled config.json (its <c>Load</c> is not used: the server loads through <paramref name="LoadWeights"/>).</param>
/// <param name="LoadWeights">Reads a folder's weights into read-only weights held as the <see cref="WeightType"/> given (the generated <c>LoadWeights</c>).</param>
/// <param name="CreateInstance">An inference instance over them with its Sequences cache slots (the generated <c>ForInference(weights)</c>).</param>
public sealed record ServedChatModel(ChatModelSpec Spec, Func<string, WeightType, ModelWeights> LoadWeights, Func<ModelWeights, LanguageModel> CreateInstance)
{
    /// <summary>HuggingFaceTB/SmolLM2-135M-Instruct as <see cref="ServedSmolLm"/>.</summary>
    public static ServedChatModel SmolLm2 { get; } = new(ChatModelSpec.SmolLm2, ServedSmolLm.LoadWeights, weights => ServedSmolLm.ForInference(weights));

    /// <summary>google/gemma-3-270m-it as <see cref="ServedGemma3"/>.</summary>
    public static ServedChatModel Gemma3 { get; } = new(ChatModelSpec.Gemma3_270mIt, ServedGemma3.LoadWeights, weights => ServedGemma3.ForInference(weights));

    /// <summary>meta-llama/Llama-3.2-1B-Instruct as <see cref="ServedLlama32"/>.</summary>
    public static ServedChatModel Llama32 { get; } = new(ChatModelSpec.Llama3_2_1BInstruct, ServedLlama32.LoadWeights, weights => ServedLlama32.ForInference(weights));

    /// <summary>meta-llama/Llama-3.2-3B-Instruct as <see cref="ServedLlama32_3B"/>, with 8-bit weights unless <c>--weights</c> says otherwise.</summary>
    public static ServedChatModel Llama32_3B { get; } = new(ChatModelSpec.Llama3_2_3BInstruct, ServedLlama32_3B.LoadWeights, weights => ServedLlama32_3B.ForInference(weights));

    /// <summary>Qwen/Qwen2.5-0.5B-Instruct as <see cref="ServedQwen25"/>.</summary>
    public static ServedChatModel Qwen25 { get; } = new(ChatModelSpec.Qwen2_5_05BInstruct, ServedQwen25.LoadWeights, weights => ServedQwen25.ForInference(weights));
}

/// <summary>The models a server is compiled with; the folder's config.json says which one it serves (its model_type).</summary>
/// <param name="Models">At least one.</param>
public sealed record ServedChatModels(IReadOnlyList<ServedChatModel> Models)
{
    /// <summary>The program's: SmolLM2-135M-Instruct, Llama-3.2-1B-Instruct and Llama-3.2-3B-Instruct (all llama; told apart by their sizes), gemma-3-270m-it (gemma3_text) and Qwen2.5-0.5B-Instruct (qwen2).</summary>
    public static ServedChatModels All { get; } = new([ServedChatModel.SmolLm2, ServedChatModel.Gemma3, ServedChatModel.Llama32, ServedChatModel.Llama32_3B, ServedChatModel.Qwen25]);

    /// <summary>The repositories, for messages written before a folder is known.</summary>
    public string Repositories => string.Join(" or ", Models.Select(m => m.Spec.Repository));

    /// <summary>The model whose compiled model_type <paramref name="folder"/>'s config.json has (see <see cref="ServedModelChoice"/>).</summary>
    /// <exception cref="StartupException">No model has the folder's model_type, or there is no config.json to tell.</exception>
    public ServedChatModel For(string folder) =>
        ServedModelChoice.For(Models, folder, m => m.Spec.ModelType, m => m.Spec.Repository, "samples/Chat", m => m.Spec.CompiledConfig);
}
