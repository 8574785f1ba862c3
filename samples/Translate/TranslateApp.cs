using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using TransformerGen;
using TransformerGen.Samples.Hub;
using TransformerGen.Tokenizers;

namespace TranslateSample;

/// <summary>
/// The sample: loads a translation model and its tokenizer from a downloaded folder and translates a few sentences,
/// greedily or by beam search. The folder's config.json says which of the compiled models runs (its model_type: marian is
/// opus-mt-en-de, m2m_100 is NLLB-200, t5 is Flan-T5, which is told what to do by an instruction written before the text:
/// <c>translate English to German: </c> from --from and --to, or any --prompt, such as <c>summarize: </c>). <see cref="Run(string[], TextWriter, TextWriter, IReadOnlyList{TranslationModelSpec})"/>
/// takes the writers and the models so that tests run it on tiny models of their own.
/// </summary>
public static class TranslateApp
{
    /// <summary>Exit code when there is nothing to run: no folder, or files missing from it (what to download is printed).</summary>
    public const int ExitMissingModel = 2;

    /// <summary>Exit code when the folder holds another model than the ones compiled in.</summary>
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

    /// <summary>Runs the sample with Helsinki-NLP/opus-mt-en-de, facebook/nllb-200-distilled-600M and google/flan-t5-small.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error) => Run(args, output, error, TranslationModelSpec.All);

    /// <summary>Parses <paramref name="args"/> and runs the sample with <paramref name="spec"/>'s model.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, TranslationModelSpec spec) => Run(args, output, error, [spec]);

    /// <summary>Parses <paramref name="args"/> and runs the sample with the one of <paramref name="specs"/> whose model_type the folder's config.json has.</summary>
    /// <returns>0, <see cref="ExitMissingModel"/>, <see cref="ExitWrongModel"/>, or 1 for a command line that does not parse, options the model does not take, or a text the model refuses.</returns>
    public static int Run(string[] args, TextWriter output, TextWriter error, IReadOnlyList<TranslationModelSpec> specs)
    {
        ArgumentNullException.ThrowIfNull(specs);
        if (specs.Count == 0) throw new ArgumentException("no model to run", nameof(specs));
        string repositories = string.Join(" or ", specs.Select(spec => spec.Repository));
        var model = new Option<string?>("--model") { Description = $"The folder of {repositories}; its config.json's model_type says which.", HelpName = "folder" };
        var texts = new Option<string[]>("--text") { Description = "A text to translate (repeat for more); a few built-in English sentences when none is given.", HelpName = "text" };
        var from = new Option<string?>("--from") { Description = "The source language: NLLB's code (default: the tokenizer's src_lang, else eng_Latn) or Flan-T5's English name (default English); opus-mt-en-de translates English only.", HelpName = "language" };
        var to = new Option<string?>("--to") { Description = "The target language: NLLB's code (default: the tokenizer's tgt_lang, else fra_Latn) or Flan-T5's English name (default German); opus-mt-en-de translates into German only.", HelpName = "language" };
        var prompt = new Option<string?>("--prompt") { Description = $"Flan-T5's instruction instead of \"translate <from> to <to>: \": written before each text, or around it where it says {SentenceTranslator.TextPlaceholder} (\"summarize: \", \"Answer the question: \", \"\" for the text alone).", HelpName = "instruction" };
        var weights = new Option<string>("--weights") { Description = "How the weight matrices are held: fp32 as trained, bf16 (half the memory), int8 (about a quarter; NLLB-600M is 2.4 GB in fp32).", HelpName = "type", DefaultValueFactory = _ => "fp32" };
        weights.AcceptOnlyFromAmong([.. WeightTypeNames.All.Keys]);
        var beam = new Option<int>("--beam") { Description = "Beam width; 1 decodes greedily.", HelpName = "k", DefaultValueFactory = _ => 1 };
        var lengthPenalty = new Option<float>("--length-penalty") { Description = "Beam search's α in GNMT's length penalty ((5 + length) / 6)^α; 0 ranks by log-probability alone.", HelpName = "a", DefaultValueFactory = _ => 0.6f };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "The most tokens of a translation (default: the model's TargetSeqLen).", HelpName = "n" };
        beam.Validators.Add(result => { if (result.GetValueOrDefault<int>() < 1) result.AddError("--beam must be at least 1."); });
        lengthPenalty.Validators.Add(result => { if (!float.IsFinite(result.GetValueOrDefault<float>())) result.AddError("--length-penalty must be finite."); });
        maxTokens.Validators.Add(result => { if (result.GetValueOrDefault<int?>() < 1) result.AddError("--max-tokens must be at least 1."); });
        var command = new RootCommand($"Translate with {repositories}, compiled from their config.json: the encoder runs once per text, the decoder token by token through its key/value cache.")
        {
            model, texts, from, to, prompt, weights, beam, lengthPenalty, maxTokens,
        };
        command.SetAction(parsed =>
        {
            string[] given = parsed.GetValue(texts) ?? [];
            var settings = new TranslationSettings(parsed.GetValue(beam), parsed.GetValue(lengthPenalty), parsed.GetValue(maxTokens) ?? int.MaxValue);
            var request = new Request(
                parsed.GetValue(model), given.Length > 0 ? given : DefaultSentences, parsed.GetValue(from), parsed.GetValue(to),
                parsed.GetValue(prompt), WeightTypeNames.All[parsed.GetValue(weights)!], settings);
            return Execute(specs, request, output, error);
        });
        return command.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
    }

    /// <summary>What the command line asks for.</summary>
    private sealed record Request(string? Folder, IReadOnlyList<string> Texts, string? From, string? To, string? Prompt, WeightType Weights, TranslationSettings Settings);

    private static int Execute(IReadOnlyList<TranslationModelSpec> specs, Request request, TextWriter output, TextWriter error)
    {
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        string? folder = request.Folder;
        TranslationSettings settings = request.Settings;
        if (folder is null)
        {
            WriteDownloadInstructions(specs, error, "No model folder given (--model).");
            return ExitMissingModel;
        }

        if (!Directory.Exists(folder))
        {
            WriteDownloadInstructions(specs, error, $"The model folder '{folder}' does not exist.");
            return ExitMissingModel;
        }

        string configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath))
        {
            WriteDownloadInstructions(specs, error, $"The model folder '{folder}' lacks config.json, which says which model it holds.");
            return ExitMissingModel;
        }

        // The folder's model_type picks the model; a different model is told before any missing file: its other files do not matter.
        TranslationModelSpec? spec = Choose(specs, configPath, error);
        if (spec is null || !ArchitectureCheck.Accepts(spec.CompiledConfig, configPath, spec.Repository, spec.SourceConfigPath, error))
        {
            return ExitWrongModel;
        }

        // Options the model does not take are refused before anything is loaded.
        if (spec.Languages is null && (request.From is not null || request.To is not null))
        {
            error.WriteLine($"{spec.Repository} translates one language pair, so --from and --to are not taken: they choose the languages of a many-to-many model (NLLB, Flan-T5).");
            return 1;
        }

        string? sourcePrompt = null;
        if (spec.Instruction is null && request.Prompt is not null)
        {
            error.WriteLine($"{spec.Repository} translates the text it is given, so --prompt is not taken: it is the instruction of a model that follows one (Flan-T5).");
            return 1;
        }

        if (spec.Instruction is string instruction)
        {
            sourcePrompt = Prompt(spec, instruction, request, error);
            if (sourcePrompt is null)
            {
                return 1;
            }
        }

        var hub = Hub(spec);
        IReadOnlyList<string> missing = hub.MissingFiles(folder);
        if (missing.Count > 0)
        {
            WriteDownloadInstructions(hub, spec, error, $"The model folder '{folder}' lacks {string.Join(", ", missing)}.");
            return ExitMissingModel;
        }

        long started = Stopwatch.GetTimestamp();
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder);
        TimeSpan tokenizerTime = Stopwatch.GetElapsedTime(started);

        int[] prefix = [];
        string? languages = null;
        if (spec.Languages is TranslationLanguages defaults && spec.Instruction is null)
        {
            string source = request.From ?? tokenizer.SourceLanguage ?? defaults.Source;
            string target = request.To ?? tokenizer.TargetLanguage ?? defaults.Target;
            if (!KnowsLanguage(tokenizer, "--from", source, error) || !KnowsLanguage(tokenizer, "--to", target, error))
            {
                return 1;
            }

            tokenizer = tokenizer.WithSourceLanguage(source);
            prefix = [tokenizer.LanguageCodeId(target)];
            languages = $"languages: {source} → {target} (each source begins with {source}, id {tokenizer.LanguageCodeId(source)}; each translation is forced to begin with {target}, id {prefix[0]})";
        }

        started = Stopwatch.GetTimestamp();
        Seq2SeqModel model = spec.Load(folder, request.Weights);
        TimeSpan weightsTime = Stopwatch.GetElapsedTime(started);
        ModelLayout layout = model.Layout;

        SentenceTranslator translator;
        try
        {
            translator = new SentenceTranslator(model, tokenizer, prefix, sourcePrompt);
        }
        catch (ArgumentException e)
        {
            error.WriteLine($"The tokenizer of '{folder}' does not fit the model: {e.Message}");
            return 1;
        }

        long parameters = model.ParameterTensors.Sum(t => (long)t.Length);
        output.WriteLine($"model: {spec.Repository} from {folder} as {layout.Name}: {parameters:N0} parameters; sources up to {layout.SeqLen} tokens, translations up to {translator.MaxTranslationTokens}");
        output.WriteLine($"loaded in {(tokenizerTime + weightsTime).TotalSeconds:F2} s (tokenizer {tokenizerTime.TotalSeconds:F2} s, {tokenizer.Kind}, {tokenizer.VocabSize:N0} ids; weights {weightsTime.TotalSeconds:F2} s, {WeightTypeNames.Name(request.Weights)}, {model.BufferBytes / 1e6:F0} MB of buffers{Released(model)})");
        if (languages is not null)
        {
            output.WriteLine(languages);
        }

        if (translator.Prompt is string written)
        {
            output.WriteLine(DescribePrompt(written, tokenizer));
        }

        string limit = settings.MaxTokens < translator.MaxTranslationTokens ? $"; at most {settings.MaxTokens} tokens" : "";
        output.WriteLine(settings.BeamWidth == 1
            ? $"decoding: greedy{limit}"
            : $"decoding: beam search, width {settings.BeamWidth}, length penalty {settings.LengthPenalty}{limit}");

        int sourceTokens = 0, targetTokens = 0;
        TimeSpan elapsed = TimeSpan.Zero;
        for (int i = 0; i < request.Texts.Count; i++)
        {
            Translation translation;
            try
            {
                translation = translator.Translate(request.Texts[i], settings);
            }
            catch (ArgumentException e)
            {
                error.WriteLine($"Text {i + 1} cannot be translated: {e.Message}");
                return 1;
            }

            output.WriteLine();
            output.WriteLine($"[{i + 1}] {translation.Source}");
            output.WriteLine($"  → {translation.Text}");
            if (translation.IdsWithoutText > 0)
            {
                output.WriteLine($"    {translation.IdsWithoutText} of its ids {(translation.IdsWithoutText == 1 ? "is" : "are")} past the tokenizer's {tokenizer.VocabSize:N0} (rows of the model's {layout.TargetVocab:N0} that are no token) and have no text");
            }
            if (translation.Truncated)
            {
                string kept = prefix.Length == 0 ? "its closing </s>" : "its language code and closing </s>";
                output.WriteLine($"    the source was cut to {translation.SourceTokens.Length} of its {translation.FullSourceLength} tokens (SeqLen), keeping {kept}");
            }

            output.WriteLine($"    {translation.SourceTokens.Length} source tokens, {translation.Tokens.Length} target tokens in {translation.Elapsed.TotalSeconds:F3} s ({translation.TokensPerSecond:N1} tokens/s); {Describe(translation.Stop, settings, layout, prefix.Length)}");
            sourceTokens += translation.SourceTokens.Length;
            targetTokens += translation.Tokens.Length;
            elapsed += translation.Elapsed;
        }

        output.WriteLine();
        output.WriteLine($"translated {request.Texts.Count} text{(request.Texts.Count == 1 ? "" : "s")}: {sourceTokens} source tokens, {targetTokens} target tokens in {elapsed.TotalSeconds:F3} s ({targetTokens / elapsed.TotalSeconds:N1} tokens/s)");
        return 0;
    }

    /// <summary>
    /// The source an instruction-driven model reads for a text, <see cref="SentenceTranslator.TextPlaceholder"/> standing
    /// for the text: --prompt as given (the text after it unless it places the text), or the model's instruction with the
    /// languages of --from and --to; null, with the reason written, when the options do not go together or a language is a code.
    /// </summary>
    private static string? Prompt(TranslationModelSpec spec, string instruction, Request request, TextWriter error)
    {
        if (request.Prompt is string given)
        {
            if (request.From is not null || request.To is not null)
            {
                error.WriteLine($"--prompt replaces the instruction that --from and --to fill in ({instruction}), so they are not taken with it: write the languages into the prompt.");
                return null;
            }

            // SentencePiece drops the extra space of "summarize: " + text, and "summarize:" + text needs one.
            return given.Contains(SentenceTranslator.TextPlaceholder, StringComparison.Ordinal) ? given
                : given.Length == 0 || char.IsWhiteSpace(given[^1]) ? given + SentenceTranslator.TextPlaceholder
                : given + " " + SentenceTranslator.TextPlaceholder;
        }

        TranslationLanguages defaults = spec.Languages ?? new TranslationLanguages("English", "German");
        string source = request.From ?? defaults.Source, target = request.To ?? defaults.Target;
        if (!IsLanguageName(spec, instruction, "--from", source, error) || !IsLanguageName(spec, instruction, "--to", target, error))
        {
            return null;
        }

        return instruction.Replace("{from}", source, StringComparison.Ordinal).Replace("{to}", target, StringComparison.Ordinal);
    }

    // A few languages by their ISO 639-1 and 639-3 (and 639-2/B) codes, to name the one a code means: T5 was trained on
    // English to German, French and Romanian, and Flan-T5's card lists these among its languages.
    private static readonly (string Name, string[] Codes)[] LanguageNames =
    [
        ("English", ["en", "eng"]), ("German", ["de", "deu", "ger"]), ("French", ["fr", "fra", "fre"]), ("Romanian", ["ro", "ron", "rum"]),
        ("Spanish", ["es", "spa"]), ("Italian", ["it", "ita"]), ("Portuguese", ["pt", "por"]), ("Dutch", ["nl", "nld", "dut"]),
        ("Russian", ["ru", "rus"]), ("Chinese", ["zh", "zho", "chi"]), ("Japanese", ["ja", "jpn"]), ("Korean", ["ko", "kor"]),
        ("Arabic", ["ar", "ara"]), ("Hindi", ["hi", "hin"]), ("Turkish", ["tr", "tur"]), ("Polish", ["pl", "pol"]),
    ];

    // en, deu, fra_Latn, zh-CN: a code, which an instruction would write as a word the model was not taught.
    private static readonly Regex LanguageCode = new("^[a-z]{2,3}([_-][A-Za-z]{2,4})?$", RegexOptions.CultureInvariant);

    /// <summary>Whether <paramref name="language"/> is a name to write into the instruction, not a code; otherwise writes which name to give.</summary>
    private static bool IsLanguageName(TranslationModelSpec spec, string instruction, string option, string language, TextWriter error)
    {
        if (language.Trim().Length > 0 && !LanguageCode.IsMatch(language))
        {
            return true;
        }

        string code = language.Split('_', '-')[0];
        string? name = LanguageNames.FirstOrDefault(entry => entry.Codes.Contains(code, StringComparer.Ordinal)).Name;
        string advice = name is null ? "give the language's English name (German, French, …)" : $"give {option} {name}";
        error.WriteLine($"{option} '{language}' is no language name: {spec.Repository} reads the languages as words in its instruction ({instruction}), so {advice}.");
        return false;
    }

    /// <summary>The prompt line: the source for a text, and the ids of the instruction before it.</summary>
    private static string DescribePrompt(string prompt, PretrainedTokenizer tokenizer)
    {
        int at = prompt.IndexOf(SentenceTranslator.TextPlaceholder, StringComparison.Ordinal);
        string before = prompt[..at], after = prompt[(at + SentenceTranslator.TextPlaceholder.Length)..].Trim();
        int[] ids = before.Trim().Length == 0 ? [] : [.. tokenizer.Encode(before, addSpecialTokens: false)];
        string begins = ids.Length == 0 ? "each source is the text" : $"each source begins with the instruction's {ids.Length} tokens ({string.Join(", ", ids)})";
        string then = after.Length == 0 ? "" : $", the text followed by '{after}'";
        return $"prompt: \"{prompt}\" ({begins}{then}, closed by </s>, id {tokenizer.EosId})";
    }

    /// <summary>The model whose compiled model_type the folder's config.json has; null (with the reason written) when none has it.</summary>
    private static TranslationModelSpec? Choose(IReadOnlyList<TranslationModelSpec> specs, string configPath, TextWriter error) =>
        ModelTypeChoice.Choose(specs, spec => spec.ModelType, spec => spec.Repository, configPath, "samples/Translate", error, spec => spec.CompiledConfig);

    /// <summary>Whether the tokenizer has <paramref name="code"/> among its language codes; otherwise writes what it has.</summary>
    private static bool KnowsLanguage(PretrainedTokenizer tokenizer, string option, string code, TextWriter error)
    {
        if (tokenizer.LanguageCodes.Contains(code, StringComparer.Ordinal))
        {
            return true;
        }

        // Codes are ISO 639-3 and a script (fra_Latn): "fr", "fra" or "French" finds the codes that begin as it does.
        string language = code.Split('_')[0];
        language = language[..Math.Min(3, language.Length)];
        string[] near = language.Length < 2 ? [] : [.. tokenizer.LanguageCodes.Where(known => known.StartsWith(language, StringComparison.OrdinalIgnoreCase))];
        string suggestion = near.Length > 0 ? $" Did you mean {string.Join(" or ", near)}?" : "";
        error.WriteLine($"Unknown {option} language '{code}': the tokenizer knows {tokenizer.LanguageCodes.Count} language codes, each a language and its script ({string.Join(", ", tokenizer.LanguageCodes.Take(3))}, …, {tokenizer.LanguageCodes[^1]}).{suggestion}");
        return false;
    }

    // bf16 and int8 matrices sit in the first part of their fp32 space; the rest's pages go back to the system (Linux).
    // Less than half a megabyte (a tiny model's few pages) is not worth a line that would read "0 MB".
    private static string Released(Seq2SeqModel model) =>
        model.ReleasedWeightBytes >= 500_000 ? $", {model.ReleasedWeightBytes / 1e6:F0} MB of them given back to the system" : "";

    private static string Describe(TranslationStop stop, TranslationSettings settings, ModelLayout layout, int prefixLength) => stop switch
    {
        TranslationStop.EndOfSentence => "ended at </s>",
        TranslationStop.MaxTokens => $"stopped at --max-tokens {settings.MaxTokens}",
        _ when prefixLength == 0 => $"stopped at TargetSeqLen ({layout.DecoderSeqLen} tokens)",
        _ => $"stopped at TargetSeqLen ({layout.DecoderSeqLen - prefixLength} tokens after the forced language code)",
    };

    private static HubModel Hub(TranslationModelSpec spec)
    {
        string languages = spec.Languages is TranslationLanguages defaults ? $" --from {defaults.Source} --to {defaults.Target}" : "";
        return new HubModel(spec.Repository, spec.Files, "dotnet run -c Release --project samples/Translate -- --model {folder}" + languages);
    }

    /// <summary>Each model's instructions, the first after <paramref name="why"/>: without a config.json there is no telling which model the user wants.</summary>
    private static void WriteDownloadInstructions(IReadOnlyList<TranslationModelSpec> specs, TextWriter error, string why)
    {
        for (int i = 0; i < specs.Count; i++)
        {
            if (i > 0)
            {
                error.WriteLine();
            }

            string heading = i == 0 ? why : $"Or, for a folder whose config.json has model_type {specs[i].ModelType}:";
            WriteDownloadInstructions(Hub(specs[i]), specs[i], error, heading);
        }
    }

    /// <summary>
    /// The hub's instructions, and how to make model.safetensors from pytorch_model.bin: opus-mt and NLLB repositories were
    /// published with PyTorch pickles, and not all of them have had safetensors added.
    /// </summary>
    private static void WriteDownloadInstructions(HubModel hub, TranslationModelSpec spec, TextWriter error, string why)
    {
        hub.WriteDownloadInstructions(error, why);
        error.WriteLine();
        error.WriteLine($"If {hub.Repository} has no {HubModel.Weights}, download pytorch_model.bin instead and convert it with transformers");
        error.WriteLine("(save_pretrained writes safetensors; the tied copies of the token table are written once):");
        error.WriteLine();
        error.WriteLine($"  python -c \"from transformers import {spec.ConvertWith}; {spec.ConvertWith}.from_pretrained('{hub.SuggestedFolder}').save_pretrained('{hub.SuggestedFolder}', safe_serialization=True)\"");
    }
}
