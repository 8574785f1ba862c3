using System;
using System.IO;
using TransformerGen;
using TransformerGen.Samples.Hub;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// The compiled model a server runs, and how to build it: the config.json it was compiled from (a folder's must match),
/// how to load a folder's weights once, and how to make an instance over them. The program serves
/// <see cref="AllMiniLmL6V2"/>, with <see cref="MsMarcoMiniLmL6V2"/> as its reranker; tests register a small BERT of their
/// own in its place.
/// </summary>
/// <param name="Repository">The Hub repository the model comes from; the default model name in responses.</param>
/// <param name="CompiledConfig">The text of the config.json the model was compiled from.</param>
/// <param name="SourceConfigPath">Where that config.json is in the repository (named in the refusal of another model's folder).</param>
/// <param name="LoadWeights">Reads a folder's weights (the folder, as the generated <c>LoadWeights</c> takes it) into read-only weights held as the <see cref="WeightType"/> given.</param>
/// <param name="CreateInstance">An inference instance over shared weights (the generated <c>ForInference(weights)</c>).</param>
public sealed record ServedModel(
    string Repository,
    string CompiledConfig,
    string SourceConfigPath,
    Func<string, WeightType, ModelWeights> LoadWeights,
    Func<ModelWeights, EncoderModel> CreateInstance)
{
    /// <summary>
    /// The cross-encoder compiled beside this embedder (a one-label <c>BertForSequenceClassification</c>), served at
    /// <c>/rerank</c> when <c>--reranker</c> names its folder; null when the program has none.
    /// </summary>
    public ServedModel? Reranker { get; init; }

    /// <summary>cross-encoder/ms-marco-MiniLM-L-6-v2 (<see cref="ServedMsMarcoMiniLm"/>). Declared before <see cref="AllMiniLmL6V2"/>, which refers to it.</summary>
    public static ServedModel MsMarcoMiniLmL6V2 { get; } = new(
        "cross-encoder/ms-marco-MiniLM-L-6-v2",
        EmbeddedConfig.Read(typeof(ServedModel).Assembly, "ms-marco-MiniLM-L-6-v2.config.json"),
        "samples/EmbeddingServer/models/ms-marco-MiniLM-L-6-v2/config.json",
        ServedMsMarcoMiniLm.LoadWeights,
        ServedMsMarcoMiniLm.ForInference);

    /// <summary>sentence-transformers/all-MiniLM-L6-v2 (<see cref="ServedMiniLm"/>), reranking with <see cref="MsMarcoMiniLmL6V2"/>.</summary>
    public static ServedModel AllMiniLmL6V2 { get; } = new(
        "sentence-transformers/all-MiniLM-L6-v2",
        EmbeddedConfig.Read(typeof(ServedModel).Assembly, "all-MiniLM-L6-v2.config.json"),
        "samples/EmbeddingServer/models/all-MiniLM-L6-v2/config.json",
        ServedMiniLm.LoadWeights,
        ServedMiniLm.ForInference)
    {
        Reranker = MsMarcoMiniLmL6V2,
    };
}
