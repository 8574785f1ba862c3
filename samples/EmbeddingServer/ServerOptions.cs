using System;
using Microsoft.Extensions.Configuration;
using TransformerGen.Samples.Serving;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// The server's settings, bound from ASP.NET Core's configuration: the command line (<c>--model folder --workers 2</c>),
/// environment variables or appsettings.json, under the names given by <see cref="ConfigurationKeyNameAttribute"/>.
/// </summary>
public sealed class ServerOptions : ModelServerOptions
{
    /// <summary>
    /// A cross-encoder folder as the Hub has it (cross-encoder/ms-marco-MiniLM-L-6-v2's or ms-marco-electra-base's files), served
    /// at <c>POST /rerank</c>; without it <c>/rerank</c> answers 501. Its config.json's model_type picks among the rerankers the
    /// program was compiled with, and must match that one's config.
    /// </summary>
    [ConfigurationKeyName("reranker")]
    public string? Reranker { get; set; }

    /// <summary>How the weight matrices are held: <c>--weights</c>, or fp32 (every encoder this server runs fits in it).</summary>
    public WeightType WeightType => Weights ?? WeightType.Float32;

    /// <summary>Model instances, each running batches on its own thread over the one copy of the weights. Default: the processor count.</summary>
    [ConfigurationKeyName("workers")]
    public int Workers { get; set; } = Environment.ProcessorCount;

    /// <summary>Sentences one embeddings request may hold, and passages one rerank request may hold (more: 413). Default 2048, as OpenAI's API.</summary>
    [ConfigurationKeyName("max-inputs")]
    public int MaxInputs { get; set; } = 2048;

    /// <summary>Sentences per batch at most; the model's Batch when not set.</summary>
    [ConfigurationKeyName("max-batch")]
    public int? MaxBatch { get; set; }

    /// <summary>Tokens per batch at most (SeqLen to Batch·SeqLen). Default 2048.</summary>
    [ConfigurationKeyName("max-batch-tokens")]
    public int? MaxBatchTokens { get; set; } = 2048;

    /// <summary>How long a free worker waits for more sentences before running a batch that is not full, in milliseconds. Default 1.</summary>
    [ConfigurationKeyName("max-wait-ms")]
    public double MaxWaitMilliseconds { get; set; } = 1;

    /// <summary>
    /// Cut a sentence longer than SeqLen tokens as sentence-transformers does (the first SeqLen − 1 ids and [SEP]) and say so
    /// in <c>usage</c> (default), or refuse the request with 413 when false. A rerank request's <c>truncate</c> takes this
    /// value when it does not say (as text-embeddings-inference's <c>--auto-truncate</c>).
    /// </summary>
    [ConfigurationKeyName("truncate")]
    public bool Truncate { get; set; } = true;

    /// <summary>Checks the values that need no model; throws <see cref="StartupException"/> naming the first wrong one.</summary>
    public void Validate()
    {
        ValidateModel("sentence-transformers/all-MiniLM-L6-v2");
        if (Workers < 1) throw new StartupException($"--workers {Workers}: at least one worker is needed.");
        if (MaxInputs < 1) throw new StartupException($"--max-inputs {MaxInputs}: at least 1.");
        if (!(MaxWaitMilliseconds >= 0)) throw new StartupException($"--max-wait-ms {MaxWaitMilliseconds}: not negative.");
        if (Reranker is not null && string.IsNullOrWhiteSpace(Reranker))
            throw new StartupException("--reranker is empty: give a cross-encoder folder (the files of cross-encoder/ms-marco-MiniLM-L-6-v2), or leave the option out.");
    }
}
