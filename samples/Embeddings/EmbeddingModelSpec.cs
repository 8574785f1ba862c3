using System;
using System.Collections.Generic;
using System.IO;
using TransformerGen;
using TransformerGen.Samples.Hub;

namespace EmbeddingsSample;

/// <summary>
/// A model <see cref="EmbeddingsApp"/> runs: where to download it, the config.json it was compiled from (its model_type
/// picks it for a folder, and the folder's config.json is compared with it), how to load it, and the prefixes its
/// texts take. <see cref="MiniLm"/>, <see cref="NomicEmbedTextV15"/>, <see cref="AllMpnetBaseV2"/>, <see cref="EmbeddingGemma300m"/> and <see cref="GteModernBertBase"/> are the sample's; tests pass tiny models of their own.
/// </summary>
/// <param name="Repository">The Hugging Face repository, <c>owner/name</c>.</param>
/// <param name="Files">The files the sample needs from it.</param>
/// <param name="CompiledConfig">The text of the config.json the model class was compiled from.</param>
/// <param name="SourceConfigPath">Where that config.json is in the repository (named when another model's folder is refused).</param>
/// <param name="Load">Builds the inference-only model from a folder with its matrices held as the <see cref="WeightType"/> given (the generated <c>ForInference(string, WeightType)</c>).</param>
/// <param name="Description">The architecture and sizes, printed when the model loads.</param>
/// <param name="Width">The embedding's width (the generated <c>DModel</c>).</param>
/// <param name="Prefixes">The task prefixes the model was trained with; null for a model that takes texts as they are.</param>
public sealed record EmbeddingModelSpec(
    string Repository, IReadOnlyList<string> Files, string CompiledConfig, string SourceConfigPath, Func<string, WeightType, EncoderModel> Load,
    string Description, int Width, TaskPrefixes? Prefixes = null)
{
    /// <summary>What a BERT-tokenized folder holds: the config, the weights, and the WordPiece vocabulary and its settings.</summary>
    public static IReadOnlyList<string> BertFiles { get; } = ["config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"];

    /// <summary>sentence-transformers/all-MiniLM-L6-v2 as <see cref="EmbeddingsSample.MiniLm"/>: texts as they are.</summary>
    public static EmbeddingModelSpec MiniLm { get; } = new(
        "sentence-transformers/all-MiniLM-L6-v2",
        BertFiles,
        EmbeddedConfig.Read(typeof(EmbeddingModelSpec).Assembly, "all-MiniLM-L6-v2.config.json"),
        "samples/Embeddings/models/all-MiniLM-L6-v2/config.json",
        (folder, weights) => EmbeddingsSample.MiniLm.ForInference(folder, weights),
        $"BERT, {EmbeddingsSample.MiniLm.Layers} layers, {EmbeddingsSample.MiniLm.DModel} wide, {EmbeddingsSample.MiniLm.Heads} heads, {EmbeddingsSample.MiniLm.ParameterCount:N0} parameters",
        EmbeddingsSample.MiniLm.DModel);

    /// <summary>
    /// nomic-ai/nomic-embed-text-v1.5 as <see cref="EmbeddingsSample.NomicEmbedTextV15"/>: its model card has documents
    /// embedded as <c>search_document: …</c> and queries as <c>search_query: …</c>.
    /// </summary>
    public static EmbeddingModelSpec NomicEmbedTextV15 { get; } = new(
        "nomic-ai/nomic-embed-text-v1.5",
        BertFiles,
        EmbeddedConfig.Read(typeof(EmbeddingModelSpec).Assembly, "nomic-embed-text-v1.5.config.json"),
        "samples/Embeddings/models/nomic-embed-text-v1.5/config.json",
        (folder, weights) => EmbeddingsSample.NomicEmbedTextV15.ForInference(folder, weights),
        $"NomicBERT (rotary), {EmbeddingsSample.NomicEmbedTextV15.Layers} layers, {EmbeddingsSample.NomicEmbedTextV15.DModel} wide, {EmbeddingsSample.NomicEmbedTextV15.Heads} heads, {EmbeddingsSample.NomicEmbedTextV15.ParameterCount:N0} parameters",
        EmbeddingsSample.NomicEmbedTextV15.DModel,
        TaskPrefixes.Nomic);

    /// <summary>sentence-transformers/all-mpnet-base-v2 as <see cref="EmbeddingsSample.AllMpnetBaseV2"/>: texts as they are.</summary>
    public static EmbeddingModelSpec AllMpnetBaseV2 { get; } = new(
        "sentence-transformers/all-mpnet-base-v2",
        BertFiles,
        EmbeddedConfig.Read(typeof(EmbeddingModelSpec).Assembly, "all-mpnet-base-v2.config.json"),
        "samples/Embeddings/models/all-mpnet-base-v2/config.json",
        (folder, weights) => EmbeddingsSample.AllMpnetBaseV2.ForInference(folder, weights),
        $"MPNet (relative-position bias), {EmbeddingsSample.AllMpnetBaseV2.Layers} layers, {EmbeddingsSample.AllMpnetBaseV2.DModel} wide, {EmbeddingsSample.AllMpnetBaseV2.Heads} heads, {EmbeddingsSample.AllMpnetBaseV2.ParameterCount:N0} parameters",
        EmbeddingsSample.AllMpnetBaseV2.DModel);

    /// <summary>
    /// google/embeddinggemma-300m as <see cref="EmbeddingsSample.EmbeddingGemma300m"/> (a gated repository: accept its license
    /// on the Hub first): its Gemma tokenizer (SentencePiece,
    /// with the &lt;bos&gt; and &lt;eos&gt; its tokenizer_config.json asks for), the sentence-transformers modules with the two
    /// Dense layers' weights, and the prompts of its config_sentence_transformers.json for retrieval.
    /// </summary>
    public static EmbeddingModelSpec EmbeddingGemma300m { get; } = new(
        "google/embeddinggemma-300m",
        ["config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json", "modules.json", "1_Pooling/config.json",
         "2_Dense/config.json", "2_Dense/model.safetensors", "3_Dense/config.json", "3_Dense/model.safetensors"],
        EmbeddedConfig.Read(typeof(EmbeddingModelSpec).Assembly, "embeddinggemma-300m.config.json"),
        "samples/Embeddings/models/embeddinggemma-300m/config.json",
        (folder, weights) => EmbeddingsSample.EmbeddingGemma300m.ForInference(folder, weights),
        $"Gemma 3 (bidirectional, Dense {EmbeddingsSample.EmbeddingGemma300m.DModel} → {EmbeddingsSample.EmbeddingGemma300m.EmbeddingWidth}), {EmbeddingsSample.EmbeddingGemma300m.Layers} layers, {EmbeddingsSample.EmbeddingGemma300m.DModel} wide, {EmbeddingsSample.EmbeddingGemma300m.Heads} heads, {EmbeddingsSample.EmbeddingGemma300m.ParameterCount:N0} parameters",
        EmbeddingsSample.EmbeddingGemma300m.EmbeddingWidth,
        TaskPrefixes.EmbeddingGemma);

    /// <summary>
    /// Alibaba-NLP/gte-modernbert-base as <see cref="EmbeddingsSample.GteModernBertBase"/>: texts as they are. Its tokenizer
    /// is tokenizer.json alone (byte-level BPE, [CLS] … [SEP]) with its settings and special tokens, and the
    /// sentence-transformers modules say it pools by the [CLS] token.
    /// </summary>
    public static EmbeddingModelSpec GteModernBertBase { get; } = new(
        "Alibaba-NLP/gte-modernbert-base",
        ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "modules.json", "1_Pooling/config.json"],
        EmbeddedConfig.Read(typeof(EmbeddingModelSpec).Assembly, "gte-modernbert-base.config.json"),
        "samples/Embeddings/models/gte-modernbert-base/config.json",
        (folder, weights) => EmbeddingsSample.GteModernBertBase.ForInference(folder, weights),
        $"ModernBERT (local and global rotary layers, CLS pooling), {EmbeddingsSample.GteModernBertBase.Layers} layers, {EmbeddingsSample.GteModernBertBase.DModel} wide, {EmbeddingsSample.GteModernBertBase.Heads} heads, {EmbeddingsSample.GteModernBertBase.ParameterCount:N0} parameters",
        EmbeddingsSample.GteModernBertBase.DModel);

    /// <summary>The models the sample's program is compiled with.</summary>
    public static IReadOnlyList<EmbeddingModelSpec> All { get; } = [MiniLm, NomicEmbedTextV15, AllMpnetBaseV2, EmbeddingGemma300m, GteModernBertBase];

    /// <summary>The compiled config.json's model_type (<c>bert</c>, <c>nomic_bert</c>, <c>mpnet</c>, <c>gemma3_text</c>, <c>modernbert</c>), which a folder's must equal for this model to run it.</summary>
    public string ModelType { get; } = ModelTypeChoice.Of(CompiledConfig);
}

/// <summary>The texts a retrieval model puts before a document and before a query (both end with their separating space).</summary>
/// <param name="Document">Before each sentence searched and each sentence of the similarity matrix.</param>
/// <param name="Query">Before each query.</param>
public sealed record TaskPrefixes(string Document, string Query)
{
    /// <summary>nomic-embed-text's: <c>search_document: </c> and <c>search_query: </c> (its model card).</summary>
    public static TaskPrefixes Nomic { get; } = new("search_document: ", "search_query: ");

    /// <summary>
    /// EmbeddingGemma's, from its config_sentence_transformers.json's prompts: <c>title: none | text: </c> for a document
    /// and <c>task: search result | query: </c> for a query.
    /// </summary>
    public static TaskPrefixes EmbeddingGemma { get; } = new("title: none | text: ", "task: search result | query: ");
}
