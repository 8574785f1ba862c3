using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using TransformerGen;
using TransformerGen.Samples.Hub;
using TransformerGen.Tokenizers;

namespace TranslateSample;

/// <summary>
/// The sample: loads a Marian translation model and its tokenizer from a downloaded folder and translates a few
/// sentences, greedily or by beam search. <see cref="Run(string[], TextWriter, TextWriter, TranslationModelSpec)"/> takes
/// the writers and the model so that tests run it on a tiny model of their own.
/// </summary>
public static class TranslateApp
{
    /// <summary>Exit code when there is nothing to run: no folder, or files missing from it (what to download is printed).</summary>
    public const int ExitMissingModel = 2;

    /// <summary>Exit code when the folder holds another model than the one compiled in.</summary>
    public const int ExitWrongModel = 3;

    /// <summary>The sentences translated when no --text is given.</summary>
    public static IReadOnlyList<string> DefaultSentences { get; } =
    [
        "The weather is lovely today, so we are going for a walk in the park.",
        "Where is the nearest train station?",
        "Machine translation has improved a great deal in recent years.",
        "I would like a cup of coffee and a piece of apple cake, please.",
        "The library opens at nine o'clock in the morning and closes at six.",
    ];

    /// <summary>Runs the sample with Helsinki-NLP/opus-mt-en-de.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error) => Run(args, output, error, TranslationModelSpec.OpusMtEnDe);

    /// <summary>Parses <paramref name="args"/> and runs the sample with <paramref name="spec"/>'s model.</summary>
    /// <returns>0, <see cref="ExitMissingModel"/>, <see cref="ExitWrongModel"/>, or 1 for a command line that does not parse or a text the model refuses.</returns>
    public static int Run(string[] args, TextWriter output, TextWriter error, TranslationModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var model = new Option<string?>("--model") { Description = $"The folder of {spec.Repository} ({string.Join(", ", spec.Files)}).", HelpName = "folder" };
        var texts = new Option<string[]>("--text") { Description = "A text to translate (repeat for more); a few built-in English sentences when none is given.", HelpName = "text" };
        var beam = new Option<int>("--beam") { Description = "Beam width; 1 decodes greedily.", HelpName = "k", DefaultValueFactory = _ => 1 };
        var lengthPenalty = new Option<float>("--length-penalty") { Description = "Beam search's α in GNMT's length penalty ((5 + length) / 6)^α; 0 ranks by log-probability alone.", HelpName = "a", DefaultValueFactory = _ => 0.6f };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "The most tokens of a translation (default: the model's TargetSeqLen).", HelpName = "n" };
        beam.Validators.Add(result => { if (result.GetValueOrDefault<int>() < 1) result.AddError("--beam must be at least 1."); });
        lengthPenalty.Validators.Add(result => { if (!float.IsFinite(result.GetValueOrDefault<float>())) result.AddError("--length-penalty must be finite."); });
        maxTokens.Validators.Add(result => { if (result.GetValueOrDefault<int?>() < 1) result.AddError("--max-tokens must be at least 1."); });
        var command = new RootCommand($"Translate with {spec.Repository}, compiled from its config.json: the encoder runs once per text, the decoder token by token through its key/value cache.")
        {
            model, texts, beam, lengthPenalty, maxTokens,
        };
        command.SetAction(parsed =>
        {
            string[] given = parsed.GetValue(texts) ?? [];
            var settings = new TranslationSettings(parsed.GetValue(beam), parsed.GetValue(lengthPenalty), parsed.GetValue(maxTokens) ?? int.MaxValue);
            return Execute(spec, parsed.GetValue(model), given.Length > 0 ? given : DefaultSentences, settings, output, error);
        });
        return command.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
    }

    private static int Execute(TranslationModelSpec spec, string? folder, IReadOnlyList<string> texts, TranslationSettings settings, TextWriter output, TextWriter error)
    {
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        var hub = new HubModel(spec.Repository, spec.Files, "dotnet run -c Release --project samples/Translate -- --model {folder}");
        if (folder is null)
        {
            WriteDownloadInstructions(hub, error, "No model folder given (--model).");
            return ExitMissingModel;
        }

        if (!Directory.Exists(folder))
        {
            WriteDownloadInstructions(hub, error, $"The model folder '{folder}' does not exist.");
            return ExitMissingModel;
        }

        // A different model is told first, before any missing file: its other files do not matter.
        string configPath = Path.Combine(folder, "config.json");
        if (File.Exists(configPath) && !ArchitectureCheck.Accepts(spec.CompiledConfig, configPath, spec.Repository, spec.SourceConfigPath, error))
        {
            return ExitWrongModel;
        }

        IReadOnlyList<string> missing = hub.MissingFiles(folder);
        if (missing.Count > 0)
        {
            WriteDownloadInstructions(hub, error, $"The model folder '{folder}' lacks {string.Join(", ", missing)}.");
            return ExitMissingModel;
        }

        long started = Stopwatch.GetTimestamp();
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder);
        TimeSpan tokenizerTime = Stopwatch.GetElapsedTime(started);
        started = Stopwatch.GetTimestamp();
        Seq2SeqModel model = spec.Load(folder);
        TimeSpan weightsTime = Stopwatch.GetElapsedTime(started);
        ModelLayout layout = model.Layout;
        long parameters = model.ParameterTensors.Sum(t => (long)t.Length);
        output.WriteLine($"model: {spec.Repository} from {folder} as {layout.Name}: {parameters:N0} parameters; sources up to {layout.SeqLen} tokens, translations up to {layout.DecoderSeqLen}");
        output.WriteLine($"loaded in {(tokenizerTime + weightsTime).TotalSeconds:F2} s (tokenizer {tokenizerTime.TotalSeconds:F2} s, {tokenizer.Kind}, {tokenizer.VocabSize:N0} ids; weights {weightsTime.TotalSeconds:F2} s, {model.BufferBytes / 1e6:F0} MB of buffers)");
        string limit = settings.MaxTokens < layout.DecoderSeqLen ? $"; at most {settings.MaxTokens} tokens" : "";
        output.WriteLine(settings.BeamWidth == 1
            ? $"decoding: greedy{limit}"
            : $"decoding: beam search, width {settings.BeamWidth}, length penalty {settings.LengthPenalty}{limit}");

        SentenceTranslator translator;
        try
        {
            translator = new SentenceTranslator(model, tokenizer);
        }
        catch (ArgumentException e)
        {
            error.WriteLine($"The tokenizer of '{folder}' does not fit the model: {e.Message}");
            return 1;
        }

        int sourceTokens = 0, targetTokens = 0;
        TimeSpan elapsed = TimeSpan.Zero;
        for (int i = 0; i < texts.Count; i++)
        {
            Translation translation;
            try
            {
                translation = translator.Translate(texts[i], settings);
            }
            catch (ArgumentException e)
            {
                error.WriteLine($"Text {i + 1} cannot be translated: {e.Message}");
                return 1;
            }

            output.WriteLine();
            output.WriteLine($"[{i + 1}] {translation.Source}");
            output.WriteLine($"  → {translation.Text}");
            if (translation.Truncated)
            {
                output.WriteLine($"    the source was cut to {translation.SourceTokens.Length} of its {translation.FullSourceLength} tokens (SeqLen), keeping its closing </s>");
            }

            output.WriteLine($"    {translation.SourceTokens.Length} source tokens, {translation.Tokens.Length} target tokens in {translation.Elapsed.TotalSeconds:F3} s ({translation.TokensPerSecond:N1} tokens/s); {Describe(translation.Stop, settings, layout)}");
            sourceTokens += translation.SourceTokens.Length;
            targetTokens += translation.Tokens.Length;
            elapsed += translation.Elapsed;
        }

        output.WriteLine();
        output.WriteLine($"translated {texts.Count} text{(texts.Count == 1 ? "" : "s")}: {sourceTokens} source tokens, {targetTokens} target tokens in {elapsed.TotalSeconds:F3} s ({targetTokens / elapsed.TotalSeconds:N1} tokens/s)");
        return 0;
    }

    private static string Describe(TranslationStop stop, TranslationSettings settings, ModelLayout layout) => stop switch
    {
        TranslationStop.EndOfSentence => "ended at </s>",
        TranslationStop.MaxTokens => $"stopped at --max-tokens {settings.MaxTokens}",
        _ => $"stopped at TargetSeqLen ({layout.DecoderSeqLen} tokens)",
    };

    /// <summary>
    /// The hub's instructions, and how to make model.safetensors from pytorch_model.bin: opus-mt repositories were
    /// published with PyTorch pickles, and not all of them have had safetensors added.
    /// </summary>
    private static void WriteDownloadInstructions(HubModel hub, TextWriter error, string why)
    {
        hub.WriteDownloadInstructions(error, why);
        error.WriteLine();
        error.WriteLine($"If {hub.Repository} has no {HubModel.Weights}, download pytorch_model.bin instead and convert it with transformers");
        error.WriteLine("(save_pretrained writes safetensors; the tied copies of the token table are written once):");
        error.WriteLine();
        error.WriteLine($"  python -c \"from transformers import MarianMTModel; MarianMTModel.from_pretrained('{hub.SuggestedFolder}').save_pretrained('{hub.SuggestedFolder}')\"");
    }
}
