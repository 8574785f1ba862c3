using System;
using System.Collections.Generic;
using System.IO;
using TransformerGen;
using TransformerGen.Samples.Hub;

namespace TranslateSample;

/// <summary>
/// A model <see cref="TranslateApp"/> runs: where to download it, the config.json it was compiled from (its model_type
/// picks it for a folder, and the folder's config.json is compared with it), and how to load it. <see cref="OpusMtEnDe"/>,
/// <see cref="Nllb200Distilled600M"/> and <see cref="FlanT5Small"/> are the sample's; tests pass tiny models of their own.
/// </summary>
/// <param name="Repository">The Hugging Face repository, <c>owner/name</c>.</param>
/// <param name="Files">The files the sample needs from it.</param>
/// <param name="CompiledConfig">The text of the config.json the model class was compiled from.</param>
/// <param name="SourceConfigPath">Where that config.json is in the repository (named when another model's folder is refused).</param>
/// <param name="Load">Builds the inference-only model from a folder with its matrices held as the weight type says (the generated <c>ForInference(string, WeightType)</c>).</param>
/// <param name="ConvertWith">The transformers class that reads the repository's pytorch_model.bin and writes model.safetensors.</param>
/// <param name="Languages">
/// For a many-to-many model, the source and target languages when none are given: NLLB's language codes, or the English
/// names an instruction-driven model reads in its <paramref name="Instruction"/>; null for a model of one language pair.
/// </param>
/// <param name="Instruction">
/// For an instruction-driven model (Flan-T5), the source it is given for a text: <c>{from}</c>, <c>{to}</c> and <c>{text}</c>
/// stand for the languages and the text (<c>translate {from} to {to}: {text}</c>); null for a model that reads the text alone.
/// </param>
public sealed record TranslationModelSpec(
    string Repository, IReadOnlyList<string> Files, string CompiledConfig, string SourceConfigPath, Func<string, WeightType, Seq2SeqModel> Load,
    string ConvertWith, TranslationLanguages? Languages = null, string? Instruction = null)
{
    /// <summary>What a Marian folder holds: the config, the weights, and the tokenizer's two SentencePiece models and vocabulary.</summary>
    public static IReadOnlyList<string> MarianFiles { get; } =
        ["config.json", "model.safetensors", "source.spm", "target.spm", "vocab.json", "tokenizer_config.json"];

    /// <summary>What an NLLB folder holds: the config, the weights, and the tokenizer's SentencePiece BPE model, config and special tokens.</summary>
    public static IReadOnlyList<string> NllbFiles { get; } =
        ["config.json", "model.safetensors", "sentencepiece.bpe.model", "tokenizer_config.json", "special_tokens_map.json"];

    /// <summary>
    /// What a T5 folder holds: the config, the weights, the SentencePiece Unigram model, the tokenizer's config and special
    /// tokens. The hub's tokenizer.json is not listed: it holds the same pieces for the Rust tokenizer, and spiece.model is read.
    /// </summary>
    public static IReadOnlyList<string> T5Files { get; } =
        ["config.json", "model.safetensors", "spiece.model", "tokenizer_config.json", "special_tokens_map.json"];

    /// <summary>Flan-T5's instruction for a translation, as its model card and T5's task prefixes write it.</summary>
    public const string TranslationInstruction = "translate {from} to {to}: {text}";

    /// <summary>Helsinki-NLP/opus-mt-en-de as <see cref="TranslateSample.OpusMtEnDe"/>: English to German only.</summary>
    public static TranslationModelSpec OpusMtEnDe { get; } = new(
        "Helsinki-NLP/opus-mt-en-de",
        MarianFiles,
        EmbeddedConfig.Read(typeof(TranslationModelSpec).Assembly, "opus-mt-en-de.config.json"),
        "samples/Translate/models/opus-mt-en-de/config.json",
        (folder, weights) => TranslateSample.OpusMtEnDe.ForInference(folder, weights),
        "MarianMTModel");

    /// <summary>facebook/nllb-200-distilled-600M as <see cref="TranslateSample.Nllb200Distilled600M"/>: any of its 202 languages to any other, English to French unless told.</summary>
    public static TranslationModelSpec Nllb200Distilled600M { get; } = new(
        "facebook/nllb-200-distilled-600M",
        NllbFiles,
        EmbeddedConfig.Read(typeof(TranslationModelSpec).Assembly, "nllb-200-distilled-600M.config.json"),
        "samples/Translate/models/nllb-200-distilled-600M/config.json",
        (folder, weights) => TranslateSample.Nllb200Distilled600M.ForInference(folder, weights),
        "AutoModelForSeq2SeqLM",
        new TranslationLanguages("eng_Latn", "fra_Latn"));

    /// <summary>
    /// google/flan-t5-small as <see cref="TranslateSample.FlanT5Small"/>: whatever its instruction asks, English to German
    /// (<c>translate English to German: …</c>) unless told.
    /// </summary>
    public static TranslationModelSpec FlanT5Small { get; } = new(
        "google/flan-t5-small",
        T5Files,
        EmbeddedConfig.Read(typeof(TranslationModelSpec).Assembly, "flan-t5-small.config.json"),
        "samples/Translate/models/flan-t5-small/config.json",
        (folder, weights) => TranslateSample.FlanT5Small.ForInference(folder, weights),
        "T5ForConditionalGeneration",
        new TranslationLanguages("English", "German"),
        TranslationInstruction);

    /// <summary>The models the sample's program is compiled with.</summary>
    public static IReadOnlyList<TranslationModelSpec> All { get; } = [OpusMtEnDe, Nllb200Distilled600M, FlanT5Small];

    /// <summary>The compiled config.json's model_type (<c>marian</c>, <c>m2m_100</c>, <c>t5</c>), which a folder's must equal for this model to run it.</summary>
    public string ModelType { get; } = ModelTypeChoice.Of(CompiledConfig);
}

/// <summary>A many-to-many model's languages when the command line gives none (NLLB's tokenizer's src_lang/tgt_lang come first).</summary>
/// <param name="Source">The source language: NLLB's code (<c>eng_Latn</c>), or the name an instruction reads (<c>English</c>).</param>
/// <param name="Target">The target language: <c>fra_Latn</c>, or <c>German</c>.</param>
public sealed record TranslationLanguages(string Source, string Target);
