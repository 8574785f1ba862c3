using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TransformerGen.Samples.Hub;
using TransformerGen.Samples.Serving;
using TransformerGen.Serving;
using TransformerGen.Tokenizers;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// The model folder made ready to serve: its config.json checked against the compiled one, the tokenizer opened, the
/// weights loaded once, and an <see cref="EncoderBatcher"/> over one instance per worker; with <c>--reranker</c>, the
/// cross-encoder's folder as well (<see cref="Reranker"/>). Built when the server starts (<see cref="ModelStartup"/>);
/// disposing it drains the batchers.
/// </summary>
public sealed class EmbeddingEngine : IAsyncDisposable
{
    private readonly PretrainedTokenizer _tokenizer;
    private readonly EncoderBatcher _batcher;

    /// <summary>Checks and loads <see cref="ServerOptions.Model"/>.</summary>
    /// <exception cref="StartupException">An option is wrong, or a folder (the model's or the reranker's) is missing, lacks files, or holds another model (the message names the differing config.json keys).</exception>
    public EmbeddingEngine(ServedModels models, IOptions<ServerOptions> options, ServerMetrics metrics, ILogger<EmbeddingEngine> log)
    {
        ServerOptions o = options.Value;
        o.Validate();
        string folder = o.Model!;
        ServedModel served = models.For(folder);
        ModelFolder.Check(folder, served.Repository, served.Files, served.CompiledConfig, served.SourceConfigPath);
        ServedModel? reranker = null;
        if (o.Reranker is string rerankerFolder)
        {
            reranker = served.RerankerFor(rerankerFolder); // by the folder's model_type
            RerankEngine.Check(reranker, rerankerFolder); // both folders before any weights are read
        }

        if (o.Threads is int threads) Parallelism.ThreadCount = threads;
        ModelName = o.ModelName ?? served.Repository;
        Truncate = o.Truncate;
        MaxInputs = o.MaxInputs;
        Prompts = SentencePrompts.Read(folder);
        (_tokenizer, WeightsBytes, Layout, _batcher) = Load(served, folder, o, _ => o.MaxBatch, metrics.ObserveBatch);
        metrics.TrackQueue(() => _batcher.Queued);

        if (reranker is not null)
        {
            try
            {
                Reranker = new RerankEngine(reranker, o.Reranker!, o, metrics, log);
            }
            catch
            {
                _batcher.Dispose();
                throw;
            }
        }

        log.LogInformation(
            "Serving {Repository} from {Folder} as '{Name}': {Workers} workers over one copy of the weights ({Weights}, {Bytes:N0} bytes), {Threads} kernel threads; batches of up to {Sequences} sentences and {Tokens} tokens, {Wait} ms wait; SeqLen {SeqLen}, truncation {Truncation}",
            served.Repository, folder, ModelName, o.Workers, o.WeightType, WeightsBytes, Parallelism.ThreadCount, _batcher.MaxSequences, _batcher.MaxTokens, o.MaxWaitMilliseconds, Layout.SeqLen, Truncate ? "on" : "off");
    }

    /// <summary>
    /// A checked folder's tokenizer, its weights loaded once, and a batcher over one instance per worker (<c>--workers</c>),
    /// with <c>--max-batch-tokens</c> clamped to SeqLen to Batch·SeqLen and the batch size <paramref name="maxSequences"/>
    /// gives for the compiled layout: what the embedder and the reranker both start from.
    /// </summary>
    /// <exception cref="StartupException">The folder's files cannot be read, or its tokenizer has ids past the model's table that are not special tokens.</exception>
    internal static (PretrainedTokenizer Tokenizer, long WeightsBytes, ModelLayout Layout, EncoderBatcher Batcher) Load(ServedModel served, string folder, ServerOptions o,
        Func<ModelLayout, int?> maxSequences, Action<EncoderBatch> batchCompleted, Action<ModelLayout>? check = null)
    {
        try
        {
            var tokenizer = PretrainedTokenizer.FromFolder(folder);
            ModelWeights weights = served.LoadWeights(folder, o.WeightType);
            EncoderModel[] instances = Enumerable.Range(0, o.Workers).Select(_ => served.CreateInstance(weights)).ToArray();
            ModelLayout layout = instances[0].Layout;
            check?.Invoke(layout);
            VocabularyFit.Check(tokenizer, layout.Vocab, layout.Name, nameof(folder));
            var batcher = new EncoderBatcher(instances, new EncoderBatcherOptions
            {
                MaxSequences = maxSequences(layout),
                MaxTokens = o.MaxBatchTokens is int tokens ? Math.Clamp(tokens, layout.SeqLen, layout.TokensPerStep) : null,
                MaxWait = TimeSpan.FromMilliseconds(o.MaxWaitMilliseconds),
                BatchCompleted = batchCompleted,
            });
            return (tokenizer, weights.Bytes, layout, batcher);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or ArgumentException)
        {
            throw new StartupException($"{folder}: {e.Message}", e);
        }
    }

    /// <summary>Bytes of the one copy of the weights the workers share.</summary>
    public long WeightsBytes { get; }

    /// <summary>The name responses give.</summary>
    public string ModelName { get; }

    /// <summary>The compiled model's sizes (SeqLen bounds a sentence).</summary>
    public ModelLayout Layout { get; }

    /// <summary>The width of an embedding: the last Dense layer's outputs (EmbeddingGemma's 768), or the hidden width.</summary>
    public int EmbeddingWidth => Layout.LogitsLength / Layout.Batch;

    /// <summary>The folder's sentence-transformers prompts, which a request names in <c>prompt_name</c>.</summary>
    public SentencePrompts Prompts { get; }

    /// <summary>Whether sentences longer than SeqLen are cut (else refused).</summary>
    public bool Truncate { get; }

    /// <summary>The cross-encoder <c>POST /rerank</c> runs, or null when the server was started without <c>--reranker</c>.</summary>
    public RerankEngine? Reranker { get; }

    /// <summary>Sentences (or passages, for the reranker) a request may hold.</summary>
    public int MaxInputs { get; }

    /// <summary>Workers serving batches.</summary>
    public int Workers => _batcher.Workers;

    /// <summary>Sentences waiting for a batch.</summary>
    public int Queued => _batcher.Queued;

    /// <summary>
    /// The ids the model runs for <paramref name="text"/>, [CLS] and [SEP] included, cut at SeqLen as sentence-transformers
    /// cuts (the text's first ids, then [SEP]); <paramref name="fullLength"/> is the count before any cut.
    /// </summary>
    public int[] Tokenize(string text, out int fullLength)
    {
        IReadOnlyList<int> ids = _tokenizer.Encode(text);
        fullLength = ids.Count;
        if (ids.Count <= Layout.SeqLen) return [.. ids];
        var cut = new int[Layout.SeqLen];
        _tokenizer.Encode(text, cut, addSpecialTokens: true, maxTokens: Layout.SeqLen);
        return cut;
    }

    /// <summary>The embedding of one tokenized sentence, batched with whatever else is being asked.</summary>
    public Task<float[]> EmbedAsync(int[] ids, CancellationToken cancellationToken) => _batcher.PredictAsync(ids, cancellationToken);

    /// <summary>Runs what is queued, then stops the workers (the reranker's too).</summary>
    public async ValueTask DisposeAsync()
    {
        await _batcher.DisposeAsync();
        if (Reranker is not null) await Reranker.DisposeAsync();
    }
}
