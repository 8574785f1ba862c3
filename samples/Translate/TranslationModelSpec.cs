using System;
using System.Collections.Generic;
using System.IO;
using TransformerGen;

namespace TranslateSample;

/// <summary>
/// The model <see cref="TranslateApp"/> runs: where to download it, the config.json it was compiled from (to compare a
/// folder's with), and how to load it. <see cref="OpusMtEnDe"/> is the sample's; tests pass a tiny Marian of their own.
/// </summary>
/// <param name="Repository">The Hugging Face repository, <c>owner/name</c>.</param>
/// <param name="Files">The files the sample needs from it.</param>
/// <param name="CompiledConfig">The text of the config.json the model class was compiled from.</param>
/// <param name="SourceConfigPath">Where that config.json is in the repository (named when another model's folder is refused).</param>
/// <param name="Load">Builds the inference-only model from a folder (the generated <c>ForInference(string)</c>).</param>
public sealed record TranslationModelSpec(string Repository, IReadOnlyList<string> Files, string CompiledConfig, string SourceConfigPath, Func<string, Seq2SeqModel> Load)
{
    /// <summary>What a Marian folder holds: the config, the weights, and the tokenizer's two SentencePiece models and vocabulary.</summary>
    public static IReadOnlyList<string> MarianFiles { get; } =
        ["config.json", "model.safetensors", "source.spm", "target.spm", "vocab.json", "tokenizer_config.json"];

    /// <summary>Helsinki-NLP/opus-mt-en-de as <see cref="OpusMtEnDe"/>.</summary>
    public static TranslationModelSpec OpusMtEnDe { get; } = new(
        "Helsinki-NLP/opus-mt-en-de",
        MarianFiles,
        EmbeddedText("opus-mt-en-de.config.json"),
        "samples/Translate/models/opus-mt-en-de/config.json",
        folder => TranslateSample.OpusMtEnDe.ForInference(folder));

    private static string EmbeddedText(string name)
    {
        using Stream stream = typeof(TranslationModelSpec).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"{name} is not embedded in the program");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
