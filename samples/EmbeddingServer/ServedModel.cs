using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TransformerGen;
using TransformerGen.Samples.Hub;
using TransformerGen.Samples.Serving;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// A compiled model a server runs, and how to build it: the config.json it was compiled from (a folder's must match),
/// how to load a folder's weights once, and how to make an instance over them. The program serves
/// <see cref="AllMiniLmL6V2"/>, <see cref="AllMpnetBaseV2"/>, <see cref="EmbeddingGemma300m"/> or <see cref="GteModernBertBase"/> (<see cref="ServedModels"/>), the
/// first two with <see cref="MsMarcoMiniLmL6V2"/> and <see cref="MsMarcoElectraBase"/> as their rerankers; tests register a small BERT of their own in their place.
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
    /// The cross-encoders compiled beside this embedder (one-label classifiers: <c>BertForSequenceClassification</c>,
    /// <c>ElectraForSequenceClassification</c>), one of which is served at <c>/rerank</c> when <c>--reranker</c> names a
    /// folder: the one its config.json's model_type (and, of several, its keys) says (<see cref="RerankerFor"/>); empty when
    /// the program has none.
    /// </summary>
    public IReadOnlyList<ServedModel> Rerankers { get; init; } = [];

    /// <summary>The reranker of <see cref="Rerankers"/> whose compiled model_type <paramref name="folder"/>'s config.json has (see <see cref="ServedModelChoice"/>).</summary>
    /// <exception cref="StartupException">There is no reranker, none has the folder's model_type, or there is no config.json to tell.</exception>
    public ServedModel RerankerFor(string folder) => Rerankers.Count == 0
        ? throw new StartupException($"--reranker {folder}: this server was built without a reranker for {Repository}.")
        : ServedModelChoice.For(Rerankers, folder, m => m.ModelType, m => m.Repository, "samples/EmbeddingServer", m => m.CompiledConfig);

    /// <summary>cross-encoder/ms-marco-MiniLM-L-6-v2 (<see cref="ServedMsMarcoMiniLm"/>). Declared before <see cref="AllMiniLmL6V2"/>, which refers to it.</summary>
    public static ServedModel MsMarcoMiniLmL6V2 { get; } = new(
        "cross-encoder/ms-marco-MiniLM-L-6-v2",
        EmbeddedConfig.Read(typeof(ServedModel).Assembly, "ms-marco-MiniLM-L-6-v2.config.json"),
        "samples/EmbeddingServer/models/ms-marco-MiniLM-L-6-v2/config.json",
        ServedMsMarcoMiniLm.LoadWeights,
        ServedMsMarcoMiniLm.ForInference);

    /// <summary>cross-encoder/ms-marco-electra-base (<see cref="ServedMsMarcoElectra"/>). Declared before <see cref="AllMiniLmL6V2"/>, which refers to it.</summary>
    public static ServedModel MsMarcoElectraBase { get; } = new(
        "cross-encoder/ms-marco-electra-base",
        EmbeddedConfig.Read(typeof(ServedModel).Assembly, "ms-marco-electra-base.config.json"),
        "samples/EmbeddingServer/models/ms-marco-electra-base/config.json",
        ServedMsMarcoElectra.LoadWeights,
        ServedMsMarcoElectra.ForInference);

    /// <summary>The rerankers compiled beside all-MiniLM-L6-v2 and all-mpnet-base-v2: ms-marco-MiniLM-L-6-v2 (bert) and ms-marco-electra-base (electra).</summary>
    private static IReadOnlyList<ServedModel> MsMarcoRerankers { get; } = [MsMarcoMiniLmL6V2, MsMarcoElectraBase];

    /// <summary>sentence-transformers/all-MiniLM-L6-v2 (<see cref="ServedMiniLm"/>), reranking with <see cref="MsMarcoMiniLmL6V2"/> or <see cref="MsMarcoElectraBase"/>.</summary>
    public static ServedModel AllMiniLmL6V2 { get; } = new(
        "sentence-transformers/all-MiniLM-L6-v2",
        EmbeddedConfig.Read(typeof(ServedModel).Assembly, "all-MiniLM-L6-v2.config.json"),
        "samples/EmbeddingServer/models/all-MiniLM-L6-v2/config.json",
        ServedMiniLm.LoadWeights,
        ServedMiniLm.ForInference)
    {
        Rerankers = MsMarcoRerankers,
    };

    /// <summary>sentence-transformers/all-mpnet-base-v2 (<see cref="ServedMPNet"/>), reranking with <see cref="MsMarcoMiniLmL6V2"/> or <see cref="MsMarcoElectraBase"/>.</summary>
    public static ServedModel AllMpnetBaseV2 { get; } = new(
        "sentence-transformers/all-mpnet-base-v2",
        EmbeddedConfig.Read(typeof(ServedModel).Assembly, "all-mpnet-base-v2.config.json"),
        "samples/EmbeddingServer/models/all-mpnet-base-v2/config.json",
        ServedMPNet.LoadWeights,
        ServedMPNet.ForInference)
    {
        Rerankers = MsMarcoRerankers,
    };

    /// <summary>google/embeddinggemma-300m (<see cref="ServedEmbeddingGemma"/>): its Gemma tokenizer, the Dense layers' files and its prompts; no reranker.</summary>
    public static ServedModel EmbeddingGemma300m { get; } = new(
        "google/embeddinggemma-300m",
        EmbeddedConfig.Read(typeof(ServedModel).Assembly, "embeddinggemma-300m.config.json"),
        "samples/EmbeddingServer/models/embeddinggemma-300m/config.json",
        ServedEmbeddingGemma.LoadWeights,
        ServedEmbeddingGemma.ForInference)
    {
        // config_sentence_transformers.json holds the prompts a request names in prompt_name.
        Files = ["config.json", HubModel.Weights, "tokenizer.model", "tokenizer_config.json", "modules.json", "1_Pooling/config.json",
                 "2_Dense/config.json", "2_Dense/model.safetensors", "3_Dense/config.json", "3_Dense/model.safetensors", SentencePrompts.FileName],
    };

    /// <summary>
    /// Alibaba-NLP/gte-modernbert-base (<see cref="ServedGteModernBert"/>): its tokenizer.json with its settings and special
    /// tokens, and the sentence-transformers modules (CLS pooling); no reranker.
    /// </summary>
    public static ServedModel GteModernBertBase { get; } = new(
        "Alibaba-NLP/gte-modernbert-base",
        EmbeddedConfig.Read(typeof(ServedModel).Assembly, "gte-modernbert-base.config.json"),
        "samples/EmbeddingServer/models/gte-modernbert-base/config.json",
        ServedGteModernBert.LoadWeights,
        ServedGteModernBert.ForInference)
    {
        Files = ["config.json", HubModel.Weights, "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "modules.json", "1_Pooling/config.json"],
    };

    /// <summary>The files a folder of this model must hold (as on the Hub): a BERT-tokenized folder's unless the model says otherwise.</summary>
    public IReadOnlyList<string> Files { get; init; } = ["config.json", HubModel.Weights, "vocab.txt", "tokenizer_config.json"];

    /// <summary>The compiled config.json's model_type (<c>bert</c>, <c>mpnet</c>, <c>gemma3_text</c>, <c>modernbert</c>; a reranker's <c>bert</c> or <c>electra</c>), which a folder's must equal for this model to serve it.</summary>
    public string ModelType { get; } = ModelTypeChoice.Of(CompiledConfig);
}

/// <summary>The embedders a server is compiled with; the folder's config.json says which one it serves (its model_type).</summary>
/// <param name="Models">At least one.</param>
public sealed record ServedModels(IReadOnlyList<ServedModel> Models)
{
    /// <summary>The program's: all-MiniLM-L6-v2 (bert), all-mpnet-base-v2 (mpnet), embeddinggemma-300m (gemma3_text) and gte-modernbert-base (modernbert).</summary>
    public static ServedModels All { get; } = new([ServedModel.AllMiniLmL6V2, ServedModel.AllMpnetBaseV2, ServedModel.EmbeddingGemma300m, ServedModel.GteModernBertBase]);

    /// <summary>The model whose compiled model_type <paramref name="folder"/>'s config.json has (see <see cref="ServedModelChoice"/>).</summary>
    /// <exception cref="StartupException">No model has the folder's model_type, or there is no config.json to tell.</exception>
    public ServedModel For(string folder) =>
        ServedModelChoice.For(Models, folder, m => m.ModelType, m => m.Repository, "samples/EmbeddingServer", m => m.CompiledConfig);
}
