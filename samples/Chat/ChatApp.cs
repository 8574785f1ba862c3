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

namespace ChatSample;

/// <summary>
/// The sample: loads a chat model and its tokenizer from a downloaded folder and streams its reply to one prompt, or, with
/// <c>--interactive</c>, to each message of a conversation read from the console. The
/// folder's config.json says which of the compiled models runs (its model_type: llama is SmolLM2-135M-Instruct or
/// Llama-3.2-1B-Instruct, told apart by their sizes; gemma3_text is gemma-3-270m-it). The reply stops at any of its
/// config.json's end-of-sequence ids, the tokenizer's, or the chat template's end of turn. <see cref="Run(string[], TextWriter, TextWriter, IReadOnlyList{ChatModelSpec})"/>
/// takes the writers and the models so that tests run it on tiny models of their own.
/// </summary>
public static class ChatApp
{
    /// <summary>Exit code when there is nothing to run: no folder, or files missing from it (what to download is printed).</summary>
    public const int ExitMissingModel = 2;

    /// <summary>Exit code when the folder holds another model than the one compiled in.</summary>
    public const int ExitWrongModel = 3;

    /// <summary>The prompt when none is given.</summary>
    public const string DefaultPrompt = "What is the capital of France?";

    /// <summary>Runs the sample with its models (SmolLM2-135M-Instruct, gemma-3-270m-it and Llama-3.2-1B-Instruct); <c>--interactive</c> reads the user's turns from the console.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error) => Run(args, output, error, ChatModelSpec.All, Console.In);

    /// <summary>Parses <paramref name="args"/> and runs the sample with <paramref name="spec"/>'s model alone.</summary>
    /// <returns>0, <see cref="ExitMissingModel"/>, <see cref="ExitWrongModel"/>, or 1 for a command line that does not parse or a prompt that does not fit.</returns>
    /// <param name="input">Where <c>--interactive</c> reads the user's turns, a line each (the console when null).</param>
    public static int Run(string[] args, TextWriter output, TextWriter error, ChatModelSpec spec, TextReader? input = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return Run(args, output, error, [spec], input);
    }

    /// <summary>Parses <paramref name="args"/> and runs the sample with the one of <paramref name="specs"/> whose model_type the folder's config.json has (of several, the one whose compiled config it agrees with).</summary>
    /// <returns>0, <see cref="ExitMissingModel"/>, <see cref="ExitWrongModel"/>, or 1 for a command line that does not parse or a prompt that does not fit.</returns>
    /// <param name="input">Where <c>--interactive</c> reads the user's turns, a line each (the console when null).</param>
    public static int Run(string[] args, TextWriter output, TextWriter error, IReadOnlyList<ChatModelSpec> specs, TextReader? input = null)
    {
        ArgumentNullException.ThrowIfNull(specs);
        if (specs.Count == 0) throw new ArgumentException("no model to run", nameof(specs));
        string folders = string.Join("; or ", specs.Select(spec => $"{spec.Repository} ({string.Join(", ", spec.Files)})"));
        var model = new Option<string?>("--model") { Description = $"The folder of {folders}{(specs.Count > 1 ? ": its config.json's model_type says which" : "")}.", HelpName = "folder" };
        var prompt = new Option<string?>("--prompt") { Description = $"The user's message (plain text to continue when the tokenizer has no chat template). Default: \"{DefaultPrompt}\", or none with --interactive.", HelpName = "text" };
        var interactive = new Option<bool>("--interactive", "-i")
        {
            Description = "Go on with the conversation: after each reply, read the next message from the console (a line; /reset starts a new conversation, /exit or the end of input ends). "
                + "Each turn runs only what its prompt adds to the key/value cache; the oldest turns are left out when the conversation outgrows SeqLen.",
        };
        var system = new Option<string?>("--system") { Description = "A system message before the user's.", HelpName = "text" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "The most tokens to generate.", HelpName = "n", DefaultValueFactory = _ => 256 };
        // The sampling options default to the folder's generation_config.json (greedy without one): see SamplingOptions.
        var temperature = new Option<float?>("--temperature") { Description = "Softmax temperature; 0 is greedy decoding.", HelpName = "t" };
        var topK = new Option<int?>("--top-k") { Description = "Sample among the K most likely tokens; 0 for all.", HelpName = "k" };
        var topP = new Option<float?>("--top-p") { Description = "Sample among the most likely tokens up to this probability mass; 1 for all.", HelpName = "p" };
        var minP = new Option<float?>("--min-p") { Description = "Sample among the tokens at least this fraction as likely as the most likely one; 0 for all.", HelpName = "p" };
        var repetitionPenalty = new Option<float?>("--repetition-penalty") { Description = "Divide positive logits (multiply negative ones) of the prompt's and the reply's tokens by this; 1 for none.", HelpName = "r" };
        var seed = new Option<ulong>("--seed") { Description = "The sampler's seed.", HelpName = "s", DefaultValueFactory = _ => 1UL };
        string defaults = string.Join(", ", specs.Where(spec => spec.DefaultWeights != WeightType.Float32).Select(spec => $"{WeightTypeNames.Name(spec.DefaultWeights)} for {spec.Repository}"));
        var weights = new Option<string?>("--weights")
        {
            Description = "How the weight matrices are held: fp32 as trained, bf16 (half the memory), int8 (about a quarter; in fp32 gemma-3-270m-it takes 1.1 GB, Llama-3.2-1B-Instruct 4.9 GB, Llama-3.2-3B-Instruct 12.9 GB). "
                + $"Default: fp32{(defaults.Length > 0 ? $", but {defaults}" : "")}.",
            HelpName = "type",
        };
        weights.AcceptOnlyFromAmong([.. WeightTypeNames.All.Keys]);
        maxTokens.Validators.Add(result => { if (result.GetValueOrDefault<int>() < 1) result.AddError("--max-tokens must be at least 1."); });
        temperature.Validators.Add(result => { float t = result.GetValueOrDefault<float?>() ?? 0f; if (!(t >= 0f) || float.IsInfinity(t)) result.AddError("--temperature must be finite and at least 0."); });
        topK.Validators.Add(result => { if (result.GetValueOrDefault<int?>() < 0) result.AddError("--top-k must be at least 0."); });
        topP.Validators.Add(result => { float p = result.GetValueOrDefault<float?>() ?? 1f; if (!(p >= 0f && p <= 1f)) result.AddError("--top-p must be in [0, 1]."); });
        minP.Validators.Add(result => { float p = result.GetValueOrDefault<float?>() ?? 0f; if (!(p >= 0f && p <= 1f)) result.AddError("--min-p must be in [0, 1]."); });
        repetitionPenalty.Validators.Add(result => { float r = result.GetValueOrDefault<float?>() ?? 1f; if (!(r > 0f) || float.IsInfinity(r)) result.AddError("--repetition-penalty must be positive and finite."); });
        var command = new RootCommand($"Chat with {string.Join(" or ", specs.Select(spec => spec.Repository))}, compiled from its config.json: the reply streams token by token through the key/value cache. "
            + "The sampling options default to the folder's generation_config.json, as transformers' generate() reads it (greedy where it has none or does not sample).")
        {
            model, prompt, interactive, system, maxTokens, temperature, topK, topP, minP, repetitionPenalty, seed, weights,
        };
        command.SetAction(parsed =>
        {
            var sampling = new SamplingOptions(parsed.GetValue(temperature), parsed.GetValue(topK), parsed.GetValue(topP), parsed.GetValue(minP), parsed.GetValue(repetitionPenalty));
            var settings = new ChatSettings(parsed.GetValue(maxTokens), Seed: parsed.GetValue(seed), SystemPrompt: parsed.GetValue(system));
            WeightType? weightType = parsed.GetValue(weights) is { } name ? WeightTypeNames.All[name] : null;
            bool chat = parsed.GetValue(interactive);
            string? first = parsed.GetValue(prompt) ?? (chat ? null : DefaultPrompt);
            return Execute(specs, parsed.GetValue(model), first, chat ? input ?? Console.In : null, weightType, sampling, settings, output, error);
        });
        return command.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
    }

    /// <summary>The sampling options as given; null where the user left one out.</summary>
    private sealed record SamplingOptions(float? Temperature, int? TopK, float? TopP, float? MinP, float? RepetitionPenalty)
    {
        /// <summary>
        /// <paramref name="settings"/> with each option given, and the others from <paramref name="config"/> as it sets a
        /// sampler (without do_sample: temperature 0, no filters, its repetition penalty).
        /// </summary>
        public ChatSettings Over(GenerationConfig config, ChatSettings settings)
        {
            ChatSettings defaults = ChatSettings.SamplingOf(config);
            return settings with
            {
                Temperature = Temperature ?? defaults.Temperature,
                TopK = TopK ?? defaults.TopK,
                TopP = TopP ?? defaults.TopP,
                MinP = MinP ?? defaults.MinP,
                RepetitionPenalty = RepetitionPenalty ?? defaults.RepetitionPenalty,
            };
        }
    }

    // prompt: the first message (null: none, in interactive mode); input: the next messages (null: not interactive).
    private static int Execute(IReadOnlyList<ChatModelSpec> specs, string? folder, string? prompt, TextReader? input, WeightType? requestedWeights, SamplingOptions sampling, ChatSettings settings, TextWriter output, TextWriter error)
    {
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
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

        // The folder's model_type picks the model (a program of one model takes a folder without config.json as its own
        // and names the file among the missing); a different model is told before any missing file.
        string configPath = Path.Combine(folder, "config.json");
        ChatModelSpec? spec = specs.Count == 1 ? specs[0] : null;
        if (File.Exists(configPath))
        {
            spec ??= ModelTypeChoice.Choose(specs, s => s.ModelType, s => s.Repository, configPath, "samples/Chat", error, s => s.CompiledConfig);
            if (spec is null || !ArchitectureCheck.Accepts(spec.CompiledConfig, configPath, spec.Repository, spec.SourceConfigPath, error))
            {
                return ExitWrongModel;
            }
        }

        if (spec is null)
        {
            WriteDownloadInstructions(specs, error, $"The model folder '{folder}' lacks config.json, which says which model it holds.");
            return ExitMissingModel;
        }

        HubModel hub = Hub(spec);
        IReadOnlyList<string> missing = hub.MissingFiles(folder);
        if (missing.Count > 0)
        {
            hub.WriteDownloadInstructions(error, $"The model folder '{folder}' lacks {string.Join(", ", missing)}.");
            return ExitMissingModel;
        }

        // The sampling's defaults, read before the weights so that a bad file stops the run at once.
        GenerationConfig generation;
        try
        {
            generation = GenerationConfig.FromFolder(folder);
        }
        catch (InvalidDataException e)
        {
            error.WriteLine(e.Message);
            return 1;
        }

        settings = sampling.Over(generation, settings);

        WeightType weightType = requestedWeights ?? spec.DefaultWeights;
        long started = Stopwatch.GetTimestamp();
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder);
        TimeSpan tokenizerTime = Stopwatch.GetElapsedTime(started);
        started = Stopwatch.GetTimestamp();
        LanguageModel model = spec.Load(folder, weightType);
        TimeSpan weightsTime = Stopwatch.GetElapsedTime(started);
        long parameters = model.ParameterTensors.Sum(t => (long)t.Length);
        output.WriteLine($"model: {spec.Repository} from {folder} as {model.Layout.Name}: {parameters:N0} parameters, {model.Layout.SeqLen} positions of key/value cache");
        output.WriteLine($"loaded in {(tokenizerTime + weightsTime).TotalSeconds:F2} s (tokenizer {tokenizerTime.TotalSeconds:F2} s, {tokenizer.VocabSize:N0} ids; weights {weightsTime.TotalSeconds:F2} s, {WeightTypeNames.Name(weightType)}, {model.BufferBytes / 1e6:F0} MB of buffers)");

        // FromFolder gives GenerationConfig.Default itself where the folder has no file.
        string described = settings.DescribeSampling() + (ReferenceEquals(generation, GenerationConfig.Default) ? "" : $" ({GenerationConfig.FileName}: {generation.Describe()})");
        ChatSession session;
        try
        {
            session = new ChatSession(model, tokenizer, generation.EosTokenIds);
        }
        catch (ArgumentException e)
        {
            error.WriteLine($"{folder}: {e.Message}");
            return 1;
        }

        if (session.Template is { } template)
        {
            output.WriteLine($"chat template: {template.Style}; stops at {string.Join(", ", session.StopTokens.Order().Select(id => $"{id} {tokenizer.Decode([id], skipSpecialTokens: false)}"))}; {described}");
        }
        else
        {
            output.WriteLine($"no chat template, so the prompt is continued as plain text ({tokenizer.ChatUnavailableReason}); {described}");
        }

        // The first message, then (interactive) each line read, until the end of input or /exit.
        bool fresh = true;
        string? message = prompt;
        while (true)
        {
            if (message is null)
            {
                if (input is null) return 0;
                output.WriteLine();
                output.Write(session.Template is null ? "> " : "user: ");
                output.Flush();
                string? line = input.ReadLine();
                if (line is null || line.Trim() is "/exit" or "/quit") return 0;
                if (line.Trim() == "/reset")
                {
                    fresh = true;
                    output.WriteLine("(a new conversation)");
                    continue;
                }
                if (line.Trim().Length == 0) continue;
                message = line;
                output.Write(session.Template is null ? "" : "assistant: ");
            }
            else
            {
                output.WriteLine();
                if (session.Template is null) output.Write(message);
                else
                {
                    output.WriteLine($"user: {message}");
                    output.Write("assistant: ");
                }
            }

            ChatReply reply;
            try
            {
                reply = fresh ? session.Respond(message, settings, output) : session.Continue(message, settings, output);
            }
            catch (ArgumentException e)
            {
                output.WriteLine();
                error.WriteLine(e.Message);
                if (input is null) return 1;
                message = null;
                continue;
            }

            fresh = false;
            message = null;
            output.WriteLine();
            output.WriteLine();
            string cached = reply.CachedPromptTokens > 0 ? $"; {reply.CachedPromptTokens} before them from the cache" : "";
            string dropped = reply.DroppedMessages > 0 ? $"; the {reply.DroppedMessages} oldest messages were left out to fit SeqLen" : "";
            output.WriteLine($"prompt: {reply.NewPromptTokens} tokens in {reply.PromptTime.TotalSeconds:F3} s ({reply.PromptTokensPerSecond:N1} tokens/s){cached}{dropped}");
            output.WriteLine($"reply: {reply.Tokens.Length} tokens in {reply.DecodeTime.TotalSeconds:F3} s ({reply.DecodeTokensPerSecond:N1} tokens/s)");
            output.WriteLine($"stopped: {Describe(reply, tokenizer, model.Layout.SeqLen, settings.MaxTokens)}");
        }
    }

    private static HubModel Hub(ChatModelSpec spec) =>
        new(spec.Repository, spec.Files, "dotnet run -c Release --project samples/Chat -- --model {folder}", [GenerationConfig.FileName]);

    /// <summary>Each model's instructions, the first after <paramref name="why"/>: without a config.json there is no telling which model the user wants.</summary>
    private static void WriteDownloadInstructions(IReadOnlyList<ChatModelSpec> specs, TextWriter error, string why)
    {
        for (int i = 0; i < specs.Count; i++)
        {
            if (i > 0)
            {
                error.WriteLine();
            }

            // Models of one model_type (SmolLM2 and Llama 3.2 are llama) are told apart by their sizes.
            ChatModelSpec spec = specs[i];
            bool shared = specs.Count(other => other.ModelType == spec.ModelType) > 1;
            Hub(spec).WriteDownloadInstructions(error, i == 0 ? why : $"Or, for a folder whose config.json has model_type {spec.ModelType}{(shared ? $" and {spec.Repository}'s sizes" : "")}:");
        }
    }

    private static string Describe(ChatReply reply, PretrainedTokenizer tokenizer, int seqLen, int maxTokens) => reply.Stop switch
    {
        StopReason.EndOfTurn => $"end of turn ({tokenizer.Decode([reply.StopToken!.Value], skipSpecialTokens: false)})",
        StopReason.EndOfSequence => $"end of sequence ({tokenizer.Decode([reply.StopToken!.Value], skipSpecialTokens: false)})",
        StopReason.MaxTokens => $"--max-tokens {maxTokens}",
        _ => $"the key/value cache is full ({seqLen} positions)",
    };
}
