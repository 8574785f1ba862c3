using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using ChatSample;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TransformerGen.Samples.Serving;
using TransformerGen.Serving;
using TransformerGen.Tokenizers;

namespace TransformerGen.ChatServer;

/// <summary>
/// The model folder made ready to serve: its config.json checked against the compiled one, the tokenizer and its chat
/// template opened, the weights loaded, and a <see cref="DecoderBatcher"/> over one instance whose Sequences cache slots hold
/// the conversations being answered. Built when the server starts (<see cref="ModelStartup{TEngine}"/>); disposing it
/// lets the running replies finish.
/// </summary>
public sealed class ChatEngine : IAsyncDisposable
{
    private readonly PretrainedTokenizer _tokenizer;
    private readonly ChatPrompt _chat;
    private readonly DecoderBatcher _batcher;

    /// <summary>Checks and loads <see cref="ModelServerOptions.Model"/>.</summary>
    /// <param name="served">The compiled models; the folder's config.json picks one.</param>
    /// <param name="options">The server's settings.</param>
    /// <param name="metrics">Counts the batcher's steps.</param>
    /// <param name="log">Where the start is reported.</param>
    /// <param name="stepObservers">Anything else registered to watch the batcher's steps (none in the program; tests hold steps back with one).</param>
    /// <exception cref="StartupException">An option is wrong, or the folder is missing, lacks files, holds another model (the message names the differing config.json keys), or has no chat template this server can render.</exception>
    public ChatEngine(ServedChatModels models, IOptions<ServerOptions> options, ServerMetrics metrics, ILogger<ChatEngine> log, IEnumerable<IObserver<DecoderStep>> stepObservers)
    {
        ServerOptions o = options.Value;
        o.Validate(models.Repositories);
        string folder = o.Model!;
        ServedChatModel served = models.For(folder);
        ChatModelSpec spec = served.Spec;
        ModelFolder.Check(folder, spec.Repository, spec.Files, spec.CompiledConfig, spec.SourceConfigPath);

        if (o.Threads is int threads) Parallelism.ThreadCount = threads;
        ModelName = o.ModelName ?? spec.Repository;
        WeightType = o.Weights ?? spec.DefaultWeights;
        MaxTokens = o.MaxTokens;
        LanguageModel model;
        try
        {
            _tokenizer = PretrainedTokenizer.FromFolder(folder);
            ModelWeights weights = served.LoadWeights(folder, WeightType);
            WeightsBytes = weights.Bytes;
            model = served.CreateInstance(weights);
            Layout = model.Layout;
            GenerationConfig generation = GenerationConfig.FromFolder(folder);
            _chat = new ChatPrompt(_tokenizer, Layout, generation.EosTokenIds);
            DefaultSampling = DefaultsOf(generation);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or ArgumentException)
        {
            throw new StartupException($"{folder}: {e.Message}", e);
        }
        if (_chat.Template is null)
            throw new StartupException($"{folder}: {_tokenizer.ChatUnavailableReason} This server writes conversations out with the model's chat template.");

        int maxSequences = o.MaxSequences ?? Layout.Sequences;
        if (maxSequences > Layout.Sequences)
            throw new StartupException($"--max-sequences {maxSequences}: at most {Layout.Name}'s Sequences, {Layout.Sequences} (its key/value cache slots).");
        int stepTokens = o.MaxStepTokens ?? Math.Clamp(ServerOptions.DefaultMaxStepTokens, maxSequences, Layout.InferenceTokens);
        if (stepTokens < maxSequences || stepTokens > Layout.InferenceTokens)
            throw new StartupException($"--max-step-tokens {stepTokens}: from --max-sequences ({maxSequences}, a token for each running reply) to {Layout.InferenceTokens} (what one pass of {Layout.Name} takes).");

        IObserver<DecoderStep>[] observers = [.. stepObservers];
        _batcher = new DecoderBatcher(model, new DecoderBatcherOptions
        {
            MaxSequences = maxSequences,
            MaxTokensPerStep = stepTokens,
            StopTokens = _chat.StopTokens,
            ReusePrefixes = o.ReusePrefixes,
            StepCompleted = step =>
            {
                metrics.ObserveStep(step);
                foreach (IObserver<DecoderStep> observer in observers) observer.OnNext(step);
            },
        });
        metrics.TrackBatcher(() => _batcher.Active, () => _batcher.Queued);

        log.LogInformation(
            "Serving {Repository} from {Folder} as '{Name}' ({Weights}, {Bytes:N0} bytes of weights, {Threads} kernel threads): {Sequences} conversations at once, steps of up to {StepTokens} tokens, SeqLen {SeqLen}; chat template {Template}, stop ids {Stops}; replies of up to {MaxTokens} tokens unless asked; sampling unless asked: {Sampling}",
            spec.Repository, folder, ModelName, WeightType, WeightsBytes, Parallelism.ThreadCount, _batcher.MaxSequences, _batcher.MaxTokensPerStep, Layout.SeqLen,
            _chat.Template.Style, string.Join(", ", _chat.StopTokens), MaxTokens, DefaultSampling.DescribeSampling(withSeed: false));
    }

    /// <summary>Bytes of the weights.</summary>
    public long WeightsBytes { get; }

    /// <summary>How the weight matrices are held: <c>--weights</c>, or the model's default (8 bits for Llama-3.2-3B-Instruct, fp32 for the others).</summary>
    public WeightType WeightType { get; }

    /// <summary>The name responses give.</summary>
    public string ModelName { get; }

    /// <summary>The compiled model's sizes (SeqLen positions hold a prompt and its reply).</summary>
    public ModelLayout Layout { get; }

    /// <summary>A reply's limit when a request gives none.</summary>
    public int MaxTokens { get; }

    /// <summary>Prompt tokens a request may have: one position of SeqLen is left for the reply's first token to go into the cache.</summary>
    public int MaxPromptTokens => Layout.SeqLen - 1;

    /// <summary>Conversations generating at once (<c>--max-sequences</c>), and so the most choices one request may ask for.</summary>
    public int MaxSequences => _batcher.MaxSequences;

    /// <summary>Conversations holding a cache slot now.</summary>
    public int Active => _batcher.Active;

    /// <summary>Requests waiting for a slot.</summary>
    public int Queued => _batcher.Queued;

    /// <summary>The prompt's ids for a conversation: the chat template's rendering, with the opening of the assistant's turn.</summary>
    /// <exception cref="ArgumentException">A role or an order of roles the template refuses.</exception>
    public int[] Encode(IReadOnlyList<(string Role, string Content)> messages) => _chat.Encode(_chat.Format(messages));

    /// <summary>
    /// The sampling of a request that sets none, as vLLM's OpenAI server takes it: OpenAI's defaults (temperature 1, no
    /// filter, no penalty), with each of temperature, top_k, top_p, min_p and repetition_penalty that the folder's
    /// generation_config.json gives in its place (do_sample is not read: a request samples unless its temperature is 0).
    /// </summary>
    public ChatSettings DefaultSampling { get; }

    /// <summary>The defaults of <see cref="DefaultSampling"/> from a folder's generation_config.json (<see cref="GenerationConfig.Default"/> where it has none).</summary>
    public static ChatSettings DefaultsOf(GenerationConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var openAi = new ChatSettings(Temperature: 1f);
        bool Has(string key) => config.Given.Contains(key);
        return openAi with
        {
            Temperature = Has("temperature") ? config.Temperature : openAi.Temperature,
            TopK = Has("top_k") ? config.TopK : openAi.TopK,
            TopP = Has("top_p") ? config.TopP : openAi.TopP,
            MinP = Has("min_p") ? config.MinP : openAi.MinP,
            RepetitionPenalty = Has("repetition_penalty") ? config.RepetitionPenalty : openAi.RepetitionPenalty,
        };
    }

    /// <summary>Generates the reply to <paramref name="prompt"/> in the batcher's steps, shared with the other conversations.</summary>
    public IAsyncEnumerable<int> GenerateAsync(int[] prompt, int maxTokens, Sampler sampler, Action<int>? admitted, CancellationToken cancellationToken) =>
        _batcher.GenerateAsync(prompt, maxTokens, sampler, admitted, cancellationToken);

    /// <summary>Turns one reply's tokens into text as they come.</summary>
    public StreamingDecoder NewDecoder() => new(_tokenizer);

    /// <summary>The text of a whole reply.</summary>
    public string Decode(ReadOnlySpan<int> ids) => _tokenizer.Decode(ids);

    /// <summary>Lets every queued and running reply finish, then stops the batcher's thread.</summary>
    public ValueTask DisposeAsync() => _batcher.DisposeAsync();
}
