using System;
using ChatSample;
using TransformerGen;

namespace TransformerGen.ChatServer;

/// <summary>
/// The compiled model the server runs: the Chat sample's description of it (Hub repository, files, the config.json it was
/// compiled from) and how to load a folder's weights and make the instance the batcher drives. The program serves
/// <see cref="SmolLm2"/>; tests register a tiny Llama in its place.
/// </summary>
/// <param name="Spec">The repository, its files and the compiled config.json (its <c>Load</c> is not used: the server loads through <paramref name="LoadWeights"/>).</param>
/// <param name="LoadWeights">Reads a folder's weights into read-only weights held as the <see cref="WeightType"/> given (the generated <c>LoadWeights</c>).</param>
/// <param name="CreateInstance">An inference instance over them with its Sequences cache slots (the generated <c>ForInference(weights)</c>).</param>
public sealed record ServedChatModel(ChatModelSpec Spec, Func<string, WeightType, ModelWeights> LoadWeights, Func<ModelWeights, LanguageModel> CreateInstance)
{
    /// <summary>HuggingFaceTB/SmolLM2-135M-Instruct as <see cref="ServedSmolLm"/>.</summary>
    public static ServedChatModel SmolLm2 { get; } = new(ChatModelSpec.SmolLm2, ServedSmolLm.LoadWeights, weights => ServedSmolLm.ForInference(weights));
}
